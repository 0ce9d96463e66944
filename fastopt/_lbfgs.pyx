"""The loop of ``fastopt.minimize(method="lbfgs")``: one problem driven through the L-BFGS
engine (src_c/fastopt_lbfgs.h) by reverse communication.

The engine asks for f and g at a point, the loop evaluates them and calls it back; at each new
iterate the loop checks ``maxiter``, ``maxfun`` and the callback, in that order after the
callback, as SciPy's ``_minimize_lbfgsb`` does. Two loops share the engine and the evaluation
order, so they give bitwise the same run:

* ``lbfgs_loop`` with the GIL, for a Python ``fun`` (and ``jac``), and for a C objective
  whenever Python is needed after each iterate (a callback, ``return_all``, ``disp=2``);
* ``_run_native``, without the GIL, for a C objective (a ``scipy.LowLevelCallable``); run
  from the main thread, it takes the GIL every few milliseconds to run Python's signal
  handlers, so that Ctrl-C raises KeyboardInterrupt (src_c/fastopt_interrupt.h).

The engine computes in double. For float32 the loop keeps the engine's point in double,
rounds each evaluation point to float32 in place (the engine reads it back, so the iterates
are float32 values) and widens the float32 gradient.
"""

cimport numpy as cnp
from libc.math cimport NAN
from libc.string cimport memcpy

from fastopt._fpenv cimport (
    fastopt_flush_begin,
    fastopt_flush_bits,
    fastopt_fpcr,
    fastopt_fpenv,
    fastopt_fpenv_restore,
)
from fastopt._loop cimport (
    as_gradient,
    as_scalar,
    call_objective,
    check_signals,
    fastopt_poll,
    fastopt_poll_due,
    fastopt_poll_signals,
    objective_f32,
    objective_f64,
)
from fastopt._native cimport NativeObjective
from fastopt._lbfgs_engine cimport (  # the engine, src_c/fastopt_lbfgs.h
    FASTOPT_DCSRCH_CONV,
    FASTOPT_DCSRCH_FG,
    FASTOPT_LBFGS_EVALUATE,
    FASTOPT_LBFGS_NEW_ITERATE,
    FASTOPT_LBFGS_STOP_FTOL,
    FASTOPT_LBFGS_STOP_GTOL,
    FASTOPT_LBFGS_STOP_LINESEARCH,
    FASTOPT_LBFGS_STOP_NONFINITE,
    fastopt_dcsrch,
    fastopt_dcsrch_next,
    fastopt_dcsrch_start,
    fastopt_lbfgs,
    fastopt_lbfgs_f,
    fastopt_lbfgs_g,
    fastopt_lbfgs_init,
    fastopt_lbfgs_next,
    fastopt_lbfgs_work_size,
    fastopt_lbfgs_x,
)

import threading

import numpy as np
from scipy.optimize import OptimizeResult

from fastopt._loop import EVAL_FINITE_DIFF, EVAL_NATIVE

cnp.import_array()

# Why a run stopped: the engine's codes, and the loop's own.
STOP_GTOL = FASTOPT_LBFGS_STOP_GTOL
STOP_FTOL = FASTOPT_LBFGS_STOP_FTOL
STOP_NONFINITE = FASTOPT_LBFGS_STOP_NONFINITE
STOP_LINESEARCH = FASTOPT_LBFGS_STOP_LINESEARCH
cdef enum:
    STOP_MAXITER_ = 16
    STOP_MAXFUN_ = 17
    STOP_CALLBACK_ = 18
STOP_MAXITER = STOP_MAXITER_
STOP_MAXFUN = STOP_MAXFUN_
STOP_CALLBACK = STOP_CALLBACK_


cdef struct Run:
    # One run's buffers: xd is the engine's point (x's own buffer for float64), gd the
    # gradient in double (the objective's for float64 C objectives), x32/g32 float32 only.
    fastopt_lbfgs s
    Py_ssize_t n
    bint single
    double* xd
    double* gd
    float* x32
    float* g32
    double f
    Py_ssize_t nit
    Py_ssize_t nfev


cdef inline void _round_point(Run* r) noexcept nogil:
    """float32: the evaluation point rounded to float32, written back into the engine's."""
    cdef Py_ssize_t i
    if r.single:
        for i in range(r.n):
            r.x32[i] = <float>r.xd[i]
            r.xd[i] = r.x32[i]


cdef inline void _evaluate_native(Run* r, void* fun, void* user_data) noexcept nogil:
    """f and g of a C objective at the point; the gradient starts NaN (an entry it leaves
    unwritten is non-finite: the engine shrinks the step, or stops at x0)."""
    cdef Py_ssize_t i
    if r.single:
        for i in range(r.n):
            r.g32[i] = NAN
        r.f = (<objective_f32>fun)(<int>r.n, r.x32, r.g32, user_data)
        for i in range(r.n):
            r.gd[i] = r.g32[i]
    else:
        for i in range(r.n):
            r.gd[i] = NAN
        r.f = (<objective_f64>fun)(<int>r.n, r.xd, r.gd, user_data)
    r.nfev += 1


