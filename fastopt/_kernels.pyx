# Update kernels of fastopt's optimizers.
#
# Design (in the manner of scikit-learn's sklearn/_loss/_loss.pyx.tp):
#
# * Each ``<rule>_step`` applies one optimizer update to a parameter array in place, following
#   torch.optim's documented algorithm and its order of operations
#   (https://pytorch.org/docs/stable/optim.html). The Python classes (fastopt/_sgd.py,
#   _adaptive.py, _adam.py) validate hyperparameters and call these with their arrays.
# * Arrays may have any shape but must be C-contiguous, native-endian ndarrays of one dtype,
#   float32 or float64; the kernels treat them as flat. Every kernel checks that, and each
#   array's size (and that the ones it writes are writeable), once, before it touches memory:
#   the loops run without bounds checks. Optional state (the momentum buffer when
#   momentum == 0, ``max_exp_avg_sq`` without AMSGrad, ...) may be None and is then ignored.
# * The NumPy C API hands over data pointers; typed memoryviews would cost ~0.4 us per array
#   per call, more than a whole update of a small array.
# * Each rule is a fused ``floating`` function over ``[start, end)`` of raw pointers: float32 and
#   float64 get one specialisation each, and arithmetic runs in the array's type, as torch's
#   does. Scalars arrive as double; loop invariants are computed once in double and cast once.
#   Flags that only choose a sign or a factor are applied as exact multiplications, the others
#   are loop invariants that gcc unswitches, so that every variant's loop is vectorised.
# * One pass over memory: each element of params, grad and state is read once and written
#   once; no temporaries.
# * Threads: below PARALLEL_THRESHOLD elements, or with one thread, the range function runs
#   serially, without entering an OpenMP region. Above it, ``prange`` over ``n_threads``
#   contiguous chunks (static schedule) calls the same range function on each. Elementwise
#   updates give bitwise identical results for every thread count.

cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf, pow

cnp.import_array()

# Minimum size for a parallel loop. Measured on 2 cores (x86-64, gcc 12, float32 Adam, median
# of repeats, `python asv_benchmarks/threshold.py`); see the table there. Below it, the fork/join
# of a parallel region (a few microseconds) costs more than the second thread saves.
cdef Py_ssize_t PARALLEL_THRESHOLD = 16384


def get_parallel_threshold():
    """Smallest array size (elements) stepped with several threads."""
    return PARALLEL_THRESHOLD


def _set_parallel_threshold(Py_ssize_t size):
    """Set the threshold; returns the old one. For measuring it (asv_benchmarks/threshold.py),
    not for use while other threads step optimizers."""
    global PARALLEL_THRESHOLD
    old, PARALLEL_THRESHOLD = PARALLEL_THRESHOLD, max(size, 0)
    return old


# ---------------------------------------------------------------------------------------------
# Argument checks (run once per call, with the GIL, before any memory is touched)

cdef inline Py_ssize_t _check_params(cnp.ndarray params) except -1:
    cdef int typenum = cnp.PyArray_TYPE(params)
    if typenum != cnp.NPY_FLOAT and typenum != cnp.NPY_DOUBLE:
        raise TypeError(f"params must be float32 or float64, got {params.dtype}")
    _check_layout(params, "params", True)
    return cnp.PyArray_SIZE(params)


cdef inline int _check_layout(cnp.ndarray a, str name, bint writeable) except -1:
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise ValueError(f"{name} must be C-contiguous")
    if not cnp.PyArray_ISNOTSWAPPED(a):
        raise ValueError(f"{name} must be in native byte order")
    if writeable and not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError(f"{name} must be writeable")
    return 0


cdef inline int _check_like(cnp.ndarray a, cnp.ndarray params, str name, bint writeable) except -1:
    """``a`` must be an array of params' dtype and size, C-contiguous (and writeable)."""
    if a is None:
        raise TypeError(f"{name} must be an ndarray, got None")
    if cnp.PyArray_TYPE(a) != cnp.PyArray_TYPE(params):
        raise TypeError(f"{name} has dtype {a.dtype}, params has {params.dtype}")
    if cnp.PyArray_SIZE(a) != cnp.PyArray_SIZE(params):
        raise ValueError(f"{name} has {a.size} elements, params has {params.size}")
    return _check_layout(a, name, writeable)


cdef inline void* _data(cnp.ndarray a):
    return NULL if a is None else cnp.PyArray_DATA(a)


