# The update kernels proper, included by two modules compiled from the same source:
# fastopt/_kernels.pyx (the portable build) and fastopt/_kernels_avx2.pyx (compiled with -mavx2
# on x86-64). _kernels.pyx picks one of them at import time (see its header).
#
# Design (in the manner of scikit-learn's sklearn/_loss/_loss.pyx.tp)
# --------------------------------------------------------------------
# A rule supplies only what is its own, in one block below:
#
# * ``<Rule>Inputs``: a struct of doubles, the rule's named scalar inputs besides ``lr`` (flags
#   as 0/1), in the order they sit in ``UpdateRule.inputs``. It is the one declaration of
#   those names and that order: ``fastopt._step.Rule(kind, **inputs)`` fills the array by the
#   names read from this struct (Cython turns a struct into a dict of its fields, in order),
#   and the kernel reads them back by name through a cast, so no index is written twice.
# * ``RULE_<NAME> = _declare(name, <the Inputs struct>, slots, powers, scalars)``: its kind
#   (the index of the declaration), its state slots in the order of the ``state`` pointers,
#   the inputs whose powers ``RuleStep`` keeps (bias corrections), and (optional) its running
#   scalars: ``(name, initial value)`` pairs of per-step values with no closed form in t
#   (NAdam's ``mu_product``), kept in ``RuleStep.scalars``. ``fastopt._step.kernel_spec`` and
#   ``kernel_kinds`` read these, and the tests hold every optimizer class to them.
# * ``<rule>_coefficients(rule, step) -> <Rule>Coeffs``: its per-call scalars, in double
#   (Adam's step size and bias corrections, Adagrad's decayed rate, the sign for maximize) and
#   its loop-invariant flags, computed once per call.
# * ``<rule>_update(c, i, params, grad, slots...)``: the update of element ``i``, arithmetic in
#   the array's type (``<floating>`` casts of the doubles: the values the former per-rule
#   loops cast once, so results are bitwise theirs).
# * Only for a rule with running scalars: ``<rule>_advance(rule, step)``, which takes
#   ``step.scalars`` from their values after update ``step.t - 1`` to those after update
#   ``step.t`` (in double, once per update, before it; it may read ``step.t``, ``step.powers``
#   and the rule's inputs, lr included). The coefficients then read the advanced values.
#
# Adding a rule: its block (the parts above), then one line in each of the three
# registries that follow the blocks: the ``Coeffs`` fused type, ``_update`` (which element
# function a ``Coeffs`` type runs) and ``_apply`` (kind -> coefficients), and, with running
# scalars, a line in the fourth, ``_advance`` (kind -> advance function). Nothing outside this
# file changes unless the rule needs more inputs, slots, powers or scalars than UpdateRule
# holds (MAX_INPUTS, MAX_STATE, MAX_POWERS, MAX_SCALARS in _kernels_decl.pxi; _declare refuses
# it at import).
#
# The skeleton (``_run``, ``_range``) is written once and owns everything else: the dtype
# dispatch, the serial-or-threaded choice, the chunking, ``prange`` and the
# ``for i in range(start, end)`` loop, with the state pointers as plain locals.
#
# Why a fused type over the coefficient structs (and not function pointers, or one struct
# with a switch inside the loop): Cython compiles ``_range`` once per (Coeffs, floating) pair
# and prunes ``if Coeffs is ...`` at compile time, so each rule still gets its own C loop,
# with its element function inlined and no dispatch inside it. The coefficients go by value,
# never by address, so gcc keeps them in registers as loop invariants, unswitches the loop on
# the flags (SGD's first step, momentum and nesterov, RMSprop's centered and momentum, Adam's
# amsgrad, weight decay) and vectorises every variant, as it did the hand-written loops
# (``-fopt-info-vec-all``: no "control flow in loop" miss left). The one dispatch on the kind
# happens once per call, in ``_apply``.
#
# Other choices, kept from the per-rule kernels:
# * Each rule follows torch.optim's documented algorithm and its order of operations
#   (https://pytorch.org/docs/stable/optim.html); float32 and float64 get one specialisation
#   each and arithmetic runs in the array's type, as torch's does. Scalars are computed in
#   double once per call and cast once to the array's type.
# * Optional state (the momentum buffer when momentum == 0, ``max_exp_avg_sq`` without
#   AMSGrad, ...) may be NULL: a rule reads and writes a slot only when its flags use it.
# * One pass over memory: each element of params, grad and state is read once and written
#   once; no temporaries.
# * Threads: below PARALLEL_THRESHOLD elements, or with one thread, the range runs serially,
#   without entering an OpenMP region. Above it, ``prange`` over ``n_threads`` contiguous
#   chunks (static schedule) runs the same range function on each. Elementwise updates give
#   bitwise identical results for every thread count. Each iteration of a region takes the
#   calling thread's flush-to-zero bits and restores its own after it (src_c/fastopt_fpenv.h).

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport pow, sqrt, sqrtf

# The kernels' one use of the OpenMP shim: the thread count of a forked child.
from fastopt._openmp cimport fastopt_thread_limit
# Each iteration of a parallel region computes in the calling thread's flush-to-zero mode and
# restores its thread's own afterwards (fastopt.flush_subnormals; src_c/fastopt_fpenv.h).
from fastopt._fpenv cimport (
    fastopt_flush_bits,
    fastopt_follow_begin,
    fastopt_fpcr,
    fastopt_fpenv,
    fastopt_fpenv_restore,
)

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
# Declarations

# (name, input names, slot names, powered inputs, running scalars) per kind, in kind order;
# the running scalars as (name, initial value) pairs.
_DECLARATIONS = []


cdef int _declare(str name, dict inputs, tuple slots, tuple powers,
                  tuple scalars=()) except -1:
    """Record a rule: ``inputs`` is its Inputs struct (as a dict: its field names, in order),
    ``slots`` its state arrays in pointer order, ``powers`` the inputs whose powers
    ``RuleStep`` keeps, in ``RuleStep.powers`` order, and ``scalars`` its running scalars as
    ``(name, initial value)`` pairs, in ``RuleStep.scalars`` order (advanced by the rule's
    line in ``_advance``). Returns the rule's kind."""
    names = ("lr", *inputs)
    if (len(inputs) > MAX_INPUTS or len(slots) > MAX_STATE or len(powers) > MAX_POWERS
            or len(scalars) > MAX_SCALARS):
        raise ValueError(f"kernel {name!r} declares more inputs, slots, powers or scalars "
                         "than UpdateRule holds (_kernels_decl.pxi)")
    if not set(powers) <= set(inputs) or len(set(names)) != len(names):
        raise ValueError(f"kernel {name!r}: bad input names {names} or powers {powers}")
    scalars = tuple((str(s), float(v)) for s, v in scalars)
    scalar_names = [s for s, _ in scalars]
    if (len(set(scalar_names)) != len(scalar_names)
            or set(scalar_names) & (set(names) | set(slots))):
        raise ValueError(f"kernel {name!r}: running scalars {scalar_names} repeat a name, or "
                         "reuse an input's or a slot's")
    _DECLARATIONS.append((name, names, slots, powers, scalars))
    return len(_DECLARATIONS) - 1


def declarations():
    """Every kernel's ``(name, input names, slot names, powered inputs, running scalars)``,
    in kind order; running scalars as ``(name, initial value)`` pairs."""
    return tuple(_DECLARATIONS)


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


# ---------------------------------------------------------------------------------------------
# SGD (with momentum, dampening, Nesterov)

ctypedef struct SGDInputs:
    double momentum
    double dampening
    double weight_decay
    double nesterov
    double maximize

cdef SGDInputs _sgd_inputs  # (only its field names are read)
cdef int RULE_SGD = _declare("sgd", _sgd_inputs, ("momentum_buffer",), ())

ctypedef struct SGDCoeffs:
    double lr, sign, weight_decay, momentum, one_minus_dampening
    bint decay, use_buffer, first_step, nesterov


cdef inline SGDCoeffs sgd_coefficients(const UpdateRule* r, const RuleStep* step) noexcept nogil:
    cdef const SGDInputs* a = <const SGDInputs*>r.inputs
    cdef SGDCoeffs c
    c.lr = r.lr
    c.sign = -1.0 if a.maximize != 0 else 1.0
    c.weight_decay = a.weight_decay
    c.decay = a.weight_decay != 0
    c.momentum = a.momentum
    c.one_minus_dampening = 1.0 - a.dampening
    c.use_buffer = a.momentum != 0
    c.first_step = c.use_buffer and step.t == 1  # the buffer starts as the gradient itself
    c.nesterov = a.nesterov != 0
    return c


cdef inline void sgd_update(SGDCoeffs c, Py_ssize_t i, floating* params, const floating* grad,
                            floating* momentum_buffer) noexcept nogil:
    cdef floating mu = <floating>c.momentum
    cdef floating g = <floating>c.sign * grad[i]
    cdef floating b
    if c.decay:
        g = g + <floating>c.weight_decay * params[i]
    if c.first_step:
        momentum_buffer[i] = g
        if c.nesterov:
            g = g + mu * g
    elif c.use_buffer:
        b = momentum_buffer[i] * mu + <floating>c.one_minus_dampening * g
        momentum_buffer[i] = b
        if c.nesterov:
            g = g + mu * b
        else:
            g = b
    params[i] = params[i] - <floating>c.lr * g


# ---------------------------------------------------------------------------------------------
# Adagrad

ctypedef struct AdagradInputs:
    double lr_decay
    double weight_decay
    double eps
    double maximize

cdef AdagradInputs _adagrad_inputs
cdef int RULE_ADAGRAD = _declare("adagrad", _adagrad_inputs, ("sum",), ())

ctypedef struct AdagradCoeffs:
    double clr, sign, weight_decay, eps
    bint decay


