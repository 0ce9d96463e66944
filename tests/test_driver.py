"""fastopt.minimize: convergence, stopping rules, callbacks, bounds, finite differences,
dtypes, non-finite values and bad input."""

import numpy as np
import pytest
from scipy.optimize import Bounds, OptimizeWarning
from scipy.optimize import minimize as scipy_minimize

import fastopt
from fastopt._methods import METHODS
from fastopt._registry import BY_METHOD

ALL_METHODS = list(METHODS)


def rosen2(x):
    """2-D Rosenbrock and its gradient, cheap enough for long runs."""
    a, b = x[0], x[1]
    f = (1 - a) ** 2 + 100 * (b - a * a) ** 2
    return f, np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])


# A convex quadratic 0.5 (x - c)' D (x - c) with a known minimiser c.
D = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
C = np.array([1.0, -2.0, 0.5, 3.0, -1.0])


def quadratic(x):
    return 0.5 * float(np.sum(D * (x - C) ** 2))


def quadratic_grad(x):
    return D * (x - C)


# Options that make each method reach its problem's minimiser: each optimizer's record
# ("quadratic", "rosenbrock"; a method without one is not run there).
QUADRATIC_OPTIONS = {name: record.options["quadratic"] for name, record in BY_METHOD.items()}
ROSEN_OPTIONS = {name: record.options["rosenbrock"] for name, record in BY_METHOD.items()
                 if "rosenbrock" in record.options}


@pytest.mark.parametrize("method", ALL_METHODS)
def test_converges_on_a_convex_quadratic(method):
    res = fastopt.minimize(quadratic, np.zeros(5), method=method, jac=quadratic_grad,
                           options=dict(QUADRATIC_OPTIONS[method], maxiter=20000, gtol=1e-8))
    assert res.success and res.status == 0, res.message
    np.testing.assert_allclose(res.x, C, atol=1e-6)
    assert res.fun == pytest.approx(0.0, abs=1e-10)
    assert np.max(np.abs(res.jac)) <= 1e-8


@pytest.mark.parametrize("method", sorted(ROSEN_OPTIONS))
def test_converges_on_rosenbrock(method):
    res = fastopt.minimize(rosen2, np.array([-1.2, 1.0]), method=method, jac=True,
                           options=dict(ROSEN_OPTIONS[method], maxiter=50000, gtol=1e-6))
    assert res.success, res.message
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-5)


def test_adadelta_makes_steady_progress_on_rosenbrock():
    # torch's Adadelta crawls along Rosenbrock's valley: no setting of a grid (lr 0.1..2,
    # rho 0.5..0.99, eps 1e-6..1e-3) reaches the minimum in 50,000 steps. It still descends.
    res = fastopt.minimize(rosen2, np.array([-1.2, 1.0]), method="adadelta", jac=True,
                           options={"lr": 0.1, "maxiter": 50000})
    assert res.fun < 0.1 < rosen2(np.array([-1.2, 1.0]))[0]


@pytest.mark.parametrize("method", ["adam", "nag", "momentum"])
def test_rosenbrock_100_dimensions(method):
    from scipy.optimize import rosen, rosen_der

    opts = {"adam": {"lr": 5e-3}, "nag": {"lr": 1e-4}, "momentum": {"lr": 1e-4}}
    x0 = np.full(100, 0.5)
    res = fastopt.minimize(rosen, x0, method=method, jac=rosen_der,
                           options=dict(opts[method], maxiter=20000, gtol=1e-5))
    assert res.fun < 1e-6
    np.testing.assert_allclose(res.x, np.ones(100), atol=1e-3)


def test_least_squares_matches_lstsq(rng):
    A = rng.standard_normal((200, 8))
    b = rng.standard_normal(200)

    def fg(x):
        r = A @ x - b
        return 0.5 * r @ r / len(b), A.T @ r / len(b)

    res = fastopt.minimize(fg, np.zeros(8), method="adam", jac=True,
                           options={"lr": 0.05, "maxiter": 20000, "gtol": 1e-10})
    assert res.success
    np.testing.assert_allclose(res.x, np.linalg.lstsq(A, b, rcond=None)[0], rtol=1e-7, atol=1e-8)


