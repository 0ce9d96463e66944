"""fastopt.dask.minimize_batch (issue 16) on a LocalCluster of 2 worker processes: per problem
bitwise fastopt.minimize_batch's in-process result (methods, dtypes, C and Python objectives,
boxes, per-problem args and learning rates), C objectives sent as lowlevel recipes, the bad
recipes refused before any task runs, a worker killed mid-batch, an exception in fun."""

import functools
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from scipy import LowLevelCallable
from scipy.optimize import Bounds

import fastopt

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
import cloudpickle  # noqa: E402  (a dependency of dask)
import dask.array as da  # noqa: E402

import fastopt.dask as fdask  # noqa: E402

# The workers cannot import this test module: send its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

FIELDS = fdask.FIELDS


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        yield c


def assert_same(lazy, expected, fields=False):
    """Every field of the lazy result, computed, is bitwise the in-process one (with
    ``fields``, also the lazy fields computed by dask.compute)."""
    out = lazy.compute()
    for field in FIELDS:
        assert out[field].dtype == expected[field].dtype, field
        np.testing.assert_array_equal(out[field], expected[field], err_msg=field, strict=True)
        assert out[field].flags.c_contiguous
    assert out.message == expected.message
    if fields:
        for field, value in zip(FIELDS, dask.compute(*(lazy[f] for f in FIELDS))):
            np.testing.assert_array_equal(value, expected[field], err_msg=field, strict=True)


def fg(X, P, scale):
    """Vectorised objective: scale * |x - p|^2 + a quartic, per row."""
    D = X - P
    return scale * np.sum(D * D + 0.1 * D**4, axis=1), scale * (2 * D + 0.4 * D**3)


def points(m, n=2, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).uniform(-2, 2, (m, n)).astype(dtype)


# ------------------------------------------------------------------------------------------
# Equality with the in-process call


