"""The minimize loop: Python evaluates ``fun``/``jac``, the kernel updates ``x`` in place.

The driver (fastopt/_driver.py) validates everything and prepares the buffers; this module
owns only the iteration, in the manner of SciPy's ``_lbfgsb_py.py``. It reaches the optimizer
through its C-level ``UpdateRule`` (fastopt/_kernels.pxd) and its state arrays' pointers, and
does its own per-iteration work -- the gradient's norm and finiteness, the projection onto the
bounds, the copy of the last iterate -- in C loops, so that an iteration costs the user's
function plus a few hundred nanoseconds. Nothing is allocated per iteration unless a callback
or ``return_all`` asks for copies, or ``jac`` returns something other than a contiguous array
of x's dtype (it is then converted into a buffer).

The structure is the one a C-level objective can later run without the GIL: evaluate,
check, stop or update, project.

Iteration j (1-based) updates x, projects it, evaluates f and g there, and then calls the
callback, so the j-th callback call sees the iterate after j updates. Stopping rules are checked
on each iterate before it is updated: a non-finite f or g (status 3, the previous iterate is
returned), the projected gradient's inf-norm <= gtol, the relative decrease of f <= ftol,
the step's inf-norm <= xtol (status 0), nit == maxiter (status 1). A callback raising
StopIteration ends the run with status 99.
"""

cimport numpy as cnp
from cython cimport floating
from libc.math cimport fabs, isfinite
from libc.string cimport memcpy

from fastopt._kernels cimport MAX_STATE, apply_rule
from fastopt._step cimport Rule

import numpy as np
from scipy.optimize import OptimizeResult

cnp.import_array()

# How ``fun`` and ``jac`` give the gradient.
EVAL_FUN_AND_GRAD = 0  # fun(x, *args) -> (f, g)
EVAL_SEPARATE = 1  # fun(x, *args) -> f, jac(x, *args) -> g
EVAL_FINITE_DIFF = 2  # fun(x, *args) -> f, jac(x, f) -> g  (the driver's finite differences)

STATUS_CONVERGED = 0
STATUS_MAXITER = 1
STATUS_NONFINITE = 3
STATUS_CALLBACK = 99


# ---------------------------------------------------------------------------------------------
# C loops over the iterate (fused float32/float64; bounds, when given, in x's dtype)

cdef double _projected_grad_norm(const floating* g, const floating* x, const floating* lo,
                                 const floating* hi, Py_ssize_t n) noexcept nogil:
    """Inf-norm of the gradient projected on the box; -1 if an element is not finite.

    A component pushing x out of an active bound is zero, as in L-BFGS-B's projected gradient.
    """
    cdef Py_ssize_t i
    cdef double gi, norm = 0.0
    for i in range(n):
        gi = g[i]
        if not isfinite(gi):
            return -1.0
        if lo != NULL and ((x[i] <= lo[i] and gi > 0) or (x[i] >= hi[i] and gi < 0)):
            continue
        gi = fabs(gi)
        if gi > norm:
            norm = gi
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
        if d > step:
            step = d
    return step


cdef double _grad_norm(bint single, object g, void* x, void* lo, void* hi, Py_ssize_t n):
    if single:
        return _projected_grad_norm(<const float*>_data(g), <const float*>x, <const float*>lo,
                                    <const float*>hi, n)
    return _projected_grad_norm(<const double*>_data(g), <const double*>x, <const double*>lo,
                                <const double*>hi, n)


cdef inline void* _data(object a):
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


# ---------------------------------------------------------------------------------------------
# Converting what the user's functions return

cdef double _as_scalar(object f) except? -1.0:
    if isinstance(f, float):  # Python float, numpy.float64
        return <double>f
    arr = np.asarray(f)
    if arr.size != 1:
        raise ValueError(f"fun must return a scalar, got an array of shape {arr.shape}")
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"fun must return a real scalar, got {arr.dtype}")
    return float(arr.reshape(-1)[0])


