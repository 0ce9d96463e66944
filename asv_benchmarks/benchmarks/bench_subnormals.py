"""One Adam step (2^16 elements, one thread) with ordinary and with subnormal gradient and
state, with the flush-to-zero mode off and on (asv_benchmarks/subnormals.py prints the
ratios side by side).

    cd asv_benchmarks && asv continuous -b AdamSubnormal main HEAD
"""

import numpy as np

import fastopt

from .common import DTYPES, Benchmark

TINY = {"float32": 1e-40, "float64": 1e-310}


class AdamSubnormal(Benchmark):
    params = [DTYPES, ["normal", "subnormal"], [False, True]]
    param_names = ["dtype", "values", "flush_subnormals"]

    def setup(self, dtype, values, flush_subnormals):
        fill = 1e-3 if values == "normal" else TINY[dtype]
        self.grad = np.full(2**16, fill, dtype)
        self.opt = fastopt.Adam(np.ones(2**16, dtype), n_threads=1,
                                flush_subnormals=flush_subnormals)
        self.opt.step(self.grad)
        for array in self.opt.state[0].values():
            array[...] = fill

    def time_step(self, dtype, values, flush_subnormals):
        self.opt.step(self.grad)
