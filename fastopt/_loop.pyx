"""The minimize loop of one problem: evaluate, check, stop or update, project.

The driver (fastopt/_driver.py) validates everything and prepares the buffers; this module
owns only the iteration, in the manner of SciPy's ``_lbfgsb_py.py``. The iteration is a set of
C functions over a ``Problem`` struct (fastopt/_loop.pxd): ``measure`` (the projected
gradient's norm and finiteness), ``check_stop`` (the stopping rules), ``advance`` (keep the
iterate, apply the optimizer's ``UpdateRule`` through its state arrays' pointers, project onto
the bounds), inline functions in fastopt/_iteration.pxi. The batch loops (fastopt/_batch.pyx)
compile the same functions, so every path stops on the same rules.

Two ways to evaluate the objective:

* a Python ``fun`` (and ``jac``): ``minimize_loop`` calls it with the GIL, the rest of an
  iteration costs a few hundred nanoseconds;
* a C function from a ``scipy.LowLevelCallable`` (fastopt/_native.pyx): ``run_native`` runs
  the whole loop in C without the GIL, unless a callback or ``return_all`` needs Python after
  each iteration. Run from the main thread, it takes the GIL every few milliseconds to run
  Python's signal handlers, so that Ctrl-C raises KeyboardInterrupt (src_c/fastopt_interrupt.h);
  x is the driver's copy of x0, which stays untouched.

Iteration j (1-based) updates x, projects it, evaluates f and g there, and then calls the
callback, so the j-th callback call sees the iterate after j updates. Stopping rules are checked
on each iterate before it is updated: a non-finite f or g (status 3, the previous iterate is
returned), the projected gradient's inf-norm <= gtol, the relative decrease of f <= ftol,
the step's inf-norm <= xtol (status 0), nit == maxiter (status 1). A callback raising
StopIteration ends the run with status 99. Adam's bias corrections use running products of
the betas (``rule_step_next``), not pow(): see RuleStep in fastopt/_kernels_decl.pxi; a rule's
running scalars (NAdam's mu_product) start at their declared values and are advanced by
``rule_step_next`` too.

A learning-rate scheduler (options ``lr_scheduler``) and progress (``disp=2``, ``progress``)
come in as a ``LoopTrain`` (None without them: the loops then run as before, a NULL test per
iteration in run_native). The scheduler is stepped after each update: the C schedule
(fastopt/_schedule.pxd) inside run_native without the GIL for a C objective, the Python one
otherwise; progress with a C objective runs run_native in segments of ``stride`` iterations.
"""

cimport numpy as cnp
from cpython.exc cimport PyErr_CheckSignals
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.math cimport NAN, isfinite
from libc.string cimport memcpy

from fastopt._clip cimport clip_spec_init
from fastopt._kernels cimport MAX_POWERS, rule_step_zero
from fastopt._schedule cimport SCHEDULE_ERROR_PAST_END, schedule_init
from fastopt._native cimport NativeObjective
from fastopt._fpenv cimport fastopt_flush_begin, fastopt_flush_bits

import threading

import numpy as np
from scipy.optimize import OptimizeResult

from fastopt._conventions import fun_and_grad
from fastopt._step import _SPECS, kernel_spec

cnp.import_array()

# How ``fun`` and ``jac`` give the gradient.
EVAL_FUN_AND_GRAD = 0  # fun(x, *args) -> (f, g)
EVAL_SEPARATE = 1  # fun(x, *args) -> f, jac(x, *args) -> g
EVAL_FINITE_DIFF = 2  # fun(x, *args) -> f, jac(x, f) -> g  (the driver's finite differences)
EVAL_NATIVE = 3  # fun is a NativeObjective

STATUS_CONVERGED = 0
STATUS_MAXITER = 1
STATUS_NONFINITE = 3
STATUS_CALLBACK = 99

