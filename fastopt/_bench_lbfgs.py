"""L-BFGS on many small problems (issue 17, part 4): ``python -m fastopt bench-loops`` prints
it after the Adam tables (``--lbfgs-only``: alone), and asv_benchmarks/benchmarks/
bench_batch.py runs the same variants.

Two workloads, every variant to the same tolerance, ``gtol=1e-5`` (the inf-norm of the
gradient; SciPy L-BFGS-B's default; ftol at each method's default: L-BFGS-B's 2.2e-9 for both
L-BFGS variants, off for Adam):

* 2-D Rosenbrock, m problems from seeded uniform starts in [-2, 2]^2: problems per second of
  ``minimize_batch(method="lbfgs")`` with a C objective (scalar and block) at 1 and 2
  threads, a Python loop of ``scipy.optimize.minimize(method="L-BFGS-B")`` (a subset of the
  problems, timed and scaled per problem), and ``minimize_batch`` with Adam (C objective, lr
  1e-2, maxiter 20000; the fraction that reaches gtol is printed).
* Bootstrap of an L2-penalised logistic regression on scikit-learn's breast-cancer data (569
  samples, 30 standardised features and an intercept): 500 resamples, each a problem whose
  per-sample weights are its bootstrap counts, with a vectorised NumPy objective (one call for
  all running problems): the lbfgs batch (all resamples), the SciPy loop (50 of them) and the
  Adam batch (lr 1e-2, maxiter 20000; 100 of them: minutes for all 500), rates per problem
  solved. Skipped with a message when scikit-learn is missing (it is not a dependency).

Variants run interleaved (one after another in each round); the tables give medians.
"""

import os
import sys

import numpy as np
from scipy.optimize import minimize as scipy_minimize

import fastopt
from fastopt._bench import interleaved_times
from fastopt._bench_loops import rosen2

GTOL = 1e-5
ADAM = {"lr": 1e-2, "maxiter": 20000, "gtol": GTOL}
ADAM_RESAMPLES = 100  # the bootstrap's Adam batch: its first 100 resamples (see below)
PENALTY = 1e-2  # the logistic regression's L2 penalty (on the mean loss)


def rosen_starts(m, seed=0):
    return np.random.default_rng(seed).uniform(-2.0, 2.0, (m, 2))


def rosen_variants(m, m_scipy):
    """{name: (function, problems per call)} for the 2-D Rosenbrock workload."""
    X0 = rosen_starts(m)
    scalar = fastopt.problems.rosenbrock_lowlevel()
    block = fastopt.problems.rosenbrock_block_lowlevel()

    def scipy_loop():
        for x0 in X0[:m_scipy]:
            scipy_minimize(rosen2, x0, method="L-BFGS-B", jac=True, options={"gtol": GTOL})

    variants = {}
    for threads in (1, 2):
        suffix = "1 thread" if threads == 1 else f"{threads} threads"
        opts = {"gtol": GTOL, "n_threads": threads}
        variants[f"lbfgs batch, C objective, {suffix}"] = (
            lambda opts=opts: fastopt.minimize_batch(scalar, X0, method="lbfgs",
                                                     options=opts), m)
        variants[f"lbfgs batch, block C objective, {suffix}"] = (
            lambda opts=opts: fastopt.minimize_batch(block, X0, method="lbfgs",
                                                     options=opts), m)
    variants["Adam batch, C objective, 2 threads"] = (
        lambda: fastopt.minimize_batch(scalar, X0, method="adam",
                                       options=dict(ADAM, n_threads=2)), m)
    variants["Python loop of scipy L-BFGS-B"] = (scipy_loop, m_scipy)
    return variants


def breast_cancer():
    """(A, y): the standardised features with a column of ones, labels in {-1, 1}; None
    without scikit-learn."""
    try:
        from sklearn.datasets import load_breast_cancer
    except ImportError:
        return None
    data = load_breast_cancer()
    A = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    return np.hstack([A, np.ones((A.shape[0], 1))]), np.where(data.target == 1, 1.0, -1.0)


def logistic_rows(B, W, A, y):
    """Vectorised over problems: row k of B is a coefficient vector, row k of W its samples'
    weights; f_k = sum_j W[k, j] log(1 + exp(-y_j a_j.b_k)) / N + PENALTY / 2 |b_k|^2."""
    Z = -(B @ A.T) * y                       # (k, N) margins, negated
    loss = np.logaddexp(0.0, Z)
    s = W * (0.5 * (1.0 + np.tanh(0.5 * Z)))  # W * sigmoid(Z), overflow-free
    N = A.shape[0]
    f = np.einsum("kj,kj->k", W, loss) / N + 0.5 * PENALTY * np.einsum("kj,kj->k", B, B)
    G = -((s * y) @ A) / N + PENALTY * B
    return f, G