# ---------------------------------------------------------------------------------------------
# Threading

cdef inline Py_ssize_t _n_chunks(Py_ssize_t n, int n_threads) noexcept nogil:
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


cdef void _sgd(
    floating* params, const floating* grad, floating* momentum_buffer, Py_ssize_t n,
    double lr, double momentum, double dampening, double weight_decay,
    bint nesterov, bint maximize, bint first_step, int n_threads,
) noexcept:
    cdef Py_ssize_t c, n_chunks = _n_chunks(n, n_threads)
    with nogil:
        if n_chunks == 1:
            _sgd_range(params, grad, momentum_buffer, 0, n, lr, momentum, dampening,
                       weight_decay, nesterov, maximize, first_step)
            return
        for c in prange(n_chunks, schedule="static", num_threads=n_chunks):
            _sgd_range(params, grad, momentum_buffer, _chunk_bound(c, n, n_chunks),
                       _chunk_bound(c + 1, n, n_chunks), lr, momentum, dampening,
                       weight_decay, nesterov, maximize, first_step)


def sgd_step(
    cnp.ndarray params not None,          # INOUT
    cnp.ndarray grad not None,            # IN
    cnp.ndarray momentum_buffer,          # INOUT; None when momentum == 0
    double lr,
    double momentum,
    double dampening,
    double weight_decay,
    bint nesterov,
    bint maximize,
    bint first_step,                      # the buffer is set to the gradient, not averaged
    int n_threads,
):
    """SGD update (plain, momentum with dampening, Nesterov), in place.

    g = -grad if maximize else grad;  g += weight_decay * p;
    b = g on the first step, else momentum * b + (1 - dampening) * g;
    g = g + momentum * b if nesterov else b;  p -= lr * g.
    """
    cdef Py_ssize_t n = _check_params(params)
    _check_like(grad, params, "grad", False)
    if momentum != 0:
        _check_like(momentum_buffer, params, "momentum_buffer", True)
    else:
        momentum_buffer = None
    if cnp.PyArray_TYPE(params) == cnp.NPY_FLOAT:
        _sgd(<float*>_data(params), <const float*>_data(grad), <float*>_data(momentum_buffer),
             n, lr, momentum, dampening, weight_decay, nesterov, maximize, first_step,
             n_threads)
    else:
        _sgd(<double*>_data(params), <const double*>_data(grad),
             <double*>_data(momentum_buffer), n, lr, momentum, dampening, weight_decay,
             nesterov, maximize, first_step, n_threads)


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


cdef void _adagrad(
    floating* params, const floating* grad, floating* sum_, Py_ssize_t n,
    double clr, double weight_decay, double eps, bint maximize, int n_threads,
) noexcept:
    cdef Py_ssize_t c, n_chunks = _n_chunks(n, n_threads)
    with nogil:
        if n_chunks == 1:
            _adagrad_range(params, grad, sum_, 0, n, clr, weight_decay, eps, maximize)
            return
        for c in prange(n_chunks, schedule="static", num_threads=n_chunks):
            _adagrad_range(params, grad, sum_, _chunk_bound(c, n, n_chunks),
                           _chunk_bound(c + 1, n, n_chunks), clr, weight_decay, eps, maximize)


def adagrad_step(
    cnp.ndarray params not None,          # INOUT
    cnp.ndarray grad not None,            # IN
    cnp.ndarray sum not None,             # INOUT (torch's state key)
    Py_ssize_t step,                      # t >= 1, the number of this update
    double lr,
    double lr_decay,
    double weight_decay,
    double eps,
    bint maximize,
    int n_threads,
):
    """Adagrad update, in place.

    g = -grad if maximize else grad;  g += weight_decay * p;  clr = lr / (1 + (t - 1) lr_decay);
    sum += g * g;  p -= clr * g / (sqrt(sum) + eps).
    """
    cdef Py_ssize_t n = _check_params(params)
    _check_like(grad, params, "grad", False)
    _check_like(sum, params, "sum", True)
    cdef double clr = lr / (1.0 + (step - 1) * lr_decay)
    if cnp.PyArray_TYPE(params) == cnp.NPY_FLOAT:
        _adagrad(<float*>_data(params), <const float*>_data(grad), <float*>_data(sum), n,
                 clr, weight_decay, eps, maximize, n_threads)
    else:
        _adagrad(<double*>_data(params), <const double*>_data(grad), <double*>_data(sum), n,
                 clr, weight_decay, eps, maximize, n_threads)


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


