# The update kernels proper, included by two modules compiled from the same source:
# fastopt/_kernels.pyx (the portable build) and fastopt/_kernels_avx2.pyx (compiled with -mavx2
# on x86-64). _kernels.pyx picks one of them at import time (see its header).

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf

from fastopt._openmp cimport fastopt_thread_limit

# Minimum size for a parallel loop, from `python asv_benchmarks/threshold.py` (run with the
# threshold lowered to 0) on the 2-core development machine (AMD EPYC, gcc 12, AVX2 kernels,
# median of 300 steps, speed-up of 2 threads over 1):
#   Adam float32  2^13 0.74x  2^14 0.77x  2^15 1.11x  2^16 1.32x  2^18 1.53x
#   Adam float64  2^13 0.91x  2^14 0.97x  2^15 1.01x  2^16 1.03x  2^18 1.11x
#   SGD  float32  2^13 0.76x  2^14 1.13x  2^15 1.22x  2^16 1.19x  2^18 1.50x
# Below the break-even the fork/join of a parallel region (~3 us) costs more than the second
# thread saves. Machines with more cores or slower ones may want another value.
cdef Py_ssize_t PARALLEL_THRESHOLD = 32768


def _set_threshold(Py_ssize_t size):
    """Set the threshold; returns the old one. For measuring it (asv_benchmarks/threshold.py),
    not for use while other threads step optimizers."""
    global PARALLEL_THRESHOLD
    old, PARALLEL_THRESHOLD = PARALLEL_THRESHOLD, max(size, 0)
    return old


# ---------------------------------------------------------------------------------------------
# Threading

cdef inline Py_ssize_t _n_chunks(Py_ssize_t n, int n_threads) noexcept nogil:
    # One chunk (no OpenMP region at all) in a forked child: see src_c/fastopt_openmp.h.
    n_threads = fastopt_thread_limit(n_threads)
    return n_threads if (n_threads > 1 and n >= PARALLEL_THRESHOLD) else 1


