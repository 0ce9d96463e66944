"""The flush-to-zero mode (``flush_subnormals``): flushed results, nothing else changed.

With the mode on, fastopt's update reads subnormal inputs as zero and flushes subnormal
results to zero (x86-64 MXCSR FTZ|DAZ; src_c/fastopt_fpenv.h): the expected values come from
NumPy references that apply the kernels' operations one by one, flushing every input and
result. With it off, results are the IEEE ones (the same references without flushing). The
calling thread's control register, and every OpenMP thread's, is what it was after every
call: after step(), minimize, minimize_batch, an error raised inside a loop and
KeyboardInterrupt.
"""

import doctest
import math
import pickle
import signal
import threading
import _thread

import numpy as np
import pytest
import scipy.optimize

import fastopt
from fastopt import _fpenv, _kernels
from fastopt._openmp import openmp_enabled
from fastopt.problems import rosenbrock_lowlevel

pytestmark = pytest.mark.skipif(not _fpenv.flush_supported(),
                                reason="no flush-to-zero control on this platform")

FLUSH_BITS = 0x8040  # MXCSR FTZ | DAZ (x86-64); the tests below read MXCSR
STATUS_BITS = 0x3F  # MXCSR's sticky exception flags: arithmetic sets them, nothing else
x86 = pytest.mark.skipif(_fpenv._control_register() & 0x1F80 != 0x1F80,
                         reason="reads x86-64 MXCSR")
DTYPES = [np.float32, np.float64]
TWO_THREADS = pytest.mark.skipif(not openmp_enabled(), reason="serial build")


@pytest.fixture(params=_kernels.available_isas())
def isa(request):
    previous = _kernels._set_isa(request.param)
    yield request.param
    _kernels._set_isa(previous)


@pytest.fixture(autouse=True)
def register_kept():
    """Every test leaves this thread's control register as it found it (status flags aside)."""
    before = _fpenv._control_register()
    yield
    assert _fpenv._control_register() & ~STATUS_BITS == before & ~STATUS_BITS


# ---------------------------------------------------------------------------------------------
# NumPy references: the kernels' operations in their order, in the array's dtype


def _ftz(x):
    """Subnormal values to zero of the same sign (DAZ on inputs, FTZ on results)."""
    x = np.asarray(x)
    return np.where(np.abs(x) < np.finfo(x.dtype).tiny, np.copysign(np.zeros_like(x), x), x)


def _ieee(x):
    return np.asarray(x)


def adam_reference(p, g, m, v, t, lr, beta1, beta2, eps, flush):
    """(params, exp_avg, exp_avg_sq) after fastopt's Adam update (amsgrad, weight decay and
    maximize off), every input and result flushed when ``flush``."""
    f = _ftz if flush else _ieee
    dt = p.dtype.type
    bc2 = math.sqrt(1.0 - beta2**t)  # the kernel's coefficients, in double
    step_size, eps_c = lr / (1.0 - beta1**t) * bc2, eps * bc2
    g = f(dt(1.0) * f(g))
    p = f(f(p) * dt(1.0))
    m = f(f(f(m) * dt(beta1)) + f(dt(1.0 - beta1) * g))
    v = f(f(f(v) * dt(beta2)) + f(f(dt(1.0 - beta2) * g) * g))
    p = f(p - f(f(dt(step_size) * m) / f(f(np.sqrt(v)) + dt(eps_c))))
    return p, m, v


def sgd_reference(p, g, lr, flush):
    """params after fastopt's plain SGD update."""
    f = _ftz if flush else _ieee
    dt = p.dtype.type
    return f(f(p) - f(dt(lr) * f(dt(1.0) * f(g))))


