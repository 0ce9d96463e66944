"""fastopt's L-BFGS vs SciPy's L-BFGS-B on random bounded problems (issue 17): iterations.

A tool, not a test: ``python asv_benchmarks/lbfgs_bounds_compare.py [--count N] [--tight]``
runs N random problems of each family (seeds fixed) with the same options in both and prints,
per family and overall, the median, 90th percentile and max of nit_fastopt / nit_SciPy, the
count above 1.5x (and the same for nfev), the worst cases (to reproduce them), and how many optima disagree (f beyond
1e-6 relative). Families: bounded Rosenbrock (n 2-10, shifted, a in [1, 1000], random boxes),
bounded convex quadratics (n 2-30, random conditioning, boxes cutting the minimum) and
bounded logistic regression (random data, n 3-20). ``--suite`` adds tests/test_lbfgs.py's
suite at SciPy's defaults.
"""

import argparse
import os
import sys
import warnings

import numpy as np
from scipy.optimize import minimize

import fastopt


def rosen_case(rng):
    n = int(rng.integers(2, 11))
    a = float(10 ** rng.uniform(0, 3))
    shift = rng.uniform(-2, 2, n)
    lo = rng.uniform(-2.5, 0.5, n)
    hi = lo + rng.uniform(0.2, 3.0, n)
    x0 = rng.uniform(lo, hi)

    def fg(x):
        y = x - shift
        r = y[1:] - y[:-1] ** 2
        f = np.sum(a * r ** 2 + (1 - y[:-1]) ** 2)
        g = np.zeros_like(x)
        g[:-1] = -4 * a * y[:-1] * r - 2 * (1 - y[:-1])
        g[1:] += 2 * a * r
        return f, g

    return f"rosen n={n} a={a:.4g}", fg, x0, list(zip(lo, hi)), (n, a, shift, lo, hi, x0)


def quad_case(rng):
    n = int(rng.integers(2, 31))
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    ev = 10 ** rng.uniform(0, rng.uniform(1, 4), n)
    A = (q * ev) @ q.T
    c = rng.standard_normal(n)
    lo = c - rng.uniform(0.0, 1.0, n)   # some bounds cut through the minimum at c
    hi = lo + rng.uniform(0.1, 1.5, n)
    x0 = rng.uniform(lo, hi)

    def fg(x):
        d = x - c
        Ad = A @ d
        return 0.5 * d @ Ad, Ad

    return f"quad n={n} cond={ev.max() / ev.min():.3g}", fg, x0, list(zip(lo, hi)), None


def logistic_case(rng):
    n = int(rng.integers(3, 21))
    m = 200
    X = rng.standard_normal((m, n)) * rng.uniform(0.3, 3, n)
    w_true = rng.standard_normal(n) * 2
    y = (rng.random(m) < 1 / (1 + np.exp(-X @ w_true))).astype(float)
    lam = 1e-3
    lo = rng.uniform(-1.0, 0.0, n)
    hi = rng.uniform(0.0, 1.0, n)
    x0 = np.zeros(n)

    def fg(w):
        z = X @ w
        f = np.sum(np.logaddexp(0, z) - y * z) / m + 0.5 * lam * w @ w
        g = X.T @ (1 / (1 + np.exp(-z)) - y) / m + lam * w
        return f, g

    return f"logistic n={n}", fg, x0, list(zip(lo, hi)), None


FAMILIES = {"rosen": rosen_case, "quad": quad_case, "logistic": logistic_case}


def run(fg, x0, bounds, options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = fastopt.minimize(fg, x0, method="lbfgs", jac=True, bounds=bounds,
                                options=options)
        theirs = minimize(fg, x0, method="L-BFGS-B", jac=True, bounds=bounds, options=options)
    return ours, theirs


def summary(label, ratios, bad, fev):
    r, e = np.asarray(ratios), np.asarray(fev)
    return (f"{label:10s} N={r.size:4d}  nit: median {np.median(r):.3f}  p90 "
            f"{np.quantile(r, 0.9):.3f}  max {r.max():.3f}  >1.5x {int(np.sum(r > 1.5)):3d}"
            f"  mean {r.mean():.3f}  f disagree {bad} | nfev: median {np.median(e):.3f}  p90 "
            f"{np.quantile(e, 0.9):.3f}  max {e.max():.3f}  >1.5x {int(np.sum(e > 1.5)):3d}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--tight", action="store_true", help="gtol=1e-9, ftol=1e-14")
    parser.add_argument("--suite", action="store_true")
    parser.add_argument("--worst", type=int, default=8)
    args = parser.parse_args(argv)
    options = {"gtol": 1e-9, "ftol": 1e-14} if args.tight else {}
    all_ratios, all_bad, all_fev, rows = [], 0, [], []
    for fam, make in FAMILIES.items():
        rng = np.random.default_rng(12345)
        ratios, bad, fev = [], 0, []
        for k in range(args.count):
            label, fg, x0, bounds, _ = make(rng)
            ours, theirs = run(fg, x0, bounds, options)
            ratio = ours.nit / max(theirs.nit, 1)
            ratios.append(ratio)
            fev.append(ours.nfev / max(theirs.nfev, 1))
            if abs(ours.fun - theirs.fun) > 1e-6 * max(1.0, abs(theirs.fun)):
                bad += 1
            rows.append((ratio, fam, k, label, ours.nit, theirs.nit, ours.fun, theirs.fun))
        print(summary(fam, ratios, bad, fev))
        all_ratios += ratios
        all_fev += fev
        all_bad += bad
    if args.suite:
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
        from test_lbfgs import SUITE  # noqa: E402
        ratios, fev = [], []
        for name, make in SUITE.items():
            fg, x0, bounds = make()
            ours, theirs = run(fg, x0, bounds, options)
            ratios.append(ours.nit / max(theirs.nit, 1))
            fev.append(ours.nfev / max(theirs.nfev, 1))
            rows.append((ratios[-1], "suite", 0, name, ours.nit, theirs.nit, ours.fun, theirs.fun))
        print(summary("suite", ratios, 0, fev))
    print(summary("all", all_ratios, all_bad, all_fev))
    print("worst cases (family, index in the family's seeded stream):")
    for row in sorted(rows, key=lambda r: -r[0])[:args.worst]:
        print("  {:.2f}  {} #{} {}: nit {} vs {}, f {:.10g} vs {:.10g}".format(*row))


if __name__ == "__main__":
    main()
