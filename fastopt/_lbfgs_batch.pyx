"""The loops of ``minimize_batch(method="lbfgs")``: m problems, each driving its own L-BFGS
engine (src_c/fastopt_lbfgs.h) by reverse communication, each stopping on its own.

A problem is the engine's state plus its rows of the batch's arrays (``_One``); the steps
between two evaluations (``_advance``: the engine's calls, the new iterates counted, maxiter
and maxfun checked after each, in that order) are those of ``fastopt.minimize(method=
"lbfgs")``'s loop (fastopt/_lbfgs.pyx), and the evaluation points, f and g go through the same
conversions (float32: the point rounded to float32 in place, the gradient widened), so each
problem's run is bitwise that of ``fastopt.minimize`` on it alone, whatever the objective's
kind or the thread count.

* ``lbfgs_batch_python``: one round per evaluation. Every running problem needs f and g at
  its point; a vectorised Python objective gets all their rows in one call (in the problems'
  original order), or, with a callback, a C objective evaluates them here (one call per
  problem, or one block call); then each problem's engine runs to its next evaluation or stop
  and the stopped problems leave the round list. With a callback, a problem that reached a new
  iterate in the round pauses there; the callback sees all of them, then they go on.
* ``lbfgs_batch_native``: a C objective, no callback. Everything runs in C without the GIL,
  chunks of problems spread over a team of threads by fastopt/_batch.pyx's ``run_chunks`` (in
  time slices, between which the calling thread runs Python's signal handlers: Ctrl-C). A
  scalar objective's chunk solves its problems one after the other (L-BFGS's iterations have
  nothing to share across problems); a block objective's chunk runs rounds as above, one block
  call per round for the chunk's running problems, gathered variable-major.

The engine computes in double: x of a float64 batch is the engine's point itself; a float32
batch keeps the engine's points in double (``XD``) and its x, rounded, in X.
"""

cimport numpy as cnp
from cpython.exc cimport PyErr_CheckSignals
from libc.math cimport HUGE_VAL, NAN
from libc.string cimport memcpy

from fastopt._batch cimport run_chunks
from fastopt._fpenv cimport fastopt_flush_begin, fastopt_flush_bits, fastopt_fpcr, \
    fastopt_fpenv, fastopt_fpenv_restore
from fastopt._lbfgs_engine cimport *  # the engine, src_c/fastopt_lbfgs.h
from fastopt._loop cimport (
    as_gradient,
    block_f32,
    block_f64,
    call_objective,
    fastopt_poll,
    fastopt_poll_due,
    fastopt_poll_until,
    objective_f32,
    objective_f64,
)
from fastopt._native cimport NativeObjective
from fastopt._openmp cimport fastopt_thread_limit

import threading

import numpy as np
from scipy.optimize import OptimizeResult

cnp.import_array()

cdef enum:
    # A problem's code: running, or why it stopped (the engine's FASTOPT_LBFGS_STOP_*, 2-5,
    # and the loop's own, with fastopt/_lbfgs.pyx's values).
    RUNNING = -1       # f and g wanted at its point
    AT_ITERATE = -2    # at a new iterate, paused for the callback
    STOP_MAXITER_ = 16
    STOP_MAXFUN_ = 17
    STOP_CALLBACK_ = 18
    # Problems per chunk: a scalar objective's chunk is a unit of the threads' dynamic
    # schedule (problems differ in cost); a block objective's, the m of its calls.
    CHUNK_PROBLEMS = 64
    BLOCK_PROBLEMS = 256

STOP_MAXITER = STOP_MAXITER_
STOP_MAXFUN = STOP_MAXFUN_
STOP_CALLBACK = STOP_CALLBACK_


ctypedef struct _One:
    # One problem: its engine and its rows (n values each) of the batch's arrays.
    fastopt_lbfgs s
    double* xd    # the engine's point (X's row for float64)
    double* gd    # g at xd, in double
    float* x32    # float32: X's row, xd rounded (the evaluation point); else NULL
    float* g32    # float32 C objective: its gradient buffer; else NULL
    double f
    Py_ssize_t nit
    Py_ssize_t nfev
    int code      # RUNNING, AT_ITERATE or a STOP_* code