def _adam_case(dtype, n=64):
    """Parameters, gradient and state of one Adam step with subnormal values in each."""
    tiny = np.finfo(dtype).tiny
    rng = np.random.default_rng(0)
    p = rng.uniform(-1, 1, n).astype(dtype)
    p[::5] = (tiny * rng.uniform(0.01, 0.99, p[::5].size)).astype(dtype)  # subnormal
    g = (tiny * rng.uniform(-0.99, 0.99, n)).astype(dtype)  # subnormal gradients
    g[::3] = rng.uniform(-1e-3, 1e-3, g[::3].size).astype(dtype)
    g[::7] = 0
    m = (tiny * rng.uniform(-0.99, 0.99, n)).astype(dtype)
    v = (tiny * rng.uniform(0.0, 0.99, n)).astype(dtype)
    v[::4] = rng.uniform(0, 1e-6, v[::4].size).astype(dtype)
    return p, g, m, v


def _adam_step(dtype, n, flush, t=3, n_threads=1, **kwargs):
    """Run Adam's step t on _adam_case's arrays; returns (fastopt's p, m, v, the case)."""
    p0, g, m0, v0 = _adam_case(dtype, n)
    p = p0.copy()
    opt = fastopt.Adam(p, lr=0.01, n_threads=n_threads, **kwargs)
    state = {"step": t - 1, "lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8,
             "weight_decay": 0.0, "amsgrad": False, "maximize": False,
             "exp_avg.0": m0, "exp_avg_sq.0": v0}
    opt.load_state_dict(state)
    if flush == "context":
        with fastopt.flush_subnormals():
            opt.step(g)
    else:
        opt.step(g)
    s = opt.state[0]
    return p, s["exp_avg"], s["exp_avg_sq"], (p0, g, m0, v0)


# ---------------------------------------------------------------------------------------------
# Results


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how", ["argument", "context", "attribute"])
def test_adam_step_with_subnormal_state_gives_the_flushed_result(dtype, how, isa):
    kwargs = {"flush_subnormals": True} if how == "argument" else {}
    if how == "attribute":
        p0, g, m0, v0 = _adam_case(dtype, 64)
        p = p0.copy()
        opt = fastopt.Adam(p, lr=0.01)
        opt.flush_subnormals = True
        opt.load_state_dict({"step": 2, "lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8,
                             "weight_decay": 0.0, "amsgrad": False, "maximize": False,
                             "exp_avg.0": m0, "exp_avg_sq.0": v0})
        opt.step(g)
        m, v = opt.state[0]["exp_avg"], opt.state[0]["exp_avg_sq"]
    else:
        p, m, v, (p0, g, m0, v0) = _adam_step(dtype, 64, how, **kwargs)
    want = adam_reference(p0, g, m0, v0, 3, 0.01, 0.9, 0.999, 1e-8, flush=True)
    for got, expected in zip((p, m, v), want):
        np.testing.assert_array_equal(got, expected)
    assert not np.any((v != 0) & (np.abs(v) < np.finfo(dtype).tiny))  # no subnormal left
    # ... and that is not what IEEE arithmetic gives (so the test can fail)
    ieee = adam_reference(p0, g, m0, v0, 3, 0.01, 0.9, 0.999, 1e-8, flush=False)
    assert not np.array_equal(ieee[2], v)


@pytest.mark.parametrize("dtype", DTYPES)
def test_off_results_are_ieee_bitwise(dtype, isa):
    p, m, v, (p0, g, m0, v0) = _adam_step(dtype, 64, False)
    want = adam_reference(p0, g, m0, v0, 3, 0.01, 0.9, 0.999, 1e-8, flush=False)
    for got, expected in zip((p, m, v), want):
        np.testing.assert_array_equal(got, expected)
    # flush_subnormals=False explicitly is the default
    q, m2, v2, _ = _adam_step(dtype, 64, False, flush_subnormals=False)
    for a, b in ((p, q), (m, m2), (v, v2)):
        np.testing.assert_array_equal(a, b)
    assert np.any((v != 0) & (np.abs(v) < np.finfo(dtype).tiny))  # subnormals kept


