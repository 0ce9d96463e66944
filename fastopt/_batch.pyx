"""The loops of ``fastopt.minimize_batch``: m independent problems of n variables.

Both loops iterate each problem with the single-problem functions of fastopt/_iteration.pxi
(the projected-gradient norm, ``check_stop``, ``advance``) and the same kernel, so a problem
stops on the same rules, at the same iterate, as ``fastopt.minimize`` would stop it alone.

* ``batch_native``: a C objective (one problem per call). Everything runs in C without the
  GIL: chunks of CHUNK_ROWS problems are spread over threads with ``prange`` (dynamic
  schedule: iteration counts differ), and a thread iterates its chunk's problems side by side,
  as below, calling the C objective once per running row per iteration. (One problem at a
  time, with ``run_native``, ran at 0.68x a plain scalar C loop: every update waited for the
  previous one's square root and division. Side by side: 1.1-1.7x, measured with
  ``python -m fastopt bench-loops``.)
* ``batch_python``: a vectorised Python objective, called once per iteration with the rows of
  the problems still running. Those rows are kept packed at the front of the work arrays
  (iterates, state, gradients), so one ``apply_rule`` call updates all of them as one array,
  as fast as one large problem; a problem that stops is written to the results and the rows
  after it move up (_check_rows, _pack, _update_rows, shared with the chunks above).
  Elementwise updates make that bitwise what updating each row alone gives.

The work arrays are (m, n) C-contiguous arrays of x's dtype; the optimizer's state arrays are
those of an optimizer built on all m * n values, which is the m states side by side.
"""

cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memcpy

from fastopt._kernels cimport MAX_STATE, apply_rule, rule_step_next
from fastopt._loop cimport (
    STOP_NONE,
    Problem,
    Tolerances,
    _projected_grad_norm,
    advance,
    as_gradient,
    call_objective,
    check_stop,
    init_problem,
    objective_f32,
    objective_f64,
)
from fastopt._native cimport NativeObjective
from fastopt._step cimport Rule

import numpy as np


cnp.import_array()


cdef void _point_at(Problem* p, const Problem* first, Py_ssize_t i,
                   const double* lrs) noexcept nogil:
    """Point ``p`` (a copy of ``first``, problem 0 of the batch) at problem ``i``: its rows of
    n elements in every array, and its learning rate."""
    cdef Py_ssize_t k, offset = i * p.n * (sizeof(float) if p.single else sizeof(double))
    p.x = <char*>first.x + offset
    p.x_prev = <char*>first.x_prev + offset
    p.g = <char*>first.g + offset
    p.g_prev = <char*>first.g_prev + offset
    for k in range(MAX_STATE):
        if first.state[k] != NULL:
            p.state[k] = <char*>first.state[k] + offset
    if lrs != NULL:
        p.rule.lr = lrs[i]


cdef enum:
    # Problems per chunk of a batch with a C objective (see _solve_chunk).
    CHUNK_ROWS = 128