def test_logistic_regression_matches_lbfgsb(rng):
    X = rng.standard_normal((300, 5))
    y = (X @ rng.standard_normal(5) + 0.5 * rng.standard_normal(300) > 0).astype(float)
    alpha = 1e-2

    def fg(w):
        z = X @ w
        p = 1 / (1 + np.exp(-z))
        f = np.mean(np.logaddexp(0, z) - y * z) + 0.5 * alpha * w @ w
        return f, X.T @ (p - y) / len(y) + alpha * w

    ref = scipy_minimize(fg, np.zeros(5), jac=True, method="L-BFGS-B",
                         options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10000})
    res = fastopt.minimize(fg, np.zeros(5), method="nag", jac=True,
                           options={"lr": 0.5, "maxiter": 20000, "gtol": 1e-10})
    assert res.success
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-6, atol=1e-8)
    assert res.fun == pytest.approx(ref.fun, rel=1e-12)


# -- results and stopping ------------------------------------------------------------------


def test_result_fields_and_counts():
    res = fastopt.minimize(quadratic, np.zeros(5), method="adam", jac=quadratic_grad,
                           options={"lr": 0.1, "maxiter": 30})
    for field in ("x", "fun", "jac", "nit", "nfev", "njev", "status", "success", "message"):
        assert field in res
    assert res.status == 1 and not res.success
    assert res.message == "Maximum number of iterations has been exceeded."
    assert res.nit == 30 and res.nfev == res.njev == 31
    assert res.fun == pytest.approx(quadratic(res.x))
    np.testing.assert_allclose(res.jac, quadratic_grad(res.x))


def test_maxiter_accepts_integral_floats_and_inf():
    assert fastopt.minimize(rosen2, np.zeros(2), jac=True, options={"maxiter": 5.0}).nit == 5
    res = fastopt.minimize(quadratic, np.zeros(5), method="adam", jac=quadratic_grad,
                           options={"lr": 0.1, "maxiter": float("inf"), "gtol": 1e-6})
    assert res.success


def test_maxiter_zero_returns_x0():
    x0 = np.array([1.0, 2.0])
    res = fastopt.minimize(rosen2, x0, jac=True, options={"maxiter": 0})
    assert res.nit == 0 and res.status == 1 and res.nfev == 1
    np.testing.assert_array_equal(res.x, x0)
    assert res.x is not x0


def test_gtol_and_tol():
    res = fastopt.minimize(quadratic, np.zeros(5), method="gd", jac=quadratic_grad,
                           options={"lr": 0.3, "gtol": 1e-3, "maxiter": 10000})
    assert res.status == 0 and np.max(np.abs(res.jac)) <= 1e-3
    # one more step earlier, the gradient was still above gtol
    shorter = fastopt.minimize(quadratic, np.zeros(5), method="gd", jac=quadratic_grad,
                               options={"lr": 0.3, "gtol": 0, "maxiter": res.nit - 1})
    assert np.max(np.abs(shorter.jac)) > 1e-3
    with_tol = fastopt.minimize(quadratic, np.zeros(5), method="gd", jac=quadratic_grad,
                                tol=1e-3, options={"lr": 0.3, "maxiter": 10000})
    assert with_tol.nit == res.nit


def test_ftol_and_xtol():
    opts = {"lr": 0.05, "maxiter": 100000, "gtol": 0}
    res = fastopt.minimize(rosen2, np.array([-1.2, 1.0]), method="adam", jac=True,
                           options=dict(opts, ftol=1e-9))
    assert res.status == 0 and "ftol" in res.message
    res = fastopt.minimize(rosen2, np.array([-1.2, 1.0]), method="adam", jac=True,
                           options=dict(opts, xtol=1e-9))
    assert res.status == 0 and "xtol" in res.message


# -- callbacks -----------------------------------------------------------------------------


