# The iteration of one problem, included by fastopt/_loop.pxd: inline C functions over a
# ``Problem``, so that the single-problem loops (fastopt/_loop.pyx) and the batch loops
# (fastopt/_batch.pyx) compile them into their own loops -- a call through a module's function
# table per row and per step would cost more than the work for small problems.

# ---------------------------------------------------------------------------------------------
# C loops over the iterate (fused float32/float64; bounds, when given, in x's dtype)

cdef inline double _projected_grad_norm(const floating* g, const floating* x, const floating* lo,
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


cdef inline double _project_and_step(floating* x, const floating* x_prev, const floating* lo,
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


cdef inline void measure(Problem* p) noexcept nogil:
    """Set ``gnorm`` from ``g`` at ``x``."""
    if p.single:
        p.gnorm = _projected_grad_norm(<const float*>p.g, <const float*>p.x,
                                       <const float*>p.lower, <const float*>p.upper, p.n)
    else:
        p.gnorm = _projected_grad_norm(<const double*>p.g, <const double*>p.x,
                                       <const double*>p.lower, <const double*>p.upper, p.n)


cdef inline int check_stop(Problem* p, const Tolerances* tol) noexcept nogil:
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


cdef inline const void* clipped_gradient(const Problem* p, int n_threads) noexcept nogil:
    """The gradient the rule steps with: g, or g clipped into clip_buf (options
    max_grad_norm, clip_value; fastopt/_clip.pyx). g is left as it is: the stopping rules and
    the reported jac see the true gradient."""
    if not p.clip.on:
        return p.g
    return clip_gradient(&p.clip, p.single, p.g, p.clip_buf, p.n, n_threads)


cdef inline void advance(Problem* p, int n_threads) noexcept nogil:
    """Keep the iterate, update x in place, project it onto the bounds (``step`` too)."""
    cdef size_t nbytes = _nbytes(p)
    cdef void* g
    memcpy(p.x_prev, p.x, nbytes)
    if not p.g_owned:
        memcpy(p.g_prev, p.g, nbytes)  # before the update: g may be x itself
    p.f_prev = p.f
    rule_step_next(&p.rule, &p.clock)
    apply_rule(&p.rule, p.single, p.x, clipped_gradient(p, n_threads), p.state, p.n, &p.clock,
               n_threads)
    if p.g_owned:  # the next evaluation writes into g_prev's buffer: swap, not copy
        g, p.g = p.g, p.g_prev
        p.g_prev = g
    if p.lower != NULL:  # points the rule keeps in its state stay in the box too
        project_rule(&p.rule, &p.clock, p.single, p.x, p.state, p.lower, p.upper, p.n)
    if p.lower == NULL and not p.track_step:
        pass  # nothing to project, no step length needed
    elif p.single:
        p.step = _project_and_step(<float*>p.x, <const float*>p.x_prev, <const float*>p.lower,
                                   <const float*>p.upper, p.n)
    else:
        p.step = _project_and_step(<double*>p.x, <const double*>p.x_prev,
                                   <const double*>p.lower, <const double*>p.upper, p.n)
    p.nit += 1


cdef inline void unwritten_gradient(void* g, Py_ssize_t n, bint single) noexcept nogil:
    """Fill the n entries of the gradient buffer a C objective is about to get with NaN: an
    entry it does not write (a bug, or a ctypes callback that raised: ctypes then returns 0.0
    and writes nothing) is never stale or uninitialised memory, and makes the run stop with
    status 3 at the last iterate whose gradient was complete, instead of going on with
    garbage or "converging" on zeros. O(n), little next to the objective itself."""
    cdef Py_ssize_t i
    if single:
        for i in range(n):
            (<float*>g)[i] = NAN
    else:
        for i in range(n):
            (<double*>g)[i] = NAN


cdef inline void evaluate_native(Problem* p, void* fun, void* user_data) noexcept nogil:
    """f and g at x from a C objective (objective_f32 or objective_f64, as x's dtype); g is
    NaN on entry (unwritten_gradient)."""
    unwritten_gradient(p.g, p.n, p.single)
    if p.single:
        p.f = (<objective_f32>fun)(<int>p.n, <const float*>p.x, <float*>p.g, user_data)
    else:
        p.f = (<objective_f64>fun)(<int>p.n, <const double*>p.x, <double*>p.g, user_data)
    p.nfev += 1
    measure(p)


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules in the loops (options["lr_scheduler"]). A scheduler is stepped after
# each update, as in torch's ``opt.step(); sched.step()``, ReduceLROnPlateau with f at the
# point whose gradient that update used (``f_prev`` then). A C objective's loop steps the C
# schedule (fastopt/_schedule.pxd) here without the GIL; the Python path steps the Python
# scheduler and hands its values to ``set_schedule_values``, so both paths set the rule alike.

ctypedef struct LoopSchedule:
    Schedule s              # the C schedule (unused on the Python path)
    int momentum_input      # the rule's input the schedule may cycle (momentum, beta1): index
                            # in UpdateRule.inputs, -1: none
    int momentum_power      # that input's index among the powered rates, -1: not powered
    bint pow_clock          # a powered rate changed: the clock's powers come from pow()
    double rates[MAX_POWERS]  # the powered rates' values (UpdateRule.rates holds 1 once
                              # pow_clock is on)


cdef inline void set_schedule_values(Problem* p, LoopSchedule* ls, double lr,
                                     double momentum) noexcept nogil:
    """Give the rule the schedule's learning rate and momentum (NaN: not scheduled) for the
    next update."""
    cdef int k
    p.rule.lr = lr
    if ls.momentum_input >= 0 and momentum == momentum:
        p.rule.inputs[ls.momentum_input] = momentum
        if ls.momentum_power >= 0 and momentum != ls.rates[ls.momentum_power]:
            ls.rates[ls.momentum_power] = momentum
            ls.pow_clock = True
    if ls.pow_clock:
        # Bias corrections with a cycled beta1 are 1 - beta1_t ** t (torch's, the classes'):
        # a running product of changing rates is not that. The next update's powers are set
        # here; rule_step_next multiplies them by the rates, 1 now, which keeps them exact.
        for k in range(MAX_POWERS):
            p.clock.powers[k] = pow(ls.rates[k], <double>(p.clock.t + 1))
            p.rule.rates[k] = 1.0


cdef inline void schedule_next(Problem* p, LoopSchedule* ls) noexcept nogil:
    """One step of the C schedule, after an update."""
    cdef double lr = schedule_step(&ls.s, p.f_prev)
    set_schedule_values(p, ls, lr, schedule_momentum(&ls.s))


cdef inline int check_signals(fastopt_poll* poll, fastopt_fpcr caller_bits) except -1 nogil:
    """Take the GIL and run the Python handlers of the signals received, as the interpreter
    does between bytecodes (Ctrl-C raises KeyboardInterrupt here); schedule the next check.
    The handlers are the user's Python code: they run with the caller's flush bits
    ``caller_bits`` (fastopt_flush_bits before the loop set its own), not the loop's."""
    cdef double start = fastopt_now(), waited
    cdef fastopt_fpenv python = fastopt_follow_begin(caller_bits)
    try:
        with gil:
            waited = fastopt_now() - start
            PyErr_CheckSignals()
    finally:
        fastopt_fpenv_restore(python)
    fastopt_poll_checked(poll, waited)
    return 0


cdef inline int run_native(Problem* p, const Tolerances* tol, void* fun, void* user_data,
                           int n_threads, bint interruptible, LoopSchedule* schedule,
                           fastopt_fpcr caller_bits) except -2 nogil:
    """Iterate from an evaluated iterate until a stopping rule holds; returns it. When
    ``interruptible`` (the main thread), checks for signals every few milliseconds: a
    KeyboardInterrupt (or whatever a signal handler raises) propagates, ``p`` left as it was
    after some iteration. ``schedule`` (or NULL) is stepped after each update. ``caller_bits``:
    the caller's flush bits, for the signal handlers (check_signals)."""
    cdef fastopt_poll poll
    cdef int stop = check_stop(p, tol)
    fastopt_poll_signals(&poll, interruptible)
    while stop == STOP_NONE:
        advance(p, n_threads)
        if schedule != NULL:
            schedule_next(p, schedule)
        evaluate_native(p, fun, user_data)
        stop = check_stop(p, tol)
        if fastopt_poll_due(&poll):
            check_signals(&poll, caller_bits)
    return stop