cdef void _solve_chunk(
    const Problem* whole, Py_ssize_t start, Py_ssize_t end, bint per_row, const double* lrs,
    const Tolerances* tol, void* fun, void* user_data, Py_ssize_t* index, Py_ssize_t* stay,
    double* f_now, double* f_prev, double* steps, double* lr_work, char* x_out, char* g_out,
    int* stops, Py_ssize_t* nits, Py_ssize_t* nfevs, double* fs,
) noexcept nogil:
    """Solve problems [start, end) together, on this thread, as batch_python solves all of
    them: each iteration evaluates the running rows with the C objective, checks them, packs
    the rows that go on and updates them with one kernel call. Iterating independent problems
    side by side hides the latency of each one's update (sqrt, division), which a
    problem-at-a-time loop pays in full. The scratch arrays are indexed from ``start``."""
    cdef Problem first = whole[0]
    cdef Py_ssize_t r, kept, active = end - start, nit = 0
    cdef size_t row_bytes = first.n * (sizeof(float) if first.single else sizeof(double))
    cdef char* x
    cdef char* g
    _point_at(&first, whole, start, NULL)
    index, stay, f_now, f_prev = index + start, stay + start, f_now + start, f_prev + start
    steps, lr_work = steps + start, lr_work + start
    for r in range(active):
        index[r] = start + r
        steps[r] = 0.0
        lr_work[r] = lrs[start + r] if lrs != NULL else 0.0
    while True:
        for r in range(active):
            x = <char*>first.x + r * row_bytes
            g = <char*>first.g + r * row_bytes
            if first.single:
                f_now[r] = (<objective_f32>fun)(<int>first.n, <const float*>x, <float*>g,
                                                user_data)
            else:
                f_now[r] = (<objective_f64>fun)(<int>first.n, <const double*>x, <double*>g,
                                                user_data)
        kept = _check_rows(&first, active, nit, tol, f_now, f_prev, steps, index, stay, x_out,
                           g_out, stops, nits, nfevs, fs)
        if kept == 0:
            return
        if kept < active:
            _pack(&first, stay, kept, index, f_now, steps, lr_work, row_bytes)
            active = kept
        _update_rows(&first, active, per_row, lr_work if lrs != NULL else NULL, f_now, f_prev,
                     steps, 1)
        nit += 1


def batch_native(
    cnp.ndarray X not None,        # INOUT (m, n): the starting points, then the solutions
    Rule rule not None,
    tuple slots not None,          # INOUT: the state arrays (m * n values each)
    NativeObjective objective not None,
    object lower,                  # (n,) bounds in X's dtype, or None
    object upper,
    object lrs,                    # (m,) float64 learning rates, or None (the rule's)
    Py_ssize_t maxiter, double gtol, double ftol, double xtol,
    int n_threads,
):
    """Solve each row of X with a C objective; returns ``(stop, nit, nfev, fun, jac)``.

    Chunks of CHUNK_ROWS problems are spread over the threads (dynamic schedule: their
    iteration counts differ); each chunk runs on one thread (_solve_chunk).
    """
    cdef Py_ssize_t m = X.shape[0], n = X.shape[1], c
    cdef Py_ssize_t n_chunks = (m + CHUNK_ROWS - 1) // CHUNK_ROWS
    cdef Tolerances tol = Tolerances(maxiter, gtol, ftol, xtol)
    cdef Problem first
    cdef bint per_row = lrs is not None or lower is not None or xtol > 0
    cdef const double* lr_ptr = NULL
    cdef void* fun = objective.fun
    cdef void* user_data = objective.user_data
    # Work arrays (rows packed within each chunk) and per-problem scratch.
    cdef cnp.ndarray work = X.copy()
    work_prev, grad_buf, grad_prev = np.empty_like(X), np.empty_like(X), np.empty_like(X)
    cdef Py_ssize_t[::1] index = np.empty(m, dtype=np.intp)
    cdef Py_ssize_t[::1] stay = np.empty(m, dtype=np.intp)
    cdef double[::1] f_now = np.empty(m), f_prev = np.empty(m), steps = np.empty(m)
    cdef double[::1] lr_work = np.empty(m)
    # Results, by problem.
    cdef cnp.ndarray G_out = np.empty_like(X)
    cdef int[::1] stops = np.empty(m, dtype=np.intc)
    cdef Py_ssize_t[::1] nits = np.empty(m, dtype=np.intp)
    cdef Py_ssize_t[::1] nfevs = np.empty(m, dtype=np.intp)
    cdef double[::1] fs = np.empty(m)
    cdef char* x_out = <char*>cnp.PyArray_DATA(X)
    cdef char* g_out = <char*>cnp.PyArray_DATA(G_out)
    if m == 0:
        return (np.asarray(stops), np.asarray(nits), np.asarray(nfevs), np.asarray(fs), G_out)
    if lrs is not None:
        lr_ptr = <const double*>cnp.PyArray_DATA(<cnp.ndarray>lrs)
    init_problem(&first, work, work_prev, grad_buf, grad_prev, rule, slots, lower, upper, &tol)
    first.n = n
    with nogil:
        if n_threads > 1 and n_chunks > 1:
            for c in prange(n_chunks, schedule="dynamic", num_threads=n_threads):
                _solve_chunk(&first, c * CHUNK_ROWS, min((c + 1) * CHUNK_ROWS, m), per_row,
                             lr_ptr, &tol, fun, user_data, &index[0], &stay[0], &f_now[0],
                             &f_prev[0], &steps[0], &lr_work[0], x_out, g_out, &stops[0],
                             &nits[0], &nfevs[0], &fs[0])
        else:
            for c in range(n_chunks):
                _solve_chunk(&first, c * CHUNK_ROWS, min((c + 1) * CHUNK_ROWS, m), per_row,
                             lr_ptr, &tol, fun, user_data, &index[0], &stay[0], &f_now[0],
                             &f_prev[0], &steps[0], &lr_work[0], x_out, g_out, &stops[0],
                             &nits[0], &nfevs[0], &fs[0])
    return (np.asarray(stops), np.asarray(nits), np.asarray(nfevs), np.asarray(fs), G_out)


