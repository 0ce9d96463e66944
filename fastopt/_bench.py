"""``python -m fastopt bench``: fastopt vs NumPy vs torch, side by side, in one process.

For each update rule, dtype, size and thread count, every column -- fastopt, NumPy written
plainly, NumPy with ``out=`` (no temporaries), and torch.optim's single-tensor, foreach and
fused CPU paths when torch is importable -- makes one step per round, in turn, so that machine
noise hits all of them alike. The table gives fastopt's median time per step with its
interquartile range, the speed-up over each baseline (median / median), and fastopt's
effective bandwidth (the least bytes the rule must move, over its time) as a fraction of the
same run's in-place axpy bandwidth (``y += a * x`` compiled, same size and threads), the
practical limit of an in-place update.

Every column runs the optimizer's own hyperparameters (``opt.hyperparameters``) on the same
data. "NumPy plain" *is* the reference the kernels are tested against
(``fastopt._reference.<method>``), so it cannot drift from them; the ``out=`` rules below are
hand-written for speed and checked step for step against the reference in
tests/test_baselines.py. A rule without one shows "-" in that column.
"""

import contextlib
import importlib
import math
import os
import time
from typing import Callable, NamedTuple, Optional

import numpy as np

from fastopt import _reference
from fastopt._kernels import axpy, kernel_isa
from fastopt._openmp import effective_n_threads
from fastopt._registry import RECORDS

# The rows of the table: (label, optimizer class, kwargs, torch.optim class name or None),
# one per optimizer record with bench settings (fastopt/_registry.py). Everything else a row
# needs is derived from the class: its method name, hence its reference and its out= rule,
# its hyperparameters, the state arrays it moves, torch's paths for it.
ROWS = [(record.cls.__name__, record.cls, dict(record.bench), record.torch)
        for record in RECORDS if record.bench is not None]
RULES = {row[0]: row for row in ROWS}
# The rule column's width: the longest label and a space ("AdamWScheduleFree"), at least 13.
_LABEL = max(13, 1 + max(map(len, RULES)))

COLUMNS = ("fastopt", "NumPy plain", "NumPy out=", "torch single-tensor", "torch foreach",
           "torch fused")
_TORCH_FLAGS = {"torch single-tensor": {"foreach": False}, "torch foreach": {"foreach": True},
                "torch fused": {"fused": True}}


# -- NumPy with out=: one step with no temporaries ------------------------------------------
# Same call as the reference, ``rule(p, g, state, t, **hyperparameters)``, and the same
# operations in the same order (so the same bits), but updating ``p`` and the state in place
# through scratch arrays ("_"-prefixed keys) made on the first step, outside the timing.

def _scratch(state, p, *names):
    for name in names:
        state[name] = np.empty_like(p)


def _effective_grad(p, g, state, weight_decay, maximize):
    """``g``, or the scratch "_g" holding -g and/or g + weight_decay * p (torch's order)."""
    if weight_decay != 0:
        d = np.multiply(p, weight_decay, out=state["_g"])
        return np.subtract(d, g, out=d) if maximize else np.add(d, g, out=d)
    return np.negative(g, out=state["_g"]) if maximize else g


