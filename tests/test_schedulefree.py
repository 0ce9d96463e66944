"""The schedule-free optimizers: against the schedulefree package itself (every flag, lr
changed between steps, the eval point), their train/eval modes, and the drivers returning the
averaged point x. The registry-driven tests (references, state dicts, pickles, bad input,
drivers) cover them as every other optimizer."""

import pickle

import numpy as np
import pytest

import fastopt
from fastopt import _reference
from fastopt._schedulefree import AdamWScheduleFree, SGDScheduleFree

from conftest import gradient_sequence

CLASSES = [SGDScheduleFree, AdamWScheduleFree]

# Every flag and schedule setting of each class (schedulefree's names), 0 included.
SETTINGS = {
    SGDScheduleFree: [
        {}, {"lr": 0.1}, {"lr": 0.05, "momentum": 0.5}, {"lr": 0.1, "momentum": 0.2},
        {"lr": 0.1, "weight_decay": 0.1}, {"lr": 0.1, "warmup_steps": 5},
        {"lr": 0.1, "r": 1.0}, {"lr": 0.1, "weight_lr_power": 0.0},
        {"lr": 0.05, "weight_decay": 0.01, "warmup_steps": 7, "r": 0.5,
         "weight_lr_power": 1.0, "momentum": 0.8},
        {"lr": 0.0},
    ],
    AdamWScheduleFree: [
        {}, {"lr": 0.05}, {"lr": 0.01, "betas": (0.5, 0.9)}, {"lr": 0.01, "betas": (0.3, 0.0)},
        {"lr": 0.01, "eps": 1e-3}, {"lr": 0.01, "weight_decay": 0.1},
        {"lr": 0.01, "warmup_steps": 5}, {"lr": 0.01, "r": 2.0},
        {"lr": 0.01, "weight_lr_power": 0.0},
        {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05,
         "warmup_steps": 4, "r": 1.0, "weight_lr_power": 3.0},
        {"lr": 0.0},
    ],
}

SETTING_CASES = [pytest.param(cls, kwargs, id=f"{cls.__name__}-{kwargs}")
                 for cls in CLASSES for kwargs in SETTINGS[cls]]

# Relative (and absolute) agreement with the schedulefree package.
RTOL = {np.float64: 1e-10, np.float32: 2e-5}

SCALES = [1.0, 0.5, 0.0, 2.0, 1.0, 0.1, 0.0, 3.0, 1e-3, 1.0] * 3


def _beta(opt):
    h = opt.hyperparameters
    return h["betas"][0] if "betas" in h else h["momentum"]


# -- against the schedulefree package ----------------------------------------------------------

