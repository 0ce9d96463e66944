"""C-level objectives (scipy.LowLevelCallable) in fastopt.minimize: the same trajectory as a
Python objective, the three ways to make one (Cython, ctypes, numba), and clear errors."""

import ctypes
import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pytest
from scipy import LowLevelCallable
from scipy.optimize import minimize as scipy_minimize

import fastopt
from fastopt import _objectives
from fastopt._methods import METHODS
from fastopt._registry import BY_METHOD
from fastopt._registry import BY_METHOD

OPTIONS = {"lr": 1e-2, "maxiter": 300, "gtol": 0.0}

# A ctypes function type of the C signature: double f(int, double *, double *, void *).
F64 = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_int, ctypes.POINTER(ctypes.c_double),
                       ctypes.POINTER(ctypes.c_double), ctypes.c_void_p)


def rosen_twin(x):
    """Python twin of fastopt._objectives.rosenbrock, in the same order of operations."""
    x = np.asarray(x, dtype=np.float64)
    f, g = 0.0, np.zeros_like(x)
    for i in range(x.size - 1):
        a = x[i + 1] - x[i] * x[i]
        b = 1.0 - x[i]
        f += 100.0 * a * a + b * b
        g[i] += -400.0 * x[i] * a - 2.0 * b
        g[i + 1] += 200.0 * a
    return f, g


def rosen_twin_f32(x):
    f, g = rosen_twin(x)
    return f, g.astype(np.float32)


@pytest.fixture(scope="module")
def rosen_llc():
    return fastopt.problems.rosenbrock_lowlevel()


def same_result(a, b):
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.jac, b.jac)
    assert a.fun == b.fun
    assert (a.nit, a.nfev, a.status) == (b.nit, b.nfev, b.status)


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("n", [2, 5])
def test_c_level_and_python_objectives_give_the_same_trajectory(rosen_llc, method, n):
    x0 = np.resize([-1.2, 1.0], n)
    # A rate each method is stable with: its record's for Rosenbrock if below 1e-2 (gradient
    # steps, and RAdam's first steps, which are momentum SGD), else 1e-2.
    # (A fifth of its racers' measured 2-D Rosenbrock rates bounds it too, for n = 5:
    # schedule-free SGD has no Rosenbrock option and diverges at 1e-2.)
    record = BY_METHOD[method]
    lr = min([1e-2, record.options.get("rosenbrock", {}).get("lr", 1e-2)]
             + [r.race_lr["rosenbrock"] / 5 for r in record.racers if "rosenbrock" in r.race_lr])
    options = dict(OPTIONS, lr=lr)
    native = fastopt.minimize(rosen_llc, x0, method=method, jac=True, options=options)
    python = fastopt.minimize(rosen_twin, x0, method=method, jac=True, options=options)
    same_result(native, python)
    assert native.nit == 300


def test_jac_none_is_jac_true_for_a_c_objective(rosen_llc):
    same_result(fastopt.minimize(rosen_llc, [-1.2, 1.0], options=OPTIONS),
                fastopt.minimize(rosen_llc, [-1.2, 1.0], jac=True, options=OPTIONS))


def test_stopping_rules_bounds_and_callbacks_match_the_python_path(rosen_llc):
    options = {"lr": 0.05, "maxiter": 5000, "gtol": 1e-6, "ftol": 1e-14}
    bounds = [(-1.0, 0.9), (None, 0.8)]
    seen = {"native": [], "python": []}
    results = {}
    def recorder(log):
        def callback(intermediate_result):
            log.append((intermediate_result.nit, intermediate_result.fun))
        return callback

    for name, fun in (("native", rosen_llc), ("python", rosen_twin)):
        results[name] = fastopt.minimize(
            fun, [-1.2, 1.0], jac=True, bounds=bounds, options=dict(options, return_all=True),
            callback=recorder(seen[name]))
    same_result(results["native"], results["python"])
    assert seen["native"] == seen["python"]
    assert [nit for nit, _ in seen["native"]] == list(range(1, results["native"].nit + 1))
    for a, b in zip(results["native"].allvecs, results["python"].allvecs):
        np.testing.assert_array_equal(a, b)
    assert results["native"].x[0] <= 0.9 and results["native"].x[1] <= 0.8


def test_callback_stop_iteration_and_no_callback_give_the_same_iterates(rosen_llc):
    def stop_at_7(intermediate_result):
        if intermediate_result.nit == 7:
            raise StopIteration

    res = fastopt.minimize(rosen_llc, [-1.2, 1.0], callback=stop_at_7, options=OPTIONS)
    assert res.status == 99 and res.nit == 7
    ref = fastopt.minimize(rosen_llc, [-1.2, 1.0], options=dict(OPTIONS, maxiter=7))
    ref.status = 99
    same_result(res, ref)