cdef void _rmsprop(
    floating* params, const floating* grad, floating* square_avg, floating* grad_avg,
    floating* momentum_buffer, Py_ssize_t n,
    double lr, double alpha, double eps, double weight_decay, double momentum, bint maximize,
    int n_threads,
) noexcept:
    cdef Py_ssize_t c, n_chunks = _n_chunks(n, n_threads)
    with nogil:
        if n_chunks == 1:
            _rmsprop_range(params, grad, square_avg, grad_avg, momentum_buffer, 0, n,
                           lr, alpha, eps, weight_decay, momentum, maximize)
            return
        for c in prange(n_chunks, schedule="static", num_threads=n_chunks):
            _rmsprop_range(params, grad, square_avg, grad_avg, momentum_buffer,
                           _chunk_bound(c, n, n_chunks), _chunk_bound(c + 1, n, n_chunks),
                           lr, alpha, eps, weight_decay, momentum, maximize)


def rmsprop_step(
    cnp.ndarray params not None,          # INOUT
    cnp.ndarray grad not None,            # IN
    cnp.ndarray square_avg not None,      # INOUT
    cnp.ndarray grad_avg,                 # INOUT; None unless centered
    cnp.ndarray momentum_buffer,          # INOUT; None when momentum == 0
    double lr,
    double alpha,
    double eps,
    double weight_decay,
    double momentum,
    bint centered,
    bint maximize,
    int n_threads,
):
    """RMSprop update (optionally centered, with momentum), in place.

    g = -grad if maximize else grad;  g += weight_decay * p;
    v = alpha * v + (1 - alpha) * g * g;  avg = v, or v - ga * ga with
    ga = alpha * ga + (1 - alpha) * g when centered;  d = sqrt(avg) + eps;
    b = momentum * b + g / d, p -= lr * b  (momentum > 0), else p -= lr * g / d.
    """
    cdef Py_ssize_t n = _check_params(params)
    _check_like(grad, params, "grad", False)
    _check_like(square_avg, params, "square_avg", True)
    if centered:
        _check_like(grad_avg, params, "grad_avg", True)
    else:
        grad_avg = None
    if momentum > 0:
        _check_like(momentum_buffer, params, "momentum_buffer", True)
    else:
        momentum_buffer = None
    if cnp.PyArray_TYPE(params) == cnp.NPY_FLOAT:
        _rmsprop(<float*>_data(params), <const float*>_data(grad), <float*>_data(square_avg),
                 <float*>_data(grad_avg), <float*>_data(momentum_buffer), n,
                 lr, alpha, eps, weight_decay, momentum, maximize, n_threads)
    else:
        _rmsprop(<double*>_data(params), <const double*>_data(grad),
                 <double*>_data(square_avg), <double*>_data(grad_avg),
                 <double*>_data(momentum_buffer), n,
                 lr, alpha, eps, weight_decay, momentum, maximize, n_threads)


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
        delta = _sqrt(u + eps_) / _sqrt(v + eps_) * g
        acc_delta[i] = u * rho_ + one_minus_rho * delta * delta
        params[i] = params[i] - lr_ * delta


cdef void _adadelta(
    floating* params, const floating* grad, floating* square_avg, floating* acc_delta,
    Py_ssize_t n, double lr, double rho, double eps, double weight_decay, bint maximize,
    int n_threads,
) noexcept:
    cdef Py_ssize_t c, n_chunks = _n_chunks(n, n_threads)
    with nogil:
        if n_chunks == 1:
            _adadelta_range(params, grad, square_avg, acc_delta, 0, n,
                            lr, rho, eps, weight_decay, maximize)
            return
        for c in prange(n_chunks, schedule="static", num_threads=n_chunks):
            _adadelta_range(params, grad, square_avg, acc_delta, _chunk_bound(c, n, n_chunks),
                            _chunk_bound(c + 1, n, n_chunks), lr, rho, eps, weight_decay, maximize)