ctypedef struct _Limits:
    Py_ssize_t n
    Py_ssize_t maxiter
    Py_ssize_t maxfun


cdef inline void _round_point(_One* o, Py_ssize_t n) noexcept nogil:
    """float32: the evaluation point rounded to float32, written back into the engine's."""
    cdef Py_ssize_t i
    if o.x32 != NULL:
        for i in range(n):
            o.x32[i] = <float>o.xd[i]
            o.xd[i] = o.x32[i]


cdef inline int _limit(const _One* o, const _Limits* lim) noexcept nogil:
    """At a new iterate: maxiter, then maxfun, as fastopt.minimize checks them."""
    if o.nit >= lim.maxiter:
        return STOP_MAXITER_
    if o.nfev > lim.maxfun:
        return STOP_MAXFUN_
    return RUNNING


cdef int _advance(_One* o, const _Limits* lim, bint pause) noexcept nogil:
    """After f and g at the problem's point: the engine's steps until it wants the next
    evaluation (RUNNING; the point rounded for float32), the problem stops (a STOP_* code) or,
    with ``pause``, reaches a new iterate (AT_ITERATE; go on with _resume after the callback).
    A new iterate comes only after an evaluation: at most one per call."""
    cdef int code
    while True:
        code = fastopt_lbfgs_next(&o.s, o.xd, o.f, o.gd)
        if code == FASTOPT_LBFGS_EVALUATE:
            if lim.maxiter == 0:  # (fastopt's maxiter=0: x0, unless a test held there)
                return STOP_MAXITER_
            _round_point(o, lim.n)
            return RUNNING
        if code != FASTOPT_LBFGS_NEW_ITERATE:
            return code
        o.nit += 1
        if pause:
            return AT_ITERATE
        code = _limit(o, lim)
        if code != RUNNING:
            return code


cdef inline int _resume(_One* o, const _Limits* lim) noexcept nogil:
    """A problem paused at an iterate, after the callback: the limits, then on."""
    cdef int code = _limit(o, lim)
    return _advance(o, lim, False) if code == RUNNING else code


cdef void _finish(_One* o, Py_ssize_t n) noexcept nogil:
    """A stopped problem's result in its rows: where the engine stopped (and with maxiter=0),
    its iterate, f and g (x: the iterate already, but after maxiter=0's first trial point);
    float32: x rounded, exact (the engine's points are float32 values)."""
    cdef Py_ssize_t i
    if (o.code >= 0 and o.code < STOP_MAXITER_) or (o.code == STOP_MAXITER_ and o.nit == 0):
        _at_iterate(o, n)
    if o.x32 != NULL:
        for i in range(n):
            o.x32[i] = <float>o.xd[i]


cdef inline void _at_iterate(_One* o, Py_ssize_t n) noexcept nogil:
    """x, f and g back to the engine's iterate (the last one it accepted, or x0)."""
    memcpy(o.xd, fastopt_lbfgs_x(&o.s), n * sizeof(double))
    o.f = fastopt_lbfgs_f(&o.s)
    memcpy(o.gd, fastopt_lbfgs_g(&o.s), n * sizeof(double))


cdef void _evaluate_one(_One* o, Py_ssize_t n, void* fun, void* user_data) noexcept nogil:
    """f and g of a scalar C objective at the problem's point; the gradient starts NaN (an
    entry left unwritten is non-finite: the engine's NaN policy)."""
    cdef Py_ssize_t i
    if o.x32 != NULL:
        for i in range(n):
            o.g32[i] = NAN
        o.f = (<objective_f32>fun)(<int>n, o.x32, o.g32, user_data)
        for i in range(n):
            o.gd[i] = o.g32[i]
    else:
        for i in range(n):
            o.gd[i] = NAN
        o.f = (<objective_f64>fun)(<int>n, o.xd, o.gd, user_data)
    o.nfev += 1