def test_new_style_callback_sees_each_iterate_after_its_update():
    seen = []

    def callback(intermediate_result):
        seen.append((intermediate_result.x, intermediate_result.fun, intermediate_result.nit))

    res = fastopt.minimize(rosen2, np.array([-1.2, 1.0]), method="adam", jac=True,
                           callback=callback, options={"lr": 0.01, "maxiter": 7})
    assert [nit for _, _, nit in seen] == list(range(1, 8))
    for j, (x, f, _) in enumerate(seen, start=1):
        ref = fastopt.minimize(rosen2, np.array([-1.2, 1.0]), method="adam", jac=True,
                               options={"lr": 0.01, "maxiter": j})
        np.testing.assert_array_equal(x, ref.x)
        assert f == ref.fun
    assert seen[-1][0] is not res.x  # copies, not the live iterate


def test_old_style_callback_gets_a_copy_of_x():
    seen = []
    res = fastopt.minimize(rosen2, np.array([-1.2, 1.0]), method="nag", jac=True,
                           callback=seen.append, options={"lr": 1e-4, "maxiter": 5})
    assert len(seen) == 5
    assert all(isinstance(x, np.ndarray) and x.shape == (2,) for x in seen)
    assert not any(np.shares_memory(x, res.x) for x in seen)
    np.testing.assert_array_equal(seen[-1], res.x)
    assert not np.array_equal(seen[0], seen[1])


@pytest.mark.parametrize("style", ["new", "old"])
def test_callback_stopiteration_is_like_maxiter(style):
    # SciPy's test_callback_stopiteration: stopping at the j-th call gives the maxiter=j result.
    maxiter, count = 5, 0

    def counting():
        nonlocal count
        count += 1
        if count == maxiter:
            raise StopIteration

    def new(intermediate_result):
        counting()

    def old(xk):
        counting()

    res = fastopt.minimize(rosen2, np.array([-1.2, 1.0]), method="adam", jac=True,
                           callback=new if style == "new" else old, options={"lr": 0.01})
    ref = fastopt.minimize(rosen2, np.array([-1.2, 1.0]), method="adam", jac=True,
                           options={"lr": 0.01, "maxiter": maxiter})
    assert res.fun == ref.fun
    np.testing.assert_array_equal(res.x, ref.x)
    assert res.nit == ref.nit == maxiter
    assert res.status == 99 and not res.success
    assert res.message == "`callback` raised `StopIteration`."


def test_other_callback_exceptions_propagate_and_leave_x0():
    x0 = np.array([-1.2, 1.0])

    def callback(intermediate_result):
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        fastopt.minimize(rosen2, x0, jac=True, callback=callback)
    np.testing.assert_array_equal(x0, [-1.2, 1.0])


def test_exceptions_in_fun_and_jac_propagate():
    def bad(x):
        raise ZeroDivisionError("in fun")

    with pytest.raises(ZeroDivisionError, match="in fun"):
        fastopt.minimize(bad, np.ones(2), jac=True)
    with pytest.raises(ZeroDivisionError, match="in fun"):
        fastopt.minimize(quadratic, np.ones(5), jac=bad)


def test_return_all_and_disp(capsys):
    res = fastopt.minimize(quadratic, np.zeros(5), method="adam", jac=quadratic_grad,
                           options={"lr": 0.1, "maxiter": 4, "return_all": True, "disp": True})
    assert len(res.allvecs) == 5
    np.testing.assert_array_equal(res.allvecs[0], np.zeros(5))
    np.testing.assert_array_equal(res.allvecs[-1], res.x)
    out = capsys.readouterr().out
    assert "Maximum number of iterations" in out and "Iterations: 4" in out


# -- bounds --------------------------------------------------------------------------------


