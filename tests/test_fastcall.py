"""minimize's fast path (fastopt/_fastcall.pyx) against its general path (fastopt/_driver.py).

Every call is made twice: as users make it (the fast path runs it when it can), and with the
fast path switched off. The two results must be identical (every field, bit for bit, in the
same order); each case says whether the fast path must take it, so that a fast path that
stops covering the common call fails here. Every bad call must raise the same error either
way, with the fast path returning None for it, calling nothing and changing nothing.
"""

import contextlib
import copy
import warnings

import numpy as np
import pytest
from scipy import optimize
from scipy.optimize import OptimizeResult, rosen, rosen_der

import fastopt
import fastopt._driver as driver
from fastopt import _fastcall
from fastopt._kernels import get_parallel_threshold
from fastopt._methods import METHODS
from fastopt._registry import BY_METHOD

# Methods whose object the run needs (state shaped by the parameter, an averaged final point):
# the general path runs them.
GENERAL_ONLY = {"adafactor", "sgdschedulefree", "adamwschedulefree"}


@contextlib.contextmanager
def general_path():
    """Switch the fast path off."""
    real = driver.fast_minimize
    driver.fast_minimize = lambda *args, **kwargs: None
    try:
        yield
    finally:
        driver.fast_minimize = real


@contextlib.contextmanager
def spied_fast_path(taken):
    """Append to ``taken`` whether each call took the fast path."""
    real = driver.fast_minimize

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        taken.append(result is not None)
        return result

    driver.fast_minimize = spy
    try:
        yield
    finally:
        driver.fast_minimize = real


def both_paths(call):
    """(result with the fast path on, whether it was taken, result of the general path)."""
    taken = []
    with spied_fast_path(taken):
        fast = call()
    with general_path():
        general = call()
    assert len(taken) == 1
    return fast, taken[0], general


def assert_identical(a, b):
    assert type(a) is type(b) is OptimizeResult
    assert list(a.keys()) == list(b.keys())
    for key in a:
        assert_same(a[key], b[key], key)


def assert_same(u, v, key):
    assert type(u) is type(v), key
    if isinstance(u, np.ndarray):
        assert (u.dtype, u.shape) == (v.dtype, v.shape), key
        assert u.tobytes() == v.tobytes(), key  # bitwise: NaN and -0.0 too
        assert (u.flags.writeable, u.flags.c_contiguous, u.flags.owndata) == \
            (v.flags.writeable, v.flags.c_contiguous, v.flags.owndata), key
    elif isinstance(u, float):
        assert np.float64(u).tobytes() == np.float64(v).tobytes(), key
    elif isinstance(u, list):  # allvecs
        assert len(u) == len(v), key
        for ui, vi in zip(u, v):
            assert_same(ui, vi, key)
    else:
        assert u == v, key


# ---------------------------------------------------------------------------------------------
# Objectives (made fresh for each run: some count their calls)

def rosen_fg(x, *args):
    return rosen(x), rosen_der(x)


def rosen_list(x):
    return [rosen(x), list(rosen_der(x))]  # a list [f, g] with g a list: converted by the loop


def rosen_int_gradient(x):
    return rosen(x), np.round(rosen_der(x)).astype(np.int64)


def quadratic_returning_x(x):
    return float(x @ x) / 2, x  # the gradient is x itself (a read-only view of the iterate)


def with_args(x, a, b):
    return rosen(x) * a + b, rosen_der(x) * a


def nan_after(k):
    calls = [0]

    def fg(x):
        calls[0] += 1
        return (np.nan if calls[0] > k else rosen(x)), rosen_der(x)
    return fg


def quadratic_f32(x):
    return np.float32(x @ x), (2 * x).astype(np.float32)


X0 = np.array([-1.2, 1.0])