def sgd_out(p, g, state, t, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """SGD (plain, momentum, Nesterov) with ``out=``."""
    if t == 1:
        _scratch(state, p, "_tmp", "_g")
        if momentum != 0:
            _scratch(state, p, "momentum_buffer")
    g = _effective_grad(p, g, state, weight_decay, maximize)
    tmp = state["_tmp"]
    if momentum != 0:
        b = state["momentum_buffer"]
        if t == 1:
            np.copyto(b, g)
        else:
            b *= momentum
            b += g if dampening == 0 else np.multiply(g, 1 - dampening, out=tmp)  # (1 * g is g)
        if nesterov:
            np.multiply(b, momentum, out=tmp)
            g = np.add(g, tmp, out=tmp)
        else:
            g = b
    p -= np.multiply(g, lr, out=tmp)
    return p


def adagrad_out(p, g, state, t, lr, lr_decay, weight_decay, initial_accumulator_value, eps,
                maximize):
    """Adagrad with ``out=``."""
    if t == 1:
        state["sum"] = np.full_like(p, initial_accumulator_value)
        _scratch(state, p, "_tmp", "_tmp2", "_g")
    g = _effective_grad(p, g, state, weight_decay, maximize)
    total, tmp, tmp2 = state["sum"], state["_tmp"], state["_tmp2"]
    total += np.multiply(g, g, out=tmp)
    np.sqrt(total, out=tmp)
    tmp += eps
    np.multiply(g, lr / (1 + (t - 1) * lr_decay), out=tmp2)
    p -= np.divide(tmp2, tmp, out=tmp2)
    return p


def rmsprop_out(p, g, state, t, lr, alpha, eps, weight_decay, momentum, centered, maximize):
    """RMSprop (plain, centered, with momentum) with ``out=``."""
    if t == 1:
        state["square_avg"] = np.zeros_like(p)
        if centered:
            state["grad_avg"] = np.zeros_like(p)
        if momentum > 0:
            state["momentum_buffer"] = np.zeros_like(p)
        _scratch(state, p, "_tmp", "_tmp2", "_g")
    g = _effective_grad(p, g, state, weight_decay, maximize)
    v, tmp, tmp2 = state["square_avg"], state["_tmp"], state["_tmp2"]
    v *= alpha
    np.multiply(g, 1 - alpha, out=tmp)
    v += np.multiply(tmp, g, out=tmp)
    if centered:
        ga = state["grad_avg"]
        ga *= alpha
        ga += np.multiply(g, 1 - alpha, out=tmp)
        np.multiply(ga, ga, out=tmp)
        v = np.subtract(v, tmp, out=tmp)
    avg = np.sqrt(v, out=tmp)
    avg += eps
    if momentum > 0:
        b = state["momentum_buffer"]
        b *= momentum
        b += np.divide(g, avg, out=tmp)
        p -= np.multiply(b, lr, out=tmp)
    else:
        np.multiply(g, lr, out=tmp2)
        p -= np.divide(tmp2, avg, out=tmp2)
    return p


def adadelta_out(p, g, state, t, lr, rho, eps, weight_decay, maximize):
    """Adadelta with ``out=``."""
    if t == 1:
        state["square_avg"] = np.zeros_like(p)
        state["acc_delta"] = np.zeros_like(p)
        _scratch(state, p, "_tmp", "_delta", "_g")
    g = _effective_grad(p, g, state, weight_decay, maximize)
    v, u, tmp, delta = state["square_avg"], state["acc_delta"], state["_tmp"], state["_delta"]
    v *= rho
    np.multiply(g, 1 - rho, out=tmp)
    v += np.multiply(tmp, g, out=tmp)
    np.sqrt(np.add(u, eps, out=delta), out=delta)
    delta /= np.sqrt(np.add(v, eps, out=tmp), out=tmp)
    delta *= g
    u *= rho
    np.multiply(delta, 1 - rho, out=tmp)
    u += np.multiply(tmp, delta, out=tmp)
    p -= np.multiply(delta, lr, out=tmp)
    return p


def adam_out(p, g, state, t, lr, betas, eps, weight_decay, amsgrad, maximize,
             decoupled_weight_decay=False):
    """Adam (AdamW with decoupled_weight_decay) with ``out=``."""
    beta1, beta2 = betas
    if t == 1:
        state["exp_avg"] = np.zeros_like(p)
        state["exp_avg_sq"] = np.zeros_like(p)
        if amsgrad:
            state["max_exp_avg_sq"] = np.zeros_like(p)
        _scratch(state, p, "_tmp", "_tmp2", "_g")
    if decoupled_weight_decay:
        if weight_decay != 0:  # (p * 1.0 is p)
            p *= 1 - lr * weight_decay
        g = _effective_grad(p, g, state, 0, maximize)
    else:
        g = _effective_grad(p, g, state, weight_decay, maximize)
    m, v, tmp, tmp2 = state["exp_avg"], state["exp_avg_sq"], state["_tmp"], state["_tmp2"]
    m *= beta1
    m += np.multiply(g, 1 - beta1, out=tmp)
    v *= beta2
    np.multiply(g, 1 - beta2, out=tmp)
    v += np.multiply(tmp, g, out=tmp)
    if amsgrad:
        v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
    np.sqrt(v, out=tmp)
    tmp /= math.sqrt(1 - beta2**t)
    tmp += eps
    np.multiply(m, lr / (1 - beta1**t), out=tmp2)
    p -= np.divide(tmp2, tmp, out=tmp2)
    return p


adamw_out = adam_out  # (AdamW's hyperparameters hold decoupled_weight_decay=True)


def adamax_out(p, g, state, t, lr, betas, eps, weight_decay, maximize):
    """Adamax with ``out=``."""
    beta1, beta2 = betas
    if t == 1:
        state["exp_avg"] = np.zeros_like(p)
        state["exp_inf"] = np.zeros_like(p)
        _scratch(state, p, "_tmp", "_g")
    g = _effective_grad(p, g, state, weight_decay, maximize)
    m, u, tmp = state["exp_avg"], state["exp_inf"], state["_tmp"]
    m *= beta1
    m += np.multiply(g, 1 - beta1, out=tmp)
    u *= beta2
    np.add(np.abs(g, out=tmp), eps, out=tmp)
    np.maximum(u, tmp, out=u)  # (NaN propagates, as in the reference)
    np.divide(m, u, out=tmp)
    tmp *= lr / (1 - beta1**t)
    p -= tmp
    return p


def nadam_out(p, g, state, t, lr, betas, eps, weight_decay, momentum_decay,
              decoupled_weight_decay, maximize):
    """NAdam with ``out=``."""
    beta1, beta2 = betas
    if t == 1:
        state["exp_avg"] = np.zeros_like(p)
        state["exp_avg_sq"] = np.zeros_like(p)
        state["mu_product"] = 1.0
        _scratch(state, p, "_tmp", "_tmp2", "_g")
    if decoupled_weight_decay:
        if weight_decay != 0:  # (p * 1.0 is p)
            p *= 1 - lr * weight_decay
        g = _effective_grad(p, g, state, 0, maximize)
    else:
        g = _effective_grad(p, g, state, weight_decay, maximize)
    mu = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    mu_product = state["mu_product"] = state["mu_product"] * mu
    m, v, tmp, tmp2 = state["exp_avg"], state["exp_avg_sq"], state["_tmp"], state["_tmp2"]
    m *= beta1
    m += np.multiply(g, 1 - beta1, out=tmp)
    v *= beta2
    np.multiply(g, 1 - beta2, out=tmp)
    v += np.multiply(tmp, g, out=tmp)
    np.divide(v, 1 - beta2**t, out=tmp)
    np.sqrt(tmp, out=tmp)
    tmp += eps
    np.multiply(g, lr * (1 - mu) / (1 - mu_product), out=tmp2)
    p -= np.divide(tmp2, tmp, out=tmp2)
    np.multiply(m, lr * mu_next / (1 - mu_product * mu_next), out=tmp2)
    p -= np.divide(tmp2, tmp, out=tmp2)
    return p


def radam_out(p, g, state, t, lr, betas, eps, weight_decay, decoupled_weight_decay, maximize):
    """RAdam with ``out=``."""
    beta1, beta2 = betas
    if t == 1:
        state["exp_avg"] = np.zeros_like(p)
        state["exp_avg_sq"] = np.zeros_like(p)
        _scratch(state, p, "_tmp", "_tmp2", "_g")
    if decoupled_weight_decay:
        if weight_decay != 0:  # (p * 1.0 is p)
            p *= 1 - lr * weight_decay
        g = _effective_grad(p, g, state, 0, maximize)
    else:
        g = _effective_grad(p, g, state, weight_decay, maximize)
    m, v, tmp, tmp2 = state["exp_avg"], state["exp_avg_sq"], state["_tmp"], state["_tmp2"]
    m *= beta1
    m += np.multiply(g, 1 - beta1, out=tmp)
    v *= beta2
    np.multiply(g, 1 - beta2, out=tmp)
    v += np.multiply(tmp, g, out=tmp)
    bias_correction1 = 1 - beta1**t
    bias_correction2 = 1 - beta2**t
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * beta2**t / bias_correction2
    np.divide(m, bias_correction1, out=tmp)
    tmp *= lr
    if rho_t > 5:
        rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                         / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        np.sqrt(v, out=tmp2)
        tmp2 += eps
        np.divide(math.sqrt(bias_correction2), tmp2, out=tmp2)
        tmp *= tmp2
        tmp *= rect
    p -= tmp
    return p


def lion_out(p, g, state, t, lr, betas, weight_decay, maximize):
    """Lion with ``out=``."""
    beta1, beta2 = betas
    if t == 1:
        state["exp_avg"] = np.zeros_like(p)
        _scratch(state, p, "_tmp", "_tmp2", "_g")
    g = _effective_grad(p, g, state, 0, maximize)
    m, tmp, tmp2 = state["exp_avg"], state["_tmp"], state["_tmp2"]
    np.multiply(m, beta1, out=tmp)
    tmp += np.multiply(g, 1 - beta1, out=tmp2)
    np.sign(tmp, out=tmp)
    if weight_decay != 0:
        tmp += np.multiply(p, weight_decay, out=tmp2)
    m *= beta2
    m += np.multiply(g, 1 - beta2, out=tmp2)
    tmp *= lr
    p -= tmp
    return p



def rprop_out(p, g, state, t, lr, etas, step_sizes, maximize):
    """Rprop with ``out=``."""
    etaminus, etaplus = etas
    if t == 1:
        state["prev"] = np.zeros_like(p)
        state["step_size"] = np.full_like(p, lr)
        _scratch(state, p, "_tmp", "_g")
        state["_flip"] = np.empty(p.shape, dtype=bool)
        state["_mask"] = np.empty(p.shape, dtype=bool)
    g = _effective_grad(p, g, state, 0, maximize)
    prev, step_size, tmp = state["prev"], state["step_size"], state["_tmp"]
    flip, mask = state["_flip"], state["_mask"]
    np.multiply(g, prev, out=tmp)
    np.greater(tmp, 0, out=mask)
    np.less(tmp, 0, out=flip)
    tmp.fill(1)  # the factor: 1 where g * prev is 0 or NaN (torch.sign(NaN) is 0)
    np.copyto(tmp, etaplus, where=mask)
    np.copyto(tmp, etaminus, where=flip)
    step_size *= tmp
    np.clip(step_size, *step_sizes, out=step_size)
    np.copyto(prev, g)
    np.copyto(prev, 0, where=flip)
    np.subtract(np.greater(prev, 0, out=mask), np.less(prev, 0, out=flip), out=tmp,
                dtype=tmp.dtype)  # torch.sign(prev)
    p -= np.multiply(tmp, step_size, out=tmp)
    return p


def asgd_out(p, g, state, t, lr, lambd, alpha, t0, weight_decay, maximize):
    """ASGD with ``out=``."""
    if t == 1:
        state["ax"] = np.zeros_like(p)
        _scratch(state, p, "_tmp", "_g")
    eta, mu = _reference.asgd_eta_mu(t, lr, lambd, alpha, t0)
    g = _effective_grad(p, g, state, weight_decay, maximize)
    ax, tmp = state["ax"], state["_tmp"]
    p *= 1 - lambd * eta
    p -= np.multiply(g, eta, out=tmp)
    if mu == 1:
        np.copyto(ax, p)
    else:
        np.subtract(p, ax, out=tmp)
        tmp *= mu
        ax += tmp
    return p


def adafactor_out(p, g, state, t, lr, beta2_decay, eps, d, weight_decay, maximize):
    """Adafactor with ``out=`` (a vector: the unfactored path; a parameter of two or more
    dimensions runs the reference)."""
    if p.ndim >= 2:
        return _reference.adafactor(p, g, state, t, lr, beta2_decay, eps, d, weight_decay,
                                    maximize)
    eps1, eps2 = eps
    if eps1 is None:
        eps1 = np.finfo(p.dtype).eps
    if t == 1:
        state["variance"] = np.zeros_like(p)
        _scratch(state, p, "_tmp", "_g")
        state["_sq"] = np.empty(p.shape, np.float64)
    if p.size == 0:
        return p
    if maximize:
        g = np.negative(g, out=state["_g"])
    v, tmp, sq = state["variance"], state["_tmp"], state["_sq"]
    rho = min(lr, 1 / t**0.5)
    alpha = max(eps2, np.sqrt(np.sum(np.square(p, out=sq, dtype=np.float64)))
                / p.size**0.5) * rho
    if weight_decay != 0:
        p *= p.dtype.type(1 - lr * weight_decay)
    w = p.dtype.type(t**beta2_decay)
    np.multiply(g, g, out=tmp)
    if abs(w) < 0.5:  # torch's lerp, as the reference
        tmp -= v
        tmp *= w
        v += tmp
    else:
        np.subtract(tmp, v, out=v)
        v *= 1 - w
        np.subtract(tmp, v, out=v)
    np.maximum(v, p.dtype.type(eps1 * eps1), out=tmp)
    np.sqrt(tmp, out=tmp)
    np.divide(1, tmp, out=tmp)
    tmp *= g
    denom = max(1.0, np.sqrt(np.sum(np.square(tmp, out=sq, dtype=np.float64)))
                / (tmp.size**0.5 * d))
    tmp *= p.dtype.type(-alpha / denom)
    p += tmp
    return p


def _schedule_free_out(p, g, state, lr, ckp1, beta):
    """Schedule-free's y and z from the step's direction ``g``, in place (the reference's
    torch.lerp formulas)."""
    z, tmp = state["z"], state["_tmp"]
    w = p.dtype.type(ckp1)
    np.subtract(z, p, out=tmp)
    if abs(w) < 0.5:
        tmp *= w
        p += tmp
    else:
        tmp *= 1 - w
        np.subtract(z, tmp, out=p)
    p += np.multiply(g, lr * (beta * (1 - ckp1) - 1), out=tmp)
    z -= np.multiply(g, lr, out=tmp)
    return p


def sgdschedulefree_out(p, g, state, t, lr, momentum, weight_decay, warmup_steps, r,
                        weight_lr_power):
    """Schedule-free SGD with ``out=``."""
    if t == 1:
        state["z"] = p.copy()
        _scratch(state, p, "_tmp", "_g")
    lr, ckp1 = _reference._schedule_free_weight(state, t, lr, warmup_steps, r,
                                                weight_lr_power)
    if weight_decay != 0:
        g = np.add(g, np.multiply(p, weight_decay, out=state["_g"]), out=state["_g"])
    return _schedule_free_out(p, g, state, lr, ckp1, momentum)


def adamwschedulefree_out(p, g, state, t, lr, betas, eps, weight_decay, warmup_steps, r,
                          weight_lr_power):
    """Schedule-free AdamW with ``out=``."""
    beta1, beta2 = betas
    if t == 1:
        state["z"] = p.copy()
        state["exp_avg_sq"] = np.zeros_like(p)
        _scratch(state, p, "_tmp", "_g")
    lr, ckp1 = _reference._schedule_free_weight(state, t, lr, warmup_steps, r,
                                                weight_lr_power)
    v, tmp, d = state["exp_avg_sq"], state["_tmp"], state["_g"]
    v *= beta2
    np.multiply(g, 1 - beta2, out=tmp)
    v += np.multiply(tmp, g, out=tmp)
    np.sqrt(np.divide(v, 1 - beta2**t, out=tmp), out=tmp)
    tmp += eps
    np.divide(g, tmp, out=d)
    if weight_decay != 0:
        d += np.multiply(p, weight_decay, out=tmp)
    return _schedule_free_out(p, d, state, lr, ckp1, beta1)


# By method name, as the references; every benchmarked optimizer has one (a test checks it).
OUT_RULES = {"gd": sgd_out, "sgd": sgd_out, "momentum": sgd_out, "nag": sgd_out,
             "adagrad": adagrad_out, "rmsprop": rmsprop_out, "adadelta": adadelta_out,
             "adam": adam_out, "adamw": adamw_out, "adamax": adamax_out,
             "radam": radam_out, "lion": lion_out, "rprop": rprop_out, "asgd": asgd_out,
             "adafactor": adafactor_out, "sgdschedulefree": sgdschedulefree_out,
             "adamwschedulefree": adamwschedulefree_out}
OUT_RULES["nadam"] = nadam_out


def method_of(cls):
    """The method name of optimizer class ``cls`` (its record's)."""
    record = getattr(cls, "record", None)
    if record is None or record.cls is not cls:
        raise ValueError(f"{cls.__name__} is no registered optimizer")
    return record.method


def arrays_moved(cls, kwargs):
    """Arrays a step must read or write, element by element: the parameter and the gradient
    read, the parameter written, and each state array the optimizer holds read and written."""
    opt = cls(np.zeros(1), **kwargs)
    opt.step(np.ones(1))
    # (a running scalar, 0-d, is no array of the parameter's size)
    return 3 + 2 * sum(np.ndim(a) > 0 for a in opt.state[0].values())


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


@contextlib.contextmanager
def torch_default_dtype(torch, dtype):
    """torch's default dtype set to ``dtype``'s, then restored. torch keeps some per-step
    scalars as tensors of its default dtype (ASGD's eta and mu, made anew each step): with
    float32 ones a float64 row's torch columns would round their steps."""
    want, previous = getattr(torch, np.dtype(dtype).name), torch.get_default_dtype()
    if want is previous:
        yield
        return
    torch.set_default_dtype(want)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def torch_twin(torch, name):
    """A factory ``twin(params, **kwargs) -> optimizer`` of the torch optimizer a record's
    ``torch`` names: ``torch.optim.<name>``, or ``<package>.<Class>`` for a torch-based
    package (``schedulefree.SGDScheduleFree``, put in train mode as that package requires);
    None where that package is not installed."""
    if "." not in name:
        return getattr(torch.optim, name)
    module, _, attribute = name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attribute)
    except ImportError:
        return None

    def twin(*args, **kwargs):
        opt = cls(*args, **kwargs)
        if hasattr(opt, "train"):  # (schedulefree's optimizers start in eval mode)
            opt.train()
        return opt

    twin.cls = cls
    return twin


