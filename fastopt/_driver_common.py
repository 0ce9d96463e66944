"""What the three drivers share: ``fastopt.minimize`` (fastopt/_driver.py),
``minimize_batch`` (fastopt/_minimize_batch.py) and ``minimize_minibatch``
(fastopt/_minibatch.py) read their common arguments and options here, so that an option means
the same thing, with the same checks and messages, in every driver. No driver imports
another's names.

Every check raises ``TypeError`` or ``ValueError`` naming the argument or option and the bad
value, and modifies nothing.
"""

import functools
import inspect
import math
import numbers
import time
import warnings

import numpy as np
from scipy import LowLevelCallable
from scipy.optimize import Bounds, OptimizeWarning

from fastopt._clipping import clip_settings
from fastopt._conventions import COUNT_MAX, bool_option, iteration_limit, scalar_value, \
    whole_number
from fastopt._loop import STATUS_CALLBACK, STATUS_CONVERGED, STATUS_MAXITER, STATUS_NONFINITE
from fastopt._fpenv import flush_requested
from fastopt._native import BLOCK_DOC, SCALAR_DOC, NativeObjective
from fastopt._openmp import effective_n_threads
from fastopt._validation import as_real_array, check_real, finite_float_copy

DEFAULT_MAXITER = 1000
DEFAULT_GTOL = 1e-5
INT_MAX = 2**31 - 1  # n of a C objective is an int

# The options every driver reads with read_options (each driver adds its own); the gradient
# clipping ones with clip_options.
CLIP_OPTIONS = ("max_grad_norm", "grad_norm_type", "clip_value")
COMMON_OPTIONS = ("maxiter", "gtol", "ftol", "xtol", "n_threads", "flush_subnormals",
                  *CLIP_OPTIONS)

STATUS_MESSAGES = {
    (STATUS_CONVERGED, "gtol"): "Optimization terminated successfully: the inf-norm of the "
                                "(projected) gradient is <= gtol.",
    (STATUS_CONVERGED, "ftol"): "Optimization terminated successfully: the relative "
                                "reduction of f is <= ftol.",
    (STATUS_CONVERGED, "xtol"): "Optimization terminated successfully: the step's inf-norm "
                                "is <= xtol.",
    (STATUS_MAXITER, None): "Maximum number of iterations has been exceeded.",
    (STATUS_NONFINITE, None): "Stopped: fun or jac returned a non-finite value (NaN or "
                              "inf); x is the last iterate where both were finite.",
    (STATUS_CALLBACK, None): "`callback` raised `StopIteration`.",
}

# ---------------------------------------------------------------------------------------------
# Options


