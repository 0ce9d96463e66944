"""Small problems: the C-level loop and minimize_batch against Python, NumPy, SciPy and plain C
(2-D Rosenbrock, Adam, 1000 iterations). The same variants as ``python -m fastopt
bench-loops``, which prints them side by side with ratios; among them minimize_batch with a
block C objective and its floor, the block SIMD floor (src_c/fastopt_block_adam.h), at 1 and 2
threads.

    cd asv_benchmarks && asv run --python=same --quick -b Batch -b OneProblem
    cd asv_benchmarks && asv continuous -b Lbfgs main HEAD
"""

import fastopt
from fastopt import _bench_lbfgs as lbfgs
from fastopt import _bench_loops as loops

from .common import Benchmark


class OneProblem(Benchmark):
    """One 2-D Rosenbrock problem, 1000 Adam iterations (divide by 1000 for per iteration)."""

    params = [["plain C loop", "C-level loop (LowLevelCallable)", "Python-function loop",
               "scipy.optimize.minimize + Python Adam"]]
    param_names = ["variant"]

    def setup(self, variant):
        self.run, self.runs = loops.one_problem_variants(fastopt.problems.rosenbrock_lowlevel())[
            variant]

    def time_one_problem(self, variant):
        self.run()  # the plain C loop makes 100 runs per call (see self.runs)


class _Problems(Benchmark):
    """A batch variant's whole call (``self.run``), and problems per second."""

    def time_batch(self, variant):
        self.run()

    def track_problems_per_second(self, variant):
        import time

        start = time.perf_counter()
        self.run()
        return self.problems / (time.perf_counter() - start)

    track_problems_per_second.unit = "problems/s"


class Batch(_Problems):
    """1000 problems, 1000 Adam iterations each (the SciPy loop: 2 of them)."""

    params = [["minimize_batch, C objective, 1 thread",
               "minimize_batch, block C objective, 1 thread",
               "block SIMD floor (plain C), 1 thread",
               "minimize_batch, C objective, 2 threads",
               "minimize_batch, block C objective, 2 threads",
               "block SIMD floor (plain C), 2 threads",
               "minimize_batch, vectorised NumPy objective", "vectorised NumPy Adam",
               "plain scalar C loop, 1 thread", "Python loop of scipy.optimize.minimize"]]
    param_names = ["variant"]
    timeout = 120
    sizes = (1000, 2)  # (problems, problems of the SciPy loop)

    def setup(self, variant):
        self.run, self.problems = loops.batch_variants(fastopt.problems.rosenbrock_lowlevel(),
                                                       *self.sizes)[variant]


class LbfgsRosenbrock(_Problems):
    """L-BFGS (issue 17): 10,000 2-D Rosenbrock problems to gtol=1e-5, minimize_batch
    (method="lbfgs", C objectives, 1 and 2 threads) vs a loop of SciPy's L-BFGS-B (200 of
    them: compare problems/s) vs minimize_batch with Adam (fastopt/_bench_lbfgs.py)."""

    params = [list(lbfgs.rosen_variants(1, 1))]
    param_names = ["variant"]
    timeout = 300
    sizes = (10000, 200)

    def setup(self, variant):
        self.run, self.problems = lbfgs.rosen_variants(*self.sizes)[variant]


class LbfgsBootstrap(_Problems):
    """L-BFGS (issue 17): the 500-resample logistic-regression bootstrap on the breast-cancer
    data, vectorised NumPy objective: lbfgs batch vs SciPy loop (50 resamples) vs Adam batch.
    Skipped without scikit-learn."""

    params = [["lbfgs batch, NumPy objective", "Adam batch, NumPy objective",
               "Python loop of scipy L-BFGS-B"]]
    param_names = ["variant"]
    timeout = 300
    sizes = (500, 50)

    def setup(self, variant):
        variants = lbfgs.bootstrap_variants(*self.sizes)
        if variants is None:
            raise NotImplementedError("scikit-learn is not installed")
        self.run, self.problems = variants[variant]
