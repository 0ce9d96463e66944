"""The same Adam step written in NumPy (plainly, and with ``out=``), to compare with AdamStep.

    cd asv_benchmarks && asv run --python=same -b "AdamStep|NumpyAdam"
"""

import numpy as np

from .common import DTYPES, SIZES, Benchmark, make_arrays


class NumpyAdam(Benchmark):
    params = [DTYPES, SIZES, ["plain", "out"]]
    param_names = ["dtype", "size", "style"]

    def setup(self, dtype, size, style):
        self.p, self.g = make_arrays(size, dtype)
        self.m = np.zeros_like(self.p)
        self.v = np.zeros_like(self.p)
        self.tmp = np.empty_like(self.p)
        self.t = 1

    def time_step(self, dtype, size, style):
        if style == "plain":
            numpy_adam_plain(self.p, self.g, self.m, self.v, self.t)
        else:
            numpy_adam_out(self.p, self.g, self.m, self.v, self.tmp, self.t)


def numpy_adam_plain(p, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * g * g
    denom = np.sqrt(v) / np.sqrt(1 - beta2**t) + eps
    p -= lr / (1 - beta1**t) * m / denom


def numpy_adam_out(p, g, m, v, tmp, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    m *= beta1
    np.multiply(g, 1 - beta1, out=tmp)
    m += tmp
    v *= beta2
    np.multiply(g, g, out=tmp)
    tmp *= 1 - beta2
    v += tmp
    np.sqrt(v, out=tmp)
    tmp /= np.sqrt(1 - beta2**t)
    tmp += eps
    np.divide(m, tmp, out=tmp)
    tmp *= lr / (1 - beta1**t)
    p -= tmp
