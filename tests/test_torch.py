"""fastopt against torch.optim itself (skipped when torch is not installed).

torch is the reference the classes promise to follow: same hyperparameter names, defaults
and update rules. torch evaluates a few expressions in another order (``lerp`` for the first
moment, for instance), so the trajectories agree to rounding, not bit for bit.
"""

import inspect

import numpy as np
import pytest

from _registry import OPTIMIZERS, variant_cases
from conftest import gradient_sequence
from fastopt._bench import torch_twin

torch = pytest.importorskip("torch")

TORCH_RTOL = {np.float64: 1e-10, np.float32: 1e-5}


def _twin(case):
    """The torch optimizer of a case (torch.optim's, or a torch-based package's: skipped
    where that package is not installed)."""
    twin = torch_twin(torch, case.torch_name)
    if twin is None:
        pytest.skip(f"{case.torch_name.partition('.')[0]} is not installed")
    return twin


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case, kwargs", variant_cases())
def test_trajectory_matches_torch_optim(case, kwargs, dtype, rng):
    shape = (7, 5)
    params = rng.standard_normal(shape).astype(dtype)
    opt = case.cls(params, **kwargs)

    torch_param = torch.nn.Parameter(torch.from_numpy(params.copy()))
    torch_kwargs = {**case.torch_kwargs, **kwargs}
    torch_opt = _twin(case)([torch_param], **torch_kwargs)

    # Keep gradients moderate: float32 trajectories after 1e6-sized steps are chaotic.
    scales = [1.0, 0.5, 0.0, 2.0, 1.0, 0.1, 0.0, 3.0, 1e-3, 1.0] * 2
    for grad in gradient_sequence(rng, shape, dtype, scales):
        opt.step(grad)
        torch_param.grad = torch.from_numpy(grad.copy())
        torch_opt.step()
        rtol = TORCH_RTOL[dtype]
        np.testing.assert_allclose(params, torch_param.detach().numpy(), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("case", [c for c in OPTIMIZERS if c.torch_name], ids=lambda c: c.name)
def test_torch_defaults_match(case):
    # (Momentum, NAG: torch.optim.SGD with the torch_kwargs of their records)
    twin = _twin(case)
    torch_sig = inspect.signature(getattr(twin, "cls", twin))
    for name, value in case.defaults.items():
        expected = case.torch_kwargs.get(name, torch_sig.parameters[name].default)
        assert expected == value, (case.name, name)