class Column(NamedTuple):
    """One implementation of a row: ``step()`` makes one step; ``params()`` returns the
    parameter array as it is now (None for the axpy yardstick); ``grad`` is the gradient it
    steps with."""

    step: Callable[[], object]
    params: Optional[Callable[[], np.ndarray]]
    grad: np.ndarray


class _NumPyRule:
    """A NumPy rule (the reference or an out= rule) stepping its own copy of the data."""

    def __init__(self, rule, hyper, start, grad):
        self.rule, self.hyper, self.grad = rule, hyper, grad
        self.p, self.state, self.t = start.copy(), {}, 0

    def step(self):
        self.t += 1
        self.p = self.rule(self.p, self.grad, self.state, self.t, **self.hyper)

    def params(self):
        return self.p


def column(row, name, start, grad, n_threads, torch=None):
    """The Column ``name`` (one of COLUMNS) of ``row`` on copies of ``start``, its first step
    made (state allocated outside the timing); None where the row has no such baseline (no
    out= rule, no torch twin, no torch here, or a torch path torch refuses)."""
    _, cls, kwargs, torch_name = row
    if name == "fastopt":
        opt = cls(start.copy(), n_threads=n_threads, **kwargs)
        opt.step(grad)
        return Column(lambda: opt.step(grad), lambda: opt.params, grad)
    hyper = cls(np.zeros(1), **kwargs).hyperparameters
    if name.startswith("NumPy"):
        method = method_of(cls)
        rule = (getattr(_reference, method) if name == "NumPy plain"
                else OUT_RULES.get(method))
        if rule is None:
            return None
        numpy_rule = _NumPyRule(rule, hyper, start, grad)
        numpy_rule.step()
        return Column(numpy_rule.step, numpy_rule.params, grad)
    if torch is None or torch_name is None:
        return None
    # torch gets its own gradient: foreach SGD with nesterov adds its momentum buffer into
    # ``.grad`` in place (harmless in training, where backward writes a new one each step),
    # which would change every other column's gradient
    p, g = start.copy(), grad.copy()
    tp = torch.nn.Parameter(torch.from_numpy(p))
    tp.grad = torch.from_numpy(g)
    # The per-step scalars torch keeps as tensors (NAdam's mu_product) take torch's default
    # dtype when its state is made, at this first step: the parameters' dtype, like fastopt's.
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(tp.dtype)
    twin = torch_twin(torch, torch_name)
    if twin is None:
        return None
    try:  # which paths torch has for this rule (fused: few on CPU) is torch's to say
        with torch_default_dtype(torch, p.dtype):
            topt = twin([tp], **hyper, **_TORCH_FLAGS[name])
            topt.step()
    except (TypeError, ValueError, RuntimeError, NotImplementedError):
        return None
    finally:
        torch.set_default_dtype(default_dtype)
    scalar_dtype = getattr(torch, p.dtype.name)

    def step():
        torch.set_num_threads(n_threads)
        if torch.get_default_dtype() is scalar_dtype:  # (run() sets it for the timing)
            topt.step()
        else:
            with torch_default_dtype(torch, p.dtype):
                topt.step()

    return Column(step, lambda: p, g)


