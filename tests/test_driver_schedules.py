"""options["lr_scheduler"] in fastopt.minimize, minimize_batch and minimize_minibatch.

* The Python path (a Python objective, the Python scheduler stepped after each update) gives
  what a hand-written loop with the optimizer class and the scheduler gives.
* The C path (a C objective: the C schedule inside the C loop, without the GIL) gives what the
  Python path gives, bit for bit (the schedules' rates are bitwise the Python ones).
* minimize_batch gives each problem what fastopt.minimize gives it alone, also with a schedule
  per problem (ReduceLROnPlateau on each problem's f, per-problem learning rates).
"""

import numpy as np
import pytest

import fastopt
from fastopt import lr_scheduler as L
from fastopt._loop import LoopTrain
from fastopt._methods import METHODS

MAXITER = 200
X0 = np.array([-1.2, 1.0, 0.5, -0.3])


def rosen_twin(x):
    """Python twin of fastopt._objectives.rosenbrock (problems.rosenbrock_lowlevel), in the
    same order of operations: the C and Python paths see the same numbers."""
    x = np.asarray(x, dtype=np.float64)
    f, g = 0.0, np.zeros_like(x)
    for i in range(x.size - 1):
        a = x[i + 1] - x[i] * x[i]
        b = 1.0 - x[i]
        f += 100.0 * a * a + b * b
        g[i] += -400.0 * x[i] * a - 2.0 * b
        g[i + 1] += 200.0 * a
    return f, g


def rosen_twin_rows(X):
    out = [rosen_twin(x) for x in X]
    return np.array([f for f, _ in out]), np.array([g for _, g in out])


@pytest.fixture(scope="module")
def rosen_llc():
    return fastopt.problems.rosenbrock_lowlevel()


# Every scheduler that runs in C, with settings that change the rate within MAXITER steps.
C_SCHEDULERS = {
    "StepLR": lambda o: L.StepLR(o, step_size=30, gamma=0.5),
    "MultiStepLR": lambda o: L.MultiStepLR(o, milestones=[20, 50, 120], gamma=0.3),
    "ConstantLR": lambda o: L.ConstantLR(o, factor=0.25, total_iters=40),
    "LinearLR": lambda o: L.LinearLR(o, start_factor=0.1, total_iters=60),
    "ExponentialLR": lambda o: L.ExponentialLR(o, gamma=0.99),
    "PolynomialLR": lambda o: L.PolynomialLR(o, total_iters=150, power=2.0),
    "CosineAnnealingLR": lambda o: L.CosineAnnealingLR(o, T_max=70, eta_min=1e-5),
    "CosineAnnealingWarmRestarts": lambda o: L.CosineAnnealingWarmRestarts(o, T_0=25, T_mult=2),
    "CyclicLR": lambda o: L.CyclicLR(o, base_lr=o.param_groups[0]["lr"] / 10,
                                     max_lr=o.param_groups[0]["lr"], step_size_up=15),
    "OneCycleLR": lambda o: L.OneCycleLR(o, max_lr=2 * o.param_groups[0]["lr"],
                                         total_steps=MAXITER),
    "SequentialLR": lambda o: L.SequentialLR(
        o, [L.LinearLR(o, start_factor=0.2, total_iters=20),
            L.CosineAnnealingLR(o, T_max=MAXITER - 20)], milestones=[20]),
    "ChainedScheduler": lambda o: L.ChainedScheduler(
        [L.ExponentialLR(o, gamma=0.995), L.StepLR(o, step_size=40, gamma=0.5)]),
    "ReduceLROnPlateau": lambda o: L.ReduceLROnPlateau(o, factor=0.5, patience=3,
                                                       threshold=0.05),
}
PYTHON_SCHEDULERS = {
    "LambdaLR": lambda o: L.LambdaLR(o, lambda k: 1.0 / (1.0 + 0.05 * k)),
    "MultiplicativeLR": lambda o: L.MultiplicativeLR(o, lambda k: 0.99),
}
ALL = {**C_SCHEDULERS, **PYTHON_SCHEDULERS}

