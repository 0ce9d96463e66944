"""The optimizer race: the classic methods (or every optimizer) on one test problem, through
``fastopt.minimize``.

Each racer is a fastopt method plus the gradient it sees: GD the exact gradient, SGD a very
noisy one (the gradient of "one sample"), mini-batch SGD a less noisy one (noise divided by
sqrt(16), a batch of 16), the others the exact gradient.

A racer's row depends only on (problem, racer, seed, options): each noisy racer draws its noise
from its own generator, seeded from the seed *and the racer's name* (never from its position in
``methods``), so ``--methods sgd`` and ``--methods gd,sgd`` give the same SGD row.

The default budget and learning rates are measured, not guessed: :func:`sweep_lr` runs every
racer over a grid of learning rates (all of them at once, with ``minimize_batch``), and
:func:`robust_lr` picks the rate whose *worse neighbour* on the grid (x/1.47 and x*1.47) still
arrives soonest (or, if none arrives, ends closest to the minimum), so that the default is not
balanced on the edge of divergence.
``DEFAULT_LR`` below is what ``python -m fastopt lr-table --race`` prints (a test checks that
they agree on Rosenbrock). :func:`lr_table` does the same for ``fastopt.minimize``'s methods on
every deterministic problem: the learning rates that converge, the README's table.
"""

import math
import numbers
import time
import zlib
from dataclasses import dataclass

import numpy as np

from fastopt import _registry, problems
from fastopt._driver import minimize
from fastopt._validation import check_int

# key: (label, fastopt method, gradient: "exact" | "sample" | "batch"), from the optimizer
# records (fastopt/_registry.py), in their order.
RACERS = {key: (racer.label, record.method, racer.gradient)
          for key, (record, racer) in _registry.RACERS.items()}
BATCH = 16

# The default race: the classic methods, a table and a picture one can read (ten lines, ten
# colours). ``methods="all"`` (``--methods all``) races every optimizer in the records.
DEFAULT_RACERS = ("gd", "sgd", "minibatch", "momentum", "nag", "adagrad", "rmsprop", "adadelta",
                  "adam", "adamw")
ALL = "all"
NOISE_SCALE = {"exact": 0.0, "sample": 1.0, "batch": 1 / math.sqrt(BATCH)}

# The per-component standard deviation of the "one sample" gradient noise on each problem
# (about the gradient's typical size there).
SAMPLE_NOISE = {"rosenbrock": 20.0, "beale": 2.0, "booth": 5.0, "himmelblau": 10.0,
                "saddle": 0.5, "valley": 0.5, "noisy_rosenbrock": 20.0}

# The default budget of each problem, and f - f_min counted as arrival.
DEFAULT_STEPS = {"rosenbrock": 5000, "beale": 2000, "booth": 500, "himmelblau": 500,
                 "saddle": 200, "valley": 1000, "noisy_rosenbrock": 5000}
DEFAULT_TOL = 1e-4
MAX_STEPS = 100_000

# The grid the learning rates are measured on: 6 per decade from 1e-5 to 10 (ratio 1.47).
LR_GRID = np.geomspace(1e-5, 10.0, 37)

# Measured by race_lr (robust_lr over LR_GRID at DEFAULT_STEPS, arrival at DEFAULT_TOL, seeds
# 0-2 for the noisy racers): ``python -m fastopt lr-table --race`` prints it. Kept in each
# optimizer's record (``Racer.race_lr``); problem -> racer key -> rate.
DEFAULT_LR = {name: {key: racer.race_lr[name] for key, (_, racer) in _registry.RACERS.items()}
              for name in DEFAULT_STEPS}


def racer_seed(seed, key):
    """The noise seed of racer ``key``: from (seed, a stable hash of the racer's name).

    ``zlib.crc32`` rather than ``hash()``: Python salts string hashes per process.
    """
    return np.random.SeedSequence([seed, zlib.crc32(key.encode())])


def check_seed(seed):
    """``seed`` as a non-negative int (fastopt._validation.check_int); ``ValueError`` (naming
    ``seed``) otherwise, which the command line shows as a usage error."""
    try:
        return check_int("seed", seed, low=0)
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def racer_keys(methods):
    """The racer keys ``methods`` names: None gives :data:`DEFAULT_RACERS`, ``"all"`` (alone, as
    a string or a one-item list) every racer in the records' order, a comma-separated string
    or a sequence its keys as given (checked by :func:`check_race_arguments`)."""
    if methods is None:
        return list(DEFAULT_RACERS)
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    try:
        methods = [str(m) for m in methods]
    except TypeError:
        raise TypeError(f"methods must be a list of racer names or a comma-separated string, "
                        f"got {methods!r}") from None
    if ALL in methods:
        if len(methods) > 1:
            raise ValueError(f"methods: {ALL!r} races every optimizer and takes no others, "
                             f"got {','.join(methods)}")
        return list(RACERS)
    return methods