cdef int _run_native(Run* r, int code, void* fun, void* user_data, Py_ssize_t maxiter,
                     Py_ssize_t maxfun, bint interruptible,
                     fastopt_fpcr caller_bits) except -1 nogil:
    """The rest of a run for a C objective, from the engine's first answer ``code``; returns
    the stop code."""
    cdef fastopt_poll poll
    fastopt_poll_signals(&poll, interruptible)
    while True:
        if code == FASTOPT_LBFGS_EVALUATE:
            _round_point(r)
            _evaluate_native(r, fun, user_data)
        elif code == FASTOPT_LBFGS_NEW_ITERATE:
            r.nit += 1
            if r.nit >= maxiter:
                return STOP_MAXITER_
            if r.nfev > maxfun:
                return STOP_MAXFUN_
        else:
            return code
        if fastopt_poll_due(&poll):
            check_signals(&poll, caller_bits)
        code = fastopt_lbfgs_next(&r.s, r.xd, r.f, r.gd)


cdef object _evaluate_python(Run* r, int mode, object fun, object jac, tuple args,
                             object x_view, cnp.ndarray x, cnp.ndarray gbuf):
    """f and g of a Python objective at the point (r.gd points at the gradient); returns the
    gradient's array (kept alive by the caller while r.gd points into it)."""
    cdef Py_ssize_t i
    f, g = call_objective(mode, fun, jac, args, x_view)
    r.f = as_scalar(f)
    g = as_gradient(g, x, gbuf)
    r.nfev += 1
    if r.single:
        for i in range(r.n):
            r.gd[i] = (<float*>cnp.PyArray_DATA(<cnp.ndarray>g))[i]
    else:
        r.gd = <double*>cnp.PyArray_DATA(<cnp.ndarray>g)
    return g


cdef object _evaluate(Run* r, NativeObjective native, int mode, object fun, object jac,
                      tuple args, object x_view, cnp.ndarray x, cnp.ndarray gbuf, object gd,
                      bint flush):
    """f and g at the point, by the C objective (in the flush mode) or the Python one;
    returns the array r.gd points into."""
    cdef fastopt_fpenv env
    if native is None:
        return _evaluate_python(r, mode, fun, jac, args, x_view, x, gbuf)
    env = fastopt_flush_begin(flush)
    _evaluate_native(r, native.fun, native.user_data)
    fastopt_fpenv_restore(env)
    return gd


