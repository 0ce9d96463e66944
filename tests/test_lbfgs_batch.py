"""``fastopt.minimize_batch(method="lbfgs")``: each problem's result is bitwise what
``fastopt.minimize(method="lbfgs")`` gives on that problem alone, for every kind of objective
(vectorised Python, scalar and block C) and thread count; bounds, args, callbacks, stopping
rules per problem, bad input."""

import ctypes

import numpy as np
import pytest
from scipy import LowLevelCallable
from scipy.optimize import Bounds

import fastopt
from fastopt.problems import rosenbrock_block_lowlevel, rosenbrock_lowlevel

FIELDS = ("x", "fun", "jac", "nit", "nfev", "njev", "status", "success")


def rosen_rows(X, scale=1.0):
    """n-D Rosenbrock of each row (scaled by ``scale``: a scalar or one per row)."""
    scale = np.reshape(scale, (-1, 1)) if np.ndim(scale) else scale
    a = X[:, 1:] - X[:, :-1] ** 2
    b = 1.0 - X[:, :-1]
    f = np.sum(100.0 * a * a + b * b, axis=1)
    G = np.zeros_like(X)
    G[:, :-1] = -400.0 * X[:, :-1] * a - 2.0 * b
    G[:, 1:] += 200.0 * a
    return scale[:, 0] * f if np.ndim(scale) else scale * f, scale * G


def quartic_rows(X):
    """sum (x - 1)^4 per row, for n = 1 and slow convergence."""
    D = X - 1.0
    return np.sum(D ** 4, axis=1), 4.0 * D ** 3


def alone(fun, i, row_args=()):
    """Problem i of a vectorised ``fun`` as fastopt.minimize sees it: (f, g) of one row."""
    def one(x):
        extra = tuple(a[i:i + 1] for a in row_args)
        f, G = fun(x[None, :], *extra)
        return f[0], G[0]
    return one


def starts(m, n, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).uniform(-2.0, 2.0, (m, n)).astype(dtype)


def assert_same(batch, i, single):
    """Problem i of the batch's result is bitwise ``single``'s."""
    for name in FIELDS:
        got, want = np.asarray(batch[name][i]), np.asarray(single[name])
        assert got.dtype == want.dtype or name in ("nit", "nfev", "njev", "status"), name
        np.testing.assert_array_equal(got, want, err_msg=f"{name} of problem {i}")


@pytest.mark.parametrize("m", [0, 1, 7, 70])
@pytest.mark.parametrize("n", [1, 2, 5])
@pytest.mark.parametrize("jac", ["pair", "callable"])
def test_python_objective_is_minimize_alone(m, n, jac):
    X0 = starts(m, n)
    fun = rosen_rows if n > 1 else quartic_rows
    options = {"maxiter": 60}
    if jac == "pair":
        res = fastopt.minimize_batch(fun, X0, method="lbfgs", jac=True, options=options)
    else:
        res = fastopt.minimize_batch(lambda X: fun(X)[0], X0, method="lbfgs",
                                     jac=lambda X: fun(X)[1], options=options)
    assert res.x.shape == (m, n) and res.fun.shape == res.nit.shape == (m,)
    for i in range(m):
        assert_same(res, i, fastopt.minimize(alone(fun, i), X0[i], method="lbfgs", jac=True,
                                             options=options))
    if m:
        assert set(res.status.tolist()) <= {0, 1}


def test_rows_come_in_order_and_every_call_has_the_running_ones():
    X0 = starts(20, 2, seed=3)
    X0[5] = 1.0  # at the optimum: stops at x0
    calls = []

    def fg(X, index):
        calls.append(index.copy())
        assert not X.flags.writeable
        return rosen_rows(X)

    res = fastopt.minimize_batch(fg, X0, args=(np.arange(20),), method="lbfgs", jac=True)
    assert np.all(res.success) and res.nit[5] == 0
    assert np.array_equal(calls[0], np.arange(20))
    for before, after in zip(calls, calls[1:]):
        assert np.all(np.diff(after) > 0) and set(after) <= set(before)
    # each problem was evaluated once per call it was in
    counts = np.bincount(np.concatenate(calls), minlength=20)
    np.testing.assert_array_equal(counts, res.nfev)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("kind", ["scalar", "block"])
