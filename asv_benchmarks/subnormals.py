"""Cost of subnormal numbers in an optimizer step (Adam's second moment drifts there).

    python asv_benchmarks/subnormals.py

Times one Adam step (2^16 elements, one thread) with the gradient and state at ordinary values
and at subnormal ones, for each kernel build available here; prints best-of-5 times and the
ratio. fastopt does not flush subnormals to zero (that would change results).
"""

import timeit

import numpy as np

import fastopt
from fastopt import _kernels

TINY = {"float32": 1e-40, "float64": 1e-310}


def step_time(dtype, fill, n=2**16):
    p = np.ones(n, dtype)
    g = np.full(n, fill, dtype)
    opt = fastopt.Adam(p, n_threads=1)
    opt.step(g)
    for array in opt.state[0].values():
        array[...] = fill
    return min(timeit.repeat(lambda: opt.step(g), number=200, repeat=5)) / 200


def main():
    previous = _kernels.kernel_isa()
    try:
        for isa in _kernels.available_isas():
            _kernels._set_isa(isa)
            for dtype, tiny in TINY.items():
                normal, subnormal = step_time(dtype, 1e-3), step_time(dtype, tiny)
                print(f"{isa:<9} {dtype}: normal {normal * 1e6:7.1f} us, subnormal "
                      f"{subnormal * 1e6:7.1f} us, ratio {subnormal / normal:.2f}")
    finally:
        _kernels._set_isa(previous)


if __name__ == "__main__":
    main()