@TWO_THREADS
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_openmp_thread_flushes_and_is_restored(dtype, isa):
    n = 2 * _kernels.get_parallel_threshold() + 4  # one chunk per thread
    workers = _fpenv._worker_registers(2)
    p, m, v, (p0, g, m0, v0) = _adam_step(dtype, n, True, n_threads=2, flush_subnormals=True)
    want = adam_reference(p0, g, m0, v0, 3, 0.01, 0.9, 0.999, 1e-8, flush=True)
    for got, expected in zip((p, m, v), want):
        np.testing.assert_array_equal(got, expected)  # both halves: both threads flushed
    after = _fpenv._worker_registers(2)
    assert all(int(r) & FLUSH_BITS == 0 for r in after), [hex(r) for r in after]
    assert [int(r) & ~STATUS_BITS for r in after] == [int(r) & ~STATUS_BITS for r in workers]


@TWO_THREADS
def test_many_small_arrays_shared_among_threads_flush():
    # Small arrays of a list are shared out whole among the threads (_step.pyx's prange).
    dtype, k = np.float64, 64
    n = _kernels.get_parallel_threshold() // k + 1
    cases = [_adam_case(dtype, n) for _ in range(k)]
    params = [c[0].copy() for c in cases]
    opt = fastopt.Adam(params, lr=0.01, n_threads=2, flush_subnormals=True)
    state = {"step": 2, "lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
             "amsgrad": False, "maximize": False}
    for i, c in enumerate(cases):
        state[f"exp_avg.{i}"], state[f"exp_avg_sq.{i}"] = c[2], c[3]
    opt.load_state_dict(state)
    opt.step([c[1] for c in cases])
    for i, c in enumerate(cases):
        want = adam_reference(*c, 3, 0.01, 0.9, 0.999, 1e-8, flush=True)
        np.testing.assert_array_equal(params[i], want[0])
    assert all(int(r) & FLUSH_BITS == 0 for r in _fpenv._worker_registers(2))


@x86
@TWO_THREADS
def test_threads_follow_the_callers_own_mode():
    # A caller that set FTZ/DAZ itself (torch.set_flush_denormal, a -ffast-math library):
    # fastopt's threads compute as the calling thread does, so the thread count cannot
    # change the result; the caller's register is left as it was, the threads' too.
    n = 2 * _kernels.get_parallel_threshold() + 4
    saved = _fpenv._control_register()
    _fpenv._set_control_register(saved | FLUSH_BITS)
    try:
        p, m, v, (p0, g, m0, v0) = _adam_step(np.float64, n, False, n_threads=2)
        assert _fpenv._control_register() & FLUSH_BITS == FLUSH_BITS
    finally:
        _fpenv._set_control_register(saved)
    want = adam_reference(p0, g, m0, v0, 3, 0.01, 0.9, 0.999, 1e-8, flush=True)
    np.testing.assert_array_equal(p, want[0])
    assert all(int(r) & FLUSH_BITS == 0 for r in _fpenv._worker_registers(2))


def _subnormal(a):
    return (a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny)


@pytest.mark.parametrize("flush", [True, False])
def test_adafactor_and_parameter_groups(flush):
    # Adafactor has a step of its own (Python, calling its kernels); groups run one rule each.
    tiny = np.finfo(np.float64).tiny
    p = np.full(8, 0.5 * tiny)
    fastopt.Adafactor(p, lr=0.01, flush_subnormals=flush).step(np.zeros(8))
    assert _subnormal(p).any() != flush
    p = np.full(8, 0.5 * tiny)
    opt = fastopt.SGD([{"params": [p[:4]]}, {"params": [p[4:]], "lr": 0.5}], lr=0.5,
                      flush_subnormals=flush)
    opt.step([np.zeros(4), np.zeros(4)])
    np.testing.assert_array_equal(p, np.zeros(8) if flush else np.full(8, 0.5 * tiny))


# ---------------------------------------------------------------------------------------------
# The caller's register


