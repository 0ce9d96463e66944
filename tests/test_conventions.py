"""SciPy's and NumPy's conventions in the drivers (issue 11 A8, B9-B15): options as users
write them, method callables, what ``fun`` may return, finite differences inside the bounds,
and the mini-batch driver's stopping rules."""

import warnings

import numpy as np
import pytest
from scipy import optimize
from scipy.optimize import Bounds, OptimizeWarning, rosen, rosen_der
from scipy.optimize._numdiff import approx_derivative

import fastopt
from fastopt._finite_diff import FiniteDifferenceGradient
from fastopt._methods import METHODS


def quad_fg(x):
    return 0.5 * float(x @ x), x.copy()


def quad_batch(X):
    return 0.5 * np.sum(X * X, axis=1), X.copy()


def batch_loss(w, d):
    return 0.5 * float(w @ w), w.copy()


def run_minimize(options):
    return fastopt.minimize(quad_fg, np.ones(2), jac=True, options=options)


def run_batch(options):
    return fastopt.minimize_batch(quad_batch, np.ones((2, 2)), jac=True, options=options)


def run_minibatch(options, **kwargs):
    return fastopt.minimize_minibatch(batch_loss, np.ones(2), data=np.zeros(8), batch_size=4,
                                      **kwargs, options=options)


DRIVERS = {"minimize": run_minimize, "minimize_batch": run_batch,
           "minimize_minibatch": run_minibatch}
EXTREMES = [1e300, 2**63, 2**200, 10**400, -2**63, 1e-300, np.nan, np.inf, -np.inf,
            np.float64(1e300), np.uint64(2**64 - 1), np.array(2**62)]


# -- A8: no OverflowError; a huge maxiter means no limit --------------------------------------

@pytest.mark.parametrize("driver", list(DRIVERS))
@pytest.mark.parametrize("value", [1e300, 2**63, 2**200, 10**400, np.inf, np.float64(1e300),
                                   np.uint64(2**64 - 1), np.array(1e300)])
def test_huge_maxiter_means_no_limit(driver, value):
    calls = []

    def guard(f):  # a run that does not stop fails instead of hanging
        def guarded(*args):
            calls.append(1)
            if len(calls) > 10_000:
                raise RuntimeError("the run did not stop")
            return f(*args)
        return guarded

    options = {"maxiter": value, "gtol": 1e-3, "lr": 0.1}
    if driver == "minimize":
        res = fastopt.minimize(guard(quad_fg), np.ones(2), jac=True, options=options)
    elif driver == "minimize_batch":
        res = fastopt.minimize_batch(guard(quad_batch), np.ones((2, 2)), jac=True,
                                     options=options)
    else:
        res = fastopt.minimize_minibatch(guard(batch_loss), np.ones(2), data=np.zeros(8),
                                         batch_size=4, epochs=value, options=options)
    assert np.all(res.status == 0) and np.all(res.success)  # gtol, not a limit, stopped it


# (10**400 as lr is the optimizer class's check, fastopt/_validation.py: not tried here)
@pytest.mark.parametrize("driver, name", [
    (driver, name) for driver in DRIVERS
    for name in ("maxiter", "gtol", "ftol", "xtol", "lr", "tol", "finite_diff_rel_step",
                 "n_threads")
    if (driver == "minimize" or name != "finite_diff_rel_step")
    and (driver != "minimize_minibatch" or name != "tol")])
@pytest.mark.parametrize("value", EXTREMES)
def test_numeric_options_give_a_result_or_an_error_naming_them(driver, name, value):
    if name == "lr" and isinstance(value, int) and value > 2**1100:
        value = 2**1000
    options = {"maxiter": 20, name: value}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            res = DRIVERS[driver](options)
        except (TypeError, ValueError) as exc:
            assert name in str(exc)
        else:
            assert res.x.shape[-1] == 2 and np.all(np.isin(res.status, (0, 1, 3)))


@pytest.mark.parametrize("name, value", [("epochs", v) for v in EXTREMES] +
                         [("batch_size", v) for v in EXTREMES])
