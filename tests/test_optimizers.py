"""The optimizer classes: defaults, validation, in-place semantics (checkpoints and resume:
test_checkpoints.py)."""

import inspect
import io

import numpy as np
import pytest

import fastopt
from _registry import OPTIMIZERS, bad_kwarg_cases, state_arrays
from conftest import DTYPES, gradient_sequence

CASES = [pytest.param(case, id=case.name) for case in OPTIMIZERS]


def _snapshot(opt, params, grads=()):
    """Bytes of everything an optimizer call could modify."""
    state = [{k: v.tobytes() for k, v in s.items()} for s in opt.state]
    return (opt.step_count, opt.hyperparameters, state,
            [p.tobytes() for p in params], [g.tobytes() for g in grads])


# -- construction ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_defaults_are_torch_defaults(case):
    opt = case.cls(np.zeros(3))
    assert opt.hyperparameters == case.defaults
    signature = inspect.signature(case.cls)
    for name, value in case.defaults.items():
        if name in signature.parameters:
            assert signature.parameters[name].default == value


@pytest.mark.parametrize("case, kwargs, error, match", bad_kwarg_cases())
def test_bad_hyperparameter_raises_naming_it(case, kwargs, error, match):
    with pytest.raises(error, match=match):
        case.cls(np.zeros(3), **kwargs)


BAD_PARAMS = [
    (np.zeros(3, dtype=np.float16), TypeError, "params must have dtype float32 or float64"),
    (np.zeros(3, dtype=np.int64), TypeError, "dtype float32 or float64, got int64"),
    (np.zeros(3, dtype=np.complex128), TypeError, "got complex128"),
    (np.zeros(3, dtype=bool), TypeError, "got bool"),
    (np.zeros((3, 4))[:, ::2], ValueError, "params must be C-contiguous"),
    (np.asfortranarray(np.zeros((3, 4))), ValueError, "C-contiguous"),
    ([1.0, 2.0], TypeError, r"params\[0\] must be a numpy.ndarray, got float"),
    (1.0, TypeError, "params must be a numpy.ndarray or a list of them, got float"),
    (None, TypeError, "got NoneType"),
    ([], ValueError, "params must not be empty"),
    ([np.zeros(2), "x"], TypeError, r"params\[1\] must be a numpy.ndarray"),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("params, error, match", BAD_PARAMS)
def test_bad_params_raise(case, params, error, match):
    with pytest.raises(error, match=match):
        case.cls(params)


@pytest.mark.parametrize("case", CASES)
def test_read_only_and_aliased_params_raise(case):
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="params must be writeable"):
        case.cls(ro)
    a = np.zeros(3)
    with pytest.raises(ValueError, match=r"params\[0\] and params\[1\] share memory"):
        case.cls([a, a])
    base = np.zeros(10)
    with pytest.raises(ValueError, match="share memory"):
        case.cls([base[2:6], base[:4]])
    case.cls([base[:5], base[5:]])  # adjacent, not overlapping: fine


@pytest.mark.parametrize("case", CASES)
def test_big_endian_params_raise(case):
    with pytest.raises(TypeError, match="float32 or float64"):
        case.cls(np.zeros(3, dtype=">f8"))


# -- stepping ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_step_updates_in_place_and_keeps_identity(case, dtype, rng):
    params = rng.standard_normal((4, 5)).astype(dtype)
    before = params.copy()
    data_pointer = params.__array_interface__["data"][0]
    opt = case.cls(params, lr=0.1)
    grad = rng.standard_normal((4, 5)).astype(dtype)
    grad.flags.writeable = False  # read-only gradients are fine, and never modified
    grad_before = grad.copy()
    assert opt.step(grad) is None
    assert opt.params is params and params.__array_interface__["data"][0] == data_pointer
    assert params.dtype == dtype and params.shape == (4, 5)
    assert not np.array_equal(params, before)
    np.testing.assert_array_equal(grad, grad_before)
    assert opt.step_count == 1
    for state_array in state_arrays(opt).values():  # (running scalars: test_scalars.py)
        assert state_array.dtype == dtype and state_array.shape == (4, 5)
        assert not np.shares_memory(state_array, params)


@pytest.mark.parametrize("case", CASES)
def test_non_contiguous_grad_is_read_correctly(case, rng):
    p1, p2 = np.zeros((3, 4)), np.zeros((3, 4))
    g = rng.standard_normal((4, 3)).T  # Fortran-ordered view
    case.cls(p1, lr=0.1).step(g)
    case.cls(p2, lr=0.1).step(np.ascontiguousarray(g))
    np.testing.assert_array_equal(p1, p2)


