"""fastopt.minimize(method="lbfgs") and fastopt.lbfgs against SciPy's L-BFGS-B (issue 17).

The suite (Rosenbrock n = 2, 10, 100; fastopt.problems; logistic regression on
scikit-learn's breast-cancer data; problems with active bounds at the optimum) runs both with
the same options and asserts the same optimum (f within 1e-8 relative, x within 1e-5),
iterations within 1.5x of SciPy's, and that fun never saw a point outside the bounds.
``python tests/test_lbfgs.py`` prints the suite's table (f, nit, nfev for both).
"""

import ctypes
import warnings

import numpy as np
import pytest
from scipy.optimize import OptimizeWarning, minimize, rosen, rosen_der

import fastopt
from fastopt import problems
from fastopt.problems import rosenbrock_lowlevel

# ---------------------------------------------------------------------------------------------
# The suite


def _rosen_start(n):
    return np.resize([-1.2, 1.0], n)


def _quadratic(n, seed, shift):
    """A coupled convex quadratic 0.5 (x - c)' A (x - c): A SPD with off-diagonal terms, c
    placed so that bounds cut through the unconstrained minimum."""
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, n))
    a = m @ m.T / n + np.eye(n)
    c = rng.standard_normal(n) + shift

    def fg(x):
        r = x - c
        ar = a @ r
        return 0.5 * float(r @ ar), ar
    return fg


def _logistic():
    """L2-regularised logistic regression on the standardised breast-cancer data."""
    datasets = pytest.importorskip("sklearn.datasets")
    data = datasets.load_breast_cancer()
    X = (data.data - data.data.mean(0)) / data.data.std(0)
    X = np.hstack([X, np.ones((X.shape[0], 1))])
    y = data.target.astype(float)
    lam = 1e-3

    def fg(w):
        z = X @ w
        # log(1 + exp(z)) - y z, stably
        f = np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * lam * w @ w
        p = 0.5 * (1.0 + np.tanh(0.5 * z))
        g = X.T @ (p - y) / X.shape[0] + lam * w
        return float(f), g
    return fg, np.zeros(X.shape[1])


def _problem_case(name):
    problem = problems.get(name)
    return problem.fun_and_grad, problem.x0.astype(float), problem.bounds


def _rosen_fg(x):
    return rosen(x), rosen_der(x)


# name -> () -> (fun_and_grad, x0, bounds)
SUITE = {
    "rosen2": lambda: (_rosen_fg, _rosen_start(2), None),
    "rosen10": lambda: (_rosen_fg, _rosen_start(10), None),
    "rosen100": lambda: (_rosen_fg, _rosen_start(100), None),
    **{f"problems.{name}": (lambda name=name: _problem_case(name))
       for name in ("rosenbrock", "beale", "booth", "himmelblau", "saddle", "valley")},
    "logistic": lambda: (*_logistic(), None),
    # active bounds at the optimum
    "rosen10_upper": lambda: (_rosen_fg, _rosen_start(10), [(None, 0.5)] * 10),
    "rosen100_upper": lambda: (_rosen_fg, _rosen_start(100), [(None, 0.5)] * 100),
    "rosen10_lower": lambda: (_rosen_fg, -_rosen_start(10) + 2, [(1.5, None)] * 10),
    "rosen20_box": lambda: (_rosen_fg, _rosen_start(20), [(-0.5, 0.7)] * 20),
    "quad30_lower": lambda: (_quadratic(30, 1, 0.0), np.full(30, 2.0), [(0.0, None)] * 30),
    "quad30_upper": lambda: (_quadratic(30, 2, 0.0), np.full(30, -2.0), [(None, 0.0)] * 30),
    "quad50_both": lambda: (_quadratic(50, 3, 0.0), np.zeros(50), [(-0.3, 0.3)] * 50),
    "quad200_many": lambda: (_quadratic(200, 4, 1.0), np.zeros(200), [(-0.2, 0.2)] * 200),
}


