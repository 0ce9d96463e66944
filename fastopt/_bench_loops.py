"""Benchmark of whole minimize loops on small problems: ``python -m fastopt bench-loops``.

2-D Rosenbrock from (-1.2, 1), Adam (lr 1e-3), 1000 iterations (gtol=0: every run makes them
all). Variants run interleaved, one after another in each round, and the tables give medians,
so that a noisy machine slows all of them alike.

One problem, ns per iteration (the whole call divided by the iterations):
  plain C loop          src_c/fastopt_plain_adam.h: scalar C, nothing but the maths (the floor)
  C-level loop          fastopt.minimize with a LowLevelCallable objective; and its cost per
                        iteration without the fixed cost of the call, from warm back-to-back
                        calls of 1000 and 10000 iterations
  Python-function loop  fastopt.minimize with a Python fun returning (f, g)
  scipy + Python Adam   scipy.optimize.minimize(method=python_adam): Adam written in Python
                        as a SciPy custom method, as a user would without fastopt

minimize call, us per call: maxiter=1 on 2 variables (the fixed cost of a call), fastopt
(Python fun, C objective, through scipy.optimize.minimize) and SciPy's L-BFGS-B

m problems, problems per second (at 1 and 2 threads: the three variants side by side):
  minimize_batch, C objective          a scalar LowLevelCallable, one problem per call
  minimize_batch, block C objective    fastopt.problems.rosenbrock_block_lowlevel: one call
                                       evaluates a block of problems, variable-major
  block SIMD floor (plain C)           src_c/fastopt_block_adam.h: blocks of 256 problems,
                                       variable-major, the objective and Adam in one loop SIMD
                                       across problems, nothing else (the floor of the two above)
  minimize_batch, vectorised NumPy objective
  vectorised NumPy Adam (all rows, no stopping rules)
  plain scalar C loop, one thread
  a Python loop of scipy.optimize.minimize(method=python_adam) (on a few problems)

Then L-BFGS on many problems (fastopt/_bench_lbfgs.py): minimize_batch(method="lbfgs") vs a
loop of SciPy's L-BFGS-B vs minimize_batch with Adam, on 2-D Rosenbrock and on a
logistic-regression bootstrap (``--lbfgs-only``: that part alone).

Every variant runs fastopt.Adam's hyperparameters. The vectorised NumPy Adam is the reference
rule, ``fastopt._reference.adam``, itself; the Python SciPy method (written out, so that its
per-iteration cost is a user's) and the plain C loop are checked against the reference in
tests/test_baselines.py, as is the block SIMD floor (bitwise the plain C loop).
"""

import sys
import time

import numpy as np
from scipy.optimize import OptimizeResult
from scipy.optimize import minimize as scipy_minimize

import fastopt
from fastopt import _reference
from fastopt._bench import interleaved_times
from fastopt._objectives import (block_floor_simd, plain_adam_rosenbrock2,
                                 plain_block_adam_rosenbrock2)

ITERS = 1000
LR = 1e-3
X_START = (-1.2, 1.0)


def rosen2(x):
    """2-D Rosenbrock and its gradient, as a Python user writes it."""
    a = x[1] - x[0] * x[0]
    b = 1.0 - x[0]
    return 100.0 * a * a + b * b, np.array([-400.0 * x[0] * a - 2.0 * b, 200.0 * a])


def rosen2_rows(X):
    """Vectorised over rows: f of shape (m,), G of shape (m, 2)."""
    x0, x1 = X[:, 0], X[:, 1]
    a = x1 - x0 * x0
    b = 1.0 - x0
    return 100.0 * a * a + b * b, np.stack([-400.0 * x0 * a - 2.0 * b, 200.0 * a], axis=1)


def adam_hyperparameters(lr=LR):
    """fastopt.Adam's hyperparameters (torch's defaults) with learning rate ``lr``: the one
    setting every variant here runs, baselines included."""
    return fastopt.Adam(np.zeros(1), lr=lr).hyperparameters


def python_adam(fun, x0, args=(), jac=None, callback=None, maxiter=ITERS, lr=LR,
                betas=(0.9, 0.999), eps=1e-8, **unused):
    """Adam as a SciPy custom method, in Python/NumPy (the baseline without fastopt).

    Written out as a user would, not through the reference: its per-iteration cost is what
    the benchmark measures. tests/test_baselines.py checks its steps against the reference.
    """
    x = np.array(x0, dtype=float)
    m, v = np.zeros_like(x), np.zeros_like(x)
    beta1, beta2 = betas
    for t in range(1, maxiter + 1):
        g = jac(x, *args)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        x = x - lr / (1 - beta1**t) * m / (np.sqrt(v) / np.sqrt(1 - beta2**t) + eps)
    return OptimizeResult(x=x, fun=fun(x, *args), nit=maxiter, success=False)


def numpy_adam_rows(X0, iters=ITERS, **hyperparameters):
    """Vectorised NumPy Adam over all rows (no stopping rules): the reference rule,
    ``fastopt._reference.adam``, applied to the whole (m, 2) array at each step."""
    hyper = dict(adam_hyperparameters(), **hyperparameters)
    X, state = X0.copy(), {}
    for t in range(1, iters + 1):
        _, G = rosen2_rows(X)
        X = _reference.adam(X, G, state, t, **hyper)
    return X


