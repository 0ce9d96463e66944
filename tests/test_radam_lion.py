"""What the registry-driven tests cannot see of RAdam, Lion and Adam's
``decoupled_weight_decay``: RAdam's switch to the rectified step, Lion's sign(0) = 0 and
its paper's update written by hand, Adam with the flag being AdamW."""

import numpy as np
import pytest

import fastopt
from conftest import gradient_sequence


def test_adam_with_decoupled_weight_decay_is_adamw(rng):
    for kwargs in ({"lr": 0.05, "weight_decay": 0.1}, {"weight_decay": 0.3, "amsgrad": True}):
        p, q = rng.standard_normal((2, 9))
        adam = fastopt.Adam(p, decoupled_weight_decay=True, **kwargs)
        adamw = fastopt.AdamW(q := p.copy(), **kwargs)
        for g in gradient_sequence(rng, 9, np.float64):
            adam.step(g)
            adamw.step(g)
        np.testing.assert_array_equal(p, q)
        # and without the flag, the L2 penalty: another trajectory
        r = rng.standard_normal(9)
        coupled = fastopt.Adam(r, **kwargs)
        coupled.step(np.ones(9))
        assert adam.hyperparameters["decoupled_weight_decay"] is True
        assert coupled.hyperparameters["decoupled_weight_decay"] is False


def test_adam_flag_is_keyword_only_and_adamw_fixes_it():
    with pytest.raises(TypeError):
        fastopt.Adam(np.zeros(2), 1e-3, (0.9, 0.999), 1e-8, 0.0, False, True)
    opt = fastopt.Adam(np.zeros(2), weight_decay=0.1)
    opt.decoupled_weight_decay = True  # a hyperparameter like any other
    assert opt.state_dict()["decoupled_weight_decay"] is True
    with pytest.raises(TypeError, match="decoupled_weight_decay"):
        fastopt.AdamW(np.zeros(2), decoupled_weight_decay=True)
    w = fastopt.AdamW(np.zeros(2))
    assert w.decoupled_weight_decay is True
    with pytest.raises(ValueError, match="AdamW requires decoupled_weight_decay=True"):
        w.decoupled_weight_decay = False
    assert w.decoupled_weight_decay is True


def _rho(t, beta2):
    rho_inf = 2 / (1 - beta2) - 1
    return rho_inf - 2 * t * beta2**t / (1 - beta2**t)


@pytest.mark.parametrize("beta2", [0.999, 0.9, 0.6])
def test_radam_is_momentum_sgd_until_rho_exceeds_5(beta2, rng):
    beta1, lr = 0.8, 0.01
    p = rng.standard_normal(6)
    opt = fastopt.RAdam(p, lr=lr, betas=(beta1, beta2))
    m = np.zeros(6)
    switched = None
    for t in range(1, 40):
        g = rng.standard_normal(6)
        before = p.copy()
        opt.step(g)
        m = beta1 * m + (1 - beta1) * g
        sgd = before - lr * m / (1 - beta1**t)
        if _rho(t, beta2) > 5:
            switched = switched or t
            assert not np.allclose(p, sgd, rtol=1e-6, atol=0)
        else:
            np.testing.assert_allclose(p, sgd, rtol=1e-14, atol=0)
    # default betas: steps 1-5 SGD, then rectified; beta2=0.6 (rho_inf = 4): never
    assert switched == {0.999: 6, 0.9: 6, 0.6: None}[beta2]


def test_lion_step_by_hand():
    # Algorithm 2 of the paper, one coordinate at a time: c = b1 m + (1 - b1) g,
    # p -= lr (sign(c) + wd p), m = b2 m + (1 - b2) g.
    p = np.array([1.0, -2.0, 0.5, 3.0])
    m = np.array([0.0, 0.0, 0.0, 0.0])
    opt = fastopt.Lion(p, lr=0.1, betas=(0.5, 0.75), weight_decay=0.2)
    opt.step(np.array([2.0, -1.0, 0.0, -4.0]))
    # c = 0.5 * g: signs [1, -1, 0, -1]
    np.testing.assert_allclose(p, [1.0 - 0.1 * (1 + 0.2),
                                   -2.0 - 0.1 * (-1 - 0.4),
                                   0.5 - 0.1 * (0 + 0.1),
                                   3.0 - 0.1 * (-1 + 0.6)], rtol=1e-15)
    m = 0.25 * np.array([2.0, -1.0, 0.0, -4.0])
    np.testing.assert_array_equal(opt.state[0]["exp_avg"], m)
    # next: the momentum from before this gradient sets the sign (b1 = 0.5): c = 0.5 m + 0.5 g
    q = p.copy()
    g = np.array([-1.5, 0.5, 0.0, 1.0])
    opt.step(g)
    c = 0.5 * m + 0.5 * g  # [-0.5, 0.125, 0, -0.5]
    np.testing.assert_allclose(p, q - 0.1 * (np.sign(c) + 0.2 * q), rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [5, 40000])  # serial, threaded
def test_lion_sign_of_zero_is_zero_and_nan_propagates(dtype, size):
    p = np.linspace(-1, 1, size).astype(dtype)
    before = p.copy()
    opt = fastopt.Lion(p, lr=0.1, n_threads=2)
    opt.step(np.zeros(size, dtype))  # c = 0: no move (no weight decay)
    np.testing.assert_array_equal(p, before)
    g = np.zeros(size, dtype)
    g[1] = np.nan
    opt.step(g)
    assert np.isnan(p[1]) and np.isnan(opt.state[0]["exp_avg"][1])
    mask = np.arange(size) != 1
    np.testing.assert_array_equal(p[mask], before[mask])


def test_lion_moves_every_coordinate_by_lr_whatever_the_scale(rng):
    p = rng.standard_normal(50)
    before = p.copy()
    opt = fastopt.Lion(p, lr=0.01)
    opt.step(rng.standard_normal(50) * np.logspace(-8, 8, 50))
    np.testing.assert_allclose(np.abs(p - before), 0.01, rtol=1e-12)


@pytest.mark.parametrize("method", ["radam", "lion"])
def test_minimize_batch_runs_them_per_problem(method):
    # one run per row, each its own learning rate: rows agree with minimize
    rates = np.array([1e-3, 5e-3])
    x0 = np.array([[-1.2, 1.0], [0.5, 0.5]])

    def fg(x):
        return float(np.sum((x - 1) ** 2)), 2 * (x - 1)

    def batch_fg(X):
        return np.sum((X - 1) ** 2, axis=1), 2 * (X - 1)

    res = fastopt.minimize_batch(batch_fg, x0, method=method, jac=True,
                                 options={"lr": rates, "maxiter": 200, "gtol": 0.0})
    for i in range(2):
        one = fastopt.minimize(fg, x0[i], method=method, jac=True,
                               options={"lr": rates[i], "maxiter": 200, "gtol": 0.0})
        np.testing.assert_allclose(res.x[i], one.x, rtol=1e-13, atol=1e-15)