def bootstrap_variants(resamples, scipy_resamples, adam_resamples=100, seed=0):
    """{name: (function, problems per call)} for the bootstrap, or None without
    scikit-learn. The SciPy loop and the Adam batch (whose slowest problems take thousands of
    iterations: minutes for all 500) solve the first ``scipy_resamples`` and
    ``adam_resamples`` resamples; their rates are per problem solved."""
    data = breast_cancer()
    if data is None:
        return None
    A, y = data
    N, n = A.shape
    rng = np.random.default_rng(seed)
    W = np.stack([np.bincount(rng.integers(0, N, N), minlength=N) for _ in range(resamples)]
                 ).astype(np.float64)
    X0 = np.zeros((resamples, n))

    def fg(B, W):  # the data in a closure: args are per problem (W) or shared scalars
        return logistic_rows(B, W, A, y)

    def one(b, w):
        f, G = fg(b[None, :], w[None, :])
        return f[0], G[0]

    def scipy_loop():
        for k in range(scipy_resamples):
            scipy_minimize(one, X0[k], args=(W[k],), method="L-BFGS-B", jac=True,
                           options={"gtol": GTOL})

    return {
        "lbfgs batch, NumPy objective": (
            lambda: fastopt.minimize_batch(fg, X0, args=(W,), method="lbfgs",
                                           jac=True, options={"gtol": GTOL}), resamples),
        "Adam batch, NumPy objective": (
            lambda: fastopt.minimize_batch(fg, X0[:adam_resamples], args=(W[:adam_resamples],),
                                           method="adam", jac=True, options=ADAM),
            adam_resamples),
        "Python loop of scipy L-BFGS-B": (scipy_loop, scipy_resamples),
    }


def _rates(variants, repeats):
    times = interleaved_times({k: f for k, (f, _) in variants.items()}, repeats)
    return {k: runs / float(np.median(times[k])) for k, (_, runs) in variants.items()}


def _iterations(variants):
    """Median iterations and the fraction converged of each batch variant (one more run)."""
    out = {}
    for name, (fn, _) in variants.items():
        res = fn()
        if res is not None:
            out[name] = (float(np.median(res.nit)), float(np.mean(res.success)))
    return out


def _table(title, rates, stats, file):
    base = rates["Python loop of scipy L-BFGS-B"]
    print(title, file=file)
    print(f"  {'variant':<42} {'problems/s':>12} {'vs scipy':>9} {'median nit':>11} "
          f"{'converged':>10}", file=file)
    for name, rate in rates.items():
        nit, ok = (f"{stats[name][0]:11.0f}", f"{stats[name][1]:10.1%}") if name in stats \
            else (f"{'-':>11}", f"{'-':>10}")
        print(f"  {name:<42} {rate:12.0f} {rate / base:8.1f}x {nit} {ok}", file=file)


def run(repeats=5, m=10000, m_scipy=200, resamples=500, scipy_resamples=50, file=None):
    """Print both tables (the bootstrap with at most m resamples); returns ``{"rosenbrock": {variant: problems/s}, "bootstrap": ...}``
    (bootstrap None without scikit-learn)."""
    file = sys.stdout if file is None else file
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nL-BFGS, every variant to gtol={GTOL:g}; median of {repeats} interleaved "
          f"rounds; load average {load:.2f} at the start", file=file)
    m_scipy = min(m_scipy, m)
    rosen = rosen_variants(m, m_scipy)
    rates = _rates(rosen, repeats)
    _table(f"{m} 2-D Rosenbrock problems, starts uniform in [-2, 2]^2 (the SciPy loop: "
           f"{m_scipy} of them per round, rate scaled per problem; Adam: {ADAM})", rates,
           _iterations({k: v for k, v in rosen.items() if "batch" in k}), file)
    out = {"rosenbrock": rates, "bootstrap": None}
    resamples = min(resamples, m)  # (a small m for a quick run: a small bootstrap too)
    boot = bootstrap_variants(resamples, min(scipy_resamples, resamples),
                              min(ADAM_RESAMPLES, resamples))
    if boot is None:
        print("\nbootstrap: skipped (scikit-learn is not installed: pip install "
              "scikit-learn)", file=file)
        return out
    rates = _rates(boot, repeats)
    _table(f"\nLogistic-regression bootstrap, breast cancer (569 x 31), {resamples} "
           f"resamples (per round, the SciPy loop solves {min(scipy_resamples, resamples)} "
           f"of them, the Adam batch {min(ADAM_RESAMPLES, resamples)}: rates per problem; "
           f"Adam: {ADAM})", rates,
           _iterations({k: v for k, v in boot.items() if "batch" in k}), file)
    out["bootstrap"] = rates
    return out
