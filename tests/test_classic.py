"""Rprop and ASGD (fastopt/_classic.py): torch's behaviour where it surprises (Rprop's first
step and sign logic, ASGD's eta, mu and averaged iterate), non-finite gradients, and
agreement with torch.optim over every flag combination, state included.

The registry-driven tests (references, state dicts, pickling, drivers, torch's parameters
over the derived variants) cover both classes as every other; these check what is their own.
"""

import itertools

import numpy as np
import pytest

import fastopt
from conftest import DTYPES, gradient_sequence
from fastopt import _reference

# -- Rprop -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lr, step_sizes, moved", [
    (0.1, (1e-6, 50.0), 0.1),
    (100.0, (1e-6, 50.0), 50.0),  # the initial step size is clamped on the first step
    (1e-3, (0.01, 1.0), 0.01),
])
def test_rprop_first_step_moves_each_coordinate_by_lr_clamped(dtype, lr, step_sizes, moved):
    # torch: prev starts at 0, so g * prev == 0, the factor is 1 (not etaplus), and the step
    # size is lr clamped into step_sizes; the gradient's size plays no part, sign(0) = 0.
    p = np.array([1.0, -2.0, 3.0, 0.5], dtype=dtype)
    grad = np.array([1e-8, -1e8, 0.0, -0.5], dtype=dtype)
    start = p.copy()
    opt = fastopt.Rprop(p, lr=lr, step_sizes=step_sizes)
    opt.step(grad)
    step = dtype(moved)
    np.testing.assert_array_equal(p, start - np.array([step, -step, 0, -step], dtype=dtype))
    np.testing.assert_array_equal(opt.state[0]["step_size"], np.full(4, step, dtype))
    np.testing.assert_array_equal(opt.state[0]["prev"], grad)


def test_rprop_sign_flip_shrinks_and_forgets_the_gradient():
    p = np.zeros(3)
    opt = fastopt.Rprop(p, lr=0.1, etas=(0.5, 1.2))
    opt.step(np.array([1.0, 1.0, 1.0]))
    opt.step(np.array([2.0, -3.0, 0.0]))  # same sign, flipped, zero
    np.testing.assert_allclose(opt.state[0]["step_size"], [0.12, 0.05, 0.1], rtol=1e-15)
    np.testing.assert_array_equal(opt.state[0]["prev"], [2.0, 0.0, 0.0])
    np.testing.assert_allclose(p, [-0.22, -0.1, -0.1], rtol=1e-15)  # no step where it flipped
    opt.step(np.array([1.0, -1.0, 1.0]))  # after the flip prev is 0: the step size is kept
    np.testing.assert_allclose(opt.state[0]["step_size"], [0.144, 0.05, 0.1], rtol=1e-15)


def test_rprop_reads_lr_when_it_makes_its_state():
    # as torch: lr is each step size's start, not a factor of the step
    grads = gradient_sequence(np.random.default_rng(0), 6, np.float64)[:5]
    a, b = np.ones(6), np.ones(6)
    opt_a, opt_b = fastopt.Rprop(a, lr=0.1), fastopt.Rprop(b, lr=0.1)
    for t, g in enumerate(grads):
        if t == 1:
            opt_a.lr = 0.5
        opt_a.step(g)
        opt_b.step(g)
    np.testing.assert_array_equal(a, b)


# -- ASGD ------------------------------------------------------------------------------------


