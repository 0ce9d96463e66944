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
  ``python -m fastopt bench-loops``.) From the main thread the chunks run in time slices of a
  few milliseconds, between which the calling thread looks for Ctrl-C
  (src_c/fastopt_interrupt.h); a forked child runs them on one thread (fastopt_openmp.h).
* ``batch_native`` with a block C objective (m problems per call, variable-major): chunks of
  BLOCK_ROWS problems kept variable-major, one objective call and one kernel call per
  iteration per chunk, the stopping rules checked across the block (_solve_block; see the
  notes above _BlockScratch at the end of this file).
* ``batch_python``: a vectorised Python objective, called once per iteration with the rows of
  the problems still running. Those rows are kept packed at the front of the work arrays
  (iterates, state, gradients), so one ``apply_rule`` call updates all of them as one array,
  as fast as one large problem; a problem that stops is written to the results and the rows
  after it move up (_check_rows, _pack, _update_rows, shared with the chunks above).
  Elementwise updates make that bitwise what updating each row alone gives. With a
  ``callback`` it also runs a C objective (one row per call, on this thread; a block
  objective once per iteration on the running rows, transposed), since the callback needs
  Python after every iteration. Its own part of an iteration is kept small
  next to the objective's (it was as large before): the stopping rules are tested across the
  block first (_check_packed: one SIMD pass flags the rows a rule may stop,
  src_c/fastopt_batch_flags.h; check_stop then runs on those rows only), the previous f and
  gradient are kept without copies where nothing else can write to them (_keep_packed), and
  the objective's usual returns are checked in C (_evaluate).

Bounds are one (n,) box for all the problems (in the Problem), or an (m, n) box per problem
(``_Rows.lower``/``upper``, indexed by problem, not by packed row: they never move).