cdef void _evaluate_block(_One* ones, const Py_ssize_t* idx, Py_ssize_t active, Py_ssize_t n,
                          bint single, void* fun, void* user_data, void* xt, void* gt,
                          double* fs) noexcept nogil:
    """f and g of problems ``idx[0..active)`` in one call of a block C objective: their
    points gathered variable-major into ``xt`` (x_j of problem r at [j*active + r]), G into
    ``gt`` and F into ``fs`` (NaN on entry: an entry left unwritten is non-finite), then
    scattered back to each problem."""
    cdef Py_ssize_t r, j
    cdef _One* o
    cdef float* f32 = <float*>fs  # float32: F's values packed at the front of fs
    for r in range(active):
        o = &ones[idx[r]]
        for j in range(n):
            if single:
                (<float*>xt)[j * active + r] = o.x32[j]
                (<float*>gt)[j * active + r] = NAN
            else:
                (<double*>xt)[j * active + r] = o.xd[j]
                (<double*>gt)[j * active + r] = NAN
        if single:
            f32[r] = NAN
        else:
            fs[r] = NAN
    if single:
        (<block_f32>fun)(<int>active, <int>n, <const float*>xt, f32, <float*>gt, user_data)
    else:
        (<block_f64>fun)(<int>active, <int>n, <const double*>xt, fs, <double*>gt, user_data)
    for r in range(active):
        o = &ones[idx[r]]
        o.f = f32[r] if single else fs[r]
        for j in range(n):
            o.gd[j] = (<float*>gt)[j * active + r] if single else (<double*>gt)[j * active + r]
        o.nfev += 1


cdef Py_ssize_t _advance_all(_One* ones, Py_ssize_t* idx, Py_ssize_t active,
                             const _Limits* lim, bint pause) noexcept nogil:
    """_advance each of problems ``idx[0..active)`` (evaluated); the stopped ones are
    finished and leave ``idx``, the others keep their order. Returns how many stay."""
    cdef Py_ssize_t r, kept = 0
    cdef _One* o
    for r in range(active):
        o = &ones[idx[r]]
        o.code = _advance(o, lim, pause)
        if o.code == RUNNING or o.code == AT_ITERATE:
            idx[kept] = idx[r]
            kept += 1
        else:
            _finish(o, lim.n)
    return kept


cdef class _Batch:
    """The arrays of one batch: X (the results' x, float32 or float64), the engine's points
    XD (X itself for float64) and gradients GD, each problem's engine and work, the bounds in
    double, the results."""

    cdef _One* ones
    cdef _Limits lim
    cdef Py_ssize_t m
    cdef bint single
    cdef object X, XD, GD, F, nit, nfev, codes, _keep

    def __cinit__(self, cnp.ndarray X, object lower, object upper, Py_ssize_t maxiter,
                  Py_ssize_t maxfun, double gtol, double ftol, int maxcor, int maxls,
                  bint native):
        cdef Py_ssize_t m = X.shape[0], n = X.shape[1], i
        cdef size_t size = fastopt_lbfgs_work_size(n, maxcor)
        cdef const double* lo = NULL
        cdef const double* up = NULL
        cdef bint per_problem = lower is not None and (<cnp.ndarray>lower).ndim == 2
        cdef _One* o
        self.m, self.X = m, X
        self.single = X.dtype == np.float32
        self.lim.n, self.lim.maxiter, self.lim.maxfun = n, maxiter, maxfun
        self.XD = np.array(X, dtype=np.float64) if self.single else X
        self.GD = np.empty((m, n))
        self.F = np.empty(m)
        self.nit = np.zeros(m, dtype=np.intp)
        self.nfev = np.zeros(m, dtype=np.intp)
        self.codes = np.empty(m, dtype=np.intc)
        store = np.empty(m * sizeof(_One), dtype=np.uint8)
        work = np.empty((m, size))
        g32 = np.empty((m if self.single and native else 0, n), dtype=np.float32)
        if lower is not None:
            lower = np.ascontiguousarray(lower, dtype=np.float64)
            upper = np.ascontiguousarray(upper, dtype=np.float64)
            lo = <const double*>cnp.PyArray_DATA(<cnp.ndarray>lower)
            up = <const double*>cnp.PyArray_DATA(<cnp.ndarray>upper)
        self._keep = (store, work, g32, lower, upper)
        self.ones = <_One*>cnp.PyArray_DATA(store)
        for i in range(m):
            o = &self.ones[i]
            o.xd = <double*>cnp.PyArray_DATA(<cnp.ndarray>self.XD) + i * n
            o.gd = <double*>cnp.PyArray_DATA(<cnp.ndarray>self.GD) + i * n
            o.x32 = <float*>cnp.PyArray_DATA(X) + i * n if self.single else NULL
            o.g32 = <float*>cnp.PyArray_DATA(g32) + i * n if self.single and native else NULL
            o.nit = o.nfev = 0
            o.code = RUNNING
            fastopt_lbfgs_init(&o.s, n, maxcor, <double*>cnp.PyArray_DATA(work) + i * size,
                               lo + i * n if per_problem else lo,
                               up + i * n if per_problem else up, gtol, ftol, maxls, o.xd)
            _round_point(o, n)

    def results(self):
        """``(stop, nit, nfev, fun, jac)`` by problem (x is in X); ``jac`` in X's dtype."""
        cdef Py_ssize_t i
        codes, nit, nfev, F = self.codes, self.nit, self.nfev, self.F
        for i in range(self.m):
            codes[i], nit[i], nfev[i], F[i] = (self.ones[i].code, self.ones[i].nit,
                                               self.ones[i].nfev, self.ones[i].f)
        return codes, nit, nfev, F, self.GD.astype(self.X.dtype, copy=False)


