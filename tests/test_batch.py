"""fastopt.minimize_batch: a batch gives what solving each problem alone gives, whatever the
thread count, with a vectorised Python objective or a C one; per-problem stopping, learning
rates and data; clear errors on bad input."""

import numpy as np
import pytest
from scipy.optimize import Bounds

import fastopt
from fastopt._methods import METHODS

OPTIONS = {"lr": 1e-2, "maxiter": 400, "gtol": 1e-3}


def rosen_rows(X):
    """Vectorised 2-D Rosenbrock, in the C function's order of operations (row by row)."""
    x0, x1 = X[:, 0], X[:, 1]
    with np.errstate(over="ignore", invalid="ignore"):  # some diverge (status 3)
        a = x1 - x0 * x0
        b = 1.0 - x0
        G = np.empty_like(X)
        G[:, 0] = -400.0 * x0 * a - 2.0 * b
        G[:, 1] = 200.0 * a
        return 100.0 * a * a + b * b, G


def rosen_one(x):
    f, G = rosen_rows(np.asarray(x)[None, :])
    return f[0], G[0]


@pytest.fixture
def starts():
    return np.random.default_rng(7).uniform(-2.0, 2.0, (40, 2))


@pytest.fixture(scope="module")
def rosen_llc():
    return fastopt.problems.rosenbrock_lowlevel()


def assert_batch_is_each_alone(batch, singles):
    for i, r in enumerate(singles):
        np.testing.assert_array_equal(batch.x[i], r.x)
        np.testing.assert_array_equal(batch.jac[i], r.jac)
        assert batch.fun[i] == r.fun
        assert (batch.nit[i], batch.nfev[i], batch.status[i], batch.success[i]) == (
            r.nit, r.nfev, r.status, r.success)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_vectorised_batch_is_each_problem_alone(method, starts):
    options = dict(OPTIONS, lr=1e-3 if method in ("gd", "sgd", "momentum", "nag") else 1e-2)
    batch = fastopt.minimize_batch(rosen_rows, starts, method=method, jac=True, options=options)
    singles = [fastopt.minimize(rosen_one, x0, method=method, jac=True, options=options)
               for x0 in starts]
    assert_batch_is_each_alone(batch, singles)


@pytest.mark.parametrize("method", ["adam", "rmsprop", "nag"])
def test_c_batch_is_each_problem_alone_for_every_thread_count(method, rosen_llc):
    # 300 problems: several chunks of problems (fastopt/_batch.pyx, CHUNK_ROWS) per thread.
    starts = np.random.default_rng(11).uniform(-2.0, 2.0, (300, 2))
    options = dict(OPTIONS, lr=1e-3 if method == "nag" else 1e-2, maxiter=3000, gtol=0.05)
    singles = [fastopt.minimize(rosen_llc, x0, method=method, options=options)
               for x0 in starts]
    for n_threads in (1, 2, 4):
        batch = fastopt.minimize_batch(rosen_llc, starts, method=method,
                                       options=dict(options, n_threads=n_threads))
        assert_batch_is_each_alone(batch, singles)
    # The problems stop at different iterations (the test means something).
    assert len(set(batch.nit.tolist())) >= 3 and batch.success.any() and not batch.success.all()