def options_dict(options):
    """``options`` as a new dict (None: empty); TypeError unless it is a dict."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    return dict(options)


@functools.cache  # inspect.signature costs tens of microseconds, more than a small run
def _hyperparameter_names(cls):
    params = inspect.signature(cls.__init__).parameters
    return tuple(p for p in params
                 if p not in ("self", "params", "n_threads", "flush_subnormals"))


def split_hyperparameters(cls, options, known, caller, stacklevel):
    """The hyperparameters of ``cls`` found in ``options``; ``maximize`` is refused (the
    drivers minimize) and options that are neither hyperparameters nor ``known`` (the
    driver's own) give an OptimizeWarning, as SciPy's methods do."""
    hyper_names = _hyperparameter_names(cls)
    if "maximize" in options and bool_option("maximize", options["maximize"]):
        raise ValueError(f"{caller}() minimizes: maximize=True is not allowed (negate fun)")
    unknown = [k for k in options if k not in hyper_names and k not in known]
    if unknown:
        warnings.warn(f"Unknown solver options: {', '.join(map(str, unknown))}",
                      OptimizeWarning, stacklevel=stacklevel + 1)
    return {k: v for k, v in options.items() if k in hyper_names and k != "maximize"}


def n_threads_option(options):
    """The ``n_threads`` option resolved to a thread count, as every optimizer class resolves
    its ``n_threads`` (fastopt._openmp.effective_n_threads): None follows OpenMP, -1 all
    usable cores, -2 all but one, at most 1024, 0 an error (the message names n_threads)."""
    return effective_n_threads(scalar_value(options.get("n_threads")))


def flush_option(options):
    """Whether the run flushes subnormals to zero: the ``flush_subnormals`` option (a bool,
    default False; TypeError naming it otherwise) or the calling thread's
    ``fastopt.flush_subnormals()`` context."""
    return flush_requested(scalar_value(options.get("flush_subnormals", False)))


def read_options(cls, options, *, known, caller, stacklevel, tol=None,
                 default_maxiter=DEFAULT_MAXITER, default_gtol=DEFAULT_GTOL):
    """``(hyperparameters, n_threads, stopping)`` from a driver's options.

    ``stopping`` holds the validated ``maxiter`` (fastopt._conventions.iteration_limit),
    ``gtol``, ``ftol`` and ``xtol``. ``tol`` (the driver's argument, or the option ``tol``
    when ``known`` lists it, which wins, as ``scipy.optimize.minimize`` puts ``tol`` in the
    options with ``setdefault``) is the default of ``gtol``.
    ``known`` lists the driver's own options (COMMON_OPTIONS and more); any other option that
    is not a hyperparameter of ``cls`` warns.
    """
    hyper = split_hyperparameters(cls, options, known, caller, stacklevel + 1)
    if "tol" in known:
        tol = options.get("tol", tol)
    tol = scalar_value(tol)
    if tol is not None:
        default_gtol = check_real("tol", tol, "tolerance", low=0.0)
    stopping = {
        "maxiter": iteration_limit("maxiter", options.get("maxiter", default_maxiter)),
        "gtol": check_real("gtol", options.get("gtol", default_gtol), "tolerance", low=0.0),
        "ftol": check_real("ftol", options.get("ftol", 0.0), "tolerance", low=0.0),
        "xtol": check_real("xtol", options.get("xtol", 0.0), "tolerance", low=0.0),
    }
    return hyper, n_threads_option(options), stopping


def clip_options(options):
    """The gradient clipping the options ask for, as the loops take it (their ``clip``
    argument): None, or fastopt._clipping.ClipSettings. ``max_grad_norm`` (>= 0) scales each
    gradient (each problem's, in minimize_batch) to that ``grad_norm_type``-norm (default 2)
    when it is larger, as torch.nn.utils.clip_grad_norm_; then ``clip_value`` (>= 0) clamps
    it to [-clip_value, clip_value]. Only the update sees the clipped gradient."""
    return clip_settings(options)


# ---------------------------------------------------------------------------------------------
# Arguments


def check_fun(fun, native=True):
    """TypeError unless ``fun`` is callable (or, with ``native``, a LowLevelCallable)."""
    if callable(fun) or (native and isinstance(fun, LowLevelCallable)):
        return
    what = "callable or a scipy.LowLevelCallable" if native else "callable"
    raise TypeError(f"fun must be {what}, got {type(fun).__name__}")


def args_tuple(args):
    """``args`` as SciPy reads it: a tuple, or one extra argument."""
    return args if isinstance(args, tuple) else (args,)


def starting_point(x0, name="x0"):
    """A private, C-contiguous, 1-D copy of x0: float32 kept, other real dtypes float64."""
    arr = as_real_array(name, x0)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    return finite_float_copy(name, arr)


def callback_style(callback):
    """True for ``callback(intermediate_result)``, False for ``callback(xk)`` (SciPy's rule);
    TypeError unless ``callback`` is None or callable."""
    if callback is None:
        return False
    check_callback(callback)
    try:
        parameters = inspect.signature(callback).parameters
    except (TypeError, ValueError):  # builtins without a signature: old style
        return False
    return set(parameters) == {"intermediate_result"}


def check_callback(callback):
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")


def native_evaluation(fun, jac, args, n, name="x0", block=False):
    """The NativeObjective of a LowLevelCallable ``fun``, after checking what goes with it:
    ``jac`` True or None (the C function computes its gradient; a bool is taken as given),
    no ``args``, n an int; a block objective only where ``block`` (minimize_batch)."""
    objective = NativeObjective(fun)
    if objective.is_block and not block:
        raise ValueError(f"fun: a block LowLevelCallable ({BLOCK_DOC}) is for "
                         f"fastopt.minimize_batch; here fun must have the signature {SCALAR_DOC}")
    if isinstance(jac, np.ndarray) and jac.ndim == 0 and jac.dtype == bool:
        jac = bool(jac)
    if not (jac is None or isinstance(jac, (bool, np.bool_))):
        raise ValueError("jac: a LowLevelCallable fun computes its own gradient; pass jac=True "
                         "(or None)")
    if args:
        raise ValueError("args: a LowLevelCallable fun takes no args; pass data through its "
                         "user_data pointer")
    if n > INT_MAX:
        raise ValueError(f"{name}: a LowLevelCallable fun takes n as a C int; {n} variables "
                         "are too many")
    return objective


# ---------------------------------------------------------------------------------------------
# Bounds


def box_bounds(bounds, x):
    """Bounds of the n variables of x as two (n,) arrays of x's dtype (rounded inward), or
    (None, None) for no bounds: a ``scipy.optimize.Bounds`` whose ``lb`` and ``ub`` have 1 or
    n entries, or a sequence of n (min, max) pairs (None for no bound)."""
    if bounds is None:
        return None, None
    n = x.size
    if isinstance(bounds, Bounds):
        if np.size(bounds.lb) not in (1, n) or np.size(bounds.ub) not in (1, n):
            raise ValueError(f"bounds must have {n} entries (one per variable) or 1")
        lower, upper = (np.broadcast_to(_bound_array(b, name), (n,)).copy()
                        for b, name in ((bounds.lb, "bounds.lb"), (bounds.ub, "bounds.ub")))
    else:
        lower, upper = _bound_pairs(bounds, n)
    return finish_bounds(lower, upper, x.dtype)


def _bound_array(b, name):
    try:
        return np.asarray(b, dtype=float).reshape(-1) if np.ndim(b) <= 1 else \
            np.asarray(b, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must hold real numbers, got {b!r}") from None


def _bound_pairs(bounds, n):
    try:
        pairs = list(bounds)
    except TypeError:
        raise TypeError("bounds must be a scipy.optimize.Bounds or a sequence of "
                        f"(min, max) pairs, got {type(bounds).__name__}") from None
    if len(pairs) != n:
        raise ValueError(f"bounds has {len(pairs)} (min, max) pairs, x0 has {n} variables")
    lower, upper = np.empty(n), np.empty(n)
    for i, pair in enumerate(pairs):
        try:
            lo, hi = pair
        except (TypeError, ValueError):
            raise ValueError(f"bounds[{i}] must be a (min, max) pair, got {pair!r}") from None
        lower[i] = -np.inf if lo is None else _bound_value(lo, i)
        upper[i] = np.inf if hi is None else _bound_value(hi, i)
    return lower, upper


def _bound_value(value, i):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"bounds[{i}] must hold numbers or None, got {value!r}") from None


def finish_bounds(lower, upper, dtype):
    """Check float64 bound arrays of any shape (no NaN, lower <= upper); return them in
    ``dtype``, rounded inward, or (None, None) when nothing is bounded."""
    if np.isnan(lower).any() or np.isnan(upper).any():
        raise ValueError("bounds must not contain NaN")
    at = _first(lower > upper)
    if at is not None:
        raise ValueError(f"{_where(at)} has min {lower[at]} > max {upper[at]}")
    if np.all(np.isneginf(lower)) and np.all(np.isposinf(upper)):
        return None, None
    lower_r, upper_r = _inward(lower, dtype, np.inf), _inward(upper, dtype, -np.inf)
    # A box narrower than dtype's spacing (e.g. min == max == 0.1 in float32) holds no
    # value of dtype: every point x can take is outside it.
    at = _first(lower_r > upper_r)
    if at is not None:
        raise ValueError(f"{_where(at)} = ({float(lower[at])!r}, {float(upper[at])!r}) holds no "
                         f"{np.dtype(dtype).name} value (x's dtype)")
    return lower_r, upper_r


def _first(mask):
    """The index (a tuple) of mask's first True entry, or None."""
    bad = np.argwhere(mask)
    return tuple(int(k) for k in bad[0]) if bad.size else None


def _where(at):
    """The bound at index ``at`` (one problem's, or (problem, variable)) in words."""
    return f"bounds[{at[0]}]" if len(at) == 1 else f"bounds (problem {at[0]}, variable {at[1]})"


def _inward(bound, dtype, direction):
    """``bound`` in ``dtype``, moved one ulp inward where rounding put it outside the box."""
    rounded = np.array(bound, dtype=dtype, order="C")  # a copy: bound may be a view
    outside = (rounded < bound) if direction > 0 else (rounded > bound)
    rounded[outside] = np.nextafter(rounded[outside], dtype.type(direction))
    return rounded


def final_point(optimizer, x, lower=None, upper=None, status=None):
    """End a run: an optimizer that averages its iterates (the schedule-free ones: it has an
    ``eval`` method) puts its averaged point into ``x``, its parameter; the others leave the
    last iterate there. With bounds the average is in the box already (the loops project
    the points it averages: fastopt._kernels.project_rule); clipped against rounding.

    ``status``: the run's status, or each row's (``minimize_batch``: ``x`` is (m, n)). A run
    (row) that stopped on a non-finite f or g (status 3) keeps its last finite iterate, the
    point y where the reported ``fun`` and ``jac`` were evaluated: its average cannot be had,
    since the failed iteration's step already moved the state (z, the weights) past it, and
    the result's x, fun and jac then belong to one point.
    """
    to_eval = getattr(optimizer, "eval", None)
    if to_eval is None:
        return
    failed = None if status is None else np.asarray(status) == STATUS_NONFINITE
    if failed is not None and failed.all():  # (a single run's 0-d status too)
        return
    kept = x[failed].copy() if failed is not None and failed.any() else None
    to_eval()
    if lower is not None:
        np.clip(x, lower, upper, out=x)
    if kept is not None:
        x[failed] = kept


# ---------------------------------------------------------------------------------------------
# Progress (options disp, disp_every, progress) and learning-rate schedules (lr_scheduler)

# The options every driver reads with progress_options and scheduler_option.
TRAIN_OPTIONS = ("disp", "disp_every", "progress", "lr_scheduler")


def disp_level(disp):
    """``disp`` as a level: 0 (False) silent, 1 (True) a summary at the end, 2 also a line
    every ``disp_every`` iterations (epochs); a bool or an int >= 0 (larger ints are 2)."""
    if type(disp) is bool:
        return int(disp)
    value = scalar_value(disp)
    if isinstance(value, (bool, np.bool_)):
        return int(bool(value))
    if not isinstance(value, numbers.Integral):
        raise TypeError(f"Invalid disp: disp={disp!r} must be a bool or an int >= 0 "
                        "(0 silent, 1 a summary, 2 a line every disp_every iterations)")
    if value < 0:
        raise ValueError(f"Invalid disp: disp={disp!r} must be >= 0 (0 silent, 1 a summary, "
                         "2 a line every disp_every iterations)")
    return min(int(value), 2)


def progress_options(options, default_every):
    """``(level, every, bar)`` from the options ``disp``, ``disp_every`` (an int >= 1,
    default ``default_every``) and ``progress`` (a bool: a tqdm bar; ImportError with what to
    install when tqdm is missing, before anything runs)."""
    level = disp_level(options.get("disp", False))
    every = whole_number("disp_every", options.get("disp_every", default_every))
    bar = bool_option("progress", options.get("progress", False))
    if bar:
        _tqdm_class()
    return level, every, bar


def _tqdm_class():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError("options['progress']=True shows a tqdm progress bar, and tqdm is not "
                          "installed: pip install tqdm (or pip install 'fastopt[progress]'), "
                          "or use options['disp']=2 for printed progress lines") from None
    return tqdm


class Progress:
    """Progress of a run: a line every ``every`` iterations (epochs) at disp level 2, and a
    tqdm bar with ``bar``. The drivers make one only when something is shown
    (``make_progress``), so a run without progress pays nothing for it.

    ``columns`` are the names of the values ``line`` gets after the count (``f``,
    ``|g|`` ...); the elapsed time is added."""

    def __init__(self, level, every, bar, total, unit, count_name, columns):
        self.every = every
        self.lines = level >= 2
        self.count_name = count_name
        self.columns = columns
        self.start = time.perf_counter()
        self.bar = None
        self._shown = 0
        if bar:
            total = None if total is None or total >= COUNT_MAX else int(total)
            self.bar = _tqdm_class()(total=total, unit=unit)
        if self.lines:
            self._write(f"{count_name:>9}" + "".join(f"{c:>14}" for c in columns) +
                        f"{'time':>10}")

    def _write(self, text):
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def elapsed(self):
        return time.perf_counter() - self.start

    def line(self, count, *values):
        """Print the line of iteration (epoch) ``count``: ``values`` in ``columns``' order
        (a float, or a str as is)."""
        cells = "".join(f"{v:>14}" if isinstance(v, str) else f"{v:>14.6g}" for v in values)
        self._write(f"{count:>9}{cells}{self.elapsed():>9.3f}s")

    def update(self, done, **postfix):
        """Move the bar to ``done`` (iterations, epochs or problems done)."""
        if self.bar is not None:
            if done > self._shown:
                self.bar.update(done - self._shown)
                self._shown = done
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def make_progress(level, every, bar, total, unit, count_name, columns):
    """A Progress, or None when nothing is shown during the run (level < 2, no bar)."""
    if level < 2 and not bar:
        return None
    return Progress(level, every, bar, total, unit, count_name, columns)


def scheduler_option(options):
    """The ``lr_scheduler`` option: None, or a callable ``factory(opt) -> scheduler``."""
    factory = options.get("lr_scheduler")
    if factory is not None and not callable(factory):
        raise TypeError("lr_scheduler must be a callable factory(opt) -> scheduler (e.g. "
                        "lambda opt: fastopt.lr_scheduler.CosineAnnealingLR(opt, T_max=100)), "
                        f"got {type(factory).__name__}")
    return factory


def make_scheduler(factory, optimizer):
    """``factory(optimizer)``, checked: an object with a ``step`` method, built on
    ``optimizer`` (a scheduler's ``optimizer`` attribute, when it has one, must be it)."""
    scheduler = factory(optimizer)
    if not callable(getattr(scheduler, "step", None)):
        raise TypeError("lr_scheduler: factory(opt) must return a scheduler (an object with "
                        f"a step() method, e.g. fastopt.lr_scheduler.StepLR(opt, ...)), got "
                        f"{type(scheduler).__name__}")
    if getattr(scheduler, "optimizer", optimizer) is not optimizer:
        raise ValueError("lr_scheduler: factory(opt) must return a scheduler of the optimizer "
                         "it is given (opt), not of another one")
    return scheduler


def needs_metric(scheduler):
    """Whether ``scheduler.step`` takes the current f (ReduceLROnPlateau and subclasses)."""
    return any(c.__name__ == "ReduceLROnPlateau" for c in type(scheduler).__mro__)


def step_scheduler(scheduler, metric, with_metric):
    """One ``scheduler.step()``, with the metric for ReduceLROnPlateau."""
    if with_metric:
        scheduler.step(metric)
    else:
        scheduler.step()


def group_lr_momentum(optimizer):
    """(lr, momentum) of the optimizer's first parameter group (interface A), momentum being
    ``momentum`` or ``betas[0]`` (NaN when the optimizer has neither)."""
    group = optimizer.param_groups[0]
    if "momentum" in group:
        momentum = group["momentum"]
    elif "betas" in group:
        momentum = group["betas"][0]
    else:
        momentum = math.nan
    return float(group["lr"]), float(momentum)