def lbfgs_batch_python(
    cnp.ndarray X not None,    # INOUT (m, n): the starting points (in the box), then the x's
    object fun,                # fun(X, *args) -> (f, G) or f; or a NativeObjective
    object jac,                # jac(X, *args) -> G (EVAL_SEPARATE), else None
    tuple args,                # arrays with a row per problem are passed sliced
    tuple per_problem,         # which args have a row per problem
    int mode,                  # fastopt._loop's EVAL_*
    object lower,              # (n,) or (m, n) bounds, or None
    object upper,
    Py_ssize_t maxiter, Py_ssize_t maxfun, double gtol, double ftol, int maxcor, int maxls,
    object callback=None,      # callback(intermediate_result) after each round's iterates
    bint flush=False,          # the flush-to-zero mode around the C parts
):
    """Solve the rows of X one round of evaluations at a time from Python; returns
    ``(stop, nit, nfev, fun, jac)``. The callback gets, after each round in which problems
    reached a new iterate, those problems' ``indices``, ``x``, ``fun``, ``jac`` and ``nit``
    (arrays; copies); StopIteration stops every running problem (STOP_CALLBACK) at the last
    iterate the callback saw (x0 for one it saw none of), with that iterate's f and g; the
    callback sees the problems that reached an iterate in the round where it raises."""
    cdef NativeObjective native = fun if isinstance(fun, NativeObjective) else None
    cdef _Batch b = _Batch(X, lower, upper, maxiter, maxfun, gtol, ftol, maxcor, maxls,
                           native is not None)
    cdef Py_ssize_t m = b.m, n = X.shape[1], active = m, r, k
    cdef fastopt_fpenv env
    cdef cnp.ndarray idx_arr = np.arange(m, dtype=np.intp)
    cdef Py_ssize_t* idx = <Py_ssize_t*>cnp.PyArray_DATA(idx_arr)
    cdef _One* o
    cdef bint pause = callback is not None
    cdef bint block = native is not None and native.block
    cdef bint single = X.dtype == np.float32
    cdef void* cfun = NULL if native is None else native.fun
    cdef void* user_data = NULL if native is None else native.user_data
    cdef cnp.ndarray scratch = np.empty(2 * m * n if block else 0, X.dtype)
    cdef cnp.ndarray fs = np.empty(m)
    cdef char* xt = <char*>cnp.PyArray_DATA(scratch)
    cdef char* gt = xt + m * n * cnp.PyArray_ITEMSIZE(X) if block else xt
    running_args, last = args, m
    while active > 0:
        PyErr_CheckSignals()
        rows = idx_arr[:active]
        if active != last:
            running_args = tuple(a[rows] if each else a for a, each in zip(args, per_problem))
            last = active
        if native is None:
            _evaluate_rows(mode, fun, jac, running_args, X, b, rows)
        else:
            with nogil:
                env = fastopt_flush_begin(flush)
                if block:
                    _evaluate_block(b.ones, idx, active, n, single, cfun, user_data, xt, gt,
                                    <double*>cnp.PyArray_DATA(fs))
                else:
                    for r in range(active):
                        _evaluate_one(&b.ones[idx[r]], n, cfun, user_data)
                fastopt_fpenv_restore(env)
        with nogil:
            env = fastopt_flush_begin(flush)
            active = _advance_all(b.ones, idx, active, &b.lim, pause)
            fastopt_fpenv_restore(env)
        if pause:
            stopped = _show(callback, b, idx_arr[:active])
            with nogil:
                env = fastopt_flush_begin(flush)
                k = 0
                for r in range(active):
                    o = &b.ones[idx[r]]
                    if stopped:
                        # StopIteration: each at the last iterate the callback saw (x0 for
                        # one it saw none of): the new one, or the engine's (mid-search)
                        if o.code != AT_ITERATE:
                            _at_iterate(o, n)
                        o.code = STOP_CALLBACK_
                    elif o.code == AT_ITERATE:
                        o.code = _resume(o, &b.lim)
                    if o.code == RUNNING:
                        idx[k] = idx[r]
                        k += 1
                    else:
                        _finish(o, n)
                fastopt_fpenv_restore(env)
            active = k
    return b.results()