# (The schedule-free methods return an average of their iterates: with a bound active it
# reaches the bound at the averaging's O(1/t) pace, never within gtol: tested on their own in
# test_schedulefree.py.)
@pytest.mark.parametrize("method", [m for m in ALL_METHODS if not hasattr(METHODS[m], "eval")])
def test_bounds_are_honoured_and_match_lbfgsb(method):
    bounds = [(None, 0.5), (-1.0, 1.0), (0.0, None), (2.0, 2.5), (-3.0, -2.0)]
    seen = []
    res = fastopt.minimize(quadratic, np.zeros(5), method=method, jac=quadratic_grad,
                           bounds=bounds, callback=seen.append,
                           options=dict(QUADRATIC_OPTIONS[method], maxiter=20000, gtol=1e-8))
    ref = scipy_minimize(quadratic, np.zeros(5), jac=quadratic_grad, method="L-BFGS-B",
                         bounds=bounds)
    lo = np.array([-np.inf, -1.0, 0.0, 2.0, -3.0])
    hi = np.array([0.5, 1.0, np.inf, 2.5, -2.0])
    assert all(np.all((lo <= x) & (x <= hi)) for x in seen)
    assert res.success, res.message
    np.testing.assert_allclose(res.x, ref.x, atol=1e-6)


def test_x0_is_clipped_into_the_box_and_bounds_object_works():
    x0 = np.array([5.0, -5.0])
    res = fastopt.minimize(rosen2, x0, jac=True, bounds=Bounds([0, 0], [2, 2]),
                           options={"maxiter": 0, "return_all": True})
    np.testing.assert_array_equal(res.allvecs[0], [2.0, 0.0])
    np.testing.assert_array_equal(x0, [5.0, -5.0])
    res = fastopt.minimize(rosen2, x0, jac=True, bounds=Bounds(-0.5, 0.5),
                           options={"lr": 0.01, "maxiter": 3000})
    assert np.all(np.abs(res.x) <= 0.5)


def test_float32_bounds_are_rounded_inward():
    seen = []
    fastopt.minimize(lambda x: float(np.sum(x)), np.zeros(3, np.float32),
                     jac=lambda x: np.ones(3, np.float32), bounds=[(0.1, 1.0)] * 3,
                     callback=seen.append, options={"lr": 1.0, "maxiter": 3})
    assert all(x.dtype == np.float32 and np.all(x >= 0.1) for x in seen)


@pytest.mark.parametrize("bounds, error, match", [
    ([(0, 1)], ValueError, r"bounds has 1 \(min, max\) pairs, x0 has 2"),
    ([(1, 0), (0, 1)], ValueError, r"bounds\[0\] has min 1.0 > max 0.0"),
    ([(0, 1), (0, np.nan)], ValueError, "NaN"),
    ([(0, 1), "ab"], TypeError, r"bounds\[1\] must hold numbers"),
    ([(0, 1), (0, 1, 2)], ValueError, r"bounds\[1\] must be a \(min, max\) pair"),
    (Bounds([0, 0, 0], [1, 1, 1]), ValueError, "bounds must have 2 entries"),
    (5, TypeError, "bounds must be a scipy.optimize.Bounds"),
])
def test_bad_bounds(bounds, error, match):
    with pytest.raises(error, match=match):
        fastopt.minimize(rosen2, np.zeros(2), jac=True, bounds=bounds)


# -- finite differences ----------------------------------------------------------------------


@pytest.mark.parametrize("fd", ["2-point", "3-point", "cs"])
def test_finite_differences_reach_the_same_minimum(fd):
    def f(x):
        return 0.5 * np.sum(D * (x - C) ** 2)  # analytic: works with complex x too

    res = fastopt.minimize(f, np.zeros(5), method="adam",
                           options={"lr": 0.1, "maxiter": 3000, "finite_diff_method": fd,
                                    "gtol": 1e-5})
    assert res.success
    np.testing.assert_allclose(res.x, C, atol=1e-4)
    per_gradient = {"2-point": 5, "3-point": 10, "cs": 5}[fd]
    assert res.nfev == res.njev * (per_gradient + 1)
    same = fastopt.minimize(f, np.zeros(5), method="adam", jac=fd,
                            options={"lr": 0.1, "maxiter": 3000, "gtol": 1e-5})
    np.testing.assert_array_equal(same.x, res.x)