@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls, kwargs", SETTING_CASES)
def test_matches_the_schedulefree_package(cls, kwargs, dtype, foreach, rng):
    torch = pytest.importorskip("torch")
    schedulefree = pytest.importorskip("schedulefree")
    shape = (7, 5)
    params = rng.standard_normal(shape).astype(dtype)
    opt = cls(params, **kwargs)
    tp = torch.nn.Parameter(torch.from_numpy(params.copy()))
    theirs = getattr(schedulefree, cls.__name__)([tp], foreach=foreach, **kwargs)
    theirs.train()
    rtol = RTOL[dtype]
    for t, grad in enumerate(gradient_sequence(rng, shape, dtype, SCALES), start=1):
        if t == 12:  # lr changed between steps: lr_max and the weights follow it
            opt.lr = theirs.param_groups[0]["lr"] = 2.5 * opt.lr
        if t == 20:
            opt.lr = theirs.param_groups[0]["lr"] = 0.1 * opt.lr
        opt.step(grad)
        tp.grad = torch.from_numpy(grad.copy())
        theirs.step()
        np.testing.assert_allclose(params, tp.detach().numpy(), rtol=rtol, atol=rtol)
        np.testing.assert_allclose(opt.state[0]["z"], theirs.state[tp]["z"].numpy(),
                                   rtol=rtol, atol=rtol)
        if t % 7 == 0:  # the averaged point, and back
            opt.eval()
            theirs.eval()
            np.testing.assert_allclose(params, tp.detach().numpy(), rtol=rtol, atol=rtol)
            opt.train()
            theirs.train()
            np.testing.assert_allclose(params, tp.detach().numpy(), rtol=rtol, atol=rtol)
    group = theirs.param_groups[0]
    assert opt.state[0]["weight_sum"] == pytest.approx(group["weight_sum"], rel=1e-12)
    assert opt.state[0]["lr_max"] == pytest.approx(group["lr_max"], rel=1e-12)
    if cls is AdamWScheduleFree:
        np.testing.assert_allclose(opt.state[0]["exp_avg_sq"],
                                   theirs.state[tp]["exp_avg_sq"].numpy(), rtol=rtol)
    opt.eval()
    theirs.eval()
    np.testing.assert_allclose(params, tp.detach().numpy(), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("cls", CLASSES)
def test_defaults_are_the_schedulefree_packages(cls):
    schedulefree = pytest.importorskip("schedulefree")
    import inspect

    signature = inspect.signature(getattr(schedulefree, cls.__name__))
    for name, value in cls.record.defaults.items():
        assert signature.parameters[name].default == value, name
    assert set(signature.parameters) - {"params", "foreach"} == set(cls.record.defaults)


# -- train and eval modes ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls, kwargs", SETTING_CASES)
def test_eval_puts_the_average_and_train_puts_y_back(cls, kwargs, dtype, rng):
    params = [rng.standard_normal(s).astype(dtype) for s in [(4, 3), (), (5,)]]
    opt = cls(params, **kwargs)
    for _ in range(9):
        opt.step([rng.standard_normal(p.shape).astype(dtype) for p in params])
    y = [p.copy() for p in params]
    z = [s["z"].copy() for s in opt.state]
    beta = _beta(opt)
    assert opt.training
    opt.eval()
    assert not opt.training
    for p, yi, zi in zip(params, y, z):
        # y = (1 - beta) z + beta x
        np.testing.assert_allclose(p, (yi - (1 - beta) * zi) / beta,
                                   rtol=1e-4 if dtype == np.float32 else 1e-11, atol=1e-5)
    x = [p.copy() for p in params]
    opt.eval()  # nothing happens in eval mode
    for p, xi in zip(params, x):
        np.testing.assert_array_equal(p, xi)
    opt.train()
    opt.train()
    assert opt.training
    for p, yi in zip(params, y):
        np.testing.assert_allclose(p, yi, rtol=1e-4 if dtype == np.float32 else 1e-11,
                                   atol=1e-5)


@pytest.mark.parametrize("cls", CLASSES)
def test_step_in_eval_mode_is_an_error_and_changes_nothing(cls, rng):
    params = rng.standard_normal(6)
    opt = cls(params, lr=0.1)
    opt.step(rng.standard_normal(6))
    opt.eval()
    before, state = params.copy(), opt.state_dict()
    with pytest.raises(RuntimeError, match="eval mode.*call train"):
        opt.step(rng.standard_normal(6))
    np.testing.assert_array_equal(params, before)
    after = opt.state_dict()
    assert after.keys() == state.keys() and after["step"] == 1
    for key, value in state.items():
        np.testing.assert_array_equal(after[key], value)
    opt.train()
    opt.step(rng.standard_normal(6))
    assert opt.step_count == 2


@pytest.mark.parametrize("cls", CLASSES)
def test_modes_before_the_first_step_change_nothing(cls, rng):
    params = rng.standard_normal(5)
    before = params.copy()
    opt = cls(params)
    opt.train()  # as the schedulefree package requires: harmless here
    opt.eval()
    np.testing.assert_array_equal(params, before)
    with pytest.raises(RuntimeError, match="eval mode"):
        opt.step(np.ones(5))
    opt.train()
    opt.step(np.ones(5))


@pytest.mark.parametrize("cls", CLASSES)
def test_eval_refuses_a_parameter_changed_in_place(cls, rng):
    params = rng.standard_normal(6)
    opt = cls(params, lr=0.1)
    opt.step(rng.standard_normal(6))
    params.shape = (2, 3)
    with pytest.raises(ValueError, match="changed in place"):
        opt.eval()
    assert opt.training
    params.shape = (6,)
    opt.eval()
    assert not opt.training


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("cls", CLASSES)
def test_state_dict_and_pickle_keep_the_mode_and_resume_bit_identically(cls, mode, rng):
    grads = [rng.standard_normal(8) for _ in range(12)]
    params = rng.standard_normal(8)
    start = params.copy()
    opt = cls(params, lr=0.05, warmup_steps=3)
    for g in grads[:6]:
        opt.step(g)
    getattr(opt, mode)()
    saved, saved_params = opt.state_dict(), params.copy()
    assert saved["train_mode"] is (mode == "train")
    pickled = pickle.loads(pickle.dumps(opt))
    assert pickled.training is (mode == "train")

    resumed_params = saved_params.copy()
    resumed = cls(resumed_params, lr=1.0)
    resumed.load_state_dict(saved)
    assert resumed.training is (mode == "train")
    for o in (opt, resumed, pickled):
        o.train()
        for g in grads[6:]:
            o.step(g)
        o.eval()
    np.testing.assert_array_equal(resumed_params, params)
    np.testing.assert_array_equal(pickled.params, params)
    assert not np.array_equal(params, start)


@pytest.mark.parametrize("cls", CLASSES)
def test_bad_train_mode_in_a_state_dict_is_refused_and_changes_nothing(cls, rng):
    opt = cls(rng.standard_normal(4), lr=0.1)
    opt.step(rng.standard_normal(4))
    saved = opt.state_dict()
    other = cls(np.zeros(4))
    with pytest.raises(ValueError, match="missing.*train_mode"):
        other.load_state_dict({k: v for k, v in saved.items() if k != "train_mode"})
    with pytest.raises(TypeError, match="train_mode=1 must be a bool"):
        other.load_state_dict({**saved, "train_mode": 1})
    assert other.step_count == 0 and other.training
    other.load_state_dict({**saved, "train_mode": np.array(False)})  # as numpy.load gives
    assert not other.training and other.step_count == 1


@pytest.mark.parametrize("cls", CLASSES)
def test_state_dict_round_trips_through_numpy_savez(cls, rng, tmp_path):
    opt = cls(rng.standard_normal(4), lr=0.1)
    opt.step(rng.standard_normal(4))
    opt.eval()
    np.savez(tmp_path / "state.npz", **opt.state_dict())
    other = cls(np.zeros(4))
    with np.load(tmp_path / "state.npz") as saved:  # a Mapping, not a dict
        other.load_state_dict(saved)
    assert not other.training and other.step_count == 1
    np.testing.assert_array_equal(other.state[0]["z"], opt.state[0]["z"])


@pytest.mark.parametrize("kwargs, error, match", [
    ({"momentum": 0.0}, ValueError, r"momentum=0.0 must be in \(0, 1\)"),
    ({"momentum": 1.0}, ValueError, r"momentum=1.0 must be in \(0, 1\)"),
    ({"warmup_steps": -1}, ValueError, "warmup_steps=-1 must be"),
    ({"warmup_steps": 2.5}, TypeError, "warmup_steps=2.5 must be an int"),
    ({"r": -0.5}, ValueError, "r=-0.5 must be in"),
    ({"weight_lr_power": -1.0}, ValueError, "weight_lr_power=-1.0 must be in"),
    ({"maximize": True}, TypeError, "unexpected keyword argument 'maximize'"),
])
def test_bad_hyperparameters_sgd(kwargs, error, match):
    with pytest.raises(error, match=match):
        SGDScheduleFree(np.zeros(2), **kwargs)


@pytest.mark.parametrize("betas, match", [
    ((0.0, 0.999), r"betas\[0\]=0.0 must be in \(0, 1\)"),
    ((0.9, 1.0), r"betas\[1\]=1.0 must be in \[0, 1\)"),
])
def test_bad_betas_adamw(betas, match):
    with pytest.raises(ValueError, match=match):
        AdamWScheduleFree(np.zeros(2), betas=betas)


def test_warmup_steps_takes_integral_floats():
    assert SGDScheduleFree(np.zeros(1), warmup_steps=3.0).warmup_steps == 3


# -- the drivers return the averaged point ----------------------------------------------------

def _by_hand(cls, x0, grad, steps, **kwargs):
    x = x0.copy()
    opt = cls(x, **kwargs)
    for _ in range(steps):
        opt.step(grad(x))
    y = x.copy()
    opt.eval()
    return x, y


def _quadratic(x):
    return float(np.sum((x - 3.0) ** 2)), 2 * (x - 3.0)


@pytest.mark.parametrize("cls", CLASSES)
def test_minimize_returns_the_averaged_point(cls):
    x0 = np.array([0.0, 1.0, -2.0])
    res = fastopt.minimize(_quadratic, x0, method=cls.record.method, jac=True,
                           options={"lr": 0.05, "maxiter": 40, "gtol": 0})
    x, y = _by_hand(cls, x0, lambda x: _quadratic(x)[1], 40, lr=0.05)
    assert res.nit == 40
    np.testing.assert_allclose(res.x, x, rtol=1e-12)
    assert not np.allclose(res.x, y)
    # gradients are taken at y: fun and jac are those of the last point evaluated
    np.testing.assert_allclose(res.jac, _quadratic(y)[1], rtol=1e-12)


@pytest.mark.parametrize("cls", CLASSES)
def test_minimize_batch_returns_the_averaged_points(cls):
    X0 = np.array([[0.0, 1.0], [2.0, -1.0], [5.0, 5.0]])

    def fg(X):
        return np.sum((X - 3.0) ** 2, axis=1), 2 * (X - 3.0)

    res = fastopt.minimize_batch(fg, X0, method=cls.record.method, jac=True,
                                 options={"lr": 0.05, "maxiter": 30, "gtol": 0})
    for row, x0 in zip(res.x, X0):
        x, _ = _by_hand(cls, x0, lambda x: _quadratic(x)[1], 30, lr=0.05)
        np.testing.assert_allclose(row, x, rtol=1e-12)


@pytest.mark.parametrize("cls", CLASSES)
def test_minimize_minibatch_returns_the_averaged_point(cls):
    data = np.arange(8.0)

    def fun(x, batch):
        return float(np.mean((x[0] - batch) ** 2)), np.array([2 * np.mean(x[0] - batch)])

    res = fastopt.minimize_minibatch(fun, np.zeros(1), data=(data,), method=cls.record.method,
                                     batch_size=8, epochs=25, shuffle=False,
                                     options={"lr": 0.05})
    x, y = _by_hand(cls, np.zeros(1), lambda x: fun(x, data)[1], 25, lr=0.05)
    np.testing.assert_allclose(res.x, x, rtol=1e-12)
    assert not np.allclose(res.x, y)


@pytest.mark.parametrize("cls", CLASSES)
def test_bounds_project_z_so_that_the_average_stays_in_the_box(cls):
    # Projected schedule-free: z is projected after each update and y follows it, so every
    # iterate and the average x are in the box, and x nears L-BFGS-B's minimiser. (Without
    # projecting z, z ran off past the active bounds and x landed on the wrong side.)
    from scipy.optimize import minimize as scipy_minimize

    D, C = np.array([1.0, 2.0, 4.0, 8.0]), np.array([1.0, -2.0, 0.5, 3.0])

    def fg(x):
        return 0.5 * float(np.sum(D * (x - C) ** 2)), D * (x - C)

    bounds = [(None, 0.5), (-1.0, 1.0), (0.0, None), (2.0, 2.5)]
    lo, hi = np.array([-np.inf, -1.0, 0.0, 2.0]), np.array([0.5, 1.0, np.inf, 2.5])
    seen = []
    res = fastopt.minimize(fg, np.zeros(4), method=cls.record.method, jac=True, bounds=bounds,
                           callback=seen.append, options={"lr": 0.1, "maxiter": 20000})
    ref = scipy_minimize(fg, np.zeros(4), jac=True, method="L-BFGS-B", bounds=bounds)
    assert all(np.all((lo <= y) & (y <= hi)) for y in seen)
    assert np.all((lo <= res.x) & (res.x <= hi))
    np.testing.assert_allclose(res.x, ref.x, atol=1e-3)
    batch = fastopt.minimize_batch(lambda X: (0.5 * np.sum(D * (X - C) ** 2, axis=1),
                                              D * (X - C)),
                                   np.zeros((2, 4)), method=cls.record.method, jac=True,
                                   bounds=bounds, options={"lr": 0.1, "maxiter": 20000})
    np.testing.assert_array_equal(batch.x[0], res.x)


@pytest.mark.parametrize("cls", CLASSES)
def test_reference_eval_point_matches_the_class(cls, rng):
    # the NumPy reference's y and z give the class's x
    params = rng.standard_normal(10)
    expected, state = params.copy(), {}
    opt = cls(params, lr=0.05)
    for t, g in enumerate(gradient_sequence(rng, 10, np.float64, SCALES[:10]), start=1):
        opt.step(g)
        expected = getattr(_reference, cls.record.method)(expected, g, state, t,
                                                         **opt.hyperparameters)
    opt.eval()
    beta = _beta(opt)
    np.testing.assert_allclose(params, (expected - (1 - beta) * state["z"]) / beta,
                               rtol=1e-10)


# -- status 3: x, fun and jac belong to one point ----------------------------------------------
# A run stopped by a non-finite f or g returns its last finite iterate y, with its f and g (the
# average is not returned: the failed iteration's step has moved z and the weights past it).

def _fails_after(k, fg=_quadratic):
    """fg, but f is NaN from the (k+1)-th call on (the gradient stays finite)."""
    calls = []

    def fun(x):
        calls.append(1)
        f, g = fg(x)
        return (np.nan if len(calls) > k else f), g

    return fun


@pytest.mark.parametrize("bounds", [None, [(-1.0, 2.5)] * 3])
@pytest.mark.parametrize("cls", CLASSES)
def test_minimize_status_3_returns_x_fun_and_jac_of_one_point(cls, bounds):
    x0 = np.array([0.0, 1.0, -2.0])
    res = fastopt.minimize(_fails_after(13), x0, method=cls.record.method, jac=True,
                           bounds=bounds, options={"lr": 0.05, "maxiter": 40, "gtol": 0})
    assert res.status == 3 and res.nit == 12
    f, g = _quadratic(res.x)
    assert res.fun == f
    np.testing.assert_array_equal(res.jac, g)
    if bounds is None:  # the last finite iterate y, not the averaged point x
        x, y = _by_hand(cls, x0, lambda x: _quadratic(x)[1], 12, lr=0.05)
        np.testing.assert_allclose(res.x, y, rtol=1e-12)
        assert not np.allclose(res.x, x)


@pytest.mark.parametrize("native", [False, True])
def test_minimize_status_3_on_divergence_c_and_python_objectives(native):
    from scipy.optimize import rosen, rosen_der

    from fastopt import problems

    fun = problems.rosenbrock_lowlevel() if native else (lambda x: (rosen(x), rosen_der(x)))
    with np.errstate(all="ignore"):
        res = fastopt.minimize(fun, np.array([-1.2, 1.0]), method="sgdschedulefree",
                               jac=True, options={"lr": 0.5, "maxiter": 100})
    assert res.status == 3 and np.isfinite(res.fun)
    np.testing.assert_allclose(res.fun, rosen(res.x), rtol=1e-12)
    np.testing.assert_allclose(res.jac, rosen_der(res.x), rtol=1e-12)
    # minimize_batch (the C batch loop for a C objective): row 1 diverges, row 0 does not
    fun = fun if native else (lambda X: (rosen(X.T), np.array([rosen_der(x) for x in X])))
    with np.errstate(all="ignore"):
        res = fastopt.minimize_batch(fun, np.array([[-1.2, 1.0], [-1.2, 1.0]]),
                                     method="sgdschedulefree", jac=True,
                                     options={"lr": np.array([1e-3, 0.5]), "maxiter": 100})
    assert res.status.tolist() == [1, 3]
    np.testing.assert_allclose(res.jac[1], rosen_der(res.x[1]), rtol=1e-12)
    np.testing.assert_allclose(res.fun[1], rosen(res.x[1]), rtol=1e-12)
    assert not np.allclose(res.fun[0], rosen(res.x[0]), rtol=1e-12)  # row 0: the average


@pytest.mark.parametrize("cls", CLASSES)
def test_minimize_batch_status_3_rows_keep_their_point_the_others_average(cls):
    X0 = np.array([[0.0, 1.0], [2.0, -1.0], [5.0, 5.0]])
    calls = []

    def fg(X, row):  # row 1's f turns NaN at the 9th evaluation (row: per problem)
        calls.append(1)
        f, G = np.sum((X - 3.0) ** 2, axis=1), 2 * (X - 3.0)
        if len(calls) > 8:
            f[row == 1] = np.nan
        return f, G

    res = fastopt.minimize_batch(fg, X0, args=(np.arange(3),), method=cls.record.method,
                                 jac=True, options={"lr": 0.05, "maxiter": 30, "gtol": 0})
    assert res.status.tolist() == [1, 3, 1] and res.nit.tolist() == [30, 7, 30]
    for r, x0 in enumerate(X0):
        x, y = _by_hand(cls, x0, lambda x: _quadratic(x)[1], res.nit[r], lr=0.05)
        np.testing.assert_allclose(res.x[r], y if r == 1 else x, rtol=1e-12)
    f, g = _quadratic(res.x[1])
    assert res.fun[1] == f
    np.testing.assert_array_equal(res.jac[1], g)


@pytest.mark.parametrize("cls", CLASSES)
def test_minimize_minibatch_status_3_returns_the_last_finite_iterate(cls):
    data = np.arange(8.0)
    calls = []

    def fun(x, batch):
        calls.append(1)
        f = float(np.mean((x[0] - batch) ** 2)) if len(calls) <= 10 else np.nan
        return f, np.array([2 * np.mean(x[0] - batch)])

    res = fastopt.minimize_minibatch(fun, np.zeros(1), data=(data,), method=cls.record.method,
                                     batch_size=8, epochs=25, shuffle=False,
                                     options={"lr": 0.05})
    assert res.status == 3 and res.nit == 9
    x, y = _by_hand(cls, np.zeros(1), lambda x: fun(x, data)[1], 9, lr=0.05)
    np.testing.assert_allclose(res.x, y, rtol=1e-12)
    assert not np.allclose(res.x, x)
    np.testing.assert_array_equal(res.jac, [2 * np.mean(res.x[0] - data)])