cdef int _evaluate_rows(int mode, object fun, object jac, tuple args, cnp.ndarray X, _Batch b,
                        cnp.ndarray rows) except -1:
    """One call of the vectorised objective at the running problems' rows (X's dtype, in
    their order, read-only): their f and g (widened to double) into their rows."""
    cdef Py_ssize_t r, k = rows.shape[0]
    Xr = X[rows]
    Xr.flags.writeable = False
    f, g = call_objective(mode, fun, jac, args, Xr)
    f = np.asarray(f)
    if f.shape != (k,):
        raise ValueError(f"fun must return f of shape ({k},) for X of shape {Xr.shape}, got "
                         f"shape {f.shape}")
    if f.dtype.kind not in "fiub":
        raise TypeError(f"fun must return real values, got dtype {f.dtype}")
    if np.shape(g) != Xr.shape:
        raise ValueError(f"the gradient must have the shape of X, {Xr.shape}, got shape "
                         f"{np.shape(g)}")
    G = as_gradient(g, Xr, np.empty_like(Xr))
    b.GD[rows] = G
    fv = f.astype(np.float64, copy=False)
    for r in range(k):
        b.ones[rows[r]].f = fv[r]
        b.ones[rows[r]].nfev += 1
    return 0


cdef bint _show(object callback, _Batch b, cnp.ndarray rows) except -1:
    """The callback on the problems of ``rows`` paused at a new iterate; returns whether it
    raised StopIteration."""
    at = np.array([b.ones[i].code == AT_ITERATE for i in rows.tolist()], dtype=bool)
    if not at.any():
        return False
    shown = rows[at]
    result = OptimizeResult(
        x=b.X[shown], fun=np.array([b.ones[i].f for i in shown.tolist()]),
        jac=b.GD[shown].astype(b.X.dtype, copy=False),
        nit=np.array([b.ones[i].nit for i in shown.tolist()], dtype=np.intp), indices=shown)
    try:
        callback(result)
    except StopIteration:
        return True
    return False


ctypedef struct _Chunk:
    Py_ssize_t start   # scalar objective: the problem being solved; block: the chunk's first
    Py_ssize_t end
    Py_ssize_t active  # block: problems still running, listed at idx[start..start+active)
    long stride        # iterations between clock reads, as the last slice left it


ctypedef struct _Job:
    # lbfgs_batch_native's work for run_chunks (fastopt/_batch.pyx).
    _One* ones
    _Limits lim
    _Chunk* chunks
    void* fun
    void* user_data
    bint block
    bint single
    Py_ssize_t* idx  # block: each chunk's running problems
    char* xt         # block: each chunk's region of BLOCK_PROBLEMS * n values, for X
    char* gt         # ... for G
    double* fs       # block: each chunk's BLOCK_PROBLEMS values of F