def lbfgs_loop(
    cnp.ndarray x not None,       # INOUT: x0 on entry (1-D, C-contiguous, float32/64)
    object fun,                   # a Python callable, or a NativeObjective (EVAL_NATIVE)
    object jac,
    tuple args,
    int mode,                     # fastopt._loop's EVAL_*
    object lower,                 # bounds in x's dtype, or None (both or neither)
    object upper,
    Py_ssize_t maxiter,
    Py_ssize_t maxfun,
    double gtol,
    double ftol,
    int maxcor,
    int maxls,
    object callback,              # None, or a callable
    bint new_style_callback,      # callback(intermediate_result=...) vs callback(x)
    list allvecs,                 # None, or a list for a copy of each iterate (x0 first)
    object show=None,             # None, or show(nit, f, g_norm) after each iterate (disp=2)
    bint flush=False,             # the flush-to-zero mode around the C parts
):
    """Run L-BFGS from x; returns ``(stop, nit, nfev, fun, jac)`` (``jac`` a new array of
    x's dtype; x holds the final iterate). ``stop`` is one of the STOP_* codes here.
    With ``mode == EVAL_FINITE_DIFF``, ``jac`` is fastopt's finite-difference gradient and
    its ``nfev`` counts towards ``maxfun``."""
    cdef Run r
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef NativeObjective native = fun if mode == EVAL_NATIVE else None
    cdef bint report = callback is not None or allvecs is not None or show is not None
    cdef int code = FASTOPT_LBFGS_EVALUATE
    cdef bint interruptible
    cdef fastopt_fpenv env
    cdef fastopt_fpcr caller_bits
    cdef Py_ssize_t extra = 0
    cdef const double* lo = NULL
    cdef const double* up = NULL
    cdef Py_ssize_t i

    r.n = n
    r.single = x.dtype == np.float32
    r.nit = 0
    r.nfev = 0
    work = np.empty(fastopt_lbfgs_work_size(n, maxcor), dtype=np.float64)
    xd = np.array(x, dtype=np.float64) if r.single else x
    gd = np.empty(n, dtype=np.float64)
    gbuf = np.empty_like(x)
    r.xd = <double*>cnp.PyArray_DATA(xd)
    r.gd = <double*>cnp.PyArray_DATA(gd)
    r.x32 = <float*>cnp.PyArray_DATA(x) if r.single else NULL
    r.g32 = <float*>cnp.PyArray_DATA(gbuf) if r.single else NULL
    if lower is not None:
        lower64 = np.ascontiguousarray(lower, dtype=np.float64)
        upper64 = np.ascontiguousarray(upper, dtype=np.float64)
        lo = <const double*>cnp.PyArray_DATA(lower64)
        up = <const double*>cnp.PyArray_DATA(upper64)
    fastopt_lbfgs_init(&r.s, n, maxcor, <double*>cnp.PyArray_DATA(work), lo, up, gtol, ftol,
                       maxls, r.xd)
    _round_point(&r)
    # fun sees the iterate through a read-only view: no copy per call, no way to corrupt it.
    x_view = x.view()
    cnp.PyArray_CLEARFLAGS(x_view, cnp.NPY_ARRAY_WRITEABLE)
    if allvecs is not None:
        allvecs.append(x.copy())
    g = _evaluate(&r, native, mode, fun, jac, args, x_view, x, gbuf, gd, flush)

    env = fastopt_flush_begin(flush)
    code = fastopt_lbfgs_next(&r.s, r.xd, r.f, r.gd)
    fastopt_fpenv_restore(env)
    if maxiter == 0 and code == FASTOPT_LBFGS_EVALUATE:
        # No iteration allowed (fastopt's maxiter: the run goes on while nit < maxiter):
        # x0, unless a test held there.
        memcpy(r.xd, fastopt_lbfgs_x(&r.s), n * sizeof(double))
        code = STOP_MAXITER_
    elif native is not None and not report:
        interruptible = threading.get_ident() == threading.main_thread().ident
        caller_bits = fastopt_flush_bits()
        env = fastopt_flush_begin(flush)
        try:
            with nogil:
                code = _run_native(&r, code, native.fun, native.user_data, maxiter, maxfun,
                                   interruptible, caller_bits)
        finally:
            fastopt_fpenv_restore(env)
    else:
        while True:
            if code == FASTOPT_LBFGS_EVALUATE:
                _round_point(&r)
                g = _evaluate(&r, native, mode, fun, jac, args, x_view, x, gbuf, gd, flush)
            elif code == FASTOPT_LBFGS_NEW_ITERATE:
                r.nit += 1
                if allvecs is not None:
                    allvecs.append(x.copy())
                if show is not None:
                    show(r.nit, r.f, _copy_gradient(&r, x))
                if callback is not None:
                    try:
                        if new_style_callback:
                            callback(intermediate_result=OptimizeResult(
                                x=x.copy(), fun=r.f, jac=_copy_gradient(&r, x), nit=r.nit))
                        else:
                            callback(x.copy())
                    except StopIteration:
                        code = STOP_CALLBACK_
                        break
                if r.nit >= maxiter:
                    code = STOP_MAXITER_
                    break
                if mode == EVAL_FINITE_DIFF:
                    extra = jac.nfev
                if r.nfev + extra > maxfun:
                    code = STOP_MAXFUN_
                    break
            else:
                break
            env = fastopt_flush_begin(flush)
            code = fastopt_lbfgs_next(&r.s, r.xd, r.f, r.gd)
            fastopt_fpenv_restore(env)

    if code < STOP_MAXITER_ or (code == STOP_MAXITER_ and r.nit == 0):
        # An engine stop (or maxiter=0): x is the final iterate (restored after a failed
        # search); its f and g are the engine's.
        r.f = fastopt_lbfgs_f(&r.s)
        memcpy(cnp.PyArray_DATA(gd), fastopt_lbfgs_g(&r.s), n * sizeof(double))
        r.gd = <double*>cnp.PyArray_DATA(gd)
    if r.single:
        for i in range(n):
            r.x32[i] = <float>r.xd[i]  # (exact: the engine's points are float32 values)
    return code, r.nit, r.nfev, r.f, _copy_gradient(&r, x)


cdef cnp.ndarray _copy_gradient(Run* r, cnp.ndarray like):
    """A new array of ``like``'s dtype holding the gradient r.gd."""
    cdef Py_ssize_t i
    out = np.empty(r.n, dtype=like.dtype)
    if r.single:
        for i in range(r.n):
            (<float*>cnp.PyArray_DATA(out))[i] = <float>r.gd[i]
    else:
        memcpy(cnp.PyArray_DATA(out), r.gd, r.n * sizeof(double))
    return out


def _dcsrch_steps(phi, double stp, double ftol, double gtol, double xtol, double stpmax,
                  int maxiter=100):
    """Test hook (tests/test_lbfgs_engine.py): the steps the engine's Moré-Thuente search
    (the port of MINPACK-2's dcsrch) evaluates on ``phi(stp) -> (f, derivative)`` from
    ``phi(0)``; returns ``(steps, task)``, task "CONV", "WARN" or "MAXITER"."""
    cdef fastopt_dcsrch ls
    cdef int task
    f, g = phi(0.0)
    fastopt_dcsrch_start(&ls, f, g, stp, ftol, stpmax)
    steps = []
    for _ in range(maxiter):
        steps.append(stp)
        f, g = phi(stp)
        task = fastopt_dcsrch_next(&ls, f, g, &stp, gtol, xtol, stpmax)
        if task != FASTOPT_DCSRCH_FG:
            return steps, "CONV" if task == FASTOPT_DCSRCH_CONV else "WARN"
    return steps, "MAXITER"