def test_vectorised_batch_does_not_depend_on_threads(rosen_llc):
    # Above the parallel threshold the packed rows are updated by several threads.
    starts = np.random.default_rng(3).uniform(-2, 2, (20000, 2))
    results = [fastopt.minimize_batch(rosen_rows, starts, jac=True,
                                      options=dict(OPTIONS, maxiter=50, n_threads=t))
               for t in (1, 2, 4)]
    for r in results[1:]:
        np.testing.assert_array_equal(r.x, results[0].x)
        np.testing.assert_array_equal(r.nit, results[0].nit)
    c = fastopt.minimize_batch(rosen_llc, starts, options=dict(OPTIONS, maxiter=50))
    np.testing.assert_array_equal(c.x, results[0].x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_and_separate_jac_works(dtype, starts):
    X0 = starts.astype(dtype)

    def f_rows(X):
        return rosen_rows(X)[0]

    def g_rows(X):
        return rosen_rows(X)[1]

    a = fastopt.minimize_batch(f_rows, X0, jac=g_rows, options=OPTIONS)
    b = fastopt.minimize_batch(rosen_rows, X0, jac=True, options=OPTIONS)
    assert a.x.dtype == dtype and a.jac.dtype == dtype and a.fun.dtype == np.float64
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(X0, starts.astype(dtype))  # X0 untouched


def test_per_problem_learning_rates(starts, rosen_llc):
    lrs = np.linspace(1e-3, 5e-2, len(starts))
    for fun, jac in ((rosen_rows, True), (rosen_llc, None)):
        batch = fastopt.minimize_batch(fun, starts, jac=jac, options=dict(OPTIONS, lr=lrs))
        singles = [fastopt.minimize(rosen_one, x0, jac=True, options=dict(OPTIONS, lr=lr))
                   for x0, lr in zip(starts, lrs)]
        assert_batch_is_each_alone(batch, singles)


def test_bounds_and_tolerances_per_problem(starts, rosen_llc):
    options = dict(OPTIONS, ftol=1e-9, xtol=1e-7, maxiter=3000)
    bounds = [(-1.5, 0.5), (None, 1.5)]
    singles = [fastopt.minimize(rosen_one, x0, jac=True, bounds=bounds, options=options)
               for x0 in starts]
    for fun, jac in ((rosen_rows, True), (rosen_llc, None)):
        batch = fastopt.minimize_batch(fun, starts, jac=jac, bounds=bounds, options=options)
        assert_batch_is_each_alone(batch, singles)
    assert np.all(batch.x[:, 0] <= 0.5) and np.all(batch.x[:, 0] >= -1.5)


def test_per_problem_args_are_sliced_to_the_running_problems():
    rng = np.random.default_rng(1)
    centers = rng.uniform(-3, 3, (50, 3))
    scales = rng.uniform(0.1, 10.0, (50, 1))
    seen_rows = []

    def fg(X, C, S, shift):
        assert X.shape[0] == C.shape[0] == S.shape[0]
        seen_rows.append(X.shape[0])
        D = X - C - shift
        return np.sum(S * D * D, axis=1), 2.0 * S * D

    options = {"lr": 0.05, "maxiter": 3000, "gtol": 1e-6}
    batch = fastopt.minimize_batch(fg, np.zeros((50, 3)), jac=True,
                                   args=(centers, scales, 0.5), options=options)
    assert batch.success.all()
    np.testing.assert_allclose(batch.x, centers + 0.5, atol=1e-5)
    assert seen_rows[0] == 50 and seen_rows[-1] < 50  # problems left as they converged
    for i in (0, 17, 49):
        alone = fastopt.minimize(
            lambda x: tuple(v[0] for v in fg(x[None], centers[i:i + 1], scales[i:i + 1], 0.5)),
            np.zeros(3), jac=True, options=options)
        np.testing.assert_array_equal(batch.x[i], alone.x)
        assert batch.nit[i] == alone.nit


def test_non_finite_problem_stops_alone(starts):
    bad_row = 5

    def fg(X, index):
        f, G = rosen_rows(X)
        f[(index == bad_row) & (np.abs(X[:, 0] - starts[bad_row, 0]) > 0.05)] = np.nan
        return f, G

    batch = fastopt.minimize_batch(fg, starts, jac=True, args=(np.arange(len(starts)),),
                                   options=OPTIONS)
    assert batch.status[bad_row] == 3 and not batch.success[bad_row]
    assert np.isfinite(batch.fun[bad_row]) and np.all(np.isfinite(batch.x[bad_row]))
    others = np.arange(len(starts)) != bad_row
    ref = fastopt.minimize_batch(rosen_rows, starts, jac=True, options=OPTIONS)
    np.testing.assert_array_equal(batch.x[others], ref.x[others])


def test_empty_batch_and_result_fields(rosen_llc):
    for fun, jac in ((rosen_rows, True), (rosen_llc, None)):
        res = fastopt.minimize_batch(fun, np.empty((0, 2)), jac=jac)
        assert res.x.shape == (0, 2) and res.fun.shape == res.nit.shape == (0,)
    res = fastopt.minimize_batch(rosen_rows, np.zeros((3, 2)), jac=True, options=OPTIONS)
    assert set(res) >= {"x", "fun", "jac", "nit", "nfev", "njev", "status", "success",
                        "message"}
    assert res.message.startswith("3 problems:")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"X0": np.zeros(3)}, ValueError, "X0 must have shape"),
    ({"X0": np.zeros((2, 0))}, ValueError, "X0 must have at least one column"),
    ({"X0": np.array([[np.nan, 1.0]])}, ValueError, "X0 must be finite"),
    ({"X0": np.array([["a", "b"]])}, TypeError, "X0 must be real"),
    ({"jac": None}, ValueError, "jac: minimize_batch needs gradients"),
    ({"jac": "2-point"}, ValueError, "jac: minimize_batch needs gradients"),
    ({"fun": 3.0}, TypeError, "fun must be callable"),
    ({"options": {"lr": np.ones(3)}}, ValueError, r"lr must be a number or have shape"),
    ({"options": {"lr": -np.ones(4)}}, ValueError, "lr: every learning rate"),
    ({"options": {"lr": np.array([1, 1, np.nan, 1])}}, ValueError, "lr: every learning rate"),
    ({"options": {"maxiter": -1}}, ValueError, "maxiter"),
    ({"options": {"gtol": -1.0}}, ValueError, "gtol"),
    ({"options": {"betas": (1.5, 0.9)}}, ValueError, "betas"),
    ({"options": {"maximize": True}}, ValueError, "maximize"),
    ({"method": "newton"}, ValueError, "newton"),
    ({"args": (np.ones((3, 2)),)}, ValueError, r"args\[0\] must have m = 4 rows"),
    ({"bounds": [(0, 1)]}, ValueError, "bounds"),
    ({"bounds": [(1, 0), (0, 1)]}, ValueError, "bounds"),
    ({"options": {"n_threads": 0}}, ValueError, "n_threads=0"),
    ({"options": {"n_threads": 2.0}}, TypeError, "n_threads"),
    ({"tol": -1.0}, ValueError, "tol"),
    ({"tol": "small"}, TypeError, "tol"),
    ({"callback": "print"}, TypeError, "callback must be callable"),
    ({"bounds": Bounds(np.zeros((3, 2)), 1.0)}, ValueError, r"bounds\.lb must have shape"),
    ({"bounds": Bounds(np.ones((4, 2)), np.zeros((4, 2)))}, ValueError, "has min 1.0 > max"),
    ({"options": []}, TypeError, "options must be a dict"),
    ({"bounds": (np.zeros((4, 2)), np.ones((4, 2)))}, ValueError,
     r"a box per problem is a scipy\.optimize\.Bounds"),
    ({"bounds": (np.zeros((4, 3)), np.ones((4, 3)))}, ValueError, "bounds"),
])
def test_bad_input_raises_before_any_call(kwargs, error, match):
    calls = []

    def fg(X, *args):
        calls.append(1)
        return rosen_rows(X)

    X0 = np.zeros((4, 2))
    arguments = {"fun": fg, "X0": X0, "jac": True} | kwargs
    with pytest.raises(error, match=match):
        fastopt.minimize_batch(**arguments)
    assert calls == []
    np.testing.assert_array_equal(X0, 0.0)