# A momentum method, an Adam (whose beta1 OneCycleLR/CyclicLR cycle) and the running-scalar
# rule (NAdam), with rates that keep Rosenbrock finite.
METHOD_HYPER = {
    "sgd": {"lr": 2e-4, "momentum": 0.9},
    "adam": {"lr": 1e-2},
    "nadam": {"lr": 1e-2},
    "rmsprop": {"lr": 1e-3, "momentum": 0.5},
}


def hand_loop(method, hyper, factory, x0, steps):
    """The loop a user writes: f, g at x; opt.step(g); sched.step() (ReduceLROnPlateau with
    that f)."""
    x = np.array(x0, dtype=np.float64)
    opt = METHODS[method](x, **hyper)
    sched = factory(opt)
    plateau = isinstance(sched, L.ReduceLROnPlateau)
    f, g = rosen_twin(x)
    for _ in range(steps):
        opt.step(g)
        if plateau:
            sched.step(f)
        else:
            sched.step()
        f, g = rosen_twin(x)
    return x


def run(fun, method, hyper, factory, x0=X0, **extra):
    options = dict(hyper, maxiter=MAXITER, gtol=0.0, lr_scheduler=factory, **extra)
    jac = True if callable(fun) else None
    return fastopt.minimize(fun, x0, method=method, jac=jac, options=options)


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("method", sorted(METHOD_HYPER))
def test_python_path_equals_the_hand_written_loop(method, name):
    hyper, factory = METHOD_HYPER[method], ALL[name]
    res = run(rosen_twin, method, hyper, factory)
    expected = hand_loop(method, hyper, factory, X0, MAXITER)
    assert res.nit == MAXITER and np.all(np.isfinite(res.x))
    if method in ("sgd", "rmsprop"):
        np.testing.assert_array_equal(res.x, expected)
    else:
        # The loop's bias corrections are running products of the betas, the class's pow()
        # (fastopt.minimize's Notes): a few ulps apart per step, and bitwise equal once a
        # schedule cycles beta1 (the loop then takes pow() too).
        np.testing.assert_allclose(res.x, expected, rtol=1e-11, atol=0)
    # the schedule did something: not the constant-rate run
    plain = fastopt.minimize(rosen_twin, X0, method=method, jac=True,
                             options=dict(hyper, maxiter=MAXITER, gtol=0.0))
    assert not np.array_equal(res.x, plain.x)


@pytest.mark.parametrize("name", ["OneCycleLR", "CyclicLR"])
def test_cycled_beta1_gives_the_class_trajectory_bitwise(name):
    # Adam's bias corrections with a cycled beta1 are 1 - beta1_t ** t, as torch and the
    # class compute them, not a running product of the changing betas.
    hyper = {"lr": 1e-2}
    factory = ALL[name]
    res = run(rosen_twin, "adam", hyper, factory)
    np.testing.assert_array_equal(res.x, hand_loop("adam", hyper, factory, X0, MAXITER))


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("method", sorted(METHOD_HYPER))
def test_c_path_equals_python_path_bitwise(rosen_llc, method, name):
    hyper, factory = METHOD_HYPER[method], ALL[name]
    python = run(rosen_twin, method, hyper, factory)
    native = run(rosen_llc, method, hyper, factory)
    np.testing.assert_array_equal(native.x, python.x)
    np.testing.assert_array_equal(native.jac, python.jac)
    assert (native.fun, native.nit, native.nfev) == (python.fun, python.nit, python.nfev)


def test_c_path_float32(rosen_llc):
    llc32 = fastopt.problems.rosenbrock_lowlevel("float32")
    factory = C_SCHEDULERS["OneCycleLR"]
    options = dict(lr=1e-2, maxiter=MAXITER, gtol=0.0, lr_scheduler=factory)
    a = fastopt.minimize(llc32, X0, method="adam", options=options)
    b = fastopt.minimize(llc32, X0, method="adam", options=options,
                         callback=lambda xk: None)  # the loop with the GIL: stepped there
    assert b.nit == MAXITER
    assert a.x.dtype == np.float32
    np.testing.assert_array_equal(a.x, b.x)


def test_builtin_schedulers_run_in_c_and_lambda_takes_the_gil():
    x = X0.copy()
    for name, factory in ALL.items():
        opt = fastopt.SGD(x, lr=1e-3, momentum=0.9)
        train = LoopTrain(opt, factory(opt), True, None, 1, MAXITER)
        assert train.in_c == (name in C_SCHEDULERS), name
        assert train.needs_python == (name in PYTHON_SCHEDULERS), name