def _bad_grads(params):
    """(grads, error, match) for a two-array optimizer; one bad array in an otherwise good list."""
    good = [np.ones_like(p) for p in params]
    return [
        ([good[0], np.ones(4, dtype=np.float32)], TypeError, r"grads\[1\] has dtype float32"),
        ([good[0], np.ones(5)], ValueError, r"grads\[1\] has shape \(5,\), its parameter has"),
        ([good[0], [1.0] * 4], TypeError, r"grads\[1\] must be a numpy.ndarray, got list"),
        ([good[0], None], TypeError, r"grads\[1\] must be a numpy.ndarray, got NoneType"),
        ([good[0]], ValueError, "grads has 1 arrays, params has 2"),
        (good + [good[0]], ValueError, "grads has 3 arrays"),
        (good[0], TypeError, "grads must be a list of 2 arrays"),
        ([good[0], params[1]], ValueError, r"grads\[1\] shares memory with its parameter"),
        ([params[1][:3], good[1]], ValueError, r"grads\[0\] shares memory with params\[1\]"),
        ([good[0], np.ones(4, dtype=np.int64)], TypeError, "has dtype int64"),
    ]


@pytest.mark.parametrize("case", CASES)
def test_bad_grads_modify_nothing(case):
    params = [np.linspace(-1, 1, 3), np.linspace(1, 2, 4)]
    opt = case.cls(params, lr=0.1)
    for _ in range(2):  # once before any state exists, once after
        for grads, error, match in _bad_grads(params):
            before = _snapshot(opt, params)
            with pytest.raises(error, match=match):
                opt.step(grads)
            assert _snapshot(opt, params) == before
        opt.step([np.ones(3), np.ones(4)])


@pytest.mark.parametrize("case", CASES)
def test_single_array_bad_grads(case):
    params = np.linspace(-1, 1, 6)
    opt = case.cls(params)
    for grads, error, match in [
        (np.ones(5), ValueError, r"grads has shape \(5,\)"),
        (np.ones((2, 3)), ValueError, r"grads has shape \(2, 3\)"),
        (np.ones(6, dtype=np.float32), TypeError, "grads has dtype float32"),
        ([np.ones(6)], TypeError, "grads must be a numpy.ndarray, got list"),
        (params, ValueError, "grads shares memory with its parameter"),
        (1.0, TypeError, "got float"),
    ]:
        before = _snapshot(opt, [params])
        with pytest.raises(error, match=match):
            opt.step(grads)
        assert _snapshot(opt, [params]) == before


@pytest.mark.parametrize("case", CASES)
def test_lr_can_be_read_and_set(case, rng):
    p1, p2 = np.ones(5), np.ones(5)
    opt1, opt2 = case.cls(p1, lr=0.1), case.cls(p2, lr=0.1)
    grads = gradient_sequence(rng, 5, np.float64)[:4]
    for t, g in enumerate(grads):
        opt1.step(g)
        opt2.step(g)
        if t == 1:
            opt1.lr = 0.01
            assert opt1.lr == 0.01 and opt1.hyperparameters["lr"] == 0.01
    assert not np.array_equal(p1, p2)
    with pytest.raises(ValueError, match="Invalid learning rate: lr=-0.5"):
        opt1.lr = -0.5
    with pytest.raises(TypeError, match="Invalid learning rate"):
        opt1.lr = "fast"
    assert opt1.lr == 0.01


@pytest.mark.parametrize("case", CASES)
def test_repr_names_class_and_hyperparameters(case):
    text = repr(case.cls([np.zeros(2), np.zeros(3)], lr=0.5))
    assert text.startswith(f"{case.name}(params=[2 arrays], lr=0.5")


def test_show_config_reports_version_openmp_threads():
    out = io.StringIO()
    fastopt.show_config(file=out)
    text = out.getvalue()
    assert "fastopt" in text and "openmp" in text and "threads" in text


@pytest.mark.parametrize("case", CASES)
def test_non_finite_gradient_reaches_only_its_element(case):
    params = np.ones(6)
    opt = case.cls(params, lr=0.1)
    grad = np.array([0.5, np.nan, 0.5, np.inf, 0.5, -np.inf])
    with np.errstate(all="ignore"):
        opt.step(grad)
    reference = np.ones(6)
    case.cls(reference, lr=0.1).step(np.full(6, 0.5))
    np.testing.assert_array_equal(params[[0, 2, 4]], reference[[0, 2, 4]])
    assert np.isnan(params[1])
    for state in state_arrays(opt).values():
        assert np.all(np.isfinite(state[[0, 2, 4]]))
