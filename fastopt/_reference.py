"""Plain NumPy update rules, written to read like the maths in the docstrings: the reference
the kernels are tested against and the "NumPy plain" baseline the benchmarks time.

One function per method name (``fastopt.minimize``'s names: ``gd``, ``sgd``, ``momentum`` and
``nag`` are the one SGD rule), called ``ref(p, g, state, t, **hyperparameters)`` with the
optimizer's own hyperparameter names, so that ``ref(p, g, state, t, **opt.hyperparameters)``
makes the step ``opt`` makes. It takes the parameter, the gradient, a dict of state arrays
(created here on the first step under the optimizer's state names, as torch.optim does), the
step number ``t`` (1 on the first update), and returns the new parameter (``p`` itself is not
modified; ``state`` is updated). Arithmetic stays in the arrays' dtype (NumPy 2 treats Python
floats as "weak" scalars), as in the kernels. Any array shape works: the benchmarks run a
whole batch of problems, one per row, through one call.
"""

import math

import numpy as np


def sgd(p, g, state, t, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """torch.optim.SGD: plain, with momentum, or Nesterov's."""
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    if momentum != 0:
        if t == 1:
            b = g.copy()
        else:
            b = state["momentum_buffer"] * momentum + (1 - dampening) * g
        state["momentum_buffer"] = b
        g = g + momentum * b if nesterov else b
    return p - lr * g


# One rule, four method names (their classes differ only in defaults and checks).
gd = momentum = nag = sgd


def adagrad(p, g, state, t, lr, lr_decay, weight_decay, initial_accumulator_value, eps,
            maximize):
    """torch.optim.Adagrad."""
    if t == 1:
        state["sum"] = np.full_like(p, initial_accumulator_value)
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    clr = lr / (1 + (t - 1) * lr_decay)
    state["sum"] = state["sum"] + g * g
    return p - clr * g / (np.sqrt(state["sum"]) + eps)


def rmsprop(p, g, state, t, lr, alpha, eps, weight_decay, momentum, centered, maximize):
    """torch.optim.RMSprop."""
    if t == 1:
        state["square_avg"] = np.zeros_like(p)
        if centered:
            state["grad_avg"] = np.zeros_like(p)
        if momentum > 0:
            state["momentum_buffer"] = np.zeros_like(p)
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    v = state["square_avg"] * alpha + (1 - alpha) * g * g
    state["square_avg"] = v
    if centered:
        ga = state["grad_avg"] * alpha + (1 - alpha) * g
        state["grad_avg"] = ga
        v = v - ga * ga
    avg = np.sqrt(v) + eps
    if momentum > 0:
        b = state["momentum_buffer"] * momentum + g / avg
        state["momentum_buffer"] = b
        return p - lr * b
    return p - lr * g / avg


def adadelta(p, g, state, t, lr, rho, eps, weight_decay, maximize):
    """torch.optim.Adadelta."""
    if t == 1:
        state["square_avg"] = np.zeros_like(p)
        state["acc_delta"] = np.zeros_like(p)
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    v = state["square_avg"] * rho + (1 - rho) * g * g
    state["square_avg"] = v
    u = state["acc_delta"]
    delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
    state["acc_delta"] = u * rho + (1 - rho) * delta * delta
    return p - lr * delta


def adam(p, g, state, t, lr, betas, eps, weight_decay, amsgrad, maximize,
         decoupled_weight_decay=False):
    """torch.optim.Adam (weight decay added to the gradient, or decoupled as AdamW's)."""
    beta1, beta2 = betas
    if t == 1:
        state["exp_avg"] = np.zeros_like(p)
        state["exp_avg_sq"] = np.zeros_like(p)
        if amsgrad:
            state["max_exp_avg_sq"] = np.zeros_like(p)
    if maximize:
        g = -g
    if decoupled_weight_decay:
        p = p * (1 - lr * weight_decay)
    elif weight_decay != 0:
        g = g + weight_decay * p
    m = state["exp_avg"] * beta1 + (1 - beta1) * g
    v = state["exp_avg_sq"] * beta2 + (1 - beta2) * g * g
    state["exp_avg"], state["exp_avg_sq"] = m, v
    if amsgrad:
        v = np.maximum(state["max_exp_avg_sq"], v)
        state["max_exp_avg_sq"] = v
    step_size = lr / (1 - beta1**t)
    bias_correction2_sqrt = math.sqrt(1 - beta2**t)
    return p - step_size * m / (np.sqrt(v) / bias_correction2_sqrt + eps)


# torch.optim.AdamW: Adam with decoupled_weight_decay=True (fixed in its record).
adamw = adam


def adamax(p, g, state, t, lr, betas, eps, weight_decay, maximize):
    """torch.optim.Adamax."""
    beta1, beta2 = betas
    if t == 1:
        state["exp_avg"] = np.zeros_like(p)
        state["exp_inf"] = np.zeros_like(p)
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    m = state["exp_avg"] * beta1 + (1 - beta1) * g
    u = np.maximum(state["exp_inf"] * beta2, np.abs(g) + eps)  # (NaN propagates, as in torch)
    state["exp_avg"], state["exp_inf"] = m, u
    clr = lr / (1 - beta1**t)
    return p - clr * (m / u)


def nadam(p, g, state, t, lr, betas, eps, weight_decay, momentum_decay, decoupled_weight_decay,
          maximize):
    """torch.optim.NAdam (weight decay added to the gradient, or decoupled)."""
    beta1, beta2 = betas
    if t == 1:
        state["exp_avg"] = np.zeros_like(p)
        state["exp_avg_sq"] = np.zeros_like(p)
        state["mu_product"] = 1.0
    if maximize:
        g = -g
    if weight_decay != 0:
        if decoupled_weight_decay:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
    mu = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    mu_product = state["mu_product"] * mu
    m = state["exp_avg"] * beta1 + (1 - beta1) * g
    v = state["exp_avg_sq"] * beta2 + (1 - beta2) * g * g
    state["exp_avg"], state["exp_avg_sq"], state["mu_product"] = m, v, mu_product
    denom = np.sqrt(v / (1 - beta2**t)) + eps
    p = p - lr * (1 - mu) / (1 - mu_product) * g / denom
    return p - lr * mu_next / (1 - mu_product * mu_next) * m / denom


def radam(p, g, state, t, lr, betas, eps, weight_decay, decoupled_weight_decay, maximize):
    """torch.optim.RAdam: the rectified adaptive step once rho_t > 5, momentum SGD before."""
    beta1, beta2 = betas
    if t == 1:
        state["exp_avg"] = np.zeros_like(p)
        state["exp_avg_sq"] = np.zeros_like(p)
    if maximize:
        g = -g
    if decoupled_weight_decay:
        p = p * (1 - lr * weight_decay)
    elif weight_decay != 0:
        g = g + weight_decay * p
    m = state["exp_avg"] * beta1 + (1 - beta1) * g
    v = state["exp_avg_sq"] * beta2 + (1 - beta2) * g * g
    state["exp_avg"], state["exp_avg_sq"] = m, v
    bias_correction1 = 1 - beta1**t
    bias_correction2 = 1 - beta2**t
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * beta2**t / bias_correction2
    if rho_t > 5:
        rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                         / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        return p - (m / bias_correction1) * lr * (math.sqrt(bias_correction2)
                                                 / (np.sqrt(v) + eps)) * rect
    return p - (m / bias_correction1) * lr


def lion(p, g, state, t, lr, betas, weight_decay, maximize):
    """Lion, Chen et al. 2023, Algorithm 2 (decoupled weight decay); sign(0) = 0."""
    beta1, beta2 = betas
    if t == 1:
        state["exp_avg"] = np.zeros_like(p)
    if maximize:
        g = -g
    m = state["exp_avg"]
    u = np.sign(m * beta1 + (1 - beta1) * g)
    if weight_decay != 0:
        u = u + weight_decay * p
    state["exp_avg"] = m * beta2 + (1 - beta2) * g
    return p - lr * u



def torch_sign(x):
    """torch.sign: (x > 0) - (x < 0), so 0 for NaN (numpy.sign gives NaN)."""
    return (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)


def rprop(p, g, state, t, lr, etas, step_sizes, maximize):
    """torch.optim.Rprop (torch's sign logic: on the first step prev is 0, so the factor is 1;
    a NaN in g * prev, whose torch.sign is 0, also gives 1)."""
    etaminus, etaplus = etas
    if t == 1:
        state["prev"] = np.zeros_like(p)
        state["step_size"] = np.full_like(p, lr)
    if maximize:
        g = -g
    d = g * state["prev"]
    factor = np.where(d > 0, etaplus, np.where(d < 0, etaminus, 1.0)).astype(p.dtype)
    step_size = np.clip(state["step_size"] * factor, *step_sizes)
    g = np.where(d < 0, 0, g)
    state["prev"], state["step_size"] = g, step_size
    return p - torch_sign(g) * step_size

def asgd_eta_mu(t, lr, lambd, alpha, t0):
    """ASGD's rate and averaging weight at step ``t``: torch's state after ``t - 1`` steps
    (lr and 1 before the first)."""
    if t == 1:
        return lr, 1.0
    return lr / ((1 + lambd * lr * (t - 1)) ** alpha), 1 / max(1, (t - 1) - t0)


def asgd(p, g, state, t, lr, lambd, alpha, t0, weight_decay, maximize):
    """torch.optim.ASGD (the averaged iterate in ``state["ax"]``)."""
    if t == 1:
        state["ax"] = np.zeros_like(p)
    eta, mu = asgd_eta_mu(t, lr, lambd, alpha, t0)
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    p = p * (1 - lambd * eta)
    p = p - eta * g
    ax = state["ax"]
    state["ax"] = p.copy() if mu == 1 else ax + (p - ax) * mu
    return p


def adafactor(p, g, state, t, lr, beta2_decay, eps, d, weight_decay, maximize):
    """torch.optim.Adafactor: factored second moments over the last two dimensions of a
    parameter of >= 2 dimensions (``row_var``, ``col_var``), ``variance`` otherwise."""
    eps1, eps2 = eps
    if eps1 is None:
        eps1 = np.finfo(p.dtype).eps
    factored = p.ndim >= 2
    if t == 1:
        if factored:
            state["row_var"] = np.zeros(p.shape[:-1] + (1,), p.dtype)
            state["col_var"] = np.zeros(p.shape[:-2] + (1, p.shape[-1]), p.dtype)
        else:
            state["variance"] = np.zeros_like(p)
    if maximize:
        g = -g
    if p.size == 0:
        return p
    weight = t**beta2_decay  # 1 - beta2_t
    rho = min(lr, 1 / t**0.5)
    alpha = max(eps2, np.sqrt(np.sum(np.square(p, dtype=np.float64))) / p.size**0.5) * rho
    if weight_decay != 0:
        p = p * p.dtype.type(1 - lr * weight_decay)
    w = p.dtype.type(weight)
    if factored:
        g2 = np.square(g, dtype=np.float64)
        row_var = _lerp(state["row_var"], np.mean(g2, axis=-1, keepdims=True).astype(p.dtype), w)
        col_var = _lerp(state["col_var"], np.mean(g2, axis=-2, keepdims=True).astype(p.dtype), w)
        state["row_var"], state["col_var"] = row_var, col_var
        mean = np.mean(row_var.astype(np.float64), axis=-2, keepdims=True).astype(p.dtype)
        var = (row_var * col_var) / np.maximum(mean, p.dtype.type(eps1))
    else:
        state["variance"] = var = _lerp(state["variance"], g * g, w)
    u = (1 / np.sqrt(np.maximum(var, p.dtype.type(eps1 * eps1)))) * g
    denom = max(1.0, np.sqrt(np.sum(np.square(u, dtype=np.float64))) / (u.size**0.5 * d))
    return p + p.dtype.type(-alpha / denom) * u


def _lerp(a, b, w):
    """torch.lerp with a scalar weight (exact at the end its weight is nearer)."""
    return a + w * (b - a) if abs(w) < 0.5 else b - (b - a) * (1 - w)


def _schedule_free_weight(state, t, lr, warmup_steps, r, weight_lr_power):
    """Schedule-free's scalars of update t, in the schedulefree package's order: the scheduled
    learning rate (linear warmup), the running ``lr_max`` and ``weight_sum`` (kept in
    ``state``), and the averaging weight ``ckp1`` of the new point."""
    if t == 1:
        state["weight_sum"], state["lr_max"] = 0.0, -1.0
    lr = lr * (t / warmup_steps if t - 1 < warmup_steps else 1.0)
    lr_max = state["lr_max"] = max(lr, state["lr_max"])
    weight = (t**r) * (lr_max**weight_lr_power)
    weight_sum = state["weight_sum"] = state["weight_sum"] + weight
    ckp1 = weight / weight_sum if weight_sum != 0 else 0.0  # (schedulefree: 0 on 0 / 0)
    return lr, ckp1


def _lerp(a, b, w):
    """torch.lerp(a, b, w) for a scalar weight, its two formulas included."""
    w = np.asarray(w, dtype=a.dtype)[()]
    return a + w * (b - a) if abs(w) < 0.5 else b - (b - a) * (1 - w)


def _schedule_free_y(y, z, g, lr, ckp1, beta):
    """The new y from the step's direction ``g``: y moves toward z, then along g."""
    return _lerp(y, z, ckp1) + (lr * (beta * (1 - ckp1) - 1)) * g


def sgdschedulefree(p, g, state, t, lr, momentum, weight_decay, warmup_steps, r,
                    weight_lr_power):
    """schedulefree.SGDScheduleFree (p is y, the point where gradients are taken)."""
    if t == 1:
        state["z"] = p.copy()
    lr, ckp1 = _schedule_free_weight(state, t, lr, warmup_steps, r, weight_lr_power)
    if weight_decay != 0:
        g = g + weight_decay * p
    z = state["z"]
    state["z"] = z - lr * g
    return _schedule_free_y(p, z, g, lr, ckp1, momentum)


def adamwschedulefree(p, g, state, t, lr, betas, eps, weight_decay, warmup_steps, r,
                      weight_lr_power):
    """schedulefree.AdamWScheduleFree (p is y; weight decay on the normalised gradient)."""
    beta1, beta2 = betas
    if t == 1:
        state["z"] = p.copy()
        state["exp_avg_sq"] = np.zeros_like(p)
    lr, ckp1 = _schedule_free_weight(state, t, lr, warmup_steps, r, weight_lr_power)
    bias_correction2 = 1 - beta2**t
    v = state["exp_avg_sq"] * beta2 + (1 - beta2) * g * g
    state["exp_avg_sq"] = v
    g = g / (np.sqrt(v / bias_correction2) + eps)
    if weight_decay != 0:
        g = g + weight_decay * p
    z = state["z"]
    state["z"] = z - lr * g
    return _schedule_free_y(p, z, g, lr, ckp1, beta1)
