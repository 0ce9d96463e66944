"""``fastopt.minimize``: one minimize loop for every optimizer, with SciPy's conventions.

This module validates and prepares (x0, options, jac, bounds, callback; the checks the three
drivers share are in fastopt/_driver_common.py), builds the optimizer on a private copy of x0,
and hands the iteration to the Cython loop (fastopt/_loop.pyx); it knows no particular update
rule. fastopt/_scipy.py exposes the same entry (``minimize_with_method``) as
``scipy.optimize.minimize`` methods.
"""

import warnings

import numpy as np
from scipy import LowLevelCallable
from scipy.optimize import OptimizeResult

from fastopt._conventions import bool_option, scalar_value
from fastopt._driver_common import (
    COMMON_OPTIONS,
    STATUS_MESSAGES,
    TRAIN_OPTIONS,
    args_tuple,
    box_bounds,
    callback_style,
    check_fun,
    clip_options,
    final_point,
    flush_option,
    make_progress,
    make_scheduler,
    native_evaluation,
    options_dict,
    progress_options,
    read_options,
    scheduler_option,
    starting_point,
)
from fastopt._fastcall import fast_minimize
from fastopt._finite_diff import FD_METHODS, FiniteDifferenceGradient, check_fd_method
from fastopt._lbfgs_driver import lbfgs_options, run_lbfgs
from fastopt._loop import (
    EVAL_FINITE_DIFF,
    EVAL_FUN_AND_GRAD,
    EVAL_NATIVE,
    EVAL_SEPARATE,
    STATUS_CONVERGED,
    LoopTrain,
    minimize_loop,
)
from fastopt._methods import LBFGS, METHODS, is_lbfgs, method_name
from fastopt._validation import check_real

try:  # scipy.optimize.minimize(jac=True) wraps fun in MemoizeJac; unwrapping it saves a copy
    from scipy.optimize._optimize import MemoizeJac
except ImportError:  # pragma: no cover - private scipy name
    MemoizeJac = None

# The options of the loop itself (the optimizer's hyperparameters come from its class).
LOOP_OPTIONS = COMMON_OPTIONS + TRAIN_OPTIONS + ("tol", "return_all", "finite_diff_method",
                                                 "finite_diff_rel_step")
DISP_EVERY = 100  # iterations between the lines of disp=2 by default


