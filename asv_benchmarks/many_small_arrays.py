"""A list of 200 arrays of 1,000 elements vs one array of 200,000: Adam step, 1 and 2 threads.

    python asv_benchmarks/many_small_arrays.py [--rounds 30]

Each round times 20 steps of every variant, in turn (interleaved); medians per step.
"""

import argparse

import numpy as np

import fastopt
from fastopt._bench import interleaved_times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    n_all = fastopt.Adam(np.zeros(1), n_threads=-1).n_threads
    for dtype in ("float32", "float64"):
        grads = [np.ones(1000, dtype) for _ in range(200)]
        grad = np.ones(200000, dtype)
        variants = {}
        for n in sorted({1, n_all}):
            many = fastopt.Adam([np.zeros(1000, dtype) for _ in range(200)], n_threads=n)
            one = fastopt.Adam(np.zeros(200000, dtype), n_threads=n)
            many.step(grads)
            one.step(grad)
            variants[f"200 x 1000, {n} thr"] = lambda o=many: [o.step(grads) for _ in range(20)]
            variants[f"1 x 200000, {n} thr"] = lambda o=one: [o.step(grad) for _ in range(20)]
        t = {k: np.median(v) / 20 * 1e6 for k, v in interleaved_times(variants, args.rounds).items()}
        print(dtype + ": " + ", ".join(f"{k} {v:.1f} us" for k, v in t.items()))
        for n in sorted({1, n_all}):
            print(f"  ratio list / one array, {n} thread(s): "
                  f"{t[f'200 x 1000, {n} thr'] / t[f'1 x 200000, {n} thr']:.2f}")


if __name__ == "__main__":
    main()
