"""The minimize loop of one problem: evaluate, check, stop or update, project.

The driver (fastopt/_driver.py) validates everything and prepares the buffers; this module
owns only the iteration, in the manner of SciPy's ``_lbfgsb_py.py``. The iteration is a set of
C functions over a ``Problem`` struct (fastopt/_loop.pxd): ``measure`` (the projected
gradient's norm and finiteness), ``check_stop`` (the stopping rules), ``advance`` (keep the
iterate, apply the optimizer's ``UpdateRule`` through its state arrays' pointers, project onto
the bounds). The batch loops (fastopt/_batch.pyx) use the same functions, so every path stops
on the same rules.

Two ways to evaluate the objective:

* a Python ``fun`` (and ``jac``): ``minimize_loop`` calls it with the GIL, the rest of an
  iteration costs a few hundred nanoseconds;
* a C function from a ``scipy.LowLevelCallable`` (fastopt/_native.pyx): ``run_native`` runs
  the whole loop in C without the GIL, unless a callback or ``return_all`` needs Python after
  each iteration.

Iteration j (1-based) updates x, projects it, evaluates f and g there, and then calls the
callback, so the j-th callback call sees the iterate after j updates. Stopping rules are checked
on each iterate before it is updated: a non-finite f or g (status 3, the previous iterate is
returned), the projected gradient's inf-norm <= gtol, the relative decrease of f <= ftol,
the step's inf-norm <= xtol (status 0), nit == maxiter (status 1). A callback raising
StopIteration ends the run with status 99. Adam's bias corrections use running products of
the betas (``rule_step_next``), not pow(): see RuleStep in fastopt/_kernels_decl.pxi.
"""

cimport numpy as cnp
from cython cimport floating
from libc.math cimport fabs, fmax, isfinite
from libc.string cimport memcpy

from fastopt._kernels cimport apply_rule, rule_step_next, rule_step_zero
from fastopt._native cimport NativeObjective
from fastopt._step cimport Rule

import numpy as np
from scipy.optimize import OptimizeResult

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


# ---------------------------------------------------------------------------------------------
# C loops over the iterate (fused float32/float64; bounds, when given, in x's dtype)

cdef double _projected_grad_norm(const floating* g, const floating* x, const floating* lo,
                                 const floating* hi, Py_ssize_t n) noexcept nogil:
    """Inf-norm of the gradient projected on the box; -1 if an element is not finite.

    A component pushing x out of an active bound is zero, as in L-BFGS-B's projected gradient.
    Branch-free without bounds (a conditional move, maxsd; 0 * g is NaN for a NaN or inf g):
    which component is largest changes from one iteration to the next, and a mispredicted
    branch costs as much as a small problem's whole update. (libm's fmax is a call.)
    """
    cdef Py_ssize_t i
    cdef double gi, norm = 0.0, nonfinite = 0.0
    if lo == NULL:
        for i in range(n):
            gi = g[i]
            nonfinite += 0.0 * gi
            gi = fabs(gi)
            norm = gi if gi > norm else norm
        return norm if nonfinite == 0.0 else -1.0
    for i in range(n):
        gi = g[i]
        if not isfinite(gi):
            return -1.0
        if (x[i] <= lo[i] and gi > 0) or (x[i] >= hi[i] and gi < 0):
            continue
        gi = fabs(gi)
        norm = gi if gi > norm else norm
    return norm


cdef double _project_and_step(floating* x, const floating* x_prev, const floating* lo,
                              const floating* hi, Py_ssize_t n) noexcept nogil:
    """Clip x onto [lo, hi] (when lo is given); return the inf-norm of x - x_prev."""
    cdef Py_ssize_t i
    cdef double step = 0.0, d
    for i in range(n):
        if lo != NULL:
            if x[i] < lo[i]:
                x[i] = lo[i]
            elif x[i] > hi[i]:
                x[i] = hi[i]
        d = fabs(<double>x[i] - <double>x_prev[i])
        step = d if d > step else step
    return step


# ---------------------------------------------------------------------------------------------
# One problem's iteration (declared in _loop.pxd)

cdef inline size_t _nbytes(const Problem* p) noexcept nogil:
    return p.n * (sizeof(float) if p.single else sizeof(double))