cdef inline AdagradCoeffs adagrad_coefficients(const UpdateRule* r,
                                               const RuleStep* step) noexcept nogil:
    cdef const AdagradInputs* a = <const AdagradInputs*>r.inputs
    cdef AdagradCoeffs c
    c.clr = r.lr / (1.0 + (<double>step.t - 1.0) * a.lr_decay)
    c.sign = -1.0 if a.maximize != 0 else 1.0
    c.weight_decay = a.weight_decay
    c.decay = a.weight_decay != 0
    c.eps = a.eps
    return c


cdef inline void adagrad_update(AdagradCoeffs c, Py_ssize_t i, floating* params,
                                const floating* grad, floating* sum_) noexcept nogil:
    cdef floating g = <floating>c.sign * grad[i]
    cdef floating s
    if c.decay:
        g = g + <floating>c.weight_decay * params[i]
    s = sum_[i] + g * g
    sum_[i] = s
    params[i] = params[i] - <floating>c.clr * g / (_sqrt(s) + <floating>c.eps)


# ---------------------------------------------------------------------------------------------
# RMSprop (centered, momentum)

ctypedef struct RMSpropInputs:
    double alpha
    double eps
    double weight_decay
    double momentum
    double centered
    double maximize

cdef RMSpropInputs _rmsprop_inputs
cdef int RULE_RMSPROP = _declare("rmsprop", _rmsprop_inputs,
                                 ("square_avg", "grad_avg", "momentum_buffer"), ())

ctypedef struct RMSpropCoeffs:
    double lr, sign, weight_decay, alpha, one_minus_alpha, eps, momentum
    bint decay, centered, use_momentum


cdef inline RMSpropCoeffs rmsprop_coefficients(const UpdateRule* r,
                                               const RuleStep* step) noexcept nogil:
    cdef const RMSpropInputs* a = <const RMSpropInputs*>r.inputs
    cdef RMSpropCoeffs c
    c.lr = r.lr
    c.sign = -1.0 if a.maximize != 0 else 1.0
    c.weight_decay = a.weight_decay
    c.decay = a.weight_decay != 0
    c.alpha = a.alpha
    c.one_minus_alpha = 1.0 - a.alpha
    c.eps = a.eps
    c.momentum = a.momentum
    c.centered = a.centered != 0
    c.use_momentum = a.momentum > 0
    return c


cdef inline void rmsprop_update(RMSpropCoeffs c, Py_ssize_t i, floating* params,
                                const floating* grad, floating* square_avg, floating* grad_avg,
                                floating* momentum_buffer) noexcept nogil:
    cdef floating alpha = <floating>c.alpha
    cdef floating one_minus_alpha = <floating>c.one_minus_alpha
    cdef floating g = <floating>c.sign * grad[i]
    cdef floating v, ga, avg, b
    if c.decay:
        g = g + <floating>c.weight_decay * params[i]
    v = square_avg[i] * alpha + one_minus_alpha * g * g
    square_avg[i] = v
    if c.centered:
        ga = grad_avg[i] * alpha + one_minus_alpha * g
        grad_avg[i] = ga
        v = v - ga * ga
    avg = _sqrt(v) + <floating>c.eps
    if c.use_momentum:
        b = momentum_buffer[i] * <floating>c.momentum + g / avg
        momentum_buffer[i] = b
        params[i] = params[i] - <floating>c.lr * b
    else:
        params[i] = params[i] - <floating>c.lr * g / avg


# ---------------------------------------------------------------------------------------------
# Adadelta

ctypedef struct AdadeltaInputs:
    double rho
    double eps
    double weight_decay
    double maximize

cdef AdadeltaInputs _adadelta_inputs
cdef int RULE_ADADELTA = _declare("adadelta", _adadelta_inputs, ("square_avg", "acc_delta"), ())

ctypedef struct AdadeltaCoeffs:
    double lr, sign, weight_decay, rho, one_minus_rho, eps
    bint decay


cdef inline AdadeltaCoeffs adadelta_coefficients(const UpdateRule* r,
                                                 const RuleStep* step) noexcept nogil:
    cdef const AdadeltaInputs* a = <const AdadeltaInputs*>r.inputs
    cdef AdadeltaCoeffs c
    c.lr = r.lr
    c.sign = -1.0 if a.maximize != 0 else 1.0
    c.weight_decay = a.weight_decay
    c.decay = a.weight_decay != 0
    c.rho = a.rho
    c.one_minus_rho = 1.0 - a.rho
    c.eps = a.eps
    return c


cdef inline void adadelta_update(AdadeltaCoeffs c, Py_ssize_t i, floating* params,
                                 const floating* grad, floating* square_avg,
                                 floating* acc_delta) noexcept nogil:
    cdef floating rho = <floating>c.rho
    cdef floating one_minus_rho = <floating>c.one_minus_rho
    cdef floating eps = <floating>c.eps
    cdef floating g = <floating>c.sign * grad[i]
    cdef floating v, u, delta
    if c.decay:
        g = g + <floating>c.weight_decay * params[i]
    v = square_avg[i] * rho + one_minus_rho * g * g
    square_avg[i] = v
    u = acc_delta[i]
    # sqrt(u + eps) / sqrt(v + eps) as one root of a quotient: one square root fewer
    delta = _sqrt((u + eps) / (v + eps)) * g
    acc_delta[i] = u * rho + one_minus_rho * delta * delta
    params[i] = params[i] - <floating>c.lr * delta


# ---------------------------------------------------------------------------------------------
# Adam / AdamW / AMSGrad

ctypedef struct AdamInputs:
    double beta1
    double beta2
    double eps
    double weight_decay
    double amsgrad
    double maximize
    double decoupled_weight_decay

cdef AdamInputs _adam_inputs
cdef int RULE_ADAM = _declare("adam", _adam_inputs,
                              ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), ("beta1", "beta2"))

ctypedef struct AdamCoeffs:
    double sign, step_size, eps, beta1, one_minus_beta1, beta2, one_minus_beta2
    double weight_decay, param_decay
    bint decay, amsgrad


cdef inline AdamCoeffs adam_coefficients(const UpdateRule* r, const RuleStep* step) noexcept nogil:
    cdef const AdamInputs* a = <const AdamInputs*>r.inputs
    cdef bint decoupled = a.decoupled_weight_decay != 0
    # step.powers: beta1 ** t, beta2 ** t (the declaration's order)
    cdef double bias_correction2_sqrt = sqrt(1.0 - step.powers[1])
    cdef AdamCoeffs c
    c.sign = -1.0 if a.maximize != 0 else 1.0
    # m / (sqrt(v) / bc2 + eps) == bc2 * m / (sqrt(v) + eps * bc2): one division instead of
    # two (divisions and square roots bound this loop's speed, not memory); the bias
    # correction is still applied before eps, as in torch, up to rounding.
    c.step_size = r.lr / (1.0 - step.powers[0]) * bias_correction2_sqrt
    c.eps = a.eps * bias_correction2_sqrt
    c.beta1 = a.beta1
    c.one_minus_beta1 = 1.0 - a.beta1
    c.beta2 = a.beta2
    c.one_minus_beta2 = 1.0 - a.beta2
    c.weight_decay = 0.0 if decoupled else a.weight_decay  # added to the gradient
    c.decay = c.weight_decay != 0
    # AdamW's p *= 1 - lr * wd; exactly p when the factor is 1 (Adam), so no branch.
    c.param_decay = 1.0 - r.lr * a.weight_decay if decoupled else 1.0
    c.amsgrad = a.amsgrad != 0
    return c


cdef inline void adam_update(AdamCoeffs c, Py_ssize_t i, floating* params,
                             const floating* grad, floating* exp_avg, floating* exp_avg_sq,
                             floating* max_exp_avg_sq) noexcept nogil:
    cdef floating g = <floating>c.sign * grad[i]
    cdef floating p = params[i] * <floating>c.param_decay
    cdef floating m, v, vmax
    if c.decay:
        g = g + <floating>c.weight_decay * p
    m = exp_avg[i] * <floating>c.beta1 + <floating>c.one_minus_beta1 * g
    v = exp_avg_sq[i] * <floating>c.beta2 + <floating>c.one_minus_beta2 * g * g
    exp_avg[i] = m
    exp_avg_sq[i] = v
    if c.amsgrad:
        vmax = max_exp_avg_sq[i]
        if not (vmax >= v):  # so that a NaN in v propagates, as torch.maximum does
            vmax = v
        max_exp_avg_sq[i] = vmax
        v = vmax
    params[i] = p - <floating>c.step_size * m / (_sqrt(v) + <floating>c.eps)


# ---------------------------------------------------------------------------------------------
# Adamax (torch.optim.Adamax): Adam's first moment over a decaying infinity norm

ctypedef struct AdamaxInputs:
    double beta1
    double beta2
    double eps
    double weight_decay
    double maximize

cdef AdamaxInputs _adamax_inputs
cdef int RULE_ADAMAX = _declare("adamax", _adamax_inputs, ("exp_avg", "exp_inf"), ("beta1",))

ctypedef struct AdamaxCoeffs:
    double sign, clr, eps, beta1, one_minus_beta1, beta2, weight_decay
    bint decay


cdef inline AdamaxCoeffs adamax_coefficients(const UpdateRule* r,
                                             const RuleStep* step) noexcept nogil:
    cdef const AdamaxInputs* a = <const AdamaxInputs*>r.inputs
    cdef AdamaxCoeffs c
    c.sign = -1.0 if a.maximize != 0 else 1.0
    c.clr = r.lr / (1.0 - step.powers[0])  # step.powers[0]: beta1 ** t
    c.eps = a.eps
    c.beta1 = a.beta1
    c.one_minus_beta1 = 1.0 - a.beta1
    c.beta2 = a.beta2
    c.weight_decay = a.weight_decay
    c.decay = a.weight_decay != 0
    return c