cdef inline Py_ssize_t _chunk_bound(Py_ssize_t c, Py_ssize_t n, Py_ssize_t n_chunks) noexcept nogil:
    """Start of chunk ``c``: chunks are equal, rounded up to 16 elements (64-byte lines)."""
    cdef Py_ssize_t size = ((n + n_chunks - 1) // n_chunks + 15) & ~(<Py_ssize_t>15)
    cdef Py_ssize_t start = c * size
    return start if start < n else n


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


# ---------------------------------------------------------------------------------------------
# SGD

cdef void _sgd_range(
    floating* params, const floating* grad, floating* momentum_buffer,
    Py_ssize_t start, Py_ssize_t end,
    double lr, double momentum, double dampening, double weight_decay,
    bint nesterov, bint maximize, bint first_step,
) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating sign = -1 if maximize else 1
    cdef floating lr_ = <floating>lr
    cdef floating mu = <floating>momentum
    cdef floating one_minus_damp = <floating>(1.0 - dampening)
    cdef floating wd = <floating>weight_decay
    cdef bint decay = weight_decay != 0
    cdef floating g, b
    if momentum_buffer == NULL:
        for i in range(start, end):
            g = sign * grad[i]
            if decay:
                g = g + wd * params[i]
            params[i] = params[i] - lr_ * g
    elif first_step:
        for i in range(start, end):
            g = sign * grad[i]
            if decay:
                g = g + wd * params[i]
            momentum_buffer[i] = g
            if nesterov:
                g = g + mu * g
            params[i] = params[i] - lr_ * g
    else:
        for i in range(start, end):
            g = sign * grad[i]
            if decay:
                g = g + wd * params[i]
            b = momentum_buffer[i] * mu + one_minus_damp * g
            momentum_buffer[i] = b
            if nesterov:
                g = g + mu * b
            else:
                g = b
            params[i] = params[i] - lr_ * g


cdef void sgd_step(
    floating* params, const floating* grad, floating* momentum_buffer, Py_ssize_t n,
    double lr, double momentum, double dampening, double weight_decay,
    bint nesterov, bint maximize, bint first_step, int n_threads,
) noexcept nogil:
    cdef Py_ssize_t c, n_chunks = _n_chunks(n, n_threads)
    if n_chunks == 1:
        _sgd_range(params, grad, momentum_buffer, 0, n, lr, momentum, dampening,
                   weight_decay, nesterov, maximize, first_step)
        return
    for c in prange(n_chunks, schedule="static", num_threads=n_chunks):
        _sgd_range(params, grad, momentum_buffer, _chunk_bound(c, n, n_chunks),
                   _chunk_bound(c + 1, n, n_chunks), lr, momentum, dampening,
                   weight_decay, nesterov, maximize, first_step)




# ---------------------------------------------------------------------------------------------
# Adagrad

cdef void _adagrad_range(
    floating* params, const floating* grad, floating* sum_,
    Py_ssize_t start, Py_ssize_t end,
    double clr, double weight_decay, double eps, bint maximize,
) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating sign = -1 if maximize else 1
    cdef floating clr_ = <floating>clr
    cdef floating eps_ = <floating>eps
    cdef floating wd = <floating>weight_decay
    cdef bint decay = weight_decay != 0
    cdef floating g, s
    for i in range(start, end):
        g = sign * grad[i]
        if decay:
            g = g + wd * params[i]
        s = sum_[i] + g * g
        sum_[i] = s
        params[i] = params[i] - clr_ * g / (_sqrt(s) + eps_)


cdef void adagrad_step(
    floating* params, const floating* grad, floating* sum_, Py_ssize_t n,
    double clr, double weight_decay, double eps, bint maximize, int n_threads,
) noexcept nogil:
    cdef Py_ssize_t c, n_chunks = _n_chunks(n, n_threads)
    if n_chunks == 1:
        _adagrad_range(params, grad, sum_, 0, n, clr, weight_decay, eps, maximize)
        return
    for c in prange(n_chunks, schedule="static", num_threads=n_chunks):
        _adagrad_range(params, grad, sum_, _chunk_bound(c, n, n_chunks),
                       _chunk_bound(c + 1, n, n_chunks), clr, weight_decay, eps, maximize)




# ---------------------------------------------------------------------------------------------
# RMSprop

cdef void _rmsprop_range(
    floating* params, const floating* grad, floating* square_avg, floating* grad_avg,
    floating* momentum_buffer, Py_ssize_t start, Py_ssize_t end,
    double lr, double alpha, double eps, double weight_decay, double momentum, bint maximize,
) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating sign = -1 if maximize else 1
    cdef floating lr_ = <floating>lr
    cdef floating alpha_ = <floating>alpha
    cdef floating one_minus_alpha = <floating>(1.0 - alpha)
    cdef floating eps_ = <floating>eps
    cdef floating mu = <floating>momentum
    cdef floating wd = <floating>weight_decay
    cdef bint decay = weight_decay != 0
    cdef bint centered = grad_avg != NULL
    cdef bint use_momentum = momentum_buffer != NULL
    cdef floating g, v, ga, avg, b
    for i in range(start, end):
        g = sign * grad[i]
        if decay:
            g = g + wd * params[i]
        v = square_avg[i] * alpha_ + one_minus_alpha * g * g
        square_avg[i] = v
        if centered:
            ga = grad_avg[i] * alpha_ + one_minus_alpha * g
            grad_avg[i] = ga
            v = v - ga * ga
        avg = _sqrt(v) + eps_
        if use_momentum:
            b = momentum_buffer[i] * mu + g / avg
            momentum_buffer[i] = b
            params[i] = params[i] - lr_ * b
        else:
            params[i] = params[i] - lr_ * g / avg


cdef void rmsprop_step(
    floating* params, const floating* grad, floating* square_avg, floating* grad_avg,
    floating* momentum_buffer, Py_ssize_t n,
    double lr, double alpha, double eps, double weight_decay, double momentum, bint maximize,
    int n_threads,
) noexcept nogil:
    cdef Py_ssize_t c, n_chunks = _n_chunks(n, n_threads)
    if n_chunks == 1:
        _rmsprop_range(params, grad, square_avg, grad_avg, momentum_buffer, 0, n,
                       lr, alpha, eps, weight_decay, momentum, maximize)
        return
    for c in prange(n_chunks, schedule="static", num_threads=n_chunks):
        _rmsprop_range(params, grad, square_avg, grad_avg, momentum_buffer,
                       _chunk_bound(c, n, n_chunks), _chunk_bound(c + 1, n, n_chunks),
                       lr, alpha, eps, weight_decay, momentum, maximize)




# ---------------------------------------------------------------------------------------------
# Adadelta

cdef void _adadelta_range(
    floating* params, const floating* grad, floating* square_avg, floating* acc_delta,
    Py_ssize_t start, Py_ssize_t end,
    double lr, double rho, double eps, double weight_decay, bint maximize,
) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating sign = -1 if maximize else 1
    cdef floating lr_ = <floating>lr
    cdef floating rho_ = <floating>rho
    cdef floating one_minus_rho = <floating>(1.0 - rho)
    cdef floating eps_ = <floating>eps
    cdef floating wd = <floating>weight_decay
    cdef bint decay = weight_decay != 0
    cdef floating g, v, u, delta
    for i in range(start, end):
        g = sign * grad[i]
        if decay:
            g = g + wd * params[i]
        v = square_avg[i] * rho_ + one_minus_rho * g * g
        square_avg[i] = v
        u = acc_delta[i]
        # sqrt(u + eps) / sqrt(v + eps) as one root of a quotient: one square root fewer
        delta = _sqrt((u + eps_) / (v + eps_)) * g
        acc_delta[i] = u * rho_ + one_minus_rho * delta * delta
        params[i] = params[i] - lr_ * delta


cdef void adadelta_step(
    floating* params, const floating* grad, floating* square_avg, floating* acc_delta,
    Py_ssize_t n, double lr, double rho, double eps, double weight_decay, bint maximize,
    int n_threads,
) noexcept nogil:
    cdef Py_ssize_t c, n_chunks = _n_chunks(n, n_threads)
    if n_chunks == 1:
        _adadelta_range(params, grad, square_avg, acc_delta, 0, n,
                        lr, rho, eps, weight_decay, maximize)
        return
    for c in prange(n_chunks, schedule="static", num_threads=n_chunks):
        _adadelta_range(params, grad, square_avg, acc_delta, _chunk_bound(c, n, n_chunks),
                        _chunk_bound(c + 1, n, n_chunks), lr, rho, eps, weight_decay, maximize)




# ---------------------------------------------------------------------------------------------
# Adam / AdamW / AMSGrad

cdef void _adam_range(
    floating* params, const floating* grad, floating* exp_avg, floating* exp_avg_sq,
    floating* max_exp_avg_sq, Py_ssize_t start, Py_ssize_t end,
    double step_size, double bias_correction2_sqrt, double beta1, double beta2, double eps,
    double coupled_weight_decay, double param_decay, bint maximize,
) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating sign = -1 if maximize else 1
    # m / (sqrt(v) / bc2 + eps) == bc2 * m / (sqrt(v) + eps * bc2): one division instead of
    # two (divisions and square roots bound this loop's speed, not memory); the bias
    # correction is still applied before eps, as in torch, up to rounding.
    cdef floating step_size_ = <floating>(step_size * bias_correction2_sqrt)
    cdef floating eps_bc2 = <floating>(eps * bias_correction2_sqrt)
    cdef floating beta1_ = <floating>beta1
    cdef floating beta2_ = <floating>beta2
    cdef floating one_minus_beta1 = <floating>(1.0 - beta1)
    cdef floating one_minus_beta2 = <floating>(1.0 - beta2)
    cdef floating wd = <floating>coupled_weight_decay
    cdef bint decay = coupled_weight_decay != 0
    # AdamW's p *= 1 - lr * wd; exactly p when the factor is 1 (Adam), so no branch.
    cdef floating param_decay_ = <floating>param_decay
    cdef bint amsgrad = max_exp_avg_sq != NULL
    cdef floating g, p, m, v, vmax
    for i in range(start, end):
        g = sign * grad[i]
        p = params[i] * param_decay_
        if decay:
            g = g + wd * p
        m = exp_avg[i] * beta1_ + one_minus_beta1 * g
        v = exp_avg_sq[i] * beta2_ + one_minus_beta2 * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        if amsgrad:
            vmax = max_exp_avg_sq[i]
            if not (vmax >= v):  # so that a NaN in v propagates, as torch.maximum does
                vmax = v
            max_exp_avg_sq[i] = vmax
            v = vmax
        params[i] = p - step_size_ * m / (_sqrt(v) + eps_bc2)


cdef void adam_step(
    floating* params, const floating* grad, floating* exp_avg, floating* exp_avg_sq,
    floating* max_exp_avg_sq, Py_ssize_t n,
    double step_size, double bias_correction2_sqrt, double beta1, double beta2, double eps,
    double coupled_weight_decay, double param_decay, bint maximize, int n_threads,
) noexcept nogil:
    cdef Py_ssize_t c, n_chunks = _n_chunks(n, n_threads)
    if n_chunks == 1:
        _adam_range(params, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, 0, n, step_size,
                    bias_correction2_sqrt, beta1, beta2, eps, coupled_weight_decay,
                    param_decay, maximize)
        return
    for c in prange(n_chunks, schedule="static", num_threads=n_chunks):
        _adam_range(params, grad, exp_avg, exp_avg_sq, max_exp_avg_sq,
                    _chunk_bound(c, n, n_chunks), _chunk_bound(c + 1, n, n_chunks), step_size,
                    bias_correction2_sqrt, beta1, beta2, eps, coupled_weight_decay,
                    param_decay, maximize)


# ---------------------------------------------------------------------------------------------
# axpy: y += a * x, the practical speed limit of an in-place update (read two arrays, write
# one), threaded like the rules. Only the benchmark (fastopt/_bench.py) uses it.

cdef void _axpy_range(floating* y, const floating* x, double a, Py_ssize_t start,
                      Py_ssize_t end) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating a_ = <floating>a
    for i in range(start, end):
        y[i] = y[i] + a_ * x[i]


cdef void axpy_step(floating* y, const floating* x, double a, Py_ssize_t n,
                    int n_threads) noexcept nogil:
    cdef Py_ssize_t c, n_chunks = _n_chunks(n, n_threads)
    if n_chunks == 1:
        _axpy_range(y, x, a, 0, n)
        return
    for c in prange(n_chunks, schedule="static", num_threads=n_chunks):
        _axpy_range(y, x, a, _chunk_bound(c, n, n_chunks), _chunk_bound(c + 1, n, n_chunks))


# ---------------------------------------------------------------------------------------------
# The C-level entry: one rule struct, dispatched once per call (never inside a loop).
#
# State slots, in order, per rule (NULL where the flags need no array):
#   SGD       momentum_buffer (momentum != 0)
#   Adagrad   sum
#   RMSprop   square_avg, grad_avg (centered), momentum_buffer (momentum > 0)
#   Adadelta  square_avg, acc_delta
#   Adam      exp_avg, exp_avg_sq, max_exp_avg_sq (amsgrad)

cdef void _apply(const UpdateRule* r, floating* params, const floating* grad, void** state,
                 Py_ssize_t n, const RuleStep* step, int n_threads) noexcept nogil:
    cdef floating* s0 = <floating*>state[0]
    cdef floating* s1 = <floating*>state[1]
    cdef floating* s2 = <floating*>state[2]
    cdef double t = <double>step.t
    if r.kind == RULE_SGD:
        sgd_step(params, grad, s0 if r.momentum != 0 else NULL, n, r.lr, r.momentum,
                 r.dampening, r.weight_decay, r.nesterov, r.maximize, step.t == 1, n_threads)
    elif r.kind == RULE_ADAGRAD:
        adagrad_step(params, grad, s0, n, r.lr / (1.0 + (t - 1.0) * r.lr_decay),
                     r.weight_decay, r.eps, r.maximize, n_threads)
    elif r.kind == RULE_RMSPROP:
        rmsprop_step(params, grad, s0, s1 if r.centered else NULL,
                     s2 if r.momentum > 0 else NULL, n, r.lr, r.alpha, r.eps, r.weight_decay,
                     r.momentum, r.maximize, n_threads)
    elif r.kind == RULE_ADADELTA:
        adadelta_step(params, grad, s0, s1, n, r.lr, r.rho, r.eps, r.weight_decay, r.maximize,
                      n_threads)
    elif r.kind == RULE_ADAM:
        adam_step(params, grad, s0, s1, s2 if r.amsgrad else NULL, n,
                  r.lr / (1.0 - step.beta1_pow), sqrt(1.0 - step.beta2_pow), r.beta1, r.beta2,
                  r.eps, 0.0 if r.decoupled_weight_decay else r.weight_decay,
                  1.0 - r.lr * r.weight_decay if r.decoupled_weight_decay else 1.0,
                  r.maximize, n_threads)


cdef void apply_rule_impl(const UpdateRule* rule, bint single, void* params,
                          const void* grad, void** state, Py_ssize_t n, const RuleStep* step,
                          int n_threads) noexcept nogil:
    if single:
        _apply(rule, <float*>params, <const float*>grad, state, n, step, n_threads)
    else:
        _apply(rule, <double*>params, <const double*>grad, state, n, step, n_threads)