def plain_c_adam(X, iters=ITERS, lr=LR):
    """The plain scalar C loop (src_c/fastopt_plain_adam.h) on each row of X, in place, with
    fastopt.Adam's betas and eps; returns f at each row's last evaluated point."""
    hyper = adam_hyperparameters(lr)
    return plain_adam_rosenbrock2(X, iters, lr, *hyper["betas"], hyper["eps"])


def block_floor_adam(X, iters=ITERS, lr=LR, n_threads=1):
    """The block SIMD floor (src_c/fastopt_block_adam.h) on the rows of X, in place, on
    ``n_threads`` threads, with fastopt.Adam's betas and eps (AVX2 where the CPU has it);
    returns f at each row's last evaluated point."""
    hyper = adam_hyperparameters(lr)
    return plain_block_adam_rosenbrock2(X, iters, lr, *hyper["betas"], hyper["eps"],
                                        n_threads=n_threads)


def one_problem_variants(llc):
    options = {"lr": LR, "maxiter": ITERS, "gtol": 0.0}
    floor_rows = np.tile(X_START, (100, 1))  # 100 runs per call: the Python call is amortised
    return {
        "plain C loop": (lambda: plain_c_adam(floor_rows.copy()), 100),
        "C-level loop (LowLevelCallable)": (
            lambda: fastopt.minimize(llc, X_START, options=options), 1),
        "Python-function loop": (
            lambda: fastopt.minimize(rosen2, X_START, jac=True, options=options), 1),
        "scipy.optimize.minimize + Python Adam": (
            lambda: scipy_minimize(lambda x: rosen2(x)[0], X_START, method=python_adam,
                                   jac=lambda x: rosen2(x)[1]), 1),
    }


def batch_variants(llc, m, m_scipy, block_llc=None):
    """{name: (function, problems per call)}: ``llc`` the scalar C objective, ``block_llc``
    the block one (default fastopt.problems.rosenbrock_block_lowlevel())."""
    options = {"lr": LR, "maxiter": ITERS, "gtol": 0.0}
    X0 = np.tile(X_START, (m, 1))
    if block_llc is None:
        block_llc = fastopt.problems.rosenbrock_block_lowlevel()

    def scipy_loop():
        for x0 in X0[:m_scipy]:
            scipy_minimize(lambda x: rosen2(x)[0], x0, method=python_adam,
                           jac=lambda x: rosen2(x)[1])

    def threaded(n_threads):
        opts = dict(options, n_threads=n_threads)
        suffix = "1 thread" if n_threads == 1 else f"{n_threads} threads"
        return {
            f"minimize_batch, C objective, {suffix}": (
                lambda: fastopt.minimize_batch(llc, X0, method="adam", options=opts), m),
            f"minimize_batch, block C objective, {suffix}": (
                lambda: fastopt.minimize_batch(block_llc, X0, method="adam", options=opts), m),
            f"block SIMD floor (plain C), {suffix}": (
                lambda: block_floor_adam(X0.copy(), n_threads=n_threads), m),
        }

    return {
        **threaded(1),
        **threaded(2),
        "minimize_batch, vectorised NumPy objective": (
            lambda: fastopt.minimize_batch(rosen2_rows, X0, jac=True,
                                           options=dict(options, n_threads=1)), m),
        "vectorised NumPy Adam": (lambda: numpy_adam_rows(X0), m),
        "plain scalar C loop, 1 thread": (
            lambda: plain_c_adam(X0.copy()), m),
        "Python loop of scipy.optimize.minimize": (scipy_loop, m_scipy),
    }


def c_level_marginal(llc, repeats):
    """(seconds per iteration, seconds of fixed cost) of fastopt.minimize with a C objective,
    from back-to-back (warm) calls of ITERS and 10 * ITERS iterations."""
    options = {"lr": LR, "maxiter": ITERS, "gtol": 0.0}
    long_options = dict(options, maxiter=10 * ITERS)
    times = interleaved_times({
        "short": lambda: fastopt.minimize(llc, X_START, options=options),
        "long": lambda: fastopt.minimize(llc, X_START, options=long_options),
    }, 5 * repeats)
    short, long = (float(np.median(times[k])) for k in ("short", "long"))
    per_iteration = (long - short) / (9 * ITERS)
    return per_iteration, short - per_iteration * ITERS


CALLS = 1000  # minimize calls per round of call_costs