@x86
def test_step_restores_the_callers_register_exactly():
    p = np.full(16, 1e-310)
    opt = fastopt.SGD(p, lr=0.1, flush_subnormals=True)
    saved = _fpenv._control_register()
    custom = (saved & ~STATUS_BITS) | 0x01  # a status flag of our own: kept exactly
    _fpenv._set_control_register(custom)
    try:
        opt.step(np.zeros(16))
        assert _fpenv._control_register() == custom
        with pytest.raises(ValueError):
            opt.step(np.zeros(3))  # a bad gradient: raises inside the flushed call
        assert _fpenv._control_register() == custom
    finally:
        _fpenv._set_control_register(saved)
    np.testing.assert_array_equal(p, np.zeros(16))


def _sgd_fun(x):
    return 0.0, np.full_like(x, 1e-300 if x.dtype == np.float64 else 1e-30)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how", ["option", "context", "off"])
def test_minimize_flushes_the_update(dtype, how):
    # x - lr * g with lr * g subnormal: flushed to 0 (x kept), or subtracted (IEEE)
    x0 = np.full(3, 2e-308 if dtype == np.float64 else 2e-38, dtype)
    options = {"lr": 1e-10, "maxiter": 1, "gtol": 0.0}
    if how == "option":
        options["flush_subnormals"] = True
    seen = []

    def fun(x):
        seen.append(_fpenv._control_register() & FLUSH_BITS)  # fun runs in the caller's mode
        return _sgd_fun(x)

    if how == "context":
        with fastopt.flush_subnormals():
            res = fastopt.minimize(fun, x0, method="sgd", jac=True, options=options)
    else:
        res = fastopt.minimize(fun, x0, method="sgd", jac=True, options=options)
    assert res.nit == 1 and seen == [0, 0]
    want = sgd_reference(x0, _sgd_fun(x0)[1], 1e-10, flush=how != "off")
    np.testing.assert_array_equal(res.x, want)
    assert np.array_equal(res.x, x0) == (how != "off" and dtype == np.float32)


def test_scipy_method_takes_the_option():
    x0 = np.full(3, 2e-308)
    res = scipy.optimize.minimize(_sgd_fun, x0, method=fastopt.sgd, jac=True,
                                  options={"lr": 1e-10, "maxiter": 1, "gtol": 0.0,
                                           "flush_subnormals": True})
    np.testing.assert_array_equal(res.x, sgd_reference(x0, _sgd_fun(x0)[1], 1e-10, True))


@x86
def test_registers_restored_after_errors_in_loops():
    saved = _fpenv._control_register()
    x0 = np.full(3, 2e-308)

    def callback(x):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        fastopt.minimize(_sgd_fun, x0, method="sgd", jac=True, callback=callback,
                         options={"lr": 1e-10, "maxiter": 5, "gtol": 0.0,
                                  "flush_subnormals": True})
    assert _fpenv._control_register() & ~STATUS_BITS == saved & ~STATUS_BITS

    def bad_fun(x):
        if bad_fun.calls == 2:
            raise ValueError("bad objective")
        bad_fun.calls += 1
        return _sgd_fun(x)

    bad_fun.calls = 0
    with pytest.raises(ValueError, match="bad objective"):
        fastopt.minimize(bad_fun, x0, method="adam", jac=True,
                         options={"maxiter": 5, "gtol": 0.0, "flush_subnormals": True})
    assert _fpenv._control_register() & ~STATUS_BITS == saved & ~STATUS_BITS
    # minimize_batch with a C objective and a callback raising
    with pytest.raises(RuntimeError, match="stop here"):
        fastopt.minimize_batch(rosenbrock_lowlevel(), np.zeros((4, 2)),
                               callback=lambda r: callback(None),
                               options={"maxiter": 5, "flush_subnormals": True})
    assert _fpenv._control_register() & ~STATUS_BITS == saved & ~STATUS_BITS


NEVER = dict(maxiter=10**12, gtol=0, ftol=0, xtol=0, lr=1e-20)