@pytest.mark.parametrize("method", ["sgd", "adam"])
def test_schedule_and_stopping_rules(rosen_llc, method):
    # gtol, ftol and bounds stop or shape the run the same way on both paths
    hyper, factory = METHOD_HYPER[method], C_SCHEDULERS["CosineAnnealingLR"]
    options = dict(hyper, maxiter=5000, gtol=1e-3, ftol=1e-12, lr_scheduler=factory)
    bounds = [(-1.0, 0.9)] * X0.size
    a = fastopt.minimize(rosen_twin, X0, method=method, jac=True, bounds=bounds,
                         options=options)
    b = fastopt.minimize(rosen_llc, X0, method=method, bounds=bounds, options=options)
    np.testing.assert_array_equal(a.x, b.x)
    assert (a.nit, a.status, a.message) == (b.nit, b.status, b.message)


def test_one_cycle_past_its_total_steps_raises_on_both_paths(rosen_llc):
    factory = lambda o: L.OneCycleLR(o, max_lr=0.01, total_steps=50)  # noqa: E731
    for fun in (rosen_twin, rosen_llc):
        with pytest.raises(ValueError):
            run(fun, "adam", {"lr": 1e-2}, factory)


# ---------------------------------------------------------------------------------------------
# minimize_batch

X0_ROWS = np.array([[-1.2, 1.0, 0.5, -0.3], [0.3, -0.5, 1.5, 0.2], [1.1, 1.2, 0.9, 0.8],
                    [0.0, 0.0, 0.0, 0.0]])


def batch_options(hyper, factory, **extra):
    return dict(hyper, maxiter=MAXITER, gtol=1e-4, lr_scheduler=factory, **extra)


@pytest.mark.parametrize("name", sorted(C_SCHEDULERS) + ["LambdaLR"])
@pytest.mark.parametrize("method", ["sgd", "adam"])
def test_batch_problems_get_what_minimize_gives_them(rosen_llc, method, name):
    hyper, factory = METHOD_HYPER[method], ALL[name]
    options = batch_options(hyper, factory)
    python = fastopt.minimize_batch(rosen_twin_rows, X0_ROWS, method=method, jac=True,
                                    options=options)
    native = fastopt.minimize_batch(rosen_llc, X0_ROWS, method=method, options=options)
    for i, x0 in enumerate(X0_ROWS):
        alone = fastopt.minimize(rosen_twin, x0, method=method, jac=True, options=options)
        for res in (python, native):
            np.testing.assert_array_equal(res.x[i], alone.x)
            assert (res.nit[i], res.status[i]) == (alone.nit, alone.status)


@pytest.mark.parametrize("name", ["ReduceLROnPlateau", "OneCycleLR", "CosineAnnealingLR"])
def test_batch_per_problem_learning_rates_and_schedules(rosen_llc, name):
    # an lr array: each problem's schedule starts from its own rate (factory once per
    # problem); ReduceLROnPlateau follows each problem's own f
    factory = C_SCHEDULERS[name]
    lrs = np.array([1e-2, 5e-3, 2e-2, 1e-3])
    options = batch_options({"lr": lrs}, factory)
    python = fastopt.minimize_batch(rosen_twin_rows, X0_ROWS, method="adam", jac=True,
                                    options=options)
    native = fastopt.minimize_batch(rosen_llc, X0_ROWS, method="adam", options=options)
    for i, x0 in enumerate(X0_ROWS):
        alone = fastopt.minimize(rosen_twin, x0, method="adam", jac=True,
                                 options=dict(options, lr=lrs[i]))
        np.testing.assert_array_equal(python.x[i], alone.x)
        np.testing.assert_array_equal(native.x[i], alone.x)


