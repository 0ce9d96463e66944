"""Block C objectives for ``fastopt.minimize_batch``: one call evaluates many problems,
variable-major (``X[j*m + i]``). The block Rosenbrock must give each problem bitwise what the
scalar one gives, and minimize_batch with a block objective each problem bitwise what the
scalar C objective (and fastopt.minimize alone) gives."""

import ctypes

import numpy as np
import pytest

import fastopt

DTYPES = {"float64": (np.float64, ctypes.c_double), "float32": (np.float32, ctypes.c_float)}


def _pointer(llc):
    """The function pointer a LowLevelCallable's capsule holds."""
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    capsule = tuple.__getitem__(llc, 0)
    return get(capsule, get_name(capsule))


def _scalar(dtype):
    np_t, c_t = DTYPES[dtype]
    proto = ctypes.CFUNCTYPE(c_t, ctypes.c_int, ctypes.POINTER(c_t), ctypes.POINTER(c_t),
                             ctypes.c_void_p)
    fun = proto(_pointer(fastopt.problems.rosenbrock_lowlevel(dtype)))

    def call(x):
        x = np.ascontiguousarray(x, np_t)
        g = np.empty_like(x)
        ptr = ctypes.POINTER(c_t)
        f = fun(x.size, x.ctypes.data_as(ptr), g.ctypes.data_as(ptr), None)
        return np_t(f), g
    return call


def _block(dtype):
    np_t, c_t = DTYPES[dtype]
    p = ctypes.POINTER(c_t)
    proto = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, p, p, p, ctypes.c_void_p)
    fun = proto(_pointer(fastopt.problems.rosenbrock_block_lowlevel(dtype)))

    def call(X):  # X: (m, n) row-major; the call sees it variable-major
        XT = np.ascontiguousarray(np.asarray(X, np_t).T)
        F = np.full(X.shape[0], np.nan, np_t)
        GT = np.full_like(XT, np.nan)
        fun(X.shape[0], X.shape[1], XT.ctypes.data_as(p), F.ctypes.data_as(p),
            GT.ctypes.data_as(p), None)
        return F, np.ascontiguousarray(GT.T)
    return call


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n", [2, 3, 7, 16])
@pytest.mark.parametrize("m", [1, 5, 37, 300])
def test_block_rosenbrock_bitwise(dtype, n, m):
    rng = np.random.default_rng(n * 1000 + m)
    X = rng.uniform(-3, 3, (m, n)).astype(DTYPES[dtype][0])
    X[0, 0] = 1e30  # large values too (inf in float32)
    F, G = _block(dtype)(X)
    scalar = _scalar(dtype)
    for i in range(m):
        f, g = scalar(X[i])
        assert F[i].tobytes() == f.tobytes()
        assert G[i].tobytes() == g.tobytes()


def test_block_lowlevel_signatures():
    llc = fastopt.problems.rosenbrock_block_lowlevel()
    assert llc.signature == "void (int, int, double const *, double *, double *, void *)"
    llc = fastopt.problems.rosenbrock_block_lowlevel(np.float32)
    assert llc.signature == "void (int, int, float const *, float *, float *, void *)"
    with pytest.raises(ValueError, match="dtype must be float64 or float32"):
        fastopt.problems.rosenbrock_block_lowlevel("int32")


# ---------------------------------------------------------------------------------------------
# minimize_batch with a block objective: per problem bitwise the scalar C objective's batch,
# and fastopt.minimize alone.

from scipy import LowLevelCallable  # noqa: E402
from scipy.optimize import Bounds  # noqa: E402

from fastopt import lr_scheduler as L  # noqa: E402
from fastopt._methods import METHODS  # noqa: E402

FIELDS = ("x", "fun", "jac", "nit", "nfev", "status", "success")
SLOW = ("gd", "sgd", "momentum", "nag")  # methods that need a smaller lr on Rosenbrock


def starts(m, n, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).uniform(-2.0, 2.0, (m, n)).astype(dtype)