@pytest.mark.parametrize("bad_return, error, match", [
    (lambda X: (np.zeros(len(X) + 1), np.zeros_like(X)), ValueError, "fun must return f of shape"),
    (lambda X: (np.zeros(len(X)), np.zeros((len(X), 3))), ValueError, "gradient must have"),
    (lambda X: (np.zeros(len(X)), np.zeros_like(X).T.copy()), ValueError, "gradient must have"),
    (lambda X: np.zeros(len(X)), TypeError, "tuple"),
    (lambda X: (np.array(["a"] * len(X)), np.zeros_like(X)), TypeError, "real values"),
])
def test_bad_returns_are_clear_errors(bad_return, error, match):
    with pytest.raises(error, match=match):
        fastopt.minimize_batch(bad_return, np.zeros((4, 2)), jac=True)


def test_exception_in_fun_propagates_and_leaves_x0_untouched():
    X0 = np.ones((5, 2))

    def fg(X):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fastopt.minimize_batch(fg, X0, jac=True)
    np.testing.assert_array_equal(X0, 1.0)


def test_fun_sees_read_only_rows():
    def fg(X):
        with pytest.raises(ValueError):
            X[0, 0] = 1.0
        return rosen_rows(X)

    fastopt.minimize_batch(fg, np.zeros((3, 2)), jac=True, options={"maxiter": 2})