def minimize(fun, x0, args=(), method="adam", jac=None, bounds=None, tol=None, callback=None,
             options=None):
    r"""Minimize a scalar function with one of fastopt's first-order methods.

    The arguments mean what they mean in :func:`scipy.optimize.minimize`, and the result is
    the same :class:`scipy.optimize.OptimizeResult`.

    Parameters
    ----------
    fun : callable or scipy.LowLevelCallable
        ``fun(x, *args) -> float``, or ``(float, ndarray)`` when ``jac=True``. It receives a
        **read-only view** of the current iterate (not a copy): copy it if you keep it.
        Or a ``scipy.LowLevelCallable`` of the C function
        ``double f(int n, const double *x, double *grad, void *user_data)`` (or ``float``
        throughout, for float32) that returns f(x) and writes the gradient; ``jac`` is then
        True or None, ``args`` empty, and the function's type sets x's dtype. ``grad`` holds
        NaN on entry, so every entry must be written: one left NaN (for instance by a ctypes
        callback that raised, which returns 0.0 and writes nothing) stops the run with
        status 3 at the last iterate whose gradient was complete. The C loop looks for
        Ctrl-C every few milliseconds (KeyboardInterrupt).
    x0 : array_like, shape (n,)
        Starting point; never modified. float32 stays float32 (the float32 kernels run);
        every other real dtype becomes float64.
    args : tuple, optional
        Extra arguments of ``fun`` and ``jac``.
    method : str or callable, default="adam"
        Any optimizer's name (``"sgd"``, ``"adam"``, ... for :class:`fastopt.SGD`,
        :class:`fastopt.Adam`, ...; case-insensitive) or ``"gd"``, or the same method as
        fastopt's callable (``fastopt.adam``, ...) or class (``fastopt.Adam``, ...). ``"gd"``
        and ``"sgd"`` are both :class:`fastopt.SGD`; here both see the exact gradient. Another
        callable (a SciPy-style custom method) raises ``TypeError``: run it with
        :func:`scipy.optimize.minimize`. ``"lbfgs"`` (or ``fastopt.lbfgs``) is L-BFGS, the
        quasi-Newton method for smooth deterministic problems: see "L-BFGS" in Notes.
    jac : callable, bool, str or None, optional
        ``jac(x, *args) -> ndarray (n,)``; ``True`` if ``fun`` returns ``(f, g)`` (a tuple
        or a list, as SciPy takes it; ``g`` may be x itself or any array of n reals); None (or
        ``"2-point"``, ``"3-point"``, ``"cs"``) for finite differences (option
        ``finite_diff_method``, default ``"2-point"``).
    bounds : scipy.optimize.Bounds or sequence of (min, max), optional
        Box constraints (``None`` for no bound). x0 is clipped into the box and every step is
        projected back onto it.
    tol : float, optional
        Default for ``gtol`` (with ``method="lbfgs"``: for ``gtol`` and ``ftol``, as SciPy's
        L-BFGS-B).
    callback : callable, optional
        ``callback(intermediate_result)`` (the only parameter has exactly that name: it gets an
        ``OptimizeResult`` with ``x``, ``fun``, ``jac``, ``nit``), or ``callback(xk)`` (a copy
        of x). Called after each update: the j-th call sees the iterate after j updates.
        Raising ``StopIteration`` ends the run (status 99).
    options : dict, optional
        The method's hyperparameters (those of its class, e.g. ``lr``, ``betas`` for Adam;
        ``maximize`` is not allowed), and:

        maxiter : int or float, default=1000
            Maximum number of updates (``nit``): the run goes on while ``nit < maxiter``, as
            in SciPy's methods, so a non-integer is rounded up; ``inf`` or any count too
            large to reach (``1e300``, ``2**63``) means no limit.
        gtol : float, default=1e-5 (or ``tol``)
            Stop when the inf-norm of the gradient (projected on the bounds) is <= gtol.
        ftol : float, default=0 (off)
            Stop when ``|f_k - f_{k+1}| <= ftol * max(|f_k|, |f_{k+1}|, 1)``.
        xtol : float, default=0 (off)
            Stop when the inf-norm of the last step is <= xtol.
        max_grad_norm : float, optional
            Clip each gradient the update sees to this norm (``grad_norm_type``, default 2;
            ``inf`` for the max-norm), as ``torch.nn.utils.clip_grad_norm_``:
            ``g * min(max_grad_norm / (||g|| + 1e-6), 1)``. In C for C objectives.
        grad_norm_type : float or str, default=2
            The p of max_grad_norm's norm (``inf`` or ``"inf"``: the max-norm).
        clip_value : float, optional
            Clamp each gradient the update sees to ``[-clip_value, clip_value]`` (after
            ``max_grad_norm`` when both are given), as ``torch.nn.utils.clip_grad_value_``.
            The stopping rules and the returned ``jac`` use the gradient itself.
        disp : bool or int, default=False
            0 (False): silent; 1 (True): print a summary at the end; 2: also a line every
            ``disp_every`` iterations (and at the start and the end) with the iteration,
            f, the inf-norm of the (projected) gradient, the learning rate the next update
            uses, and the elapsed time, as SciPy's ``iprint`` does.
        disp_every : int, default=100
            Iterations between the lines of ``disp=2``.
        progress : bool, default=False
            Show a tqdm progress bar of the iterations (tqdm is an optional dependency:
            ``pip install tqdm``, or the ``progress`` extra; without it, ImportError). With a
            C objective the C loop comes back to Python about a thousand times a run for it
            (every ``disp_every`` iterations with ``disp=2``). Neither option changes the
            result, and a run without them pays nothing for them.
        lr_scheduler : callable, optional
            ``factory(opt) -> scheduler``: called once with the run's optimizer ``opt`` (the
            method's class over x, already holding the options' hyperparameters), it returns
            a learning-rate scheduler of ``opt``, e.g.
            ``lambda opt: fastopt.lr_scheduler.CosineAnnealingLR(opt, T_max=1000)``. The
            scheduler is stepped after each update, as ``opt.step(g); sched.step()`` in a
            hand-written loop (``ReduceLROnPlateau`` with f at the point whose gradient
            that update used), so the run equals that loop (the loop's Adam-style bias
            corrections aside, see Notes). With a C objective the schedulers of
            :mod:`fastopt.lr_scheduler` run inside the C loop, without the GIL, giving
            bitwise the Python path's learning rates; ``LambdaLR`` and ``MultiplicativeLR``
            (a Python function) make that loop take the GIL at every iteration to step them.
            A scheduler that cycles the momentum (``CyclicLR``, ``OneCycleLR``) cycles
            ``momentum`` or ``betas[0]``; Adam's bias corrections then use ``pow`` of the
            current beta1, as torch does.
        return_all : bool, default=False
            Also return ``allvecs``, the list of iterates (x0 first).
        finite_diff_method : {"2-point", "3-point", "cs"}, default="2-point"
            Finite differences used when ``jac`` is None.
        finite_diff_rel_step : float, optional
            Relative step of the finite differences: the step is
            ``finite_diff_rel_step * |x|`` (SciPy's rule; where that vanishes, the default
            ``sqrt(eps) * max(1, |x|)``, or ``eps**(1/3) * max(1, |x|)`` for "3-point").
            Within bounds, ``fun`` is never evaluated outside the box: steps turn one-sided
            or shrink to fit, and a fixed variable (min == max) gets derivative 0 without a
            call of ``fun``.
        n_threads : int or None, default=None
            The number of OpenMP threads: ``None`` follows OpenMP (``OMP_NUM_THREADS`` if
            set, else every usable core), a positive int that many (at most 1024), ``-1``
            every usable core, ``-2`` all but one, and so on; 0 is an error. The result does
            not depend on it. The update of x uses them when x is large.
        flush_subnormals : bool, default=False
            Run fastopt's compiled part of the loop in flush-to-zero mode (as the optimizer
            classes' ``flush_subnormals``; also on inside a ``with
            fastopt.flush_subnormals():`` block): subnormal values read as zero and
            subnormal results become zero, so that a run whose state drifts below the normal
            range keeps its speed, with results that differ from IEEE arithmetic there. It
            covers the update (with clipping and the projection onto the bounds) and, with a
            C objective run in C, the objective and the stopping tests; ``fun``, ``jac``,
            ``callback`` and Python schedulers run in the caller's floating-point mode, which
            is restored exactly when the call returns or raises.

        Unknown options give an ``OptimizeWarning``, as SciPy's methods do. Numbers may be
        Python or NumPy scalars or 0-d arrays; bools may be ``numpy.bool_``.

    Returns
    -------
    res : scipy.optimize.OptimizeResult
        ``x`` (the final iterate, x0's dtype), ``fun``, ``jac``, ``nit`` (updates made),
        ``nfev``, ``njev``, ``status``, ``success``, ``message``; ``allvecs`` with
        ``return_all``. Status codes: 0 converged (``success=True``; the message says which
        test), 1 ``maxiter`` (or L-BFGS's ``maxfun``) reached, 2 L-BFGS's line search
        failed, 3 ``fun`` or ``jac`` returned NaN or inf (``x`` is the last finite
        iterate), 99 the callback raised ``StopIteration``.

    Raises
    ------
    TypeError, ValueError
        On bad arguments, before ``fun`` is called.

    See Also
    --------
    fastopt.adam, fastopt.sgd, ... : the same methods for ``scipy.optimize.minimize``.

    Notes
    -----
    Each iteration evaluates ``fun`` (and ``jac``) once and applies the method's update rule
    (see its class, e.g. :class:`fastopt.Adam`) to x in place, then projects onto the bounds.
    The loop is compiled: beyond the user's function it costs well under a microsecond per
    iteration for small problems. The common call (a method name, ``x0`` an array or a
    list, options of plain numbers, no bounds or callback) has a fixed cost of a few
    microseconds: it takes a fast path with the same checks that does not build the
    optimizer object (``python -m fastopt bench-loops`` times it). With a ``scipy.LowLevelCallable`` objective it runs in C
    without the GIL (see the README, "objectives in C"). In the loop, Adam's bias corrections
    :math:`1 - \beta^t` come from running products of the betas (a ``pow`` per iteration
    would cost more than a whole update of a small problem); stepping :class:`fastopt.Adam`
    by hand uses ``pow``, as torch does. The two agree to a few ulps.

    **L-BFGS** (``method="lbfgs"``) is limited-memory BFGS with a Moré-Thuente
    strong-Wolfe line search (MINPACK-2's, as SciPy's L-BFGS-B), box bounds by a two-metric
    projection that never evaluates ``fun`` outside the box, and L-BFGS-B's stopping rules;
    its iterations track ``scipy.optimize.minimize(method="L-BFGS-B")``'s (the engine:
    src_c/fastopt_lbfgs.h). Its options are L-BFGS-B's, with L-BFGS-B's defaults:
    ``maxiter=15000``, ``maxfun=15000`` (checked after each iteration, as SciPy does, so
    ``nfev`` may pass it), ``gtol=1e-5`` (the projected gradient's inf-norm),
    ``ftol=2.22e-9`` (``(f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= ftol``; ``tol`` sets
    both, as in SciPy), ``maxcor=10`` (the history size) and ``maxls=20`` (evaluations per
    line search); plus ``disp``, ``disp_every``, ``return_all``, ``finite_diff_method``,
    ``finite_diff_rel_step``, ``flush_subnormals`` and ``n_threads`` (checked, unused: one
    problem runs on one thread). The learning-rate options (``lr_scheduler``, clipping,
    ``xtol``, ``progress``) are unknown options there (``OptimizeWarning``). Status 2: the
    line search found no acceptable step even along the steepest descent (SciPy's
    ``ABNORMAL``); x is the last iterate. A NaN or inf at a trial point shrinks the step;
    at x0 it stops with status 3. float32 x0 runs in double with every evaluation point
    rounded to float32; x and jac come back float32. ``maxiter=0`` returns x0.

    **When to use fastopt.** These first-order methods suit stochastic or mini-batch
    objectives (:func:`fastopt.minimize_minibatch`), bounds with noisy gradients, many small
    problems at once (:func:`fastopt.minimize_batch`), float32, and loops run in C (a
    ``scipy.LowLevelCallable`` objective). For a smooth deterministic problem, SciPy's
    quasi-Newton methods (``scipy.optimize.minimize(..., method="L-BFGS-B")`` or ``"BFGS"``)
    usually need far fewer iterations and no learning rate: on Rosenbrock from (-1.2, 1),
    L-BFGS-B converges in about 40 iterations, while this function's defaults (Adam,
    ``lr=1e-3``, ``maxiter=1000``) stop far from the minimum. The learning rate matters most:
    ``python -m fastopt lr-table`` prints, for each method, the rates that converge on
    :mod:`fastopt.problems` (Adam: about 0.01-0.1 on Rosenbrock; Momentum and NAG: 3e-4 to
    1e-3; GD needs more than 5000 iterations there). Scale it by your gradient's size.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> from scipy.optimize import rosen, rosen_der
    >>> res = fastopt.minimize(rosen, np.zeros(2), method="adam", jac=rosen_der,
    ...                        options={"lr": 0.01, "maxiter": 20000, "gtol": 1e-6})
    >>> res.success, np.round(res.x, 4)
    (True, array([1., 1.]))
    """
    # The common call (a method name, x0 an ndarray or a list, options of plain numbers, no
    # bounds or callback) takes the fast path: fastopt/_fastcall.pyx, the same checks and the
    # same loop for a few microseconds. It returns None for any other call, and for any
    # argument a check refuses, having called and changed nothing: the general path below.
    result = fast_minimize(method, fun, x0, args, jac, bounds, tol, callback, options)
    if result is not None:
        return result
    options = options_dict(options)
    if tol is not None:
        options.setdefault("tol", tol)
    return _minimize_general(method, fun, x0, args=args, jac=jac, bounds=bounds,
                             callback=callback, options=options, stacklevel=3)


