"""Adversarial checks of method="lbfgs" (issue 17): corner cases that broke it once."""

import numpy as np
import pytest
from scipy.optimize import Bounds

import fastopt


def _saddle(x):
    # Negative curvature along x[1]: a search along it runs to stpmax (a WARN) and its pair
    # has s'y < 0, so L-BFGS skips it.
    return 0.5 * (x[0] ** 2 - x[1] ** 2), np.array([x[0], -x[1]])


def test_skipped_pair_leaves_a_full_memory_intact():
    # Two pairs are stored, then every pair is skipped: with maxcor=2 the memory is full
    # when the first skip comes, with maxcor=10 it is not. A skipped pair must not touch
    # the memory, so both runs keep the same two pairs and are bitwise the same run (the
    # engine once wrote the skipped pair over the oldest one when the memory was full).
    runs = [fastopt.minimize(_saddle, np.array([5.0, 1e-3]), jac=True, method="lbfgs",
                             options={"maxcor": maxcor, "maxiter": 4, "return_all": True})
            for maxcor in (2, 10)]
    assert runs[0].nit == runs[1].nit == 4
    np.testing.assert_array_equal(np.array(runs[0].allvecs), np.array(runs[1].allvecs))
    # The batch drives the same engine: its rows agree as well.
    batch = [fastopt.minimize_batch(
        lambda X: (0.5 * (X[:, 0] ** 2 - X[:, 1] ** 2), X * np.array([1.0, -1.0])),
        np.array([[5.0, 1e-3]] * 2), jac=True, method="lbfgs",
        options={"maxcor": maxcor, "maxiter": 4}) for maxcor in (2, 10)]
    np.testing.assert_array_equal(batch[0].x, batch[1].x)
    np.testing.assert_array_equal(batch[0].x[0], runs[1].x)



@pytest.mark.parametrize("method", ["lbfgs", "adam"])
@pytest.mark.parametrize("bounds", [[(0.1, 0.1), (None, None)], [(0.0, 1.0), (0.7, 0.7 + 1e-9)]])
def test_float32_box_holding_no_float32_value_is_refused(method, bounds):
    # Rounded inward, such a box's min exceeds its max: every float32 point is outside it
    # (fun was evaluated at x[0] = float32(0.1) < 0.1 before). ValueError, nothing run.
    calls = []

    def fun(x):
        calls.append(x.copy())
        return float(x @ x), 2 * x

    def fun_batch(X):
        calls.append(X.copy())
        return np.einsum("ij,ij->i", X, X), 2 * X

    x0 = np.zeros(2, dtype=np.float32)
    with pytest.raises(ValueError, match=r"bounds\[\d\] = .* holds no float32 value"):
        fastopt.minimize(fun, x0, jac=True, method=method, bounds=bounds)
    with pytest.raises(ValueError, match=r"holds no float32 value"):
        fastopt.minimize_batch(fun_batch, np.zeros((3, 2), np.float32), jac=True,
                               method=method, bounds=bounds)
    box = np.array([[-1.0 if lo is None else lo, 1.0 if hi is None else hi]
                    for lo, hi in bounds])
    lb, ub = np.full((3, 2), -1.0), np.full((3, 2), 1.0)
    lb[1], ub[1] = box[:, 0], box[:, 1]
    with pytest.raises(ValueError, match=r"bounds \(problem 1, variable \d\) = .* holds no"):
        fastopt.minimize_batch(fun_batch, np.zeros((3, 2), np.float32), jac=True,
                               method=method, bounds=Bounds(lb, ub))
    assert calls == []
    # float64 holds these boxes' values: the same bounds run, and stay inside the box.
    r = fastopt.minimize(fun, x0.astype(np.float64), jac=True, method=method, bounds=bounds)
    assert np.all((box[:, 0] <= r.x) & (r.x <= box[:, 1]))