# check_stop's codes as (status, the convergence test that held).
STOP_RESULTS = {
    STOP_GTOL: (STATUS_CONVERGED, "gtol"),
    STOP_FTOL: (STATUS_CONVERGED, "ftol"),
    STOP_XTOL: (STATUS_CONVERGED, "xtol"),
    STOP_MAXITER: (STATUS_MAXITER, None),
    STOP_NONFINITE: (STATUS_NONFINITE, None),
    STOP_CALLBACK: (STATUS_CALLBACK, None),
}


cdef int init_problem(Problem* p, cnp.ndarray x, cnp.ndarray x_prev, cnp.ndarray g,
                      cnp.ndarray g_prev, Rule rule, tuple slots, object lower, object upper,
                      const Tolerances* tol) except -1:
    """Point ``p`` at the arrays of one problem (1-D, C-contiguous, all of x's dtype)."""
    cdef Py_ssize_t k
    cdef void* state[MAX_STATE]
    for k in range(MAX_STATE):
        state[k] = _data(slots[k]) if k < len(slots) else NULL
    init_problem_at(p, cnp.PyArray_DATA(x), cnp.PyArray_DATA(x_prev), cnp.PyArray_DATA(g),
                    cnp.PyArray_DATA(g_prev), state, _data(lower), _data(upper),
                    cnp.PyArray_SIZE(x), cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT, rule, tol)
    return 0


cdef void init_problem_at(Problem* p, void* x, void* x_prev, void* g, void* g_prev,
                          void** state, const void* lower, const void* upper, Py_ssize_t n,
                          bint single, Rule rule, const Tolerances* tol) noexcept:
    """init_problem from the buffers' addresses (``state``: MAX_STATE of them, NULL for the
    slots the rule does not use)."""
    cdef Py_ssize_t k
    p.x = x
    p.x_prev = x_prev
    p.g = g
    p.g_prev = g_prev
    for k in range(MAX_STATE):
        p.state[k] = state[k]
    p.lower = lower
    p.upper = upper
    p.n = n
    p.single = single
    p.rule = rule.rule
    p.clock = rule_step_zero(&p.rule)
    p.track_step = tol.xtol > 0
    p.g_owned = False
    p.nit = p.nfev = 0
    p.f = p.f_prev = 0.0
    p.gnorm = p.step = 0.0
    clip_spec_init(None, &p.clip)  # off: the drivers turn it on (init_clipping)
    p.clip_buf = NULL


cdef object init_clipping(Problem* p, object clip, cnp.ndarray like):
    """Turn on the clipping ``clip`` asks for (None, or fastopt._clipping.ClipSettings) in
    ``p``; returns the buffer p.clip_buf points into (keep it alive), like ``like``."""
    clip_spec_init(clip, &p.clip)
    if not p.clip.on:
        return None
    buf = np.empty_like(like)
    p.clip_buf = cnp.PyArray_DATA(buf)
    return buf


cdef inline void* _data(object a):
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


# ---------------------------------------------------------------------------------------------
# Converting what the user's functions return

cdef double as_scalar(object f) except? -1.0:
    if isinstance(f, float):  # Python float, numpy.float64
        return <double>f
    arr = np.asarray(f)
    if arr.size != 1:
        raise ValueError(f"fun must return a scalar, got an array of shape {arr.shape}")
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"fun must return a real scalar, got {arr.dtype}")
    return float(arr.reshape(-1)[0])


