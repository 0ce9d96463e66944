"""``fastopt.minimize_batch``: many independent problems of the same size, one call.

People who fit thousands of small models (one per pixel, per sensor, per customer) pay a
Python call per iteration per problem with ``scipy.optimize.minimize`` in a loop (SciPy issues
11783 and 23229). Here the m problems are the rows of one (m, n) array: a vectorised Python
objective is called once per iteration for all the rows still running, and a C objective
(``scipy.LowLevelCallable``) runs every problem's whole loop in C, problems in parallel. This
module validates and prepares (with the checks every driver shares, fastopt/_driver_common.py);
the loops are in fastopt/_batch.pyx.
"""

import numbers

import numpy as np
from scipy import LowLevelCallable
from scipy.optimize import Bounds, OptimizeResult

from fastopt._batch import batch_native, batch_python
from fastopt._driver_common import (
    COMMON_OPTIONS,
    INT_MAX,
    TRAIN_OPTIONS,
    args_tuple,
    box_bounds,
    check_callback,
    check_fun,
    clip_options,
    final_point,
    finish_bounds,
    flush_option,
    make_progress,
    make_scheduler,
    native_evaluation,
    needs_metric,
    options_dict,
    progress_options,
    read_options,
    scheduler_option,
)
from fastopt._loop import EVAL_FUN_AND_GRAD, EVAL_NATIVE, EVAL_SEPARATE, STATUS_CONVERGED, \
    STOP_RESULTS, LoopTrain
from fastopt._methods import is_lbfgs, optimizer_class
from fastopt._validation import as_real_array, finite_float_copy

BATCH_OPTIONS = COMMON_OPTIONS + TRAIN_OPTIONS + ("tol",)
# STOP_* code -> status, indexed with the loops' (m,) stop codes at once (a Python loop over
# 10,000 problems cost ~0.8 ms a call, more than the loop itself with maxiter=1).
_STATUS_OF_STOP = np.array([STOP_RESULTS[code][0] for code in range(len(STOP_RESULTS))],
                           dtype=np.intp)
DISP_EVERY = 100  # iterations between the lines of disp=2 by default


