"""``python -m fastopt bench``: fastopt vs NumPy vs torch, side by side, in one process.

For each update rule, dtype, size and thread count, every variant -- fastopt, NumPy written
plainly, NumPy with ``out=`` (no temporaries), and torch.optim's single-tensor, foreach and
fused CPU paths when torch is importable -- makes one step per round, in turn, so that machine
noise hits all of them alike. The table gives fastopt's median time per step with its
interquartile range, the speed-up over each baseline (median / median), and fastopt's
effective bandwidth (the least bytes the rule must move, over its time) as a fraction of the
same run's in-place axpy bandwidth (``y += a * x`` compiled, same size and threads), the
practical limit of an in-place update.
"""

import os
import time

import numpy as np

from fastopt._adam import Adam, AdamW
from fastopt._adaptive import Adadelta, Adagrad, RMSprop
from fastopt._kernels import axpy, kernel_isa
from fastopt._openmp import effective_n_threads
from fastopt._sgd import SGD

LR = 1e-3


# -- NumPy baselines: one step, written plainly and with out= --------------------------------
# State lives in a dict of arrays; ``t`` is the step number. Defaults are torch's.

def _adam_plain(p, g, s, t, decoupled=False, wd=0.0):
    b1, b2, eps = 0.9, 0.999, 1e-8
    if decoupled:
        p *= 1 - LR * wd
    s["m"] = b1 * s["m"] + (1 - b1) * g
    s["v"] = b2 * s["v"] + (1 - b2) * g * g
    p -= LR / (1 - b1**t) * s["m"] / (np.sqrt(s["v"]) / np.sqrt(1 - b2**t) + eps)


def _adam_out(p, g, s, t, decoupled=False, wd=0.0):
    b1, b2, eps, tmp = 0.9, 0.999, 1e-8, s["tmp"]
    if decoupled:
        p *= 1 - LR * wd
    s["m"] *= b1
    np.multiply(g, 1 - b1, out=tmp)
    s["m"] += tmp
    s["v"] *= b2
    np.multiply(g, g, out=tmp)
    tmp *= 1 - b2
    s["v"] += tmp
    np.sqrt(s["v"], out=tmp)
    tmp /= np.sqrt(1 - b2**t)
    tmp += eps
    np.divide(s["m"], tmp, out=tmp)
    tmp *= LR / (1 - b1**t)
    p -= tmp


def _sgd_plain(p, g, s, t, nesterov=False, mu=0.9):
    s["b"] = mu * s["b"] + g
    p -= LR * (g + mu * s["b"] if nesterov else s["b"])


def _sgd_out(p, g, s, t, nesterov=False, mu=0.9):
    s["b"] *= mu
    s["b"] += g
    if nesterov:
        np.multiply(s["b"], mu, out=s["tmp"])
        s["tmp"] += g
        s["tmp"] *= LR
        p -= s["tmp"]
    else:
        np.multiply(s["b"], LR, out=s["tmp"])
        p -= s["tmp"]


def _rmsprop_plain(p, g, s, t, alpha=0.99, eps=1e-8, lr=1e-2):
    s["v"] = alpha * s["v"] + (1 - alpha) * g * g
    p -= lr * g / (np.sqrt(s["v"]) + eps)


def _rmsprop_out(p, g, s, t, alpha=0.99, eps=1e-8, lr=1e-2):
    tmp = s["tmp"]
    s["v"] *= alpha
    np.multiply(g, g, out=tmp)
    tmp *= 1 - alpha
    s["v"] += tmp
    np.sqrt(s["v"], out=tmp)
    tmp += eps
    np.divide(g, tmp, out=tmp)
    tmp *= lr
    p -= tmp


def _adagrad_plain(p, g, s, t, eps=1e-10, lr=1e-2):
    s["sum"] = s["sum"] + g * g
    p -= lr * g / (np.sqrt(s["sum"]) + eps)


def _adagrad_out(p, g, s, t, eps=1e-10, lr=1e-2):
    tmp = s["tmp"]
    np.multiply(g, g, out=tmp)
    s["sum"] += tmp
    np.sqrt(s["sum"], out=tmp)
    tmp += eps
    np.divide(g, tmp, out=tmp)
    tmp *= lr
    p -= tmp


def _adadelta_plain(p, g, s, t, rho=0.9, eps=1e-6):
    s["v"] = rho * s["v"] + (1 - rho) * g * g
    delta = np.sqrt(s["u"] + eps) / np.sqrt(s["v"] + eps) * g
    s["u"] = rho * s["u"] + (1 - rho) * delta * delta
    p -= delta


def _adadelta_out(p, g, s, t, rho=0.9, eps=1e-6):
    tmp, delta = s["tmp"], s["tmp2"]
    s["v"] *= rho
    np.multiply(g, g, out=tmp)
    tmp *= 1 - rho
    s["v"] += tmp
    np.add(s["u"], eps, out=delta)
    np.sqrt(delta, out=delta)
    np.add(s["v"], eps, out=tmp)
    np.sqrt(tmp, out=tmp)
    delta /= tmp
    delta *= g
    s["u"] *= rho
    np.multiply(delta, delta, out=tmp)
    tmp *= 1 - rho
    s["u"] += tmp
    p -= delta