@pytest.mark.parametrize("t0", [0.0, 3.0, 4.5])
def test_asgd_ax_is_the_mean_of_the_iterates_after_t0(t0):
    rng = np.random.default_rng(1)
    p = rng.standard_normal(4)
    opt = fastopt.ASGD(p, lr=0.05, lambd=0.01, t0=t0, weight_decay=0.1)
    iterates = []
    for t in range(1, 15):
        opt.step(rng.standard_normal(4))
        iterates.append(p.copy())
        first = max(t0 + 2, 1) if t0 == int(t0) else None
        if t <= t0 + 2:  # before averaging starts, ax is the parameter itself
            np.testing.assert_array_equal(opt.state[0]["ax"], p)
        elif first is not None:
            expected = np.mean(iterates[int(first) - 1:], axis=0)
            np.testing.assert_allclose(opt.state[0]["ax"], expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("t", [1, 2, 3, 10, 10**6, 10**9])
def test_asgd_eta_and_mu_are_torchs_state_after_t_minus_1_steps(t):
    # torch sets eta = lr / (1 + lambd lr step) ** alpha and mu = 1 / max(1, step - t0) after
    # each step, with lr and 1 before the first
    lr, lambd, alpha, t0 = 0.01, 1e-4, 0.75, 5.0
    eta, mu = _reference.asgd_eta_mu(t, lr, lambd, alpha, t0)
    step = t - 1
    if step == 0:
        assert (eta, mu) == (lr, 1.0)
    else:
        assert eta == lr / ((1 + lambd * lr * step) ** alpha)
        assert mu == 1 / max(1, step - t0)


def test_asgd_kernel_uses_the_step_count_for_eta_and_mu():
    # a state dict from step 10**6 on: the kernel's eta and mu are those of that step
    lr, lambd, alpha, t0 = 0.5, 0.1, 0.75, 10.0
    p = np.array([1.0, 2.0])
    opt = fastopt.ASGD(p, lr=lr, lambd=lambd, alpha=alpha, t0=t0)
    opt.step(np.zeros(2))
    state = opt.state_dict()
    state["step"] = 10**6
    opt.load_state_dict(state)
    before, ax = p.copy(), opt.state[0]["ax"].copy()
    g = np.array([0.5, -1.0])
    opt.step(g)
    eta, mu = _reference.asgd_eta_mu(10**6 + 1, lr, lambd, alpha, t0)
    np.testing.assert_allclose(p, before * (1 - lambd * eta) - eta * g, rtol=1e-15)
    np.testing.assert_allclose(opt.state[0]["ax"], ax + (p - ax) * mu, rtol=1e-15)


# -- non-finite gradients: as torch, and as the reference -----------------------------------

NONFINITE = [np.nan, np.inf, -np.inf]


def _nonfinite_gradients(dtype, shape=(6, 4), steps=8, seed=3):
    """Ordinary gradients with NaN and +-inf entries in some steps (the first included), and
    some exact zeros."""
    rng = np.random.default_rng(seed)
    grads = []
    for t in range(steps):
        g = rng.standard_normal(shape)
        g[rng.random(shape) < 0.15] = 0.0
        if t in (0, 3, 5):
            idx = rng.choice(g.size, 4, replace=False)
            g.flat[idx] = rng.choice(NONFINITE, 4)
        grads.append(g.astype(dtype))
    return grads


NONFINITE_CASES = [
    (fastopt.Rprop, {}), (fastopt.Rprop, {"lr": 0.1, "maximize": True}),
    (fastopt.ASGD, {}), (fastopt.ASGD, {"t0": 1.0, "weight_decay": 0.1, "maximize": True}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls, kwargs", NONFINITE_CASES,
                         ids=[f"{c.__name__}-{k}" for c, k in NONFINITE_CASES])
def test_nonfinite_gradients_match_the_reference(cls, kwargs, dtype):
    p = np.random.default_rng(4).standard_normal((6, 4)).astype(dtype)
    expected, state = p.copy(), {}
    opt = cls(p, **kwargs)
    hyper = opt.hyperparameters
    with np.errstate(all="ignore"):
        for t, g in enumerate(_nonfinite_gradients(dtype), start=1):
            opt.step(g)
            expected = getattr(_reference, cls.record.method)(expected, g, state, t, **hyper)
            np.testing.assert_array_equal(p, expected)  # NaN where the reference has NaN
            for name, value in state.items():
                np.testing.assert_array_equal(opt.state[0][name], value)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rprop_nonfinite_gradients_as_torch(dtype):
    # torch.sign(NaN) is 0: a NaN product keeps the step size, a NaN gradient moves nothing
    # (and is kept as prev), an infinite one moves by the step size; nothing becomes NaN
    nan, inf = np.nan, np.inf
    p = np.zeros(5, dtype)
    opt = fastopt.Rprop(p, lr=0.1)
    opt.step(np.array([nan, inf, -inf, 1.0, 1.0], dtype))
    np.testing.assert_array_equal(p, np.array([0.0, -0.1, 0.1, -0.1, -0.1], dtype))
    np.testing.assert_array_equal(opt.state[0]["step_size"], np.full(5, 0.1, dtype))
    opt.step(np.array([1.0, 1.0, 1.0, nan, 0.0], dtype))  # inf * 1 > 0, -inf * 1 < 0
    sizes = np.array([0.1, 0.1 * 1.2, 0.1 * 0.5, 0.1, 0.1])
    np.testing.assert_allclose(opt.state[0]["step_size"], sizes.astype(dtype), rtol=1e-7)
    np.testing.assert_array_equal(opt.state[0]["prev"], np.array([1, 1, 0, nan, 0], dtype))
    assert np.isfinite(p).all() and np.isfinite(opt.state[0]["step_size"]).all()


# -- torch.optim: every flag combination, parameters and state -------------------------------

RPROP_SETTINGS = [
    dict(lr=lr, etas=etas, step_sizes=step_sizes, maximize=maximize)
    for lr, etas, step_sizes, maximize in itertools.product(
        (0.01, 0.3, 80.0), ((0.5, 1.2), (0.2, 1.9)), ((1e-6, 50.0), (1e-3, 0.2)),
        (False, True))
]
ASGD_SETTINGS = [
    dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, maximize=maximize)
    for (lr, lambd, alpha), t0, weight_decay, maximize in itertools.product(
        ((0.01, 1e-4, 0.75), (0.2, 0.05, 0.5), (0.05, 0.0, 0.0)), (1e6, 0.0, 4.0),
        (0.0, 0.1), (False, True))
]
TORCH_CASES = ([("Rprop", s) for s in RPROP_SETTINGS] + [("ASGD", s) for s in ASGD_SETTINGS])
# float64 relative tolerance, float32 (rtol, atol) as test_torch's.
TORCH_TOL = {np.float64: 1e-10, np.float32: 1e-5}


def _torch_steps(name, kwargs, dtype, grads, torch):
    """(fastopt parameters and state, torch's) after each gradient of ``grads``."""
    p = np.random.default_rng(5).standard_normal(grads[0].shape).astype(dtype)
    opt = getattr(fastopt, name)(p, **kwargs)
    tp = torch.nn.Parameter(torch.from_numpy(p.copy()))
    topt = getattr(torch.optim, name)([tp], **kwargs)
    for g in grads:
        opt.step(g)
        tp.grad = torch.from_numpy(g.copy())
        topt.step()
        state = topt.state[tp]
        yield ((p, opt.state[0]),
               (tp.detach().numpy(), {k: state[k].numpy() for k in opt.state[0]}))


@pytest.fixture
def torch_float64_scalars():
    """torch with float64 as its default dtype for one test, then restored: torch keeps
    ASGD's eta and mu as tensors of its default dtype (float32 ones round float64 steps)."""
    torch = pytest.importorskip("torch")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("name, kwargs", TORCH_CASES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(TORCH_CASES)])