def minimize_batch(fun, X0, args=(), method="adam", jac=None, bounds=None, tol=None,
                   callback=None, options=None):
    r"""Minimize m independent functions of n variables at once, each on its own stopping rule.

    Problem i starts at ``X0[i]`` and is solved as :func:`fastopt.minimize` would solve it
    alone (the same update rule, the same stopping rules, the same result), but the m problems
    share each call of a vectorised objective, or run in C, in parallel, with a C objective.
    The arguments are :func:`fastopt.minimize`'s, in the same order.

    Parameters
    ----------
    fun : callable or scipy.LowLevelCallable
        Either a vectorised Python function ``fun(X, *args)`` of the rows ``X`` (shape
        (k, n), a read-only array of the k problems still running, in their original order)
        returning ``(f, G)`` with ``f`` of shape (k,) and ``G`` of shape (k, n) when
        ``jac=True``, or ``f`` alone when ``jac`` is a callable; row j of its results must
        depend on row j of X only. Or a ``scipy.LowLevelCallable`` of one problem, with the
        C signature ``double f(int n, const double *x, double *grad, void *user_data)``
        (``float`` for float32): it returns f(x) and writes the gradient to ``grad``; every
        problem's loop then runs in C without the GIL (Ctrl-C still stops it:
        KeyboardInterrupt, checked every few milliseconds). ``grad`` holds NaN on entry, so
        every entry must be written: one left NaN (for instance by a ctypes callback that
        raised, which returns 0.0 and writes nothing) stops that problem with status 3 at
        its last iterate whose gradient was complete.

        Or a *block* ``scipy.LowLevelCallable``, which evaluates many problems per call:
        ``void f(int m, int n, const double *X, double *F, double *G, void *user_data)``
        (``float`` throughout for float32). X holds m problems variable-major: variable j of
        problem i is ``X[j*m + i]``, its gradient goes to ``G[j*m + i]`` and its value to
        ``F[i]``, so that a plain C loop over i (the inner one) vectorises. fastopt keeps
        each chunk of up to 256 running problems in that layout, calls ``f`` once per
        iteration for all of them (m is the number still running in the chunk, at most
        256; problem i of a call is not row i of X0) and updates them SIMD across
        problems; every problem's result is bitwise what the scalar objective computing the
        same values gives (:func:`fastopt.problems.rosenbrock_block_lowlevel` is an example).
        F and G hold NaN on entry: an entry left unwritten stops that problem with status 3,
        as above. ``f`` may be called from several threads at once (on different blocks).
        Everything else (bounds, per-problem ``lr``, schedules, clipping, a callback) works
        as with the scalar signature; features that need each problem's values contiguous
        (bounds, per-problem ``lr``, ``xtol``, clipping by norm, Adafactor) transpose the
        block for the update, at some cost in speed.
    X0 : array_like, shape (m, n)
        The starting points; never modified. float32 stays float32; other real dtypes become
        float64 (a C objective sets the dtype: float64 or float32 by its signature).
    args : tuple of array_like, optional
        Extra arguments of a Python ``fun`` and ``jac``, as in SciPy's elementwise solvers
        (``scipy.optimize.elementwise``): an array with m rows holds one row per problem and
        is passed sliced to the running problems, in step with ``X``; a scalar or an array
        with one row is passed as is.
    method : str or callable, default="adam"
        As in :func:`fastopt.minimize`. ``"lbfgs"`` (or ``fastopt.lbfgs``): L-BFGS, one
        engine per problem, each result bitwise ``fastopt.minimize(method="lbfgs")``'s on
        that problem alone. Its options are that method's (``maxiter``, ``maxfun``,
        ``gtol``, ``ftol``, ``maxcor``, ``maxls``, SciPy L-BFGS-B's defaults) with
        ``n_threads``, ``flush_subnormals`` and ``disp`` (a summary); the other methods'
        (``lr`` and hyperparameters, ``lr_scheduler``, clipping, ``xtol``, ``progress``)
        raise ValueError. A Python objective is called once per round of evaluations (a
        problem's line search may take several) for every running problem; the callback
        gets, after each round, the problems that reached a new iterate, ``nit`` one per
        problem; status 2 is a failed line search.
    jac : bool or callable, optional
        ``True`` when ``fun`` returns ``(f, G)``; or ``jac(X, *args) -> G``. A Python ``fun``
        needs one of them (there are no finite differences here); with a C objective, leave it
        None (or True).
    bounds : scipy.optimize.Bounds or sequence of (min, max), optional
        Box constraints; X0 is clipped into the box and every step projected back onto it.
        One box for every problem: n (min, max) pairs (``None`` for no bound), or a
        ``Bounds`` whose ``lb`` and ``ub`` have n entries (or 1). One box per problem: a
        ``Bounds(lb, ub)`` with ``lb`` or ``ub`` of shape (m, n) (or any two-dimensional
        shape that broadcasts to it, such as (m, 1)): problem i is kept in
        ``[lb[i], ub[i]]``, as ``fastopt.minimize(..., bounds=Bounds(lb[i], ub[i]))`` keeps
        it alone.
    tol : float, optional
        Default for ``gtol`` (and ``ftol`` with ``method="lbfgs"``), as in
        :func:`fastopt.minimize`.
    callback : callable, optional
        ``callback(intermediate_result)``, called once per iteration, after the update and
        the evaluation of the new iterates (the j-th call sees the iterates after j updates),
        with an ``OptimizeResult`` of the problems updated in that iteration whose new value
        and gradient are finite: ``indices`` (k,), the numbers of those problems (rows of X0),
        and their ``x`` (k, n), ``fun`` (k,), ``jac`` (k, n) (copies) and ``nit`` (j). As in
        ``scipy.optimize.elementwise``, it is called with that one argument, whatever the
        parameter's name. Problem i sees, row by row, the calls :func:`fastopt.minimize`
        makes for it alone. Raising ``StopIteration`` stops every problem still running
        (status 99, at the iterates the callback saw). With a C objective, a callback makes
        the loop come back to Python once per iteration, and the objective then runs on one
        thread: each iteration costs a call of the callback and copies of the running rows,
        on top of the C loop's work.
    options : dict, optional
        The method's hyperparameters (``lr``, ``betas``, ...; ``lr`` may also be an array of
        shape (m,): one learning rate per problem), and these, which mean what they mean in
        :func:`fastopt.minimize` and apply to each problem:

        maxiter : int or float, default=1000
            Maximum number of updates of each problem.
        gtol : float, default=1e-5 (or ``tol``)
            Stop a problem when the inf-norm of its (projected) gradient is <= gtol.
        ftol : float, default=0 (off)
            Stop a problem when the relative reduction of its f is <= ftol.
        xtol : float, default=0 (off)
            Stop a problem when the inf-norm of its last step is <= xtol.
        max_grad_norm, grad_norm_type, clip_value : float, optional
            Gradient clipping, as in :func:`fastopt.minimize`, of each problem's gradient on
            its own (its own norm).
        n_threads : int or None, default=None
            The number of OpenMP threads: ``None`` follows OpenMP (``OMP_NUM_THREADS`` if
            set, else every usable core), a positive int that many (at most 1024), ``-1``
            every usable core, ``-2`` all but one, and so on; 0 is an error. The result does
            not depend on it. With a C objective, chunks of problems are spread over them;
            with a Python objective, they update the packed rows of the running problems
            (one array) when it is large.
        flush_subnormals : bool, default=False
            Run fastopt's compiled part of the loops in flush-to-zero mode (as
            :func:`fastopt.minimize`'s option; also on inside a ``with
            fastopt.flush_subnormals():`` block): subnormal values read as zero and
            subnormal results become zero, in every thread. With a C objective run in C
            that is the whole loop, objective included; with a Python objective, the updates
            (and a C objective's calls with a callback). Results differ from IEEE arithmetic
            where values are subnormal; every thread's floating-point mode is restored when
            the call returns or raises.

        disp : bool or int, default=False
            0: silent; 1: a summary at the end; 2: also a line every ``disp_every``
            iterations: with a Python objective the iteration, the problems still running,
            the smallest and largest f among them, and the learning rate; with a C
            objective (between its time slices, when the slowest chunk of problems has
            made another ``disp_every`` iterations) the iteration and the problems running
            and done; and the elapsed time.
        disp_every : int, default=100
            Iterations between the lines of ``disp=2``.
        progress : bool, default=False
            A tqdm bar of the problems done (tqdm: ``pip install tqdm``; ImportError
            without it). Neither option changes the result.
        lr_scheduler : callable, optional
            ``factory(opt) -> scheduler``, as in :func:`fastopt.minimize`; each problem gets
            the learning rates :func:`fastopt.minimize` would give it alone. While they do
            not depend on the problem, one scheduler is stepped once per iteration for all
            of them (``opt`` is then the optimizer over all of X). ``ReduceLROnPlateau``
            (each problem's own f) and per-problem learning rates (an array ``lr``:
            ``factory`` is then called once per problem, with an optimizer of that
            problem's rate) give each problem a C schedule of its own (about 4 kB each),
            stepped in the loops without the GIL with either kind of objective; they need a
            scheduler of :mod:`fastopt.lr_scheduler` other than ``LambdaLR`` and
            ``MultiplicativeLR`` (TypeError). With a C objective the built-in schedulers run inside the C loop;
            ``LambdaLR`` and ``MultiplicativeLR`` make the loop run from Python, one
            iteration at a time (as with a callback).

        Unknown options give an ``OptimizeWarning``, as in :func:`fastopt.minimize`.

    Returns
    -------
    res : scipy.optimize.OptimizeResult
        Per problem: ``x`` (m, n), ``fun`` (m,), ``jac`` (m, n), ``nit`` (m,), ``nfev`` (m,),
        ``status`` (m,) and ``success`` (m,), with :func:`fastopt.minimize`'s status codes (0
        converged, 1 ``maxiter``, 3 non-finite value: ``x`` is that problem's last finite
        iterate, 99 stopped by the callback); ``message``, a summary.

    Raises
    ------
    TypeError, ValueError
        On bad arguments, before ``fun`` is called.

    See Also
    --------
    fastopt.minimize : one problem.

    Notes
    -----
    A problem that stops is no longer evaluated nor updated. The result does not depend on the
    thread count nor on the other problems: the running problems' rows are kept packed and
    updated as one array by the same elementwise kernel ``fastopt.minimize`` uses (row by row
    for a rule that is not elementwise, Adafactor), with a
    Python objective for all of them, with a C objective per chunk of 128 problems on one
    thread (chunks spread over the threads), with a block C objective per chunk of 256
    problems kept variable-major (one objective call and one update per iteration per
    chunk). Iterating problems side by side is also what
    makes a batch faster per problem than a loop that solves one problem at a time, even in
    plain C.

    Examples
    --------
    Fit a centre to each of 1000 clouds of points (f_i(x) = mean |p - x|^2 over cloud i):

    >>> import numpy as np, fastopt
    >>> rng = np.random.default_rng(0)
    >>> clouds = rng.normal(rng.uniform(-5, 5, (1000, 1, 2)), 1.0, (1000, 50, 2))
    >>> def fg(X, P):  # X: (k, 2), P: (k, 50, 2), the running problems' rows
    ...     D = X[:, None, :] - P
    ...     return np.mean(np.sum(D * D, axis=2), axis=1), 2 * np.mean(D, axis=1)
    >>> res = fastopt.minimize_batch(fg, np.zeros((1000, 2)), args=(clouds,), jac=True,
    ...                              options={"lr": 0.1, "maxiter": 5000})
    >>> bool(res.success.all()), bool(np.allclose(res.x, clouds.mean(axis=1), atol=1e-5))
    (True, True)

    Each cloud's centre kept in a box of its own, here the unit square around its first
    point:

    >>> from scipy.optimize import Bounds
    >>> box = Bounds(clouds[:, 0] - 0.5, clouds[:, 0] + 0.5)  # lb, ub: shape (1000, 2)
    >>> res = fastopt.minimize_batch(fg, np.zeros((1000, 2)), args=(clouds,), jac=True,
    ...                              bounds=box, options={"lr": 0.1, "maxiter": 5000})
    >>> bool(np.all((box.lb <= res.x) & (res.x <= box.ub)))
    True
    """
    if is_lbfgs(method):  # (its own loops: fastopt/_lbfgs_batch_driver.py)
        check_fun(fun)
        check_callback(callback)
        from fastopt._lbfgs_batch_driver import lbfgs_batch
        return lbfgs_batch(fun, X0, args_tuple(args), jac, bounds, tol, callback,
                           options_dict(options), stacklevel=2)
    cls = optimizer_class(method)
    check_fun(fun)
    args = args_tuple(args)
    X = _starting_points(X0)
    m, n = X.shape
    options = options_dict(options)
    hyper, n_threads, stopping = read_options(cls, options, known=BATCH_OPTIONS,
                                              caller="minimize_batch", stacklevel=2, tol=tol)
    lrs = _learning_rates(hyper, m)
    user_lrs = lrs is not None
    stopping["clip"] = clip_options(options)  # (the loops' clip argument)
    stopping["flush"] = flush_option(options)  # (the loops' flush argument)
    check_callback(callback)
    level, every, bar = progress_options(options, DISP_EVERY)
    factory = scheduler_option(options)

    fun, jac, mode, X, lower, upper = batch_evaluation(fun, jac, args, X, bounds)

    optimizer = cls(X.reshape(-1), n_threads=n_threads, **hyper)
    python_loop = mode != EVAL_NATIVE or callback is not None
    train, lrs = _batch_train(optimizer, factory, (level, every, bar), lrs, user_lrs, hyper,
                              m, n, X.dtype, python_loop)
    if lrs is None and not cls.elementwise:
        # A rule that is not elementwise (Adafactor's norms) must update each problem's row
        # on its own: the loops do so where problems have their own learning rates.
        lrs = np.full(m, optimizer.lr, np.float64)
    optimizer._ensure_state()
    rule, slots = optimizer._rule, optimizer._slots[0]
    if lrs is not None:  # a slot that starts at the rate (Rprop's step_size): each problem's
        for slot, array in zip(cls.record.state, slots):
            if slot.initial == "lr" and array is not None:
                array.reshape(m, n)[...] = lrs[:, None]
    try:
        if not python_loop and (train is None or not train.needs_python):
            stops, nit, nfev, f, G = batch_native(X, rule, slots, fun, lower, upper, lrs,
                                                  **stopping, n_threads=optimizer.n_threads,
                                                  train=train)
        else:
            if mode == EVAL_NATIVE and fun.is_block and m > INT_MAX:
                # here a block objective gets every running problem in one call, m a C int
                raise ValueError(f"X0: a block LowLevelCallable takes m as a C int; {m} "
                                 "problems are too many with a callback or a Python scheduler")
            args, per_problem = _batch_args(args, m)
            stops, nit, nfev, f, G = batch_python(X, rule, slots, fun, jac, args,
                                                  per_problem, mode, lower, upper, lrs,
                                                  **stopping, n_threads=optimizer.n_threads,
                                                  callback=callback, train=train)
    finally:
        if train is not None and train.progress is not None:
            train.progress.close()
    codes = np.asarray(stops)
    if codes.size and (codes.min() < 0 or codes.max() >= _STATUS_OF_STOP.size):
        # (every problem stops on a rule, STOP_NONE is -1: a bug otherwise)
        raise RuntimeError("fastopt: a problem of the batch ended without a stopping rule")
    status = _STATUS_OF_STOP[codes]
    final_point(optimizer, X, lower, upper, status)
    result = OptimizeResult(x=X, fun=f, jac=G, nit=nit, nfev=nfev, njev=nfev.copy(),
                            status=status, success=status == STATUS_CONVERGED,
                            message=_summary(status))
    if level:
        print_summary(result, f"fastopt.{cls.__name__}")
    return result