@x86
@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="KeyboardInterrupt goes to the main thread")
@pytest.mark.parametrize("which", ["minimize", "minimize_batch"])
def test_keyboard_interrupt_restores_every_register(which):
    saved = _fpenv._control_register()
    workers = _fpenv._worker_registers(2)
    llc = rosenbrock_lowlevel()
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            if which == "minimize":
                fastopt.minimize(llc, np.resize([-1.2, 1.0], 200),
                                 options={**NEVER, "flush_subnormals": True})
            else:
                fastopt.minimize_batch(llc, np.tile([-1.2, 1.0], (1000, 1)),
                                       options={**NEVER, "flush_subnormals": True,
                                                "n_threads": 2})
    finally:
        timer.cancel()
    assert _fpenv._control_register() & ~STATUS_BITS == saved & ~STATUS_BITS
    after = _fpenv._worker_registers(2)
    assert [int(r) & ~STATUS_BITS for r in after] == [int(r) & ~STATUS_BITS for r in workers]



class _Seen(Exception):
    pass


@x86
@pytest.mark.skipif(threading.current_thread() is not threading.main_thread()
                    or not hasattr(signal, "SIGUSR1"),
                    reason="signal handlers run on the main thread; POSIX signal")
@pytest.mark.parametrize("which", ["minimize", "batch 1 thread", "batch 2 threads", "block",
                                   "block 2 threads"])
def test_signal_handlers_run_in_the_callers_mode(which):
    # A signal handler is the user's Python code: it runs with the caller's register, not
    # with the flush bits the loop set (it saw 1e-309 flushed to 0.0).
    seen = []

    def handler(signum, frame):
        seen.append(float(np.float64(1e-308) / np.float64(10.0)))
        raise _Seen()

    previous = signal.signal(signal.SIGUSR1, handler)
    timer = threading.Timer(0.1, signal.raise_signal, (signal.SIGUSR1,))
    timer.start()
    options = {**NEVER, "flush_subnormals": True}
    try:
        with pytest.raises(_Seen):
            if which == "minimize":
                fastopt.minimize(rosenbrock_lowlevel(), np.array([-1.2, 1.0]), options=options)
            else:
                llc = (fastopt.problems.rosenbrock_block_lowlevel() if "block" in which
                       else rosenbrock_lowlevel())
                options["n_threads"] = 2 if "2" in which else 1
                fastopt.minimize_batch(llc, np.tile([-1.2, 1.0], (1000, 1)), options=options)
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)
    assert seen == [1e-309]

