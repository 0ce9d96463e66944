"""The same steps done by NumPy (plainly, and with ``out=``) and torch.optim (single-tensor,
foreach, fused CPU paths, when torch is importable), to compare with the *Step classes: the
columns of ``python -m fastopt bench`` (fastopt._bench.ROWS and fastopt._bench.column), one
per benchmark.

    cd asv_benchmarks && asv run --python=same -b "AdamStep|Baseline"
"""

from fastopt._bench import RULES, _torch, column
from fastopt._openmp import effective_n_threads

from .common import DTYPES, Benchmark, make_arrays

# asv's names for fastopt._bench.COLUMNS (the baselines among them)
IMPLEMENTATIONS = {"numpy plain": "NumPy plain", "numpy out=": "NumPy out=",
                   "torch single-tensor": "torch single-tensor", "torch foreach": "torch foreach",
                   "torch fused": "torch fused"}


class BaselineStep(Benchmark):
    # A cache-sized and a large size: the full size range of the *Step classes would make this
    # grid (rules x dtypes x sizes x implementations) run for many minutes.
    timeout = 900
    params = [list(RULES), DTYPES, [2**14, 2**22], list(IMPLEMENTATIONS)]
    param_names = ["rule", "dtype", "size", "implementation"]

    def setup(self, rule, dtype, size, implementation):
        params, grad = make_arrays(size, dtype)
        torch = _torch() if implementation.startswith("torch") else None
        if implementation.startswith("torch") and torch is None:
            raise NotImplementedError("torch is not installed")
        col = column(RULES[rule], IMPLEMENTATIONS[implementation], params, grad,
                     effective_n_threads(-1), torch)
        if col is None:  # asv skips the combination
            raise NotImplementedError(f"no {implementation} baseline for {rule}")
        self.step = col.step

    def time_step(self, rule, dtype, size, implementation):
        self.step()