cdef inline void adamax_update(AdamaxCoeffs c, Py_ssize_t i, floating* params,
                               const floating* grad, floating* exp_avg,
                               floating* exp_inf) noexcept nogil:
    cdef floating g = <floating>c.sign * grad[i]
    cdef floating m, u, a
    if c.decay:
        g = g + <floating>c.weight_decay * params[i]
    m = exp_avg[i] * <floating>c.beta1 + <floating>c.one_minus_beta1 * g
    u = exp_inf[i] * <floating>c.beta2
    a = (g if g >= 0 else -g) + <floating>c.eps
    if a > u or a != a:  # max(u, a), a NaN in either propagating as torch.maximum's does
        u = a
    exp_avg[i] = m
    exp_inf[i] = u
    params[i] = params[i] - <floating>c.clr * (m / u)


# ---------------------------------------------------------------------------------------------
# NAdam (torch.optim.NAdam): Adam with Nesterov momentum and Dozat's momentum schedule

ctypedef struct NAdamInputs:
    double beta1
    double beta2
    double eps
    double weight_decay
    double momentum_decay
    double decoupled_weight_decay
    double maximize

cdef NAdamInputs _nadam_inputs
# mu_product = mu_1 * ... * mu_t: a product of the schedule's momenta, no closed form in t.
cdef int RULE_NADAM = _declare("nadam", _nadam_inputs, ("exp_avg", "exp_avg_sq"), ("beta2",),
                               (("mu_product", 1.0),))

ctypedef struct NAdamCoeffs:
    double sign, grad_step, avg_step, eps, beta1, one_minus_beta1, beta2, one_minus_beta2
    double weight_decay, param_decay
    bint decay


cdef inline double _nadam_mu(const NAdamInputs* a, double t) noexcept nogil:
    # torch's momentum schedule: mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    return a.beta1 * (1.0 - 0.5 * pow(0.96, t * a.momentum_decay))


cdef inline void nadam_advance(const UpdateRule* r, RuleStep* step) noexcept nogil:
    step.scalars[0] *= _nadam_mu(<const NAdamInputs*>r.inputs, <double>step.t)


cdef inline NAdamCoeffs nadam_coefficients(const UpdateRule* r,
                                           const RuleStep* step) noexcept nogil:
    cdef const NAdamInputs* a = <const NAdamInputs*>r.inputs
    cdef bint decoupled = a.decoupled_weight_decay != 0
    cdef double mu = _nadam_mu(a, <double>step.t)
    cdef double mu_next = _nadam_mu(a, <double>step.t + 1.0)
    cdef double mu_product = step.scalars[0]  # advanced: mu_1 * ... * mu_t
    # step.powers[0]: beta2 ** t. As Adam's: sqrt(v / bc2) + eps == (sqrt(v) + eps * sqrt(bc2))
    # / sqrt(bc2), so both terms share one division by sqrt(v) + eps * sqrt(bc2), and the
    # bias correction is still applied before eps, as in torch, up to rounding.
    cdef double bias_correction2_sqrt = sqrt(1.0 - step.powers[0])
    cdef NAdamCoeffs c
    c.sign = -1.0 if a.maximize != 0 else 1.0
    c.grad_step = r.lr * (1.0 - mu) / (1.0 - mu_product) * bias_correction2_sqrt
    c.avg_step = r.lr * mu_next / (1.0 - mu_product * mu_next) * bias_correction2_sqrt
    c.eps = a.eps * bias_correction2_sqrt
    c.beta1 = a.beta1
    c.one_minus_beta1 = 1.0 - a.beta1
    c.beta2 = a.beta2
    c.one_minus_beta2 = 1.0 - a.beta2
    c.weight_decay = 0.0 if decoupled else a.weight_decay  # added to the gradient
    c.decay = c.weight_decay != 0
    c.param_decay = 1.0 - r.lr * a.weight_decay if decoupled else 1.0  # exactly 1: no decay
    return c


cdef inline void nadam_update(NAdamCoeffs c, Py_ssize_t i, floating* params,
                              const floating* grad, floating* exp_avg,
                              floating* exp_avg_sq) noexcept nogil:
    cdef floating g = <floating>c.sign * grad[i]
    cdef floating p = params[i] * <floating>c.param_decay
    cdef floating m, v
    if c.decay:
        g = g + <floating>c.weight_decay * p
    m = exp_avg[i] * <floating>c.beta1 + <floating>c.one_minus_beta1 * g
    v = exp_avg_sq[i] * <floating>c.beta2 + <floating>c.one_minus_beta2 * g * g
    exp_avg[i] = m
    exp_avg_sq[i] = v
    params[i] = p - (<floating>c.grad_step * g + <floating>c.avg_step * m) / (
        _sqrt(v) + <floating>c.eps)


# ---------------------------------------------------------------------------------------------
# RAdam (torch.optim.RAdam): Adam whose adaptive step is switched on, and rectified, once the
# variance of its second moment is tractable (rho_t > 5); plain momentum SGD before that

ctypedef struct RAdamInputs:
    double beta1
    double beta2
    double eps
    double weight_decay
    double decoupled_weight_decay
    double maximize

cdef RAdamInputs _radam_inputs
cdef int RULE_RADAM = _declare("radam", _radam_inputs, ("exp_avg", "exp_avg_sq"),
                               ("beta1", "beta2"))

ctypedef struct RAdamCoeffs:
    double lr, sign, bias_correction1, bias_correction2_sqrt, rect, eps
    double beta1, one_minus_beta1, beta2, one_minus_beta2, weight_decay, param_decay
    bint decay, rectified


cdef inline RAdamCoeffs radam_coefficients(const UpdateRule* r,
                                           const RuleStep* step) noexcept nogil:
    cdef const RAdamInputs* a = <const RAdamInputs*>r.inputs
    cdef bint decoupled = a.decoupled_weight_decay != 0
    # step.powers: beta1 ** t, beta2 ** t (the declaration's order)
    cdef double bias_correction2 = 1.0 - step.powers[1]
    # torch's length of the approximated simple moving average, rho_t, and its limit
    cdef double rho_inf = 2.0 / (1.0 - a.beta2) - 1.0
    cdef double rho_t = rho_inf - 2.0 * <double>step.t * step.powers[1] / bias_correction2
    cdef RAdamCoeffs c
    c.lr = r.lr
    c.sign = -1.0 if a.maximize != 0 else 1.0
    c.bias_correction1 = 1.0 - step.powers[0]
    c.bias_correction2_sqrt = sqrt(bias_correction2)
    c.rectified = rho_t > 5.0
    c.rect = 1.0
    if c.rectified:
        c.rect = sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                      / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
    c.eps = a.eps
    c.beta1 = a.beta1
    c.one_minus_beta1 = 1.0 - a.beta1
    c.beta2 = a.beta2
    c.one_minus_beta2 = 1.0 - a.beta2
    c.weight_decay = 0.0 if decoupled else a.weight_decay  # added to the gradient
    c.decay = c.weight_decay != 0
    # decoupled: p *= 1 - lr * wd; exactly p when the factor is 1, so no branch
    c.param_decay = 1.0 - r.lr * a.weight_decay if decoupled else 1.0
    return c


cdef inline void radam_update(RAdamCoeffs c, Py_ssize_t i, floating* params,
                              const floating* grad, floating* exp_avg,
                              floating* exp_avg_sq) noexcept nogil:
    cdef floating g = <floating>c.sign * grad[i]
    cdef floating p = params[i] * <floating>c.param_decay
    cdef floating m, v, step
    if c.decay:
        g = g + <floating>c.weight_decay * p
    m = exp_avg[i] * <floating>c.beta1 + <floating>c.one_minus_beta1 * g
    v = exp_avg_sq[i] * <floating>c.beta2 + <floating>c.one_minus_beta2 * g * g
    exp_avg[i] = m
    exp_avg_sq[i] = v
    # torch's expression and order, element by element (two divisions: the loop stays
    # memory-bound at large sizes, and the rounding stays torch's)
    step = m / <floating>c.bias_correction1 * <floating>c.lr
    if c.rectified:
        step = step * (<floating>c.bias_correction2_sqrt / (_sqrt(v) + <floating>c.eps)) \
            * <floating>c.rect
    params[i] = p - step


# ---------------------------------------------------------------------------------------------
# Lion (Chen et al. 2023, Algorithm 2): the sign of an interpolation of momentum and gradient,
# with decoupled weight decay; one state array

ctypedef struct LionInputs:
    double beta1
    double beta2
    double weight_decay
    double maximize

cdef LionInputs _lion_inputs
cdef int RULE_LION = _declare("lion", _lion_inputs, ("exp_avg",), ())

ctypedef struct LionCoeffs:
    double lr, sign, beta1, one_minus_beta1, beta2, one_minus_beta2, weight_decay
    bint decay


cdef inline LionCoeffs lion_coefficients(const UpdateRule* r,
                                         const RuleStep* step) noexcept nogil:
    cdef const LionInputs* a = <const LionInputs*>r.inputs
    cdef LionCoeffs c
    c.lr = r.lr
    c.sign = -1.0 if a.maximize != 0 else 1.0
    c.beta1 = a.beta1
    c.one_minus_beta1 = 1.0 - a.beta1
    c.beta2 = a.beta2
    c.one_minus_beta2 = 1.0 - a.beta2
    c.weight_decay = a.weight_decay
    c.decay = a.weight_decay != 0
    return c


cdef inline void lion_update(LionCoeffs c, Py_ssize_t i, floating* params,
                             const floating* grad, floating* exp_avg) noexcept nogil:
    cdef floating g = <floating>c.sign * grad[i]
    cdef floating m = exp_avg[i]
    cdef floating u = m * <floating>c.beta1 + <floating>c.one_minus_beta1 * g
    cdef floating p = params[i]
    # sign(u), 0 at 0, NaN kept (as np.sign): selects, so that the loop still vectorises
    u = <floating>1 if u > 0 else (<floating>-1 if u < 0 else u)
    if c.decay:
        u = u + <floating>c.weight_decay * p
    params[i] = p - <floating>c.lr * u
    exp_avg[i] = m * <floating>c.beta2 + <floating>c.one_minus_beta2 * g


