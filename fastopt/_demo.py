"""The demo behind ``python -m fastopt``: the classic optimizers on one least-squares problem.

The problem is linear regression on seeded synthetic data, f(w) = ||X w - y||^2 / (2 m),
with features of different scales (condition number ~100), so the methods show their
character. GD, SGD and mini-batch SGD are the same class (``SGD``) fed the gradient of all
samples, one sample, or a batch of 32; the others use the full gradient. The learning rates
are hand-picked per method for this problem, as one would tune them (each optimizer's record,
``Racer.demo``).
"""

import time

import numpy as np

from fastopt._registry import RACERS

# Samples per gradient for each kind of racer: None = all.
BATCH = {"exact": None, "sample": 1, "batch": 32}

# (name, class, kwargs, samples per gradient), from the optimizer records: each racer's demo
# options, hand-picked for this problem as one would tune them.
METHODS = [(racer.label, record.cls, dict(racer.demo), BATCH[racer.gradient])
           for record, racer in RACERS.values()]


def make_problem(n_samples=1000, n_features=10, seed=0):
    """Seeded least-squares data ``(X, y, w_best)``; ``w_best`` solves it exactly."""
    rng = np.random.default_rng(seed)
    scales = np.geomspace(0.3, 3.0, n_features)  # feature scales: Hessian condition ~100
    X = rng.standard_normal((n_samples, n_features)) * scales
    w_true = rng.standard_normal(n_features)
    y = X @ w_true + 0.1 * rng.standard_normal(n_samples)
    w_best = np.linalg.lstsq(X, y, rcond=None)[0]
    return X, y, w_best


def loss(w, X, y):
    r = X @ w - y
    return 0.5 * float(r @ r) / len(y)


def gradient(w, X, y):
    return X.T @ (X @ w - y) / len(y)


def run_method(cls, kwargs, batch, X, y, steps, seed):
    """Run one optimizer from w = 0; returns (w, seconds). ``seed``: an int or a
    ``numpy.random.SeedSequence`` (the samples drawn)."""
    rng = np.random.default_rng(seed)
    w = np.zeros(X.shape[1])
    opt = cls(w, **kwargs)
    start = time.perf_counter()
    for _ in range(steps):
        if batch is None:
            opt.step(gradient(w, X, y))
        else:
            rows = rng.integers(0, len(y), size=batch)
            opt.step(gradient(w, X[rows], y[rows]))
    return w, time.perf_counter() - start


def race_table(steps=500, seed=0):
    """Run every method; returns rows (name, class, kwargs, loss, distance, seconds)."""
    from fastopt._race import check_seed, racer_seed

    seed = check_seed(seed)
    X, y, w_best = make_problem(seed=seed)
    rows = []
    for name, cls, kwargs, batch in METHODS:
        # each method samples from its own stream: (seed, its name), not its position
        w, seconds = run_method(cls, kwargs, batch, X, y, steps, racer_seed(seed, name))
        rows.append((name, cls.__name__, kwargs, loss(w, X, y), float(np.linalg.norm(w - w_best)),
                     seconds))
    return rows, loss(w_best, X, y), loss(np.zeros_like(w_best), X, y)


def _batch_text(batch):
    return "all data" if batch is None else ("1 sample" if batch == 1 else f"{batch} samples")


def print_table(steps=500, seed=0, file=None):
    rows, best, initial = race_table(steps, seed)
    print(f"\nLeast squares, 1000 samples x 10 features, {steps} steps from w = 0 "
          f"(initial loss {initial:.4f}, optimum {best:.6f}):\n", file=file)
    header = (f"{'method':<15} {'fastopt class':<36} {'gradient of':<11} {'final loss':>11} "
              f"{'|w - w*|':>10} {'time':>9}")
    print(header, file=file)
    print("-" * len(header), file=file)
    for (name, cls, kwargs, final, distance, seconds), (*_, batch) in zip(rows, METHODS):
        call = f"{cls}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"
        print(f"{name:<15} {call:<36} {_batch_text(batch):<11} {final:>11.6f} {distance:>10.2e} "
              f"{seconds * 1e3:>7.1f}ms", file=file)
    return rows