def print_summary(result, method):
    """disp: the summary of a batch's result, after the run."""
    print(result.message)
    print(f"         Method: {method}")
    if result.fun.size:
        print(f"         Function values: min {np.min(result.fun):.6g}, "
              f"max {np.max(result.fun):.6g}")
        print(f"         Iterations: min {np.min(result.nit)}, max {np.max(result.nit)}")


def batch_evaluation(fun, jac, args, X, bounds):
    """``(fun, jac, mode, X, lower, upper)``: how the batch evaluates (fastopt._loop's EVAL_*;
    a LowLevelCallable becomes a NativeObjective and X takes its dtype), and X clipped into
    the bounds (batch_bounds)."""
    if isinstance(fun, LowLevelCallable):
        fun = native_evaluation(fun, jac, args, X.shape[1], name="X0", block=True)
        X = X.astype(fun.dtype, copy=False)
        jac, mode = None, EVAL_NATIVE
    elif jac is True or (type(jac) is np.bool_ and jac):  # numpy.True_ too
        mode = EVAL_FUN_AND_GRAD
    elif callable(jac):
        mode = EVAL_SEPARATE
    else:
        raise ValueError("jac: minimize_batch needs gradients: pass jac=True (fun returns "
                         f"(f, G)) or a callable jac(X) -> G; got {jac!r}")
    lower, upper = batch_bounds(bounds, X)
    if lower is not None:
        np.clip(X, lower, upper, out=X)
    return fun, jac, mode, X, lower, upper