def same(a, b):
    for k in FIELDS:
        assert a[k].dtype == b[k].dtype, k
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def both(X0, dtype="float64", rows=(), **kwargs):
    """minimize_batch with the scalar and the block Rosenbrock: the same, field by field; and
    the given rows as fastopt.minimize gives them alone. Returns the block result."""
    scalar = fastopt.minimize_batch(fastopt.problems.rosenbrock_lowlevel(dtype), X0, **kwargs)
    block = fastopt.minimize_batch(fastopt.problems.rosenbrock_block_lowlevel(dtype), X0,
                                   **kwargs)
    same(scalar, block)
    options = dict(kwargs.pop("options", {}))
    bounds = kwargs.pop("bounds", None)
    for i in rows:
        one = dict(options)
        if np.ndim(options.get("lr")) == 1:
            one["lr"] = float(options["lr"][i])
        b = bounds
        if isinstance(bounds, Bounds) and np.ndim(bounds.lb) == 2:
            b = Bounds(bounds.lb[i], bounds.ub[i])
        alone = fastopt.minimize(fastopt.problems.rosenbrock_lowlevel(dtype), X0[i], bounds=b,
                                 options=one, **kwargs)
        np.testing.assert_array_equal(block.x[i], alone.x)
        np.testing.assert_array_equal(block.jac[i], alone.jac)
        assert (block.fun[i], block.nit[i], block.nfev[i], block.status[i]) == (
            alone.fun, alone.nit, alone.nfev, alone.status)
    return block


def options_for(method, **extra):
    return dict({"lr": 1e-3 if method in SLOW else 1e-2, "maxiter": 300, "gtol": 0.5}, **extra)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_is_the_scalar_batch_and_minimize(method, dtype):
    # 600 problems: two full blocks of 256 and a partial one; they stop at different
    # iterations (gtol), some at maxiter.
    X0 = starts(600, 3, seed=1)
    X0[::10] = 1.0 + np.linspace(0.0, 0.02, 60)[:, None] * [1.0, -1.0, 1.0]  # near the minimum
    options = options_for(method, lr={"adadelta": 1.0}.get(method, options_for(method)["lr"]))
    for n_threads in (1, 2):
        res = both(X0, dtype, rows=(0, 1, 599) if n_threads == 1 else (), method=method,
                   options=dict(options, n_threads=n_threads))
    assert len(set(res.nit.tolist())) > 1


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", ["adam", "sgd", "rprop", "adafactor", "adamwschedulefree",
                                    "asgd", "adadelta"])
@pytest.mark.parametrize("box", ["one", "per_problem"])
def test_bounds(method, dtype, box):
    X0 = starts(300, 2, seed=2)
    if box == "one":
        bounds = [(-1.5, 0.5), (None, 1.5)]
    else:
        lb = np.random.default_rng(3).uniform(-2.0, 0.0, (300, 2))
        bounds = Bounds(lb, lb + np.random.default_rng(4).uniform(0.2, 2.0, (300, 2)))
    for n_threads in (1, 2):
        both(X0, dtype, rows=(0, 5, 299), method=method, bounds=bounds,
             options=options_for(method, n_threads=n_threads, maxiter=400))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_per_problem_learning_rates(method, dtype):
    X0 = starts(270, 2, seed=5)
    lrs = np.geomspace(1e-4, 1e-2, 270)
    both(X0, dtype, rows=(0, 269), method=method,
         options={"lr": lrs, "maxiter": 120, "gtol": 0.5, "n_threads": 2})


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("tols", [{"ftol": 1e-7}, {"xtol": 1e-5}, {"gtol": 0.0, "maxiter": 57},
                                  {"ftol": 1e-9, "xtol": 1e-7, "gtol": 1e-3}])
def test_stopping_rules(tols, dtype):
    X0 = starts(700, 4, seed=6)
    res = both(X0, dtype, rows=(3,), method="adam",
               options=dict({"lr": 1e-2, "maxiter": 2000, "gtol": 1e-4}, **tols))
    if "maxiter" not in tols:
        assert len(set(res.nit.tolist())) > 10


CLIPS = [{"max_grad_norm": 5.0}, {"max_grad_norm": 2.0, "grad_norm_type": "inf"},
         {"max_grad_norm": 30.0, "grad_norm_type": 1}, {"clip_value": 3.0},
         {"max_grad_norm": 20.0, "clip_value": 4.0}]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("method", ["adam", "sgd"])
def test_clipping(clip, method, dtype):
    X0 = starts(300, 3, seed=7)
    both(X0, dtype, rows=(1,), method=method,
         options=dict(options_for(method, momentum=0.9) if method == "sgd"
                      else options_for(method), n_threads=2, **clip))


