"""fastopt.dask.minimize_batch on a LocalCluster of 2 worker processes x 1 thread vs in-process
minimize_batch on 2 threads: 1,000,000 2-D Rosenbrock problems, 1000 Adam iterations, C
objective recipe, by chunk size (the variants of ``python -m fastopt bench-loops --dask``,
which prints them side by side with Dask's overhead). Skipped without dask and distributed.

    cd asv_benchmarks && asv run --python=same -b DaskBatch
"""

import numpy as np

import fastopt
from fastopt._bench_dask import CHUNKS
from fastopt._bench_loops import ITERS, LR, X_START

from .common import Benchmark

PROBLEMS = 1_000_000


class DaskBatch(Benchmark):
    """1,000,000 problems, 1000 Adam iterations each: in process, or on Dask in row chunks."""

    params = [["in-process", *CHUNKS]]
    param_names = ["chunk"]
    timeout = 900
    number = 1
    repeat = 1
    warmup_time = 0

    def setup(self, chunk):
        try:
            import dask.array as da
            from distributed import Client, LocalCluster

            import fastopt.dask as fdask
        except ImportError:
            raise NotImplementedError("dask and distributed are not installed") from None
        self.options = {"lr": LR, "maxiter": ITERS, "gtol": 0.0}
        self.spec = fdask.lowlevel(fastopt.problems.rosenbrock_lowlevel)
        self.cluster = self.client = None
        if chunk == "in-process":
            X0 = np.tile(X_START, (PROBLEMS, 1))
            llc = self.spec()
            options = dict(self.options, n_threads=2)
            self.run = lambda: fastopt.minimize_batch(llc, X0, options=options)
            return
        self.cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                    dashboard_address=None)
        self.client = Client(self.cluster)
        X0 = da.broadcast_to(np.array(X_START), (PROBLEMS, 2), chunks=(chunk, 2))
        fdask.minimize_batch(self.spec, X0[:200], options=self.options).compute()  # warm
        self.run = lambda: fdask.minimize_batch(self.spec, X0, options=self.options).compute()

    def teardown(self, chunk):
        if self.client is not None:
            self.client.close()
            self.cluster.close()

    def time_batch(self, chunk):
        self.run()