def _batch_train(optimizer, factory, shown, lrs, user_lrs, hyper, m, n, dtype, python_loop):
    """(LoopTrain or None, learning rates) for the options lr_scheduler and disp/progress.

    A scheduler's learning rates are every problem's while they do not depend on the
    problem: one schedule, stepped once per iteration (all running problems have made the
    same number of updates). ReduceLROnPlateau (each problem's f) and per-problem learning
    rates (an array ``lr``: ``factory`` is called once per problem, on an optimizer with that
    problem's rate) need a C schedule per problem; their rates then go in as per-problem rates.
    """
    level, every, bar = shown
    scheduler = None if factory is None else make_scheduler(factory, optimizer)
    native = not python_loop
    columns = ("running", "min f", "max f", "lr") if python_loop else ("running", "done")
    progress = make_progress(level, every, bar, m, "problem", "nit", columns)
    if scheduler is None and progress is None:
        return None, lrs
    per_problem = scheduler is not None and (lrs is not None or needs_metric(scheduler)
                                             or not optimizer.elementwise)
    stride = every if level >= 2 else 1
    train = LoopTrain(optimizer, scheduler, native or per_problem, progress, stride, 0)
    if not per_problem:
        return train, lrs
    if not train.in_c:
        raise TypeError(f"lr_scheduler: {type(scheduler).__name__} runs in Python only, and "
                        "minimize_batch needs a schedule per problem here (ReduceLROnPlateau, "
                        "per-problem learning rates or a rule that is not elementwise); use "
                        "one of fastopt.lr_scheduler's other schedulers")
    if user_lrs:
        schedulers = []
        for rate in lrs:
            one = type(optimizer)(np.zeros(n, dtype), **dict(hyper, lr=float(rate)))
            schedulers.append(make_scheduler(factory, one))
        return train, train.set_rows(schedulers)
    return train, train.copy_rows(m)


