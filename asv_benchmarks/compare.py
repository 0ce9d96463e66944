"""Side-by-side time of one Adam step: fastopt vs NumPy (plain, and with out=) vs torch.

    python asv_benchmarks/compare.py [--size-log2 22] [--dtype float32] [--repeats 30]

All variants run in one process and are interleaved (each repeat times every variant once),
so machine noise hits them alike; the table gives the median and the interquartile range.
torch is optional: its rows appear when it is importable.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fastopt  # noqa: E402
from benchmarks.bench_baselines import numpy_adam_out, numpy_adam_plain  # noqa: E402


def interleaved_times(variants, repeats):
    """{name: array of seconds}, each repeat running every variant once, in turn."""
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: np.array(t) for name, t in times.items()}


def adam_variants(size, dtype, threads):
    rng = np.random.default_rng(0)
    grad = rng.standard_normal(size).astype(dtype)
    variants = {}
    for n in threads:
        p = rng.standard_normal(size).astype(dtype)
        opt = fastopt.Adam(p, n_threads=n)
        opt.step(grad)
        variants[f"fastopt Adam, {n} thread(s)"] = lambda opt=opt: opt.step(grad)

    p, m, v, tmp = (np.zeros(size, dtype) for _ in range(4))
    variants["NumPy, plain"] = lambda: numpy_adam_plain(p, grad, m, v, 1)
    variants["NumPy, out="] = lambda: numpy_adam_out(p, grad, m, v, tmp, 1)
    try:
        import torch
    except ImportError:
        return variants
    for n in threads:
        for fused in (False, True):
            tp = torch.nn.Parameter(torch.from_numpy(rng.standard_normal(size).astype(dtype)))
            tp.grad = torch.from_numpy(grad)
            topt = torch.optim.Adam([tp], fused=fused, foreach=None if fused else False)
            topt.step()

            def step(topt=topt, n=n):
                torch.set_num_threads(n)
                topt.step()

            variants[f"torch {'fused' if fused else 'single-tensor'}, {n} thread(s)"] = step
    return variants


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-log2", type=int, default=22)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    size = 2**args.size_log2
    threads = sorted({1, fastopt.Adam(np.zeros(1)).n_threads})
    times = interleaved_times(adam_variants(size, args.dtype, threads), args.repeats)
    numpy_plain = np.median(times["NumPy, plain"])
    print(f"Adam step, 2^{args.size_log2} {args.dtype} elements, median of {args.repeats} "
          f"interleaved repeats (machine: {os.cpu_count()} cpus)")
    print(f"{'variant':<34} {'median':>10} {'IQR':>19} {'vs NumPy plain':>15}")
    for name, t in times.items():
        q1, med, q3 = np.percentile(t, [25, 50, 75])
        print(f"{name:<34} {med * 1e3:>8.3f}ms  [{q1 * 1e3:.3f}, {q3 * 1e3:.3f}]ms "
              f"{numpy_plain / med:>13.1f}x")


if __name__ == "__main__":
    main()