def test_minibatch_counts_give_a_result_or_an_error_naming_them(name, value):
    kwargs = {"epochs": 2, name: value}
    if name == "epochs":
        options = {"gtol": 1e-3, "lr": 0.5}  # a huge epochs stops on gtol
    else:
        options = {}
    calls = []

    def loss(w, d):  # a run that does not stop fails instead of hanging
        calls.append(1)
        assert len(calls) < 10_000, "the run did not stop"
        return batch_loss(w, d)

    try:
        res = fastopt.minimize_minibatch(loss, np.ones(2), data=np.zeros(8),
                                         options=options, **kwargs)
    except (TypeError, ValueError) as exc:
        assert name in str(exc)
    else:
        assert res.status in (0, 1)


def test_per_problem_learning_rates_beyond_float_range():
    with pytest.raises(ValueError, match="lr: every learning rate must be finite"):
        fastopt.minimize_batch(quad_batch, np.ones((2, 2)), jac=True,
                               options={"lr": [10**400, 1.0]})


# -- B13: non-integer maxiter as SciPy reads it ----------------------------------------------

@pytest.mark.parametrize("maxiter", [3.7, 3.2, np.float32(3.5), np.array(3.01), 1e-300])
def test_non_integer_maxiter_is_rounded_up_like_scipy(maxiter):
    x0 = np.array([-1.2, 1.0])
    ref = optimize.minimize(rosen, x0, jac=rosen_der, method="BFGS",
                            options={"maxiter": maxiter})
    res = fastopt.minimize(rosen, x0, jac=rosen_der, options={"maxiter": maxiter})
    assert res.nit == ref.nit == int(np.ceil(maxiter)) and res.status == 1
    batch = fastopt.minimize_batch(lambda X: (np.zeros(len(X)), np.ones_like(X)),
                                   np.zeros((3, 2)), jac=True, options={"maxiter": maxiter})
    assert np.all(batch.nit == res.nit)
    mb = fastopt.minimize_minibatch(batch_loss, np.ones(2), data=np.zeros(8), batch_size=1,
                                    options={"maxiter": maxiter})
    assert mb.nit == res.nit and mb.status == 1


def test_maxiter_100_1_through_scipy_and_fastopt():
    res = optimize.minimize(rosen, np.array([-1.2, 1.0]), jac=rosen_der, method=fastopt.adam,
                            options={"maxiter": 100.1})
    assert res.nit == 101 and res.status == 1


def test_non_integer_epochs_round_up():
    res = fastopt.minimize_minibatch(batch_loss, np.ones(2), data=np.zeros(8), batch_size=4,
                                     epochs=1.5)
    assert res.nepoch == 2 and res.nit == 4


# -- B12: 0-d arrays and numpy bools -----------------------------------------------------------

def test_zero_d_arrays_and_numpy_bools_in_minimize_options():
    x0 = np.array([-1.2, 1.0])
    plain = fastopt.minimize(rosen, x0, jac=rosen_der, tol=1e-4,
                             options={"maxiter": 100, "gtol": 1e-6, "ftol": 1e-12,
                                      "xtol": 1e-12, "return_all": True, "disp": False,
                                      "maximize": False})
    numpy = fastopt.minimize(rosen, x0, jac=rosen_der, tol=np.array(1e-4),
                             options={"maxiter": np.array(100), "gtol": np.array(1e-6),
                                      "ftol": np.array(1e-12), "xtol": np.float32(1e-12),
                                      "return_all": np.True_, "disp": np.array(False),
                                      "maximize": np.False_})
    np.testing.assert_array_equal(plain.x, numpy.x)
    assert plain.nit == numpy.nit and len(numpy.allvecs) == len(plain.allvecs)
    fd = fastopt.minimize(rosen, x0, options={"maxiter": 5,
                                              "finite_diff_rel_step": np.array(1e-7)})
    ref = fastopt.minimize(rosen, x0, options={"maxiter": 5, "finite_diff_rel_step": 1e-7})
    np.testing.assert_array_equal(fd.x, ref.x)