cdef void measure(Problem* p) noexcept nogil:
    """Set ``gnorm`` from ``g`` at ``x``."""
    if p.single:
        p.gnorm = _projected_grad_norm(<const float*>p.g, <const float*>p.x,
                                       <const float*>p.lower, <const float*>p.upper, p.n)
    else:
        p.gnorm = _projected_grad_norm(<const double*>p.g, <const double*>p.x,
                                       <const double*>p.lower, <const double*>p.upper, p.n)


cdef int check_stop(Problem* p, const Tolerances* tol) noexcept nogil:
    """The stopping rule that holds at the evaluated iterate (STOP_*), or STOP_NONE.

    On a non-finite f or g, goes back to the previous iterate, its value and its gradient.
    """
    if p.gnorm < 0 or not isfinite(p.f):
        if p.nit > 0:
            memcpy(p.x, p.x_prev, _nbytes(p))
            p.g = p.g_prev
            p.f = p.f_prev
            p.nit -= 1
        return STOP_NONFINITE
    if p.gnorm <= tol.gtol:
        return STOP_GTOL
    if (p.nit > 0 and tol.ftol > 0
            and fabs(p.f_prev - p.f) <= tol.ftol * fmax(fmax(fabs(p.f_prev), fabs(p.f)), 1.0)):
        return STOP_FTOL
    if p.nit > 0 and tol.xtol > 0 and p.step <= tol.xtol:
        return STOP_XTOL
    if p.nit >= tol.maxiter:
        return STOP_MAXITER
    return STOP_NONE


cdef void advance(Problem* p, int n_threads) noexcept nogil:
    """Keep the iterate, update x in place, project it onto the bounds (``step`` too)."""
    cdef size_t nbytes = _nbytes(p)
    cdef void* g
    memcpy(p.x_prev, p.x, nbytes)
    if not p.g_owned:
        memcpy(p.g_prev, p.g, nbytes)  # before the update: g may be x itself
    p.f_prev = p.f
    rule_step_next(&p.rule, &p.clock)
    apply_rule(&p.rule, p.single, p.x, p.g, p.state, p.n, &p.clock, n_threads)
    if p.g_owned:  # the next evaluation writes into g_prev's buffer: swap, not copy
        g, p.g = p.g, p.g_prev
        p.g_prev = g
    if p.lower == NULL and not p.track_step:
        pass  # nothing to project, no step length needed
    elif p.single:
        p.step = _project_and_step(<float*>p.x, <const float*>p.x_prev, <const float*>p.lower,
                                   <const float*>p.upper, p.n)
    else:
        p.step = _project_and_step(<double*>p.x, <const double*>p.x_prev,
                                   <const double*>p.lower, <const double*>p.upper, p.n)
    p.nit += 1


cdef void evaluate_native(Problem* p, void* fun, void* user_data) noexcept nogil:
    """f and g at x from a C objective (objective_f32 or objective_f64, as x's dtype)."""
    if p.single:
        p.f = (<objective_f32>fun)(<int>p.n, <const float*>p.x, <float*>p.g, user_data)
    else:
        p.f = (<objective_f64>fun)(<int>p.n, <const double*>p.x, <double*>p.g, user_data)
    p.nfev += 1
    measure(p)


cdef int run_native(Problem* p, const Tolerances* tol, void* fun, void* user_data,
                    int n_threads) noexcept nogil:
    """Iterate from an evaluated iterate until a stopping rule holds; returns it."""
    cdef int stop = check_stop(p, tol)
    while stop == STOP_NONE:
        advance(p, n_threads)
        evaluate_native(p, fun, user_data)
        stop = check_stop(p, tol)
    return stop