def minimize_with_method(method, fun, x0, args=(), jac=None, hess=None, hessp=None,
                         bounds=None, constraints=(), callback=None, options=None):
    """The shared body of ``minimize`` and the ``scipy.optimize.minimize`` method callables
    (fastopt/_scipy.py), which SciPy calls with ``tol`` inside ``options``."""
    result = fast_minimize(method, fun, x0, args, jac, bounds, None, callback, options, hess,
                           hessp, constraints)  # (as in minimize)
    if result is not None:
        return result
    return _minimize_general(method, fun, x0, args=args, jac=jac, hess=hess, hessp=hessp,
                             bounds=bounds, constraints=constraints, callback=callback,
                             options=options, stacklevel=4)


def _minimize_general(method, fun, x0, args=(), jac=None, hess=None, hessp=None, bounds=None,
                      constraints=(), callback=None, options=None, *, stacklevel):
    """Any call: check the arguments, build the optimizer, run the loop. ``stacklevel``: a
    warning's here that points at the caller of minimize (or of minimize_with_method's
    caller, scipy.optimize.minimize)."""
    # L-BFGS (not an elementwise rule: no optimizer class) shares the preparation and
    # runs its own loop (fastopt/_lbfgs_driver.py).
    lbfgs = is_lbfgs(method)
    name = LBFGS if lbfgs else method_name(method)
    check_fun(fun)
    args = args_tuple(args)
    if _has_constraints(constraints):
        raise ValueError(
            f"fastopt's {name!r} method cannot handle constraints; use bounds, or a "
            "constrained method such as 'SLSQP' or 'trust-constr'"
        )
    for what, value in (("hess", hess), ("hessp", hessp)):
        if value is not None:
            warnings.warn(f"fastopt's {name!r} method does not use Hessian information "
                          f"({what}); it is ignored.", RuntimeWarning, stacklevel=stacklevel)

    x = starting_point(x0)
    if lbfgs:
        loop = lbfgs_options(options_dict(options), stacklevel + 1)
    else:
        cls = METHODS[name]
        hyper, loop = _loop_options(cls, options_dict(options), stacklevel)
    if (MemoizeJac is not None and isinstance(fun, MemoizeJac)
            and getattr(jac, "__self__", None) is fun):
        fun, jac = fun.fun, True  # scipy.optimize.minimize's wrapper of jac=True
    if isinstance(fun, LowLevelCallable):
        fun, jac, mode = native_evaluation(fun, jac, args, x.size), None, EVAL_NATIVE
        x = x.astype(fun.dtype, copy=False)
    else:
        fun, jac, mode = _evaluation_mode(fun, jac, loop)
    lower, upper = box_bounds(bounds, x)
    if lower is not None:
        np.clip(x, lower, upper, out=x)
    new_style = callback_style(callback)
    if lbfgs:
        result = run_lbfgs(x, fun, jac, args, mode, lower, upper, callback, new_style, loop)
        if loop["disp"]:
            _print_summary(name, result)
        return result

    optimizer = cls(x, n_threads=loop["n_threads"], **hyper)
    # (the scheduler sets its first rate before the state is made: Rprop's starts at it)
    train = _loop_train(optimizer, loop, mode == EVAL_NATIVE)
    optimizer._ensure_state()
    if mode == EVAL_FINITE_DIFF:
        jac = FiniteDifferenceGradient(fun, args, loop["finite_diff_method"],
                                       loop["finite_diff_rel_step"], lower, upper)
    allvecs = [x.copy()] if loop["return_all"] else None
    try:
        status, reason, nit, nfev, njev, f, g = minimize_loop(
            x, optimizer._rule, optimizer._slots[0], fun, jac, args, mode, lower, upper,
            loop["maxiter"], loop["gtol"], loop["ftol"], loop["xtol"], callback, new_style,
            allvecs, optimizer.n_threads, train, clip=loop["clip"], flush=loop["flush"],
        )
    finally:
        if loop["progress"] is not None:
            loop["progress"].close()
    if mode == EVAL_FINITE_DIFF:
        nfev += jac.nfev
    final_point(optimizer, x, lower, upper, status)
    result = OptimizeResult(
        x=x, fun=f, jac=g, nit=nit, nfev=nfev, njev=njev, status=status,
        success=status == STATUS_CONVERGED, message=STATUS_MESSAGES[status, reason],
    )
    if allvecs is not None:
        result.allvecs = allvecs
    if loop["disp"]:
        _print_summary(name, result)
    return result