cdef void _solve(void* job, Py_ssize_t c, double due) noexcept nogil:
    """Chunk c of lbfgs_batch_native until it is done or time ``due`` has come."""
    cdef _Job* j = <_Job*>job
    cdef _Chunk* chunk = &j.chunks[c]
    cdef fastopt_poll poll
    cdef _One* o
    cdef Py_ssize_t n = j.lim.n, size = (sizeof(float) if j.single else sizeof(double))
    fastopt_poll_until(&poll, due, chunk.stride)
    if j.block:
        while chunk.active > 0:
            _evaluate_block(j.ones, j.idx + chunk.start, chunk.active, n, j.single, j.fun,
                            j.user_data, j.xt + chunk.start * n * size,
                            j.gt + chunk.start * n * size, j.fs + chunk.start)
            chunk.active = _advance_all(j.ones, j.idx + chunk.start, chunk.active, &j.lim,
                                        False)
            if fastopt_poll_due(&poll):
                break
    else:
        while chunk.start < chunk.end:
            o = &j.ones[chunk.start]
            _evaluate_one(o, n, j.fun, j.user_data)
            o.code = _advance(o, &j.lim, False)
            if o.code != RUNNING:
                _finish(o, n)
                chunk.start += 1
            if fastopt_poll_due(&poll):
                break
    chunk.stride = poll.stride


cdef bint _open(void* job, Py_ssize_t c) noexcept nogil:
    cdef _Chunk* chunk = &(<_Job*>job).chunks[c]
    return chunk.active > 0 if (<_Job*>job).block else chunk.start < chunk.end


def lbfgs_batch_native(
    cnp.ndarray X not None,    # INOUT (m, n): the starting points (in the box), then the x's
    NativeObjective objective not None,
    object lower,              # (n,) or (m, n) bounds, or None
    object upper,
    Py_ssize_t maxiter, Py_ssize_t maxfun, double gtol, double ftol, int maxcor, int maxls,
    int n_threads,
    bint flush=False,          # the flush-to-zero mode (option flush_subnormals)
):
    """Solve each row of X with a C objective, in C without the GIL, chunks of problems on
    ``n_threads`` threads; returns ``(stop, nit, nfev, fun, jac)``."""
    cdef _Batch b = _Batch(X, lower, upper, maxiter, maxfun, gtol, ftol, maxcor, maxls, True)
    cdef Py_ssize_t m = b.m, n = X.shape[1], c
    cdef Py_ssize_t per_chunk = BLOCK_PROBLEMS if objective.block else CHUNK_PROBLEMS
    cdef Py_ssize_t n_chunks = (m + per_chunk - 1) // per_chunk
    cdef _Job job
    cdef fastopt_fpenv env
    cdef fastopt_fpcr caller_bits
    cdef bint interruptible = threading.get_ident() == threading.main_thread().ident
    n_threads = fastopt_thread_limit(n_threads)  # 1 in a forked child (fastopt_openmp.h)
    cdef cnp.ndarray chunks = np.empty(n_chunks * sizeof(_Chunk), dtype=np.uint8)
    cdef cnp.ndarray idx = np.arange(m, dtype=np.intp)
    cdef cnp.ndarray scratch = np.empty(2 * m * n if objective.block else 0, dtype=X.dtype)
    cdef cnp.ndarray fs = np.empty(m if objective.block else 0)
    job.ones, job.lim = b.ones, b.lim
    job.chunks = <_Chunk*>cnp.PyArray_DATA(chunks)
    job.fun, job.user_data = objective.fun, objective.user_data
    job.block, job.single = objective.block, objective.single
    job.idx = <Py_ssize_t*>cnp.PyArray_DATA(idx)
    job.xt = <char*>cnp.PyArray_DATA(scratch)
    job.gt = job.xt + m * n * cnp.PyArray_ITEMSIZE(X)
    job.fs = <double*>cnp.PyArray_DATA(fs)
    for c in range(n_chunks):
        job.chunks[c].start = c * per_chunk
        job.chunks[c].end = min((c + 1) * per_chunk, m)
        job.chunks[c].active = job.chunks[c].end - job.chunks[c].start
        job.chunks[c].stride = 1
    caller_bits = fastopt_flush_bits()
    env = fastopt_flush_begin(flush)
    try:
        run_chunks(_solve, _open, &job, n_chunks, n_threads, interruptible, None, caller_bits)
    finally:
        fastopt_fpenv_restore(env)
    return b.results()