cdef object _as_gradient(object g, cnp.ndarray x, cnp.ndarray gbuf):
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
    object fun,
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
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x), nit = 0, nfev = 0, njev = 0, k
    cdef bint single = cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT
    cdef cnp.ndarray x_prev = np.empty_like(x)
    cdef cnp.ndarray g_prev = np.empty_like(x)
    cdef cnp.ndarray gbuf = np.empty_like(x)
    cdef Py_ssize_t nbytes = cnp.PyArray_NBYTES(x)
    cdef void* state[MAX_STATE]
    cdef void* lo = _data(lower)
    cdef void* hi = _data(upper)
    cdef void* xp = cnp.PyArray_DATA(x)
    cdef double f, f_prev = 0.0, gnorm, step = 0.0
    cdef int status
    reason = None

    for k in range(MAX_STATE):
        state[k] = _data(slots[k]) if k < len(slots) else NULL
    # fun sees the iterate through a read-only view: no copy per call, no way to corrupt it.
    x_view = x.view()
    x_view.flags.writeable = False

    f, g = _evaluate(mode, fun, jac, args, x_view, x, gbuf)
    nfev += 1
    njev += 1
    gnorm = _grad_norm(single, g, xp, lo, hi, n)
    while True:
        if gnorm < 0 or not isfinite(f):
            status = STATUS_NONFINITE
            if nit > 0:  # return the last finite iterate, with its value and gradient
                memcpy(xp, cnp.PyArray_DATA(x_prev), nbytes)
                f, g, nit = f_prev, g_prev, nit - 1
            break
        if gnorm <= gtol:
            status, reason = STATUS_CONVERGED, "gtol"
            break
        if nit > 0 and ftol > 0 and fabs(f_prev - f) <= ftol * max(fabs(f_prev), fabs(f), 1.0):
            status, reason = STATUS_CONVERGED, "ftol"
            break
        if nit > 0 and xtol > 0 and step <= xtol:
            status, reason = STATUS_CONVERGED, "xtol"
            break
        if nit >= maxiter:
            status = STATUS_MAXITER
            break

        memcpy(cnp.PyArray_DATA(x_prev), xp, nbytes)
        memcpy(cnp.PyArray_DATA(g_prev), _data(g), nbytes)
        f_prev = f
        apply_rule(&rule.rule, single, xp, _data(g), state, n, nit + 1, n_threads)
        if lo == NULL and xtol <= 0:
            pass  # nothing to project, no step length needed
        elif single:
            step = _project_and_step(<float*>xp, <const float*>cnp.PyArray_DATA(x_prev),
                                     <const float*>lo, <const float*>hi, n)
        else:
            step = _project_and_step(<double*>xp, <const double*>cnp.PyArray_DATA(x_prev),
                                     <const double*>lo, <const double*>hi, n)
        nit += 1

        f, g = _evaluate(mode, fun, jac, args, x_view, x, gbuf)
        nfev += 1
        njev += 1
        gnorm = _grad_norm(single, g, xp, lo, hi, n)
        if gnorm < 0 or not isfinite(f):
            continue  # not shown to anyone: the top of the loop returns the previous iterate
        if allvecs is not None:
            allvecs.append(x.copy())
        if callback is not None:
            try:
                if new_style_callback:
                    callback(intermediate_result=OptimizeResult(
                        x=x.copy(), fun=f, jac=np.array(g, copy=True), nit=nit))
                else:
                    callback(x.copy())
            except StopIteration:
                status = STATUS_CALLBACK
                break
    return status, reason, nit, nfev, njev, f, np.array(g, copy=True)


cdef tuple _evaluate(int mode, object fun, object jac, tuple args, object x_view,
                     cnp.ndarray x, cnp.ndarray gbuf):
    """(f, g) at the current iterate, f as a double and g as a contiguous array of x's dtype."""
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
        g = jac(x_view, _as_scalar(f))
    return _as_scalar(f), _as_gradient(g, x, gbuf)