cdef object as_gradient(object g, cnp.ndarray x, cnp.ndarray gbuf):
    """``g`` itself when it is usable as is, else its values converted into ``gbuf``."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef char* g0
    cdef char* x0
    cdef Py_ssize_t nbytes
    if (cnp.PyArray_Check(g) and cnp.PyArray_TYPE(<cnp.ndarray>g) == cnp.PyArray_TYPE(x)
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>g)
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>g)
            and cnp.PyArray_SIZE(<cnp.ndarray>g) == n):
        # The kernels read g[i] before writing x[i]: g may *be* x, but not overlap it shifted.
        g0 = <char*>cnp.PyArray_DATA(<cnp.ndarray>g)
        x0 = <char*>cnp.PyArray_DATA(x)
        nbytes = cnp.PyArray_NBYTES(x)
        if g0 == x0 or g0 >= x0 + nbytes or x0 >= g0 + nbytes:
            return g
    try:
        arr = np.asarray(g)
    except (TypeError, ValueError) as exc:  # e.g. a ragged list: say whose value it was
        raise TypeError(f"jac must return {n} real values, got {type(g).__name__} ({exc})") \
            from None
    if arr.size != n:
        raise ValueError(f"jac must return {n} values (shape ({n},)), got shape {arr.shape}")
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"jac must return real values, got dtype {arr.dtype}")
    np.copyto(gbuf.reshape(-1), arr.reshape(-1), casting="unsafe")  # gbuf: C-contiguous
    return gbuf


# ---------------------------------------------------------------------------------------------
# The loop

def minimize_loop(
    cnp.ndarray x not None,           # INOUT: x0 on entry (1-D, C-contiguous, float32/64)
    Rule rule not None,               # the optimizer's kernel kind and scalars
    tuple slots not None,             # INOUT: its state arrays, in the rule's slot order
    object fun,                       # a Python callable, or a NativeObjective (EVAL_NATIVE)
    object jac,
    tuple args,
    int mode,                         # EVAL_*
    object lower,                     # bounds in x's dtype, or None (both or neither)
    object upper,
    Py_ssize_t maxiter,
    double gtol,
    double ftol,
    double xtol,
    object callback,                  # None, or a callable
    bint new_style_callback,          # callback(intermediate_result=...) vs callback(x)
    list allvecs,                     # None, or a list to append a copy of each iterate to
    int n_threads,
    LoopTrain train=None,             # a schedule and/or progress (None: neither)
    object clip=None,                 # None, or fastopt._clipping.ClipSettings
    bint flush=False,                 # the flush-to-zero mode (option flush_subnormals)
):
    """Run the iteration; returns ``(status, reason, nit, nfev, njev, fun, jac)``.

    ``reason`` names the convergence test that stopped a run with status 0
    (``"gtol"``, ``"ftol"``, ``"xtol"``), else None. ``jac`` is a copy.

    With ``flush``, this thread's FTZ/DAZ bits are set around the C parts only: the whole
    C loop (run_native), or each update and C objective call of this loop; the Python
    functions run in the caller's mode (src_c/fastopt_fpenv.h).
    """
    cdef Tolerances tol = Tolerances(maxiter, gtol, ftol, xtol)
    cdef Problem p
    cdef NativeObjective native = fun if mode == EVAL_NATIVE else None
    cdef cnp.ndarray gbuf = np.empty_like(x)
    cdef int stop
    x_prev, g_prev = np.empty_like(x), np.empty_like(x)  # p points into them: keep them here
    init_problem(&p, x, x_prev, gbuf, g_prev, rule, slots, lower, upper, &tol)
    if train is not None:
        train.start(&p)
    clip_buf = init_clipping(&p, clip, x)  # (p points into it: kept here)
    jac_out = run_loop(&p, &tol, mode, fun, jac, args, native, x, gbuf, callback,
                       new_style_callback, allvecs, n_threads, train, flush, &stop)
    status, reason = STOP_RESULTS[stop]
    return status, reason, p.nit, p.nfev, p.nfev, p.f, jac_out


cdef object run_loop(Problem* p, const Tolerances* tol, int mode, object fun, object jac,
                     tuple args, NativeObjective native, cnp.ndarray x, cnp.ndarray gbuf,
                     object callback, bint new_style_callback, list allvecs, int n_threads,
                     LoopTrain train, bint flush, int* stop):
    """minimize_loop's iteration on a problem ``init_problem`` prepared (x: its iterate,
    gbuf: its gradient buffer); sets ``stop`` (STOP_*) and returns a copy of the final
    gradient (made here: p.g may point into an array the objective returned)."""
    cdef bint report = (callback is not None or allvecs is not None
                        or (train is not None and train.needs_python))
    cdef bint interruptible
    cdef fastopt_fpenv env
    cdef fastopt_fpcr caller_bits
    # fun sees the iterate through a read-only view: no copy per call, no way to corrupt it.
    cdef cnp.ndarray x_view = x.view()
    cnp.PyArray_CLEARFLAGS(x_view, cnp.NPY_ARRAY_WRITEABLE)  # (flags.writeable = False)
    g = gbuf  # the array p.g points into (kept alive here)

    if native is not None:
        p.g_owned = True
        env = fastopt_flush_begin(flush)
        evaluate_native(p, native.fun, native.user_data)
        fastopt_fpenv_restore(env)
    else:
        g = _evaluate(p, mode, fun, jac, args, x_view, x, gbuf)
    if train is not None:
        train.show(p, False)  # the starting point's line
    while True:
        stop[0] = check_stop(p, tol)
        if stop[0] != STOP_NONE:
            break
        if native is not None and not report:
            # Only the main thread runs signal handlers: elsewhere, no check, no GIL taken.
            interruptible = threading.get_ident() == threading.main_thread().ident
            caller_bits = fastopt_flush_bits()  # (signal handlers run in the caller's mode)
            env = fastopt_flush_begin(flush)
            try:
                if train is None:
                    with nogil:
                        stop[0] = run_native(p, tol, native.fun, native.user_data, n_threads,
                                             interruptible, NULL, caller_bits)
                else:
                    stop[0] = train.run_native(p, tol, native, n_threads, interruptible,
                                               caller_bits)
            finally:
                fastopt_fpenv_restore(env)  # (also on KeyboardInterrupt)
            break
        # With the GIL, cheap: Ctrl-C also stops a loop that runs no bytecode (a C objective
        # with return_all or a builtin callback).
        PyErr_CheckSignals()
        env = fastopt_flush_begin(flush)  # (C code only in between: nothing can raise)
        advance(p, n_threads)
        fastopt_fpenv_restore(env)
        if train is not None:
            train.after_update(p)
        if native is not None:
            env = fastopt_flush_begin(flush)
            evaluate_native(p, native.fun, native.user_data)
            fastopt_fpenv_restore(env)
        else:
            g = _evaluate(p, mode, fun, jac, args, x_view, x, gbuf)
        if train is not None:
            train.show(p, False)
        if p.gnorm < 0 or not isfinite(p.f):
            continue  # not shown to anyone: check_stop returns the previous iterate
        if allvecs is not None:
            allvecs.append(x.copy())
        if callback is not None:
            try:
                if new_style_callback:
                    callback(intermediate_result=OptimizeResult(
                        x=x.copy(), fun=p.f, jac=_copy(p.g, x), nit=p.nit))
                else:
                    callback(x.copy())
            except StopIteration:
                stop[0] = STOP_CALLBACK
                break
    if train is not None:
        train.finish(p)
    return _copy(p.g, x)


cdef cnp.ndarray _copy(const void* values, cnp.ndarray like):
    """A new array like ``like`` (C-contiguous, native byte order) holding its size of
    ``values``."""
    # (np.empty_like's argument parsing and dispatch cost more than the copy of a small x)
    out = cnp.PyArray_SimpleNew(cnp.PyArray_NDIM(like), cnp.PyArray_DIMS(like),
                                cnp.PyArray_TYPE(like))
    memcpy(cnp.PyArray_DATA(out), values, cnp.PyArray_NBYTES(like))
    return out


cdef tuple call_objective(int mode, object fun, object jac, tuple args, object x):
    """(f, g) as a Python objective gives them at ``x``, for the EVAL_* modes."""
    if mode == EVAL_FUN_AND_GRAD:
        out = fun(x, *args)
        if type(out) is tuple and len(<tuple>out) == 2:
            return out
        return fun_and_grad(out)  # a list [f, g] as SciPy takes it, or a precise TypeError
    f = fun(x, *args)
    if mode == EVAL_SEPARATE:
        return f, jac(x, *args)
    return f, jac(x, as_scalar(f))  # EVAL_FINITE_DIFF: the driver's finite differences


cdef object _evaluate(Problem* p, int mode, object fun, object jac, tuple args, object x_view,
                      cnp.ndarray x, cnp.ndarray gbuf):
    """Evaluate the Python objective at x into ``p``; returns the gradient's array."""
    f, g = call_objective(mode, fun, jac, args, x_view)
    p.f = as_scalar(f)
    g = as_gradient(g, x, gbuf)
    p.g = cnp.PyArray_DATA(<cnp.ndarray>g)
    p.nfev += 1
    measure(p)
    return g