def fast_cases():
    """(id, call, the fast path takes it)."""
    cases = []
    for name in sorted(METHODS):
        fast = name not in GENERAL_ONLY
        example = dict(BY_METHOD[name].options["example"])
        for opts in ({"maxiter": 1}, {**example, "maxiter": 7}):
            cases.append((f"{name}-{opts}", lambda name=name, opts=opts: fastopt.minimize(
                rosen_fg, X0, method=name, jac=True, options=opts), fast))
    more = {
        "list-x0": (lambda: fastopt.minimize(rosen_fg, [-1.2, 1.0], jac=True,
                                             options={"maxiter": 5}), True),
        "int-list-x0": (lambda: fastopt.minimize(rosen_fg, [-1, 2], jac=True,
                                                 options={"maxiter": 5, "lr": 0.01}), True),
        "int-array-x0": (lambda: fastopt.minimize(rosen_fg, np.array([-1, 2]), jac=True,
                                                  options={"maxiter": 5}), True),
        "bool-x0": (lambda: fastopt.minimize(rosen_fg, np.array([True, False]), jac=True,
                                             options={"maxiter": 5}), True),
        "float16-x0": (lambda: fastopt.minimize(rosen_fg, X0.astype(np.float16), jac=True,
                                                options={"maxiter": 5}), True),
        "float32-x0": (lambda: fastopt.minimize(quadratic_f32, X0.astype(np.float32),
                                                jac=True, options={"maxiter": 9, "lr": 0.1}),
                       True),
        "float32-list-x0": (lambda: fastopt.minimize(
            quadratic_f32, [np.float32(1.5), np.float32(-2.0)], jac=True,
            options={"maxiter": 9}), True),
        "big-endian-x0": (lambda: fastopt.minimize(rosen_fg, X0.astype(">f8"), jac=True,
                                                   options={"maxiter": 5}), True),
        "strided-x0": (lambda: fastopt.minimize(rosen_fg, np.array([-1.2, 0, 1.0, 0])[::2],
                                                jac=True, options={"maxiter": 5}), True),
        "no-options": (lambda: fastopt.minimize(rosen_fg, X0, jac=True), True),
        "hyperparameters": (lambda: fastopt.minimize(
            rosen_fg, X0, method="adam", jac=True,
            options={"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1,
                     "amsgrad": True, "maxiter": 20}), True),
        "np.float64-lr": (lambda: fastopt.minimize(rosen_fg, X0, jac=True, options={
            "lr": np.float64(0.02), "maxiter": 20}), True),
        "int-lr": (lambda: fastopt.minimize(rosen_fg, X0, method="sgd", jac=True, options={
            "lr": 0, "maxiter": 3}), True),
        "weight-decay-0": (lambda: fastopt.minimize(rosen_fg, X0, jac=True, options={
            "weight_decay": 0.0, "maxiter": 5}), True),
        "weight-decay-minus-0": (lambda: fastopt.minimize(rosen_fg, X0, jac=True, options={
            "weight_decay": -0.0, "maxiter": 5}), True),
        "nesterov": (lambda: fastopt.minimize(rosen_fg, X0, method="sgd", jac=True, options={
            "lr": 1e-3, "momentum": 0.9, "nesterov": True, "maxiter": 20}), True),
        "rmsprop-centered": (lambda: fastopt.minimize(rosen_fg, X0, method="rmsprop",
                                                      jac=True, options={
            "centered": True, "momentum": 0.5, "maxiter": 20}), True),
        "rprop-float32": (lambda: fastopt.minimize(quadratic_f32, X0.astype(np.float32),
                                                   method="rprop", jac=True,
                                                   options={"lr": 0.1, "maxiter": 9}), True),
        "adagrad-initial-float32": (lambda: fastopt.minimize(
            quadratic_f32, X0.astype(np.float32), method="adagrad", jac=True,
            options={"initial_accumulator_value": 0.3, "maxiter": 9}), True),
        "method-upper-case": (lambda: fastopt.minimize(rosen_fg, X0, method="ADAM", jac=True,
                                                       options={"maxiter": 5}), True),
        "method-callable": (lambda: fastopt.minimize(rosen_fg, X0, method=fastopt.nadam,
                                                     jac=True, options={"maxiter": 5}), True),
        "method-class": (lambda: fastopt.minimize(rosen_fg, X0, method=fastopt.RMSprop,
                                                  jac=True, options={"maxiter": 5}), True),
        "jac-callable": (lambda: fastopt.minimize(rosen, X0, jac=rosen_der,
                                                  options={"maxiter": 5}), True),
        "jac-none": (lambda: fastopt.minimize(rosen, X0, options={"maxiter": 5}), True),
        "jac-false": (lambda: fastopt.minimize(rosen, X0, jac=False,
                                               options={"maxiter": 5}), True),
        "jac-3-point": (lambda: fastopt.minimize(rosen, X0, jac="3-point",
                                                 options={"maxiter": 5}), True),
        "jac-np-true": (lambda: fastopt.minimize(rosen_fg, X0, jac=np.True_,
                                                 options={"maxiter": 5}), False),
        "fun-list": (lambda: fastopt.minimize(rosen_list, X0, jac=True,
                                              options={"maxiter": 5}), True),
        "int-gradient": (lambda: fastopt.minimize(rosen_int_gradient, X0, jac=True,
                                                  options={"maxiter": 5}), True),
        "gradient-is-x": (lambda: fastopt.minimize(quadratic_returning_x, X0, jac=True,
                                                   options={"maxiter": 5, "lr": 0.1}), True),
        "args-tuple": (lambda: fastopt.minimize(with_args, X0, args=(2.0, 1.0), jac=True,
                                                options={"maxiter": 5}), True),
        "args-one": (lambda: fastopt.minimize(lambda x, a: rosen_fg(x * a), X0, args=1.5,
                                              jac=True, options={"maxiter": 5}), True),
        "gtol-stop": (lambda: fastopt.minimize(rosen_fg, [1.0, 1.0], jac=True), True),
        "gtol": (lambda: fastopt.minimize(rosen_fg, X0, jac=True, options={
            "gtol": 100.0, "maxiter": 50}), True),
        "tol-argument": (lambda: fastopt.minimize(rosen_fg, X0, jac=True, tol=100.0,
                                                  options={"maxiter": 50}), True),
        "tol-option-wins": (lambda: fastopt.minimize(rosen_fg, X0, jac=True, tol=1e-12,
                                                     options={"tol": 100, "maxiter": 50}),
                            True),
        "ftol": (lambda: fastopt.minimize(rosen_fg, X0, jac=True, options={
            "ftol": 1e-2, "lr": 1e-3, "maxiter": 500}), True),
        "xtol": (lambda: fastopt.minimize(rosen_fg, X0, method="sgd", jac=True, options={
            "xtol": 1e-3, "lr": 1e-4, "maxiter": 500}), True),
        "maxiter-float": (lambda: fastopt.minimize(rosen_fg, X0, jac=True,
                                                   options={"maxiter": 3.7}), True),
        "maxiter-0": (lambda: fastopt.minimize(rosen_fg, X0, jac=True,
                                               options={"maxiter": 0}), True),
        "maxiter-huge": (lambda: fastopt.minimize(rosen_fg, X0, jac=True,
                                                  options={"maxiter": 2**70, "gtol": 10.0}),
                         False),
        "n_threads": (lambda: fastopt.minimize(rosen_fg, X0, jac=True,
                                               options={"maxiter": 5, "n_threads": 1}), True),
        "n_threads-np.int64": (lambda: fastopt.minimize(
            rosen_fg, X0, jac=True, options={"maxiter": 5, "n_threads": np.int64(2)}), True),
        "n_threads-all": (lambda: fastopt.minimize(rosen_fg, X0, jac=True,
                                                   options={"maxiter": 5, "n_threads": -1}),
                          True),
        "nonfinite-stop": (lambda: fastopt.minimize(nan_after(3), X0, jac=True,
                                                    options={"maxiter": 50}), True),
        "nonfinite-at-x0": (lambda: fastopt.minimize(nan_after(0), X0, jac=True), True),
        "constraints-empty": (lambda: driver.minimize_with_method(
            "adam", rosen_fg, X0, jac=True, constraints=[], options={"maxiter": 5}), True),
        # The general path's own: bounds, callbacks, options beyond the loop's.
        "bounds": (lambda: fastopt.minimize(rosen_fg, X0, jac=True, bounds=[(-1, 1)] * 2,
                                            options={"maxiter": 5}), False),
        "callback": (lambda: fastopt.minimize(rosen_fg, X0, jac=True, callback=lambda xk: None,
                                              options={"maxiter": 5}), False),
        "return_all": (lambda: fastopt.minimize(rosen_fg, X0, jac=True,
                                                options={"maxiter": 5, "return_all": True}),
                       False),
        "maximize-false": (lambda: fastopt.minimize(rosen_fg, X0, jac=True, options={
            "maxiter": 5, "maximize": False}), False),
        "0-d-array-lr": (lambda: fastopt.minimize(rosen_fg, X0, jac=True, options={
            "maxiter": 5, "lr": np.array(0.01)}), False),
        "x0-0-d": (lambda: fastopt.minimize(lambda x: (float(x @ x), 2 * x), 3.0, jac=True,
                                            options={"maxiter": 5}), False),
        "x0-tuple": (lambda: fastopt.minimize(rosen_fg, (-1.2, 1.0), jac=True,
                                              options={"maxiter": 5}), True),
        # Through scipy.optimize.minimize (jac=True arrives wrapped in MemoizeJac).
        "scipy-jac-true": (lambda: optimize.minimize(rosen_fg, X0, method=fastopt.adam,
                                                     jac=True, options={"maxiter": 5}), True),
        "scipy-jac-callable": (lambda: optimize.minimize(
            rosen, X0, method=fastopt.momentum, jac=rosen_der, tol=1e-3,
            options={"maxiter": 5, "lr": 1e-3}), True),
        "scipy-hess": (lambda: optimize.minimize(rosen_fg, X0, method=fastopt.adam, jac=True,
                                                 hess=lambda x: np.eye(2),
                                                 options={"maxiter": 5}), False),
    }
    cases += [(key, call, fast) for key, (call, fast) in more.items()]
    return cases