def batch_python(
    cnp.ndarray X not None,        # INOUT (m, n): the starting points, then the solutions
    Rule rule not None,
    tuple slots not None,          # INOUT: the state arrays (m * n values each)
    object fun,                    # fun(X, *args) -> (f, G) (EVAL_FUN_AND_GRAD) or f
    object jac,                    # jac(X, *args) -> G (EVAL_SEPARATE)
    tuple args,                    # arrays with a row per problem are passed sliced
    tuple per_problem,             # which args have a row per problem
    int mode,
    object lower,                  # (n,) bounds in X's dtype, or None
    object upper,
    object lrs,                    # (m,) float64 learning rates, or None (the rule's)
    Py_ssize_t maxiter, double gtol, double ftol, double xtol,
    int n_threads,
):
    """Solve the rows of X with a vectorised objective; returns ``(stop, nit, nfev, fun,
    jac)``."""
    cdef Py_ssize_t m = X.shape[0], n = X.shape[1], active = m, kept, r, i, nit = 0
    cdef size_t row_bytes = n * X.itemsize
    cdef Tolerances tol = Tolerances(maxiter, gtol, ftol, xtol)
    cdef Problem first, p
    cdef int stop
    cdef bint per_row = lrs is not None or lower is not None or xtol > 0
    cdef cnp.ndarray G
    # Work arrays: the rows of the running problems, packed at the front.
    cdef cnp.ndarray work = X.copy()
    cdef cnp.ndarray grad_buf = np.empty_like(X)
    work_prev, grad_prev = np.empty_like(X), np.empty_like(X)  # first points into them
    f_now_arr = np.empty(m)
    cdef double[::1] f_now = f_now_arr, f_prev = np.empty(m), steps = np.zeros(m)
    cdef Py_ssize_t[::1] index = np.arange(m, dtype=np.intp)  # packed row -> problem
    cdef Py_ssize_t[::1] stay = np.empty(m, dtype=np.intp)
    cdef double[::1] lr_work = np.array(lrs if lrs is not None else np.empty(m), dtype=float)
    cdef const double* lr_ptr = &lr_work[0] if (lrs is not None and m > 0) else NULL
    # Results, by problem.
    cdef cnp.ndarray G_out = np.empty_like(X)
    cdef int[::1] stops = np.empty(m, dtype=np.intc)
    cdef Py_ssize_t[::1] nits = np.empty(m, dtype=np.intp)
    cdef Py_ssize_t[::1] nfevs = np.empty(m, dtype=np.intp)
    cdef double[::1] fs = np.empty(m)
    if m == 0:
        return (np.asarray(stops), np.asarray(nits), np.asarray(nfevs), np.asarray(fs), G_out)
    init_problem(&first, work, work_prev, grad_buf, grad_prev, rule, slots, lower, upper, &tol)
    first.n = n
    running_args = args

    while True:
        view = work[:active]
        view.flags.writeable = False
        G = _evaluate(mode, fun, jac, running_args, view, f_now_arr[:active],
                      grad_buf[:active])
        first.g = cnp.PyArray_DATA(G)

        # Each problem's stopping rules; a problem that stops goes to the results.
        kept = _check_rows(&first, active, nit, &tol, &f_now[0], &f_prev[0], &steps[0],
                           &index[0], &stay[0], <char*>cnp.PyArray_DATA(X),
                           <char*>cnp.PyArray_DATA(G_out), &stops[0], &nits[0], &nfevs[0],
                           &fs[0])
        if kept == 0:
            break
        if kept < active:
            if G is not grad_buf:  # the user's array: pack a copy
                grad_buf[:active] = G
                G = grad_buf
                first.g = cnp.PyArray_DATA(G)
            _pack(&first, &stay[0], kept, &index[0], &f_now[0], &steps[0], &lr_work[0],
                  row_bytes)
            active = kept
            rows = np.asarray(index[:active])
            running_args = tuple(a[rows] if each else a for a, each in zip(args, per_problem))

        with nogil:
            _update_rows(&first, active, per_row, lr_ptr, &f_now[0], &f_prev[0], &steps[0],
                         n_threads)
        nit += 1
    return (np.asarray(stops), np.asarray(nits), np.asarray(nfevs), np.asarray(fs), G_out)