# ---------------------------------------------------------------------------------------------
# Schedules and progress in the minimize loop (options lr_scheduler, disp, progress)

cdef class LoopTrain:
    """What the minimize loop does besides iterating: step a learning-rate scheduler after
    each update and show progress. A run without either passes None and pays nothing.

    Parameters
    ----------
    optimizer : fastopt optimizer
        The driver's optimizer (its rule is the loop's); read through ``param_groups``.
    scheduler : scheduler or None
        What ``options["lr_scheduler"]`` made of ``optimizer``.
    native : bool
        The objective is in C: run the scheduler as a C schedule without the GIL when it can
        (``in_c``); one that cannot (LambdaLR, MultiplicativeLR) takes the GIL each iteration.
    progress : fastopt._driver_common.Progress or None
    stride : int
        Iterations between progress reports (lines every ``stride`` iterations).
    """

    def __init__(self, optimizer, scheduler, bint native, progress, Py_ssize_t stride,
                 Py_ssize_t total):
        # (fastopt._driver_common imports this module: its functions are looked up here)
        from fastopt._driver_common import group_lr_momentum, needs_metric
        self.optimizer, self.scheduler, self.progress = optimizer, scheduler, progress
        self.lr_momentum = group_lr_momentum
        self.stride, self.total = max(stride, 1), total
        self.shown_at = -1
        self.ls.momentum_input = self.ls.momentum_power = -1
        self.ls.pow_clock = False
        self.in_c = False
        self.with_metric = scheduler is not None and needs_metric(scheduler)
        if scheduler is not None:
            self.ls.momentum_input, self.ls.momentum_power = _momentum_slot(optimizer._rule)
            if native:
                try:
                    schedule_init(scheduler, &self.ls.s)
                    self.in_c = True
                except TypeError:  # a scheduler that needs Python (LambdaLR, ...)
                    pass
        self.needs_python = scheduler is not None and not self.in_c

    def __dealloc__(self):
        PyMem_Free(self.row_schedules)

    def set_rows(self, list schedulers):
        """Give each of the batch's problems a C schedule of its own (minimize_batch with
        ReduceLROnPlateau, or with per-problem learning rates): from ``schedulers``, one per
        problem (only their ``s`` is used: the momentum's slot and powers stay this one's).
        Returns their learning rates now (float64)."""
        cdef Py_ssize_t i, m = len(schedulers)
        self._alloc_rows(m)
        lrs = np.empty(m)
        for i in range(m):
            schedule_init(schedulers[i], &self.row_schedules[i].s)
            lrs[i] = self.row_schedules[i].s.lr
        return lrs

    def copy_rows(self, Py_ssize_t m):
        """Give each of m problems a copy of this C schedule; returns their learning rates
        (float64)."""
        cdef Py_ssize_t i
        if not self.in_c:
            raise TypeError("internal error: copy_rows needs a C schedule")
        self._alloc_rows(m)
        for i in range(m):
            self.row_schedules[i].s = self.ls.s
        return np.full(m, self.ls.s.lr)

    cdef int _alloc_rows(self, Py_ssize_t m) except -1:
        PyMem_Free(self.row_schedules)
        self.row_schedules = NULL
        self.n_rows = 0
        self.row_schedules = <LoopSchedule*>PyMem_Malloc(max(m, 1) * sizeof(LoopSchedule))
        if self.row_schedules == NULL:
            raise MemoryError()
        self.n_rows = m
        return 0

    cdef int check_schedule(self, int error) except -1:
        """Raise the ValueError the Python scheduler raises for the C schedules' error
        (``error``: a copy's, e.g. minimize_batch's chunks'; this one's and the per-problem
        ones' are read here); 0 when there is none."""
        cdef Py_ssize_t i
        if self.in_c:
            error = max(error, self.ls.s.error)
            for i in range(self.n_rows if self.row_schedules != NULL else 0):
                error = max(error, self.row_schedules[i].s.error)
        if error == SCHEDULE_ERROR_PAST_END:
            raise ValueError("lr_scheduler: the scheduler was stepped past its total number "
                             "of steps (OneCycleLR's total_steps): give it at least maxiter "
                             "steps")
        if error != 0:
            raise ValueError("lr_scheduler: the scheduler computed a learning rate that is "
                             "negative, NaN or infinite, which the optimizer refuses (the "
                             "Python scheduler's step raises ValueError there): check its "
                             "arguments (eta_min, gamma, power, ...)")
        return 0

    cdef int start(self, Problem* p) except -1:
        cdef int k
        for k in range(MAX_POWERS):
            self.ls.rates[k] = p.rule.rates[k]
        return 0

    cdef int after_update(self, Problem* p) except -1:
        """Step the scheduler after an update, with the GIL."""
        if self.scheduler is None:
            return 0
        if self.in_c:
            schedule_next(p, &self.ls)
            return 0
        if self.with_metric:
            self.scheduler.step(p.f_prev)
        else:
            self.scheduler.step()
        lr, momentum = self.lr_momentum(self.optimizer)
        set_schedule_values(p, &self.ls, lr, momentum)
        return 0

    cdef int show(self, Problem* p, bint last) except -1:
        """Report progress at iteration p.nit: every ``stride`` iterations, and at the end."""
        if self.progress is None or p.nit == self.shown_at or (p.nit % self.stride != 0
                                                               and not last):
            return 0
        self.shown_at = p.nit
        if self.progress.lines and (p.nit % self.progress.every == 0 or last):
            self.progress.line(p.nit, p.f, p.gnorm if p.gnorm >= 0 else NAN, p.rule.lr)
        self.progress.update(p.nit)
        return 0

    cdef int finish(self, Problem* p) except -1:
        self.show(p, True)
        self.check_schedule(0)
        return 0

    cdef int run_native(self, Problem* p, const Tolerances* tol, NativeObjective native,
                        int n_threads, bint interruptible, fastopt_fpcr caller_bits) except -2:
        """run_native with the C schedule, in segments of ``stride`` iterations between which
        progress is shown (one segment without progress; the display in the caller's flush
        mode ``caller_bits``)."""
        cdef LoopSchedule* schedule = &self.ls if self.in_c else NULL
        cdef Tolerances segment = tol[0]
        cdef int stop
        cdef fastopt_fpenv python
        while True:
            if self.progress is not None:
                segment.maxiter = min(tol.maxiter, (p.nit // self.stride + 1) * self.stride)
            with nogil:
                stop = run_native(p, &segment, native.fun, native.user_data, n_threads,
                                  interruptible, schedule, caller_bits)
            if stop != STOP_MAXITER or p.nit >= tol.maxiter:
                return stop
            python = fastopt_follow_begin(caller_bits)
            try:
                self.show(p, False)
            finally:
                fastopt_fpenv_restore(python)


def _momentum_slot(Rule rule):
    """(index of the momentum's input in the rule's inputs, its index among the powered
    rates) for a rule whose momentum a scheduler may cycle (torch's ``momentum`` or
    ``betas[0]``: the kernels' momentum or beta1); -1 where there is none."""
    kind = rule.kind
    names, powers = kernel_spec(kind)[0], _SPECS[kind][3]
    for name in ("momentum", "beta1"):
        if name in names:
            return names.index(name) - 1, (powers.index(name) if name in powers else -1)
    return -1, -1