@pytest.mark.parametrize("case", fast_cases(), ids=lambda case: case[0])
def test_fast_and_general_paths_give_identical_results(case):
    _, call, expect_fast = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (hess ignored; overflow in rosen)
        fast, taken, general = both_paths(call)
    assert taken == expect_fast
    assert_identical(fast, general)


@pytest.mark.parametrize("llc_dtype", ["float64", "float32"])
@pytest.mark.parametrize("x0_dtype", [np.float64, np.float32, "list"])
@pytest.mark.parametrize("jac", [None, True, False])
def test_lowlevelcallable_on_both_paths(llc_dtype, x0_dtype, jac):
    llc = fastopt.problems.rosenbrock_lowlevel(llc_dtype)
    x0 = [-1.2, 1.0] if x0_dtype == "list" else X0.astype(x0_dtype)
    fast, taken, general = both_paths(lambda: fastopt.minimize(
        llc, x0, jac=jac, options={"maxiter": 50, "lr": 1e-3}))
    assert taken
    assert fast.x.dtype == np.dtype(llc_dtype)
    assert_identical(fast, general)
    via_scipy, taken, general = both_paths(lambda: optimize.minimize(
        llc, x0, method=fastopt.adam, jac=True, options={"maxiter": 50, "lr": 1e-3}))
    assert taken
    assert_identical(via_scipy, general)
    assert_identical(via_scipy, fast)