def test_jac_numpy_true_and_maximize_numpy_true():
    res = fastopt.minimize(quad_fg, np.ones(2), jac=np.True_, options={"maxiter": 3})
    assert res.nfev == 4  # no finite differences
    batch = fastopt.minimize_batch(quad_batch, np.ones((2, 2)), jac=np.True_,
                                   options={"maxiter": 3})
    assert np.all(batch.nit == 3)
    with pytest.raises(ValueError, match="maximize=True is not allowed"):
        fastopt.minimize(quad_fg, np.ones(2), jac=True, options={"maximize": np.True_})


def test_zero_d_arrays_in_batch_and_minibatch():
    a = run_batch({"maxiter": np.array(7), "gtol": np.array(0.0)})
    b = run_batch({"maxiter": 7, "gtol": 0.0})
    np.testing.assert_array_equal(a.x, b.x)
    assert np.all(a.nit == 7)
    rng = np.random.default_rng(0)
    data = rng.standard_normal(40)
    kw = dict(fun=lambda w, d: (float(np.mean((w - d) ** 2)), 2 * (w - d.mean())),
              x0=np.zeros(1), data=data)
    a = fastopt.minimize_minibatch(**kw, batch_size=np.array(8), epochs=np.array(3),
                                   seed=np.array(5), shuffle=np.True_,
                                   options={"maxiter": np.array(100), "ftol": np.array(0.0)})
    b = fastopt.minimize_minibatch(**kw, batch_size=8, epochs=3, seed=5, shuffle=True,
                                   options={"maxiter": 100, "ftol": 0.0})
    np.testing.assert_array_equal(a.x, b.x)
    assert a.nit == b.nit == 15
    c = fastopt.minimize_minibatch(**kw, batch_size=8.0, epochs=3.0, seed=5)
    np.testing.assert_array_equal(c.x, b.x)


# -- B14: fastopt's method callables as method -------------------------------------------------

@pytest.mark.parametrize("name", list(METHODS))
def test_method_callables_and_classes_are_accepted(name):
    x0 = np.array([-1.2, 1.0])
    options = {"lr": 1e-3, "maxiter": 50}
    by_name = fastopt.minimize(rosen, x0, jac=rosen_der, method=name, options=options)
    for method in (getattr(fastopt, name), METHODS[name]):
        res = fastopt.minimize(rosen, x0, jac=rosen_der, method=method, options=options)
        np.testing.assert_array_equal(res.x, by_name.x)
    b_name = fastopt.minimize_batch(quad_batch, np.ones((2, 2)), method=name, jac=True,
                                    options=options)
    b_call = fastopt.minimize_batch(quad_batch, np.ones((2, 2)), method=getattr(fastopt, name),
                                    jac=True, options=options)
    np.testing.assert_array_equal(b_name.x, b_call.x)
    m_name = run_minibatch(options, method=name, seed=0)
    m_call = run_minibatch(options, method=getattr(fastopt, name), seed=0)
    np.testing.assert_array_equal(m_name.x, m_call.x)


@pytest.mark.parametrize("method", [lambda fun, x0, **kw: None, optimize.minimize, print,
                                    object])
@pytest.mark.parametrize("driver", list(DRIVERS))
def test_foreign_callables_are_refused_clearly(method, driver):
    with pytest.raises(TypeError, match="not one of fastopt's methods.*scipy.optimize.minimize"):
        if driver == "minimize_minibatch":
            run_minibatch({}, method=method)
        elif driver == "minimize_batch":
            fastopt.minimize_batch(quad_batch, np.ones((2, 2)), method=method, jac=True)
        else:
            fastopt.minimize(quad_fg, np.ones(2), jac=True, method=method)


# -- B11: jac=True with any pair ---------------------------------------------------------------