The work arrays are (m, n) C-contiguous arrays of x's dtype; the optimizer's state arrays are
those of an optimizer built on all m * n values, which is the m states side by side.
"""

cimport numpy as cnp
from cpython.exc cimport PyErr_CheckSignals
from cpython.ref cimport Py_REFCNT
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport HUGE_VAL, NAN, fabs, fmax, isfinite
from libc.string cimport memcpy, memmove

from fastopt._kernels cimport MAX_SCALARS, MAX_STATE, RuleStep, apply_rule, rule_step_next
from fastopt._loop cimport (
    STOP_CALLBACK,
    STOP_NONE,
    LoopSchedule,
    LoopTrain,
    Problem,
    Tolerances,
    _projected_grad_norm,
    advance,
    as_gradient,
    block_f32,
    block_f64,
    call_objective,
    check_signals,
    check_stop,
    clip_gradient,
    fastopt_now,
    fastopt_poll,
    fastopt_poll_due,
    fastopt_poll_signals,
    fastopt_poll_until,
    init_clipping,
    init_problem,
    objective_f32,
    objective_f64,
    schedule_next,
    set_schedule_values,
    unwritten_gradient,
)
from fastopt._kernels cimport UpdateRule
from fastopt._schedule cimport schedule_momentum, schedule_step
from fastopt._native cimport NativeObjective
from fastopt._openmp cimport fastopt_thread_limit
from fastopt._step cimport Rule
from fastopt._fpenv cimport (
    fastopt_flush_begin,
    fastopt_flush_bits,
    fastopt_follow_begin,
    fastopt_fpcr,
    fastopt_fpenv,
    fastopt_fpenv_restore,
)

# batch_native's team of threads (_run_team).
cdef extern from "fastopt_interrupt.h" nogil:
    double FASTOPT_SIGNAL_INTERVAL


cdef extern from "fastopt_team.h" nogil:
    ctypedef long long fastopt_counter
    ctypedef struct fastopt_team:
        fastopt_counter next
        fastopt_counter done
        fastopt_counter stop
    long long fastopt_counter_add(fastopt_counter* c, long long v)
    long long fastopt_counter_get(fastopt_counter* c)
    void fastopt_nap()

# The block's stopping-rule flags, two rows per SSE2 vector (batch_python's _check_packed).
cdef extern from "fastopt_batch_flags.h" nogil:
    bint fastopt_flag_rows_f64(const double* g, Py_ssize_t n, Py_ssize_t active,
                               const double* f_now, const double* f_prev, const double* steps,
                               double gtol, bint use_ftol, double ftol, bint use_xtol,
                               double xtol, Py_ssize_t* flags)
    bint fastopt_flag_rows_f32(const float* g, Py_ssize_t n, Py_ssize_t active,
                               const double* f_now, const double* f_prev, const double* steps,
                               double gtol, bint use_ftol, double ftol, bint use_xtol,
                               double xtol, Py_ssize_t* flags)

import threading

import numpy as np
from scipy.optimize import OptimizeResult

from fastopt._loop import EVAL_NATIVE


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
    if first.clip_buf != NULL:  # its row of the clipped gradients
        p.clip_buf = <char*>first.clip_buf + offset


cdef enum:
    # Problems per chunk of a batch with a C objective (see _solve_chunk).
    CHUNK_ROWS = 128
    # Problems per chunk with a block C objective (see _solve_block): 256 as the issue's plain
    # C floor. A chunk's working set at n = 2 is then 256 * 2 values * (x, g, x_prev, g_prev,
    # two state arrays) = 24 kB in float64, within L1; the objective and kernel loops over
    # 256 problems are long enough that their loop overheads and remainders do not count.
    BLOCK_ROWS = 256


ctypedef struct _Rows:
    # Per-problem scratch, indexed by packed row: the rows of the running problems sit at the
    # front of the work arrays (of a chunk, for a C objective; see _rows_from).
    Py_ssize_t* index  # packed row -> problem
    Py_ssize_t* stay   # the rows that go on, from _check_rows
    double* f_now
    double* f_prev
    double* steps
    double* lrs        # per-problem learning rates, or NULL (the rule's)
    # Per-problem running scalars (MAX_SCALARS each), or NULL (the clock's are every row's):
    # made with per-problem learning rates, since a rule may advance them by its lr.
    double* scalars
    # Bounds per problem ((m, n), indexed by problem), or NULL (none, or one box in Problem).
    const char* lower
    const char* upper
    # Results, indexed by problem.
    char* x_out
    char* g_out
    int* stops
    Py_ssize_t* nits
    Py_ssize_t* nfevs
    double* fs
    # Each problem's state rows go back to the optimizer's arrays when it stops (the work
    # arrays' rows move as they are packed), so that its state is its own afterwards (the
    # schedule-free optimizers' averaged point needs its z); NULL for unused slots.
    char* state_out[MAX_STATE]
    # Per-problem C schedules (options lr_scheduler: ReduceLROnPlateau or per-problem rates),
    # indexed by packed row like lrs, or NULL.
    LoopSchedule* schedules


cdef _Rows _rows_from(const _Rows* rows, Py_ssize_t start) noexcept nogil:
    """The scratch of the rows from ``start`` on (a chunk's); the results stay by problem."""
    cdef _Rows out = rows[0]
    out.index += start
    out.stay += start
    out.f_now += start
    out.f_prev += start
    out.steps += start
    if out.lrs != NULL:
        out.lrs += start
    if out.scalars != NULL:
        out.scalars += start * MAX_SCALARS
    if out.schedules != NULL:
        out.schedules += start
    return out


cdef class _BatchArrays:
    """The arrays of one minimize_batch call: work arrays (iterates, previous iterates and
    gradients, gradient buffer), per-problem scratch and results, and ``first``, problem 0
    of the batch, pointing into them. Both batch loops start from it."""

    cdef Problem first
    cdef _Rows rows
    cdef Tolerances tol
    cdef bint per_row  # rows differ (learning rates) or need their own step (bounds, xtol)
    cdef Py_ssize_t m
    cdef cnp.ndarray work, grad_buf, f_now, index
    cdef cnp.ndarray f_then  # f_prev's array (batch_python swaps it with f_now)
    cdef void* g_prev_own    # the gradient buffer first.g_prev points into at first
    cdef tuple results_  # (stop, nit, nfev, fun, jac) by problem
    cdef object _keep  # the other arrays the pointers point into

    def __cinit__(self, cnp.ndarray X, Rule rule, tuple slots, object lower, object upper,
                  object lrs, Py_ssize_t maxiter, double gtol, double ftol, double xtol,
                  LoopTrain train=None, object clip=None):
        cdef Py_ssize_t m = X.shape[0]
        cdef double* lr_data = NULL
        cdef double* scalar_data = NULL
        cdef const char* lower_rows = NULL
        cdef const char* upper_rows = NULL
        cdef int k
        self.m = m
        self.tol = Tolerances(maxiter, gtol, ftol, xtol)
        self.per_row = lrs is not None or lower is not None or xtol > 0
        self.work = X.copy()
        self.grad_buf = np.empty_like(X)
        self.f_now = np.empty(m)
        work_prev, grad_prev = np.empty_like(X), np.empty_like(X)
        index = self.index = np.arange(m, dtype=np.intp)
        stay = np.empty(m, dtype=np.intp)
        f_prev, steps = np.empty(m), np.zeros(m)
        self.f_then = f_prev
        lr_work = None if lrs is None else np.array(lrs, dtype=np.float64)
        scalar_work = None
        if lrs is not None and rule.rule.n_scalars != 0:
            # Each problem's own running scalars, from the rule's initial values.
            scalar_work = np.tile(np.array([rule.rule.initial[k] for k in range(MAX_SCALARS)]),
                                  m)
            scalar_data = <double*>cnp.PyArray_DATA(<cnp.ndarray>scalar_work)
        stops, nits, nfevs, fs, G_out = (np.empty(m, dtype=np.intc), np.empty(m, dtype=np.intp),
                                         np.empty(m, dtype=np.intp), np.empty(m),
                                         np.empty_like(X))
        self.results_ = (stops, nits, nfevs, fs, G_out)
        state_work = tuple(None if a is None else a.copy() for a in slots)
        self._keep = (X, work_prev, grad_prev, index, stay, f_prev, steps, lr_work,
                      scalar_work, state_work)
        init_problem(&self.first, self.work, work_prev, self.grad_buf, grad_prev, rule,
                     state_work, lower, upper, &self.tol)
        self.first.n = X.shape[1]
        self.g_prev_own = self.first.g_prev
        self._keep = (*self._keep, init_clipping(&self.first, clip, X))  # (m, n) clip rows
        if lr_work is not None:
            lr_data = <double*>cnp.PyArray_DATA(<cnp.ndarray>lr_work)
        if lower is not None and (<cnp.ndarray>lower).ndim == 2:  # a box per problem
            lower_rows = <const char*>self.first.lower
            upper_rows = <const char*>self.first.upper
        # (field by field: a struct literal must name every member, state_out included)
        self.rows.index = <Py_ssize_t*>cnp.PyArray_DATA(index)
        self.rows.stay = <Py_ssize_t*>cnp.PyArray_DATA(stay)
        self.rows.f_now = <double*>cnp.PyArray_DATA(self.f_now)
        self.rows.f_prev = <double*>cnp.PyArray_DATA(f_prev)
        self.rows.steps = <double*>cnp.PyArray_DATA(steps)
        self.rows.lrs = lr_data
        self.rows.scalars = scalar_data
        self.rows.lower = lower_rows
        self.rows.upper = upper_rows
        self.rows.x_out = <char*>cnp.PyArray_DATA(X)
        self.rows.g_out = <char*>cnp.PyArray_DATA(G_out)
        self.rows.stops = <int*>cnp.PyArray_DATA(stops)
        self.rows.nits = <Py_ssize_t*>cnp.PyArray_DATA(nits)
        self.rows.nfevs = <Py_ssize_t*>cnp.PyArray_DATA(nfevs)
        self.rows.fs = <double*>cnp.PyArray_DATA(fs)
        for k in range(MAX_STATE):
            self.rows.state_out[k] = (<char*>cnp.PyArray_DATA(<cnp.ndarray>slots[k])
                                      if k < len(slots) and slots[k] is not None else NULL)
        self.rows.schedules = NULL
        if train is not None:
            train.start(&self.first)
            self.rows.schedules = train.row_schedules

    def results(self):
        """``(stop, nit, nfev, fun, jac)`` by problem (x is written into X)."""
        return self.results_


ctypedef struct _Chunk:
    # A chunk of problems [start, end) of a batch with a C objective, between two time slices.
    Py_ssize_t start
    Py_ssize_t end
    Py_ssize_t active  # rows still running (packed at the front of the chunk's rows); 0: done
    Py_ssize_t nit     # updates made
    RuleStep clock     # the rule's clock after them
    long stride        # iterations between clock reads (fastopt_poll), as the last slice left it
    UpdateRule rule    # the rule as the chunk's schedule left it
    bint scheduled     # options lr_scheduler: the chunk's schedule below steps
    LoopSchedule schedule
    bint g_swapped     # block objectives: g and g_prev trade buffers (_solve_block)


cdef inline void _keep_place(_Chunk* chunk, Py_ssize_t active, Py_ssize_t nit,
                             const Problem* first, const fastopt_poll* poll) noexcept nogil:
    """Where a chunk's loop (_solve_chunk, _solve_block) stopped, for the next slice to take
    it up: its running rows, updates made, the rule's clock and (scheduled) rule, the poll's
    stride."""
    chunk.active, chunk.nit, chunk.clock, chunk.stride = active, nit, first.clock, poll.stride
    chunk.rule = first.rule


cdef void _solve_chunk(const Problem* whole, _Chunk* chunk, bint per_row, const Tolerances* tol,
                       void* fun, void* user_data, const _Rows* all_rows,
                       double due) noexcept nogil:
    """Iterate the chunk's problems together, on this thread, as batch_python iterates all of
    them: each iteration evaluates the running rows with the C objective, checks them, packs
    the rows that go on and updates them with one kernel call. Iterating independent problems
    side by side hides the latency of each one's update (sqrt, division), which a
    problem-at-a-time loop pays in full. Runs until the chunk is done or time ``due`` has come
    (HUGE_VAL: until done); ``chunk`` keeps where it stopped."""
    cdef Problem first = whole[0]
    cdef _Rows rows = _rows_from(all_rows, chunk.start)
    cdef Py_ssize_t kept, active = chunk.active, nit = chunk.nit
    cdef fastopt_poll poll
    if due != HUGE_VAL and fastopt_now() >= due:
        return  # taken up after the slice ended
    _point_at(&first, whole, chunk.start, NULL)
    first.clock = chunk.clock
    first.rule = chunk.rule
    fastopt_poll_until(&poll, due, chunk.stride)
    while True:
        _evaluate_native_rows(&first, active, fun, user_data, rows.f_now)
        kept = _check_rows(&first, active, nit, tol, &rows)
        if kept == 0:
            active = 0
            break
        if kept < active:
            _pack(&first, &rows, kept)
            active = kept
        _update_rows(&first, active, per_row, &rows, 1)
        if chunk.scheduled:
            _step_schedules(&first, active, &rows, &chunk.schedule)
        nit += 1
        if fastopt_poll_due(&poll):
            break
    _keep_place(chunk, active, nit, &first, &poll)


def batch_native(
    cnp.ndarray X not None,        # INOUT (m, n): the starting points, then the solutions
    Rule rule not None,
    tuple slots not None,          # INOUT: the state arrays (m * n values each)
    NativeObjective objective not None,
    object lower,                  # (n,) or (m, n) bounds in X's dtype, or None
    object upper,
    object lrs,                    # (m,) float64 learning rates, or None (the rule's)
    Py_ssize_t maxiter, double gtol, double ftol, double xtol,
    int n_threads,
    LoopTrain train=None,          # C schedules (train.in_c) and/or progress, or None
    object clip=None,              # None, or fastopt._clipping.ClipSettings (per problem)
    bint flush=False,              # the flush-to-zero mode (option flush_subnormals)
):
    """Solve each row of X with a C objective; returns ``(stop, nit, nfev, fun, jac)``.

    Chunks of CHUNK_ROWS problems are spread over the threads (dynamic schedule: their
    iteration counts differ); each chunk runs on one thread (_solve_chunk). From the main
    thread, the work goes in time slices of a few milliseconds: between two, this thread takes
    the GIL and runs Python's signal handlers, so that Ctrl-C raises KeyboardInterrupt (no
    thread of the OpenMP team takes the GIL; each leaves its chunk at the end of the slice).
    """
    cdef _BatchArrays b = _BatchArrays(X, rule, slots, lower, upper, lrs, maxiter, gtol, ftol,
                                       xtol, train, clip)
    cdef bint block = objective.block
    cdef Py_ssize_t per_chunk = BLOCK_ROWS if block else CHUNK_ROWS
    cdef Py_ssize_t m = b.m, c, n_chunks = (b.m + per_chunk - 1) // per_chunk
    cdef _BlockScratch scratch
    cdef bint interruptible = threading.get_ident() == threading.main_thread().ident
    cdef bint shown = train is not None and train.progress is not None
    cdef fastopt_fpenv env
    cdef fastopt_fpcr caller_bits
    cdef _Job job
    cdef _ChunkProgress progress = None
    n_threads = fastopt_thread_limit(n_threads)  # 1 in a forked child (fastopt_openmp.h)
    cdef _Chunk* chunks = <_Chunk*>PyMem_Malloc(n_chunks * sizeof(_Chunk))
    if chunks == NULL:
        raise MemoryError()
    if block:
        keep_scratch = _block_scratch(&scratch, &b.first, m, objective.single, False)
    try:
        for c in range(n_chunks):
            chunks[c].start = c * per_chunk
            chunks[c].end = min((c + 1) * per_chunk, m)
            chunks[c].active = chunks[c].end - chunks[c].start
            chunks[c].nit = 0
            chunks[c].clock = b.first.clock
            chunks[c].stride = 1
            chunks[c].rule = b.first.rule
            chunks[c].scheduled = train is not None and train.in_c
            chunks[c].g_swapped = False
            if chunks[c].scheduled:
                chunks[c].schedule = train.ls
            if block:  # the chunk's iterates and state, variable-major (_solve_block)
                _chunk_layout(&b.first, &chunks[c], &scratch, True)
        job.solver = _Solver(&b.first, b.per_row, &b.tol, &b.rows, block, &scratch,
                             objective.fun, objective.user_data)
        job.chunks = chunks
        if shown:
            progress = _ChunkProgress.__new__(_ChunkProgress)
            progress.train, progress.chunks, progress.m = train, chunks, m
        # The flush mode: on this thread for the whole loop (restored on every way out,
        # KeyboardInterrupt included), taken by each chunk the team runs.
        caller_bits = fastopt_flush_bits()  # (signal handlers, progress: the caller's mode)
        env = fastopt_flush_begin(flush)
        try:
            run_chunks(_solve_job, _job_open, &job, n_chunks, n_threads, interruptible,
                       progress, caller_bits)
        finally:
            fastopt_fpenv_restore(env)
        if shown:
            _show_chunks(train, chunks, NULL, 0, m)
        if train is not None:
            # the chunks stepped copies of the shared schedule: their errors, as the Python
            # scheduler's step raises them
            error = 0
            for c in range(n_chunks):
                if chunks[c].scheduled:
                    error = max(error, chunks[c].schedule.s.error)
            train.check_schedule(error)
    finally:
        PyMem_Free(chunks)
    return b.results()


ctypedef struct _Solver:
    # What every chunk of one batch_native call is solved with (_solve_any).
    const Problem* first
    bint per_row
    const Tolerances* tol
    const _Rows* rows
    bint block
    const _BlockScratch* scratch
    void* fun
    void* user_data


ctypedef struct _Job:
    # batch_native's work for run_chunks: the solver and the chunks.
    _Solver solver
    _Chunk* chunks


cdef void _solve_job(void* job, Py_ssize_t c, double due) noexcept nogil:
    """One chunk of batch_native until it is done or time ``due`` has come."""
    cdef _Job* j = <_Job*>job
    cdef const _Solver* s = &j.solver
    if s.block:
        _solve_block(s.first, &j.chunks[c], s.per_row, s.tol, s.fun, s.user_data, s.rows,
                     s.scratch, due)
    else:
        _solve_chunk(s.first, &j.chunks[c], s.per_row, s.tol, s.fun, s.user_data, s.rows, due)


cdef bint _job_open(void* job, Py_ssize_t c) noexcept nogil:
    return (<_Job*>job).chunks[c].active > 0


cdef class ChunkDisplay:
    """What run_chunks shows between two time slices (a subclass's ``show``)."""

    cdef int show(self, const Py_ssize_t* open_chunks, Py_ssize_t n_open) except -1:
        return 0


cdef class _ChunkProgress(ChunkDisplay):
    # batch_native's progress (_show_chunks) of its chunks.
    cdef LoopTrain train
    cdef const _Chunk* chunks
    cdef Py_ssize_t m

    cdef int show(self, const Py_ssize_t* open_chunks, Py_ssize_t n_open) except -1:
        return _show_chunks(self.train, self.chunks, open_chunks, n_open, self.m)


cdef int run_chunks(chunk_solver solve, chunk_open is_open, void* job, Py_ssize_t n_chunks,
                    int n_threads, bint interruptible, ChunkDisplay shown,
                    fastopt_fpcr caller_bits) except -1:
    """Solve chunks 0..n_chunks-1 of a batch with a C objective: ``solve(job, c, due)`` works
    on chunk c until it is done (``is_open(job, c)`` false) or time ``due`` has come (HUGE_VAL:
    until done), and keeps where it stopped. On ``n_threads`` threads, a team (_run_team);
    on one, the open chunks in turn, slice by slice. From the main thread (``interruptible``)
    or with ``shown``, the work goes in time slices of a few milliseconds: between two, this
    thread takes the GIL and runs Python's signal handlers (Ctrl-C: KeyboardInterrupt) and
    ``shown.show``, in the caller's flush mode ``caller_bits``."""
    cdef Py_ssize_t c, k, kept, n_open = n_chunks
    cdef fastopt_poll slices
    cdef double due
    cdef fastopt_fpenv python
    cdef bint showing = shown is not None
    cdef Py_ssize_t* open_chunks = <Py_ssize_t*>PyMem_Malloc(n_chunks * sizeof(Py_ssize_t))
    if open_chunks == NULL and n_chunks > 0:
        raise MemoryError()
    try:
        for c in range(n_chunks):
            open_chunks[c] = c
        if n_threads > 1 and n_chunks > 1:
            _run_team(solve, is_open, job, open_chunks, n_chunks, n_threads, interruptible,
                      shown, caller_bits)
            return 0
        with nogil:
            fastopt_poll_signals(&slices, interruptible or showing)
            while n_open > 0:
                due = slices.due
                for k in range(n_open):
                    solve(job, open_chunks[k], due)
                kept = 0
                for k in range(n_open):
                    if is_open(job, open_chunks[k]):
                        open_chunks[kept] = open_chunks[k]
                        kept += 1
                n_open = kept
                if n_open > 0:
                    check_signals(&slices, caller_bits)
                    if showing:
                        python = fastopt_follow_begin(caller_bits)
                        with gil:
                            shown.show(open_chunks, n_open)
                        fastopt_fpenv_restore(python)
    finally:
        PyMem_Free(open_chunks)
    return 0


cdef int _run_team(chunk_solver solve, chunk_open is_open, void* job,
                   const Py_ssize_t* all_chunks, Py_ssize_t n_chunks, int n_threads,
                   bint interruptible, ChunkDisplay shown, fastopt_fpcr caller_bits) except -1:
    """run_chunks on ``n_threads`` threads (src_c/fastopt_team.h): each thread takes chunks
    from a shared counter and solves each to the end, without a barrier until the last. When
    ``interruptible`` or ``shown``, the calling thread (the team's thread 0: ``prange``'s
    static schedule gives it iteration 0) works in slices of FASTOPT_SIGNAL_INTERVAL and
    between two takes the GIL for Python's signal handlers and the progress display; an
    exception there (KeyboardInterrupt) sets the team's stop flag, every thread leaves its
    chunk at the end of its current slice, and the exception is raised here. Once the chunks
    are all taken, the calling thread keeps watching (napping 50 us at a time, looking every
    FASTOPT_SIGNAL_INTERVAL) until the others are done. The watch runs Python in the caller's flush mode ``caller_bits``."""
    cdef fastopt_team team
    cdef bint watch = interruptible or shown is not None
    cdef Py_ssize_t w, c
    cdef double due
    cdef fastopt_fpenv worker
    cdef fastopt_fpcr bits = fastopt_flush_bits()
    errors = []  # the exception the calling thread's watch caught, if any
    team.next = team.done = team.stop = 0
    with nogil:
        for w in prange(n_threads, schedule="static", chunksize=1, num_threads=n_threads):
            worker = fastopt_follow_begin(bits)
            while fastopt_counter_get(&team.stop) == 0:
                c = fastopt_counter_add(&team.next, 1)
                if c >= n_chunks:
                    break
                while is_open(job, c) and fastopt_counter_get(&team.stop) == 0:
                    due = fastopt_now() + FASTOPT_SIGNAL_INTERVAL if watch else HUGE_VAL
                    solve(job, c, due)
                    if w == 0 and watch:
                        _team_watch(&team, errors, interruptible, shown, all_chunks,
                                    n_chunks, caller_bits)
                if not is_open(job, c):
                    fastopt_counter_add(&team.done, 1)
            if w == 0 and watch:
                due = fastopt_now() + FASTOPT_SIGNAL_INTERVAL
                while (fastopt_counter_get(&team.stop) == 0
                       and fastopt_counter_get(&team.done) < n_chunks):
                    fastopt_nap()
                    if fastopt_now() >= due:
                        _team_watch(&team, errors, interruptible, shown, all_chunks,
                                    n_chunks, caller_bits)
                        due = fastopt_now() + FASTOPT_SIGNAL_INTERVAL
            fastopt_fpenv_restore(worker)
    if errors:
        raise errors[0]
    return 0


cdef void _team_watch(fastopt_team* team, list errors, bint interruptible, ChunkDisplay shown,
                      const Py_ssize_t* all_chunks, Py_ssize_t n_chunks,
                      fastopt_fpcr caller_bits) noexcept with gil:
    """_run_team's calling thread between two slices: Python's signal handlers and the
    progress line (the other threads' counters read as they run: a display only), in the
    caller's flush mode ``caller_bits``. An exception is kept in ``errors`` and stops the
    team."""
    cdef fastopt_fpenv python = fastopt_follow_begin(caller_bits)
    try:
        if interruptible:
            PyErr_CheckSignals()
        if shown is not None:
            shown.show(all_chunks, n_chunks)
    except BaseException as exc:
        errors.append(exc)
        fastopt_counter_add(&team.stop, 1)
    finally:
        fastopt_fpenv_restore(python)


def batch_python(
    cnp.ndarray X not None,        # INOUT (m, n): the starting points, then the solutions
    Rule rule not None,
    tuple slots not None,          # INOUT: the state arrays (m * n values each)
    object fun,                    # fun(X, *args) -> (f, G) (EVAL_FUN_AND_GRAD) or f, or a
                                   # NativeObjective (EVAL_NATIVE)
    object jac,                    # jac(X, *args) -> G (EVAL_SEPARATE)
    tuple args,                    # arrays with a row per problem are passed sliced
    tuple per_problem,             # which args have a row per problem
    int mode,
    object lower,                  # (n,) or (m, n) bounds in X's dtype, or None
    object upper,
    object lrs,                    # (m,) float64 learning rates, or None (the rule's)
    Py_ssize_t maxiter, double gtol, double ftol, double xtol,
    int n_threads,
    object callback=None,          # callback(intermediate_result) after each iteration
    LoopTrain train=None,          # a scheduler (Python or C) and/or progress, or None
    object clip=None,              # None, or fastopt._clipping.ClipSettings (per problem)
    bint flush=False,              # the flush-to-zero mode: around the C updates and calls
):
    """Solve the rows of X one iteration at a time from Python: with a vectorised objective,
    or with a C objective (one row per call, on this thread) when a callback needs Python
    after each iteration. Returns ``(stop, nit, nfev, fun, jac)``."""
    cdef _BatchArrays b = _BatchArrays(X, rule, slots, lower, upper, lrs, maxiter, gtol, ftol,
                                       xtol, train, clip)
    cdef Py_ssize_t active = b.m, kept, nit = 0, i
    cdef NativeObjective native = fun if mode == EVAL_NATIVE else None
    cdef _BlockScratch scratch
    cdef Tolerances halt
    cdef cnp.ndarray G
    cdef int[:] stops
    cdef fastopt_fpenv env
    cdef object g_then = None  # the array first.g_prev points into, when not b's own
    cdef cnp.ndarray view = None, grad_rows = None  # the running rows of work, grad_buf
    running_args = args
    if native is not None and native.block:  # transposed in and out of scratch per call
        keep_scratch = _block_scratch(&scratch, &b.first, b.m, native.single, True)
    while active > 0:
        PyErr_CheckSignals()  # cheap with the GIL; Ctrl-C also when fun runs no bytecode
        if native is not None:
            G = b.grad_buf
            b.first.g = cnp.PyArray_DATA(G)
            with nogil:
                env = fastopt_flush_begin(flush)
                if native.block:
                    _evaluate_block_rows(&b.first, active, native.fun, native.user_data,
                                         b.rows.f_now, &scratch)
                else:
                    _evaluate_native_rows(&b.first, active, native.fun, native.user_data,
                                          b.rows.f_now)
                fastopt_fpenv_restore(env)
        else:
            if view is None or cnp.PyArray_DIM(view, 0) != active:  # new after a pack
                view = b.work[:active]
                view.flags.writeable = False
                grad_rows = b.grad_buf[:active]
            G = _evaluate(mode, fun, jac, running_args, view, b, grad_rows)
            b.first.g = cnp.PyArray_DATA(G)

        if callback is not None and nit > 0:
            shown = _report(callback, b, G[:active], active, nit)
            if shown is not None:  # StopIteration: every running problem stops here
                halt = b.tol
                halt.maxiter = nit  # check_stop: a limit reached, or what held anyway
                _check_rows(&b.first, active, nit, &halt, &b.rows)
                stops = b.results_[0]
                for i in shown.tolist():
                    stops[i] = STOP_CALLBACK
                break

        # Each problem's stopping rules; a problem that stops goes to the results.
        kept = _check_packed(&b.first, active, nit, &b.tol, &b.rows)
        if train is not None and train.progress is not None:
            _show_rows(train, b, active, kept, nit)
        if kept == 0:
            break
        if kept < active:
            if G is not b.grad_buf:  # the user's array: pack a copy
                b.grad_buf[:active] = G
                b.first.g = cnp.PyArray_DATA(b.grad_buf)
            _pack(&b.first, &b.rows, kept)
            active = kept
            rows = b.index[:active]
            running_args = tuple(a[rows] if each else a for a, each in zip(args, per_problem))

        if b.per_row:
            with nogil:
                env = fastopt_flush_begin(flush)
                _update_rows(&b.first, active, True, &b.rows, n_threads)
                fastopt_fpenv_restore(env)
        else:
            g_then = _keep_packed(b, G, active)
            with nogil:
                env = fastopt_flush_begin(flush)
                _update_packed(&b.first, active, g_then is None, n_threads)
                fastopt_fpenv_restore(env)
        if train is not None:
            _schedule_rows(train, &b.first, active, &b.rows)
        nit += 1
    if train is not None and train.progress is not None:
        train.progress.update(b.m)
    if train is not None:
        train.check_schedule(0)  # the C schedules' errors (a C objective with a callback)
    return b.results()


cdef extern from *:
    """
    /* Whether a weak reference to o exists (one reaches o without counting in its refcount). */
    static int fastopt_weakly_referenced(PyObject *o)
    {
        Py_ssize_t offset = Py_TYPE(o)->tp_weaklistoffset;
        return offset > 0 && *(PyObject **)((char *)o + offset) != NULL;
    }
    """
    bint fastopt_weakly_referenced(object o)


cdef object _keep_packed(_BatchArrays b, cnp.ndarray G, Py_ssize_t active):
    """Before batch_python updates the rows alike (_update_packed): make the evaluated f and g
    the previous ones (check_stop's way back from a non-finite value) without copying them
    where it can. f: the two f arrays swap. g: ``G`` itself, the evaluated gradients, when
    it is an array nothing else can reach (the objective's fresh result: it owns its data,
    and this loop holds the only reference, no weak one) and the rows were not packed since;
    returns it (to be kept alive), first.g_prev pointing into it. Else None, first.g_prev back at the
    loop's own buffer, and _update_packed copies g there."""
    b.f_now, b.f_then = b.f_then, b.f_now
    b.rows.f_now = <double*>cnp.PyArray_DATA(b.f_now)
    b.rows.f_prev = <double*>cnp.PyArray_DATA(b.f_then)
    # (one reference: the caller's G; a cdef function borrows its arguments. A weak
    # reference reaches G too, without counting: the objective could write into it later.)
    if (Py_REFCNT(G) == 1 and cnp.PyArray_CheckExact(G) and cnp.PyArray_BASE(G) == NULL
            and not fastopt_weakly_referenced(G)
            and cnp.PyArray_CHKFLAGS(G, cnp.NPY_ARRAY_OWNDATA)
            and b.first.g == cnp.PyArray_DATA(G)):
        b.first.g_prev = b.first.g
        return G
    b.first.g_prev = b.g_prev_own
    return None


cdef void _update_packed(Problem* first, Py_ssize_t active, bint copy_g,
                        int n_threads) noexcept nogil:
    """_update_rows for rows that step alike (not per_row), after _keep_packed: x into x_prev,
    g into g_prev when ``copy_g``, then one kernel call over all of them."""
    cdef size_t row_bytes = first.n * (sizeof(float) if first.single else sizeof(double))
    memcpy(first.x_prev, first.x, active * row_bytes)
    if copy_g:
        memcpy(first.g_prev, first.g, active * row_bytes)
    rule_step_next(&first.rule, &first.clock)
    apply_rule(&first.rule, first.single, first.x, _clipped_rows(first, active, n_threads),
               first.state, active * first.n, &first.clock, n_threads)


cdef object _report(object callback, _BatchArrays b, object G, Py_ssize_t active,
                    Py_ssize_t nit):
    """Call ``callback`` with the running problems whose new value and gradient are finite
    (those fastopt.minimize would show: check_stop sends the others back one iterate).
    Returns None, or those problems' indices when the callback raised StopIteration."""
    f = b.f_now[:active]
    finite = np.isfinite(f) & np.isfinite(G).all(axis=1)
    if not finite.any():
        return None  # every running problem stops at its previous iterate: nothing to show
    shown = b.index[:active][finite]
    result = OptimizeResult(x=b.work[:active][finite], fun=f[finite], jac=G[finite],
                            nit=int(nit), indices=shown)
    try:
        callback(result)
    except StopIteration:
        return shown
    return None


cdef void _evaluate_native_rows(Problem* first, Py_ssize_t active, void* fun, void* user_data,
                                double* f_now) noexcept nogil:
    """f and g of the ``active`` packed rows from a C objective, one row per call: f into
    ``f_now``, g into the rows of ``first.g`` (NaN on entry: unwritten_gradient)."""
    cdef Py_ssize_t r
    cdef size_t row_bytes = first.n * (sizeof(float) if first.single else sizeof(double))
    cdef char* x
    cdef char* g
    for r in range(active):
        x = <char*>first.x + r * row_bytes
        g = <char*>first.g + r * row_bytes
        unwritten_gradient(g, first.n, first.single)
        if first.single:
            f_now[r] = (<objective_f32>fun)(<int>first.n, <const float*>x, <float*>g,
                                            user_data)
        else:
            f_now[r] = (<objective_f64>fun)(<int>first.n, <const double*>x, <double*>g,
                                            user_data)


cdef Py_ssize_t _check_rows(const Problem* first, Py_ssize_t active, Py_ssize_t nit,
                            const Tolerances* tol, const _Rows* rows) noexcept nogil:
    """Check the stopping rules of the ``active`` packed rows (evaluated, ``nit`` updates
    made). The rows that go on are listed in ``rows.stay``; a problem that stops (after going
    back to its last finite iterate where check_stop says so) is written to the results.
    Returns the number of rows that go on."""
    if first.single:
        return _check_rows_typed(<const float*>first.x, <const float*>first.g, first, active,
                                 nit, tol, rows)
    return _check_rows_typed(<const double*>first.x, <const double*>first.g, first, active, nit,
                             tol, rows)


cdef Py_ssize_t _check_rows_typed(const floating* x, const floating* g, const Problem* first,
                                  Py_ssize_t active, Py_ssize_t nit, const Tolerances* tol,
                                  const _Rows* rows) noexcept nogil:
    # _check_rows for one dtype: the per-row work is a few instructions for small n, and it
    # runs for every running problem at every iteration.
    cdef Problem p = first[0]
    cdef Py_ssize_t r, i, kept = 0, n = first.n
    cdef size_t row_bytes = n * sizeof(floating)
    cdef int stop, k
    cdef const floating* lo = <const floating*>p.lower
    cdef const floating* hi = <const floating*>p.upper
    p.nit, p.nfev = nit, nit + 1
    for r in range(active):
        if rows.lower != NULL:  # a box per problem
            lo = <const floating*>rows.lower + rows.index[r] * n
            hi = <const floating*>rows.upper + rows.index[r] * n
        p.gnorm = _projected_grad_norm(g + r * n, x + r * n, lo, hi, n)
        p.f, p.f_prev, p.step = rows.f_now[r], rows.f_prev[r], rows.steps[r]
        p.x = <void*>(x + r * n)
        p.g = <void*>(g + r * n)
        p.x_prev = <char*>first.x_prev + r * row_bytes
        p.g_prev = <char*>first.g_prev + r * row_bytes
        stop = check_stop(&p, tol)
        if stop == STOP_NONE:
            rows.stay[kept] = r
            kept += 1
            continue
        i = rows.index[r]
        memcpy(rows.x_out + i * row_bytes, p.x, row_bytes)
        for k in range(MAX_STATE):
            if rows.state_out[k] != NULL:
                memcpy(rows.state_out[k] + i * row_bytes,
                       <const char*>first.state[k] + r * row_bytes, row_bytes)
        memcpy(rows.g_out + i * row_bytes, p.g, row_bytes)
        rows.stops[i], rows.nits[i], rows.nfevs[i], rows.fs[i] = stop, p.nit, p.nfev, p.f
        p.nit = nit  # check_stop may have gone back one iteration for this row
    return kept


cdef Py_ssize_t _check_packed(Problem* first, Py_ssize_t active, Py_ssize_t nit,
                             const Tolerances* tol, const _Rows* rows) noexcept nogil:
    """_check_rows, with the stopping rules tested across the block first: one branch-free
    pass over the rows (their f, gradient, f_prev and step) flags each row a rule may stop;
    only the flagged rows go through check_stop, one by one (_check_rows on that row), and
    the others stay. A row no rule flags is one check_stop lets go on (the flags compute its
    tests with the same operands), so the result is _check_rows's. Same contract: the rows
    that go on in ``rows.stay`` (unless all do), returns how many."""
    cdef Py_ssize_t r, kept = 0
    cdef bint flagged
    cdef Problem p
    cdef _Rows one
    if nit >= tol.maxiter:  # every row stops
        return _check_rows(first, active, nit, tol, rows)
    if first.single:
        flagged = _flag_rows(<const float*>first.g, <const float*>first.x, first, active,
                             nit, tol, rows)
    else:
        flagged = _flag_rows(<const double*>first.g, <const double*>first.x, first, active,
                             nit, tol, rows)
    if not flagged:
        return active
    p = first[0]
    for r in range(active):
        # rows.stay[r] holds row r's flag until it is read here; kept <= r: the writes only
        # overwrite flags read already
        if rows.stay[r] == 0:
            rows.stay[kept] = r
            kept += 1
            continue
        _point_at(&p, first, r, NULL)
        one = _rows_from(rows, r)
        if _check_rows(&p, 1, nit, tol, &one) == 1:
            rows.stay[kept] = r
            kept += 1
    return kept


cdef bint _flag_rows(const floating* g, const floating* x, const Problem* first,
                     Py_ssize_t active, Py_ssize_t nit, const Tolerances* tol,
                     const _Rows* rows) noexcept nogil:
    """Flag (nonzero in ``rows.stay[r]``, else 0) each row whose f or gradient is not finite,
    or whose gradient norm, f change or step a stopping rule accepts (check_stop's tests, the
    limit on iterations aside); returns whether any row is flagged."""
    cdef bint use_ftol = nit > 0 and tol.ftol > 0
    cdef bint use_xtol = nit > 0 and tol.xtol > 0
    if first.lower != NULL or rows.lower != NULL:
        return _flag_rows_bounded(g, x, first, active, use_ftol, use_xtol, tol, rows)
    if floating is float:  # src_c/fastopt_batch_flags.h: two rows at a time
        return fastopt_flag_rows_f32(g, first.n, active, rows.f_now, rows.f_prev, rows.steps,
                                     tol.gtol, use_ftol, tol.ftol, use_xtol, tol.xtol,
                                     rows.stay)
    else:
        return fastopt_flag_rows_f64(g, first.n, active, rows.f_now, rows.f_prev, rows.steps,
                                     tol.gtol, use_ftol, tol.ftol, use_xtol, tol.xtol,
                                     rows.stay)


cdef bint _flag_rows_bounded(const floating* g, const floating* x, const Problem* first,
                             Py_ssize_t active, bint use_ftol, bint use_xtol,
                             const Tolerances* tol, const _Rows* rows) noexcept nogil:
    # With bounds: the projected norm as check_stop gets it, row by row.
    cdef Py_ssize_t r, fl, n = first.n, flagged = 0
    cdef double gnorm, f, fp
    cdef const floating* lo = <const floating*>first.lower
    cdef const floating* hi = <const floating*>first.upper
    for r in range(active):
        if rows.lower != NULL:  # a box per problem
            lo = <const floating*>rows.lower + rows.index[r] * n
            hi = <const floating*>rows.upper + rows.index[r] * n
        gnorm = _projected_grad_norm(g + r * n, x + r * n, lo, hi, n)
        f, fp = rows.f_now[r], rows.f_prev[r]
        fl = (gnorm < 0 or not isfinite(f) or gnorm <= tol.gtol
              or (use_ftol and fabs(fp - f) <= tol.ftol * fmax(fmax(fabs(fp), fabs(f)), 1.0))
              or (use_xtol and rows.steps[r] <= tol.xtol))
        rows.stay[r] = fl
        flagged |= fl
    return flagged != 0


cdef void _update_rows(Problem* first, Py_ssize_t active, bint per_row, const _Rows* rows,
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
            _point_at(&p, first, r, rows.lrs)
            if rows.lower != NULL:  # a box per problem
                p.lower = rows.lower + rows.index[r] * row_bytes
                p.upper = rows.upper + rows.index[r] * row_bytes
            p.f, p.clock = rows.f_now[r], first.clock
            if rows.scalars != NULL:  # the row's own running scalars
                memcpy(p.clock.scalars, rows.scalars + r * MAX_SCALARS,
                       MAX_SCALARS * sizeof(double))
            advance(&p, 1)
            if rows.scalars != NULL:
                memcpy(rows.scalars + r * MAX_SCALARS, p.clock.scalars,
                       MAX_SCALARS * sizeof(double))
            rows.f_prev[r], rows.steps[r] = p.f_prev, p.step
        rule_step_next(&first.rule, &first.clock)
    else:
        memcpy(first.x_prev, first.x, active * row_bytes)
        memcpy(first.g_prev, first.g, active * row_bytes)
        memcpy(rows.f_prev, rows.f_now, active * sizeof(double))
        rule_step_next(&first.rule, &first.clock)
        apply_rule(&first.rule, first.single, first.x, _clipped_rows(first, active, n_threads),
                   first.state, active * first.n, &first.clock, n_threads)


cdef const void* _clipped_rows(const Problem* first, Py_ssize_t active,
                               int n_threads) noexcept nogil:
    """The gradients one kernel call steps the ``active`` packed rows with: ``first.g``, or
    each row clipped on its own (its problem's norm, as fastopt.minimize would clip it) into
    the rows of ``first.clip_buf``."""
    cdef Py_ssize_t r
    cdef size_t row_bytes = first.n * (sizeof(float) if first.single else sizeof(double))
    cdef const char* g
    cdef char* out
    if not first.clip.on:
        return first.g
    if not first.clip.by_norm:  # elementwise: every row in one call
        return clip_gradient(&first.clip, first.single, first.g, first.clip_buf,
                             active * first.n, n_threads)
    for r in range(active):
        g = <const char*>first.g + r * row_bytes
        out = <char*>first.clip_buf + r * row_bytes
        if clip_gradient(&first.clip, first.single, g, out, first.n, 1) != out:
            memcpy(out, g, row_bytes)  # within max_grad_norm: as it is
    return first.clip_buf


cdef void _pack(Problem* first, const _Rows* rows, Py_ssize_t kept) noexcept nogil:
    """Move rows ``rows.stay[0..kept)`` of the work arrays (iterates, gradients, state, and
    the per-problem scalars) to the front, in order."""
    cdef Py_ssize_t w, r, k
    cdef size_t row_bytes = first.n * (sizeof(float) if first.single else sizeof(double))
    for w in range(kept):
        r = rows.stay[w]
        if r == w:
            continue
        _move_row(first.x, w, r, row_bytes)
        _move_row(first.g, w, r, row_bytes)
        for k in range(MAX_STATE):
            if first.state[k] != NULL:
                _move_row(first.state[k], w, r, row_bytes)
        rows.index[w], rows.f_now[w], rows.steps[w] = rows.index[r], rows.f_now[r], rows.steps[r]
        if rows.lrs != NULL:
            rows.lrs[w] = rows.lrs[r]
        if rows.scalars != NULL:
            memcpy(rows.scalars + w * MAX_SCALARS, rows.scalars + r * MAX_SCALARS,
                   MAX_SCALARS * sizeof(double))
        if rows.schedules != NULL:
            rows.schedules[w] = rows.schedules[r]


cdef inline void _move_row(void* a, Py_ssize_t to, Py_ssize_t frm, size_t row_bytes) noexcept nogil:
    memcpy(<char*>a + to * row_bytes, <char*>a + frm * row_bytes, row_bytes)


cdef cnp.ndarray _evaluate(int mode, object fun, object jac, tuple args, cnp.ndarray X,
                           _BatchArrays b, cnp.ndarray grad_buf):
    """Evaluate the vectorised objective at the k rows of X: f into ``b.f_now[:k]``; returns
    the gradients as a C-contiguous (k, n) array of X's dtype (the user's, or ``grad_buf``).

    What objectives usually return, a float64 array f of shape (k,) and an array G of X's
    shape, is checked and copied in C; anything else goes through NumPy (conversions, and
    the errors)."""
    cdef Py_ssize_t k = cnp.PyArray_DIM(X, 0)
    f, g = call_objective(mode, fun, jac, args, X)
    if (cnp.PyArray_CheckExact(f) and cnp.PyArray_NDIM(<cnp.ndarray>f) == 1
            and cnp.PyArray_DIM(<cnp.ndarray>f, 0) == k
            and cnp.PyArray_TYPE(<cnp.ndarray>f) == cnp.NPY_DOUBLE
            and cnp.PyArray_ISCARRAY_RO(<cnp.ndarray>f)
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>f)):
        memmove(b.rows.f_now, cnp.PyArray_DATA(<cnp.ndarray>f), k * sizeof(double))
    else:
        _store_f(f, X, b.f_now[:k])
    if not (cnp.PyArray_Check(g) and cnp.PyArray_NDIM(<cnp.ndarray>g) == 2
            and cnp.PyArray_DIM(<cnp.ndarray>g, 0) == k
            and cnp.PyArray_DIM(<cnp.ndarray>g, 1) == cnp.PyArray_DIM(X, 1)):
        shape = (<object>X).shape
        if np.shape(g) != shape:
            raise ValueError(f"the gradient must have the shape of X, {shape}, got shape "
                             f"{np.shape(g)}")
    return as_gradient(g, X, grad_buf)


cdef int _store_f(object f, object X, object f_out) except -1:
    """f, checked, into f_out (its values converted to float64)."""
    f = np.asarray(f)
    if f.shape != f_out.shape:
        raise ValueError(f"fun must return f of shape {f_out.shape} for X of shape "
                         f"{X.shape}, got shape {f.shape}")
    if f.dtype.kind not in "fiub":
        raise TypeError(f"fun must return real values, got dtype {f.dtype}")
    f_out[...] = f
    return 0


# ---------------------------------------------------------------------------------------------
# Schedules and progress (options lr_scheduler, disp, progress)

cdef void _step_schedules(Problem* first, Py_ssize_t active, const _Rows* rows,
                          LoopSchedule* shared) noexcept nogil:
    """Step the C schedules after an update of the ``active`` rows: each row's own (its
    learning rate into ``rows.lrs``; the momentum, the same for every row, from the first),
    or ``shared``, every row's."""
    cdef Py_ssize_t r
    if rows.schedules == NULL:
        schedule_next(first, shared)
        return
    for r in range(active):
        rows.lrs[r] = schedule_step(&rows.schedules[r].s, rows.f_prev[r])
    if active > 0:
        set_schedule_values(first, shared, first.rule.lr,
                            schedule_momentum(&rows.schedules[0].s))


cdef int _schedule_rows(LoopTrain train, Problem* first, Py_ssize_t active,
                        const _Rows* rows) except -1:
    """batch_python's schedule step: the C schedules, or the Python scheduler (shared)."""
    if train.in_c:
        _step_schedules(first, active, rows, &train.ls)
    else:
        train.after_update(first)
    return 0


cdef int _show_rows(LoopTrain train, _BatchArrays b, Py_ssize_t active, Py_ssize_t kept,
                    Py_ssize_t nit) except -1:
    """batch_python's progress after the rows' check at iteration ``nit``: a line every
    ``stride`` iterations (running problems, the range of their f, the learning rate), the
    bar at the problems done."""
    progress = train.progress
    if progress.lines and nit % train.stride == 0 and active > 0:
        f = b.f_now[:active]
        lr = "per problem" if b.rows.lrs != NULL else b.first.rule.lr
        progress.line(nit, float(kept), float(np.nanmin(f)) if np.isfinite(f).any() else np.nan,
                      float(np.nanmax(f)) if np.isfinite(f).any() else np.nan, lr)
    progress.update(b.m - kept)
    return 0


cdef int _show_chunks(LoopTrain train, const _Chunk* chunks, const Py_ssize_t* open_chunks,
                      Py_ssize_t n_open, Py_ssize_t m) except -1:
    """batch_native's progress between two time slices: a line when the slowest running
    chunk has passed another ``stride`` iterations (running and done problems), the bar at
    the problems done. ``n_open`` 0: the end."""
    cdef Py_ssize_t k, running = 0, nit = -1
    for k in range(n_open):
        running += chunks[open_chunks[k]].active
        if nit < 0 or chunks[open_chunks[k]].nit < nit:
            nit = chunks[open_chunks[k]].nit
    progress = train.progress
    if progress.lines and n_open > 0 and nit // train.stride > train.shown_lines:
        train.shown_lines = nit // train.stride
        progress.line(nit, float(running), float(m - running))
    progress.update(m - running)
    return 0


# ---------------------------------------------------------------------------------------------
# Block C objectives: f(m, n, X, F, G, user_data), m problems per call, variable-major.
#
# A chunk of a batch with a block objective keeps its running problems variable-major in its
# region of the work arrays (the chunk's rows start*n .. end*n): variable j of running problem
# r at [j*active + r], in x, g, x_prev, g_prev and every state array, the stride being the
# number of running problems, as the objective's X[j*m + i] needs. Per iteration: one
# objective call for all of them (_evaluate_block), the stopping rules across the block
# (_check_block), the finished problems written out and the others compacted to the new stride
# (_pack_block), and one update (_update_rows over active * n values: elementwise kernels do not
# care about the layout, so that is bitwise what updating each problem alone gives).
#
# What needs a problem's values contiguous -- per-problem learning rates, bounds, xtol (the
# per_row path of _update_rows: advance() per problem), clipping by norm (a norm summed in the
# problem's order), rules that are not elementwise (Adafactor, which always goes per_row) --
# transposes the chunk to row-major in place, runs the row-major update, and transposes back:
# bitwise the same, at the cost of two transposes per iteration.

ctypedef struct _BlockScratch:
    char* tmp    # (m, n) values of x's dtype: each chunk's region, for in-place transposes
    float* f32   # (m,): F of a float32 block objective (f_now is double), or NULL
    char* xt     # (m, n) each: batch_python's transposed rows (callback path)
    char* gt


cdef object _block_scratch(_BlockScratch* s, const Problem* first, Py_ssize_t m, bint single,
                           bint rows):
    """Allocate the scratch of a batch with a block objective (``rows``: batch_python's too);
    returns what keeps it alive."""
    dtype = np.float32 if single else np.float64
    tmp, xt, gt = (np.empty((m if k == 0 or rows else 0, first.n), dtype) for k in range(3))
    f32 = np.empty(m if single else 0, np.float32)
    s.tmp = <char*>cnp.PyArray_DATA(tmp)
    s.xt = <char*>cnp.PyArray_DATA(xt) if rows else NULL
    s.gt = <char*>cnp.PyArray_DATA(gt) if rows else NULL
    s.f32 = <float*>cnp.PyArray_DATA(f32) if single else NULL
    return (tmp, xt, gt, f32)


cdef void _transpose(void* a, void* tmp, Py_ssize_t rows, Py_ssize_t n, bint single,
                     bint to_vars) noexcept nogil:
    """Transpose ``a`` in place (through ``tmp``): (rows, n) row-major to variable-major
    (``to_vars``) or back."""
    if single:
        _transpose_typed(<float*>a, <float*>tmp, rows, n, to_vars)
    else:
        _transpose_typed(<double*>a, <double*>tmp, rows, n, to_vars)


cdef void _transpose_typed(floating* a, floating* tmp, Py_ssize_t rows, Py_ssize_t n,
                           bint to_vars) noexcept nogil:
    cdef Py_ssize_t r, j
    if rows <= 1 or n == 1:
        return  # the same layout
    memcpy(tmp, a, rows * n * sizeof(floating))
    for r in range(rows):
        for j in range(n):
            if to_vars:
                a[j * rows + r] = tmp[r * n + j]
            else:
                a[r * n + j] = tmp[j * rows + r]


cdef void _chunk_layout(const Problem* whole, const _Chunk* chunk, const _BlockScratch* s,
                        bint to_vars) noexcept nogil:
    """Transpose the chunk's running problems (x, g, x_prev, g_prev, state) to variable-major
    (``to_vars``) or to row-major."""
    cdef Problem p = whole[0]
    cdef Py_ssize_t k
    cdef void* tmp = s.tmp + chunk.start * p.n * (sizeof(float) if p.single else sizeof(double))
    _point_at(&p, whole, chunk.start, NULL)
    _transpose(p.x, tmp, chunk.active, p.n, p.single, to_vars)
    _transpose(p.g, tmp, chunk.active, p.n, p.single, to_vars)
    _transpose(p.x_prev, tmp, chunk.active, p.n, p.single, to_vars)
    _transpose(p.g_prev, tmp, chunk.active, p.n, p.single, to_vars)
    for k in range(MAX_STATE):
        if p.state[k] != NULL:
            _transpose(p.state[k], tmp, chunk.active, p.n, p.single, to_vars)


cdef void _solve_block(const Problem* whole, _Chunk* chunk, bint per_row, const Tolerances* tol,
                       void* fun, void* user_data, const _Rows* all_rows,
                       const _BlockScratch* s, double due) noexcept nogil:
    """_solve_chunk for a block objective: the chunk's running problems variable-major, one
    objective call per iteration for all of them (see the notes above _BlockScratch)."""
    cdef Problem first = whole[0]
    cdef _Rows rows = _rows_from(all_rows, chunk.start)
    cdef Py_ssize_t kept, active = chunk.active, nit = chunk.nit
    cdef fastopt_poll poll
    cdef float* f32 = NULL if s.f32 == NULL else s.f32 + chunk.start
    # rows need their own step, or clipping by each problem's norm: row-major updates
    cdef bint by_rows = per_row or (first.clip.on and first.clip.by_norm)
    if due != HUGE_VAL and fastopt_now() >= due:
        return  # taken up after the slice ended
    _point_at(&first, whole, chunk.start, NULL)
    if chunk.g_swapped:
        first.g, first.g_prev = first.g_prev, first.g
    first.clock = chunk.clock
    first.rule = chunk.rule
    fastopt_poll_until(&poll, due, chunk.stride)
    while True:
        _evaluate_block(&first, active, fun, user_data, rows.f_now, f32)
        kept = _check_block(&first, active, nit, tol, &rows)
        if kept == 0:
            active = 0
            break
        if kept < active:
            _pack_block(&first, &rows, active, kept)
            active = kept
        if by_rows:
            chunk.active = active
            _chunk_layout(whole, chunk, s, False)
            _update_rows(&first, active, per_row, &rows, 1)
            _chunk_layout(whole, chunk, s, True)
        else:
            _update_block(&first, active, &rows)
            chunk.g_swapped = not chunk.g_swapped
        if chunk.scheduled:
            _step_schedules(&first, active, &rows, &chunk.schedule)
        nit += 1
        if fastopt_poll_due(&poll):
            break
    _keep_place(chunk, active, nit, &first, &poll)


cdef inline void _update_block(Problem* first, Py_ssize_t active,
                               const _Rows* rows) noexcept nogil:
    """_update_rows' one-kernel-call update of the chunk's block, with g and g_prev trading
    buffers instead of a copy (the kernel does not write g; the next evaluation writes the
    other buffer): the same values."""
    cdef size_t nbytes = active * first.n * (sizeof(float) if first.single else sizeof(double))
    cdef void* g
    memcpy(first.x_prev, first.x, nbytes)
    memcpy(rows.f_prev, rows.f_now, active * sizeof(double))
    rule_step_next(&first.rule, &first.clock)
    apply_rule(&first.rule, first.single, first.x, _clipped_rows(first, active, 1), first.state,
               active * first.n, &first.clock, 1)
    g, first.g = first.g, first.g_prev
    first.g_prev = g


cdef void _evaluate_block(Problem* first, Py_ssize_t active, void* fun, void* user_data,
                          double* f_now, float* f32) noexcept nogil:
    """f and g of the ``active`` running problems (variable-major) in one call: f into
    ``f_now`` (through ``f32`` for float32), g into ``first.g``. G and F are NaN on entry, as
    unwritten_gradient makes the scalar path's: an entry left unwritten stops its problem
    with status 3."""
    cdef Py_ssize_t r
    unwritten_gradient(first.g, active * first.n, first.single)
    if first.single:
        for r in range(active):
            f32[r] = NAN
        (<block_f32>fun)(<int>active, <int>first.n, <const float*>first.x, f32,
                         <float*>first.g, user_data)
        for r in range(active):
            f_now[r] = f32[r]
    else:
        for r in range(active):
            f_now[r] = NAN
        (<block_f64>fun)(<int>active, <int>first.n, <const double*>first.x, f_now,
                         <double*>first.g, user_data)


cdef void _evaluate_block_rows(Problem* first, Py_ssize_t active, void* fun, void* user_data,
                               double* f_now, const _BlockScratch* s) noexcept nogil:
    """_evaluate_native_rows for a block objective (batch_python, whose rows are row-major):
    the rows transposed into scratch, one call, the gradients transposed back."""
    cdef Problem t = first[0]
    cdef size_t nbytes = active * first.n * (sizeof(float) if first.single else sizeof(double))
    memcpy(s.xt, first.x, nbytes)
    _transpose(s.xt, s.tmp, active, first.n, first.single, True)
    t.x, t.g = s.xt, s.gt
    _evaluate_block(&t, active, fun, user_data, f_now, s.f32)
    _transpose(s.gt, s.tmp, active, first.n, first.single, False)
    memcpy(first.g, s.gt, nbytes)


cdef Py_ssize_t _check_block(const Problem* first, Py_ssize_t active, Py_ssize_t nit,
                             const Tolerances* tol, const _Rows* rows) noexcept nogil:
    """_check_rows for the ``active`` running problems of a chunk, variable-major."""
    if first.single:
        return _check_block_typed(<float*>first.x, <const float*>first.g, first, active, nit,
                                  tol, rows)
    return _check_block_typed(<double*>first.x, <const double*>first.g, first, active, nit,
                              tol, rows)


cdef Py_ssize_t _check_block_typed(const floating* x, const floating* g, const Problem* first,
                                   Py_ssize_t active, Py_ssize_t nit, const Tolerances* tol,
                                   const _Rows* rows) noexcept nogil:
    # The projected-gradient norms across the block (without bounds: the loop over problems
    # inside, vectorised; the same operations per problem as _projected_grad_norm), then each
    # problem's check. check_stop decides where a problem may stop; the common case (a finite
    # f, a gradient norm above gtol, no ftol/xtol, maxiter not reached), where it says go on,
    # is decided here without it. Finished problems are written to the results, their values
    # gathered from the block (from x_prev/g_prev where check_stop went back an iterate).
    cdef Problem p = first[0]
    cdef Py_ssize_t r, i, j, kept = 0, n = first.n
    cdef int stop, k
    cdef double gi, gnorm, y, gtol = tol.gtol
    cdef long stopping = 0
    cdef const double* f_now = rows.f_now
    cdef double norm[BLOCK_ROWS]
    cdef double nonfinite[BLOCK_ROWS]
    cdef double here, back  # check_stop's x and x_prev (p.n = 0: nothing copied)
    cdef const floating* lo = <const floating*>p.lower
    cdef const floating* hi = <const floating*>p.upper
    cdef const floating* xs
    cdef const floating* gs
    cdef bint per_box = rows.lower != NULL
    cdef bint easy = tol.ftol <= 0 and tol.xtol <= 0 and nit < tol.maxiter
    cdef double a, b
    if easy and lo == NULL and not per_box and n == 2:
        # Two variables (the common small case): the all-go-on test below in one pass, with
        # no arrays; the norm is the same maximum (|g0|, then |g1|, from 0).
        gs = g + active
        for r in range(active):
            a = fabs(<double>g[r])
            b = fabs(<double>gs[r])
            y = a if a > 0.0 else 0.0
            y = b if b > y else y
            y = y + (0.0 * g[r] + 0.0 * gs[r]) + 0.0 * f_now[r]
            stopping |= not (y > gtol)
        if stopping == 0:
            return active
        stopping = 0
    if lo == NULL and not per_box:
        for r in range(active):
            norm[r] = 0.0
            nonfinite[r] = 0.0
        for j in range(n):
            gs = g + j * active
            for r in range(active):
                gi = gs[r]
                nonfinite[r] += 0.0 * gi
                gi = fabs(gi)
                norm[r] = gi if gi > norm[r] else norm[r]
        if easy:
            # Every problem going on is the common case: decided by one vectorised pass,
            # without filling rows.stay (not read when none stops). nonfinite[r] and 0 * f are
            # 0, or NaN when something is not finite: then y is NaN, and NaN > gtol is false;
            # else y is the norm exactly.
            for r in range(active):
                y = norm[r] + nonfinite[r] + 0.0 * f_now[r]
                stopping |= not (y > gtol)  # (an int OR: the loop vectorises)
            if stopping == 0:
                return active
    p.nit, p.nfev, p.n = nit, nit + 1, 0
    p.x, p.x_prev = &here, &back
    for r in range(active):
        if lo == NULL and not per_box:
            gnorm = norm[r] if nonfinite[r] == 0.0 else -1.0
        else:
            if per_box:
                lo = <const floating*>rows.lower + rows.index[r] * n
                hi = <const floating*>rows.upper + rows.index[r] * n
            gnorm = _block_grad_norm(g + r, x + r, lo, hi, n, active)
        if easy and gnorm > tol.gtol and isfinite(rows.f_now[r]):
            rows.stay[kept] = r
            kept += 1
            continue
        p.gnorm, p.f, p.f_prev, p.step = gnorm, rows.f_now[r], rows.f_prev[r], rows.steps[r]
        stop = check_stop(&p, tol)
        if stop == STOP_NONE:
            rows.stay[kept] = r
            kept += 1
            continue
        i = rows.index[r]
        if p.nit < nit:  # back to the previous iterate
            xs, gs = <const floating*>first.x_prev + r, <const floating*>first.g_prev + r
        else:
            xs, gs = x + r, g + r
        for j in range(n):
            (<floating*>rows.x_out)[i * n + j] = xs[j * active]
            (<floating*>rows.g_out)[i * n + j] = gs[j * active]
        for k in range(MAX_STATE):
            if rows.state_out[k] != NULL:
                xs = <const floating*>first.state[k] + r
                for j in range(n):
                    (<floating*>rows.state_out[k])[i * n + j] = xs[j * active]
        rows.stops[i], rows.nits[i], rows.nfevs[i], rows.fs[i] = stop, p.nit, p.nfev, p.f
        p.nit = nit
    return kept


cdef inline double _block_grad_norm(const floating* g, const floating* x, const floating* lo,
                                    const floating* hi, Py_ssize_t n,
                                    Py_ssize_t stride) noexcept nogil:
    """_projected_grad_norm with bounds, of a problem whose values are ``stride`` apart."""
    cdef Py_ssize_t j
    cdef double gi, norm = 0.0
    for j in range(n):
        gi = g[j * stride]
        if not isfinite(gi):
            return -1.0
        if (x[j * stride] <= lo[j] and gi > 0) or (x[j * stride] >= hi[j] and gi < 0):
            continue
        gi = fabs(gi)
        norm = gi if gi > norm else norm
    return norm


cdef void _pack_block(Problem* first, const _Rows* rows, Py_ssize_t active,
                      Py_ssize_t kept) noexcept nogil:
    """_pack for a chunk kept variable-major: the running problems ``rows.stay[0..kept)``
    move, in order, to stride ``kept`` (the objective's m is the stride, so every variable's
    values move anyway when the count shrinks), in x, g and the state arrays; the per-problem
    scalars as _pack moves them."""
    cdef Py_ssize_t w, r, k
    cdef Problem p = first[0]
    p.n = 0  # _pack's arrays are moved here: only its scalars there
    _pack(&p, rows, kept)
    if first.single:
        _compact(<float*>first.x, rows.stay, first.n, active, kept)
        _compact(<float*>first.g, rows.stay, first.n, active, kept)
    else:
        _compact(<double*>first.x, rows.stay, first.n, active, kept)
        _compact(<double*>first.g, rows.stay, first.n, active, kept)
    for k in range(MAX_STATE):
        if first.state[k] != NULL:
            if first.single:
                _compact(<float*>first.state[k], rows.stay, first.n, active, kept)
            else:
                _compact(<double*>first.state[k], rows.stay, first.n, active, kept)


cdef void _compact(floating* a, const Py_ssize_t* stay, Py_ssize_t n, Py_ssize_t active,
                   Py_ssize_t kept) noexcept nogil:
    # In place, forward: the value written at j*kept + w comes from j*active + stay[w], at or
    # after it (stay[w] >= w, kept <= active), and every later read is further on still.
    cdef Py_ssize_t j, w
    for j in range(n):
        for w in range(kept):
            a[j * kept + w] = a[j * active + stay[w]]