cdef Py_ssize_t _check_rows(
    const Problem* first, Py_ssize_t active, Py_ssize_t nit, const Tolerances* tol,
    const double* f_now, const double* f_prev, const double* steps, const Py_ssize_t* index,
    Py_ssize_t* stay, char* x_out, char* g_out, int* stops, Py_ssize_t* nits,
    Py_ssize_t* nfevs, double* fs,
) noexcept nogil:
    """Check the stopping rules of the ``active`` packed rows (evaluated, ``nit`` updates
    made). The rows that go on are listed in ``stay``; a problem that stops (after going back
    to its last finite iterate where check_stop says so) is written to the results. Returns
    the number of rows that go on."""
    if first.single:
        return _check_rows_typed(<const float*>first.x, <const float*>first.g, first, active,
                                 nit, tol, f_now, f_prev, steps, index, stay, x_out, g_out,
                                 stops, nits, nfevs, fs)
    return _check_rows_typed(<const double*>first.x, <const double*>first.g, first, active, nit,
                             tol, f_now, f_prev, steps, index, stay, x_out, g_out, stops, nits,
                             nfevs, fs)


cdef Py_ssize_t _check_rows_typed(
    const floating* x, const floating* g, const Problem* first, Py_ssize_t active,
    Py_ssize_t nit, const Tolerances* tol, const double* f_now, const double* f_prev,
    const double* steps, const Py_ssize_t* index, Py_ssize_t* stay, char* x_out, char* g_out,
    int* stops, Py_ssize_t* nits, Py_ssize_t* nfevs, double* fs,
) noexcept nogil:
    # _check_rows for one dtype: the per-row work is a few instructions for small n, and it
    # runs for every running problem at every iteration.
    cdef Problem p = first[0]
    cdef Py_ssize_t r, i, kept = 0, n = first.n
    cdef size_t row_bytes = n * sizeof(floating)
    cdef int stop
    p.nit, p.nfev = nit, nit + 1
    for r in range(active):
        p.gnorm = _projected_grad_norm(g + r * n, x + r * n, <const floating*>p.lower,
                                       <const floating*>p.upper, n)
        p.f, p.f_prev, p.step = f_now[r], f_prev[r], steps[r]
        p.x = <void*>(x + r * n)
        p.g = <void*>(g + r * n)
        p.x_prev = <char*>first.x_prev + r * row_bytes
        p.g_prev = <char*>first.g_prev + r * row_bytes
        stop = check_stop(&p, tol)
        if stop == STOP_NONE:
            stay[kept] = r
            kept += 1
            continue
        i = index[r]
        memcpy(x_out + i * row_bytes, p.x, row_bytes)
        memcpy(g_out + i * row_bytes, p.g, row_bytes)
        stops[i], nits[i], nfevs[i], fs[i] = stop, p.nit, p.nfev, p.f
        p.nit = nit  # check_stop may have gone back one iteration for this row
    return kept


