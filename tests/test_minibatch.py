"""fastopt.minimize_minibatch: GD / SGD / mini-batch on data, seeds, epochs, callbacks."""

import numpy as np
import pytest
from scipy.optimize import OptimizeWarning

import fastopt
from fastopt._methods import METHODS
from fastopt._registry import BY_METHOD


@pytest.fixture
def regression(rng):
    X = rng.standard_normal((103, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.01 * rng.standard_normal(103)
    return X, y


def squared_loss(w, X, y):
    r = X @ w - y
    return 0.5 * np.mean(r**2), X.T @ r / len(y)


# Each method's options for this least-squares problem, from its record.
OPTIONS = {name: record.options["least_squares"] for name, record in BY_METHOD.items()}


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_fits_least_squares(method, regression):
    X, y = regression
    res = fastopt.minimize_minibatch(squared_loss, np.zeros(4), data=(X, y), method=method,
                                     batch_size=8, epochs=60, seed=0,
                                     options=OPTIONS[method])
    # no stopping rule was asked for: the epochs ran out (status 1), as maxiter in SciPy
    assert not res.success and res.status == 1 and res.nepoch == 60
    assert res.message == "Maximum number of epochs has been reached."
    assert res.nit == 60 * 13  # ceil(103 / 8) steps per epoch
    assert len(res.history) == 60 and res.fun == res.history[-1]
    assert res.history[-1] < 0.1 * res.history[0]
    if method != "adadelta":  # Adadelta is still on its way after 60 epochs
        w_best = np.linalg.lstsq(X, y, rcond=None)[0]
        np.testing.assert_allclose(res.x, w_best, atol=0.05)


def test_full_batch_is_gradient_descent(regression):
    X, y = regression
    res = fastopt.minimize_minibatch(squared_loss, np.zeros(4), data=(X, y), method="sgd",
                                     batch_size=len(y), epochs=25, shuffle=False,
                                     options={"lr": 0.1})
    ref = fastopt.minimize(lambda w: squared_loss(w, X, y), np.zeros(4), method="gd",
                           jac=True, options={"lr": 0.1, "maxiter": 25, "gtol": 0})
    np.testing.assert_array_equal(res.x, ref.x)
    assert res.nit == ref.nit == 25


def test_batch_size_one_is_sgd_over_each_sample(regression):
    X, y = regression
    res = fastopt.minimize_minibatch(squared_loss, np.zeros(4), data=(X, y), batch_size=1,
                                     shuffle=False, options={"lr": 0.01})
    w = np.zeros(4)
    opt = fastopt.SGD(w, lr=0.01)
    for i in range(len(y)):
        opt.step(squared_loss(w, X[i:i + 1], y[i:i + 1])[1])
    np.testing.assert_array_equal(res.x, w)
    assert res.nit == len(y)


def test_same_seed_same_result(regression):
    X, y = regression
    run = lambda seed: fastopt.minimize_minibatch(  # noqa: E731
        squared_loss, np.zeros(4), data=(X, y), method="adam", batch_size=10, epochs=3,
        seed=seed, options={"lr": 0.01})
    np.testing.assert_array_equal(run(7).x, run(7).x)
    assert not np.array_equal(run(7).x, run(8).x)


def test_last_partial_batch_is_kept():
    sizes = []

    def loss(w, X):
        sizes.append(len(X))
        return float(np.sum(w**2)), 2 * w

    res = fastopt.minimize_minibatch(loss, np.ones(2), data=np.arange(10.0), batch_size=4,
                                     epochs=2, shuffle=True, seed=0)
    assert sizes == [4, 4, 2, 4, 4, 2]
    assert res.nit == 6


def test_history_weights_batches_by_size():
    def loss(w, X):
        return float(X[0]), np.zeros(1)  # the loss is the batch's first sample

    res = fastopt.minimize_minibatch(loss, np.zeros(1), data=np.arange(5.0), batch_size=2,
                                     shuffle=False)
    assert res.history == [pytest.approx((0 * 2 + 2 * 2 + 4 * 1) / 5)]


def test_callback_fires_per_epoch_and_can_stop(regression):
    X, y = regression
    seen = []

    def callback(intermediate_result):
        seen.append((intermediate_result.nepoch, intermediate_result.nit,
                     intermediate_result.fun))
        if intermediate_result.nepoch == 3:
            raise StopIteration

    res = fastopt.minimize_minibatch(squared_loss, np.zeros(4), data=(X, y), batch_size=50,
                                     epochs=10, seed=0, callback=callback)
    assert [s[:2] for s in seen] == [(1, 3), (2, 6), (3, 9)]
    assert res.status == 99 and not res.success and res.nepoch == 3 and res.nit == 9
    old = []
    fastopt.minimize_minibatch(squared_loss, np.zeros(4), data=(X, y), batch_size=50,
                               epochs=2, seed=0, callback=old.append)
    assert len(old) == 2 and all(x.shape == (4,) for x in old)


def test_maxiter_caps_the_steps(regression):
    X, y = regression
    res = fastopt.minimize_minibatch(squared_loss, np.zeros(4), data=(X, y), batch_size=10,
                                     epochs=5, options={"maxiter": 15})
    assert res.status == 1 and res.nit == 15 and res.nepoch == 1


def test_non_finite_loss_stops_with_the_last_finite_iterate():
    seen = []

    def loss(w, X):
        seen.append(w.copy())
        return (np.nan if len(seen) == 4 else float(w @ w)), 2 * w

    res = fastopt.minimize_minibatch(loss, np.ones(2), data=np.zeros(10), batch_size=1,
                                     shuffle=False, options={"lr": 0.1})
    assert res.status == 3 and not res.success
    np.testing.assert_array_equal(res.x, seen[2])
    assert res.nit == 2


def test_float32_x0_stays_float32(regression):
    X, y = regression
    res = fastopt.minimize_minibatch(squared_loss, np.zeros(4, np.float32), data=(X, y),
                                     epochs=2, seed=0)
    assert res.x.dtype == np.float32


@pytest.mark.parametrize("kwargs, error, match", [
    ({"data": (np.zeros(5), np.zeros(4))}, ValueError, "data arrays differ in length"),
    ({"data": np.zeros(0)}, ValueError, "at least one sample"),
    ({"data": ()}, ValueError, "at least one array"),
    ({"batch_size": 0}, ValueError, "batch_size=0 must be >= 1"),
    ({"batch_size": 2.5}, TypeError, "batch_size=2.5 must be an int"),
    ({"batch_size": "2"}, TypeError, "batch_size='2' must be an int"),
    ({"batch_size": np.nan}, TypeError, "batch_size=nan must be an int"),
    ({"batch_size": True}, TypeError, "batch_size=True must be an int"),
    ({"epochs": np.nan}, ValueError, "epochs"),
    ({"epochs": -2**63}, ValueError, "epochs must be >= 1"),
    ({"seed": -1}, ValueError, "Invalid seed"),
    ({"seed": 1.5}, TypeError, "Invalid seed"),
    ({"seed": np.True_}, TypeError, r"Invalid seed: seed=(np\.)?True_? must be an int"),
    ({"method": lambda *a, **k: None}, TypeError, "not one of fastopt's methods"),
    ({"options": {"gtol": -1.0}}, ValueError, "gtol"),
    ({"options": {"ftol": np.nan}}, ValueError, "ftol"),
    ({"options": {"xtol": "0"}}, TypeError, "xtol"),
    ({"options": {"maxiter": np.nan}}, ValueError, "maxiter"),
    ({"epochs": 0}, ValueError, "epochs must be >= 1"),
    ({"shuffle": "yes"}, TypeError, "shuffle"),
    ({"method": "bfgs"}, ValueError, "Unknown method"),
    ({"method": "lbfgs"}, ValueError, "not an elementwise update rule"),
    ({"fun": None}, TypeError, "fun must be callable"),
    ({"options": {"lr": -1}}, ValueError, "Invalid learning rate"),
    ({"options": {"maximize": True}}, ValueError, "maximize"),
])
def test_bad_arguments(kwargs, error, match):
    call = {"fun": lambda w, X: (0.0, np.zeros(2)), "x0": np.zeros(2), "data": np.zeros(5),
            **kwargs}
    with pytest.raises(error, match=match):
        fastopt.minimize_minibatch(**call)


def test_bad_return_and_unknown_option():
    with pytest.raises(TypeError, match=r"fun must return \(f, g\).*got float"):
        fastopt.minimize_minibatch(lambda w, X: 0.0, np.zeros(2), data=np.zeros(5))
    with pytest.raises(ValueError, match="gradient must have 2 real values"):
        fastopt.minimize_minibatch(lambda w, X: (0.0, np.zeros(3)), np.zeros(2),
                                   data=np.zeros(5))
    with pytest.warns(OptimizeWarning, match="Unknown solver options: foo"):
        fastopt.minimize_minibatch(lambda w, X: (0.0, np.zeros(2)), np.zeros(2),
                                   data=np.zeros(5), options={"gtol": 1e-3, "foo": 1})