# ---------------------------------------------------------------------------------------------
# Rprop (torch.optim.Rprop): a step size per coordinate, grown while the gradient keeps its
# sign and shrunk when it flips; the step moves by the step size against the gradient's sign.

ctypedef struct RpropInputs:
    double etaminus
    double etaplus
    double step_size_min
    double step_size_max
    double maximize

cdef RpropInputs _rprop_inputs
cdef int RULE_RPROP = _declare("rprop", _rprop_inputs, ("prev", "step_size"), ())

ctypedef struct RpropCoeffs:
    double sign, etaminus, etaplus, step_size_min, step_size_max


cdef inline RpropCoeffs rprop_coefficients(const UpdateRule* r,
                                           const RuleStep* step) noexcept nogil:
    cdef const RpropInputs* a = <const RpropInputs*>r.inputs
    cdef RpropCoeffs c
    c.sign = -1.0 if a.maximize != 0 else 1.0
    c.etaminus = a.etaminus
    c.etaplus = a.etaplus
    c.step_size_min = a.step_size_min
    c.step_size_max = a.step_size_max
    return c


cdef inline void rprop_update(RpropCoeffs c, Py_ssize_t i, floating* params,
                              const floating* grad, floating* prev,
                              floating* step_size) noexcept nogil:
    # torch's sequence: the factor is sign(g * prev) mapped to etaplus / etaminus / 1, the
    # step size is multiplied by it and clamped, the gradient is zeroed where the sign
    # flipped, the parameter moves by sign(g) * step size, and prev becomes that g. On the
    # first step prev is 0: the factor is 1, so every coordinate moves by lr (clamped).
    # torch.sign is (x > 0) - (x < 0): 0 for NaN, so a NaN product (a NaN gradient or prev,
    # inf * 0) keeps the step size and a NaN gradient moves nothing.
    # Only selects of ready values under the conditions, no arithmetic and no casts: gcc then
    # vectorises the loop (a conditional multiply or double-to-float cast may raise an FP
    # flag, so it stays a branch; s * 1 is exact).
    cdef floating etaplus = <floating>c.etaplus, etaminus = <floating>c.etaminus
    cdef floating low = <floating>c.step_size_min, high = <floating>c.step_size_max
    cdef floating g = <floating>c.sign * grad[i]
    cdef floating d = g * prev[i]
    cdef floating factor = 1, direction = 0, s
    if d > 0:
        factor = etaplus
    if d < 0:
        factor = etaminus
        g = 0
    s = step_size[i] * factor
    # torch.clamp(s, min, max): NaN stays NaN; with min > max every value becomes max
    if s < low:
        s = low
    if s > high:
        s = high
    if g > 0:
        direction = 1
    if g < 0:
        direction = -1
    # (sign(g) * s as torch's addcmul: 0 * NaN is NaN there too)
    params[i] = params[i] - direction * s
    prev[i] = g
    step_size[i] = s


# ---------------------------------------------------------------------------------------------
# ASGD (torch.optim.ASGD): SGD with a decaying rate and a running average of the iterates

from libc.math cimport fmax as _fmax, pow as _pow

ctypedef struct ASGDInputs:
    double lambd
    double alpha
    double t0
    double weight_decay
    double maximize

cdef ASGDInputs _asgd_inputs
cdef int RULE_ASGD = _declare("asgd", _asgd_inputs, ("ax",), ())

ctypedef struct ASGDCoeffs:
    double sign, eta, shrink, mu, weight_decay
    bint decay, average


cdef inline ASGDCoeffs asgd_coefficients(const UpdateRule* r,
                                         const RuleStep* step) noexcept nogil:
    cdef const ASGDInputs* a = <const ASGDInputs*>r.inputs
    # torch keeps eta and mu in its state, set at the end of each step from the step count
    # (lr and 1 before the first): at step t they are closed forms of t - 1, evaluated here
    # as torch evaluates them (the same operations in the same order, in double).
    cdef double done = <double>(step.t - 1)
    cdef ASGDCoeffs c
    c.sign = -1.0 if a.maximize != 0 else 1.0
    # At t = 1 these are lr and 1 exactly, torch's initial eta and mu (pow(1, alpha) is 1,
    # t0 >= 0): no branch on t, which kept gcc from unswitching the loop on the average flag
    # (it stayed scalar, 4-8x slower).
    c.eta = r.lr / _pow(1.0 + a.lambd * r.lr * done, a.alpha)
    c.mu = 1.0 / _fmax(1.0, done - a.t0)
    c.shrink = 1.0 - a.lambd * c.eta
    c.weight_decay = a.weight_decay
    c.decay = a.weight_decay != 0
    c.average = c.mu != 1.0  # (torch copies the parameter while mu is 1)
    return c


cdef inline void asgd_update(ASGDCoeffs c, Py_ssize_t i, floating* params,
                             const floating* grad, floating* ax) noexcept nogil:
    # Both sides of each flag are computed and one is selected (as in rprop_update): with a
    # load or arithmetic under the condition the loop stayed scalar, 4-6x slower. Reading ax
    # while it is only copied to costs no memory traffic: writing it reads its line anyway.
    cdef floating mu = <floating>c.mu
    cdef floating g = <floating>c.sign * grad[i]
    cdef floating p = params[i]
    cdef floating a = ax[i]
    cdef floating decayed = g + <floating>c.weight_decay * p
    if c.decay:
        g = decayed
    p = p * <floating>c.shrink
    p = p - <floating>c.eta * g
    params[i] = p
    a = a + (p - a) * mu
    if not c.average:  # (torch copies the parameter while mu is 1)
        a = p
    ax[i] = a


# While ASGD only copies the parameter into ax (mu == 1: every step before t0 + 1, the
# default t0 being 1e6), ax is written and never read. For arrays larger than the caches that
# update runs in C with streaming stores for ax (src_c/fastopt_stream.h: a plain store would
# first read each line of ax, one memory transfer in five; torch's copy_ pays it too), with
# the same arithmetic, so the same bits. Bytes per array from which it does:
cdef Py_ssize_t ASGD_STREAM_BYTES = 8 << 20

cdef extern from "fastopt_stream.h" nogil:
    void fastopt_asgd_stream_double(double* p, const double* g, double* ax, Py_ssize_t n,
                                    double sign, double weight_decay, int decay,
                                    double shrink, double eta)
    void fastopt_asgd_stream_float(float* p, const float* g, float* ax, Py_ssize_t n,
                                   float sign, float weight_decay, int decay, float shrink,
                                   float eta)

ctypedef struct ASGDStreamCoeffs:  # (a type of its own: its own range function, see _range)
    ASGDCoeffs asgd


cdef inline void asgd_stream_range(ASGDStreamCoeffs s, floating* params, const floating* grad,
                                   floating* ax, Py_ssize_t start,
                                   Py_ssize_t end) noexcept nogil:
    # asgd_update with c.average false, over [start, end)
    cdef ASGDCoeffs c = s.asgd
    if floating is float:
        fastopt_asgd_stream_float(params + start, grad + start, ax + start, end - start,
                                  <float>c.sign, <float>c.weight_decay, c.decay,
                                  <float>c.shrink, <float>c.eta)
    else:
        fastopt_asgd_stream_double(params + start, grad + start, ax + start, end - start,
                                   c.sign, c.weight_decay, c.decay, c.shrink, c.eta)


cdef inline bint asgd_streams(ASGDCoeffs c, Py_ssize_t n, Py_ssize_t itemsize) noexcept nogil:
    return not c.average and n >= ASGD_STREAM_BYTES // itemsize


# ---------------------------------------------------------------------------------------------
# Adafactor (torch.optim.Adafactor; Shazeer & Stern 2018): not elementwise. The step of a
# parameter is scaled by two norms of the whole parameter (the RMS of the parameter before the
# step, the RMS of the update), and a parameter of two or more dimensions keeps factored second
# moments (the mean of the squared gradient over each row and each column of its last two
# dimensions, rows x cols, for each of its `batch` leading indices). So it runs in passes over
# memory, and the threads split the work into blocks fixed by the array's shape alone:
#
# * a vector (the parameter of 0 or 1 dimension; every minimize driver's x): pass 1 reads p, g
#   and the variance, writes the variance, and sums p*p and u*u (u the update); pass 2 reads p,
#   g and the variance again (u is recomputed, bitwise the same) and writes p. Two passes.
# * a matrix (>= 2 dimensions): pass 1 reads p and g (row and column sums of g*g, the sum of
#   p*p); the factors are then updated (small: batch * (rows + cols)); pass 2 reads g (the sum
#   of u*u); pass 3 reads g and p and writes p. Three passes: the update needs the column
#   means, which need every row, and its norm needs the whole update.
#
# Sums are accumulated in double, one partial sum per block, and the partial sums are added in
# block order after the parallel loop; the blocks depend on the shape only (never on the thread
# count, which decides only which thread takes which block), so results are bitwise the same
# for every n_threads. Element arithmetic is in the array's type, as torch's is.

from libc.float cimport DBL_EPSILON, FLT_EPSILON
from libc.math cimport pow

import numpy as np

ctypedef struct AdafactorInputs:
    double beta2_decay
    double eps1  # < 0: None, the dtype's machine epsilon (torch.finfo(dtype).eps)
    double eps2
    double d
    double weight_decay
    double maximize

cdef AdafactorInputs _adafactor_inputs
cdef int RULE_ADAFACTOR = _declare("adafactor", _adafactor_inputs,
                                   ("row_var", "col_var", "variance"), ())

ctypedef struct AdafactorCoeffs:
    double sign, rho, weight, eps1, eps2, d, decay
    bint decays

cdef enum:
    ADAFACTOR_MAX_BLOCKS = 64  # the most blocks of a vector (partial sums on the stack)

# Elements per block (at least): below it a vector is one block; a matrix's rows are split
# into blocks of at least this many elements and at least 8 rows.
cdef Py_ssize_t ADAFACTOR_BLOCK = 16384