def batch_bounds(bounds, X):
    """The bounds of a batch in X's dtype (rounded inward): (None, None), two (n,) arrays (one
    box for every problem) or two (m, n) C-contiguous arrays (a box per problem: a
    ``Bounds`` with a two-dimensional ``lb`` or ``ub``)."""
    m, n = X.shape
    if isinstance(bounds, Bounds) and (np.ndim(bounds.lb) >= 2 or np.ndim(bounds.ub) >= 2):
        sides = []
        for b, name in ((bounds.lb, "bounds.lb"), (bounds.ub, "bounds.ub")):
            try:
                arr = np.asarray(b, dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"{name} must hold real numbers, got {b!r}") from None
            if arr.ndim > 2 or (arr.ndim == 2 and not _broadcasts(arr.shape, (m, n))) or \
                    (arr.ndim < 2 and arr.size not in (1, n)):
                raise ValueError(f"{name} must have shape (m, n) = ({m}, {n}) (a box per "
                                 f"problem), or n = {n} entries or 1 (one box for all); got "
                                 f"shape {arr.shape}")
            sides.append(np.broadcast_to(arr.reshape(-1) if arr.ndim < 2 else arr, (m, n)))
        return finish_bounds(sides[0], sides[1], X.dtype)
    try:
        return box_bounds(bounds, X[0] if m else np.empty(n, X.dtype))
    except (TypeError, ValueError) as exc:
        if isinstance(bounds, Bounds):
            raise
        # e.g. a pair of (m, n) arrays: say how to give a box per problem
        raise type(exc)(f"{exc} (one box for all is n (min, max) pairs; a box per problem "
                        "is a scipy.optimize.Bounds(lb, ub) with lb and ub of shape (m, n))") \
            from None