def test_float32_c_objective_batch_is_each_problem_alone(starts):
    rosen32 = fastopt.problems.rosenbrock_lowlevel("float32")
    batch = fastopt.minimize_batch(rosen32, starts, options=dict(OPTIONS, n_threads=2))
    assert batch.x.dtype == np.float32 and batch.jac.dtype == np.float32
    singles = [fastopt.minimize(rosen32, x0, options=OPTIONS) for x0 in starts]
    assert_batch_is_each_alone(batch, singles)


@pytest.mark.parametrize("convert, exact", [
    (np.asfortranarray, True),
    (lambda G: G.tolist(), True),
    (lambda G: G[:, ::-1][:, ::-1], True),  # a strided view
    (lambda G: G.astype(">f8"), True),       # big-endian
    (lambda G: G.astype(np.float32), False),  # rounded to float32, then back
])
def test_gradients_of_any_layout_or_dtype_are_converted(convert, exact, starts):
    # The gradient may come back Fortran-ordered, as a list, strided, in another byte order or
    # dtype: it is converted into the loop's buffer, and the run is what a C-contiguous G gives.
    def fg(X):
        f, G = rosen_rows(X)
        return f, convert(G)

    ref = fastopt.minimize_batch(rosen_rows, starts, jac=True, options=OPTIONS)
    res = fastopt.minimize_batch(fg, starts, jac=True, options=OPTIONS)
    if exact:
        np.testing.assert_array_equal(res.x, ref.x)
        np.testing.assert_array_equal(res.nit, ref.nit)
    else:
        np.testing.assert_allclose(res.x, ref.x, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("per_row", [False, True])
def test_c_batch_in_time_slices_is_the_same(rosen_llc, per_row):
    # From the main thread a C-objective batch runs in time slices of a few milliseconds (to
    # look for Ctrl-C between them; fastopt/_batch.pyx), each chunk resuming where it left
    # off; from another thread it runs in one go. Both must give the same bits, and what
    # each problem alone gives. 300 problems x 20000 iterations: many slices.
    import threading

    starts = np.random.default_rng(5).uniform(-2.0, 2.0, (300, 2))
    options = dict(OPTIONS, lr=np.linspace(1e-3, 2e-3, 300) if per_row else 1e-3,
                   maxiter=20000, gtol=1e-6)
    sliced = {n: fastopt.minimize_batch(rosen_llc, starts, options=dict(options, n_threads=n))
              for n in (1, 2)}
    whole = {}
    worker = threading.Thread(target=lambda: whole.update(
        {n: fastopt.minimize_batch(rosen_llc, starts, options=dict(options, n_threads=n))
         for n in (1, 2)}))
    worker.start()
    worker.join()
    for n in (1, 2):
        for key in ("x", "jac", "fun", "nit", "nfev", "status"):
            np.testing.assert_array_equal(sliced[n][key], whole[n][key])
            np.testing.assert_array_equal(sliced[n][key], sliced[1][key])
    rows = [0, 150, 299]
    singles = [fastopt.minimize(rosen_llc, starts[i],
                                options=dict(options, lr=float(np.ravel(options["lr"])[
                                    i if per_row else 0]))) for i in rows]
    for i, r in zip(rows, singles):
        np.testing.assert_array_equal(sliced[2].x[i], r.x)
        assert (sliced[2].nit[i], sliced[2].status[i]) == (r.nit, r.status)
    assert len(set(sliced[1].nit.tolist())) >= 3  # problems stop at different iterations


# ---------------------------------------------------------------------------------------------
# One language with fastopt.minimize (issue 12, item 4): SciPy's argument order, tol, bounds
# per problem, a callback per iteration.

def test_arguments_are_in_minimizes_order():
    import inspect

    batch = list(inspect.signature(fastopt.minimize_batch).parameters)
    alone = list(inspect.signature(fastopt.minimize).parameters)
    assert batch == ["X0" if p == "x0" else p for p in alone]
    assert batch == ["fun", "X0", "args", "method", "jac", "bounds", "tol", "callback",
                     "options"]


def test_positional_arguments_mean_what_they_mean_in_minimize(starts):
    # (fun, X0, args, method, jac, bounds, tol): as scipy.optimize.minimize takes them.
    bounds = [(-1.5, 0.5), (None, 1.5)]

    def fg(X, index):
        return rosen_rows(X)

    index = np.arange(len(starts))
    positional = fastopt.minimize_batch(fg, starts, (index,), "rmsprop", True, bounds, 1e-3,
                                        None, {"lr": 1e-2, "maxiter": 400})
    named = fastopt.minimize_batch(fg, starts, args=(index,), method="rmsprop", jac=True,
                                   bounds=bounds, options={"lr": 1e-2, "maxiter": 400,
                                                           "gtol": 1e-3})
    for key in ("x", "nit", "status"):
        np.testing.assert_array_equal(positional[key], named[key])
    alone = fastopt.minimize(rosen_one, starts[3], (), "rmsprop", True, bounds, 1e-3, None,
                             {"lr": 1e-2, "maxiter": 400})
    np.testing.assert_array_equal(positional.x[3], alone.x)


@pytest.mark.parametrize("objective", ["python", "c"])
def test_tol_is_the_default_gtol_as_in_minimize(objective, starts, rosen_llc):
    fun, jac = (rosen_rows, True) if objective == "python" else (rosen_llc, None)
    options = {"lr": 1e-2, "maxiter": 3000}
    by_tol = fastopt.minimize_batch(fun, starts, jac=jac, tol=0.05, options=options)
    by_gtol = fastopt.minimize_batch(fun, starts, jac=jac, options=dict(options, gtol=0.05))
    np.testing.assert_array_equal(by_tol.x, by_gtol.x)
    np.testing.assert_array_equal(by_tol.nit, by_gtol.nit)
    singles = [fastopt.minimize(rosen_one, x0, jac=True, tol=0.05, options=options)
               for x0 in starts]
    assert_batch_is_each_alone(by_tol, singles)
    assert by_tol.success.any() and len(set(by_tol.nit.tolist())) > 1
    # gtol given too wins, as in minimize; tol in options is tol
    both = fastopt.minimize_batch(fun, starts, jac=jac, tol=0.05,
                                  options=dict(options, gtol=1e-3))
    np.testing.assert_array_equal(both.nit, fastopt.minimize_batch(
        fun, starts, jac=jac, options=dict(options, gtol=1e-3)).nit)
    in_options = fastopt.minimize_batch(fun, starts, jac=jac, options=dict(options, tol=0.05))
    np.testing.assert_array_equal(in_options.nit, by_tol.nit)


def _boxes(starts, seed=0):
    """A box per problem, of its own size and place; some sides unbounded, one fixed
    variable. Most boxes do not hold the problem's minimum (1, 1)."""
    rng = np.random.default_rng(seed)
    m = len(starts)
    centre = starts + rng.uniform(-0.5, 0.5, starts.shape)
    width = rng.uniform(0.05, 1.0, starts.shape)
    lb, ub = centre - width, centre + width
    lb[rng.random(starts.shape) < 0.2] = -np.inf
    ub[rng.random(starts.shape) < 0.2] = np.inf
    lb[0, 1] = ub[0, 1] = 0.25
    return lb, ub


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("objective", ["python", "c"])
def test_a_box_per_problem_is_each_problem_alone_in_its_box(method, objective, starts,
                                                            rosen_llc):
    from scipy.optimize import Bounds

    lb, ub = _boxes(starts)
    options = dict(OPTIONS, lr=1e-3 if method in ("gd", "sgd", "momentum", "nag") else 1e-2,
                   maxiter=300)
    seen = []

    def fg(X, index):  # every iterate any problem is evaluated at
        seen.append((X.copy(), index.copy()))
        return rosen_rows(X)

    if objective == "python":
        batch = fastopt.minimize_batch(fg, starts, args=(np.arange(len(starts)),),
                                       method=method, jac=True, bounds=Bounds(lb, ub),
                                       options=options)
        for X, index in seen:
            assert np.all((lb[index] <= X) & (X <= ub[index]))
        assert len(seen) > 1
        fun_alone = rosen_one
    else:
        batch = fastopt.minimize_batch(rosen_llc, starts, method=method,
                                       bounds=Bounds(lb, ub), options=options)
        fun_alone = rosen_llc
    assert np.all((lb <= batch.x) & (batch.x <= ub))
    singles = [fastopt.minimize(fun_alone, x0, method=method, jac=True,
                                bounds=Bounds(lb[i], ub[i]), options=options)
               for i, x0 in enumerate(starts)]
    assert_batch_is_each_alone(batch, singles)
    # the boxes matter: without them the iterates differ
    assert not np.array_equal(batch.x, fastopt.minimize_batch(
        rosen_rows, starts, method=method, jac=True, options=options).x)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_box_per_problem_with_a_c_objective_on_threads(n_threads, rosen_llc):
    # Several chunks of problems (CHUNK_ROWS), per-problem learning rates, float32.
    from scipy.optimize import Bounds

    starts = np.random.default_rng(2).uniform(-2.0, 2.0, (300, 2))
    lb, ub = _boxes(starts, seed=3)
    lrs = np.linspace(1e-3, 2e-2, len(starts))
    for dtype in ("float64", "float32"):
        llc = fastopt.problems.rosenbrock_lowlevel(dtype)
        options = {"lr": lrs, "maxiter": 500, "gtol": 1e-4, "n_threads": n_threads}
        batch = fastopt.minimize_batch(llc, starts, bounds=Bounds(lb, ub), options=options)
        lo, hi = lb.astype(dtype), ub.astype(dtype)
        assert np.all((lo <= batch.x) & (batch.x <= hi))
        for i in (0, 1, 150, 299):
            alone = fastopt.minimize(llc, starts[i], bounds=Bounds(lb[i], ub[i]),
                                     options=dict(options, lr=lrs[i]))
            np.testing.assert_array_equal(batch.x[i], alone.x)
            assert (batch.nit[i], batch.status[i]) == (alone.nit, alone.status)


def test_box_per_problem_shapes_broadcast(starts):
    from scipy.optimize import Bounds

    m = len(starts)
    lb_rows = np.linspace(-1.0, 0.0, m)[:, None]  # (m, 1): one lower bound per problem
    a = fastopt.minimize_batch(rosen_rows, starts, jac=True, bounds=Bounds(lb_rows, 0.5),
                               options=OPTIONS)
    b = fastopt.minimize_batch(rosen_rows, starts, jac=True,
                               bounds=Bounds(np.repeat(lb_rows, 2, axis=1), np.full((m, 2), 0.5)),
                               options=OPTIONS)
    np.testing.assert_array_equal(a.x, b.x)
    assert np.all(a.x >= lb_rows) and np.all(a.x <= 0.5)
    # one box for all, as an (n,) Bounds or (1, n) arrays: the same
    c = fastopt.minimize_batch(rosen_rows, starts, jac=True,
                               bounds=Bounds([[-1.0, -1.0]], [[0.5, 0.5]]), options=OPTIONS)
    d = fastopt.minimize_batch(rosen_rows, starts, jac=True, bounds=[(-1.0, 0.5)] * 2,
                               options=OPTIONS)
    np.testing.assert_array_equal(c.x, d.x)


@pytest.mark.parametrize("objective", ["python", "c"])
@pytest.mark.parametrize("lb, ub, error, match", [
    (np.zeros((3, 2)), 1.0, ValueError, r"bounds\.lb must have shape \(m, n\) = \(4, 2\)"),
    (np.zeros((4, 3)), np.ones((4, 3)), ValueError,
     r"bounds\.lb must have shape .* got shape \(4, 3\)"),
    (np.zeros((1, 4, 2)), np.ones((4, 2)), ValueError, r"bounds\.lb must have shape"),
    (np.zeros((4, 1)), np.ones(3), ValueError, r"bounds\.lb must have shape"),  # Bounds broadcasts
    (np.full((4, 2), np.nan), np.ones((4, 2)), ValueError, "bounds must not contain NaN"),
    (np.zeros((4, 2)), np.where(np.arange(8).reshape(4, 2) == 5, -1.0, 1.0), ValueError,
     r"bounds \(problem 2, variable 1\) has min 0.0 > max -1.0"),
])
def test_bad_boxes_per_problem_raise_before_any_call(objective, lb, ub, error, match,
                                                     rosen_llc):
    from scipy.optimize import Bounds

    calls = []

    def fg(X):
        calls.append(1)
        return rosen_rows(X)

    fun, jac = (fg, True) if objective == "python" else (rosen_llc, None)
    X0 = np.zeros((4, 2))
    with pytest.raises(error, match=match):
        fastopt.minimize_batch(fun, X0, jac=jac, bounds=Bounds(lb, ub))
    assert calls == []
    np.testing.assert_array_equal(X0, 0.0)


def _record_minimize_callbacks(fun, x0, **kwargs):
    log = []

    def callback(intermediate_result):
        r = intermediate_result
        log.append((r.nit, r.x.copy(), float(r.fun), r.jac.copy()))

    res = fastopt.minimize(fun, x0, callback=callback, **kwargs)
    return res, log


@pytest.mark.parametrize("objective", ["python", "c"])
def test_callback_sees_each_problem_as_minimize_shows_it(objective, starts, rosen_llc):
    from scipy.optimize import Bounds

    lb, ub = _boxes(starts)
    bad_row = 5

    def fg(X, index):  # problem 5 turns NaN after a few steps: it is not shown then
        f, G = rosen_rows(X)
        f[(index == bad_row) & (np.abs(X[:, 0] - starts[bad_row, 0]) > 0.02)] = np.nan
        return f, G

    options = dict(OPTIONS, maxiter=60, gtol=0.5)
    calls = []

    def callback(res):
        assert set(res) >= {"x", "fun", "jac", "nit", "indices"}
        assert res.x.shape == res.jac.shape == (len(res.indices), 2)
        assert res.fun.shape == res.indices.shape
        calls.append((res.nit, res.indices.copy(), res.x.copy(), res.fun.copy(),
                      res.jac.copy()))
        res.x[...] = np.nan  # copies: nothing the callback does changes the run

    kwargs = dict(bounds=Bounds(lb, ub), options=options)
    if objective == "python":
        batch = fastopt.minimize_batch(fg, starts, args=(np.arange(len(starts)),), jac=True,
                                       callback=callback, **kwargs)
        quiet = fastopt.minimize_batch(fg, starts, args=(np.arange(len(starts)),), jac=True,
                                       **kwargs)
    else:
        batch = fastopt.minimize_batch(rosen_llc, starts, callback=callback, **kwargs)
        quiet = fastopt.minimize_batch(rosen_llc, starts, **kwargs)
    for key in ("x", "fun", "jac", "nit", "nfev", "status"):
        np.testing.assert_array_equal(batch[key], quiet[key])
    # once per iteration: after update j, the j-th call
    assert [c[0] for c in calls] == list(range(1, len(calls) + 1))
    longest = 0
    for i in range(len(starts)):
        if objective == "python":
            alone, log = _record_minimize_callbacks(
                lambda x: tuple(v[0] for v in fg(x[None], np.array([i]))), starts[i],
                jac=True, bounds=Bounds(lb[i], ub[i]), options=options)
        else:
            alone, log = _record_minimize_callbacks(rosen_llc, starts[i],
                                                    bounds=Bounds(lb[i], ub[i]),
                                                    options=options)
        rows = [(nit, x[k], f[k], g[k]) for nit, index, x, f, g in calls
                for k in np.flatnonzero(index == i)]
        assert len(rows) == len(log), i
        longest = max(longest, len(log))
        for (nit, x, f, g), (nit1, x1, f1, g1) in zip(rows, log):
            assert nit == nit1 and f == f1
            np.testing.assert_array_equal(x, x1)
            np.testing.assert_array_equal(g, g1)
    assert len(calls) == longest  # no call without a row to show
    if objective == "python":
        assert batch.status[bad_row] == 3 and 0 < batch.nit[bad_row] < options["maxiter"]
    assert len(set(batch.nit.tolist())) > 2  # problems leave at different iterations


@pytest.mark.parametrize("objective", ["python", "c"])
def test_callback_stop_iteration_stops_every_problem(objective, starts, rosen_llc):
    fun, jac = (rosen_rows, True) if objective == "python" else (rosen_llc, None)
    options = dict(OPTIONS, maxiter=500, gtol=2.0)
    free = fastopt.minimize_batch(fun, starts, jac=jac, options=options)
    stop_at = 20
    assert np.sum(free.nit < stop_at) >= 1 and np.sum(free.nit > stop_at) >= 5
    calls = []

    def callback(intermediate_result):
        calls.append(intermediate_result.nit)
        if intermediate_result.nit == stop_at:
            raise StopIteration

    res = fastopt.minimize_batch(fun, starts, jac=jac, callback=callback, options=options)
    assert calls == list(range(1, stop_at + 1))
    early = free.nit < stop_at  # stopped before the callback did: as without it
    for key in ("x", "nit", "status"):
        np.testing.assert_array_equal(res[key][early], free[key][early])
    late = ~early
    assert np.all(res.status[late] == 99) and not res.success[late].any()
    assert np.all(res.nit[late] == stop_at)
    assert "stopped by the callback" in res.message

    def stop_alone(intermediate_result):
        if intermediate_result.nit == stop_at:
            raise StopIteration

    for i in np.flatnonzero(late)[:5]:  # the iterate after stop_at updates, as in minimize
        alone = fastopt.minimize(fun if objective == "c" else rosen_one, starts[i], jac=True,
                                 callback=stop_alone, options=options)
        assert alone.status == 99 and alone.nit == stop_at
        np.testing.assert_array_equal(res.x[i], alone.x)
        np.testing.assert_array_equal(res.jac[i], alone.jac)
        assert res.fun[i] == alone.fun


def test_callback_errors_propagate_and_bad_callback_is_refused():
    X0 = np.zeros((3, 2))
    with pytest.raises(TypeError, match="callback must be callable"):
        fastopt.minimize_batch(rosen_rows, X0, jac=True, callback=3)
    with pytest.raises(TypeError, match="callback must be callable"):
        fastopt.minimize_batch(fastopt.problems.rosenbrock_lowlevel(), X0, callback=3)

    def boom(intermediate_result):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fastopt.minimize_batch(rosen_rows, X0, jac=True, callback=boom)
    np.testing.assert_array_equal(X0, 0.0)


def test_tol_in_options_wins_over_the_argument_as_in_minimize(starts):
    options = {"lr": 1e-2, "maxiter": 3000, "tol": 0.05}
    res = fastopt.minimize_batch(rosen_rows, starts, jac=True, tol=1e-3, options=options)
    ref = fastopt.minimize_batch(rosen_rows, starts, jac=True, options=dict(options, gtol=0.05))
    np.testing.assert_array_equal(res.nit, ref.nit)
    alone = fastopt.minimize(rosen_one, starts[0], jac=True, tol=1e-3, options=options)
    assert alone.nit == res.nit[0]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_per_problem_learning_rates_start_each_problem_as_alone(method, starts):
    # State that starts at the rate (Rprop's step sizes) starts at each problem's own: it
    # started at the first problem's for every problem.
    lrs = np.geomspace(1e-4, 1e-2, len(starts))
    options = {"maxiter": 30, "gtol": 0.0}
    batch = fastopt.minimize_batch(rosen_rows, starts, method=method, jac=True,
                                   options=dict(options, lr=lrs))
    singles = [fastopt.minimize(rosen_one, x0, method=method, jac=True,
                                options=dict(options, lr=lr)) for x0, lr in zip(starts, lrs)]
    assert_batch_is_each_alone(batch, singles)