cdef void _update_rows(Problem* first, Py_ssize_t active, bint per_row, const double* lrs,
                       const double* f_now, double* f_prev, double* steps,
                       int n_threads) noexcept nogil:
    """Update the ``active`` packed rows (evaluated, checked): one kernel call over all of
    them, or row by row when rows differ (learning rates) or need their own step (bounds,
    xtol). Elementwise kernels: both give what updating each row alone gives."""
    cdef Problem p
    cdef Py_ssize_t r
    cdef size_t row_bytes = first.n * (sizeof(float) if first.single else sizeof(double))
    if per_row:
        p = first[0]
        for r in range(active):
            _point_at(&p, first, r, lrs)
            p.f, p.clock = f_now[r], first.clock
            advance(&p, 1)
            f_prev[r], steps[r] = p.f_prev, p.step
        rule_step_next(&first.rule, &first.clock)
    else:
        memcpy(first.x_prev, first.x, active * row_bytes)
        memcpy(first.g_prev, first.g, active * row_bytes)
        memcpy(f_prev, f_now, active * sizeof(double))
        rule_step_next(&first.rule, &first.clock)
        apply_rule(&first.rule, first.single, first.x, first.g, first.state, active * first.n,
                   &first.clock, n_threads)


cdef void _pack(Problem* first, const Py_ssize_t* stay, Py_ssize_t kept, Py_ssize_t* index,
                double* f_now, double* steps, double* lrs, size_t row_bytes) noexcept nogil:
    """Move rows ``stay[0..kept)`` of the work arrays (iterates, gradients, state, and the
    per-problem scalars) to the front, in order."""
    cdef Py_ssize_t w, r, k
    for w in range(kept):
        r = stay[w]
        if r == w:
            continue
        _move_row(first.x, w, r, row_bytes)
        _move_row(first.g, w, r, row_bytes)
        for k in range(MAX_STATE):
            if first.state[k] != NULL:
                _move_row(first.state[k], w, r, row_bytes)
        index[w], f_now[w], steps[w], lrs[w] = index[r], f_now[r], steps[r], lrs[r]


cdef inline void _move_row(void* a, Py_ssize_t to, Py_ssize_t frm, size_t row_bytes) noexcept nogil:
    memcpy(<char*>a + to * row_bytes, <char*>a + frm * row_bytes, row_bytes)


cdef cnp.ndarray _evaluate(int mode, object fun, object jac, tuple args, object X,
                           object f_out, cnp.ndarray grad_buf):
    """Evaluate the vectorised objective at the rows of X: f into ``f_out``; returns the
    gradients as a C-contiguous (k, n) array of X's dtype (the user's, or ``grad_buf``)."""
    f, g = call_objective(mode, fun, jac, args, X)
    f = np.asarray(f)
    if f.shape != f_out.shape:
        raise ValueError(f"fun must return f of shape {f_out.shape} for X of shape "
                         f"{X.shape}, got shape {f.shape}")
    if f.dtype.kind not in "fiub":
        raise TypeError(f"fun must return real values, got dtype {f.dtype}")
    f_out[...] = f
    if np.shape(g) != X.shape:
        raise ValueError(f"the gradient must have the shape of X, {X.shape}, got shape "
                         f"{np.shape(g)}")
    return as_gradient(g, X, grad_buf)