def _broadcasts(shape, target):
    return all(s in (1, t) for s, t in zip(shape, target))


def _starting_points(X0):
    """A private (m, n) C-contiguous copy of X0: float32 kept, other real dtypes float64."""
    arr = as_real_array("X0", X0)
    if arr.ndim != 2:
        raise ValueError(f"X0 must have shape (m, n): one row per problem, got shape "
                         f"{arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError("X0 must have at least one column (variable)")
    return finite_float_copy("X0", arr)


def _batch_args(args, m):
    """(args, which have a row per problem): SciPy's elementwise convention
    (scipy.optimize.elementwise): an array with m rows is per problem and is passed sliced to
    the running problems; a scalar or an array with one row is shared."""
    out, per_problem = [], []
    for i, a in enumerate(args):
        arr = np.asarray(a)
        if arr.ndim == 0 or arr.shape[0] == 1:
            out.append(a)
            per_problem.append(False)
        elif arr.shape[0] == m:
            out.append(arr)
            per_problem.append(True)
        else:
            raise ValueError(f"args[{i}] must have m = {m} rows (one per problem), or be a "
                             f"scalar or have one row (shared); got shape {arr.shape}")
    return tuple(out), tuple(per_problem)


def _learning_rates(hyper, m):
    """The per-problem learning rates (float64, shape (m,)) when ``lr`` is an array, else
    None; ``hyper["lr"]`` becomes a scalar the optimizer class validates."""
    lr = hyper.get("lr")
    if lr is None or isinstance(lr, numbers.Real) or np.ndim(lr) == 0:
        return None
    try:
        lrs = np.array(lr, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"lr must be a real number or an array of m = {m} real numbers") from None
    except OverflowError:  # an int beyond the float range
        raise ValueError("lr: every learning rate must be finite and >= 0") from None
    if lrs.shape != (m,):
        raise ValueError(f"lr must be a number or have shape (m,) = ({m},), got shape "
                         f"{lrs.shape}")
    if not np.all(np.isfinite(lrs)) or np.any(lrs < 0):
        raise ValueError("lr: every learning rate must be finite and >= 0")
    hyper["lr"] = float(lrs[0]) if m else 1e-3  # validated with the others by the class
    return lrs


def _summary(status):
    counts = {int(s): int(c) for s, c in zip(*np.unique(status, return_counts=True))}
    names = {0: "converged", 1: "reached maxiter", 2: "line search failed",
             3: "hit a non-finite value", 99: "stopped by the callback"}
    parts = [f"{c} {names.get(s, f'status {s}')}" for s, c in sorted(counts.items())]
    return f"{status.size} problems: " + (", ".join(parts) if parts else "none")