# ---------------------------------------------------------------------------------------------
# Argument preparation


def _has_constraints(constraints):
    if constraints is None:
        return False
    if isinstance(constraints, (list, tuple)):
        return len(constraints) > 0
    return True  # a dict or a constraint object


def _loop_options(cls, options, stacklevel):
    """(hyperparameters of cls, validated loop options: read_options' and minimize's own)."""
    hyper, n_threads, loop = read_options(cls, options, known=LOOP_OPTIONS, caller="minimize",
                                          stacklevel=stacklevel + 1)
    level, every, bar = progress_options(options, DISP_EVERY)
    loop.update({
        "n_threads": n_threads,
        "disp": level,
        "disp_every": every,
        "bar": bar,
        "lr_scheduler": scheduler_option(options),
        "return_all": bool_option("return_all", options.get("return_all", False)),
        "finite_diff_method": check_fd_method(options.get("finite_diff_method", "2-point")),
        "finite_diff_rel_step": scalar_value(options.get("finite_diff_rel_step")),
        "clip": clip_options(options),
        "flush": flush_option(options),
    })
    if loop["finite_diff_rel_step"] is not None:
        loop["finite_diff_rel_step"] = check_real(
            "finite_diff_rel_step", loop["finite_diff_rel_step"], "relative step",
            low=0.0, low_open=True)
    return hyper, loop