def call_costs(llc, repeats, calls=CALLS):
    """Microseconds per ``minimize`` call with ``maxiter=1`` on 2 variables (two evaluations,
    one update: the fixed cost of a call), median of ``repeats`` interleaved rounds of
    ``calls`` calls: fastopt with a Python fun (jac=True), with a C objective and through
    ``scipy.optimize.minimize``, SciPy's L-BFGS-B on the same call, and the fun's two calls
    alone."""
    x0 = np.array(X_START)
    options = {"maxiter": 1}

    def repeated(call):
        def run():
            for _ in range(calls):
                call()
        return run

    variants = {
        "fastopt.minimize, Python fun (jac=True)": lambda: fastopt.minimize(
            rosen2, x0, jac=True, options=options),
        "fastopt.minimize, LowLevelCallable": lambda: fastopt.minimize(
            llc, x0, options=options),
        "scipy.optimize.minimize(method=fastopt.adam)": lambda: scipy_minimize(
            rosen2, x0, method=fastopt.adam, jac=True, options=options),
        "scipy.optimize.minimize(method=\"L-BFGS-B\")": lambda: scipy_minimize(
            rosen2, x0, method="L-BFGS-B", jac=True, options=options),
        "the Python fun alone (its 2 calls)": lambda: (rosen2(x0), rosen2(x0)),
    }
    times = interleaved_times({k: repeated(f) for k, f in variants.items()}, repeats)
    return {k: float(np.median(t)) / calls * 1e6 for k, t in times.items()}


def _medians(variants, repeats):
    times = interleaved_times({k: f for k, (f, _) in variants.items()}, repeats)
    return {k: float(np.median(times[k])) for k in variants}


def run(repeats=5, m=10000, m_scipy=10, file=None):
    """Print both tables (medians of ``repeats`` interleaved rounds); returns
    ``{"ns_per_iteration": {variant: ns}, "problems_per_second": {variant: rate},
    "us_per_call": {variant: us}}``."""
    file = sys.stdout if file is None else file
    llc = fastopt.problems.rosenbrock_lowlevel()
    started = time.perf_counter()

    one = one_problem_variants(llc)
    times = _medians(one, repeats)
    floor = times["plain C loop"] / (100 * ITERS)
    print(f"One problem: 2-D Rosenbrock, Adam, {ITERS} iterations; median of {repeats} "
          "interleaved rounds", file=file)
    print(f"  {'variant':<40} {'ns/iter':>10} {'vs plain C':>11}", file=file)
    ns = {}
    for name, (_, runs) in one.items():
        per_iter = times[name] / (runs * ITERS)
        ns[name] = per_iter * 1e9
        print(f"  {name:<40} {per_iter * 1e9:10.1f} {per_iter / floor:10.2f}x", file=file)
    marginal, overhead = c_level_marginal(llc, repeats)
    ns["C-level loop, per iteration"] = marginal * 1e9
    print(f"  {'C-level loop, per iteration (*)':<40} {marginal * 1e9:10.1f} "
          f"{marginal / floor:10.2f}x", file=file)
    print(f"  (*) without the fixed cost of a fastopt.minimize call, {overhead * 1e6:.1f} us "
          "warm: back-to-back calls of 1x and 10x the iterations", file=file)

    calls = call_costs(llc, repeats)
    lbfgsb = calls['scipy.optimize.minimize(method="L-BFGS-B")']
    print(f"\nminimize call, maxiter=1, 2 variables: us per call, median of {repeats} "
          f"interleaved rounds of {CALLS} calls", file=file)
    for name, us in calls.items():
        print(f"  {name:<44} {us:8.2f} us {us / lbfgsb:8.3f}x L-BFGS-B", file=file)

    batch = batch_variants(llc, m, m_scipy)
    times = _medians(batch, repeats)
    rates = {name: runs / times[name] for name, (_, runs) in batch.items()}
    scipy_rate = rates["Python loop of scipy.optimize.minimize"]
    print(f"\n{m} problems (the scipy loop: {m_scipy} of them), {ITERS} iterations each; "
          f"median of {repeats} rounds", file=file)
    print(f"  {'variant':<44} {'problems/s':>12} {'vs scipy loop':>14}", file=file)
    for name, rate in rates.items():
        print(f"  {name:<44} {rate:12.0f} {rate / scipy_rate:13.0f}x", file=file)
    print(f"  (block SIMD floor: {block_floor_simd()} instructions)", file=file)
    c_rate = rates["plain scalar C loop, 1 thread"]
    print(f"\n  C objective, 1 thread, vs plain scalar C loop: "
          f"{rates['minimize_batch, C objective, 1 thread'] / c_rate:.2f}x", file=file)
    for suffix in ("1 thread", "2 threads"):
        floor = rates[f"block SIMD floor (plain C), {suffix}"]
        print(f"  block C objective vs block SIMD floor, {suffix}: "
              f"{rates[f'minimize_batch, block C objective, {suffix}'] / floor:.2f}x "
              f"(C objective: {rates[f'minimize_batch, C objective, {suffix}'] / floor:.2f}x)",
              file=file)
    numpy_rate = rates["vectorised NumPy Adam"]
    print(f"  vectorised objective vs vectorised NumPy Adam: "
          f"{rates['minimize_batch, vectorised NumPy objective'] / numpy_rate:.2f}x", file=file)
    from fastopt._bench_lbfgs import run as run_lbfgs  # (it imports this module)

    lbfgs = run_lbfgs(repeats=repeats, m=m, file=file)
    print(f"\n({time.perf_counter() - started:.0f} s)", file=file)
    return {"ns_per_iteration": ns, "problems_per_second": rates, "us_per_call": calls,
            "lbfgs": lbfgs}