@pytest.mark.parametrize("name", ["StepLR", "OneCycleLR", "ReduceLROnPlateau", "LambdaLR"])
def test_lr_schedules(name):
    factory = {
        "StepLR": lambda o: L.StepLR(o, step_size=30, gamma=0.5),
        "OneCycleLR": lambda o: L.OneCycleLR(o, max_lr=2e-2, total_steps=400),
        "ReduceLROnPlateau": lambda o: L.ReduceLROnPlateau(o, factor=0.5, patience=3,
                                                           threshold=0.05),
        "LambdaLR": lambda o: L.LambdaLR(o, lambda k: 1.0 / (1.0 + 0.05 * k)),
    }[name]
    X0 = starts(300, 2, seed=8)
    both(X0, rows=(0,), method="adam",
         options={"lr": 1e-2, "maxiter": 300, "gtol": 1.0, "lr_scheduler": factory,
                  "n_threads": 2})
    lrs = np.geomspace(1e-3, 2e-2, 300)
    if name != "LambdaLR":  # per-problem rates: a schedule per problem
        both(X0, rows=(299,), method="adam",
             options={"lr": lrs, "maxiter": 300, "gtol": 1.0, "lr_scheduler": factory})


@pytest.mark.parametrize("m", [1, 2, 255, 256, 257, 513])
def test_batch_sizes_around_the_block(m):
    both(starts(m, 2, seed=m), rows=(0, m - 1), options={"lr": 1e-2, "maxiter": 500,
                                                          "gtol": 0.3})


@pytest.mark.parametrize("n", [50])
def test_many_variables(n):
    X0 = starts(300, n, seed=n)
    for n_threads in (1, 2):
        both(X0, rows=(0,), method="adam", options={"lr": 1e-2, "maxiter": 300, "gtol": 0.5,
                                                     "n_threads": n_threads})
        both(X0, rows=(1,), method="sgd", bounds=[(-1.0, 1.5)] * n,
             options={"lr": 1e-4, "maxiter": 100, "gtol": 0.5, "n_threads": n_threads})


def test_float_dtype_follows_the_signature():
    X0 = starts(20, 2, seed=9)
    res = both(X0.astype(np.float32), "float64", options={"maxiter": 20})
    assert res.x.dtype == np.float64
    res = both(X0, "float32", options={"maxiter": 20})
    assert res.x.dtype == np.float32 and res.jac.dtype == np.float32


def test_callback_sees_what_the_scalar_objective_shows():
    X0 = starts(300, 2, seed=10)
    seen = {}
    for kind in ("scalar", "block"):
        calls = seen[kind] = []

        def callback(r, calls=calls):
            calls.append((r.nit, r.indices.copy(), r.x.copy(), r.fun.copy(), r.jac.copy()))
            if r.nit == 150:
                raise StopIteration

        llc = (fastopt.problems.rosenbrock_lowlevel() if kind == "scalar"
               else fastopt.problems.rosenbrock_block_lowlevel())
        seen[kind + "_res"] = fastopt.minimize_batch(llc, X0, callback=callback,
                                                     options={"lr": 1e-2, "gtol": 1.0})
    same(seen["scalar_res"], seen["block_res"])
    assert len(seen["scalar"]) == len(seen["block"]) == 150
    for a, b in zip(seen["scalar"], seen["block"]):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    assert 99 in seen["block_res"].status.tolist()


@pytest.mark.parametrize("per_row", [False, True])
def test_time_slices_and_threads_give_the_same_bits(per_row):
    # From the main thread the chunks run in time slices of a few milliseconds (Ctrl-C is
    # looked for between them), each resuming its variable-major block where it left off;
    # from another thread in one go. 600 problems x 20000 iterations: many slices.
    import threading

    X0 = starts(600, 2, seed=12)
    options = {"lr": np.linspace(1e-3, 2e-3, 600) if per_row else 1e-3, "maxiter": 20000,
               "gtol": 1e-6}
    block = fastopt.problems.rosenbrock_block_lowlevel()
    sliced = {n: fastopt.minimize_batch(block, X0, options=dict(options, n_threads=n))
              for n in (1, 2)}
    whole = {}
    worker = threading.Thread(target=lambda: whole.update(
        {n: fastopt.minimize_batch(block, X0, options=dict(options, n_threads=n))
         for n in (1, 2)}))
    worker.start()
    worker.join()
    scalar = fastopt.minimize_batch(fastopt.problems.rosenbrock_lowlevel(), X0, options=options)
    for n in (1, 2):
        same(sliced[n], scalar)
        same(whole[n], scalar)
    assert len(set(scalar.nit.tolist())) >= 3


