"""Drivers under faults (exceptions, KeyboardInterrupt), reference leaks, memory of the batch and
C-level paths, and fastopt beside torch's own OpenMP runtime in one process."""

import gc
import os
import subprocess
import sys

import numpy as np
import pytest

import fastopt

OPTIONS = {"lr": 0.1, "maxiter": 50}


def quadratic(x):
    return float(x @ x), 2 * x


def quadratic_rows(X):
    return np.sum(X * X, axis=1), 2 * X


def failing_after(n_calls, exc, fun):
    calls = []

    def wrapper(*args):
        calls.append(1)
        if len(calls) == n_calls:
            raise exc
        return fun(*args)

    return wrapper


# ---------------------------------------------------------------------------------------------
# Exceptions propagate, inputs stay untouched, the next run is correct


def _drivers():
    X = np.random.default_rng(0).standard_normal((64, 3))
    y = X @ np.array([1.0, -2.0, 0.5])

    def loss(w, Xb, yb):
        r = Xb @ w - yb
        return 0.5 * float(r @ r) / len(yb), Xb.T @ r / len(yb)

    return {
        "minimize": (lambda fun, x0, **kw: fastopt.minimize(fun, x0, jac=True, options=OPTIONS,
                                                            **kw), quadratic, np.ones(3)),
        "minimize_minibatch": (lambda fun, x0, **kw: fastopt.minimize_minibatch(
            fun, x0, data=(X, y), batch_size=8, epochs=3, seed=0, options={"lr": 0.1}, **kw),
            loss, np.zeros(3)),
        "minimize_batch": (lambda fun, x0, **kw: fastopt.minimize_batch(
            fun, x0, jac=True, options=OPTIONS, **kw), quadratic_rows, np.ones((4, 3))),
    }


@pytest.mark.parametrize("driver", ["minimize", "minimize_minibatch", "minimize_batch"])
@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_exception_in_fun_propagates_and_the_next_run_is_correct(driver, exc):
    run, fun, x0 = _drivers()[driver]
    start = x0.copy()
    with pytest.raises(type(exc)):
        run(failing_after(5, exc, fun), x0)
    np.testing.assert_array_equal(x0, start)
    again = run(fun, x0)
    fresh = run(fun, start.copy())
    np.testing.assert_array_equal(again.x, fresh.x)


@pytest.mark.parametrize("driver", ["minimize", "minimize_minibatch"])
@pytest.mark.parametrize("exc", [ValueError("in callback"), KeyboardInterrupt()])
def test_exception_in_callback_propagates(driver, exc):
    run, fun, x0 = _drivers()[driver]
    start = x0.copy()

    def callback(intermediate_result):
        raise exc

    with pytest.raises(type(exc)):
        run(fun, x0, callback=callback)
    np.testing.assert_array_equal(x0, start)


def test_exception_in_separate_jac_propagates():
    x0 = np.ones(3)
    with pytest.raises(ZeroDivisionError):
        fastopt.minimize(lambda x: float(x @ x), x0, jac=failing_after(3, ZeroDivisionError(),
                                                                        lambda x: 2 * x))
    with pytest.raises(ZeroDivisionError):
        fastopt.minimize_batch(lambda X: np.sum(X * X, axis=1), x0[None],
                               jac=failing_after(3, ZeroDivisionError(), lambda X: 2 * X))
    np.testing.assert_array_equal(x0, 1.0)


def test_callback_exception_with_a_c_objective():
    rosen = fastopt.problems.rosenbrock_lowlevel()
    x0 = np.array([-1.2, 1.0])

    def callback(intermediate_result):
        if intermediate_result.nit == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fastopt.minimize(rosen, x0, callback=callback)
    np.testing.assert_array_equal(x0, [-1.2, 1.0])
    assert fastopt.minimize(rosen, x0, options={"maxiter": 3}).nit == 3


# ---------------------------------------------------------------------------------------------
# No reference leaks: what the user passes in is not kept


def _refcounts(objects):
    gc.collect()
    return [sys.getrefcount(o) for o in objects]