def _columns(row, start, grad, n_threads, torch):
    """{name: Column} of every column ``row`` has, all on copies of ``start`` with gradient
    ``grad``, and the compiled axpy yardstick."""
    columns = {}
    for name in COLUMNS:
        col = column(row, name, start, grad, n_threads, torch)
        if col is not None:
            columns[name] = col
    y, x = start.copy(), grad
    columns["axpy"] = Column(lambda: axpy(y, x, 1e-9, n_threads), None, x)
    return columns


def interleaved_times(variants, repeats):
    """{name: array of seconds}: each round runs every variant once, in turn."""
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            began = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - began)
    return {name: np.array(t) for name, t in times.items()}


def run(quick=False, sizes=None, dtypes=None, rules=None, repeats=None, file=None):
    """Run the comparison and print the table; returns the rows as dicts."""
    torch = _torch()
    sizes = sizes or ([2**14, 2**20] if quick else [2**10, 2**14, 2**18, 2**22])
    dtypes = dtypes or (["float32"] if quick else ["float32", "float64"])
    rules = rules or list(RULES)
    repeats = repeats or (5 if quick else 15)
    n_all = effective_n_threads(-1)
    threads = sorted({1, n_all})
    rng = np.random.default_rng(0)
    print(f"fastopt bench: {os.cpu_count()} cpus, kernels {kernel_isa()}, "
          f"torch {'%s' % torch.__version__ if torch else 'not installed'}; median of "
          f"{repeats} interleaved rounds; speed-up = baseline median / fastopt median; "
          f"bw = fastopt's effective bandwidth / axpy's (same size, threads)", file=file)
    header = (f"{'rule':<{_LABEL}}{'dtype':<8}{'size':>6}{'thr':>4}{'fastopt':>11}{'IQR':>19}"
              f"{'vs NumPy':>9}{'vs out=':>8}{'vs torch':>9}{'(path)':>15}{'bw':>6}")
    print(header, file=file)
    print("-" * len(header), file=file)
    rows = []
    for label in rules:
        row = RULES[label]
        moved = arrays_moved(row[1], row[2])
        for dtype in dtypes:
            with (torch_default_dtype(torch, dtype) if torch else contextlib.nullcontext()):
                for size in sizes:
                    for n_threads in threads:
                        grad = rng.standard_normal(size).astype(dtype)
                        start = rng.standard_normal(size).astype(dtype)
                        columns = _columns(row, start, grad, n_threads, torch)
                        t = interleaved_times({k: c.step for k, c in columns.items()},
                                              repeats)
                        rows.append(_row(label, dtype, size, n_threads, t, moved, file))
    return rows