@pytest.mark.parametrize("method", ["adam", "nag", "rmsprop", "adafactor"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["C", "Python"])
def test_equals_in_process_result(client, method, dtype, kind):
    m = 700
    X = points(m, dtype=dtype)
    X0 = da.from_array(X, chunks=(190, 1))  # uneven row chunks; column chunks are merged
    options = {"lr": 0.01, "maxiter": 300}
    if kind == "C":
        spec = fdask.lowlevel(fastopt.problems.rosenbrock_lowlevel, np.dtype(dtype).name)
        lazy = fdask.minimize_batch(spec, X0, method=method, options=options)
        expected = fastopt.minimize_batch(spec(), X, method=method, options=options)
    else:
        P = points(m, seed=1)
        lazy = fdask.minimize_batch(fg, X0, args=(da.from_array(P, chunks=(333, 2)), 2.0),
                                    method=method, jac=True, options=options)
        expected = fastopt.minimize_batch(fg, X, args=(P, 2.0), method=method, jac=True,
                                          options=options)
    assert lazy.x.chunks[0] == X0.chunks[0] and lazy.fun.chunks == (X0.chunks[0],)
    assert_same(lazy, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_boxes_learning_rates_and_args_per_problem(client, dtype):
    m, n = 601, 3
    rng = np.random.default_rng(2)
    X = points(m, n, dtype)
    lb, ub = rng.uniform(-1.5, 0, (m, n)), rng.uniform(0.5, 1.5, (m, 1))
    lr = rng.uniform(1e-3, 0.05, m)
    P = rng.normal(size=(m, n))
    options = {"lr": lr, "maxiter": 400, "gtol": 1e-4, "max_grad_norm": 5.0}
    expected = fastopt.minimize_batch(fg, X, args=(P, np.full(1, 2.0)), jac=True,
                                      bounds=Bounds(lb, ub), options=options)
    # dask arrays chunked differently from X0, and NumPy arrays: both cut into X0's rows
    X0 = da.from_array(X, chunks=(150, n))
    for box, rates, args in [
        (Bounds(da.from_array(lb, chunks=(77, 2)), da.from_array(ub, chunks=(300, 1))),
         da.from_array(lr, chunks=100), (da.from_array(P, chunks=(50, n)), np.full(1, 2.0))),
        (Bounds(lb, ub), lr, (P, np.full(1, 2.0))),
    ]:
        lazy = fdask.minimize_batch(fg, X0, args=args, jac=True, bounds=box,
                                    options=dict(options, lr=rates))
        assert_same(lazy, expected, fields=True)
    # a C objective (scalar and block) with a box per problem and per-problem rates
    options = {"lr": lr, "maxiter": 400, "gtol": 1e-4}
    for factory in (fastopt.problems.rosenbrock_lowlevel,
                    fastopt.problems.rosenbrock_block_lowlevel):
        spec = fdask.lowlevel(factory, dtype=np.dtype(dtype).name)
        expected = fastopt.minimize_batch(spec(), X, bounds=Bounds(lb, ub), options=options)
        lazy = fdask.minimize_batch(spec, X0, bounds=Bounds(da.from_array(lb), ub),
                                    options=dict(options, lr=da.from_array(lr, chunks=300)))
        assert_same(lazy, expected)


def test_recipes_by_partial_and_by_name_and_the_workers_cache(client):
    X = points(400)
    X0 = da.from_array(X, chunks=100)
    options = {"lr": 0.02, "maxiter": 200, "xtol": 1e-6,
               "lr_scheduler": lambda opt: fastopt.lr_scheduler.CosineAnnealingLR(opt, 150)}
    expected = fastopt.minimize_batch(fastopt.problems.rosenbrock_lowlevel(), X,
                                      options=options)
    for spec in (fdask.lowlevel(functools.partial(fastopt.problems.rosenbrock_lowlevel,
                                                  "float64")),
                 fdask.lowlevel("fastopt.problems:rosenbrock_lowlevel")):
        assert_same(fdask.minimize_batch(spec, X0, options=options).persist(), expected,
                    fields=True)
        # built once per worker process: the cache holds this recipe, under its digest
        cached = client.run(lambda: list(fdask._RESOLVED))
        assert any(spec.key in keys for keys in cached.values())
        assert all(len(set(keys)) == len(keys) for keys in cached.values())


def test_persist_and_the_local_scheduler():
    X = points(300)
    spec = fdask.lowlevel(fastopt.problems.rosenbrock_lowlevel)
    expected = fastopt.minimize_batch(spec(), X, options={"maxiter": 100})
    with dask.config.set(scheduler="threads"):
        lazy = fdask.minimize_batch(spec, da.from_array(X, chunks=70), options={"maxiter": 100})
        assert_same(lazy.persist(), expected)
        empty = fdask.minimize_batch(spec, da.zeros((0, 2), chunks=1)).compute()
        assert empty.x.shape == (0, 2) and empty.message == "0 problems: none"


# ------------------------------------------------------------------------------------------
# Bad input: refused by fastopt.dask.minimize_batch itself, before any task exists


def closure_factory():
    lock = threading.Lock()  # does not pickle

    def make():
        assert lock is not None  # captured: make carries the lock
        return fastopt.problems.rosenbrock_lowlevel()
    return make


def not_a_lowlevelcallable():
    return fastopt.problems.rosenbrock_lowlevel


def wrong_signature():
    import ctypes
    libc = ctypes.CDLL(None)
    libc.labs.restype, libc.labs.argtypes = ctypes.c_long, [ctypes.c_long]
    return LowLevelCallable(libc.labs)


X0_SMALL = da.zeros((10, 2), chunks=5)


@pytest.mark.parametrize("spec, error, match", [
    (fdask.lowlevel("no_such_module_xyz:make"), ValueError, "cannot be imported"),
    (fdask.lowlevel("fastopt.problems:no_such_factory"), ValueError, "cannot be imported"),
    (fdask.lowlevel(closure_factory()), TypeError, "does not pickle"),
    (fdask.lowlevel(fastopt.problems.rosenbrock_lowlevel, threading.Lock()), TypeError,
     "does not pickle"),
    (fdask.lowlevel(not_a_lowlevelcallable), TypeError, "must return a scipy.LowLevelCallable"),
    (fdask.lowlevel(wrong_signature), ValueError, "signature"),
])
def test_bad_recipe_is_refused_before_any_task(spec, error, match):
    with pytest.raises(error, match=match):
        fdask.minimize_batch(spec, X0_SMALL)


def test_bad_arguments_are_refused_before_any_task():
    llc = fastopt.problems.rosenbrock_lowlevel()
    with pytest.raises(TypeError, match=r"fastopt\.dask\.lowlevel\(factory"):
        fdask.minimize_batch(llc, X0_SMALL)
    with pytest.raises(TypeError, match="not the LowLevelCallable itself"):
        fdask.lowlevel(llc)
    with pytest.raises(ValueError, match="'package.module:name'"):
        fdask.lowlevel("fastopt.problems.rosenbrock_lowlevel")
    with pytest.raises(TypeError, match="X0 must be a dask array"):
        fdask.minimize_batch(fg, np.zeros((10, 2)), jac=True)
    with pytest.raises(ValueError, match="X0 must have shape"):
        fdask.minimize_batch(fg, da.zeros(10), jac=True)
    with pytest.raises(ValueError, match=r"args\[0\] must have m = 10 rows"):
        fdask.minimize_batch(fg, X0_SMALL, args=(np.zeros((9, 2)), 1.0), jac=True)
    with pytest.raises(ValueError, match=r"lr must .* shape \(m,\) = \(10,\)"):
        fdask.minimize_batch(fg, X0_SMALL, args=(0.0, 1.0), jac=True,
                             options={"lr": da.ones(9)})
    with pytest.raises(ValueError, match="lr: every learning rate"):
        fdask.minimize_batch(fg, X0_SMALL, args=(0.0, 1.0), jac=True,
                             options={"lr": -np.ones(10)})
    with pytest.raises(ValueError, match=r"bounds \(problem 0, variable 0\) has min 1.0 >"):
        fdask.minimize_batch(fg, X0_SMALL, args=(0.0, 1.0), jac=True,
                             bounds=Bounds(np.ones((10, 2)), np.zeros((10, 2))))
    with pytest.raises(ValueError, match=r"bounds\.(lb|ub) must have shape"):
        fdask.minimize_batch(fg, X0_SMALL, args=(0.0, 1.0), jac=True,
                             bounds=Bounds(0.0, da.ones((10, 3))))
    with pytest.raises(ValueError, match="progress"):
        fdask.minimize_batch(fg, X0_SMALL, args=(0.0, 1.0), jac=True,
                             options={"progress": True})
    with pytest.raises(ValueError, match="jac"):
        fdask.minimize_batch(fg, X0_SMALL, args=(0.0, 1.0))
    with pytest.raises(ValueError, match="maxiter"):
        fdask.minimize_batch(fg, X0_SMALL, args=(0.0, 1.0), jac=True, options={"maxiter": -1})
    with pytest.raises(ValueError, match="args"):  # a C objective takes no args
        fdask.minimize_batch(fdask.lowlevel(fastopt.problems.rosenbrock_lowlevel), X0_SMALL,
                             args=(1.0,))
    with pytest.warns(Warning, match="no_such_option"):  # warned once, on the client
        fdask.minimize_batch(fg, X0_SMALL, args=(0.0, 1.0), jac=True,
                             options={"no_such_option": 1})


# ------------------------------------------------------------------------------------------
# Faults


def raising_fg(X, P, scale):
    raise LookupError(f"raised by fun in process {os.getpid()}")


def test_exception_in_fun_reaches_the_caller(client):
    lazy = fdask.minimize_batch(raising_fg, da.zeros((20, 2), chunks=10), args=(0.0, 1.0),
                                jac=True)
    with pytest.raises(LookupError, match="raised by fun in process") as info:
        lazy.compute()
    assert f"process {os.getpid()}" not in str(info.value)  # it ran on a worker


def test_killed_worker_loses_nothing(client):
    X = points(6 * 250)
    options = {"lr": 1e-3, "maxiter": 40000, "gtol": 0.0}  # ~0.2-1 s a chunk
    spec = fdask.lowlevel(fastopt.problems.rosenbrock_lowlevel)
    lazy = fdask.minimize_batch(spec, da.from_array(X, chunks=250), options=options)
    pids = client.run(os.getpid)
    futures = client.compute([lazy[f] for f in FIELDS])
    deadline = time.monotonic() + 60
    busy = []
    while not busy and time.monotonic() < deadline:
        busy = [w for w, tasks in client.processing().items()
                if any("fastopt-minimize_batch" in str(t) for t in tasks)]
        time.sleep(0.05)
    assert busy, "no task started"
    time.sleep(0.1)
    os.kill(pids[busy[0]], signal.SIGKILL)  # in the middle of its chunk
    values = client.gather(futures)
    expected = fastopt.minimize_batch(spec(), X, options=options)
    for field, value in zip(FIELDS, values):
        np.testing.assert_array_equal(value, expected[field], err_msg=field, strict=True)
    client.wait_for_workers(2, timeout=60)
    assert set(client.run(os.getpid).values()) != set(pids.values())  # a worker was replaced


# ------------------------------------------------------------------------------------------
# Imports


def test_fastopt_does_not_import_dask_and_fastopt_dask_says_what_to_install():
    code = ("import sys, fastopt\n"
            "assert 'dask' not in sys.modules and 'distributed' not in sys.modules\n"
            "sys.modules['dask'] = None  # as if dask were not installed\n"
            "try:\n"
            "    import fastopt.dask\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'pip install "fastopt[dask]"' in out.stdout


# ------------------------------------------------------------------------------------------
# The benchmark (python -m fastopt bench-loops --dask), small


def test_bench_loops_dask_prints_its_table(capsys):
    from fastopt._cli import main

    assert main(["bench-loops", "--dask", "--problems", "400", "--chunks", "100,400",
                 "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "in-process minimize_batch" in out and "dask, chunks of 100 " in out
    assert "cost of an empty task" in out and "every result bitwise the in-process one" in out


def test_bench_loops_dask_is_skipped_without_dask(capsys, monkeypatch):
    from fastopt._bench_dask import run

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    assert run(m=10, chunks=(5,), repeats=1) is None
    assert 'skipped: dask and distributed are not installed' in capsys.readouterr().out