def test_jac_true_accepts_a_list_like_scipy():
    x0 = np.array([-1.2, 1.0])
    as_tuple = fastopt.minimize(lambda x: (rosen(x), rosen_der(x)), x0, jac=True,
                                options={"maxiter": 30})
    as_list = fastopt.minimize(lambda x: [rosen(x), rosen_der(x)], x0, jac=True,
                               options={"maxiter": 30})
    np.testing.assert_array_equal(as_tuple.x, as_list.x)
    via_scipy = optimize.minimize(lambda x: [rosen(x), rosen_der(x)], x0, jac=True,
                                  method=fastopt.adam, options={"maxiter": 30})
    np.testing.assert_array_equal(via_scipy.x, as_tuple.x)
    ref = optimize.minimize(lambda x: [rosen(x), rosen_der(x)], x0, jac=True, method="BFGS")
    assert ref.success  # SciPy's own methods take the list too
    batch = fastopt.minimize_batch(lambda X: list(quad_batch(X)), np.ones((2, 2)), jac=True,
                                   options={"maxiter": 5})
    assert np.all(batch.nit == 5)
    mb = fastopt.minimize_minibatch(lambda w, d: [0.5 * float(w @ w), w], np.ones(2),
                                    data=np.zeros(4))
    assert mb.nit == 1


def test_jac_true_accepts_an_array_pair_like_scipy():
    # SciPy's MemoizeJac reads fg[0] and fg[1]: an object array [f, g] is a pair too.
    def as_array(x):
        out = np.empty(2, dtype=object)
        out[0], out[1] = rosen(x), rosen_der(x)
        return out

    x0 = np.array([-1.2, 1.0])
    ref = fastopt.minimize(lambda x: (rosen(x), rosen_der(x)), x0, jac=True,
                           options={"maxiter": 30})
    res = fastopt.minimize(as_array, x0, jac=True, options={"maxiter": 30})
    np.testing.assert_array_equal(res.x, ref.x)
    assert optimize.minimize(as_array, x0, jac=True, method="BFGS").success


@pytest.mark.parametrize("bad, match", [
    (lambda x: np.ones(3), r"got an ndarray of shape \(3,\)"),
    (lambda x: np.array(1.0), r"got an ndarray of shape \(\)"),
    (lambda x: (1.0, x, 0), "got a tuple of length 3"),
    (lambda x: (1.0,), "got a tuple of length 1"),
    (lambda x: [1.0, x, 0], "got a list of length 3"),
    (lambda x: 1.0, "got float"),
    (lambda x: "fg", "got 'fg'"),
    (lambda x: {"f": 1.0, "g": x}, "got dict"),
])
def test_jac_true_bad_returns_are_precise(bad, match):
    with pytest.raises(TypeError, match=r"fun must return \(f, g\).*" + match):
        fastopt.minimize(bad, np.ones(2), jac=True)
    with pytest.raises(TypeError, match=r"fun must return \(f, g\).*" + match):
        fastopt.minimize_batch(bad, np.ones((3, 2)), jac=True)
    with pytest.raises(TypeError, match=r"^fun must return \(f, g\).*" + match):
        fastopt.minimize_minibatch(lambda w, d: bad(w), np.ones(2), data=np.zeros(4))


# -- B10: whatever fun returns as the gradient -------------------------------------------------

GRADIENTS = {
    "x itself": lambda w: w,
    "a view of x": lambda w: w[:],
    "reversed view": lambda w: w[::-1][::-1],
    "read-only copy": lambda w: _read_only(w.copy()),
    "float32": lambda w: w.astype(np.float32),
    "list": lambda w: list(w),
    "column": lambda w: w.reshape(-1, 1),
    "non-contiguous": lambda w: np.repeat(w, 2)[::2],
    "big-endian": lambda w: w.astype(">f8"),
}


def _read_only(a):
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("kind", list(GRADIENTS))
@pytest.mark.parametrize("method", ["sgd", "adam"])
def test_minibatch_takes_any_gradient_array(kind, method):
    make = GRADIENTS[kind]
    ref = fastopt.minimize_minibatch(lambda w, d: (0.5 * float(w @ w), w.copy()),
                                     np.arange(1.0, 4.0), data=np.zeros(6), batch_size=2,
                                     method=method, epochs=3, seed=0, options={"lr": 0.1})
    res = fastopt.minimize_minibatch(lambda w, d: (0.5 * float(w @ w), make(w)),
                                     np.arange(1.0, 4.0), data=np.zeros(6), batch_size=2,
                                     method=method, epochs=3, seed=0, options={"lr": 0.1})
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-6)
    assert res.nit == 9


