"""fastopt against torch.optim itself (skipped when torch is not installed).

torch is the reference the classes promise to follow: same hyperparameter names, defaults
and update rules. torch evaluates a few expressions in another order (``lerp`` for the first
moment, for instance), so the trajectories agree to rounding, not bit for bit.
"""

import inspect

import numpy as np
import pytest

from _registry import OPTIMIZERS, flag_combinations, variant_cases
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


def _torch_cases():
    """Every variant of every optimizer with a torch twin, and every combination of its flags
    (each with the reals of the derived variants)."""
    cases = [p for p in variant_cases() if p.values[0].torch_name]
    seen = {(p.values[0].name, repr(p.values[1])) for p in cases}
    for case in OPTIMIZERS:
        if case.torch_name:
            for kwargs in flag_combinations(case.cls.record):
                if (case.name, repr(kwargs)) not in seen:
                    seen.add((case.name, repr(kwargs)))
                    flags = ",".join(f"{k}={v}" for k, v in kwargs.items() if type(v) is bool)
                    cases.append(pytest.param(case, kwargs,
                                              id=f"{case.name}-flags:{flags or 'none'}"))
    return cases


@pytest.fixture
def torch_default_dtype():
    """Sets torch's default dtype for one test, then restores it."""
    previous = torch.get_default_dtype()
    yield torch.set_default_dtype
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case, kwargs", _torch_cases())
def test_trajectory_matches_torch_optim(case, kwargs, dtype, rng, torch_default_dtype):
    # torch keeps some per-step scalars as tensors of its default dtype (ASGD's eta and mu):
    # float32 ones would round a float64 trajectory's steps
    if dtype == np.float64:
        torch_default_dtype(torch.float64)
    shape = (7, 5)
    params = rng.standard_normal(shape).astype(dtype)
    opt = case.cls(params, **kwargs)

    torch_param = torch.nn.Parameter(torch.from_numpy(params.copy()))
    torch_kwargs = {**case.torch_kwargs, **kwargs}
    # torch keeps some per-step scalars as tensors of its default dtype (NAdam's mu_product):
    # float64 runs compare against torch computing them in float64 too.
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    try:
        torch_opt = _twin(case)([torch_param], **torch_kwargs)

        # Keep gradients moderate: float32 trajectories after 1e6-sized steps are chaotic.
        scales = [1.0, 0.5, 0.0, 2.0, 1.0, 0.1, 0.0, 3.0, 1e-3, 1.0] * 2
        for grad in gradient_sequence(rng, shape, dtype, scales):
            opt.step(grad)
            torch_param.grad = torch.from_numpy(grad.copy())
            torch_opt.step()
            rtol = TORCH_RTOL[dtype]
            np.testing.assert_allclose(params, torch_param.detach().numpy(), rtol=rtol,
                                       atol=rtol)
    finally:
        torch.set_default_dtype(default_dtype)


@pytest.mark.parametrize("case", [c for c in OPTIMIZERS if c.torch_name], ids=lambda c: c.name)
def test_torch_defaults_match(case):
    # (Momentum, NAG: torch.optim.SGD with the torch_kwargs of their records.) A fixed
    # hyperparameter may be no argument of torch's class either (AdamW's
    # decoupled_weight_decay): torch's defaults hold its value then.
    twin = _twin(case)
    torch_cls = getattr(twin, "cls", twin)
    torch_sig = inspect.signature(torch_cls)
    torch_defaults = torch_cls([torch.nn.Parameter(torch.zeros(1))], **case.torch_kwargs).defaults
    for name, value in case.defaults.items():
        if name in torch_sig.parameters:
            expected = case.torch_kwargs.get(name, torch_sig.parameters[name].default)
        else:
            assert name in case.cls.record.fixed, (case.name, name)
            expected = torch_defaults[name]
        assert expected == value, (case.name, name)
