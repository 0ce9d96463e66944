"""Adafactor: what the registry-driven tests cannot see, because it is not elementwise.

The registry-driven tests step one (7, 5) or vector parameter; Adafactor's update depends on
each parameter's shape (factored over its last two dimensions from 2 dimensions on) and on
norms of the whole parameter. Here: every non-elementwise optimizer against its reference and
torch on parameters of 0, 1, 2 and 3 dimensions at once, its state shapes, results that do
not depend on the thread count, resume, and the kernel entry's size checks.
"""

import pickle
import subprocess
import sys

import numpy as np
import pytest

import fastopt
from _registry import OPTIMIZERS, variant_cases
from conftest import gradient_sequence
from fastopt import _kernels, _reference

NOT_ELEMENTWISE = [c for c in OPTIMIZERS if not c.cls.elementwise]
SHAPES = [(), (11,), (7, 5), (2, 3, 4), (1, 9), (6, 1)]
SCALES = [1.0, 0.5, 0.0, 2.0, 1.0, 0.1, 0.0, 3.0, 1e-3, 1.0] * 2


def _gradients(rng, shape, dtype):
    # (conftest's sequence, for 0-d parameters too)
    size = int(np.prod(shape))
    return [g.reshape(shape) for g in gradient_sequence(rng, (size,), dtype, SCALES)]


# On top of the record's variants: the relative step size capped by 1/sqrt(t) (lr > 1), eps2
# above the parameter's RMS, a constant beta2 (beta2_decay = 0), strong weight decay.
ADAFACTOR_EXTRA = [{"lr": 2.0}, {"eps": (None, 10.0), "maximize": True}, {"beta2_decay": 0.0},
                   {"lr": 0.5, "weight_decay": 0.5, "d": 1.0}]


def _cases():
    adafactor = next(c for c in OPTIMIZERS if c.cls is fastopt.Adafactor)
    return [p for p in variant_cases() if p.values[0] in NOT_ELEMENTWISE] + [
        pytest.param(adafactor, kw, id=f"Adafactor-extra{i}")
        for i, kw in enumerate(ADAFACTOR_EXTRA)]


def test_adafactor_is_not_elementwise():
    assert [c.cls for c in NOT_ELEMENTWISE] == [fastopt.Adafactor]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case, kwargs", _cases())
def test_every_shape_matches_the_reference(case, kwargs, dtype, rng):
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    opt = case.cls(params, **kwargs)
    expected = [p.copy() for p in params]
    states = [{} for _ in params]
    grads = [_gradients(rng, s, dtype) for s in SHAPES]
    rtol = {np.float64: 1e-12, np.float32: 2e-5}[dtype]
    for t in range(1, len(SCALES) + 1):
        step = [g[t - 1] for g in grads]
        opt.step(step)
        for i, g in enumerate(step):
            expected[i] = case.reference(expected[i], g, states[i], t, **opt.hyperparameters)
            np.testing.assert_allclose(params[i], expected[i], rtol=rtol, atol=rtol)
            for name, value in states[i].items():
                assert opt.state[i][name].shape == value.shape
                np.testing.assert_allclose(opt.state[i][name], value, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case, kwargs", _cases())
def test_every_shape_matches_torch(case, kwargs, dtype, rng):
    torch = pytest.importorskip("torch")
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    opt = case.cls(params, **kwargs)
    twins = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params]
    # foreach=False: torch's per-tensor loop takes eps1 from each parameter's dtype, as
    # fastopt does (its foreach path takes the first group's for all)
    twin = getattr(torch.optim, case.torch_name)(twins, **case.torch_kwargs, **kwargs,
                                                 foreach=False)
    grads = [_gradients(rng, s, dtype) for s in SHAPES]
    rtol = {np.float64: 1e-10, np.float32: 1e-5}[dtype]
    for t in range(len(SCALES)):
        step = [g[t] for g in grads]
        opt.step(step)
        for tp, g in zip(twins, step):
            tp.grad = torch.from_numpy(g.copy())
        twin.step()
        for p, tp in zip(params, twins):
            np.testing.assert_allclose(p, tp.detach().numpy(), rtol=rtol, atol=rtol)
        for i, tp in enumerate(twins):
            for name, value in twin.state[tp].items():
                if name != "step":
                    np.testing.assert_allclose(opt.state[i][name], value.numpy(),
                                               rtol=rtol, atol=rtol)