@pytest.mark.parametrize("dtype", DTYPES)
def test_minimize_batch_python_and_c_objectives(dtype):
    X0 = np.full((5, 3), 2e-308 if dtype == np.float64 else 2e-38, dtype)

    def fg(X):
        return np.zeros(len(X)), np.full_like(X, _sgd_fun(X[0])[1][0])

    for flush in (True, False):
        res = fastopt.minimize_batch(fg, X0, method="sgd", jac=True,
                                     options={"lr": 1e-10, "maxiter": 1, "gtol": 0.0,
                                              "flush_subnormals": flush})
        np.testing.assert_array_equal(res.x, sgd_reference(X0, fg(X0)[1], 1e-10, flush))
    # A C objective over several threads: each thread flushes, the result does not depend on
    # the thread count, and the pool's threads keep their own mode.
    llc = rosenbrock_lowlevel(np.dtype(dtype).name)
    X1 = np.tile(np.array([-1.2, 1.0], dtype), (600, 1))
    runs = [fastopt.minimize_batch(llc, X1, method="adam",
                                   options={"maxiter": 50, "n_threads": k,
                                            "flush_subnormals": True}).x for k in (1, 2)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert all(int(r) & FLUSH_BITS == 0 for r in _fpenv._worker_registers(2))


def test_minimize_minibatch_flushes_the_steps():
    x0 = np.full(3, 2e-308)
    data = np.zeros((4, 1))
    for flush in (True, False):
        res = fastopt.minimize_minibatch(lambda x, batch: _sgd_fun(x), x0, data, method="sgd",
                                         batch_size=4, epochs=1,
                                         options={"lr": 1e-10, "flush_subnormals": flush})
        np.testing.assert_array_equal(res.x, sgd_reference(x0, _sgd_fun(x0)[1], 1e-10, flush))


def test_the_context_is_thread_local_and_nests():
    results = {}

    def other():  # another thread: not in the block
        p = np.full(4, 1e-310)
        fastopt.SGD(p, lr=0.1).step(np.zeros(4))
        results["other"] = p.copy()

    with fastopt.flush_subnormals():
        with fastopt.flush_subnormals():
            pass  # leaving an inner block keeps the outer one
        t = threading.Thread(target=other)
        t.start()
        t.join()
        p = np.full(4, 1e-310)
        fastopt.SGD(p, lr=0.1).step(np.zeros(4))
        assert _fpenv.flush_requested()
    assert not _fpenv.flush_requested()
    np.testing.assert_array_equal(p, np.zeros(4))
    np.testing.assert_array_equal(results["other"], np.full(4, 1e-310))
    assert "flush_subnormals" in fastopt.__all__


# ---------------------------------------------------------------------------------------------
# The setting: pickles, state dicts, bad input


def test_pickled_not_in_state_dict():
    p = np.ones(3)
    opt = fastopt.Adam(p, flush_subnormals=True)
    assert pickle.loads(pickle.dumps(opt)).flush_subnormals is True
    assert pickle.loads(pickle.dumps(fastopt.Adam(p))).flush_subnormals is False
    assert "flush_subnormals" not in opt.state_dict()
    other = fastopt.Adam(np.ones(3))
    other.load_state_dict(opt.state_dict())
    assert other.flush_subnormals is False
    state = opt.__getstate__()
    del state["_flush_subnormals"]  # a pickle made before the setting existed
    fresh = fastopt.Adam(np.ones(3), flush_subnormals=True)
    fresh.__setstate__(state)
    assert fresh.flush_subnormals is False
    state["_flush_subnormals"] = "yes"
    with pytest.raises(TypeError, match="_flush_subnormals"):
        fresh.__setstate__(state)


@pytest.mark.parametrize("value", [1, 0, "yes", None, 1.0])
def test_bad_values_are_refused(value):
    p = np.ones(3)
    with pytest.raises(TypeError, match="flush_subnormals"):
        fastopt.Adam(p, flush_subnormals=value)
    opt = fastopt.Adam(p, flush_subnormals=True)
    with pytest.raises(TypeError, match="flush_subnormals"):
        opt.flush_subnormals = value
    assert opt.flush_subnormals is True
    fun = lambda x: (float(x @ x), 2 * x)  # noqa: E731
    options = {"flush_subnormals": value, "maxiter": 1}
    with pytest.raises(TypeError, match="flush_subnormals"):
        fastopt.minimize(fun, p, jac=True, options=options)
    with pytest.raises(TypeError, match="flush_subnormals"):
        scipy.optimize.minimize(fun, p, method=fastopt.adam, jac=True, options=options)
    with pytest.raises(TypeError, match="flush_subnormals"):
        fastopt.minimize_batch(lambda X: (np.sum(X * X, 1), 2 * X), np.ones((2, 3)),
                               jac=True, options=options)
    with pytest.raises(TypeError, match="flush_subnormals"):
        fastopt.minimize_minibatch(lambda x, b: fun(x), p, np.zeros((4, 1)),
                                   options=options)
    np.testing.assert_array_equal(p, np.ones(3))  # nothing modified


def test_numpy_bools_are_accepted():
    opt = fastopt.Adam(np.ones(3), flush_subnormals=np.bool_(True))
    assert opt.flush_subnormals is True
    res = fastopt.minimize(lambda x: (float(x @ x), 2 * x), np.ones(2), jac=True,
                           options={"maxiter": 1, "flush_subnormals": np.array(True)})
    assert res.nit == 1


def test_the_context_managers_docstring_example_runs():
    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(fastopt.flush_subnormals, "flush_subnormals",
                                             globs={}):
        runner.run(test)
    assert runner.failures == 0 and runner.tries > 0