def check_race_arguments(problem_name, methods=None, steps=None, lr=None, seed=0, start=None,
                         tol=DEFAULT_TOL):
    """Validate the race's arguments; returns them normalised.

    Returns ``(problem, methods, steps, rates, seed, x0, tol)``. Every message starts with the
    argument's name (the command line puts ``--`` in front).

    Raises
    ------
    ValueError
        On an unknown problem or racer, a duplicate racer, a step count outside
        [1, ``MAX_STEPS``], a learning rate that is not a finite number > 0, a negative seed, a
        start point of the wrong length or not finite, a tolerance that is not finite and > 0.
    """
    if problem_name not in problems.PROBLEMS:
        raise ValueError(f"problem: unknown {problem_name!r}; choose from "
                         f"{', '.join(problems.PROBLEMS)}")
    problem = problems.get(problem_name)
    methods = racer_keys(methods)
    unknown = [m for m in methods if m not in RACERS]
    if unknown or not methods:
        raise ValueError(f"methods: unknown {unknown or 'empty list'}; choose from "
                         f"{','.join(RACERS)} or {ALL}")
    duplicates = sorted({m for m in methods if methods.count(m) > 1})
    if duplicates:
        raise ValueError(f"methods: {','.join(duplicates)} given twice")
    steps = DEFAULT_STEPS[problem_name] if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) \
            or not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be an integer from 1 to {MAX_STEPS}, got {steps!r}")
    rates = dict(DEFAULT_LR[problem_name])
    for key, rate in (lr or {}).items():
        if key not in RACERS:
            raise ValueError(f"lr: unknown method {key!r}; choose from {','.join(RACERS)}")
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) \
                or not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"lr: the rate of {key} must be a finite number > 0, got {rate!r}")
        rates[key] = float(rate)
    seed = check_seed(seed)
    if start is None:
        x0 = problem.x0
    else:
        x0 = np.asarray(start, dtype=float)
        if x0.shape != (problem.n,) or not np.all(np.isfinite(x0)):
            raise ValueError(f"start must be {problem.n} finite numbers such as -1.2,1, got "
                             f"{','.join(f'{v:g}' for v in np.ravel(x0))}")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) \
            or not (math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a finite number > 0, got {tol!r}")
    return problem, methods, int(steps), rates, seed, x0, float(tol)


@dataclass
class RaceResult:
    key: str
    label: str
    lr: float
    path: np.ndarray  # (nit + 1, n): x0 and every iterate
    values: np.ndarray  # f along the path
    final_loss: float
    distance: float  # to the nearest known minimiser
    iterations_to_tol: object  # first step from which f - f_min <= tol to the end, or None
    seconds: float
    status: int = 1  # minimize's status: 3 when the run met a NaN or inf (diverged)

    @property
    def reached(self):
        return self.iterations_to_tol is not None

    @property
    def diverged(self):
        return self.status == 3 or not math.isfinite(self.final_loss)

    @property
    def outcome(self):
        """What the table says: "reached in N steps", "not reached (distance d)", "diverged"."""
        if self.reached:
            return f"reached in {self.iterations_to_tol} steps"
        if self.diverged:
            return "diverged (overflow)"
        return f"not reached (distance {self.distance:.2g})"


def _racer_gradient(problem, problem_name, key, seed):
    """The gradient racer ``key`` sees, with noise from its own generators only."""
    problem_stream, racer_stream = racer_seed(seed, key).spawn(2)
    if "base" in problem.extra:  # a noisy problem: its noise too is the racer's own
        problem = problems.noisy(problem.extra["base"], problem.extra["scale"],
                                 seed=problem_stream)
    scale = NOISE_SCALE[RACERS[key][2]]
    if scale == 0:
        return problem.grad
    return problems.noisy(problem, SAMPLE_NOISE[problem_name] * scale, seed=racer_stream).grad


def run_race(problem_name="rosenbrock", methods=None, steps=None, lr=None, seed=0, start=None,
             tol=DEFAULT_TOL, schedule=None):
    """Race ``methods`` on a problem: keys of ``RACERS`` (a list, or one comma-separated
    string); the default, None, races the classic methods (:data:`DEFAULT_RACERS`) and
    ``"all"`` every optimizer.

    Returns the problem and a list of :class:`RaceResult`, in the order of ``methods`` (see
    :func:`ranked` for the table's order). ``steps`` defaults to the problem's budget
    (``DEFAULT_STEPS``); ``lr`` maps racer keys to learning rates overriding the measured
    defaults (``DEFAULT_LR``); ``seed`` (a non-negative int) seeds each noisy racer's own
    generator together with its name; ``start`` overrides the problem's start point; ``tol``
    is the gap ``f - f_min`` that counts as arrival; ``schedule`` names a learning-rate
    schedule from :data:`SCHEDULES` (default none: constant rates) that starts from each
    racer's rate. Raises ``ValueError`` on bad arguments (see :func:`check_race_arguments`
    and :func:`check_schedule`).
    """
    schedule = check_schedule(schedule)
    problem, methods, steps, rates, seed, x0, tol = check_race_arguments(
        problem_name, methods, steps, lr, seed, start, tol)
    factory = schedule_factory(schedule, steps)
    results = []
    for key in methods:
        label, method, _ = RACERS[key]
        jac = _racer_gradient(problem, problem_name, key, seed)
        began = time.perf_counter()
        with np.errstate(all="ignore"):  # a diverging racer ends with status 3, not warnings
            res = minimize(problem.f, x0, method=method, jac=jac, bounds=problem.bounds,
                           options={"lr": rates[key], "maxiter": steps, "gtol": 0.0,
                                    "return_all": True,
                                    **({"lr_scheduler": factory} if factory else {})})
            seconds = time.perf_counter() - began
            path = np.array(res.allvecs)
            values = problem.f(path)
            distance = problem.distance_to_minimum(res.x)
        results.append(RaceResult(
            key, label, rates[key], path, values, float(res.fun), distance,
            arrival(values - problem.f_min, tol), seconds, int(res.status)))
    return problem, results


def arrival(gaps, tol):
    """The first step from which ``gaps`` stays <= ``tol`` to the end (None if it ends above):
    a noisy racer passing through the target by chance has not arrived."""
    above = np.flatnonzero(~(np.asarray(gaps) <= tol))
    if above.size == 0:
        return 0
    return None if above[-1] == len(gaps) - 1 else int(above[-1] + 1)


def ranked(results):
    """The results in the table's order: arrivals by steps to arrival, then the others by
    final loss (diverged racers last)."""
    def order(r):
        if r.reached:
            return (0, r.iterations_to_tol, r.final_loss)
        if r.diverged:
            return (2, 0, 0.0)
        return (1, r.final_loss, 0.0)

    return sorted(results, key=order)


def format_table(problem, results, steps, tol, schedule=None):
    """The race table as text, ranked (see :func:`ranked`)."""
    lines = [f"{problem.name} ({problem.description}), {steps} steps from "
             f"({', '.join(f'{v:g}' for v in results[0].path[0])}); reached: "
             f"f - f_min <= {tol:g} from that step on", ""]
    if schedule not in (None, "none"):
        lines[1:1] = [f"learning-rate schedule: {schedule} ({SCHEDULES[schedule]})"]
    width = max(15, *(len(r.label) for r in results))  # ("Schedule-free AdamW")
    header = (f"{'rank':>4}  {'method':<{width}} {'lr':>8}  {'result':<34} {'final loss':>11} "
              f"{'time':>9}")
    lines += [header, "-" * len(header)]
    for rank, r in enumerate(ranked(results), 1):
        lines.append(f"{rank:>4}  {r.label:<{width}} {r.lr:>8.3g}  {r.outcome:<34} "
                     f"{r.final_loss:>11.3g} {r.seconds * 1e3:>7.0f}ms")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Measuring learning rates: many at once, with minimize_batch (one row per learning rate).

def sweep_lr(problem_name, method, lrs=LR_GRID, steps=None, noise=0.0, seeds=(0,), tol=None):
    """How ``method`` does from the problem's start with each learning rate in ``lrs``.

    Without ``tol``: the final gap ``f(x) - f_min`` after ``steps`` updates. With ``tol``: a
    score, the step from which the gap stays <= ``tol`` (see :func:`arrival`), or, for a run
    that does not arrive, ``steps + 1`` plus its final gap (so it ranks after every arrival,
    the closer ones first). Both are inf where the run diverged, and the worst over ``seeds``
    when the gradient is noisy (``noise``: the per-component standard deviation).

    All the rates (and seeds) run together as the rows of one :func:`fastopt.minimize_batch`
    call, with the problem's bounds and no early stop; the objective records the gap of each
    row at each evaluation (the rows' ids ride along as a per-problem argument).
    """
    from fastopt._minimize_batch import minimize_batch

    problem = problems.get(problem_name)
    steps = DEFAULT_STEPS[problem_name] if steps is None else steps
    lrs = np.asarray(lrs, dtype=float)
    seeds = list(seeds) if noise > 0 else [0]
    rates = np.repeat(lrs[None, :], len(seeds), axis=0).ravel()
    rng = np.random.default_rng(racer_seed(seeds[0], f"sweep:{problem_name}:{method}"))
    gaps = np.full((steps + 1, rates.size), np.inf)
    calls = np.zeros(rates.size, dtype=np.intp)

    def fun(X, ids):
        f = problem.f(X)
        gaps[calls[ids], ids] = f - problem.f_min
        calls[ids] += 1
        g = problem.grad(X)
        if noise > 0:
            g = g + noise * rng.standard_normal(g.shape)
        return f, g

    X0 = np.repeat(problem.x0[None, :], rates.size, axis=0)
    with np.errstate(all="ignore"):
        res = minimize_batch(fun, X0, method=method, jac=True, args=(np.arange(rates.size),),
                             bounds=problem.bounds,
                             options={"lr": rates, "maxiter": steps, "gtol": 0.0})
        final = np.where(res.status == 3, np.inf, problem.f(res.x) - problem.f_min)
    if tol is None:
        score = final
    else:
        score = np.array([np.inf if res.status[j] == 3 else
                          (lambda k: steps + 1 + final[j] if k is None else k)(
                              arrival(gaps[:, j], tol)) for j in range(rates.size)])
    return np.max(score.reshape(len(seeds), lrs.size), axis=0)


def robust_lr(lrs, scores, floor=1e-12):
    """The learning rate whose worse neighbour (one grid step down or up) scores best (lower
    is better: steps to arrival, or final gap): robust to a factor ~1.5 either way, never next
    to a rate that diverges. Scores below ``floor`` (where rounding decides) count as equal;
    among equal rates, the middle of the longest run of them."""
    scores = np.maximum(np.asarray(scores, dtype=float), floor)
    padded = np.concatenate([[np.inf], scores, [np.inf]])
    worst = np.maximum(np.maximum(padded[:-2], padded[1:-1]), padded[2:])
    best = worst == worst.min()
    runs, start = [], None
    for i, flag in enumerate(np.append(best, False)):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((i - start, start, i - 1))
            start = None
    length, first, last = max(runs)
    return float(lrs[(first + last) // 2])


def race_lr(problem_name, steps=None, seeds=(0, 1, 2)):
    """The measured default learning rate of every racer on a problem (``robust_lr``)."""
    rates = {}
    for key, (_, method, gradient) in RACERS.items():
        noise = SAMPLE_NOISE[problem_name] * NOISE_SCALE[gradient]
        scores = sweep_lr(problem_name, method, LR_GRID, steps, noise, seeds, DEFAULT_TOL)
        rates[key] = float(f"{robust_lr(LR_GRID, scores):.2g}")
    return rates


# Deterministic problems of the lr table (the noisy one is Rosenbrock again).
LR_TABLE_PROBLEMS = ("rosenbrock", "beale", "booth", "himmelblau", "valley", "saddle")
LR_TABLE_STEPS = 5000
LR_TABLE_TOL = 1e-6


def _longest_run(flags):
    """(first, last) indices of the longest run of True in ``flags``, or None."""
    best, run = None, 0
    for i, good in enumerate(flags):
        run = run + 1 if good else 0
        if good and (best is None or run > best[1] - best[0] + 1):
            best = (i - run + 1, i)
    return best


def lr_table(problem_names=LR_TABLE_PROBLEMS, methods=None, steps=LR_TABLE_STEPS,
             tol=LR_TABLE_TOL, lrs=LR_GRID):
    """The learning rates with which each of ``fastopt.minimize``'s methods converges on each
    problem: ``f - f_min <= tol`` after ``steps`` updates from the problem's start.

    Returns ``{method: {"ranges": {problem: (lowest, highest) or None}, "start": (lr, k)}}``:
    per problem the longest run of converging rates on the grid ``lrs`` (None: none
    converged); ``start`` is the rate that converges on the most problems (``k`` of them; the
    middle of the longest run of such rates).
    """
    if methods is None:  # one row per update rule (gd and sgd are one)
        methods = [record.method for record in _registry.RECORDS]
    lrs = np.asarray(lrs, dtype=float)
    table = {}
    for method in methods:
        ok = {name: sweep_lr(name, method, lrs, steps) <= tol for name in problem_names}
        ranges = {}
        for name, flags in ok.items():
            run = _longest_run(flags)
            ranges[name] = None if run is None else (float(lrs[run[0]]), float(lrs[run[1]]))
        count = np.sum(list(ok.values()), axis=0)
        first, last = _longest_run(count == count.max())
        table[method] = {"ranges": ranges, "start": (float(lrs[(first + last) // 2]),
                                                     int(count.max()))}
    return table


def format_lr_table(table, steps=LR_TABLE_STEPS, tol=LR_TABLE_TOL):
    """The lr table as Markdown (what ``python -m fastopt lr-table`` prints)."""
    names = list(next(iter(table.values()))["ranges"])
    lines = [f"Learning rates that converge: f - f_min <= {tol:g} after {steps} steps from the "
             f"problem's start (grid: 6 per decade).", "",
             "| method | " + " | ".join(names) + " | start with |",
             "|---" * (len(names) + 2) + "|"]
    for method, entry in table.items():
        cells = ["none" if r is None else
                 (f"{r[0]:.2g}" if r[0] == r[1] else f"{r[0]:.2g} - {r[1]:.2g}")
                 for r in entry["ranges"].values()]
        lr, k = entry["start"]
        record = _registry.BY_METHOD.get(method)
        label = ", ".join(sorted(record.methods)) if record is not None else method
        start = "-" if k == 0 else f"{lr:.2g} ({k}/{len(names)})"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {start} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules (race --schedule): what a schedule does to the paths. Each starts
# from (or peaks at) the racer's measured rate and spans the race's steps; the drivers step it
# once per iteration (options lr_scheduler), ReduceLROnPlateau with the current f.

SCHEDULES = {
    "none": "constant learning rates",
    "cosine": "CosineAnnealingLR(T_max=steps): cosine from lr down to 0",
    "warmup-cosine": "LinearLR from lr/100 over the first tenth of the steps, then "
                     "CosineAnnealingLR down to 0",
    "onecycle": "OneCycleLR(max_lr=lr, total_steps=steps): up from lr/25 over 30% of the "
                "steps, then down to lr/250000; the momentum (beta1) cycled where there is one",
    "step": "StepLR(step_size=steps//4, gamma=0.3)",
    "exponential": "ExponentialLR: lr times 0.001 at the last step",
    "plateau": "ReduceLROnPlateau(factor=0.5, patience=steps//50) on f",
}


def check_schedule(schedule):
    """The schedule's name (``None`` is ``"none"``); ValueError naming the known ones."""
    if schedule is None:
        return "none"
    if not isinstance(schedule, str) or schedule not in SCHEDULES:
        raise ValueError(f"schedule: unknown {schedule!r}; choose from "
                         f"{', '.join(SCHEDULES)}")
    return schedule


def _cycles_momentum(opt):
    # OneCycleLR cycles a momentum that is on (GD's momentum 0 stays 0: GD stays GD) or beta1.
    group = opt.param_groups[0]
    return "betas" in group or group.get("momentum", 0) > 0


def schedule_factory(schedule, steps):
    """The drivers' ``lr_scheduler`` factory of a race schedule over ``steps`` steps (None for
    ``"none"`` or a None ``steps``)."""
    from fastopt import lr_scheduler as ls

    if schedule in (None, "none") or steps is None:
        return None
    steps = int(steps)
    warm = max(1, steps // 10)
    factories = {
        "cosine": lambda opt: ls.CosineAnnealingLR(opt, T_max=steps),
        "warmup-cosine": lambda opt: ls.SequentialLR(
            opt, [ls.LinearLR(opt, start_factor=0.01, total_iters=warm),
                  ls.CosineAnnealingLR(opt, T_max=max(1, steps - warm))], milestones=[warm]),
        "onecycle": lambda opt: ls.OneCycleLR(
            opt, max_lr=opt.param_groups[0]["lr"], total_steps=steps,
            cycle_momentum=_cycles_momentum(opt)),
        "step": lambda opt: ls.StepLR(opt, step_size=max(1, steps // 4), gamma=0.3),
        "exponential": lambda opt: ls.ExponentialLR(opt, gamma=1e-3 ** (1.0 / steps)),
        "plateau": lambda opt: ls.ReduceLROnPlateau(opt, factor=0.5,
                                                    patience=max(1, steps // 50)),
    }
    return factories[schedule]