def _evaluation_mode(fun, jac, loop):
    """(fun, jac, mode) for the loop, for a Python ``fun``."""
    if isinstance(jac, (np.bool_, np.ndarray)) and np.ndim(jac) == 0 and \
            np.asarray(jac).dtype == bool:
        jac = bool(jac)  # numpy.True_ as True
    if jac is True:
        return fun, None, EVAL_FUN_AND_GRAD
    if callable(jac):
        return fun, jac, EVAL_SEPARATE
    if jac is None or jac is False:
        return fun, None, EVAL_FINITE_DIFF
    if isinstance(jac, str) and jac in FD_METHODS:
        loop["finite_diff_method"] = jac
        return fun, None, EVAL_FINITE_DIFF
    raise ValueError(f"jac must be callable, True, None or one of {FD_METHODS}, got {jac!r}")


def _loop_train(optimizer, loop, native):
    """The loop's LoopTrain (scheduler and progress), or None when there is neither; sets
    ``loop["progress"]``."""
    scheduler = None
    if loop["lr_scheduler"] is not None:
        scheduler = make_scheduler(loop["lr_scheduler"], optimizer)
    total = loop["maxiter"]
    progress = make_progress(loop["disp"], loop["disp_every"], loop["bar"], total, "it",
                             "nit", ("f", "|g|_inf", "lr"))
    loop["progress"] = progress
    if scheduler is None and progress is None:
        return None
    # Progress is shown every disp_every iterations; a bar alone moves about 1000 times a run.
    stride = loop["disp_every"] if loop["disp"] >= 2 else \
        (max(1, total // 1000) if total < 10**9 else 1000)
    return LoopTrain(optimizer, scheduler, native, progress, stride, total)


def _print_summary(name, result):
    print(result.message)
    print(f"         Method: fastopt.{name}")
    print(f"         Current function value: {result.fun:.6f}")
    print(f"         Iterations: {result.nit}")
    print(f"         Function evaluations: {result.nfev}")
    print(f"         Gradient evaluations: {result.njev}")