@pytest.mark.parametrize("method", ["adam", "rmsprop", "rprop"])
@pytest.mark.parametrize("n_threads", [None, 1, 2])
def test_above_the_parallel_threshold(method, n_threads):
    # Large enough for the kernels' threads: the count is resolved as the general path does.
    n = get_parallel_threshold() + 5
    x0 = np.linspace(-2.0, 2.0, n)
    options = {"maxiter": 3} if n_threads is None else {"maxiter": 3, "n_threads": n_threads}
    fast, taken, general = both_paths(lambda: fastopt.minimize(
        lambda x: (float(x @ x), 2 * x), x0, method=method, jac=True, options=options))
    assert taken
    assert_identical(fast, general)


def test_each_new_setting_is_validated_and_the_cache_stays_bounded():
    # More learning rates than the cache holds: each run still equals the general path's.
    for k in range(_fastcall._SETTINGS_MAX + 20):
        lr = 1e-4 * (k + 1)
        fast = fastopt.minimize(rosen_fg, X0, jac=True, options={"lr": lr, "maxiter": 2})
        if k % 50 == 0:
            with general_path():
                assert_identical(fast, fastopt.minimize(rosen_fg, X0, jac=True,
                                                        options={"lr": lr, "maxiter": 2}))
    assert len(_fastcall._SETTINGS) <= _fastcall._SETTINGS_MAX
    # A refused value is never cached: it is refused again, as the general path refuses it.
    for _ in range(2):
        with pytest.raises(ValueError, match="Invalid learning rate"):
            fastopt.minimize(rosen_fg, X0, jac=True, options={"lr": -1.0})