@pytest.mark.parametrize("kind", list(GRADIENTS))
def test_minimize_takes_any_gradient_array(kind):
    make = GRADIENTS[kind]
    ref = fastopt.minimize(lambda w: 0.5 * float(w @ w), np.arange(1.0, 4.0),
                           jac=lambda w: w.copy(), options={"maxiter": 20, "lr": 0.1})
    res = fastopt.minimize(lambda w: 0.5 * float(w @ w), np.arange(1.0, 4.0), jac=make,
                           options={"maxiter": 20, "lr": 0.1})
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-6)
    res = fastopt.minimize(lambda w: (0.5 * float(w @ w), make(w)), np.arange(1.0, 4.0),
                           jac=True, options={"maxiter": 20, "lr": 0.1})
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-6)


@pytest.mark.parametrize("g, error, match", [
    (lambda w: w[:-1], ValueError, r"fun's gradient must have 3 real values.*\(2,\)"),
    (lambda w: w.astype(complex), TypeError, "fun's gradient must have 3 real values"),
    (lambda w: [w, 1.0], TypeError, "fun must return a gradient g of 3 real values"),
    (lambda w: None, TypeError, "fun's gradient must have 3 real values"),
    (lambda w: ["a", "b", "c"], TypeError, "fun's gradient must have 3 real values"),
])
def test_minibatch_bad_gradients_speak_of_fun(g, error, match):
    with pytest.raises(error, match=match) as info:
        fastopt.minimize_minibatch(lambda w, d: (1.0, g(w)), np.ones(3), data=np.zeros(4))
    assert "grads" not in str(info.value)


def test_minimize_ragged_gradient_names_jac():
    with pytest.raises(TypeError, match="jac must return 2 real values"):
        fastopt.minimize(lambda w: 1.0, np.ones(2), jac=lambda w: [w, 1.0])


# -- B9: finite differences inside the bounds --------------------------------------------------

def _guarded(lb, ub):
    """A function that raises outside [lb, ub] (its real part, for the complex step)."""
    weights = np.arange(1.0, lb.size + 1)

    def fun(x):
        real = np.real(x)
        if np.any(real < lb) or np.any(real > ub):
            raise AssertionError(f"fun evaluated outside the bounds at {real}")
        return np.sum(np.sin(x) * weights) + 0.3 * np.sum(x * x)

    def exact(x):
        return np.cos(x) * weights + 0.6 * x

    return fun, exact


BOX_CASES = {
    "fixed": ([0.0, 2, -1, -1], [3.0, 2, 2, -1], [1.0, 2, 0.5, -1]),
    "narrow": ([0.0, 1, -1, 5], [1e-9, 1 + 1e-10, -1 + 2e-9, 5 + 1e-6], [5e-10, 1, -1, 5]),
    "at lower": ([0.0, 1, -3], [1.0, 2, -2], [0.0, 1, -3]),
    "at upper": ([0.0, 1, -3], [1.0, 2, -2], [1.0, 2, -2]),
    "infinite": ([-np.inf, 0, -np.inf, -np.inf], [np.inf, np.inf, 0.0, 1.0],
                 [0.3, 0.0, 0.0, 1.0]),
}