class Recorder:
    """fun_and_grad that records every point it is called at."""

    def __init__(self, fg):
        self.fg = fg
        self.points = []

    def __call__(self, x):
        self.points.append(np.array(x))
        return self.fg(x)


def run_pair(fg, x0, bounds, **options):
    """(fastopt's result, its recorder, SciPy's result) with the same options."""
    rec = Recorder(fg)
    ours = fastopt.minimize(rec, x0, method="lbfgs", jac=True, bounds=bounds, options=options)
    theirs = minimize(fg, x0, method="L-BFGS-B", jac=True, bounds=bounds, options=options)
    return ours, rec, theirs


def _in_box(points, bounds):
    if bounds is None:
        return True
    lo = np.array([-np.inf if b[0] is None else b[0] for b in bounds])
    hi = np.array([np.inf if b[1] is None else b[1] for b in bounds])
    return all(np.all(p >= lo) and np.all(p <= hi) for p in points)


# Tolerances tight enough that both stop at the optimum (with SciPy's defaults, gtol=1e-5 and
# ftol=2.2e-9, where each stops differs by more than 1e-5 in x on the harder problems).
TIGHT = {"gtol": 1e-9, "ftol": 1e-14}


@pytest.mark.parametrize("name", list(SUITE))
def test_suite_matches_scipy(name):
    fg, x0, bounds = SUITE[name]()
    ours, rec, theirs = run_pair(fg, x0, bounds, **TIGHT)
    assert ours.success, ours.message
    assert theirs.success, theirs.message
    assert abs(ours.fun - theirs.fun) <= 1e-8 * max(1.0, abs(theirs.fun))
    np.testing.assert_allclose(ours.x, theirs.x, rtol=0, atol=1e-5)
    assert ours.nit <= 1.5 * theirs.nit, (ours.nit, theirs.nit)
    assert _in_box(rec.points, bounds)
    assert ours.nfev == len(rec.points) == ours.njev
    # The result's fun and jac are the function's at x.
    f, g = fg(ours.x)
    assert ours.fun == f
    np.testing.assert_array_equal(ours.jac, g)


@pytest.mark.parametrize("name", list(SUITE))
def test_suite_default_options(name):
    # SciPy's defaults: both converge, iterations within 1.5x, never outside the box.
    fg, x0, bounds = SUITE[name]()
    ours, rec, theirs = run_pair(fg, x0, bounds)
    assert ours.success and theirs.success
    assert abs(ours.fun - theirs.fun) <= 1e-6 * max(1.0, abs(theirs.fun))
    assert ours.nit <= 1.5 * theirs.nit, (ours.nit, theirs.nit)
    assert _in_box(rec.points, bounds)