def test_as_a_scipy_minimize_method(rosen_llc):
    res = scipy_minimize(rosen_llc, [-1.2, 1.0], method=fastopt.adam, jac=True, options=OPTIONS)
    same_result(res, fastopt.minimize(rosen_llc, [-1.2, 1.0], options=OPTIONS))


def test_float32_signature_runs_float32(rosen_llc):
    llc32 = fastopt.problems.rosenbrock_lowlevel("float32")
    res = fastopt.minimize(llc32, [-1.2, 1.0], jac=True, options=OPTIONS)
    assert res.x.dtype == np.float32 and res.jac.dtype == np.float32
    ref = fastopt.minimize(rosen_twin_f32, np.array([-1.2, 1.0], np.float32), jac=True,
                           options=OPTIONS)
    # f and g are computed in float32 by the C twin, in float64 then rounded by the Python one.
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-4)
    # A float64 objective runs float64 whatever x0's dtype.
    res64 = fastopt.minimize(rosen_llc, np.array([-1.2, 1.0], np.float32), options=OPTIONS)
    assert res64.x.dtype == np.float64


def test_cython_signature_spellings_are_accepted():
    capsule = tuple.__getitem__(fastopt.problems.rosenbrock_lowlevel(), 0)
    for signature in ("double (int, double const *, double *, void *)",
                      "double (int, const double *, double *, void *)",
                      "double(int,double*,double*,void*)"):
        llc = LowLevelCallable(capsule, signature=signature)
        assert fastopt.minimize(llc, [-1.2, 1.0], options=OPTIONS).nit == 300


@pytest.mark.parametrize("signature", [
    "double (double *, double *, void *)",
    "double (int, double *, double *)",
    "float (int, double *, double *, void *)",
    "double (int, double *, double const *, void *)",  # grad must be writable
    "double (long, double *, double *, void *)",
    "int (int, double *, double *, void *)",
    "",
])
def test_wrong_signature_is_a_value_error_naming_fun(signature):
    capsule = tuple.__getitem__(fastopt.problems.rosenbrock_lowlevel(), 0)
    llc = LowLevelCallable(capsule, signature=signature)
    x0 = np.array([-1.2, 1.0])
    with pytest.raises(ValueError, match="fun: a LowLevelCallable must have the signature"):
        fastopt.minimize(llc, x0)
    with pytest.raises(ValueError, match="fun: a LowLevelCallable must have the signature"):
        fastopt.minimize_batch(llc, x0[None])
    np.testing.assert_array_equal(x0, [-1.2, 1.0])


def test_null_function_pointer_cannot_reach_fastopt():
    # A NULL function pointer cannot be wrapped: scipy (and PyCapsule) refuse it first.
    with pytest.raises((TypeError, ValueError)):
        LowLevelCallable(ctypes.cast(0, F64))