@pytest.mark.parametrize("m", [1, 70, 300])
def test_c_objectives_are_minimize_alone(dtype, n_threads, kind, m):
    n = 3
    X0 = starts(m, n, seed=m)
    fun = rosenbrock_lowlevel(dtype) if kind == "scalar" else rosenbrock_block_lowlevel(dtype)
    res = fastopt.minimize_batch(fun, X0, method="lbfgs",
                                 options={"n_threads": n_threads, "maxiter": 200})
    assert res.x.dtype == np.dtype(dtype)
    for i in range(0, m, max(1, m // 25)):
        single = fastopt.minimize(rosenbrock_lowlevel(dtype), X0[i], method="lbfgs",
                                  options={"maxiter": 200})
        assert_same(res, i, single)


@pytest.mark.parametrize("kind", ["python", "scalar", "block"])
def test_bounds_one_box_and_a_box_per_problem(kind):
    m, n = 40, 2
    X0 = starts(m, n, seed=1)
    lb = np.random.default_rng(2).uniform(-1.5, 0.5, (m, n))
    per = Bounds(lb, lb + 1.0)  # the optimum (1, 1) is outside many of them
    one = [(-0.5, 0.8), (None, 0.5)]
    fun = {"python": rosen_rows, "scalar": rosenbrock_lowlevel(),
           "block": rosenbrock_block_lowlevel()}[kind]
    for bounds in (per, one):
        seen = []

        def fg(X):
            seen.append(X.copy())
            return rosen_rows(X)
        res = fastopt.minimize_batch(fg if kind == "python" else fun, X0, method="lbfgs",
                                     jac=True, bounds=bounds)
        for i in range(m):
            box = Bounds(per.lb[i], per.ub[i]) if bounds is per else bounds
            assert_same(res, i, fastopt.minimize(alone(rosen_rows, i), X0[i], method="lbfgs",
                                                 jac=True, bounds=box))
        lo, hi = (per.lb, per.ub) if bounds is per else ([-0.5, -np.inf], [0.8, 0.5])
        assert np.all((lo <= res.x) & (res.x <= hi))
        if kind == "python" and bounds is one:  # every evaluation in the box
            allx = np.concatenate(seen)
            assert np.all((allx >= [-0.5, -np.inf]) & (allx <= [0.8, 0.5]))


def test_per_problem_args():
    m = 30
    X0 = starts(m, 2, seed=4)
    scale = np.linspace(0.5, 3.0, m)
    res = fastopt.minimize_batch(rosen_rows, X0, args=(scale,), method="lbfgs", jac=True)
    for i in range(m):
        single = fastopt.minimize(alone(rosen_rows, i, (scale,)), X0[i], method="lbfgs",
                                  jac=True)
        assert_same(res, i, single)


def test_mixed_stop_reasons_in_one_batch():
    X0 = np.array([[1.0, 1.0], [-1.2, 1.0], [0.5, 0.5], [3.0, -2.0], [0.0, 0.0]])

    def fg(X):
        f, G = rosen_rows(X)
        bad = X[:, 0] == 3.0  # problem 3: NaN at x0 (status 3)
        f[bad] = np.nan
        return f, G

    options = {"maxiter": 12}
    res = fastopt.minimize_batch(fg, X0, method="lbfgs", jac=True, options=options)
    assert res.status[0] == 0 and res.nit[0] == 0  # at the optimum: gtol at x0
    assert res.status[1] == 1 and res.nit[1] == 12  # maxiter
    assert res.status[3] == 3
    for i in range(len(X0)):
        assert_same(res, i, fastopt.minimize(alone(fg, i), X0[i], method="lbfgs", jac=True,
                                             options=options))
    def wrong(X):  # problem 2's gradient points uphill: its line searches fail (status 2)
        f, G = rosen_rows(X)
        G[X[:, 0] == 0.5] *= -1.0
        return f, G

    res = fastopt.minimize_batch(wrong, X0, method="lbfgs", jac=True)
    assert res.status[2] == 2 and res.status[0] == 0 and "line search" in res.message
    for i in range(len(X0)):
        assert_same(res, i, fastopt.minimize(alone(wrong, i), X0[i], method="lbfgs",
                                             jac=True))
    res = fastopt.minimize_batch(rosen_rows, X0, method="lbfgs", jac=True,
                                 options={"maxfun": 10})
    assert res.status[1] == 1 and res.nfev[1] > 10 and res.status[0] == 0
    assert "converged" in res.message and "maxiter" in res.message


@pytest.mark.parametrize("kind", ["python", "scalar", "block"])
@pytest.mark.parametrize("maxiter", [0, 1, 2])
def test_small_maxiter(kind, maxiter):
    X0 = starts(9, 2, seed=8)
    X0[4] = 1.0
    fun = {"python": rosen_rows, "scalar": rosenbrock_lowlevel(),
           "block": rosenbrock_block_lowlevel()}[kind]
    res = fastopt.minimize_batch(fun, X0, method="lbfgs", jac=True,
                                 options={"maxiter": maxiter})
    assert res.status[4] == 0 and np.all(np.delete(res.status, 4) == 1)
    assert np.all(res.nit <= maxiter)
    for i in range(len(X0)):
        assert_same(res, i, fastopt.minimize(alone(rosen_rows, i), X0[i], method="lbfgs",
                                             jac=True, options={"maxiter": maxiter}))


def _partial_gradient(dtype=np.float64):
    """A ctypes C objective that leaves g[1] unwritten once x[0] > 0.9 (a NaN there)."""
    c_t = ctypes.c_double if dtype == np.float64 else ctypes.c_float
    proto = ctypes.CFUNCTYPE(c_t, ctypes.c_int, ctypes.POINTER(c_t), ctypes.POINTER(c_t),
                             ctypes.c_void_p)

    def f(n, x, g, _):
        a, b = x[1] - x[0] * x[0], 1.0 - x[0]
        g[0] = -400.0 * x[0] * a - 2.0 * b
        if x[0] <= 0.9:
            g[1] = 200.0 * a
        return 100.0 * a * a + b * b
    callback = proto(f)
    return LowLevelCallable(callback), callback


@pytest.mark.parametrize("n_threads", [1, 2])
def test_unwritten_gradient_is_the_nan_policy(n_threads):
    llc, keep = _partial_gradient()
    X0 = np.array([[-1.2, 1.0], [0.95, 1.0], [0.0, 0.5]])
    res = fastopt.minimize_batch(llc, X0, method="lbfgs", options={"n_threads": n_threads})
    assert res.status[1] == 3  # NaN gradient at x0
    for i in range(len(X0)):
        assert_same(res, i, fastopt.minimize(llc, X0[i], method="lbfgs"))


@pytest.mark.parametrize("kind", ["python", "scalar", "block"])
def test_callback_sees_what_minimize_shows(kind):
    m = 12
    X0 = starts(m, 2, seed=5)
    fun = {"python": rosen_rows, "scalar": rosenbrock_lowlevel(),
           "block": rosenbrock_block_lowlevel()}[kind]
    shown = {i: [] for i in range(m)}

    def callback(r):
        assert r.x.shape == (r.indices.size, 2) and r.nit.shape == r.indices.shape
        for k, i in enumerate(r.indices.tolist()):
            shown[i].append((r.x[k].copy(), r.fun[k], r.jac[k].copy(), r.nit[k]))

    res = fastopt.minimize_batch(fun, X0, method="lbfgs", jac=True, callback=callback)
    plain = fastopt.minimize_batch(fun, X0, method="lbfgs", jac=True)
    for name in FIELDS:
        np.testing.assert_array_equal(res[name], plain[name])
    for i in range(m):
        seen = []
        single = fastopt.minimize(alone(rosen_rows, i), X0[i], method="lbfgs", jac=True,
                                  callback=lambda intermediate_result: seen.append(
                                      intermediate_result))
        assert_same(res, i, single)
        assert len(seen) == len(shown[i]) == res.nit[i]
        for (x, f, g, nit), want in zip(shown[i], seen):
            np.testing.assert_array_equal(x, want.x)
            assert f == want.fun and nit == want.nit
            np.testing.assert_array_equal(g, want.jac)


def test_callback_stop_iteration():
    X0 = starts(6, 2, seed=6)
    X0[2] = 1.0  # stops at x0, before any callback

    def callback(r):
        if r.nit.max() >= 3:
            raise StopIteration

    res = fastopt.minimize_batch(rosen_rows, X0, method="lbfgs", jac=True, callback=callback)
    assert res.status[2] == 0
    stopped = res.status == 99
    assert stopped.sum() == 5 and np.all(res.nit[stopped] <= 3)
    for i in np.flatnonzero(stopped):  # at the iterate the callback saw last
        f, g = rosen_rows(res.x[i:i + 1])
        assert res.fun[i] == f[0]
        np.testing.assert_array_equal(res.jac[i], g[0])


def test_float32_python_objective():
    X0 = starts(10, 2, seed=7, dtype=np.float32)

    def fg(X):
        f, G = rosen_rows(X.astype(np.float64))
        return f, G.astype(np.float32)
    res = fastopt.minimize_batch(fg, X0, method="lbfgs", jac=True)
    assert res.x.dtype == np.float32 and res.jac.dtype == np.float32
    for i in range(10):
        assert_same(res, i, fastopt.minimize(alone(fg, i), X0[i], method="lbfgs", jac=True))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"options": {"lr": 0.1}}, ValueError, "lr do not apply"),
    ({"options": {"lr_scheduler": lambda o: None}}, ValueError, "lr_scheduler"),
    ({"options": {"max_grad_norm": 1.0}}, ValueError, "max_grad_norm"),
    ({"options": {"xtol": 1e-3}}, ValueError, "xtol"),
    ({"options": {"return_all": True}}, ValueError, "return_all"),
    ({"options": {"maxcor": 0}}, ValueError, "maxcor"),
    ({"options": {"gtol": -1.0}}, ValueError, "gtol"),
    ({"options": {"n_threads": 0}}, ValueError, "n_threads"),
    ({"jac": None}, ValueError, "jac"),
    ({"bounds": [(0, 1)]}, ValueError, "bounds"),
    ({"bounds": Bounds(np.zeros((3, 2)), np.ones((3, 2)))}, ValueError, "bounds.lb"),
    ({"args": (np.ones(3),)}, ValueError, r"args\[0\]"),
    ({"callback": 3}, TypeError, "callback"),
    ({"fun": 3}, TypeError, "fun"),
])
def test_bad_input(kwargs, error, match):
    X0 = starts(4, 2)
    before = X0.copy()
    call = {"fun": rosen_rows, "jac": True, **kwargs}
    with pytest.raises(error, match=match):
        fastopt.minimize_batch(call.pop("fun"), X0, method="lbfgs", **call)
    np.testing.assert_array_equal(X0, before)


