"""Shared pieces of the benchmarks: the optimizers benchmarked, seeded data, sizes."""

import numpy as np

from fastopt._registry import RECORDS

# Sizes on both sides of the OpenMP threshold (2^15), up to 2^24 (128 MiB in float64 per array).
SIZES = [2**10, 2**14, 2**18, 2**22, 2**24]
DTYPES = ["float32", "float64"]
THREADS = [1, -1]

# The optimizers the suite times, by class name: {name: (class, kwargs)}, one representative
# setting per optimizer, from the optimizer records (their ``bench`` settings, as
# ``python -m fastopt bench``). bench_kernels.py makes a <name>Step class for each entry;
# bench_baselines.py follows fastopt._bench.ROWS.
OPTIMIZERS = {record.cls.__name__: (record.cls, dict(record.bench))
              for record in RECORDS if record.bench is not None}


def make_arrays(size, dtype, seed=0):
    rng = np.random.default_rng(seed)
    params = rng.standard_normal(size).astype(dtype)
    grad = rng.standard_normal(size).astype(dtype)
    return params, grad


class Benchmark:
    timeout = 300
    warmup_time = 0.2


def optimizer_step_benchmark(name):
    """A class timing one ``step`` of optimizer ``name`` (NumPy's bench_clip.py shape)."""
    cls, kwargs = OPTIMIZERS[name]

    class StepBenchmark(Benchmark):
        params = [DTYPES, SIZES, THREADS]
        param_names = ["dtype", "size", "n_threads"]

        def setup(self, dtype, size, n_threads):
            self.params_array, self.grad = make_arrays(size, dtype)
            self.opt = cls(self.params_array, n_threads=n_threads, **kwargs)
            self.opt.step(self.grad)  # allocate the state outside the timing

        def time_step(self, dtype, size, n_threads):
            self.opt.step(self.grad)

    StepBenchmark.__name__ = f"{name}Step"
    StepBenchmark.__qualname__ = f"{name}Step"
    return StepBenchmark
