"""scipy.optimize.minimize(method=fastopt.<name>) end to end, and SciPy's own clients."""

import numpy as np
import pytest
from scipy import optimize
from scipy.optimize import OptimizeWarning, rosen, rosen_der

import fastopt
from fastopt._methods import METHODS

OPTIONS = {"lr": 1e-3, "maxiter": 300}


@pytest.mark.parametrize("name", list(METHODS))
def test_scipy_and_fastopt_minimize_give_identical_results(name):
    x0 = np.array([-1.2, 1.0, 0.8])
    method = getattr(fastopt, name)
    via_scipy = optimize.minimize(rosen, x0, method=method, jac=rosen_der, options=OPTIONS)
    direct = fastopt.minimize(rosen, x0, method=name, jac=rosen_der, options=OPTIONS)
    assert isinstance(via_scipy, optimize.OptimizeResult)
    np.testing.assert_array_equal(via_scipy.x, direct.x)
    for field in ("fun", "nit", "nfev", "njev", "status", "success", "message"):
        assert via_scipy[field] == direct[field], field
    assert method.__name__ == name and callable(method)


def test_jac_true_through_scipy():
    def fg(x):
        return rosen(x), rosen_der(x)

    x0 = np.array([-1.2, 1.0])
    via_scipy = optimize.minimize(fg, x0, jac=True, method=fastopt.adam, options=OPTIONS)
    direct = fastopt.minimize(fg, x0, jac=True, method="adam", options=OPTIONS)
    np.testing.assert_array_equal(via_scipy.x, direct.x)
    assert via_scipy.nfev == direct.nfev == OPTIONS["maxiter"] + 1


def test_jac_none_and_strings_through_scipy_use_finite_differences():
    x0 = np.array([-1.2, 1.0])
    for jac in (None, "2-point", "3-point", "cs"):
        res = optimize.minimize(rosen, x0, jac=jac, method=fastopt.adam, options=OPTIONS)
        ref = fastopt.minimize(rosen, x0, method="adam", options=OPTIONS)
        # SciPy passes jac=None for every string: the default 2-point differences run
        np.testing.assert_array_equal(res.x, ref.x)
    res = optimize.minimize(rosen, x0, method=fastopt.adam,
                            options=dict(OPTIONS, finite_diff_method="3-point"))
    assert res.nfev == 5 * (OPTIONS["maxiter"] + 1)


def test_tol_callback_and_bounds_through_scipy():
    calls = []

    def callback(intermediate_result):
        calls.append(intermediate_result.nit)
        assert np.all(intermediate_result.x >= 1.1)

    res = optimize.minimize(rosen, np.array([2.0, 2.0]), jac=rosen_der, method=fastopt.adam,
                            bounds=optimize.Bounds([1.1, 1.1], [3, 3]), tol=1e-6,
                            callback=callback, options={"lr": 1e-2, "maxiter": 20000})
    assert res.success and "gtol" in res.message
    assert calls == list(range(1, res.nit + 1))
    # the constrained minimiser: x1 on its bound, x2 = x1^2 (f = 0.01)
    np.testing.assert_allclose(res.x, [1.1, 1.21], atol=1e-6)


def test_stopiteration_through_scipy():
    def callback(intermediate_result):
        if intermediate_result.nit == 3:
            raise StopIteration

    res = optimize.minimize(rosen, np.zeros(2), jac=rosen_der, method=fastopt.nag,
                            callback=callback, options={"lr": 1e-3})
    assert res.status == 99 and res.nit == 3 and not res.success


def test_unknown_option_warning_through_scipy():
    with pytest.warns(OptimizeWarning, match="Unknown solver options: bogus"):
        optimize.minimize(rosen, np.zeros(2), jac=rosen_der, method=fastopt.sgd,
                          options={"bogus": 1, "maxiter": 2})


def test_constraints_and_hess_through_scipy():
    with pytest.raises(ValueError, match="cannot handle constraints"):
        optimize.minimize(rosen, np.zeros(2), method=fastopt.adam,
                          constraints=[optimize.LinearConstraint(np.eye(2), 0, 1)])
    with pytest.warns(RuntimeWarning, match="does not use Hessian"):
        optimize.minimize(rosen, np.zeros(2), jac=rosen_der, hess=optimize.rosen_hess,
                          method=fastopt.adam, options={"maxiter": 2})


def test_basinhopping_uses_a_fastopt_method():
    def fg(x):
        f = np.cos(14.5 * x[0] - 0.3) + (x[0] + 0.2) * x[0]
        return f, np.array([-14.5 * np.sin(14.5 * x[0] - 0.3) + 2 * x[0] + 0.2])

    kwargs = {"method": fastopt.adam, "jac": True, "options": {"lr": 0.01, "maxiter": 2000}}
    res = optimize.basinhopping(fg, np.array([1.0]), minimizer_kwargs=kwargs, niter=30,
                                seed=np.random.default_rng(0))
    # the global minimum of this function (SciPy's basinhopping example) is near -0.195
    np.testing.assert_allclose(res.x, [-0.1951], atol=1e-3)


def test_dual_annealing_local_search():
    # (shgo cannot take a callable method: it calls minimizer_kwargs["method"].lower())
    bounds = [(-2.0, 2.0), (-2.0, 2.0)]
    kwargs = {"method": fastopt.adam, "jac": rosen_der,
              "options": {"lr": 1e-2, "maxiter": 5000}}
    res = optimize.dual_annealing(rosen, bounds, minimizer_kwargs=kwargs, maxiter=50, seed=0)
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-3)


# SciPy's own tests (scipy/optimize/tests/test_optimize.py), run with fastopt's methods.

@pytest.mark.parametrize("name", ["adam", "sgd"])
@pytest.mark.parametrize("interface", ["xk", "keyword", "annotated class"])
def test_scipy_callback_stopiteration(name, interface):
    # TestOptimizeSimple.test_callback_stopiteration: StopIteration at the 5th callback gives
    # the result of maxiter=5.
    calls = []

    def stop():
        calls.append(1)
        if len(calls) == 5:
            raise StopIteration

    if interface == "keyword":
        def callback(*, intermediate_result):
            assert intermediate_result.fun == rosen(intermediate_result.x)
            stop()
    elif interface == "annotated class":
        class Callback:
            def __call__(self, intermediate_result: optimize.OptimizeResult):
                assert intermediate_result.fun == rosen(intermediate_result.x)
                stop()
        callback = Callback()
    else:
        def callback(xk, *args):
            stop()

    kwargs = {"fun": rosen, "x0": [1.1] * 5, "jac": rosen_der, "method": getattr(fastopt, name)}
    res = optimize.minimize(**kwargs, callback=callback)
    ref = optimize.minimize(**kwargs, options={"maxiter": 5})
    assert res.message.startswith("`callback` raised `StopIteration`") and res.status == 99
    assert res.nit == ref.nit == 5 and res.fun == ref.fun and res.nfev == ref.nfev
    np.testing.assert_array_equal(res.x, ref.x)


def test_scipy_all_bounds_equal():
    # test_all_bounds_equal: every variable fixed; fun is evaluated at the fixed point only.
    def f(x, p1=1):
        np.testing.assert_array_equal(x, [1.0, 2.0])
        return np.linalg.norm(x) + p1

    for args in ((), (2,)):
        res = optimize.minimize(f, (1.0, 3.0), args=args, bounds=[(1, 1), (2, 2)],
                                method=fastopt.adam)
        assert res.success and res.nfev == 1
        np.testing.assert_allclose(res.fun, f(np.array([1.0, 2.0]), *args))