def adadelta_step(
    cnp.ndarray params not None,          # INOUT
    cnp.ndarray grad not None,            # IN
    cnp.ndarray square_avg not None,      # INOUT
    cnp.ndarray acc_delta not None,       # INOUT
    double lr,
    double rho,
    double eps,
    double weight_decay,
    bint maximize,
    int n_threads,
):
    """Adadelta update, in place.

    g = -grad if maximize else grad;  g += weight_decay * p;  v = rho * v + (1 - rho) * g * g;
    delta = sqrt(u + eps) / sqrt(v + eps) * g;  u = rho * u + (1 - rho) * delta * delta;
    p -= lr * delta.
    """
    cdef Py_ssize_t n = _check_params(params)
    _check_like(grad, params, "grad", False)
    _check_like(square_avg, params, "square_avg", True)
    _check_like(acc_delta, params, "acc_delta", True)
    if cnp.PyArray_TYPE(params) == cnp.NPY_FLOAT:
        _adadelta(<float*>_data(params), <const float*>_data(grad),
                  <float*>_data(square_avg), <float*>_data(acc_delta), n,
                  lr, rho, eps, weight_decay, maximize, n_threads)
    else:
        _adadelta(<double*>_data(params), <const double*>_data(grad),
                  <double*>_data(square_avg), <double*>_data(acc_delta), n,
                  lr, rho, eps, weight_decay, maximize, n_threads)


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
    cdef floating step_size_ = <floating>step_size
    cdef floating bc2_sqrt = <floating>bias_correction2_sqrt
    cdef floating beta1_ = <floating>beta1
    cdef floating beta2_ = <floating>beta2
    cdef floating one_minus_beta1 = <floating>(1.0 - beta1)
    cdef floating one_minus_beta2 = <floating>(1.0 - beta2)
    cdef floating eps_ = <floating>eps
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
        params[i] = p - step_size_ * m / (_sqrt(v) / bc2_sqrt + eps_)


cdef void _adam(
    floating* params, const floating* grad, floating* exp_avg, floating* exp_avg_sq,
    floating* max_exp_avg_sq, Py_ssize_t n,
    double step_size, double bias_correction2_sqrt, double beta1, double beta2, double eps,
    double coupled_weight_decay, double param_decay, bint maximize, int n_threads,
) noexcept:
    cdef Py_ssize_t c, n_chunks = _n_chunks(n, n_threads)
    with nogil:
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


def adam_step(
    cnp.ndarray params not None,          # INOUT
    cnp.ndarray grad not None,            # IN
    cnp.ndarray exp_avg not None,         # INOUT
    cnp.ndarray exp_avg_sq not None,      # INOUT
    cnp.ndarray max_exp_avg_sq,           # INOUT; None unless amsgrad
    Py_ssize_t step,                      # t >= 1, the number of this update
    double lr,
    double beta1,
    double beta2,
    double eps,
    double weight_decay,
    bint decoupled_weight_decay,          # AdamW: p *= 1 - lr * weight_decay first
    bint amsgrad,
    bint maximize,
    int n_threads,
):
    """Adam / AdamW update (optionally AMSGrad), in place.

    g = -grad if maximize else grad;
    AdamW: p *= 1 - lr * weight_decay;  Adam: g += weight_decay * p;
    m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g;
    AMSGrad: vmax = max(vmax, v), used in place of v below;
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
    """
    cdef Py_ssize_t n = _check_params(params)
    _check_like(grad, params, "grad", False)
    _check_like(exp_avg, params, "exp_avg", True)
    _check_like(exp_avg_sq, params, "exp_avg_sq", True)
    if amsgrad:
        _check_like(max_exp_avg_sq, params, "max_exp_avg_sq", True)
    else:
        max_exp_avg_sq = None
    cdef double step_size = lr / (1.0 - pow(beta1, <double>step))
    cdef double bias_correction2_sqrt = sqrt(1.0 - pow(beta2, <double>step))
    cdef double coupled = 0.0 if decoupled_weight_decay else weight_decay
    cdef double param_decay = 1.0 - lr * weight_decay if decoupled_weight_decay else 1.0
    if cnp.PyArray_TYPE(params) == cnp.NPY_FLOAT:
        _adam(<float*>_data(params), <const float*>_data(grad), <float*>_data(exp_avg),
              <float*>_data(exp_avg_sq), <float*>_data(max_exp_avg_sq), n, step_size,
              bias_correction2_sqrt, beta1, beta2, eps, coupled, param_decay, maximize,
              n_threads)
    else:
        _adam(<double*>_data(params), <const double*>_data(grad), <double*>_data(exp_avg),
              <double*>_data(exp_avg_sq), <double*>_data(max_exp_avg_sq), n, step_size,
              bias_correction2_sqrt, beta1, beta2, eps, coupled, param_decay, maximize,
              n_threads)
