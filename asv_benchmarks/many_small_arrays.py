"""A list of 200 arrays of 1,000 elements vs one array of 200,000: one step, 1 and all threads.

    python asv_benchmarks/many_small_arrays.py [--rounds 30] [--rules adam,sgd-momentum | all]
                                               [--stat median | min]

Each round times 20 steps of every variant of one dtype and rule, in turn (interleaved);
medians per step (``--stat min``: the fastest round, steadier on a loaded machine, where a
thread descheduled in an OpenMP region stalls a round by milliseconds). The ratio (list /
one array) is the cost of stepping the parameters of a model (many small arrays) against the
same elements in one array; the target is <= 1.15.
``--rules`` picks the update rules (default: adam; ``all``: every one below).
"""

import argparse

import numpy as np

import fastopt
from fastopt._bench import interleaved_times

# The rules users step lists of arrays with, by name: how each optimizer is made.
RULES = {
    "adam": lambda params, n: fastopt.Adam(params, n_threads=n),
    "sgd-momentum": lambda params, n: fastopt.SGD(params, lr=0.01, momentum=0.9, n_threads=n),
    "adamw": lambda params, n: fastopt.AdamW(params, n_threads=n),
    "rmsprop": lambda params, n: fastopt.RMSprop(params, n_threads=n),
    "adagrad": lambda params, n: fastopt.Adagrad(params, n_threads=n),
    "lion": lambda params, n: fastopt.Lion(params, n_threads=n),
    "nadam": lambda params, n: fastopt.NAdam(params, n_threads=n),
}


def _steps(opt, grads):
    for _ in range(20):
        opt.step(grads)


def _rules(text):
    names = list(RULES) if text == "all" else [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in RULES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown rules {unknown}: choose from "
                                         f"{', '.join(RULES)} or all")
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--rules", type=_rules, default=["adam"],
                        help=f"comma-separated, of {', '.join(RULES)}; or all")
    parser.add_argument("--stat", choices=("median", "min"), default="median",
                        help="per variant, over the rounds")
    args = parser.parse_args(argv)
    stat = np.median if args.stat == "median" else np.min
    n_all = fastopt.Adam(np.zeros(1), n_threads=-1).n_threads
    threads = sorted({1, n_all})
    for rule in args.rules:
        make = RULES[rule]
        for dtype in ("float32", "float64"):
            grads = [np.ones(1000, dtype) for _ in range(200)]
            grad = np.ones(200000, dtype)
            variants = {}
            for n in threads:
                many = make([np.zeros(1000, dtype) for _ in range(200)], n)
                one = make(np.zeros(200000, dtype), n)
                many.step(grads)
                one.step(grad)
                variants[f"200 x 1000, {n} thr"] = lambda o=many: _steps(o, grads)
                variants[f"1 x 200000, {n} thr"] = lambda o=one: _steps(o, grad)
            t = {k: stat(v) / 20 * 1e6
                 for k, v in interleaved_times(variants, args.rounds).items()}
            print(f"{rule} {dtype}: " + ", ".join(f"{k} {v:.1f} us" for k, v in t.items()))
            for n in threads:
                print(f"  ratio list / one array, {n} thread(s): "
                      f"{t[f'200 x 1000, {n} thr'] / t[f'1 x 200000, {n} thr']:.2f}")


if __name__ == "__main__":
    main()