@pytest.mark.parametrize("case", list(BOX_CASES))
@pytest.mark.parametrize("method", ["2-point", "3-point", "cs"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_finite_differences_stay_in_the_box_and_match_scipy(case, method, dtype):
    lb, ub, x = (np.array(v, dtype=dtype) for v in BOX_CASES[case])
    fun, exact = _guarded(lb, ub)
    fd = FiniteDifferenceGradient(fun, (), method, None, lb, ub)
    g = fd(x, fun(x))
    free = lb != ub
    assert np.all(g[~free] == 0)
    assert fd.nfev == {"2-point": 1, "3-point": 2, "cs": 1}[method] * np.count_nonzero(free)
    wide = free & (ub - lb > 1e-3)
    tol = 1e-6 if dtype == np.float64 else 2e-2
    np.testing.assert_allclose(g[wide], exact(x.astype(float))[wide], rtol=tol, atol=tol)
    if dtype == np.float64:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = approx_derivative(fun, x, method=method, bounds=(lb, ub))
        np.testing.assert_allclose(g[wide], ref[wide], rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("method", ["2-point", "3-point", "cs"])
@pytest.mark.parametrize("rel_step", [None, 1e-3, 0.5, 1e3, 1e300, 1e-300])
def test_finite_differences_with_any_step_stay_in_the_box(method, rel_step):
    lb, ub = np.array([0.0, -1.0, 2.0]), np.array([1.0, 1.0, 2.0])
    fun, exact = _guarded(lb, ub)
    x = np.array([0.999, 0.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g = FiniteDifferenceGradient(fun, (), method, rel_step, lb, ub)(x, fun(x))
    assert g.shape == (3,) and g[2] == 0


@pytest.mark.parametrize("jac", [None, "2-point", "3-point", "cs"])
@pytest.mark.parametrize("bound_type", [lambda lb, ub: list(zip(lb, ub)), Bounds])
@pytest.mark.parametrize("via_scipy", [False, True])
def test_equal_bounds_fun_undefined_outside(jac, bound_type, via_scipy):
    # SciPy's test_equal_bounds scenario (test_optimize.py): fun checks that the fixed
    # variables are exactly at their bounds, and raises otherwise.
    x0 = np.random.default_rng(12223).random(4)
    lb, ub = np.array([0, 2, -1, -1.0]), np.array([3, 2, 2, -1.0])
    fixed = lb == ub

    def func(x):
        assert x.size == 4
        np.testing.assert_array_equal(np.real(x)[fixed], lb[fixed])
        assert np.all(np.real(x) >= lb) and np.all(np.real(x) <= ub)
        return rosen(x)

    options = {"lr": 1e-2, "maxiter": 3000, "gtol": 1e-4,
               "finite_diff_method": jac or "2-point"}
    if via_scipy:
        res = optimize.minimize(func, x0, method=fastopt.adam, jac=jac,
                                bounds=bound_type(lb, ub), options=options)
    else:
        res = fastopt.minimize(func, x0, method="adam", jac=jac, bounds=bound_type(lb, ub),
                               options=options)
    expected = optimize.minimize(rosen, x0, method="L-BFGS-B", jac=rosen_der,
                                 bounds=bound_type(lb, ub))
    assert res.success
    np.testing.assert_array_equal(res.x[fixed], lb[fixed])
    np.testing.assert_allclose(res.x, expected.x, atol=2e-3)
    assert np.all(res.jac[fixed] == 0)


def test_all_variables_fixed_calls_fun_once_per_iteration_only():
    calls = []

    def f(x):
        calls.append(x.copy())
        np.testing.assert_array_equal(x, [1.0, 2.0])
        return float(np.linalg.norm(x)) + 1

    res = fastopt.minimize(f, (1.0, 3.0), bounds=[(1, 1), (2, 2)], options={"maxiter": 5})
    assert res.success and res.nfev == len(calls) == 1  # the projected gradient is 0
    np.testing.assert_allclose(res.fun, f(np.array([1.0, 2.0])))


# -- B15: minimize_minibatch's stopping rules and status ---------------------------------------

@pytest.fixture
def regression():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    return X, X @ np.array([1.0, -2.0, 0.5])


def squared_loss(w, X, y):
    r = X @ w - y
    return 0.5 * np.mean(r**2), X.T @ r / len(y)


def test_default_minibatch_run_does_not_claim_success(regression):
    with warnings.catch_warnings():
        warnings.simplefilter("error", OptimizeWarning)
        res = fastopt.minimize_minibatch(squared_loss, np.zeros(3), data=regression)
    assert not res.success and res.status == 1 and res.nepoch == 1
    assert res.message == "Maximum number of epochs has been reached."
    capped = fastopt.minimize_minibatch(squared_loss, np.zeros(3), data=regression,
                                        epochs=5, options={"maxiter": 3})
    assert capped.status == 1 and capped.nit == 3 and "iterations" in capped.message


def test_minibatch_gtol_stops_on_the_full_data_gradient(regression):
    X, y = regression
    seen = []
    res = fastopt.minimize_minibatch(
        squared_loss, np.zeros(3), data=(X, y), batch_size=16, epochs=np.inf, seed=0,
        callback=lambda intermediate_result: seen.append(intermediate_result),
        options={"lr": 0.1, "gtol": 1e-6})
    assert res.success and res.status == 0 and "gtol" in res.message
    full = squared_loss(res.x, X, y)[1]
    np.testing.assert_allclose(res.jac, full, atol=1e-12)
    assert np.max(np.abs(full)) <= 1e-6
    # the epoch before did not meet it
    assert np.max(np.abs(seen[-2].jac)) > 1e-6 and len(seen) == res.nepoch
    steps_per_epoch = int(np.ceil(200 / 16))
    assert res.nit == res.nepoch * steps_per_epoch
    assert res.nfev == res.njev == 2 * res.nit  # one more pass over the data per epoch


def test_minibatch_ftol_and_xtol(regression):
    X, y = regression
    base = dict(data=(X, y), batch_size=20, epochs=500, seed=1)
    res = fastopt.minimize_minibatch(squared_loss, np.zeros(3), **base,
                                     options={"lr": 0.05, "ftol": 1e-4})
    assert res.success and "ftol" in res.message and 2 <= res.nepoch < 500
    h = res.history
    assert abs(h[-2] - h[-1]) <= 1e-4 * max(abs(h[-2]), abs(h[-1]), 1)
    assert all(abs(a - b) > 1e-4 * max(abs(a), abs(b), 1) for a, b in zip(h[:-2], h[1:-1]))
    res = fastopt.minimize_minibatch(squared_loss, np.zeros(3), **base,
                                     options={"lr": 0.05, "xtol": 1e-6})
    assert res.success and "xtol" in res.message and res.nepoch < 500


def test_minibatch_gtol_with_a_non_finite_full_gradient():
    seen = []

    def loss(w, d):
        seen.append(w.copy())
        return (np.inf if len(seen) == 3 else 0.5 * float(w @ w)), w.copy()

    # calls 1 and 2 are the epoch's steps, call 3 the first of the full-data pass (gtol)
    res = fastopt.minimize_minibatch(loss, np.ones(2), data=np.zeros(6), batch_size=3,
                                     shuffle=False, options={"gtol": 1e-9, "lr": 0.1})
    assert res.status == 3 and not res.success and res.nit == 1
    np.testing.assert_array_equal(res.x, seen[1])  # the last iterate with finite values


# -- issue 12: the drivers speak one language ------------------------------------------------

def counting(driver):
    """(a run of ``driver`` with the given options, the list its objective appends to)."""
    calls = []

    def fg(x):
        calls.append(1)
        return quad_fg(x)

    def fg_rows(X):
        calls.append(1)
        return quad_batch(X)

    def loss(w, d):
        calls.append(1)
        return batch_loss(w, d)

    runs = {
        "minimize": lambda options: fastopt.minimize(fg, np.ones(3), jac=True,
                                                     options=options),
        "minimize_batch": lambda options: fastopt.minimize_batch(fg_rows, np.ones((4, 3)),
                                                                 jac=True, options=options),
        "minimize_minibatch": lambda options: fastopt.minimize_minibatch(
            loss, np.ones(3), data=np.zeros(8), batch_size=4, epochs=3, options=options),
    }
    return runs[driver], calls


@pytest.mark.parametrize("driver", list(DRIVERS))
@pytest.mark.parametrize("n_threads", [None, 1, 2, -1, -2, np.int64(2), np.array(3)])
def test_n_threads_is_an_option_of_every_driver(driver, n_threads, monkeypatch):
    import fastopt._driver_common as common

    given = []
    resolve = common.effective_n_threads
    monkeypatch.setattr(common, "effective_n_threads",
                        lambda n: given.append(n) or resolve(n))
    run, calls = counting(driver)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # accepted: no "Unknown solver options"
        res = run({"lr": 0.1, "maxiter": 5, "n_threads": n_threads})
    assert given == [None if n_threads is None else int(n_threads)]  # read, not dropped
    ref = run({"lr": 0.1, "maxiter": 5, "n_threads": 1})
    np.testing.assert_array_equal(res.x, ref.x)  # the result does not depend on it
    np.testing.assert_array_equal(res.nit, ref.nit)


@pytest.mark.parametrize("driver", list(DRIVERS))
@pytest.mark.parametrize("n_threads, error", [
    (0, ValueError), (1025, ValueError), (-1025, ValueError), (2**70, ValueError),
    (True, TypeError), (np.True_, TypeError), (2.0, TypeError), ("2", TypeError),
    (np.array([2]), TypeError)])
def test_bad_n_threads_is_refused_by_every_driver_before_any_call(driver, n_threads, error):
    run, calls = counting(driver)
    with pytest.raises(error, match="n_threads"):
        run({"n_threads": n_threads})
    assert calls == []


def test_n_threads_has_one_description_in_every_driver():
    # One meaning, one wording: the paragraph of minimize's docstring is in the others'.
    import re

    def paragraph(doc):
        text = doc.split("n_threads : int or None, default=None", 1)[1]
        text = " ".join(text.split())
        return text[:text.index("The result does not depend on it.")]

    docs = [fastopt.minimize.__doc__, fastopt.minimize_batch.__doc__,
            fastopt.minimize_minibatch.__doc__]
    texts = {paragraph(doc) for doc in docs}
    assert len(texts) == 1
    (text,) = texts
    assert re.search(r"None.*follows OpenMP.*OMP_NUM_THREADS", text)
    assert "-1" in text and "-2" in text and "1024" in text and "0 is an error" in text
    assert not any("scikit-learn" in doc for doc in docs)


def test_drivers_share_helpers_through_one_module():
    # No driver imports another driver's names; no function name in two driver modules.
    import ast
    import pathlib

    package = pathlib.Path(fastopt.__file__).parent
    drivers = ["_driver", "_minimize_batch", "_minibatch", "_driver_common"]
    defined = {}
    for name in drivers:
        tree = ast.parse((package / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported = node.module.rsplit(".", 1)[-1]
                assert imported not in ("_driver", "_minimize_batch", "_minibatch") or \
                    imported == name, f"{name} imports from {node.module}"
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                assert node.name not in defined, (
                    f"{node.name} is defined in {defined.get(node.name)} and {name}")
                defined[node.name] = name


@pytest.mark.parametrize("value, error", [
    (1.5, TypeError), (np.nan, TypeError), ("3", TypeError), (True, TypeError),
    (np.True_, TypeError), (np.timedelta64(3), TypeError), (np.array([3]), TypeError),
    (-1, ValueError), (np.int8(-1), ValueError)])
def test_integer_options_share_one_check(value, error):
    # A state dict's step, batch_size and seed: the same kinds of value are refused the same
    # way (fastopt._validation.check_int), each naming itself.
    from fastopt._validation import check_step

    with pytest.raises(error, match="step"):
        check_step(value)
    with pytest.raises(error, match="batch_size"):
        fastopt.minimize_minibatch(batch_loss, np.ones(2), data=np.zeros(8),
                                   batch_size=value)
    with pytest.raises(error, match="seed"):
        fastopt.minimize_minibatch(batch_loss, np.ones(2), data=np.zeros(8), seed=value)
    if error is ValueError and value == -1:
        with pytest.raises(ValueError, match="batch_size=0 must be >= 1"):
            fastopt.minimize_minibatch(batch_loss, np.ones(2), data=np.zeros(8),
                                       batch_size=0)


@pytest.mark.parametrize("value", [3, np.int64(3), np.array(3), 3.0, np.float32(3.0)])
def test_integer_options_accept_ints_and_integral_floats(value):
    from fastopt._validation import check_step

    assert check_step(value) == 3
    res = fastopt.minimize_minibatch(batch_loss, np.ones(2), data=np.zeros(9),
                                     batch_size=value, epochs=1, shuffle=False)
    assert res.nit == 3