cdef inline AdafactorCoeffs adafactor_coefficients(const UpdateRule* r,
                                                   const RuleStep* step) noexcept nogil:
    cdef const AdafactorInputs* a = <const AdafactorInputs*>r.inputs
    cdef AdafactorCoeffs c
    cdef double t = <double>step.t
    cdef double root = 1.0 / sqrt(t)
    c.sign = -1.0 if a.maximize != 0 else 1.0
    c.weight = pow(t, a.beta2_decay)  # 1 - beta2_t, torch's one_minus_beta2_t
    c.rho = root if root < r.lr else r.lr  # Python's min(lr, 1 / t ** 0.5)
    c.eps1, c.eps2, c.d = a.eps1, a.eps2, a.d
    c.decay = 1.0 - r.lr * a.weight_decay
    c.decays = a.weight_decay != 0
    return c


cdef inline floating _adafactor_eps1(AdafactorCoeffs c, const floating* _type) noexcept nogil:
    # (the pointer only selects the type)
    if c.eps1 >= 0:
        return <floating>c.eps1
    return <floating>(FLT_EPSILON if floating is float else DBL_EPSILON)


cdef inline floating _lerp(floating a, floating b, floating w) noexcept nogil:
    # torch.lerp (ATen/native/Lerp.h): the form that is exact at its end, by the weight's size
    if (w if w >= 0 else -w) < 0.5:
        return a + w * (b - a)
    return b - (b - a) * (1 - w)


cdef inline floating _rsqrt_clamped(floating v, floating low) noexcept nogil:
    # clamp_(min=low).rsqrt_() as torch's CPU kernels compute it (1 / sqrt); NaN stays NaN
    if v < low:
        v = low
    return 1 / _sqrt(v)


cdef inline double _adafactor_scale(AdafactorCoeffs c, double p_squares, double u_squares,
                                    Py_ssize_t n) noexcept nogil:
    """-alpha / denom: torch's max(eps2, RMS(p)) * rho over max(1, RMS(u) / d), with Python's
    max (a NaN norm loses to the other argument)."""
    cdef double root_n = sqrt(<double>n)
    cdef double rms = sqrt(p_squares) / root_n
    cdef double alpha = (rms if rms > c.eps2 else c.eps2) * c.rho
    cdef double ratio = sqrt(u_squares) / (root_n * c.d)
    return -alpha / (ratio if ratio > 1.0 else 1.0)


cdef inline Py_ssize_t _part(Py_ssize_t n, Py_ssize_t k, Py_ssize_t parts) noexcept nogil:
    """Start of part k of n items split into ``parts`` near-equal parts (no overflow)."""
    cdef Py_ssize_t q = n // parts, r = n % parts
    return q * k + (k if k < r else r)