def test_bad_x0():
    with pytest.raises(ValueError, match="X0"):
        fastopt.minimize_batch(rosen_rows, np.zeros(3), method="lbfgs", jac=True)
    with pytest.raises(ValueError, match="X0"):
        fastopt.minimize_batch(rosen_rows, np.zeros((2, 0)), method="lbfgs", jac=True)
    X0 = starts(3, 2)
    before = X0.copy()
    res = fastopt.minimize_batch(rosen_rows, X0, method="lbfgs", jac=True)
    np.testing.assert_array_equal(X0, before)
    assert not np.shares_memory(res.x, X0)


def test_c_objective_refuses_args_and_a_jac():
    with pytest.raises(ValueError, match="args"):
        fastopt.minimize_batch(rosenbrock_lowlevel(), starts(2, 2), method="lbfgs",
                               args=(1.0,))
    with pytest.raises(ValueError, match="jac"):
        fastopt.minimize_batch(rosenbrock_lowlevel(), starts(2, 2), method="lbfgs",
                               jac=lambda X: X)


def test_unknown_option_warns_at_the_caller():
    from scipy.optimize import OptimizeWarning
    with pytest.warns(OptimizeWarning, match="Unknown solver options: colour") as record:
        fastopt.minimize_batch(rosen_rows, starts(2, 2), method="lbfgs", jac=True,
                               options={"colour": 1})
    assert record[0].filename == __file__


