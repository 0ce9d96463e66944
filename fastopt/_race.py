"""The optimizer race: every classic method on one test problem, through ``fastopt.minimize``.

Each racer is a fastopt method plus the gradient it sees: GD the exact gradient, SGD a very
noisy one (the gradient of "one sample"), mini-batch SGD a less noisy one (noise divided by
sqrt(16), a batch of 16), the others the exact gradient. The default learning rates below were
chosen per problem so that each method shows its character in the default number of steps --
not tuned to make any one of them win.
"""

import math
import time
from dataclasses import dataclass

import numpy as np

from fastopt import problems
from fastopt._driver import minimize

# key: (label, fastopt method, gradient: "exact" | "sample" | "batch")
RACERS = {
    "gd": ("GD", "gd", "exact"),
    "sgd": ("SGD", "sgd", "sample"),
    "minibatch": ("Mini-batch SGD", "sgd", "batch"),
    "momentum": ("Momentum", "momentum", "exact"),
    "nag": ("NAG", "nag", "exact"),
    "adagrad": ("Adagrad", "adagrad", "exact"),
    "rmsprop": ("RMSprop", "rmsprop", "exact"),
    "adadelta": ("Adadelta", "adadelta", "exact"),
    "adam": ("Adam", "adam", "exact"),
    "adamw": ("AdamW", "adamw", "exact"),
}
BATCH = 16

# Default learning rate of each racer on each problem, and the per-component standard deviation
# of the "one sample" gradient noise there (about the gradient's typical size).
DEFAULT_LR = {
    "rosenbrock": {"gd": 1e-3, "sgd": 2e-4, "minibatch": 1e-3, "momentum": 1e-3, "nag": 1e-3,
                   "adagrad": 0.5, "rmsprop": 1e-2, "adadelta": 1.0, "adam": 0.05,
                   "adamw": 0.05},
    "beale": {"gd": 1e-2, "sgd": 2e-3, "minibatch": 1e-2, "momentum": 1e-3, "nag": 1e-3,
              "adagrad": 0.5, "rmsprop": 1e-2, "adadelta": 1.0, "adam": 0.05, "adamw": 0.05},
    "booth": {"gd": 0.02, "sgd": 0.01, "minibatch": 0.02, "momentum": 0.01, "nag": 0.01,
              "adagrad": 2.0, "rmsprop": 0.1, "adadelta": 1.0, "adam": 0.3, "adamw": 0.3},
    "himmelblau": {"gd": 0.01, "sgd": 2e-3, "minibatch": 0.01, "momentum": 2e-3, "nag": 2e-3,
                   "adagrad": 0.5, "rmsprop": 0.05, "adadelta": 1.0, "adam": 0.1,
                   "adamw": 0.1},
    "saddle": {"gd": 0.05, "sgd": 0.05, "minibatch": 0.05, "momentum": 0.02, "nag": 0.02,
               "adagrad": 0.1, "rmsprop": 0.01, "adadelta": 1.0, "adam": 0.02, "adamw": 0.02},
    "valley": {"gd": 0.9, "sgd": 0.3, "minibatch": 0.9, "momentum": 0.2, "nag": 0.2,
               "adagrad": 1.0, "rmsprop": 0.05, "adadelta": 1.0, "adam": 0.1, "adamw": 0.1},
    "noisy_rosenbrock": {"gd": 1e-3, "sgd": 2e-4, "minibatch": 1e-3, "momentum": 1e-3,
                         "nag": 1e-3, "adagrad": 0.5, "rmsprop": 1e-2, "adadelta": 1.0,
                         "adam": 0.05, "adamw": 0.05},
}
SAMPLE_NOISE = {"rosenbrock": 20.0, "beale": 2.0, "booth": 5.0, "himmelblau": 10.0,
                "saddle": 0.5, "valley": 0.5, "noisy_rosenbrock": 20.0}


@dataclass
class RaceResult:
    key: str
    label: str
    lr: float
    path: np.ndarray  # (nit + 1, n): x0 and every iterate
    values: np.ndarray  # f along the path
    final_loss: float
    distance: float  # to the nearest known minimiser
    iterations_to_tol: object  # int, or None when the tolerance was not reached
    seconds: float


def run_race(problem_name, methods=None, steps=500, lr=None, seed=0, start=None, tol=1e-4):
    """Race ``methods`` (keys of ``RACERS``; default all) on a problem.

    Returns the problem and a list of :class:`RaceResult`, in the order of ``methods``.
    ``lr`` maps racer keys to learning rates overriding the defaults; ``start`` overrides
    the problem's start point; ``tol`` is the gap ``f - f_min`` that counts as arrival.
    """
    problem = problems.get(problem_name)
    methods = list(RACERS) if methods is None else list(methods)
    rates = dict(DEFAULT_LR[problem_name], **(lr or {}))
    x0 = problem.x0 if start is None else np.asarray(start, dtype=float)
    results = []
    for i, key in enumerate(methods):
        label, method, gradient = RACERS[key]
        scale = {"exact": 0.0, "sample": 1.0, "batch": 1 / math.sqrt(BATCH)}[gradient]
        jac = problem.grad if scale == 0 else problems.noisy(
            problem, SAMPLE_NOISE[problem_name] * scale, seed=seed + i).grad
        began = time.perf_counter()
        res = minimize(problem.f, x0, method=method, jac=jac, bounds=problem.bounds,
                       options={"lr": rates[key], "maxiter": steps, "gtol": 0.0,
                                "return_all": True})
        seconds = time.perf_counter() - began
        path = np.array(res.allvecs)
        values = problem.f(path)
        arrived = np.flatnonzero(values - problem.f_min <= tol)
        results.append(RaceResult(
            key, label, rates[key], path, values, float(res.fun),
            problem.distance_to_minimum(res.x), int(arrived[0]) if arrived.size else None,
            seconds))
    return problem, results


def format_table(problem, results, steps, tol):
    """The race table as text."""
    lines = [f"{problem.name} ({problem.description}), {steps} steps from "
             f"({', '.join(f'{v:g}' for v in results[0].path[0])}):", ""]
    header = (f"{'method':<15} {'lr':>8} {'final loss':>12} {'dist. to min':>13} "
              f"{f'steps to f-f*<={tol:g}':>20} {'time':>9}")
    lines += [header, "-" * len(header)]
    for r in results:
        reached = "not reached" if r.iterations_to_tol is None else str(r.iterations_to_tol)
        lines.append(f"{r.label:<15} {r.lr:>8g} {r.final_loss:>12.4g} {r.distance:>13.4g} "
                     f"{reached:>20} {r.seconds * 1e3:>7.1f}ms")
    return "\n".join(lines)