def test_step_keeps_no_references():
    params = [np.zeros(10), np.zeros(3, np.float32)]
    grads = [np.ones(10), np.ones(3, np.float32)]
    opt = fastopt.Adam(params)
    opt.step(grads)
    watched = params + grads + [grads]
    before = _refcounts(watched)
    for _ in range(10_000):
        opt.step(grads)
    assert _refcounts(watched) == before


@pytest.mark.parametrize("kind", ["python", "lowlevel", "batch", "batch_lowlevel", "minibatch"])
def test_drivers_keep_no_references(kind):
    rosen = fastopt.problems.rosenbrock_lowlevel()
    x0 = np.array([-1.2, 1.0])
    X0 = np.tile(x0, (5, 1))
    data = (np.ones((8, 2)), np.ones(8))
    extra = np.ones(2)
    per_problem = np.ones((5, 1))

    def fg(x, a):
        return float(x @ x), 2 * x

    def rows(X, a):
        return np.sum(X * X, axis=1), 2 * X

    def loss(w, Xb, yb):
        return float(w @ w), 2 * w

    def callback(intermediate_result):
        pass

    runs = {
        "python": lambda: fastopt.minimize(fg, x0, args=(extra,), jac=True, callback=callback,
                                           options={"maxiter": 5}),
        "lowlevel": lambda: fastopt.minimize(rosen, x0, callback=callback,
                                             options={"maxiter": 5}),
        "batch": lambda: fastopt.minimize_batch(rows, X0, jac=True, args=(per_problem,),
                                                options={"maxiter": 5}),
        "batch_lowlevel": lambda: fastopt.minimize_batch(rosen, X0, options={"maxiter": 5}),
        "minibatch": lambda: fastopt.minimize_minibatch(loss, x0, data=data, batch_size=3,
                                                        callback=callback),
    }
    watched = [x0, X0, extra, per_problem, rosen, fg, rows, loss, callback, data[0], data[1]]
    runs[kind]()
    before = _refcounts(watched)
    for _ in range(300):
        runs[kind]()
    assert _refcounts(watched) == before
    # And nothing accumulates in the interpreter (results are dropped each time).
    gc.collect()
    objects = len(gc.get_objects())
    for _ in range(300):
        runs[kind]()
    gc.collect()
    assert len(gc.get_objects()) - objects < 50


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/statm")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer's quarantine holds freed memory")
def test_rss_flat_over_many_c_level_and_batch_calls():
    import resource

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()

    rosen = fastopt.problems.rosenbrock_lowlevel()
    X0 = np.tile([-1.2, 1.0], (100, 1))

    def calls(k):
        for _ in range(k):
            fastopt.minimize(rosen, [-1.2, 1.0], options={"maxiter": 20})
            fastopt.minimize_batch(rosen, X0, options={"maxiter": 20})
            fastopt.minimize_batch(quadratic_rows, X0, jac=True, options={"maxiter": 20})

    calls(200)
    gc.collect()
    before = rss()
    calls(3000)
    gc.collect()
    assert rss() - before < 1_000_000


# ---------------------------------------------------------------------------------------------
# torch ships its own OpenMP runtime: both orders of import work in one process

STEP_BOTH = """
import sys
import numpy as np
first = sys.argv[1]
if first == "torch":
    import torch
    import fastopt
else:
    import fastopt
    import torch
torch.set_num_threads(2)
x = np.zeros(2**17)
fastopt.Adam(x, n_threads=2).step(np.ones(2**17))       # fastopt's OpenMP threads
t = torch.zeros(2**17, requires_grad=True)
opt = torch.optim.Adam([t], lr=1e-3)
t.grad = torch.ones(2**17)
opt.step()                                              # torch's
ref = np.zeros(2**17)
fastopt.Adam(ref, n_threads=2).step(np.ones(2**17))     # fastopt's again, after torch's
assert np.allclose(t.detach().numpy(), x) and np.array_equal(ref, x)
print("ok")
"""


@pytest.mark.parametrize("first", ["torch", "fastopt"])
def test_fastopt_and_torch_in_one_process(first):
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "-c", STEP_BOTH, first], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