cdef int init_problem(Problem* p, cnp.ndarray x, cnp.ndarray x_prev, cnp.ndarray g,
                      cnp.ndarray g_prev, Rule rule, tuple slots, object lower, object upper,
                      const Tolerances* tol) except -1:
    """Point ``p`` at the arrays of one problem (1-D, C-contiguous, all of x's dtype)."""
    cdef Py_ssize_t k
    p.x = cnp.PyArray_DATA(x)
    p.x_prev = cnp.PyArray_DATA(x_prev)
    p.g = cnp.PyArray_DATA(g)
    p.g_prev = cnp.PyArray_DATA(g_prev)
    for k in range(MAX_STATE):
        p.state[k] = _data(slots[k]) if k < len(slots) else NULL
    p.lower = _data(lower)
    p.upper = _data(upper)
    p.n = cnp.PyArray_SIZE(x)
    p.single = cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT
    p.rule = rule.rule
    p.clock = rule_step_zero()
    p.track_step = tol.xtol > 0
    p.g_owned = False
    p.nit = p.nfev = 0
    p.f = p.f_prev = 0.0
    p.gnorm = p.step = 0.0
    return 0


cdef inline void* _data(object a):
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


def stop_result(int stop):
    """(status, reason) of a check_stop code."""
    return STOP_RESULTS[stop]


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
    arr = np.asarray(g)
    if arr.size != n:
        raise ValueError(f"jac must return {n} values (shape ({n},)), got shape {arr.shape}")
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"jac must return real values, got dtype {arr.dtype}")
    np.copyto(gbuf, arr.reshape(-1), casting="unsafe")
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
):
    """Run the iteration; returns ``(status, reason, nit, nfev, njev, fun, jac)``.

    ``reason`` names the convergence test that stopped a run with status 0
    (``"gtol"``, ``"ftol"``, ``"xtol"``), else None. ``jac`` is a copy.
    """
    cdef Tolerances tol = Tolerances(maxiter, gtol, ftol, xtol)
    cdef Problem p
    cdef NativeObjective native = fun if mode == EVAL_NATIVE else None
    cdef cnp.ndarray gbuf = np.empty_like(x)
    cdef bint report = callback is not None or allvecs is not None
    cdef int stop
    x_prev, g_prev = np.empty_like(x), np.empty_like(x)  # p points into them: keep them here
    init_problem(&p, x, x_prev, gbuf, g_prev, rule, slots, lower, upper, &tol)
    # fun sees the iterate through a read-only view: no copy per call, no way to corrupt it.
    x_view = x.view()
    x_view.flags.writeable = False
    g = gbuf  # the array p.g points into (kept alive here)

    if native is not None:
        p.g_owned = True
        evaluate_native(&p, native.fun, native.user_data)
    else:
        g = _evaluate(&p, mode, fun, jac, args, x_view, x, gbuf)
    while True:
        stop = check_stop(&p, &tol)
        if stop != STOP_NONE:
            break
        if native is not None and not report:
            with nogil:
                stop = run_native(&p, &tol, native.fun, native.user_data, n_threads)
            break
        advance(&p, n_threads)
        if native is not None:
            evaluate_native(&p, native.fun, native.user_data)
        else:
            g = _evaluate(&p, mode, fun, jac, args, x_view, x, gbuf)
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
                stop = STOP_CALLBACK
                break
    status, reason = STOP_RESULTS[stop]
    return status, reason, p.nit, p.nfev, p.nfev, p.f, _copy(p.g, x)


cdef cnp.ndarray _copy(const void* values, cnp.ndarray like):
    """A new array like ``like`` holding its size of ``values``."""
    out = np.empty_like(like)
    memcpy(cnp.PyArray_DATA(out), values, cnp.PyArray_NBYTES(like))
    return out


cdef object _evaluate(Problem* p, int mode, object fun, object jac, tuple args, object x_view,
                      cnp.ndarray x, cnp.ndarray gbuf):
    """Evaluate the Python objective at x into ``p``; returns the gradient's array."""
    if mode == EVAL_FUN_AND_GRAD:
        out = fun(x_view, *args)
        if not isinstance(out, tuple) or len(out) != 2:
            raise TypeError("with jac=True, fun must return a tuple (f, g), got "
                            f"{type(out).__name__}")
        f, g = out
    elif mode == EVAL_SEPARATE:
        f = fun(x_view, *args)
        g = jac(x_view, *args)
    else:
        f = fun(x_view, *args)
        g = jac(x_view, as_scalar(f))
    p.f = as_scalar(f)
    g = as_gradient(g, x, gbuf)
    p.g = cnp.PyArray_DATA(<cnp.ndarray>g)
    p.nfev += 1
    measure(p)
    return g