def test_state_is_factored_from_two_dimensions():
    params = [np.ones(s) for s in [(), (4,), (4, 5), (2, 3, 4, 5)]]
    opt = fastopt.Adafactor(params)
    opt.step([np.ones(s) for s in [(), (4,), (4, 5), (2, 3, 4, 5)]])
    assert {k: v.shape for k, v in opt.state[0].items()} == {"variance": ()}
    assert {k: v.shape for k, v in opt.state[1].items()} == {"variance": (4,)}
    assert {k: v.shape for k, v in opt.state[2].items()} == {"row_var": (4, 1),
                                                             "col_var": (1, 5)}
    assert {k: v.shape for k, v in opt.state[3].items()} == {"row_var": (2, 3, 4, 1),
                                                             "col_var": (2, 3, 1, 5)}
    with pytest.raises(ValueError, match=r"state\[2\]\['row_var'\] has shape \(4, 5\); it "
                                         r"must be \(4, 1\)"):
        opt.state[2]["row_var"] = np.zeros((4, 5))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(3 * 2**15 + 7,), (300, 401), (5, 64, 333), (3, 2**16)])
def test_results_do_not_depend_on_the_thread_count(shape, dtype, rng):
    # Large enough for several threads and several blocks per parameter: the partial sums
    # are added in an order fixed by the shape, so every thread count gives the same bits.
    start = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(3)]
    results = []
    for n_threads in (1, 2, 3):
        p = start.copy()
        opt = fastopt.Adafactor(p, lr=0.1, weight_decay=0.1, n_threads=n_threads)
        for g in grads:
            opt.step(g)
        results.append((p, [a.copy() for a in opt.state[0].values()]))
    for p, state in results[1:]:
        np.testing.assert_array_equal(p, results[0][0])
        for a, b in zip(state, results[0][1]):
            np.testing.assert_array_equal(a, b)


def test_minimize_runs_the_vector_path_of_the_class(rng):
    # The drivers step a vector through the Rule (the kernel's vector path); the class steps
    # it through its own entry: the same arithmetic, the same bits.
    x0 = rng.standard_normal(6)
    seen = []
    res = fastopt.minimize(lambda x: (float(np.sum((x - 3) ** 2)), 2 * (x - 3)), x0.copy(),
                           method="adafactor", jac=True, callback=lambda xk: seen.append(
                               xk.copy()), options={"lr": 0.1, "maxiter": 25})
    x = x0.copy()
    opt = fastopt.Adafactor(x, lr=0.1)
    for expected in seen:
        opt.step(2 * (x - 3))
        np.testing.assert_array_equal(x, expected)
    assert res.nit == 25


def test_minimize_batch_updates_each_problem_alone(rng):
    X0 = rng.standard_normal((9, 4)) * rng.uniform(0.1, 10, (9, 1))
    fun = lambda X: (np.sum((X - 1) ** 2, axis=1), 2 * (X - 1))  # noqa: E731
    batch = fastopt.minimize_batch(fun, X0.copy(), method="adafactor", jac=True,
                                   options={"lr": 0.1, "maxiter": 40})
    for i, x0 in enumerate(X0):
        alone = fastopt.minimize(lambda x: (float(np.sum((x - 1) ** 2)), 2 * (x - 1)),
                                 x0.copy(), method="adafactor", jac=True,
                                 options={"lr": 0.1, "maxiter": 40})
        np.testing.assert_array_equal(batch.x[i], alone.x)


@pytest.mark.parametrize("channel", ["state_dict", "savez", "pickle"])
def test_resume_of_every_shape_is_bit_identical(channel, rng, tmp_path):
    shapes = [(), (5,), (4, 3), (2, 3, 2)]
    start = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(8)]
    whole = [p.copy() for p in start]
    opt = fastopt.Adafactor(whole, weight_decay=0.1, eps=(1e-20, 1e-3))
    for g in grads:
        opt.step(g)
    half = [p.copy() for p in start]
    first = fastopt.Adafactor(half, weight_decay=0.1, eps=(1e-20, 1e-3))
    for g in grads[:4]:
        first.step(g)
    if channel == "pickle":
        second = pickle.loads(pickle.dumps(first))
        half = second.params
    else:
        saved = first.state_dict()
        if channel == "savez":
            np.savez(tmp_path / "s.npz", **saved)
            with np.load(tmp_path / "s.npz", allow_pickle=False) as data:
                saved = dict(data)
        half = [p.copy() for p in half]
        second = fastopt.Adafactor(half)
        second.load_state_dict(saved)
    for g in grads[4:]:
        second.step(g)
    for a, b in zip(half, whole):
        np.testing.assert_array_equal(a, b)
    assert second.hyperparameters == opt.hyperparameters


def test_eps_none_survives_savez(tmp_path):
    opt = fastopt.Adafactor(np.ones((2, 2)))
    opt.step(np.ones((2, 2)))
    np.savez(tmp_path / "s.npz", **opt.state_dict())
    other = fastopt.Adafactor(np.ones((2, 2)), eps=(1e-3, 1e-2))
    with np.load(tmp_path / "s.npz", allow_pickle=False) as data:
        other.load_state_dict(dict(data))
    assert other.eps == (None, 1e-3)


