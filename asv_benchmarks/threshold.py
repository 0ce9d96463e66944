"""Measure where OpenMP threads start to pay for an optimizer step (sets PARALLEL_THRESHOLD).

    python asv_benchmarks/threshold.py [--dtype float32] [--repeats 300]

With the threshold lowered to 0 (so every size may run in parallel), times one step with one
thread and with every usable thread, interleaved, for sizes 2^8 .. 2^18; prints the medians
and their ratio. fastopt/_kernels.pyx records the result next to PARALLEL_THRESHOLD.
"""

import argparse

import numpy as np

import fastopt
from fastopt._bench import interleaved_times
from fastopt import _kernels


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--optimizer", default="Adam")
    args = parser.parse_args(argv)
    cls = getattr(fastopt, args.optimizer)
    n_all = cls(np.zeros(1), n_threads=-1).n_threads
    old = _kernels._set_parallel_threshold(0)
    try:
        print(f"{args.optimizer} step, {args.dtype}, median of {args.repeats}; threads: 1 vs {n_all}")
        print(f"{'size':>8} {'1 thread':>11} {f'{n_all} threads':>11} {'speed-up':>9}")
        for k in range(8, 19):
            rng = np.random.default_rng(k)
            grad = rng.standard_normal(2**k).astype(args.dtype)
            variants = {}
            for n in (1, n_all):
                opt = cls(rng.standard_normal(2**k).astype(args.dtype), n_threads=n)
                opt.step(grad)
                variants[n] = lambda opt=opt: opt.step(grad)
            t = {n: np.median(v) for n, v in interleaved_times(variants, args.repeats).items()}
            print(f"{'2^%d' % k:>8} {t[1] * 1e6:>9.2f}us {t[n_all] * 1e6:>9.2f}us "
                  f"{t[1] / t[n_all]:>8.2f}x")
    finally:
        _kernels._set_parallel_threshold(old)


if __name__ == "__main__":
    main()
