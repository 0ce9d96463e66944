# The iteration of one problem as C functions over a struct (fastopt/_iteration.pxi), shared
# by the single-problem loops (fastopt/_loop.pyx) and the batch loops (fastopt/_batch.pyx).

cimport numpy as cnp
from cpython.exc cimport PyErr_CheckSignals
from cython cimport floating
from libc.math cimport NAN, fabs, fmax, isfinite, pow
from libc.string cimport memcpy

from fastopt._kernels cimport (
    MAX_POWERS,
    MAX_STATE,
    RuleStep,
    UpdateRule,
    apply_rule,
    project_rule,
    rule_step_next,
)
from fastopt._schedule cimport Schedule, schedule_momentum, schedule_step
from fastopt._native cimport NativeObjective
from fastopt._clip cimport ClipSpec, clip_gradient
from fastopt._fpenv cimport (
    fastopt_follow_begin,
    fastopt_fpcr,
    fastopt_fpenv,
    fastopt_fpenv_restore,
)
from fastopt._step cimport Rule

# C-level objectives: f(n, x, grad, user_data) returns f(x) and writes its gradient to grad.
ctypedef double (*objective_f64)(int, const double*, double*, void*) noexcept nogil
ctypedef float (*objective_f32)(int, const float*, float*, void*) noexcept nogil
# Block objectives (minimize_batch): f(m, n, X, F, G, user_data), variable-major (X[j*m + i]).
ctypedef void (*block_f64)(int, int, const double*, double*, double*, void*) noexcept nogil
ctypedef void (*block_f32)(int, int, const float*, float*, float*, void*) noexcept nogil

# Looking for Ctrl-C in loops without the GIL (src_c/fastopt_interrupt.h).
cdef extern from "fastopt_interrupt.h" nogil:
    ctypedef struct fastopt_poll:
        double due
        long stride
    double FASTOPT_SIGNAL_INTERVAL
    double fastopt_now()
    void fastopt_poll_signals(fastopt_poll* p, bint enabled)
    void fastopt_poll_until(fastopt_poll* p, double due, long stride)
    bint fastopt_poll_due(fastopt_poll* p)
    void fastopt_poll_checked(fastopt_poll* p, double waited)

# Why a run stopped (check_stop); the drivers map these to SciPy's status codes.
cdef enum:
    STOP_NONE = -1
    STOP_GTOL = 0
    STOP_FTOL = 1
    STOP_XTOL = 2
    STOP_MAXITER = 3
    STOP_NONFINITE = 4
    STOP_CALLBACK = 5

ctypedef struct Tolerances:
    Py_ssize_t maxiter
    double gtol
    double ftol
    double xtol

ctypedef struct Problem:
    # Buffers of n elements of the problem's dtype (float32 when ``single``). ``g`` may point
    # into an array a Python objective returned (g_owned false); the others belong to the loop.
    void* x
    void* x_prev
    void* g
    void* g_prev
    void* state[MAX_STATE]
    const void* lower  # both NULL, or the bounds
    const void* upper
    Py_ssize_t n
    bint single
    UpdateRule rule
    RuleStep clock
    Py_ssize_t nit
    Py_ssize_t nfev
    double f
    double f_prev
    double gnorm  # of the projected gradient; -1 when g has a non-finite entry
    double step   # inf-norm of the last step (when bounds or track_step need it)
    bint track_step  # xtol is on
    bint g_owned  # g and g_prev are the loop's buffers (a C objective): swapped, not copied
    # Gradient clipping (options max_grad_norm, clip_value): the rule gets g clipped into
    # clip_buf (n elements, the loop's), g itself staying the true gradient.
    ClipSpec clip
    void* clip_buf

include "_iteration.pxi"

# A scheduler and/or progress for the loops (options lr_scheduler, disp, progress); see
# fastopt/_loop.pyx.
cdef class LoopTrain:
    cdef LoopSchedule ls
    cdef LoopSchedule* row_schedules  # minimize_batch's per-problem schedules, or NULL
    cdef object scheduler, optimizer, lr_momentum
    cdef readonly object progress
    cdef bint with_metric
    cdef readonly bint in_c
    cdef readonly bint needs_python  # the loop must come back to Python every iteration
    cdef readonly Py_ssize_t stride
    cdef Py_ssize_t total
    cdef public Py_ssize_t shown_lines  # minimize_batch's C loop: progress lines shown
    cdef Py_ssize_t shown_at  # the iteration progress was last shown at (-1: none)
    cdef Py_ssize_t n_rows    # row_schedules' length
    cdef int check_schedule(self, int error) except -1
    cdef int _alloc_rows(self, Py_ssize_t m) except -1
    cdef int start(self, Problem* p) except -1
    cdef int after_update(self, Problem* p) except -1
    cdef int show(self, Problem* p, bint last) except -1
    cdef int finish(self, Problem* p) except -1
    cdef int run_native(self, Problem* p, const Tolerances* tol, NativeObjective native,
                        int n_threads, bint interruptible, fastopt_fpcr caller_bits) except -2

cdef int init_problem(Problem* p, cnp.ndarray x, cnp.ndarray x_prev, cnp.ndarray g,
                      cnp.ndarray g_prev, Rule rule, tuple slots, object lower, object upper,
                      const Tolerances* tol) except -1

# init_problem from the buffers' addresses (``state``: MAX_STATE of them, NULL where unused).
cdef void init_problem_at(Problem* p, void* x, void* x_prev, void* g, void* g_prev,
                          void** state, const void* lower, const void* upper, Py_ssize_t n,
                          bint single, Rule rule, const Tolerances* tol) noexcept

# minimize_loop's iteration on a prepared problem (x: its iterate, an ndarray p.x points into;
# gbuf: an ndarray like x for the gradient): sets ``stop`` (STOP_*), returns the final
# gradient's copy. fastopt/_fastcall.pyx runs minimize's fast path through it too.
cdef object run_loop(Problem* p, const Tolerances* tol, int mode, object fun, object jac,
                     tuple args, NativeObjective native, cnp.ndarray x, cnp.ndarray gbuf,
                     object callback, bint new_style_callback, list allvecs, int n_threads,
                     LoopTrain train, bint flush, int* stop)

# Gradient clipping in ``p`` as ``clip`` (None or fastopt._clipping.ClipSettings) asks; returns
# the buffer of the clipped gradient, like ``like`` (None when off): the caller keeps it alive.
cdef object init_clipping(Problem* p, object clip, cnp.ndarray like)

# What a Python objective returned, as the loop needs it: f as a double; g itself when it is a
# C-contiguous array of x's dtype and size that does not overlap x shifted, else its values
# converted into gbuf (errors name fun or jac).
cdef double as_scalar(object f) except? -1.0
cdef object as_gradient(object g, cnp.ndarray x, cnp.ndarray gbuf)

# (f, g) as a Python objective returns them at x, for the loop's EVAL_* modes (TypeError when
# jac=True and fun does not return a pair).
cdef tuple call_objective(int mode, object fun, object jac, tuple args, object x)