def test_finite_differences_stay_inside_bounds():
    points = []

    def f(x):
        points.append(np.array(x))
        return float(np.sum((x - 2.0) ** 2))

    for fd in ("2-point", "3-point"):
        points.clear()
        res = fastopt.minimize(f, np.zeros(2), method="adam", bounds=[(0, 1), (0, 1)],
                               options={"lr": 0.1, "maxiter": 200, "finite_diff_method": fd})
        assert all(np.all((p >= 0) & (p <= 1)) for p in points)
        np.testing.assert_allclose(res.x, [1.0, 1.0])


# -- dtypes, x0, fun's view --------------------------------------------------------------------


def test_float32_stays_float32_and_matches_the_class():
    x0 = np.array([-1.2, 1.0], dtype=np.float32)

    def fg(x):
        f, g = rosen2(x.astype(np.float64))
        return f, g.astype(np.float32)

    res = fastopt.minimize(fg, x0, method="adam", jac=True, options={"lr": 0.01, "maxiter": 50})
    assert res.x.dtype == np.float32 and res.jac.dtype == np.float32
    w = x0.copy()
    opt = fastopt.Adam(w, lr=0.01)
    for _ in range(50):
        opt.step(fg(w)[1])
    np.testing.assert_array_equal(res.x, w)


def test_integer_and_list_x0_become_float64_and_x0_is_untouched():
    res = fastopt.minimize(quadratic, [0, 0, 0, 0, 0], jac=quadratic_grad,
                           options={"maxiter": 3})
    assert res.x.dtype == np.float64
    x0 = np.zeros(5)
    res = fastopt.minimize(quadratic, x0, jac=quadratic_grad, options={"maxiter": 3})
    np.testing.assert_array_equal(x0, np.zeros(5))
    assert not np.shares_memory(res.x, x0)


def test_gradient_of_another_dtype_or_a_list_is_converted():
    res32 = fastopt.minimize(quadratic, np.zeros(5, np.float32),
                             jac=lambda x: list(quadratic_grad(x.astype(float))),
                             options={"lr": 0.1, "maxiter": 10})
    assert res32.x.dtype == np.float32


def test_fun_sees_a_read_only_view():
    def fg(x):
        x[0] = 1.0
        return 0.0, np.zeros(2)

    with pytest.raises(ValueError, match="read-only"):
        fastopt.minimize(fg, np.zeros(2), jac=True)


def test_jac_may_return_x_itself():
    # f = 0.5 |x|^2: the gradient is x; the kernels read g[i] before writing x[i].
    res = fastopt.minimize(lambda x: 0.5 * float(x @ x), np.ones(3), method="gd",
                           jac=lambda x: x, options={"lr": 0.5, "maxiter": 3, "gtol": 0})
    np.testing.assert_allclose(res.x, 0.125 * np.ones(3))


# -- non-finite values -------------------------------------------------------------------------


def test_non_finite_value_returns_the_last_finite_iterate():
    seen = []

    def f(x):
        value = float(np.sum(x**2))
        return np.nan if x[0] < 0.5 else value

    res = fastopt.minimize(f, np.array([1.0, 1.0]), method="gd", jac=lambda x: 2 * x,
                           callback=seen.append, options={"lr": 0.1, "maxiter": 100})
    assert res.status == 3 and not res.success
    assert "non-finite" in res.message
    assert np.isfinite(res.fun) and res.x[0] >= 0.5
    np.testing.assert_array_equal(res.x, seen[-1])
    assert res.nit == len(seen)