@pytest.mark.parametrize("kind", ["scalar", "block"])
def test_float32_c_objective_with_a_box_per_problem(kind):
    m = 50
    X0 = starts(m, 3, seed=9)
    lb = np.random.default_rng(10).uniform(-1.5, 0.5, (m, 3))
    fun = rosenbrock_lowlevel("float32") if kind == "scalar" else \
        rosenbrock_block_lowlevel("float32")
    res = fastopt.minimize_batch(fun, X0, method="lbfgs", bounds=Bounds(lb, lb + 1.0),
                                 options={"n_threads": 2})
    assert res.x.dtype == np.float32
    for i in range(m):
        assert_same(res, i, fastopt.minimize(rosenbrock_lowlevel("float32"), X0[i],
                                             method="lbfgs", bounds=Bounds(lb[i], lb[i] + 1)))


@pytest.mark.parametrize("kind", ["python", "scalar"])
def test_flush_subnormals_and_disp(kind, capsys):
    X0 = starts(5, 2, seed=11)
    fun = rosen_rows if kind == "python" else rosenbrock_lowlevel()
    options = {"flush_subnormals": True}
    res = fastopt.minimize_batch(fun, X0, method="lbfgs", jac=True,
                                 options=dict(options, disp=True))
    assert "5 problems: 5 converged" in capsys.readouterr().out
    for i in range(5):
        assert_same(res, i, fastopt.minimize(alone(rosen_rows, i), X0[i], method="lbfgs",
                                             jac=True, options=options))
