"""Cost of subnormal numbers in an optimizer step (Adam's second moment drifts there), with
and without the flush-to-zero mode (``flush_subnormals=True``).

    python asv_benchmarks/subnormals.py [--rounds 15] [--n 65536]

Times one Adam step (2^16 elements, one thread) with the gradient and state at ordinary
values and at subnormal ones, with the mode off and on, for each kernel build available here
and each dtype. The four variants of a build and dtype are timed interleaved, round by round
(each round: 100 steps of each), and the table gives medians per step and the ratios:

* ``off sub/normal``: today's IEEE arithmetic, subnormal over normal time;
* ``on sub/normal``: both with the mode on (target <= 1.05);
* ``on sub / off normal``: the subnormal case with the mode on against the ordinary step
  without it (what turning the mode on costs or saves overall).

With the mode on the state is zero after the first step (its subnormal values are flushed)
while the gradient stays subnormal: every step still reads subnormal inputs, which the CPU
then takes as zero (DAZ) instead of paying a micro-code assist. Off, the state stays
subnormal for the whole run (Adam's moments decay slowly). The mode changes results where
values are subnormal; it is off by default.
"""

import argparse
import statistics
import timeit

import numpy as np

import fastopt
from fastopt import _kernels

TINY = {"float32": 1e-40, "float64": 1e-310}
NUMBER = 100


def make_step(dtype, fill, flush, n):
    """A zero-argument function making one Adam step with gradient and state at ``fill``."""
    p = np.ones(n, dtype)
    g = np.full(n, fill, dtype)
    opt = fastopt.Adam(p, n_threads=1, flush_subnormals=flush)
    opt.step(g)
    for array in opt.state[0].values():
        array[...] = fill
    return lambda: opt.step(g)


def measure(dtype, tiny, n, rounds):
    """Median seconds per step of (normal off, subnormal off, normal on, subnormal on)."""
    steps = [make_step(dtype, fill, flush, n) for flush in (False, True)
             for fill in (1e-3, tiny)]
    times = [[] for _ in steps]
    for _ in range(rounds):
        for k, step in enumerate(steps):
            times[k].append(timeit.timeit(step, number=NUMBER) / NUMBER)
    return [statistics.median(t) for t in times]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--n", type=int, default=2**16)
    args = parser.parse_args(argv)
    print(f"Adam step, {args.n} elements, 1 thread; medians of {args.rounds} interleaved rounds"
          f" of {NUMBER} steps")
    print(f"{'build':<9} {'dtype':<8} {'normal':>9} {'subnormal':>10} {'normal':>9} "
          f"{'subnormal':>10}  {'off sub/normal':>14} {'on sub/normal':>13} "
          f"{'on sub/off normal':>17}")
    print(f"{'':<18} {'(off, us)':>9} {'(off, us)':>10} {'(on, us)':>9} {'(on, us)':>10}")
    previous = _kernels.kernel_isa()
    try:
        for isa in _kernels.available_isas():
            _kernels._set_isa(isa)
            for dtype, tiny in TINY.items():
                n_off, s_off, n_on, s_on = measure(dtype, tiny, args.n, args.rounds)
                print(f"{isa:<9} {dtype:<8} {n_off * 1e6:9.1f} {s_off * 1e6:10.1f} "
                      f"{n_on * 1e6:9.1f} {s_on * 1e6:10.1f}  {s_off / n_off:14.2f} "
                      f"{s_on / n_on:13.2f} {s_on / n_off:17.2f}")
    finally:
        _kernels._set_isa(previous)


if __name__ == "__main__":
    main()