def suite_table(**options):
    """The suite as a Markdown table: f, nit, nfev of fastopt and SciPy."""
    lines = [("| problem | n | f fastopt | f SciPy | max abs dx | nit fastopt | nit SciPy | "
              "nfev fastopt | nfev SciPy |"), "|---|---|---|---|---|---|---|---|---|"]
    for name, make in SUITE.items():
        try:
            fg, x0, bounds = make()
        except pytest.skip.Exception:
            continue
        ours, _, theirs = run_pair(fg, x0, bounds, **options)
        lines.append(f"| {name} | {x0.size} | {ours.fun:.12g} | {theirs.fun:.12g} | "
                     f"{np.abs(ours.x - theirs.x).max():.1e} | {ours.nit} | {theirs.nit} | "
                     f"{ours.nfev} | {theirs.nfev} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Bounded Rosenbrock with a strongly curved valley (issue 17's review): a variable whose
# gradient at its bound is small and flips sign. Without the coupling in the second pass (the
# pinned variables' move changes the others' gradient) these took up to 2.8x SciPy's
# iterations and some stopped on ftol away from the optimum. Found by
# asv_benchmarks/lbfgs_bounds_compare.py (rounded): (a, shift, lower, upper, x0).
CURVED_VALLEY = {
    "review_n2": (1000.0, [-1.0, -1.0], [-1.5, -1.5], [-0.2, -0.2], [-0.4427, -0.3134]),
    "rosen52_n3": (59.0, [-0.841, -1.391, 0.286], [-0.191, -1.174, -1.822],
                   [0.856, 0.288, 0.823], [0.761, -1.02, -1.632]),
    "rosen87_n2": (408.3, [0.56, 0.04], [-0.434, -0.315], [-0.037, 2.243], [-0.242, 1.095]),
    "rosen63_n6": (768.4, [-1.629, 0.88, -0.703, 1.557, -1.847, -0.536],
                   [-1.286, -0.373, -1.994, -0.237, -2.238, -0.872],
                   [1.343, 1.501, 0.04, 2.027, -1.177, 0.492],
                   [0.233, 0.315, -1.357, 1.986, -2.236, -0.493]),
    "rosen141_n2": (870.3, [-1.899, -0.503], [-1.667, -0.483], [0.284, -0.174],
                    [0.225, -0.416]),
}


def _shifted_rosen(a, shift):
    shift = np.asarray(shift)

    def fg(x):
        y = x - shift
        r = y[1:] - y[:-1] ** 2
        g = np.zeros_like(x)
        g[:-1] = -4 * a * y[:-1] * r - 2 * (1 - y[:-1])
        g[1:] += 2 * a * r
        return np.sum(a * r ** 2 + (1 - y[:-1]) ** 2), g

    return fg


@pytest.mark.parametrize("options", [{}, TIGHT], ids=["default", "tight"])
@pytest.mark.parametrize("name", list(CURVED_VALLEY))
def test_curved_valley_bounds_within_1_5x(name, options):
    a, shift, lo, hi, x0 = CURVED_VALLEY[name]
    ours, rec, theirs = run_pair(_shifted_rosen(a, shift), np.array(x0), list(zip(lo, hi)),
                                 **options)
    assert ours.success and theirs.success
    assert ours.fun <= theirs.fun + 1e-6 * max(1.0, abs(theirs.fun))
    assert ours.nit <= 1.5 * theirs.nit, (ours.nit, theirs.nit)
    assert _in_box(rec.points, list(zip(lo, hi)))


# ---------------------------------------------------------------------------------------------
# Stopping rules, as SciPy's


@pytest.mark.parametrize("options", [
    {"maxiter": 5}, {"maxiter": 1}, {"maxfun": 7}, {"maxfun": 1}, {"gtol": 1e-2},
    {"ftol": 1e-3}, {"maxcor": 100}, {"maxls": 1}, {"maxls": 2},
])
def test_stops_like_scipy(options):
    ours, _, theirs = run_pair(_rosen_fg, _rosen_start(10), None, **options)
    assert ours.status == theirs.status
    assert ours.nit == theirs.nit
    assert ours.nfev == theirs.nfev
    np.testing.assert_allclose(ours.x, theirs.x, rtol=1e-6)
    if ours.status != 2:  # (SciPy's fun after ABNORMAL is its last trial's, not x's)
        assert abs(ours.fun - theirs.fun) <= 1e-6 * max(1.0, abs(theirs.fun))


@pytest.mark.parametrize("maxcor", [1, 2, 3, 5, 30])
@pytest.mark.parametrize("maxls", [2, 5, 20])
def test_history_and_line_search_sizes(maxcor, maxls):
    options = {"maxcor": maxcor, "maxls": maxls, "gtol": 1e-9, "ftol": 1e-14}
    ours, _, theirs = run_pair(_rosen_fg, _rosen_start(10), None, **options)
    assert ours.success == theirs.success
    if theirs.success:
        np.testing.assert_allclose(ours.x, theirs.x, atol=1e-5)
        assert ours.nit <= 1.5 * theirs.nit


def test_maxiter_zero_returns_x0():
    res = fastopt.minimize(_rosen_fg, [-1.2, 1.0], method="lbfgs", jac=True,
                           options={"maxiter": 0})
    assert res.status == 1 and res.nit == 0 and res.nfev == 1
    np.testing.assert_array_equal(res.x, [-1.2, 1.0])


def test_gtol_at_x0():
    res = fastopt.minimize(_rosen_fg, [1.0, 1.0], method="lbfgs", jac=True)
    assert res.status == 0 and res.nit == 0 and res.nfev == 1 and "gtol" in res.message


def test_history_larger_than_iterations_and_n1():
    fg = _quadratic(5, 0, 0.0)
    a = fastopt.minimize(fg, np.zeros(5), method="lbfgs", jac=True, options={"maxcor": 10**6})
    b = fastopt.minimize(fg, np.zeros(5), method="lbfgs", jac=True, options={"maxcor": 50})
    assert a.success and a.nit < 50
    np.testing.assert_array_equal(a.x, b.x)
    res = fastopt.minimize(lambda x: ((x[0] - 3) ** 4, 4 * (x - 3) ** 3), [0.0],
                           method="lbfgs", jac=True)
    ref = minimize(lambda x: ((x[0] - 3) ** 4, 4 * (x - 3) ** 3), [0.0], method="L-BFGS-B",
                   jac=True)
    assert res.success and abs(res.x[0] - 3) < 0.05
    assert res.nit <= 1.5 * ref.nit


# ---------------------------------------------------------------------------------------------
# Paths: C objective, dtypes, jac forms, scipy.optimize.minimize, callbacks


def _ctypes_rosen(dtype="float64"):
    """The C objective of rosenbrock_lowlevel called from Python (the same arithmetic)."""
    llc = rosenbrock_lowlevel(dtype)
    real = ctypes.c_double if dtype == "float64" else ctypes.c_float
    ptr = ctypes.pythonapi.PyCapsule_GetPointer
    ptr.restype = ctypes.c_void_p
    ptr.argtypes = [ctypes.py_object, ctypes.c_char_p]
    capsule = llc.function
    name = ctypes.pythonapi.PyCapsule_GetName
    name.restype = ctypes.c_char_p
    name.argtypes = [ctypes.py_object]
    cfun = ctypes.CFUNCTYPE(real, ctypes.c_int, ctypes.POINTER(real), ctypes.POINTER(real),
                            ctypes.c_void_p)(ptr(capsule, name(capsule)))

    def fg(x):
        assert x.dtype == dtype
        x = np.ascontiguousarray(x)
        g = np.empty_like(x)
        f = cfun(x.size, x.ctypes.data_as(ctypes.POINTER(real)),
                 g.ctypes.data_as(ctypes.POINTER(real)), None)
        return np.dtype(dtype).type(f), g
    return fg


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bounds", [None, [(-2.0, 0.8)] * 12])
def test_lowlevelcallable_equals_python_bitwise(bounds, dtype):
    x0 = _rosen_start(12).astype(dtype)
    options = {"gtol": 1e-3} if dtype == "float32" else {}
    c = fastopt.minimize(rosenbrock_lowlevel(dtype), x0, method="lbfgs", bounds=bounds,
                         options=options)
    p = fastopt.minimize(_ctypes_rosen(dtype), x0, method="lbfgs", jac=True, bounds=bounds,
                         options=options)
    assert c.x.dtype == p.x.dtype == dtype
    for key in ("nit", "nfev", "njev", "status", "fun"):
        assert c[key] == p[key], key
    np.testing.assert_array_equal(c.x, p.x)
    np.testing.assert_array_equal(c.jac, p.jac)
    # A callback makes the C objective's loop take the GIL at each iterate: same run.
    seen = []
    d = fastopt.minimize(rosenbrock_lowlevel(dtype), x0, method="lbfgs", bounds=bounds,
                         options=options, callback=lambda xk: seen.append(xk))
    np.testing.assert_array_equal(d.x, c.x)
    assert len(seen) == d.nit


def test_float32():
    x0 = _rosen_start(6).astype(np.float32)
    seen = []

    def fg(x):
        assert x.dtype == np.float32
        seen.append(x.copy())
        f, g = _rosen_fg(x.astype(np.float64))
        return np.float32(f), g.astype(np.float32)

    res = fastopt.minimize(fg, x0, method="lbfgs", jac=True, options={"gtol": 1e-3})
    assert res.x.dtype == np.float32 and res.jac.dtype == np.float32
    assert res.success
    np.testing.assert_allclose(res.x, 1.0, atol=1e-2)
    # The C objective in float32: the same run as the Python one with float32 arithmetic.
    c = fastopt.minimize(rosenbrock_lowlevel("float32"), x0, method="lbfgs",
                         options={"gtol": 1e-3})
    assert c.x.dtype == np.float32 and c.success
    np.testing.assert_allclose(c.x, 1.0, atol=1e-2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("jac", [True, None])
def test_bounds_never_left(dtype, jac):
    # Every evaluation inside the box, finite differences' included, in both dtypes.
    n = 8
    lo, hi = np.full(n, -0.4), np.full(n, 0.6)
    seen = []

    def fun(x):
        seen.append(x.copy())
        f, g = _rosen_fg(x.astype(np.float64))
        return (f, g.astype(dtype)) if jac else f
    x0 = _rosen_start(n).astype(dtype)
    res = fastopt.minimize(fun, x0, method="lbfgs", jac=jac, bounds=list(zip(lo, hi)))
    assert res.x.dtype == dtype
    assert all(np.all(p >= lo.astype(dtype)) and np.all(p <= hi.astype(dtype)) for p in seen)
    ref = minimize(_rosen_fg, x0.astype(np.float64), method="L-BFGS-B", jac=True,
                   bounds=list(zip(lo, hi)))
    np.testing.assert_allclose(res.x, ref.x, atol=1e-3 if dtype == np.float32 else 1e-5)


def test_fixed_variables_and_x0_outside_the_box():
    bounds = [(0.3, 0.3), (-1.0, 2.0), (None, 0.5), (0.7, 0.7)]
    x0 = np.array([5.0, -3.0, 1.0, 0.0])  # clipped into the box first
    seen = []
    res = fastopt.minimize(lambda x: (seen.append(x.copy()), _rosen_fg(x))[1], x0,
                           method="lbfgs", jac=True, bounds=bounds, options=TIGHT)
    ref = minimize(_rosen_fg, x0, method="L-BFGS-B", jac=True, bounds=bounds, options=TIGHT)
    np.testing.assert_array_equal(seen[0], [0.3, -1.0, 0.5, 0.7])
    assert all(p[0] == 0.3 and p[3] == 0.7 for p in seen)
    assert res.success
    np.testing.assert_allclose(res.x, ref.x, atol=1e-6)
    np.testing.assert_array_equal(x0, [5.0, -3.0, 1.0, 0.0])


def test_disp(capsys):
    fastopt.minimize(rosen, [-1.2, 1.0], method="lbfgs", jac=rosen_der,
                     options={"disp": 2, "disp_every": 10})
    out = capsys.readouterr().out
    assert "Method: fastopt.lbfgs" in out and "Iterations: 36" in out
    assert len([line for line in out.splitlines() if line.split()[:1] == ["30"]]) == 1
    fastopt.minimize(rosen, [-1.2, 1.0], method="lbfgs", jac=rosen_der)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("jac", ["callable", "fd", "3-point"])
def test_jac_forms(jac):
    x0 = _rosen_start(4)
    ref = minimize(rosen, x0, method="L-BFGS-B", jac=rosen_der)
    if jac == "callable":
        res = fastopt.minimize(rosen, x0, method="lbfgs", jac=rosen_der)
        assert res.nfev == res.njev
    else:
        res = fastopt.minimize(rosen, x0, method="lbfgs",
                               jac=None if jac == "fd" else jac)
        assert res.nfev > res.njev
    assert res.success
    np.testing.assert_allclose(res.x, ref.x, atol=1e-4)


def test_scipy_method_callable_and_callbacks():
    x0 = _rosen_start(4)
    a = fastopt.minimize(rosen, x0, method="lbfgs", jac=rosen_der,
                         options={"return_all": True})
    seen_new, seen_old = [], []
    b = minimize(rosen, x0, method=fastopt.lbfgs, jac=rosen_der,
                 callback=lambda intermediate_result: seen_new.append(intermediate_result))
    c = fastopt.minimize(rosen, x0, method=fastopt.lbfgs, jac=rosen_der,
                         callback=lambda xk: seen_old.append(xk))
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.x, c.x)
    assert a.nit == b.nit == c.nit == len(seen_new) == len(seen_old)
    assert len(a.allvecs) == a.nit + 1
    np.testing.assert_array_equal(a.allvecs[0], x0)
    for k, r in enumerate(seen_new):
        assert r.nit == k + 1
        np.testing.assert_array_equal(r.x, a.allvecs[k + 1])
        np.testing.assert_array_equal(seen_old[k], r.x)
        assert r.fun == rosen(r.x)
    # StopIteration ends the run with status 99 at the iterate the callback saw.

    def stop(intermediate_result):
        if intermediate_result.nit == 3:
            raise StopIteration
    d = fastopt.minimize(rosen, x0, method="lbfgs", jac=rosen_der, callback=stop)
    assert d.status == 99 and d.nit == 3
    np.testing.assert_array_equal(d.x, a.allvecs[3])


def test_case_insensitive_and_tol():
    # tol sets both gtol and ftol, as scipy.optimize.minimize does for L-BFGS-B.
    a = fastopt.minimize(rosen, [-1.2, 1], method="LBFGS", jac=rosen_der, tol=1e-3)
    b = fastopt.minimize(rosen, [-1.2, 1], method="lbfgs", jac=rosen_der,
                         options={"gtol": 1e-3, "ftol": 1e-3})
    assert a.nit == b.nit and a.fun == b.fun


@pytest.mark.parametrize("tol", [1e-3, 1e-12])
def test_tol_stops_where_scipys_lbfgsb_does(tol):
    ours = fastopt.minimize(rosen, [-1.2, 1], method="lbfgs", jac=rosen_der, tol=tol)
    ref = minimize(rosen, [-1.2, 1], method="L-BFGS-B", jac=rosen_der, tol=tol)
    assert (ours.nit, ours.nfev) == (ref.nit, ref.nfev)
    np.testing.assert_allclose(ours.fun, ref.fun, rtol=1e-8)  # (two-loop vs compact form)


def test_an_explicit_option_wins_over_tol():
    tight = fastopt.minimize(rosen, [-1.2, 1], method="lbfgs", jac=rosen_der, tol=1e-12)
    loose = fastopt.minimize(rosen, [-1.2, 1], method="lbfgs", jac=rosen_der, tol=1e-12,
                             options={"ftol": 0.5})
    assert loose.message.endswith(("reduction of f is <= ftol.")) and loose.nit < tight.nit


# ---------------------------------------------------------------------------------------------
# Non-finite values, a failing line search, errors


def test_nan_at_x0():
    calls = []

    def fg(x):
        calls.append(1)
        return np.nan, np.ones_like(x)
    res = fastopt.minimize(fg, [1.0, 2.0], method="lbfgs", jac=True)
    assert res.status == 3 and res.nit == 0 and res.nfev == 1 and len(calls) == 1
    np.testing.assert_array_equal(res.x, [1.0, 2.0])


def test_nan_mid_run_shrinks_the_step():
    # NaN beyond x = 2.5: the first trial (a step of length 1 from 1.6) lands there.
    def fg(x):
        points.append(x.copy())
        if x[0] > 2.5:
            return np.nan, np.full_like(x, np.nan)
        return 0.005 * float((x[0] - 2) ** 2), 0.01 * (x - 2)
    points = []
    res = fastopt.minimize(fg, [1.6], method="lbfgs", jac=True, options={"gtol": 1e-10})
    assert points[1][0] > 2.5  # it did meet the NaN region
    assert res.success and np.isfinite(res.fun)
    np.testing.assert_allclose(res.x, 2.0, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nan_wall_mid_run_is_status_3_at_the_last_iterate(dtype):
    # f is finite up to x = 1.5 only; its minimum lies beyond, at 2: the line search cannot
    # get a finite value past the wall and gives up there. fastopt's NaN policy (status 3, the
    # last finite iterate and its f and g), not a line-search failure (status 2).
    def fg(x):
        points.append(x.copy())
        if x[0] > 1.5:
            return np.nan, np.full_like(x, np.nan)
        return float((x[0] - 2) ** 2), 2 * (x - 2)
    points = []
    res = fastopt.minimize(fg, np.array([0.0], dtype), method="lbfgs", jac=True)
    assert res.status == 3 and not res.success and "non-finite" in res.message
    assert res.x.dtype == dtype and np.all(res.x <= 1.5)
    assert np.isfinite(res.fun) and np.all(np.isfinite(res.jac))
    assert res.fun == float((res.x[0] - 2) ** 2)
    assert any(p[0] > 1.5 for p in points)
    assert res.nit >= 1


def test_wrong_gradient_stops_abnormal():
    # The gradient's sign is wrong: no step along it decreases f.
    res = fastopt.minimize(lambda x: (rosen(x), -rosen_der(x)), [-1.2, 1.0], method="lbfgs",
                           jac=True)
    assert res.status == 2 and not res.success and "ABNORMAL" in res.message
    np.testing.assert_array_equal(res.x, [-1.2, 1.0])
    assert res.fun == rosen(res.x)


def test_raising_fun_propagates():
    x0 = np.array([-1.2, 1.0])
    keep = x0.copy()
    calls = []

    def fg(x):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("boom")
        return _rosen_fg(x)
    with pytest.raises(RuntimeError, match="boom"):
        fastopt.minimize(fg, x0, method="lbfgs", jac=True)
    np.testing.assert_array_equal(x0, keep)


@pytest.mark.parametrize("options, error", [
    ({"maxcor": 0}, ValueError), ({"maxcor": 1.5}, TypeError), ({"maxls": 0}, ValueError),
    ({"gtol": -1.0}, ValueError), ({"ftol": float("nan")}, ValueError),
    ({"maxiter": "10"}, TypeError), ({"maxfun": -1}, ValueError),
    ({"maximize": True}, ValueError), ({"n_threads": 0}, ValueError),
    ({"disp": -1}, ValueError), ({"return_all": 1.5}, TypeError),
])
def test_bad_options(options, error):
    x0 = np.array([-1.2, 1.0])
    name = next(iter(options))
    with pytest.raises(error, match=name):
        fastopt.minimize(rosen, x0, method="lbfgs", jac=rosen_der, options=options)
    np.testing.assert_array_equal(x0, [-1.2, 1.0])


def test_unknown_option_warns_and_bad_arguments():
    with pytest.warns(OptimizeWarning, match="lr"):
        fastopt.minimize(rosen, [-1.2, 1], method="lbfgs", jac=rosen_der, options={"lr": 1})
    with pytest.raises(ValueError, match="constraints"):
        minimize(rosen, [-1.2, 1], method=fastopt.lbfgs, jac=rosen_der,
                 constraints=[{"type": "eq", "fun": lambda x: x[0]}])
    with pytest.raises(ValueError, match="jac"):
        fastopt.minimize(rosenbrock_lowlevel(), [-1.2, 1], method="lbfgs", jac=rosen_der)
    with pytest.raises(TypeError, match="fun"):
        fastopt.minimize(3, [-1.2, 1], method="lbfgs")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fastopt.minimize(rosen, [-1.2, 1], method="lbfgs", jac=rosen_der,
                         options={"n_threads": 2, "flush_subnormals": True, "disp": 0})


def test_not_an_elementwise_method():
    with pytest.raises(ValueError, match="lbfgs"):
        fastopt.minimize_minibatch(lambda x, batch: (rosen(x), rosen_der(x)), [-1.2, 1.0],
                                   np.zeros((4, 1)), method="lbfgs")


if __name__ == "__main__":
    print("SciPy's default options:")
    print(suite_table())
    print(f"\nTIGHT = {TIGHT}:")
    print(suite_table(**TIGHT))