def test_load_state_dict_checks_the_factored_shapes():
    opt = fastopt.Adafactor([np.ones((3, 4)), np.ones(2)])
    opt.step([np.ones((3, 4)), np.ones(2)])
    saved = opt.state_dict()
    bad = dict(saved, **{"row_var.0": np.zeros((3, 4))})
    before = opt.state_dict()
    with pytest.raises(ValueError, match=r"row_var.0.*must be \(3, 1\)"):
        opt.load_state_dict(bad)
    with pytest.raises(ValueError, match="missing"):
        opt.load_state_dict({k: v for k, v in saved.items() if k != "col_var.0"})
    with pytest.raises(ValueError, match="unexpected"):
        opt.load_state_dict(dict(saved, **{"variance.0": np.zeros((3, 4))}))
    after = opt.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before if k != "eps")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"beta2_decay": 0.1}, ValueError, "beta2_decay=0.1"),
    ({"d": 0.5}, ValueError, "d=0.5"),
    ({"eps": (-1.0, 1e-3)}, ValueError, r"eps\[0\]=-1.0"),
    ({"eps": (None, -1.0)}, ValueError, r"eps\[1\]=-1.0"),
    ({"eps": (None, None)}, TypeError, r"eps\[1\]=None"),
    ({"eps": 1e-3}, TypeError, "eps"),
    ({"weight_decay": -1.0}, ValueError, "weight_decay=-1.0"),
])
def test_bad_hyperparameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        fastopt.Adafactor(np.ones(3), **kwargs)


def test_empty_parameters_are_left_alone():
    params = [np.zeros(0), np.zeros((0, 3)), np.zeros((3, 0)), np.zeros((2, 0, 4))]
    opt = fastopt.Adafactor(params)
    opt.step([p.copy() for p in params])
    assert opt.state[2]["row_var"].shape == (3, 1)
    assert opt.step_count == 1


def test_kernel_entry_checks_sizes():
    # The entry runs on raw memory: sizes that do not fit are refused, never read past.
    p, g = np.zeros(12), np.ones(12)
    with pytest.raises(ValueError):
        _kernels.adafactor_step(p, g[:5], None, None, np.zeros(12), 0, 0, 0,
                                0.1, -0.8, -1, 1e-3, 1, 0, False, 1, 1)
    with pytest.raises(ValueError):
        _kernels.adafactor_step(p, g, None, None, np.zeros(3), 0, 0, 0,
                                0.1, -0.8, -1, 1e-3, 1, 0, False, 1, 1)
    for batch, rows, cols, r, c in [(1, 3, 4, 2, 4), (1, 3, 4, 3, 5), (2, 3, 4, 6, 8),
                                    (-1, -3, 4, 3, 4), (2**62, 2**62, 4, 3, 4)]:
        with pytest.raises(ValueError):
            _kernels.adafactor_step(p, g, np.zeros(r), np.zeros(c), None, batch, rows, cols,
                                    0.1, -0.8, -1, 1e-3, 1, 0, False, 1, 1)
    with pytest.raises(ValueError):
        _kernels.adafactor_step(p, g, None, None, np.zeros(12), 0, 0, 0,
                                0.1, -0.8, -1, 1e-3, 1, 0, False, 0, 1)
    assert not p.any()


def test_two_threads_cannot_step_one_optimizer_at_once():
    # step() holds a lock while the kernel runs without the GIL (run in a subprocess: a
    # broken lock could hang).
    code = """
import threading, numpy as np, fastopt
p = np.ones((2000, 2000))
opt = fastopt.Adafactor(p)
errors, g = [], np.ones((2000, 2000))
def run():
    for _ in range(5):
        try:
            opt.step(g)
        except RuntimeError as e:
            errors.append(str(e))
threads = [threading.Thread(target=run) for _ in range(3)]
[t.start() for t in threads]; [t.join() for t in threads]
assert opt.step_count + len(errors) == 15, (opt.step_count, errors)
assert all("already running" in e for e in errors)
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_reference_matches_the_paper_factorisation():
    # The factored estimate is the outer product of the row and column means over their
    # mean (Shazeer & Stern 2018, eq. 4 with means); on a rank-one squared gradient it is
    # exact, so the first step is g / |g| elementwise: the update's RMS is 1 and the step is
    # lr * RMS(p).
    a, b = np.array([1.0, 2.0, 3.0]), np.array([0.5, 4.0])
    g = np.outer(a, b)
    p = np.full((3, 2), 2.0)
    new = _reference.adafactor(p, g, {}, 1, lr=0.01, beta2_decay=-0.8, eps=(1e-30, 1e-3),
                               d=1.0, weight_decay=0.0, maximize=False)
    np.testing.assert_allclose(new, p - 0.01 * 2.0 * np.sign(g), rtol=1e-12)