@pytest.mark.parametrize("kwargs, match", [
    ({"jac": lambda x: x}, "jac: a LowLevelCallable fun computes its own gradient"),
    ({"jac": "2-point"}, "jac: a LowLevelCallable fun computes its own gradient"),
    ({"args": (1.0,)}, "args: a LowLevelCallable fun takes no args"),
])
def test_what_does_not_go_with_a_c_objective(rosen_llc, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fastopt.minimize(rosen_llc, [-1.2, 1.0], **kwargs)
    with pytest.raises(ValueError, match=match):
        fastopt.minimize_batch(rosen_llc, [[-1.2, 1.0]], **kwargs)


# ---------------------------------------------------------------------------------------------
# Non-finite values from the C function: status 3 and the last finite iterate, never a crash.

def ctypes_objective(python_fun):
    """A C function pointer that calls ``python_fun(x, g) -> f`` (ctypes takes the GIL)."""
    def c_fun(n, x, grad, user_data):
        xs = np.ctypeslib.as_array(x, shape=(n,))
        gs = np.ctypeslib.as_array(grad, shape=(n,))
        return python_fun(xs, gs)

    func = F64(c_fun)
    return LowLevelCallable(func), func  # keep func alive while the callable is used


@pytest.mark.parametrize("bad", ["f_nan", "f_inf", "g_nan", "g_inf"])
def test_non_finite_value_from_c_stops_with_status_3(bad):
    calls = []

    def fun(x, g):
        calls.append(x.copy())
        f, grad = rosen_twin(x)
        g[:] = grad
        if len(calls) == 6:  # the 6th evaluation: the iterate after 5 updates
            if bad.startswith("f"):
                return np.nan if bad == "f_nan" else np.inf
            g[1] = np.nan if bad == "g_nan" else -np.inf
        return f

    llc, keep = ctypes_objective(fun)
    res = fastopt.minimize(llc, [-1.2, 1.0], options=OPTIONS)
    assert res.status == 3 and not res.success and res.nit == 4
    np.testing.assert_array_equal(res.x, calls[4])  # the last finite iterate
    assert np.isfinite(res.fun) and np.all(np.isfinite(res.jac))
    assert res.fun == rosen_twin(calls[4])[0]
    del keep


def test_non_finite_at_x0_from_c():
    llc, keep = ctypes_objective(lambda x, g: np.nan)
    res = fastopt.minimize(llc, [1.0, 2.0], options=OPTIONS)
    assert res.status == 3 and res.nit == 0
    np.testing.assert_array_equal(res.x, [1.0, 2.0])
    del keep


# ---------------------------------------------------------------------------------------------
# What the gradient buffer holds when a C objective gets it: NaN in every entry, on every path
# (documented in minimize and minimize_batch). An entry left unwritten stops the run with
# status 3 at the last iterate whose gradient was complete -- never uninitialised memory.

F32 = ctypes.CFUNCTYPE(ctypes.c_float, ctypes.c_int, ctypes.POINTER(ctypes.c_float),
                       ctypes.POINTER(ctypes.c_float), ctypes.c_void_p)


def ctypes_objective_typed(python_fun, dtype):
    """ctypes_objective for float64 or float32 (the float signature)."""
    ctype = F32 if np.dtype(dtype) == np.float32 else F64

    def c_fun(n, x, grad, user_data):
        return python_fun(np.ctypeslib.as_array(x, shape=(n,)),
                          np.ctypeslib.as_array(grad, shape=(n,)))

    func = ctype(c_fun)
    return LowLevelCallable(func), func


def _run(path, llc, start, options):
    """One run of a C objective on one of the paths that call it; a result per problem."""
    if path == "minimize":
        return [fastopt.minimize(llc, start, options=options)]
    if path == "minimize_callback":  # the loop that returns to Python after each iteration
        return [fastopt.minimize(llc, start, options=options, callback=lambda xk: None)]
    X0 = np.tile(start, (300, 1))  # 3 chunks of problems
    if path == "batch_callback":  # the batch loop that returns to Python after each iteration
        batch = fastopt.minimize_batch(llc, X0, options=options, callback=lambda res: None)
    else:
        batch = fastopt.minimize_batch(llc, X0, options=dict(options, n_threads=int(path[-1])))
    return [scipy_result(batch, i) for i in range(len(X0))]


def scipy_result(batch, i):
    from scipy.optimize import OptimizeResult
    return OptimizeResult(x=batch.x[i], fun=batch.fun[i], jac=batch.jac[i], nit=batch.nit[i],
                          status=batch.status[i])


PATHS = ["minimize", "minimize_callback", "batch_1", "batch_2", "batch_callback"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("path", PATHS)
def test_gradient_buffer_holds_nan_on_entry(path, dtype):
    on_entry = []

    def fun(x, g):
        on_entry.append(g.copy())
        f, grad = rosen_twin(x)
        g[:] = grad
        return f

    llc, keep = ctypes_objective_typed(fun, dtype)
    start = np.array([-1.2, 1.0, 0.5, -0.5], dtype=dtype)
    for _ in range(2):
        _run(path, llc, start, {"lr": 1e-3, "maxiter": 5, "gtol": 0.0})
    entries = np.array(on_entry)
    assert len(entries) >= 12 and entries.dtype == dtype
    assert np.isnan(entries).all()
    del keep


class Trajectory:
    """The iterates an objective sees, in order. In a batch whose problems all start at one
    point, every problem follows the same trajectory, so a point's index is the iteration at
    which each problem evaluates it, whatever the order of the calls (chunks, threads)."""

    def __init__(self):
        self.points = []

    def index(self, x):
        for k, p in enumerate(self.points):
            if np.array_equal(p, x):
                return k
        self.points.append(x.copy())
        return len(self.points) - 1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("path", PATHS)
def test_unwritten_gradient_entries_stop_the_run(path, dtype):
    # Writes grad[0] and grad[1] only from the 3rd iterate on (the first two: everything).
    for _ in range(3):  # the same, exactly, run after run
        seen = Trajectory()

        def fun(x, g):
            f, grad = rosen_twin(x)
            k = 2 if seen.index(x) >= 2 else 4
            g[:k] = grad[:k]
            return f

        llc, keep = ctypes_objective_typed(fun, dtype)
        start = np.array([-1.2, 1.0, 0.5, -0.5], dtype=dtype)
        for res in _run(path, llc, start, {"lr": 1e-3, "maxiter": 100, "gtol": 0.0}):
            # The 3rd evaluation (after 2 updates) is incomplete: back to the 2nd iterate.
            assert res.status == 3 and res.nit == 1
            np.testing.assert_array_equal(res.x, seen.points[1])
            f, grad = rosen_twin(seen.points[1])
            assert res.fun == np.float64(dtype(f))
            np.testing.assert_array_equal(res.jac, grad.astype(dtype))
        del keep


@pytest.mark.parametrize("path", PATHS)
def test_gradient_never_written_is_nan_in_the_result(path):
    llc, keep = ctypes_objective_typed(lambda x, g: 1.0, np.float64)
    for _ in range(3):
        for res in _run(path, llc, np.array([-1.2, 1.0]), OPTIONS):
            assert res.status == 3 and res.nit == 0 and res.fun == 1.0
            np.testing.assert_array_equal(res.x, [-1.2, 1.0])
            assert np.isnan(res.jac).all()
    del keep


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("path", PATHS)
def test_ctypes_objective_that_raises_stops_with_status_3(path):
    # ctypes cannot pass the exception on: it prints it and returns 0.0, grad unwritten. The
    # NaN left in grad stops the run at the last complete iterate instead of "converging".
    seen = Trajectory()

    def fun(x, g):
        if seen.index(x) == 5:  # the iterate after 5 updates
            raise RuntimeError("bad objective")
        f, grad = rosen_twin(x)
        g[:] = grad
        return f

    llc, keep = ctypes_objective_typed(fun, np.float64)
    for res in _run(path, llc, np.array([-1.2, 1.0]), OPTIONS):
        assert res.status == 3 and res.nit == 4
        np.testing.assert_array_equal(res.x, seen.points[4])
        np.testing.assert_array_equal(res.jac, rosen_twin(seen.points[4])[1])
    del keep


HALF_SOURCE = r"""
/* Rosenbrock's value, but a gradient written only for the first half of x (a bug). */
#define HALF(T, NAME)                                                          \
T NAME(int n, T *x, T *grad, void *user_data)                                  \
{                                                                              \
    T f = 0;                                                                   \
    for (int i = 0; i < n - 1; i++) {                                          \
        T a = x[i + 1] - x[i] * x[i], b = 1 - x[i];                            \
        f += 100 * a * a + b * b;                                              \
    }                                                                          \
    for (int i = 0; i < n / 2; i++)                                            \
        grad[i] = 1;                                                           \
    return f;                                                                  \
}
HALF(double, half_f64)
HALF(float, half_f32)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="builds a shared library with cc")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_objective_writing_half_the_gradient(tmp_path, dtype):
    lib = _compiled_library(tmp_path, "half", HALF_SOURCE)
    single = np.dtype(dtype) == np.float32
    fn = lib.half_f32 if single else lib.half_f64
    ctype = ctypes.c_float if single else ctypes.c_double
    fn.restype = ctype
    fn.argtypes = [ctypes.c_int, ctypes.POINTER(ctype), ctypes.POINTER(ctype), ctypes.c_void_p]
    llc = LowLevelCallable(fn)
    start = np.array([-1.2, 1.0, 0.5, -0.5], dtype=dtype)
    for path in PATHS:
        for _ in range(3):
            for res in _run(path, llc, start, OPTIONS):
                assert res.status == 3 and res.nit == 0
                np.testing.assert_array_equal(res.x, start)
                np.testing.assert_array_equal(res.jac[:2], 1)
                assert np.isnan(res.jac[2:]).all()


# ---------------------------------------------------------------------------------------------
# The three ways to make a C objective (README, "C-level objectives").

C_SOURCE = r"""
/* f(x) = sum_i w_i (x_i - 1)^2, with the weights w passed as user_data */
double weighted_sphere(int n, double *x, double *grad, void *user_data)
{
    const double *w = (const double *)user_data;
    double f = 0.0;
    for (int i = 0; i < n; i++) {
        double d = x[i] - 1.0;
        f += w[i] * d * d;
        grad[i] = 2.0 * w[i] * d;
    }
    return f;
}
"""


def test_readme_shows_the_tested_c_source():
    import pathlib
    readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    if not readme.exists():
        pytest.skip("README.md not found (installed package)")
    def unindented(text):  # the README indents it in a list item
        return "\n".join(line.strip() for line in text.strip().splitlines())

    assert unindented(C_SOURCE) in unindented(readme.read_text())


def _c_compiler():
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) or shutil.which("cc")


def _compiled_library(folder, name, source):
    """``source`` compiled into ``folder/lib<name>.so`` and loaded (skips without a compiler)."""
    cc = _c_compiler()
    if cc is None:
        pytest.skip("no C compiler")
    (folder / f"{name}.c").write_text(source)
    lib_path = folder / f"lib{name}.so"
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(lib_path),
                    str(folder / f"{name}.c")], check=True)
    return ctypes.CDLL(str(lib_path))


@pytest.mark.skipif(sys.platform == "win32", reason="builds a shared library with cc")
def test_ctypes_objective_from_a_compiled_c_file(tmp_path):
    lib = _compiled_library(tmp_path, "sphere", C_SOURCE)
    lib.weighted_sphere.restype = ctypes.c_double
    lib.weighted_sphere.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_double),
                                    ctypes.POINTER(ctypes.c_double), ctypes.c_void_p]
    weights = np.array([1.0, 10.0, 100.0])
    llc = LowLevelCallable(lib.weighted_sphere,
                           user_data=weights.ctypes.data_as(ctypes.c_void_p))
    res = fastopt.minimize(llc, np.zeros(3), options={"lr": 0.1, "maxiter": 5000})
    assert res.success
    np.testing.assert_allclose(res.x, 1.0, atol=1e-5)

    def python_twin(x):
        d = x - 1.0
        return float(np.sum(weights * d * d)), 2.0 * weights * d

    ref = fastopt.minimize(python_twin, np.zeros(3), jac=True,
                           options={"lr": 0.1, "maxiter": 5000})
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-12)
    assert res.nit == ref.nit
    batch = fastopt.minimize_batch(llc, np.zeros((4, 3)) + [[0.0], [2.0], [-1.0], [5.0]],
                                   options={"lr": 0.1, "maxiter": 5000, "n_threads": 2})
    assert batch.success.all()


def test_numba_cfunc_objective():
    numba = pytest.importorskip("numba")
    from numba import types

    signature = types.float64(types.intc, types.CPointer(types.float64),
                              types.CPointer(types.float64), types.voidptr)

    @numba.cfunc(signature)
    def sphere(n, x, grad, user_data):
        f = 0.0
        for i in range(n):
            d = x[i] - 1.0
            f += d * d
            grad[i] = 2.0 * d
        return f

    res = fastopt.minimize(LowLevelCallable(sphere.ctypes), np.zeros(4),
                           options={"lr": 0.1, "maxiter": 5000})
    assert res.success
    np.testing.assert_allclose(res.x, 1.0, atol=1e-5)


def test_objectives_module_matches_the_problem_definition():
    # The compiled Rosenbrock is fastopt.problems.rosenbrock, value and gradient.
    p = fastopt.problems.rosenbrock(5)
    x = np.random.default_rng(0).uniform(-2, 2, 5)
    f, g = rosen_twin(x)
    np.testing.assert_allclose(f, p.f(x), rtol=1e-13)
    np.testing.assert_allclose(g, p.grad(x), rtol=1e-13)
    X = np.tile([-1.2, 1.0], (3, 1))
    fs = _objectives.plain_adam_rosenbrock2(X, 10, 1e-3)
    assert fs.shape == (3,) and np.all(X[:, 0] > -1.2)


def test_non_finite_value_in_a_c_batch_stops_that_problem_only():
    # Problem 2 starts at x[0] == 3: its objective turns NaN once x[0] has moved away from 3.
    def fun(x, g):
        f, grad = rosen_twin(x)
        g[:] = grad
        return np.nan if (2.5 < x[0] < 2.9999) else f

    llc, keep = ctypes_objective(fun)
    X0 = np.array([[-1.2, 1.0], [0.5, 0.5], [3.0, 1.0], [-0.5, 2.0]])
    options = {"lr": 0.01, "maxiter": 200, "gtol": 0.0}
    batch = fastopt.minimize_batch(llc, X0, options=dict(options, n_threads=2))
    assert batch.status.tolist() == [1, 1, 3, 1]
    assert np.isfinite(batch.fun).all() and np.isfinite(batch.x).all()
    alone = fastopt.minimize(llc, X0[2], options=options)
    np.testing.assert_array_equal(batch.x[2], alone.x)
    assert batch.nit[2] == alone.nit and alone.status == 3
    del keep