def test_a_method_name_of_a_str_subclass_is_not_kept():
    # The fast path keeps each method object it has seen (bounded: fastopt's own callables
    # and classes); a name of a str subclass, new in each call, must not be kept (it grew
    # without bound).
    import sys

    class Name(str):
        pass

    method = Name("adam")
    before = sys.getrefcount(method)
    result = fastopt.minimize(rosen_fg, X0, jac=True, method=method, options={"maxiter": 2})
    assert sys.getrefcount(method) == before
    with general_path():
        assert_identical(result, fastopt.minimize(rosen_fg, X0, jac=True, method=method,
                                                  options={"maxiter": 2}))

def test_the_result_is_new_and_x0_untouched():
    x0 = X0.copy()
    res = fastopt.minimize(rosen_fg, x0, jac=True, options={"maxiter": 3, "lr": 0.1})
    np.testing.assert_array_equal(x0, X0)
    assert not np.shares_memory(res.x, x0) and res.x.flags.owndata and res.x.flags.writeable
    assert res.jac.flags.owndata and res.jac.flags.writeable


def test_fun_sees_a_read_only_view_on_the_fast_path():
    seen = []

    def fg(x):
        seen.append(x.flags.writeable)
        with pytest.raises(ValueError, match="read-only"):
            x[0] = 5.0
        return rosen_fg(x)

    taken = []
    with spied_fast_path(taken):
        fastopt.minimize(fg, X0, jac=True, options={"maxiter": 2})
    assert taken == [True] and seen == [False] * 3


def test_errors_of_the_objective_propagate_from_the_fast_path():
    def bad(x):
        raise ZeroDivisionError("in fun")

    for path in (contextlib.nullcontext, general_path):
        with path(), pytest.raises(ZeroDivisionError, match="in fun"):
            fastopt.minimize(bad, X0, jac=True, options={"maxiter": 2})
        with path(), pytest.raises(ValueError, match="jac must return 2 values"):
            fastopt.minimize(lambda x: (1.0, np.zeros(3)), X0, jac=True)
        with path(), pytest.raises(TypeError, match="fun must return"):
            fastopt.minimize(lambda x: 1.0, X0, jac=True)


# ---------------------------------------------------------------------------------------------
# Bad calls: the same error either way, nothing called, nothing changed

def counting(fun):
    calls = []

    def wrapped(*args):
        calls.append(1)
        return fun(*args)
    wrapped.calls = calls
    return wrapped


LLC = fastopt.problems.rosenbrock_lowlevel()