def test_non_finite_gradient_and_start():
    res = fastopt.minimize(lambda x: 0.0, np.ones(2), jac=lambda x: np.array([np.inf, 0.0]))
    assert res.status == 3 and res.nit == 0
    res = fastopt.minimize(lambda x: np.inf, np.ones(2), jac=lambda x: np.zeros(2))
    assert res.status == 3 and res.nit == 0


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, match", [
    ({"fun": 3}, TypeError, "fun must be callable"),
    ({"x0": np.zeros((2, 2))}, ValueError, "x0 must be one-dimensional"),
    ({"x0": np.zeros(2, complex)}, TypeError, "x0 must be real"),
    ({"x0": np.array([np.nan, 0.0])}, ValueError, "x0 must be finite"),
    ({"x0": np.zeros(0)}, ValueError, "x0 must not be empty"),
    ({"x0": "ab"}, TypeError, "x0 must be real"),
    ({"method": "bfgs"}, ValueError, "Unknown method 'bfgs'"),
    ({"method": None}, TypeError, "method must be a string"),
    ({"method": lambda fun, x0, **kw: None}, TypeError, "not one of fastopt's methods"),
    ({"jac": "5-point"}, ValueError, "jac must be callable, True, None"),
    ({"callback": 3}, TypeError, "callback must be callable"),
    ({"options": {"lr": -1.0}}, ValueError, "Invalid learning rate: lr=-1.0"),
    ({"options": {"maxiter": -1}}, ValueError, "Invalid maxiter"),
    ({"options": {"maxiter": "5"}}, TypeError, "Invalid maxiter"),
    ({"options": {"maxiter": float("nan")}}, ValueError, "Invalid maxiter"),
    ({"options": {"maxiter": np.True_}}, TypeError, "Invalid maxiter"),
    ({"options": {"gtol": -1.0}}, ValueError, "gtol=-1.0"),
    ({"options": {"maximize": True}}, ValueError, "maximize=True is not allowed"),
    ({"options": {"finite_diff_method": "4-point"}}, ValueError, "finite_diff_method"),
    ({"options": {"return_all": "yes"}}, TypeError, "return_all"),
    ({"options": [("lr", 1)]}, TypeError, "options must be a dict"),
])
def test_bad_arguments_raise_before_fun_is_called(kwargs, error, match):
    calls = []

    def fun(x):
        calls.append(1)
        return rosen2(x)

    call = {"fun": fun, "x0": np.zeros(2), "jac": True, **kwargs}
    with pytest.raises(error, match=match):
        fastopt.minimize(**call)
    assert calls == []


@pytest.mark.parametrize("fg, error, match", [
    (lambda x: (np.zeros(2), np.zeros(2)), ValueError, "fun must return a scalar"),
    (lambda x: (0.0, np.zeros(3)), ValueError, r"jac must return 2 values"),
    (lambda x: (0.0, np.zeros(2, complex)), TypeError, "jac must return real values"),
    (lambda x: 0.0, TypeError, r"fun must return \(f, g\).*got float"),
    (lambda x: (0.0, np.zeros(2), 1), TypeError, r"must return \(f, g\).*tuple of length 3"),
    (lambda x: [0.0], TypeError, r"must return \(f, g\).*list of length 1"),
    # An array of length 2 is a pair for SciPy (fg[0], fg[1]): here its "gradient" is a number.
    (lambda x: np.zeros(2), ValueError, r"must return 2 values \(shape \(2,\)\), got shape \(\)"),
    (lambda x: np.zeros(3), TypeError, r"must return \(f, g\).*ndarray of shape \(3,\)"),
    (lambda x: None, TypeError, r"must return \(f, g\).*got None"),
])
def test_bad_return_values(fg, error, match):
    with pytest.raises(error, match=match):
        fastopt.minimize(fg, np.zeros(2), jac=True)


def test_unknown_option_warns():
    with pytest.warns(OptimizeWarning, match="Unknown solver options: foo"):
        fastopt.minimize(rosen2, np.zeros(2), jac=True, options={"foo": 1, "maxiter": 1})


def test_constraints_and_hessians():
    from fastopt._driver import minimize_with_method

    with pytest.raises(ValueError, match="cannot handle constraints"):
        minimize_with_method("adam", rosen2, np.zeros(2), jac=True,
                             constraints={"type": "eq", "fun": lambda x: x[0]})
    with pytest.warns(RuntimeWarning, match="does not use Hessian information"):
        minimize_with_method("adam", rosen2, np.zeros(2), jac=True, hess=lambda x: np.eye(2),
                             options={"maxiter": 1})
