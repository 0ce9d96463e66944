"""The same steps done by NumPy (plainly, and with ``out=``) and torch.optim (single-tensor,
foreach, fused CPU paths, when torch is importable), to compare with the *Step classes.

    cd asv_benchmarks && asv run --python=same -b "AdamStep|Baseline"
"""

import numpy as np

from fastopt._bench import RULES, _torch

from .common import DTYPES, Benchmark, make_arrays

IMPLEMENTATIONS = ["numpy plain", "numpy out=", "torch single-tensor", "torch foreach",
                   "torch fused"]


class BaselineStep(Benchmark):
    # A cache-sized and a large size: the full size range of the *Step classes would make this
    # grid (rules x dtypes x sizes x implementations) run for many minutes.
    timeout = 900
    params = [list(RULES), DTYPES, [2**14, 2**22], IMPLEMENTATIONS]
    param_names = ["rule", "dtype", "size", "implementation"]

    def setup(self, rule, dtype, size, implementation):
        cls, torch_name, kwargs, fused_ok, plain, out, _ = RULES[rule]
        params, grad = make_arrays(size, dtype)
        if implementation.startswith("numpy"):
            state = {k: np.zeros(size, dtype) for k in ("m", "v", "b", "sum", "u", "tmp", "tmp2")}
            fn = plain if implementation == "numpy plain" else out
            self.step = lambda: fn(params, grad, state, 2)
            return
        torch = _torch()
        if torch is None:
            raise NotImplementedError("torch is not installed")
        path = implementation.split()[1]
        if path == "fused" and not fused_ok:
            raise NotImplementedError(f"torch has no fused CPU {torch_name}")
        flags = {"single-tensor": {"foreach": False}, "foreach": {"foreach": True},
                 "fused": {"fused": True}}[path]
        p = torch.nn.Parameter(torch.from_numpy(params))
        p.grad = torch.from_numpy(grad)
        opt = getattr(torch.optim, torch_name)([p], **kwargs, **flags)
        opt.step()
        self.step = opt.step

    def time_step(self, rule, dtype, size, implementation):
        self.step()