def test_batch_many_problems_threads_and_early_stops(rosen_llc):
    # more problems than a chunk (128), on two threads, stopping at different iterations
    rng = np.random.default_rng(3)
    X0s = rng.uniform(-1.5, 1.5, (300, 3))
    for name in ("ReduceLROnPlateau", "OneCycleLR"):
        options = dict(lr=1e-2, maxiter=MAXITER, gtol=2.0, lr_scheduler=C_SCHEDULERS[name],
                       n_threads=2)
        native = fastopt.minimize_batch(rosen_llc, X0s, method="adam", options=options)
        python = fastopt.minimize_batch(rosen_twin_rows, X0s, method="adam", jac=True,
                                        options=options)
        np.testing.assert_array_equal(native.x, python.x)
        np.testing.assert_array_equal(native.nit, python.nit)
        assert len(set(native.nit.tolist())) > 1
        for i in (0, 150, 299):
            alone = fastopt.minimize(rosen_twin, X0s[i], method="adam", jac=True,
                                     options=options)
            np.testing.assert_array_equal(native.x[i], alone.x)


def test_batch_python_scheduler_with_per_problem_rates_is_refused():
    options = batch_options({"lr": np.array([1e-2, 1e-3, 1e-2, 1e-3])},
                            PYTHON_SCHEDULERS["LambdaLR"])
    with pytest.raises(TypeError, match="LambdaLR"):
        fastopt.minimize_batch(rosen_twin_rows, X0_ROWS, method="adam", jac=True,
                               options=options)


# ---------------------------------------------------------------------------------------------
# minimize_minibatch

def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 3))
    return X, X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(100)


def loss_and_grad(w, Xb, yb):
    r = Xb @ w - yb
    return 0.5 * np.mean(r ** 2), Xb.T @ r / len(yb)


@pytest.mark.parametrize("interval", ["epoch", "step"])
@pytest.mark.parametrize("name", ["StepLR", "ReduceLROnPlateau", "LambdaLR", "OneCycleLR"])
def test_minibatch_equals_the_hand_written_loop(interval, name):
    X, y = _data()
    batch_size, epochs, seed = 16, 6, 5
    steps = epochs * -(-len(X) // batch_size)
    factories = dict(ALL, OneCycleLR=lambda o: L.OneCycleLR(o, max_lr=0.2, total_steps=steps))
    factory = factories[name]
    res = fastopt.minimize_minibatch(
        loss_and_grad, np.zeros(3), data=(X, y), method="sgd", batch_size=batch_size,
        epochs=epochs, seed=seed,
        options={"lr": 0.05, "momentum": 0.5, "lr_scheduler": factory,
                 "lr_scheduler_interval": interval})
    # by hand
    w = np.zeros(3)
    opt = fastopt.SGD(w, lr=0.05, momentum=0.5)
    sched = factory(opt)
    plateau = isinstance(sched, L.ReduceLROnPlateau)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(X))
        total = 0.0
        for start in range(0, len(X), batch_size):
            rows = order[start:start + batch_size]
            f, g = loss_and_grad(w, X[rows], y[rows])
            opt.step(g)
            total += f * len(rows)
            if interval == "step":
                sched.step(f) if plateau else sched.step()
        if interval == "epoch":
            sched.step(total / len(X)) if plateau else sched.step()
    np.testing.assert_array_equal(res.x, w)


# ---------------------------------------------------------------------------------------------
# Bad input: refused before fun is called, naming the option

def _never_called(*a):
    raise AssertionError("fun must not be called")


@pytest.mark.parametrize("driver", ["minimize", "batch", "minibatch"])
def test_bad_scheduler_options(driver):
    def call(**options):
        if driver == "minimize":
            return fastopt.minimize(_never_called, X0, jac=True, options=options)
        if driver == "batch":
            return fastopt.minimize_batch(_never_called, X0_ROWS, jac=True, options=options)
        return fastopt.minimize_minibatch(_never_called, np.zeros(3), data=np.zeros((5, 3)),
                                          options=options)

    with pytest.raises(TypeError, match="lr_scheduler"):
        call(lr_scheduler=0.5)
    with pytest.raises(TypeError, match="lr_scheduler"):
        call(lr_scheduler=lambda opt: 0.5)  # not a scheduler
    other = fastopt.SGD(np.zeros(2), lr=0.1)
    with pytest.raises(ValueError, match="lr_scheduler"):
        call(lr_scheduler=lambda opt: L.StepLR(other, 5))  # another optimizer's
    if driver == "minibatch":
        with pytest.raises(ValueError, match="lr_scheduler_interval"):
            call(lr_scheduler_interval="batch")