# rule: (fastopt class, torch.optim class name, kwargs both take, torch has a fused CPU path,
#        NumPy plain, NumPy out=, arrays the rule must read + write per element)
RULES = {
    "Adam": (Adam, "Adam", {"lr": LR}, True, _adam_plain, _adam_out, 7),
    "AdamW": (AdamW, "AdamW", {"lr": LR}, True,
              lambda *a: _adam_plain(*a, decoupled=True, wd=1e-2),
              lambda *a: _adam_out(*a, decoupled=True, wd=1e-2), 7),
    "SGD momentum": (SGD, "SGD", {"lr": LR, "momentum": 0.9}, True, _sgd_plain, _sgd_out, 5),
    "NAG": (SGD, "SGD", {"lr": LR, "momentum": 0.9, "nesterov": True}, True,
            lambda *a: _sgd_plain(*a, nesterov=True), lambda *a: _sgd_out(*a, nesterov=True), 5),
    "RMSprop": (RMSprop, "RMSprop", {"lr": 1e-2}, False, _rmsprop_plain, _rmsprop_out, 5),
    "Adagrad": (Adagrad, "Adagrad", {"lr": 1e-2}, True, _adagrad_plain, _adagrad_out, 5),
    "Adadelta": (Adadelta, "Adadelta", {"lr": 1.0}, False, _adadelta_plain, _adadelta_out, 7),
}


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _variants(rule, dtype, size, n_threads, rng, torch):
    """{name: callable making one step}, all on fresh copies of the same data."""
    cls, torch_name, kwargs, fused_ok, plain, out, _ = RULES[rule]
    grad = rng.standard_normal(size).astype(dtype)
    start = rng.standard_normal(size).astype(dtype)
    variants = {}
    opt = cls(start.copy(), n_threads=n_threads, **kwargs)
    opt.step(grad)  # state allocated outside the timing
    variants["fastopt"] = lambda: opt.step(grad)

    for name, fn in (("NumPy plain", plain), ("NumPy out=", out)):
        state = {k: np.zeros(size, dtype) for k in ("m", "v", "b", "sum", "u", "tmp", "tmp2")}
        p = start.copy()
        variants[name] = lambda fn=fn, p=p, state=state: fn(p, grad, state, 2)

    if torch is not None:
        paths = {"single-tensor": {"foreach": False}, "foreach": {"foreach": True}}
        if fused_ok:
            paths["fused"] = {"fused": True}
        for path, flags in paths.items():
            tp = torch.nn.Parameter(torch.from_numpy(start.copy()))
            tp.grad = torch.from_numpy(grad)
            topt = getattr(torch.optim, torch_name)([tp], **kwargs, **flags)
            topt.step()

            def step(topt=topt):
                torch.set_num_threads(n_threads)
                topt.step()

            variants[f"torch {path}"] = step
    y, x = start.copy(), grad
    variants["axpy"] = lambda: axpy(y, x, 1e-9, n_threads)
    return variants


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
    header = (f"{'rule':<13}{'dtype':<8}{'size':>6}{'thr':>4}{'fastopt':>11}{'IQR':>19}"
              f"{'vs NumPy':>9}{'vs out=':>8}{'vs torch':>9}{'(path)':>15}{'bw':>6}")
    print(header, file=file)
    print("-" * len(header), file=file)
    rows = []
    for rule in rules:
        for dtype in dtypes:
            for size in sizes:
                for n_threads in threads:
                    t = interleaved_times(_variants(rule, dtype, size, n_threads, rng, torch),
                                     repeats)
                    rows.append(_row(rule, dtype, size, n_threads, t, file))
    return rows


def _row(rule, dtype, size, n_threads, times, file):
    med = {name: float(np.median(t)) for name, t in times.items()}
    q1, q3 = np.percentile(times["fastopt"], [25, 75])
    fast = med["fastopt"]
    torch_paths = {k: v for k, v in med.items() if k.startswith("torch")}
    best_torch = min(torch_paths, key=torch_paths.get) if torch_paths else None
    itemsize = np.dtype(dtype).itemsize
    bandwidth = (RULES[rule][6] * size * itemsize / fast) / (3 * size * itemsize / med["axpy"])
    row = {"rule": rule, "dtype": dtype, "size": size, "threads": n_threads,
           "fastopt_s": fast, "iqr_s": (float(q1), float(q3)),
           "vs_numpy": med["NumPy plain"] / fast, "vs_numpy_out": med["NumPy out="] / fast,
           "vs_torch_best": med[best_torch] / fast if best_torch else None,
           "torch_best": best_torch, "bandwidth_fraction": bandwidth,
           "vs_torch": {k: v / fast for k, v in torch_paths.items()}}
    torch_text = (f"{row['vs_torch_best']:>8.2f}x{best_torch[6:]:>15}" if best_torch
                  else f"{'-':>9}{'':>15}")
    print(f"{rule:<13}{dtype:<8}{'2^%d' % int(np.log2(size)):>6}{n_threads:>4}"
          f"{_fmt(fast):>11}  [{_fmt(q1)}, {_fmt(q3)}]".ljust(56)
          + f"{row['vs_numpy']:>8.1f}x{row['vs_numpy_out']:>7.1f}x{torch_text}"
          f"{bandwidth:>6.2f}", file=file)
    return row


def _fmt(seconds):
    return f"{seconds * 1e3:.3f}ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f}us"
