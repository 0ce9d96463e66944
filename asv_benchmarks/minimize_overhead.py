"""Microseconds per iteration on Rosenbrock (n = 2 and 100): fastopt.minimize(method="adam"),
scipy.optimize.minimize(method="L-BFGS-B"), a plain Python/NumPy Adam loop, and the user's
functions alone -- hence fastopt's own overhead per iteration. scipy's rosen/rosen_der cost
tens of microseconds, so the overhead is also measured exactly with a "cheap objective" that
returns a precomputed (f, g): the loop's time minus the time of calling it as often.

    python asv_benchmarks/minimize_overhead.py [--repeats 7] [--iters 2000]

Each repeat runs every variant once, in turn (interleaved); the table gives medians.
"""

import argparse

import numpy as np
from scipy.optimize import minimize, rosen, rosen_der

import fastopt
from fastopt._bench import interleaved_times


def numpy_adam_loop(x0, iters, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """Adam written plainly in Python/NumPy, calling the same rosen/rosen_der (written out,
    not through fastopt._reference: its loop overhead is measured; tests/test_baselines.py
    checks its steps against the reference)."""
    x = x0.copy()
    m, v = np.zeros_like(x), np.zeros_like(x)
    for t in range(1, iters + 1):
        rosen(x)
        g = rosen_der(x)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        x -= lr / (1 - beta1**t) * m / (np.sqrt(v) / np.sqrt(1 - beta2**t) + eps)
    return x


def functions_only(x0, iters):
    x = x0.copy()
    for _ in range(iters + 1):
        rosen(x)
        rosen_der(x)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--iters", type=int, default=2000)
    args = parser.parse_args(argv)
    iters = args.iters
    opts = {"lr": 1e-3, "maxiter": iters, "gtol": 0}
    print(f"Rosenbrock, {iters} iterations, median of {args.repeats} interleaved repeats, "
          f"us per iteration")
    for n in (2, 100):
        x0 = np.full(n, 0.5)
        nit = {}

        def lbfgsb():
            res = minimize(rosen, x0, jac=rosen_der, method="L-BFGS-B")
            nit["lbfgsb"] = res.nit

        variants = {
            "fastopt.minimize(adam)": lambda: fastopt.minimize(rosen, x0, method="adam",
                                                               jac=rosen_der, options=opts),
            "scipy minimize(method=fastopt.adam)": lambda: minimize(
                rosen, x0, method=fastopt.adam, jac=rosen_der, options=opts),
            "plain Python/NumPy Adam loop": lambda: numpy_adam_loop(x0, iters),
            "rosen + rosen_der alone": lambda: functions_only(x0, iters),
            "L-BFGS-B (per its own iteration)": lbfgsb,
        }
        times = {k: np.median(v) for k, v in interleaved_times(variants, args.repeats).items()}
        per_iter = {k: t / iters * 1e6 for k, t in times.items()}
        per_iter["L-BFGS-B (per its own iteration)"] = (
            times["L-BFGS-B (per its own iteration)"] / max(nit["lbfgsb"], 1) * 1e6)
        print(f"\nn = {n} (L-BFGS-B converged in {nit['lbfgsb']} iterations)")
        for name, us in per_iter.items():
            print(f"  {name:<38} {us:9.2f}")
        alone = per_iter["rosen + rosen_der alone"]
        print(f"  {'fastopt overhead beyond fun + jac':<38} "
              f"{per_iter['fastopt.minimize(adam)'] - alone:9.2f}")
        print(f"  {'Python loop overhead beyond fun + jac':<38} "
              f"{per_iter['plain Python/NumPy Adam loop'] - alone:9.2f}")
    print("\nOverhead measured with an objective that returns a precomputed (f, g):")
    report_overhead(iters, args.repeats)


def cheap_objective_overhead(n, iters, repeats):
    g = np.ones(n)

    def fg(x):
        return 1.0, g

    def fg_alone():
        x = np.zeros(n)
        for _ in range(iters + 1):
            fg(x)

    opts = {"lr": 0.0, "maxiter": iters, "gtol": 0}
    variants = {
        "loop": lambda: fastopt.minimize(fg, np.zeros(n), method="adam", jac=True,
                                         options=opts),
        "alone": fg_alone,
    }
    t = {k: np.median(v) for k, v in interleaved_times(variants, repeats).items()}
    return (t["loop"] - t["alone"]) / iters * 1e6


def report_overhead(iters, repeats):
    for n in (2, 100):
        us = cheap_objective_overhead(n, 20 * iters, repeats)
        print(f"  n = {n:<4} fastopt overhead per iteration, cheap objective: {us:6.3f} us")


if __name__ == "__main__":
    main()