def _row(rule, dtype, size, n_threads, times, moved, file):
    med = {name: float(np.median(t)) for name, t in times.items()}
    q1, q3 = np.percentile(times["fastopt"], [25, 75])
    fast = med["fastopt"]
    torch_paths = {k: v for k, v in med.items() if k.startswith("torch")}
    best_torch = min(torch_paths, key=torch_paths.get) if torch_paths else None
    # bytes moved over time, fastopt's over axpy's (which reads 2 arrays and writes 1)
    bandwidth = (moved / fast) / (3 / med["axpy"])
    out = med.get("NumPy out=")
    row = {"rule": rule, "dtype": dtype, "size": size, "threads": n_threads,
           "fastopt_s": fast, "iqr_s": (float(q1), float(q3)),
           "vs_numpy": med["NumPy plain"] / fast,
           "vs_numpy_out": None if out is None else out / fast,
           "vs_torch_best": med[best_torch] / fast if best_torch else None,
           "torch_best": best_torch, "bandwidth_fraction": bandwidth, "arrays_moved": moved,
           "vs_torch": {k: v / fast for k, v in torch_paths.items()}}
    out_text = f"{'-':>8}" if out is None else f"{row['vs_numpy_out']:>7.1f}x"
    torch_text = (f"{row['vs_torch_best']:>8.2f}x{best_torch[6:]:>15}" if best_torch
                  else f"{'-':>9}{'':>15}")
    print(f"{rule:<{_LABEL}}{dtype:<8}{'2^%d' % int(np.log2(size)):>6}{n_threads:>4}"
          f"{_fmt(fast):>11}  [{_fmt(q1)}, {_fmt(q3)}]".ljust(_LABEL + 43)
          + f"{row['vs_numpy']:>8.1f}x{out_text}{torch_text}"
          f"{bandwidth:>6.2f}", file=file)
    return row


def _fmt(seconds):
    return f"{seconds * 1e3:.3f}ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f}us"