def test_float64_matches_torch_with_float64_scalars(name, kwargs, torch_float64_scalars):
    grads = gradient_sequence(np.random.default_rng(6), (5, 3), np.float64,
                              [1.0, 0.5, 0.0, 2.0, 1.0, 0.1, 3.0, 1e-3, 1.0, 0.3] * 3)
    for (p, state), (tp, tstate) in _torch_steps(name, kwargs, np.float64, grads,
                                                 torch_float64_scalars):
        np.testing.assert_allclose(p, tp, rtol=TORCH_TOL[np.float64], atol=1e-300)
        for key in state:
            np.testing.assert_allclose(state[key], tstate[key], rtol=TORCH_TOL[np.float64],
                                       atol=1e-300)


@pytest.mark.parametrize("name, kwargs", TORCH_CASES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(TORCH_CASES)])
def test_float32_matches_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    grads = gradient_sequence(np.random.default_rng(7), (5, 3), np.float32,
                              [1.0, 0.5, 0.0, 2.0, 1.0, 0.1, 3.0, 1e-3, 1.0, 0.3] * 3)
    tol = TORCH_TOL[np.float32]
    for (p, state), (tp, tstate) in _torch_steps(name, kwargs, np.float32, grads, torch):
        np.testing.assert_allclose(p, tp, rtol=tol, atol=tol)
        for key in state:
            np.testing.assert_allclose(state[key], tstate[key], rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls, kwargs", NONFINITE_CASES,
                         ids=[f"{c.__name__}-{k}" for c, k in NONFINITE_CASES])
def test_nonfinite_gradients_match_torch(cls, kwargs, dtype, torch_float64_scalars):
    grads = _nonfinite_gradients(dtype)
    with np.errstate(all="ignore"):
        for (p, state), (tp, tstate) in _torch_steps(cls.__name__, kwargs, dtype, grads,
                                                     torch_float64_scalars):
            # NaN exactly where torch has NaN (assert_allclose's equal_nan), inf as inf
            tol = TORCH_TOL[dtype]
            np.testing.assert_allclose(p, tp, rtol=tol, atol=tol)
            for key in state:
                np.testing.assert_allclose(state[key], tstate[key], rtol=tol, atol=tol)


# ASGD's copy of the parameter into ax (before t0) runs with streaming stores on arrays larger
# than the caches (fastopt/_kernels_impl.pxi, ASGD_STREAM_BYTES): the same bits as the plain
# kernel, which runs on arrays under the threshold: a big array against the same values split
# into small ones, across the switch to averaging at t0, any thread count and alignment of ax.
@pytest.mark.parametrize("offset", [0, 1])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [{}, {"weight_decay": 0.1, "maximize": True}])
def test_asgd_streaming_copy_is_bitwise_the_plain_kernel(kwargs, dtype, offset):
    itemsize = np.dtype(dtype).itemsize
    n = (8 << 20) // itemsize + 37  # just over the threshold, not a multiple of the vectors
    rng = np.random.default_rng(1)
    start = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(2)]
    pieces = np.array_split(np.arange(n), 64)  # each far under the threshold
    small = [start[idx].copy() for idx in pieces]
    ref = fastopt.ASGD(small, lr=0.01, t0=3, **kwargs)
    for threads in (1, 2):
        big = start.copy()
        opt = fastopt.ASGD(big, lr=0.01, t0=3, n_threads=threads, **kwargs)
        opt.step(grads[0])
        if offset:  # ax one element off the vectors' alignment
            buffer = np.empty(n + 1, dtype)[1:]
            buffer[...] = opt.state[0]["ax"]
            opt.state[0]["ax"] = buffer
        for t in range(1, 7):  # mu == 1 (the copy) in steps 1-5, averaging in 6 and 7
            opt.step(grads[t % 2])
        if threads == 1:
            for t in range(7):
                ref.step([grads[t % 2][idx] for idx in pieces])
        np.testing.assert_array_equal(big, np.concatenate(small))
        np.testing.assert_array_equal(opt.state[0]["ax"],
                                      np.concatenate([s["ax"] for s in ref.state]))