def test_progress_lines_do_not_change_the_result(capsys):
    X0 = starts(600, 2, seed=13)
    options = {"lr": 1e-2, "maxiter": 400, "gtol": 0.3}
    quiet = both(X0, options=options)
    loud = fastopt.minimize_batch(fastopt.problems.rosenbrock_block_lowlevel(), X0,
                                  options=dict(options, disp=2, disp_every=100))
    same(quiet, loud)
    out = capsys.readouterr().out
    assert "600 problems:" in out and "Method: fastopt.Adam" in out


def test_empty_batch():
    res = fastopt.minimize_batch(fastopt.problems.rosenbrock_block_lowlevel(), np.empty((0, 2)))
    assert res.x.shape == (0, 2) and res.nit.shape == (0,)


# ---------------------------------------------------------------------------------------------
# Non-finite values from a block objective (ctypes): each problem stops with status 3 at its
# last finite iterate, as with the scalar objective; the others go on untouched.

def _twin(x):
    """Rosenbrock in Python floats (the same function for both ctypes objectives below), NaN or
    inf in f or g where x[0] is in some ranges, an unwritten gradient entry in another."""
    f, g = 0.0, [0.0] * len(x)
    for i in range(len(x) - 1):
        a = x[i + 1] - x[i] * x[i]
        b = 1.0 - x[i]
        f += 100.0 * a * a + b * b
        g[i] += -400.0 * x[i] * a - 2.0 * b
        g[i + 1] += 200.0 * a
    if 1.1 < x[0] < 1.3:
        f = float("nan")
    elif -0.3 < x[0] < -0.2:
        g[1] = float("inf")
    elif 0.3 < x[0] < 0.35:
        g[0] = None  # left unwritten: NaN from the loop
    elif 0.5 < x[0] < 0.52:
        f = None  # F left unwritten (block), or inf (scalar; ctypes must return a float)
    return f, g


def _scalar_ctypes(dtype, twin=_twin):
    np_t, c_t = DTYPES[dtype]
    proto = ctypes.CFUNCTYPE(c_t, ctypes.c_int, ctypes.POINTER(c_t), ctypes.POINTER(c_t),
                             ctypes.c_void_p)

    def c_fun(n, x, grad, user_data):
        f, g = twin([float(x[j]) for j in range(n)])
        for j in range(n):
            if g[j] is not None:
                grad[j] = g[j]
        return float("nan") if f is None else f

    func = proto(c_fun)
    return LowLevelCallable(func), func


def _block_ctypes(dtype, twin=_twin):
    np_t, c_t = DTYPES[dtype]
    p = ctypes.POINTER(c_t)
    proto = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, p, p, p, ctypes.c_void_p)

    def c_fun(m, n, X, F, G, user_data):
        for i in range(m):
            f, g = twin([float(X[j * m + i]) for j in range(n)])
            for j in range(n):
                if g[j] is not None:
                    G[j * m + i] = g[j]
            if f is not None:
                F[i] = f

    func = proto(c_fun)
    return LowLevelCallable(func), func


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_non_finite_values_stop_each_problem_alone(dtype, n_threads):
    X0 = starts(300, 2, seed=11)
    X0[:4, 0] = [1.2, -0.25, 0.32, 0.51]  # non-finite at x0: status 3, nit 0
    (scalar, keep1), (block, keep2) = _scalar_ctypes(dtype), _block_ctypes(dtype)
    options = {"lr": 1e-2, "maxiter": 150, "gtol": 1e-3, "n_threads": n_threads}
    a = fastopt.minimize_batch(scalar, X0, options=options)
    b = fastopt.minimize_batch(block, X0, options=options)
    same(a, b)
    assert (b.status == 3).sum() > 10 and (b.status[:4] == 3).all() and (b.nit[:4] == 0).all()
    assert (b.status == 3).sum() < 300 and (b.nit[b.status == 3] > 0).any()
    went = b.nit > 0  # the last finite iterate (a start that is not finite stays as it is)
    assert np.isfinite(b.fun[went]).all() and np.isfinite(b.jac[went]).all()
    for i in np.flatnonzero(b.status == 3)[:3]:
        alone = fastopt.minimize(scalar, X0[i], options=options)
        np.testing.assert_array_equal(b.x[i], alone.x)
        assert (b.nit[i], b.status[i]) == (alone.nit, alone.status)
    del keep1, keep2


# ---------------------------------------------------------------------------------------------
# Bad input: the scalar C path's errors, nothing modified.

