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


def _adam(p, g, state, t, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled):
    beta1, beta2 = betas
    if t == 1:
        state["exp_avg"] = np.zeros_like(p)
        state["exp_avg_sq"] = np.zeros_like(p)
        if amsgrad:
            state["max_exp_avg_sq"] = np.zeros_like(p)
    if maximize:
        g = -g
    if decoupled:
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


def adam(p, g, state, t, lr, betas, eps, weight_decay, amsgrad, maximize):
    """torch.optim.Adam (weight decay added to the gradient)."""
    return _adam(p, g, state, t, lr, betas, eps, weight_decay, amsgrad, maximize, False)


def adamw(p, g, state, t, lr, betas, eps, weight_decay, amsgrad, maximize):
    """torch.optim.AdamW (decoupled weight decay)."""
    return _adam(p, g, state, t, lr, betas, eps, weight_decay, amsgrad, maximize, True)


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