cdef inline Py_ssize_t _adafactor_vector_blocks(Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k = n // ADAFACTOR_BLOCK
    return 1 if k < 1 else (ADAFACTOR_MAX_BLOCKS if k > ADAFACTOR_MAX_BLOCKS else k)


cdef Py_ssize_t adafactor_row_blocks(Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    """Blocks of rows per matrix (its column partial sums take blocks * cols doubles: at most
    an eighth of the matrix's elements)."""
    cdef Py_ssize_t k = (rows * cols) // ADAFACTOR_BLOCK
    if k > rows // 8:
        k = rows // 8
    return 1 if k < 1 else (ADAFACTOR_MAX_BLOCKS if k > ADAFACTOR_MAX_BLOCKS else k)


cdef enum:
    # Pass 1 of a vector runs in tiles of ADAFACTOR_TILE elements: an elementwise loop that
    # gcc vectorises (the variance, and each element's p*p and u*u into two small buffers in
    # L1), then the buffers added into ADAFACTOR_LANES interleaved partial sums (see
    # _adafactor_vector_sums).
    ADAFACTOR_TILE = 512
    ADAFACTOR_LANES = 8


cdef void _adafactor_vector_sums(AdafactorCoeffs c, const floating* p, const floating* g,
                                 floating* v, Py_ssize_t start, Py_ssize_t end,
                                 double* sums) noexcept nogil:
    # Pass 1 of a vector, one block: the variance, and the block's sums of p*p and u*u.
    # Written so that gcc vectorises it (issue 13's bench: one loop with the two sums ran
    # scalar, at a third of the memory bandwidth; gcc may not reorder a chain of double adds):
    # * u*u is g * (g / max(v, eps1**2)) in double, the square of torch's u = rsqrt(...) * g
    #   without the square root (the sum only sets the step's scale, to a few ulps of it); in
    #   double g/v cannot overflow for float32, and g * (g/v) is 0, as u is, where g*g
    #   overflowed into v (v = inf, g finite) in float64;
    # * the sums run in ADAFACTOR_LANES interleaved partial sums, over tiles padded with zeros
    #   to whole lanes, added in lane order at the end: the result depends on the block
    #   alone, never on the threads.
    cdef Py_ssize_t i, k, l, m, padded
    cdef floating w = <floating>c.weight, sign = <floating>c.sign
    cdef floating low = _adafactor_eps1(c, p) * _adafactor_eps1(c, p)
    cdef floating x, gi, vi
    cdef double gd
    cdef double pp[ADAFACTOR_TILE]
    cdef double uu[ADAFACTOR_TILE]
    cdef double sp[ADAFACTOR_LANES]
    cdef double su[ADAFACTOR_LANES]
    for l in range(ADAFACTOR_LANES):
        sp[l] = 0
        su[l] = 0
    i = start
    while i < end:
        m = end - i
        if m > ADAFACTOR_TILE:
            m = ADAFACTOR_TILE
        for k in range(m):
            x = p[i + k]
            pp[k] = <double>x * <double>x
            gi = sign * g[i + k]
            vi = _lerp(v[i + k], gi * gi, w)
            v[i + k] = vi
            gd = <double>gi
            uu[k] = gd * (gd / <double>(low if vi < low else vi))  # (NaN stays NaN)
        padded = (m + ADAFACTOR_LANES - 1) // ADAFACTOR_LANES * ADAFACTOR_LANES
        for k in range(m, padded):
            pp[k] = 0
            uu[k] = 0
        k = 0
        while k < padded:
            for l in range(ADAFACTOR_LANES):
                sp[l] += pp[k + l]
                su[l] += uu[k + l]
            k += ADAFACTOR_LANES
        i += m
    sums[0] = sums[1] = 0
    for l in range(ADAFACTOR_LANES):
        sums[0] += sp[l]
        sums[1] += su[l]


cdef void _adafactor_vector_apply(AdafactorCoeffs c, double scale, floating* p,
                                  const floating* g, const floating* v, Py_ssize_t start,
                                  Py_ssize_t end) noexcept nogil:
    # Pass 2 of a vector: the update u again (the same arithmetic), weight decay, the step.
    cdef Py_ssize_t i
    cdef floating sign = <floating>c.sign, s = <floating>scale, decay = <floating>c.decay
    cdef floating low = _adafactor_eps1(c, p) * _adafactor_eps1(c, p)
    cdef floating x, u
    for i in range(start, end):
        u = _rsqrt_clamped(v[i], low) * (sign * g[i])
        x = p[i]
        if c.decays:
            x = x * decay
        p[i] = x + s * u


cdef void adafactor_vector(AdafactorCoeffs c, floating* p, const floating* g, floating* v,
                           Py_ssize_t n, int n_threads) noexcept nogil:
    """One Adafactor step of a vector of n elements (the variance ``v``, n elements), in
    place."""
    cdef double sums[2 * ADAFACTOR_MAX_BLOCKS]
    cdef double p_squares = 0, u_squares = 0, scale
    cdef Py_ssize_t k, blocks = _adafactor_vector_blocks(n)
    cdef Py_ssize_t n_chunks = _n_chunks(n, n_threads)
    cdef fastopt_fpcr bits
    cdef fastopt_fpenv env
    if n <= 0:
        return  # (torch divides by the size: nothing to do for an empty parameter)
    if n_chunks == 1:
        for k in range(blocks):
            _adafactor_vector_sums(c, p, g, v, _part(n, k, blocks), _part(n, k + 1, blocks),
                                   &sums[2 * k])
    else:
        bits = fastopt_flush_bits()
        for k in prange(blocks, schedule="static", num_threads=n_chunks):
            env = fastopt_follow_begin(bits)
            _adafactor_vector_sums(c, p, g, v, _part(n, k, blocks), _part(n, k + 1, blocks),
                                   &sums[2 * k])
            fastopt_fpenv_restore(env)
    for k in range(blocks):  # in block order, whatever the threads
        p_squares += sums[2 * k]
        u_squares += sums[2 * k + 1]
    scale = _adafactor_scale(c, p_squares, u_squares, n)
    if n_chunks == 1:
        _adafactor_vector_apply(c, scale, p, g, v, 0, n)
    else:
        bits = fastopt_flush_bits()
        for k in prange(n_chunks, schedule="static", num_threads=n_chunks):
            env = fastopt_follow_begin(bits)
            _adafactor_vector_apply(c, scale, p, g, v, _chunk_bound(k, n, n_chunks),
                                    _chunk_bound(k + 1, n, n_chunks))
            fastopt_fpenv_restore(env)


# A matrix (a parameter of >= 2 dimensions: `batch` matrices of rows x cols, C order). Its
# work is split into batch * blocks tasks: task t covers rows [_part(rows, kb, blocks),
# _part(rows, kb + 1, blocks)) of matrix b = t // blocks (kb = t % blocks).

ctypedef struct _AdafactorMatrix:
    Py_ssize_t batch, rows, cols, blocks
    double* col_parts  # batch * blocks * cols: each task's column sums of g*g
    double* task_sums  # 2 per task: its sums of p*p (pass 1) and u*u (pass 2)
    double* row_means  # batch: each matrix's mean of row_var, clamped to >= eps1


cdef void _adafactor_matrix_pass(AdafactorCoeffs c, const _AdafactorMatrix* m, int which,
                                 double scale, floating* p, const floating* g,
                                 floating* row_var, const floating* col_var,
                                 Py_ssize_t task) noexcept nogil:
    """Pass ``which`` (1, 2 or 3) of one task."""
    cdef Py_ssize_t b = task // m.blocks, kb = task % m.blocks, i, j, cols = m.cols
    cdef Py_ssize_t i0 = _part(m.rows, kb, m.blocks), i1 = _part(m.rows, kb + 1, m.blocks)
    cdef floating w = <floating>c.weight, sign = <floating>c.sign, s = <floating>scale
    cdef floating decay = <floating>c.decay
    cdef floating low = _adafactor_eps1(c, p) * _adafactor_eps1(c, p)
    cdef floating r, x, gj, u, mean = <floating>m.row_means[b] if which > 1 else 0
    cdef const floating* cv = col_var + b * cols
    cdef double* parts = m.col_parts + task * cols
    cdef double sp = 0, su = 0, rs, q
    cdef Py_ssize_t row
    if which == 1:
        for j in range(cols):
            parts[j] = 0
    for i in range(i0, i1):
        row = (b * m.rows + i) * cols
        if which == 1:
            rs = 0
            for j in range(cols):
                x = p[row + j]
                sp += <double>x * <double>x
                gj = g[row + j]
                q = <double>gj * <double>gj
                rs += q
                parts[j] += q
            # torch: norm(g, dim=-1) ** 2 / cols, then lerp_ by 1 - beta2_t
            row_var[b * m.rows + i] = _lerp(row_var[b * m.rows + i],
                                            <floating>(rs / <double>cols), w)
        else:
            r = row_var[b * m.rows + i]
            for j in range(cols):
                # torch: (row_var @ col_var) / mean, clamped to eps1 ** 2, rsqrt, times g
                u = _rsqrt_clamped((r * cv[j]) / mean, low) * (sign * g[row + j])
                if which == 2:
                    su += <double>u * <double>u
                else:
                    x = p[row + j]
                    if c.decays:
                        x = x * decay
                    p[row + j] = x + s * u
    if which == 1:
        m.task_sums[2 * task] = sp
    elif which == 2:
        m.task_sums[2 * task + 1] = su


cdef void _adafactor_matrix_run(AdafactorCoeffs c, const _AdafactorMatrix* m, int which,
                                double scale, floating* p, const floating* g,
                                floating* row_var, const floating* col_var,
                                int n_chunks) noexcept nogil:
    cdef Py_ssize_t t, tasks = m.batch * m.blocks
    cdef fastopt_fpcr bits
    cdef fastopt_fpenv env
    if n_chunks == 1:
        for t in range(tasks):
            _adafactor_matrix_pass(c, m, which, scale, p, g, row_var, col_var, t)
    else:
        bits = fastopt_flush_bits()
        for t in prange(tasks, schedule="static", num_threads=n_chunks):
            env = fastopt_follow_begin(bits)
            _adafactor_matrix_pass(c, m, which, scale, p, g, row_var, col_var, t)
            fastopt_fpenv_restore(env)


cdef void adafactor_matrix(AdafactorCoeffs c, const _AdafactorMatrix* m, floating* p,
                           const floating* g, floating* row_var, floating* col_var,
                           int n_threads) noexcept nogil:
    """One Adafactor step of a parameter of `batch` rows x cols matrices, in place; ``m``
    holds the shape and the scratch (see _AdafactorMatrix)."""
    cdef Py_ssize_t b, i, j, k, t, n = m.batch * m.rows * m.cols, tasks = m.batch * m.blocks
    cdef int n_chunks = <int>_n_chunks(n, n_threads)
    cdef floating w = <floating>c.weight, eps1 = _adafactor_eps1(c, p), mean
    cdef double s, p_squares = 0, u_squares = 0, scale
    if n <= 0:
        return
    _adafactor_matrix_run(c, m, 1, 0.0, p, g, row_var, col_var, n_chunks)
    # The column factors (from the tasks' partial sums, in task order) and the row factors'
    # means: batch * (rows + cols) values, serially.
    for b in range(m.batch):
        for j in range(m.cols):
            s = 0
            for k in range(m.blocks):
                s += m.col_parts[(b * m.blocks + k) * m.cols + j]
            col_var[b * m.cols + j] = _lerp(col_var[b * m.cols + j],
                                            <floating>(s / <double>m.rows), w)
        s = 0
        for i in range(m.rows):
            s += row_var[b * m.rows + i]
        mean = <floating>(s / <double>m.rows)
        m.row_means[b] = mean if mean >= eps1 or mean != mean else eps1  # clamp_(min=eps1)
    _adafactor_matrix_run(c, m, 2, 0.0, p, g, row_var, col_var, n_chunks)
    for t in range(tasks):
        p_squares += m.task_sums[2 * t]
        u_squares += m.task_sums[2 * t + 1]
    scale = _adafactor_scale(c, p_squares, u_squares, n)
    _adafactor_matrix_run(c, m, 3, scale, p, g, row_var, col_var, n_chunks)


def adafactor_step(floating[::1] params, const floating[::1] grad, floating[::1] row_var,
                   floating[::1] col_var, floating[::1] variance, Py_ssize_t batch,
                   Py_ssize_t rows, Py_ssize_t cols, double lr, double beta2_decay,
                   double eps1, double eps2, double d, double weight_decay, bint maximize,
                   Py_ssize_t t, int n_threads):
    """One Adafactor step of one parameter, in place (fastopt.Adafactor's kernel entry).

    ``params``, ``grad``: the parameter and its gradient, flattened (C order), one float dtype.
    A vector (``variance`` given, ``row_var`` and ``col_var`` None): ``variance`` has its
    size. A matrix (``row_var`` and ``col_var`` given, ``variance`` None): ``batch * rows *
    cols`` elements, ``row_var`` ``batch * rows``, ``col_var`` ``batch * cols``. ``eps1`` < 0
    stands for None (the dtype's machine epsilon); ``t`` >= 1 is the step number. Sizes are
    checked (ValueError); the hyperparameters were validated by the class.
    """
    cdef Py_ssize_t n = params.shape[0]
    cdef UpdateRule rule
    cdef AdafactorInputs* a = <AdafactorInputs*>rule.inputs
    cdef RuleStep step
    cdef AdafactorCoeffs c
    cdef _AdafactorMatrix m
    if grad.shape[0] != n or t < 1:
        raise ValueError("adafactor_step: grad must have the parameter's size, t >= 1")
    rule.kind, rule.lr = RULE_ADAFACTOR, lr
    a.beta2_decay, a.eps1, a.eps2, a.d = beta2_decay, eps1, eps2, d
    a.weight_decay, a.maximize = weight_decay, 1.0 if maximize else 0.0
    step.t = t
    c = adafactor_coefficients(&rule, &step)
    if variance is not None:
        if row_var is not None or col_var is not None or variance.shape[0] != n:
            raise ValueError("adafactor_step: a vector takes a variance of its size only")
        with nogil:
            adafactor_vector(c, &params[0] if n else NULL, &grad[0] if n else NULL,
                             &variance[0] if n else NULL, n, n_threads)
        return
    if (row_var is None or col_var is None or batch < 0 or rows < 0 or cols < 0
            or (rows and cols and batch > n // rows // cols) or batch * rows * cols != n
            or row_var.shape[0] != batch * rows or col_var.shape[0] != batch * cols):
        raise ValueError(f"adafactor_step: a matrix of {batch} x {rows} x {cols} takes "
                         "row_var and col_var of batch * rows and batch * cols elements")
    if n == 0:
        return
    m.batch, m.rows, m.cols = batch, rows, cols
    m.blocks = adafactor_row_blocks(rows, cols)
    col_parts = np.empty(batch * m.blocks * cols, np.float64)
    task_sums = np.empty(2 * batch * m.blocks, np.float64)
    row_means = np.empty(batch, np.float64)
    cdef double[::1] parts_view = col_parts, sums_view = task_sums, means_view = row_means
    m.col_parts, m.task_sums, m.row_means = &parts_view[0], &sums_view[0], &means_view[0]
    with nogil:
        adafactor_matrix(c, &m, &params[0], &grad[0], &row_var[0], &col_var[0], n_threads)


# ---------------------------------------------------------------------------------------------
# Schedule-free SGD and AdamW (the schedulefree package, Defazio et al. 2024): y (the
# parameter) moves toward z and along the step's direction, z takes the plain step. The
# averaging weight of update t needs the largest scheduled lr so far and the sum of the
# weights so far, which depend on the lr of every step: running scalars, advanced once per
# update by their _advance functions (t**r and lr_max**weight_lr_power: pow once per update).

from libc.math cimport fabs, pow

ctypedef struct SGDScheduleFreeInputs:
    double momentum
    double weight_decay
    double warmup_steps
    double r
    double weight_lr_power

ctypedef struct AdamWScheduleFreeInputs:
    double beta1
    double beta2
    double eps
    double weight_decay
    double warmup_steps
    double r
    double weight_lr_power

cdef SGDScheduleFreeInputs _sgd_schedulefree_inputs
cdef AdamWScheduleFreeInputs _adamw_schedulefree_inputs
# (weight_sum, lr_max) start at schedulefree's 0 and -1
cdef tuple _SCHEDULEFREE_SCALARS = (("weight_sum", 0.0), ("lr_max", -1.0))
cdef int RULE_SGD_SCHEDULEFREE = _declare("sgd_schedulefree", _sgd_schedulefree_inputs,
                                          ("z",), (), _SCHEDULEFREE_SCALARS)
cdef int RULE_ADAMW_SCHEDULEFREE = _declare("adamw_schedulefree", _adamw_schedulefree_inputs,
                                            ("z", "exp_avg_sq"), ("beta2",),
                                            _SCHEDULEFREE_SCALARS)

ctypedef struct ScheduleFreeCoeffs:
    double lr, ckp1, y_step, pull, weight_decay, beta2, one_minus_beta2, eps, rs
    bint decay, small_ckp1, adaptive


cdef inline double _scheduled_lr(const UpdateRule* r, Py_ssize_t t,
                                 double warmup_steps) noexcept nogil:
    """The lr of update t: linear warmup over the first warmup_steps updates."""
    if t - 1 < warmup_steps:
        return r.lr * (<double>t / warmup_steps)
    return r.lr


cdef inline double _averaging_weight(Py_ssize_t t, double lr_max, double power,
                                     double wlp) noexcept nogil:
    return pow(<double>t, power) * pow(lr_max, wlp)


cdef inline void _schedulefree_advance(const UpdateRule* r, RuleStep* step,
                                       double warmup_steps, double power,
                                       double wlp) noexcept nogil:
    # schedulefree's order: lr_max = max(lr, lr_max), then weight_sum += weight
    cdef double lr = _scheduled_lr(r, step.t, warmup_steps)
    if not (step.scalars[1] > lr):  # (Python's max(lr, lr_max))
        step.scalars[1] = lr
    step.scalars[0] = step.scalars[0] + _averaging_weight(step.t, step.scalars[1], power, wlp)


cdef inline void sgd_schedulefree_advance(const UpdateRule* r, RuleStep* step) noexcept nogil:
    cdef const SGDScheduleFreeInputs* a = <const SGDScheduleFreeInputs*>r.inputs
    _schedulefree_advance(r, step, a.warmup_steps, a.r, a.weight_lr_power)


cdef inline void adamw_schedulefree_advance(const UpdateRule* r, RuleStep* step) noexcept nogil:
    cdef const AdamWScheduleFreeInputs* a = <const AdamWScheduleFreeInputs*>r.inputs
    _schedulefree_advance(r, step, a.warmup_steps, a.r, a.weight_lr_power)


cdef inline ScheduleFreeCoeffs _schedulefree_coefficients(
        const UpdateRule* r, const RuleStep* step, double beta, double weight_decay,
        double warmup_steps, double power, double wlp) noexcept nogil:
    # step.scalars: weight_sum and lr_max already advanced to update t
    cdef ScheduleFreeCoeffs c
    cdef double weight = _averaging_weight(step.t, step.scalars[1], power, wlp)
    c.lr = _scheduled_lr(r, step.t, warmup_steps)
    # schedulefree: ckp1 = 0 where weight_sum is 0 (lr 0 so far)
    c.ckp1 = weight / step.scalars[0] if step.scalars[0] != 0 else 0.0
    c.small_ckp1 = fabs(c.ckp1) < 0.5  # torch.lerp's choice of formula
    c.y_step = c.lr * (beta * (1.0 - c.ckp1) - 1.0)
    c.pull = 1.0 - beta + beta * c.ckp1  # how far y follows a move of z (projection)
    c.weight_decay = weight_decay
    c.decay = weight_decay != 0
    c.adaptive = False
    c.beta2 = c.one_minus_beta2 = c.eps = c.rs = 0.0
    return c


cdef inline ScheduleFreeCoeffs sgd_schedulefree_coefficients(
        const UpdateRule* r, const RuleStep* step) noexcept nogil:
    cdef const SGDScheduleFreeInputs* a = <const SGDScheduleFreeInputs*>r.inputs
    return _schedulefree_coefficients(r, step, a.momentum, a.weight_decay, a.warmup_steps,
                                      a.r, a.weight_lr_power)


cdef inline ScheduleFreeCoeffs adamw_schedulefree_coefficients(
        const UpdateRule* r, const RuleStep* step) noexcept nogil:
    cdef const AdamWScheduleFreeInputs* a = <const AdamWScheduleFreeInputs*>r.inputs
    cdef ScheduleFreeCoeffs c = _schedulefree_coefficients(
        r, step, a.beta1, a.weight_decay, a.warmup_steps, a.r, a.weight_lr_power)
    c.adaptive = True
    c.beta2 = a.beta2
    c.one_minus_beta2 = 1.0 - a.beta2
    # g / (sqrt(v / bc2) + eps) == g * rs / (sqrt(v) + eps * rs), rs = sqrt(bc2): one
    # division fewer (as Adam's kernel); step.powers[0]: beta2 ** t
    c.rs = sqrt(1.0 - step.powers[0])
    c.eps = a.eps * c.rs
    return c


cdef inline void schedulefree_update(ScheduleFreeCoeffs c, Py_ssize_t i, floating* params,
                                     const floating* grad, floating* z_,
                                     floating* exp_avg_sq) noexcept nogil:
    cdef floating g = grad[i]
    cdef floating y = params[i]
    cdef floating z = z_[i]
    cdef floating v
    if c.adaptive:
        v = exp_avg_sq[i] * <floating>c.beta2 + <floating>c.one_minus_beta2 * g * g
        exp_avg_sq[i] = v
        g = g * <floating>c.rs / (_sqrt(v) + <floating>c.eps)
    if c.decay:
        g = g + <floating>c.weight_decay * y
    # y = lerp(y, z, ckp1) as torch computes it, then the step
    if c.small_ckp1:
        y = y + <floating>c.ckp1 * (z - y)
    else:
        y = z - (z - y) * (<floating>1 - <floating>c.ckp1)
    params[i] = y + <floating>c.y_step * g
    z_[i] = z - <floating>c.lr * g


cdef void _schedulefree_project(ScheduleFreeCoeffs c, floating* y, floating* z,
                                const floating* lo, const floating* hi,
                                Py_ssize_t n) noexcept nogil:
    # Projected schedule-free (the drivers' bounds): z_t = P(z_t), and x_t and y_t, convex
    # combinations of the z's, follow: moving z_t by d moves x_t by c_t d and y_t =
    # (1 - beta) z_t + beta x_t by (1 - beta + beta c_t) d. x and y then stay in the box.
    cdef Py_ssize_t i
    cdef floating zi, d
    cdef floating pull = <floating>c.pull
    for i in range(n):
        zi = z[i]
        if zi < lo[i]:
            zi = lo[i]
        elif zi > hi[i]:
            zi = hi[i]
        d = zi - z[i]
        if d != 0:
            z[i] = zi
            y[i] = y[i] + pull * d


cdef inline void schedulefree_project(ScheduleFreeCoeffs c, bint single, void* params,
                                      void** state, const void* lo, const void* hi,
                                      Py_ssize_t n) noexcept nogil:
    if single:
        _schedulefree_project(c, <float*>params, <float*>state[0], <const float*>lo,
                              <const float*>hi, n)
    else:
        _schedulefree_project(c, <double*>params, <double*>state[0], <const double*>lo,
                              <const double*>hi, n)


# ---------------------------------------------------------------------------------------------
# axpy: y += a * x, the practical speed limit of an in-place update (read two arrays, write
# one), run by the same skeleton as the rules. Only the benchmark (fastopt/_bench.py) uses it;
# it is no rule (not declared: Rule cannot make one).

ctypedef struct AxpyCoeffs:
    double a


cdef inline void axpy_update(AxpyCoeffs c, Py_ssize_t i, floating* y,
                             const floating* x) noexcept nogil:
    y[i] = y[i] + <floating>c.a * x[i]


# =============================================================================================
# Registries: one line per rule in each.

ctypedef fused Coeffs:
    SGDCoeffs
    AdagradCoeffs
    RMSpropCoeffs
    AdadeltaCoeffs
    AdamCoeffs
    AdamaxCoeffs
    NAdamCoeffs
    RAdamCoeffs
    LionCoeffs
    RpropCoeffs
    ASGDCoeffs
    ASGDStreamCoeffs
    ScheduleFreeCoeffs
    AxpyCoeffs


cdef inline void _update(Coeffs c, Py_ssize_t i, floating* p, const floating* g,
                         floating* s0, floating* s1, floating* s2) noexcept nogil:
    # (compile-time choice: each specialisation keeps one line)
    if Coeffs is SGDCoeffs: sgd_update(c, i, p, g, s0)
    elif Coeffs is AdagradCoeffs: adagrad_update(c, i, p, g, s0)
    elif Coeffs is RMSpropCoeffs: rmsprop_update(c, i, p, g, s0, s1, s2)
    elif Coeffs is AdadeltaCoeffs: adadelta_update(c, i, p, g, s0, s1)
    elif Coeffs is AdamCoeffs: adam_update(c, i, p, g, s0, s1, s2)
    elif Coeffs is AdamaxCoeffs: adamax_update(c, i, p, g, s0, s1)
    elif Coeffs is NAdamCoeffs: nadam_update(c, i, p, g, s0, s1)
    elif Coeffs is RAdamCoeffs: radam_update(c, i, p, g, s0, s1)
    elif Coeffs is LionCoeffs: lion_update(c, i, p, g, s0)
    elif Coeffs is RpropCoeffs: rprop_update(c, i, p, g, s0, s1)
    elif Coeffs is ASGDCoeffs: asgd_update(c, i, p, g, s0)
    elif Coeffs is ScheduleFreeCoeffs: schedulefree_update(c, i, p, g, s0, s1)
    elif Coeffs is AxpyCoeffs: axpy_update(c, i, p, g)


cdef void _apply(const UpdateRule* r, floating* p, const floating* g, void** s,
                 Py_ssize_t n, const RuleStep* step, int n_threads) noexcept nogil:
    # The kind is read once per call, never inside a loop.
    cdef ASGDStreamCoeffs asgd
    if r.kind == RULE_SGD: _run(sgd_coefficients(r, step), p, g, s, n, n_threads)
    elif r.kind == RULE_ADAGRAD: _run(adagrad_coefficients(r, step), p, g, s, n, n_threads)
    elif r.kind == RULE_RMSPROP: _run(rmsprop_coefficients(r, step), p, g, s, n, n_threads)
    elif r.kind == RULE_ADADELTA: _run(adadelta_coefficients(r, step), p, g, s, n, n_threads)
    elif r.kind == RULE_ADAM: _run(adam_coefficients(r, step), p, g, s, n, n_threads)
    elif r.kind == RULE_ADAMAX: _run(adamax_coefficients(r, step), p, g, s, n, n_threads)
    elif r.kind == RULE_NADAM: _run(nadam_coefficients(r, step), p, g, s, n, n_threads)
    elif r.kind == RULE_RADAM: _run(radam_coefficients(r, step), p, g, s, n, n_threads)
    elif r.kind == RULE_LION: _run(lion_coefficients(r, step), p, g, s, n, n_threads)
    elif r.kind == RULE_RPROP: _run(rprop_coefficients(r, step), p, g, s, n, n_threads)
    elif r.kind == RULE_ASGD:
        asgd.asgd = asgd_coefficients(r, step)
        if asgd_streams(asgd.asgd, n, sizeof(floating)):
            _run(asgd, p, g, s, n, n_threads)
        else:
            _run(asgd.asgd, p, g, s, n, n_threads)
    elif r.kind == RULE_ADAFACTOR:  # (not elementwise: a vector, the variance in slot 2)
        adafactor_vector(adafactor_coefficients(r, step), p, g, <floating*>s[2], n, n_threads)
    elif r.kind == RULE_SGD_SCHEDULEFREE:
        _run(sgd_schedulefree_coefficients(r, step), p, g, s, n, n_threads)
    elif r.kind == RULE_ADAMW_SCHEDULEFREE:
        _run(adamw_schedulefree_coefficients(r, step), p, g, s, n, n_threads)


cdef inline void _advance(const UpdateRule* r, RuleStep* step) noexcept nogil:
    # The rules with running scalars (declared with ``scalars=``), one line each: once per
    # update, before it (fastopt._kernels.advance_rule).
    if r.kind == RULE_NADAM: nadam_advance(r, step)
    elif r.kind == RULE_SGD_SCHEDULEFREE: sgd_schedulefree_advance(r, step)
    elif r.kind == RULE_ADAMW_SCHEDULEFREE: adamw_schedulefree_advance(r, step)


cdef void _project(const UpdateRule* r, const RuleStep* step, bint single, void* params,
                   void** state, const void* lo, const void* hi, Py_ssize_t n) noexcept nogil:
    # The rules whose state holds points that must stay in the drivers' bounds (after the
    # update of update ``step``, before the iterate's own projection), one line each:
    # schedule-free's z (fastopt._kernels.project_rule).
    if r.kind == RULE_SGD_SCHEDULEFREE:
        schedulefree_project(sgd_schedulefree_coefficients(r, step), single, params, state,
                             lo, hi, n)
    elif r.kind == RULE_ADAMW_SCHEDULEFREE:
        schedulefree_project(adamw_schedulefree_coefficients(r, step), single, params, state,
                             lo, hi, n)


# =============================================================================================
# The skeleton: threads, chunks and the loop, once for every rule.

cdef inline Py_ssize_t _n_chunks(Py_ssize_t n, int n_threads) noexcept nogil:
    # One chunk (no OpenMP region at all) in a forked child: see src_c/fastopt_openmp.h.
    n_threads = fastopt_thread_limit(n_threads)
    return n_threads if (n_threads > 1 and n >= PARALLEL_THRESHOLD) else 1


cdef inline Py_ssize_t _chunk_bound(Py_ssize_t c, Py_ssize_t n, Py_ssize_t n_chunks) noexcept nogil:
    """Start of chunk ``c``: chunks are equal, rounded up to 16 elements (64-byte lines)."""
    cdef Py_ssize_t size = ((n + n_chunks - 1) // n_chunks + 15) & ~(<Py_ssize_t>15)
    cdef Py_ssize_t start = c * size
    return start if start < n else n


cdef void _range(const Coeffs* coefficients, floating* params, const floating* grad,
                 floating* s0, floating* s1, floating* s2, Py_ssize_t start,
                 Py_ssize_t end) noexcept nogil:
    # One C function per (rule, dtype). The coefficients arrive by address (no copy of the
    # struct per call, which the tiny problems of the minimize loops pay for) and are copied
    # into a local first: gcc then keeps its fields in registers as loop invariants and
    # unswitches on its flags (read through the pointer inside the loop, where any store to
    # params might change them, SGD's momentum loops stayed scalar: 3-7x slower).
    cdef Coeffs c = coefficients[0]
    cdef Py_ssize_t i
    if Coeffs is ASGDStreamCoeffs:  # (a loop of its own, in C: streaming stores)
        asgd_stream_range(c, params, grad, s0, start, end)
    else:
        for i in range(start, end):
            _update(c, i, params, grad, s0, s1, s2)


cdef inline void _run(Coeffs c, floating* params, const floating* grad, void** state,
                      Py_ssize_t n, int n_threads) noexcept nogil:
    """Update ``n`` elements: serially, or in ``n_threads`` contiguous chunks."""
    cdef floating* s0 = <floating*>state[0]
    cdef floating* s1 = <floating*>state[1]
    cdef floating* s2 = <floating*>state[2]
    cdef Py_ssize_t k, n_chunks = _n_chunks(n, n_threads)
    cdef fastopt_fpcr bits
    cdef fastopt_fpenv env
    if n_chunks == 1:
        _range(&c, params, grad, s0, s1, s2, 0, n)
        return
    bits = fastopt_flush_bits()
    for k in prange(n_chunks, schedule="static", num_threads=n_chunks):
        env = fastopt_follow_begin(bits)
        _range(&c, params, grad, s0, s1, s2, _chunk_bound(k, n, n_chunks),
               _chunk_bound(k + 1, n, n_chunks))
        fastopt_fpenv_restore(env)


# ---------------------------------------------------------------------------------------------
# The C-level entries

cdef void apply_rule_impl(const UpdateRule* rule, bint single, void* params,
                          const void* grad, void** state, Py_ssize_t n, const RuleStep* step,
                          int n_threads) noexcept nogil:
    if single:
        _apply(rule, <float*>params, <const float*>grad, state, n, step, n_threads)
    else:
        _apply(rule, <double*>params, <const double*>grad, state, n, step, n_threads)


cdef inline void _range_one(const Coeffs* c, const ArrayRef* a, floating* kind) noexcept nogil:
    # One whole array of a list, serially (``kind``: a typed NULL, only its type is used).
    _range(c, <floating*>a.params, <const floating*>a.grad, <floating*>a.state[0],
           <floating*>a.state[1], <floating*>a.state[2], 0, a.size)


cdef void _run_list(Coeffs c, const ArrayRef* arrays, Py_ssize_t n,
                    floating* kind) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        _range_one(&c, &arrays[i], kind)


cdef void _apply_list(const UpdateRule* r, const ArrayRef* arrays, Py_ssize_t n,
                      floating* kind) noexcept nogil:
    # ``_apply`` with one thread on each of n arrays of one dtype that share one RuleStep: the
    # coefficients (Adam's bias corrections, NAdam's pow()s) are computed once for all of
    # them, and each array is one call of the loop. The same values as ``_apply`` per array.
    cdef const RuleStep* step = arrays[0].step
    cdef ASGDStreamCoeffs asgd
    cdef Py_ssize_t i
    if r.kind == RULE_SGD: _run_list(sgd_coefficients(r, step), arrays, n, kind)
    elif r.kind == RULE_ADAGRAD: _run_list(adagrad_coefficients(r, step), arrays, n, kind)
    elif r.kind == RULE_RMSPROP: _run_list(rmsprop_coefficients(r, step), arrays, n, kind)
    elif r.kind == RULE_ADADELTA: _run_list(adadelta_coefficients(r, step), arrays, n, kind)
    elif r.kind == RULE_ADAM: _run_list(adam_coefficients(r, step), arrays, n, kind)
    elif r.kind == RULE_ADAMAX: _run_list(adamax_coefficients(r, step), arrays, n, kind)
    elif r.kind == RULE_NADAM: _run_list(nadam_coefficients(r, step), arrays, n, kind)
    elif r.kind == RULE_RADAM: _run_list(radam_coefficients(r, step), arrays, n, kind)
    elif r.kind == RULE_LION: _run_list(lion_coefficients(r, step), arrays, n, kind)
    elif r.kind == RULE_RPROP: _run_list(rprop_coefficients(r, step), arrays, n, kind)
    elif r.kind == RULE_ASGD:
        asgd.asgd = asgd_coefficients(r, step)
        for i in range(n):
            if asgd_streams(asgd.asgd, arrays[i].size, sizeof(floating)):
                _range_one(&asgd, &arrays[i], kind)
            else:
                _range_one(&asgd.asgd, &arrays[i], kind)
    elif r.kind == RULE_SGD_SCHEDULEFREE:
        _run_list(sgd_schedulefree_coefficients(r, step), arrays, n, kind)
    elif r.kind == RULE_ADAMW_SCHEDULEFREE:
        _run_list(adamw_schedulefree_coefficients(r, step), arrays, n, kind)
    else:  # Adafactor (not elementwise): each array as apply_rule runs it
        for i in range(n):
            _apply(r, <floating*>arrays[i].params, <const floating*>arrays[i].grad,
                   <void**>arrays[i].state, arrays[i].size, step, 1)


cdef void apply_rule_list_impl(const UpdateRule* rule, const ArrayRef* arrays,
                               Py_ssize_t n) noexcept nogil:
    # Runs of consecutive arrays of one dtype and one RuleStep go through _apply_list together.
    cdef Py_ssize_t lo = 0, hi
    while lo < n:
        hi = lo + 1
        while (hi < n and arrays[hi].single == arrays[lo].single
               and arrays[hi].step == arrays[lo].step):
            hi += 1
        if arrays[lo].single:
            _apply_list(rule, arrays + lo, hi - lo, <float*>NULL)
        else:
            _apply_list(rule, arrays + lo, hi - lo, <double*>NULL)
        lo = hi


cdef void axpy_step(floating* y, const floating* x, double a, Py_ssize_t n,
                    int n_threads) noexcept nogil:
    cdef void* no_state[MAX_STATE]
    cdef AxpyCoeffs c
    no_state[0] = no_state[1] = no_state[2] = NULL
    c.a = a
    _run(c, y, x, no_state, n, n_threads)