def test_cython_and_ctypes_spellings_of_the_block_signature():
    capsule = tuple.__getitem__(fastopt.problems.rosenbrock_block_lowlevel(), 0)
    X0 = starts(5, 2)
    ref = fastopt.minimize_batch(fastopt.problems.rosenbrock_block_lowlevel(), X0)
    for signature in ("void (int, int, double const *, double *, double *, void *)",
                      "void (int, int, const double *, double *, double *, void *)",
                      "void (int, int, double *, double *, double *, void *)",
                      "void(int,int,double*,double*,double*,void*)"):
        llc = LowLevelCallable(capsule, signature=signature)
        same(fastopt.minimize_batch(llc, X0), ref)


@pytest.mark.parametrize("signature", [
    "void (int, int, double *, double *, double const *, void *)",  # G must be writable
    "void (int, int, double *, double const *, double *, void *)",  # F too
    "void (int, double *, double *, double *, void *)",
    "void (int, int, float *, double *, double *, void *)",
    "double (int, int, double *, double *, double *, void *)",
    "void (long, int, double *, double *, double *, void *)",
    "void (int, int, double *, double *, double *)",
])
def test_wrong_block_signature_is_a_value_error_naming_fun(signature):
    capsule = tuple.__getitem__(fastopt.problems.rosenbrock_block_lowlevel(), 0)
    llc = LowLevelCallable(capsule, signature=signature)
    X0 = starts(4, 2)
    before = X0.copy()
    with pytest.raises(ValueError, match="fun: a LowLevelCallable must have the signature") as e:
        fastopt.minimize_batch(llc, X0)
    assert "void (int m, int n, const double *X" in str(e.value)  # both families listed
    assert "double (int n, const double *x" in str(e.value)
    np.testing.assert_array_equal(X0, before)


def test_minimize_refuses_a_block_objective():
    x0 = np.array([-1.2, 1.0])
    with pytest.raises(ValueError, match="fun: a block LowLevelCallable .* is for "
                                         "fastopt.minimize_batch"):
        fastopt.minimize(fastopt.problems.rosenbrock_block_lowlevel(), x0)
    np.testing.assert_array_equal(x0, [-1.2, 1.0])


@pytest.mark.parametrize("kwargs, match", [
    ({"jac": lambda x: x}, "jac: a LowLevelCallable fun computes its own gradient"),
    ({"args": (1.0,)}, "args: a LowLevelCallable fun takes no args"),
    ({"options": {"n_threads": 0}}, "n_threads=0"),
    ({"bounds": [(0, 1)]}, "bounds"),
])
def test_what_does_not_go_with_a_block_objective(kwargs, match):
    X0 = starts(4, 2)
    before = X0.copy()
    with pytest.raises(ValueError, match=match):
        fastopt.minimize_batch(fastopt.problems.rosenbrock_block_lowlevel(), X0, **kwargs)
    np.testing.assert_array_equal(X0, before)


def test_null_block_function_pointer_cannot_reach_fastopt():
    p = ctypes.POINTER(ctypes.c_double)
    proto = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, p, p, p, ctypes.c_void_p)
    with pytest.raises((TypeError, ValueError)):
        LowLevelCallable(ctypes.cast(0, proto))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_exception_in_a_ctypes_block_objective_gives_status_3():
    # ctypes prints the exception and writes nothing: F and G stay NaN, every problem stops
    # at x0 with status 3, as with a scalar ctypes objective that raises.
    p = ctypes.POINTER(ctypes.c_double)
    proto = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, p, p, p, ctypes.c_void_p)

    def boom(m, n, X, F, G, user_data):
        raise RuntimeError("boom")

    func = proto(boom)
    X0 = starts(5, 2)
    res = fastopt.minimize_batch(LowLevelCallable(func), X0)
    assert (res.status == 3).all() and (res.nit == 0).all()
    np.testing.assert_array_equal(res.x, X0)


def test_one_variable_problems():
    # n = 1 (the layouts coincide): a quartic through ctypes, both signatures
    def quartic(x):
        return (x[0] - 1.0) ** 4, [4.0 * (x[0] - 1.0) ** 3]

    (scalar, keep1), (block, keep2) = (_scalar_ctypes("float64", quartic),
                                       _block_ctypes("float64", quartic))
    X0 = starts(300, 1, seed=14)
    for n_threads in (1, 2):
        options = {"lr": 1e-2, "maxiter": 200, "gtol": 1e-2, "n_threads": n_threads}
        a = fastopt.minimize_batch(scalar, X0, options=options)
        b = fastopt.minimize_batch(block, X0, options=options)
        same(a, b)
    assert len(set(b.nit.tolist())) > 10
    del keep1, keep2