# (id, minimize's keyword arguments; fun is a counting rosen_fg unless given, x0 X0's copy)
BAD_CALLS = [
    ("x0-nan", {"x0": [np.nan, 1.0]}),
    ("x0-inf-float32", {"x0": np.array([np.inf, 0.0], np.float32)}),
    ("x0-2-d", {"x0": np.array([[1.0, 2.0]])}),
    ("x0-empty", {"x0": []}),
    ("x0-complex", {"x0": np.array([1 + 1j, 2])}),
    ("x0-strings", {"x0": ["a", "b"]}),
    ("x0-ragged", {"x0": [[1.0], [1.0, 2.0]]}),
    ("x0-none", {"x0": None}),
    ("lr-negative", {"options": {"lr": -1.0}}),
    ("lr-nan", {"options": {"lr": float("nan")}}),
    ("lr-string", {"options": {"lr": "0.1"}}),
    ("lr-none", {"options": {"lr": None}}),
    ("betas", {"options": {"betas": (1.5, 0.9)}}),
    ("betas-length", {"options": {"betas": (0.9,)}}),
    ("amsgrad", {"options": {"amsgrad": "yes"}}),
    ("momentum", {"method": "momentum", "options": {"momentum": -0.5}}),
    ("nesterov-without-momentum", {"method": "sgd", "options": {"nesterov": True}}),
    ("maxiter-negative", {"options": {"maxiter": -1}}),
    ("maxiter-nan", {"options": {"maxiter": float("nan")}}),
    ("maxiter-string", {"options": {"maxiter": "10"}}),
    ("maxiter-bool", {"options": {"maxiter": True}}),
    ("gtol-negative", {"options": {"gtol": -1.0}}),
    ("ftol-inf", {"options": {"ftol": float("inf")}}),
    ("xtol-bool", {"options": {"xtol": True}}),
    ("tol-negative", {"tol": -1.0}),
    ("tol-option-nan", {"options": {"tol": float("nan")}}),
    ("n_threads-0", {"options": {"n_threads": 0}}),
    ("n_threads-huge", {"options": {"n_threads": 5000}}),
    ("n_threads-float", {"options": {"n_threads": 2.0}}),
    ("maximize", {"options": {"maximize": True}}),
    ("options-list", {"options": [("lr", 0.1)]}),
    ("method-unknown", {"method": "adamx"}),
    ("method-int", {"method": 3}),
    ("method-foreign", {"method": lambda fun, x0, **kw: None}),
    ("fun-not-callable", {"fun": 3}),
    ("jac-unknown-scheme", {"fun": counting(rosen), "jac": "5-point"}),
    ("jac-int", {"fun": counting(rosen), "jac": 3}),
    ("llc-args", {"fun": LLC, "args": (1.0,)}),
    ("llc-jac-callable", {"fun": LLC, "jac": rosen_der}),
    ("bounds-length", {"bounds": [(0, 1)]}),
    ("bounds-crossed", {"bounds": [(1, 0), (0, 1)]}),
    ("callback", {"callback": 3}),
    ("lr_scheduler", {"options": {"lr_scheduler": 3}}),
    ("disp", {"options": {"disp": -1}}),
]


def _call_kwargs(spec):
    kwargs = {"fun": counting(rosen_fg), "x0": X0.copy(), "jac": True, **spec}
    if "options" in kwargs:
        kwargs["options"] = copy.deepcopy(spec["options"])
    return kwargs


def _outcome(kwargs):
    """(error type, message) of minimize(**kwargs)."""
    with pytest.raises((TypeError, ValueError)) as info:
        fastopt.minimize(**kwargs)
    return type(info.value), str(info.value)


@pytest.mark.parametrize("case", BAD_CALLS, ids=lambda case: case[0])
def test_bad_calls_raise_the_same_error_on_both_paths(case):
    _, spec = case
    kwargs = _call_kwargs(spec)
    before = copy.deepcopy({k: v for k, v in kwargs.items() if k in ("x0", "options")})
    # The fast path declines before doing anything...
    assert _fastcall.fast_minimize(
        kwargs.get("method", "adam"), kwargs["fun"], kwargs["x0"], kwargs.get("args", ()),
        kwargs["jac"], kwargs.get("bounds"), kwargs.get("tol"), kwargs.get("callback"),
        kwargs.get("options")) is None
    # ...and the call raises what the general path raises, calling and changing nothing.
    outcome = _outcome(kwargs)
    with general_path():
        assert _outcome(kwargs) == outcome
    assert getattr(kwargs["fun"], "calls", []) == []
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(kwargs[key], value)
        else:
            assert kwargs[key] == value or repr(kwargs[key]) == repr(value)


def _warned(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [(w.category, str(w.message), w.filename) for w in caught]


@pytest.mark.parametrize("options", [{"maxiter": 3, "bogus": 1}, {"maxiter": 3, 1: 2}])
def test_unknown_options_warn_the_same_and_point_at_the_caller(options):
    fast, warned = _warned(lambda: fastopt.minimize(rosen_fg, X0, jac=True, options=options))
    with general_path():
        general, warned_general = _warned(lambda: fastopt.minimize(rosen_fg, X0, jac=True,
                                                                   options=options))
    assert_identical(fast, general)
    assert warned == warned_general
    assert [(category, filename) for category, _, filename in warned] == \
        [(optimize.OptimizeWarning, __file__)]
