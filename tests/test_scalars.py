"""Running per-step scalars of the kernels (RuleStep.scalars: NAdam's mu_product), through
every path: the classes (each parameter's own, in its state, advanced in place; state dicts,
pickles and assignment checked), the minimize loop and both batch loops (the clock carries
them; per-problem learning rates give each problem its own). Every optimizer whose kernel
declares running scalars is covered (tests/_registry.scalar_names)."""

import pickle

import numpy as np
import pytest

import fastopt
from _registry import OPTIMIZERS, all_state_kwargs, scalar_names
from conftest import gradient_sequence
from fastopt import _step
from fastopt._registry import RECORDS

SCALAR_CASES = [pytest.param(case, id=case.name) for case in OPTIMIZERS
                if scalar_names(case.cls)]
SCALAR_METHODS = [record.method for record in RECORDS if scalar_names(record.cls)]


def test_nadam_declares_mu_product():
    assert _step.kernel_spec("nadam")[2] == (("mu_product", 1.0),)
    assert "nadam" in SCALAR_METHODS


def _snapshot(opt):
    state = [{k: v.tobytes() for k, v in s.items()} for s in opt.state]
    return opt.step_count, state, [p.tobytes() for p in opt.params]


@pytest.mark.parametrize("case", SCALAR_CASES)
def test_each_parameter_keeps_its_own_scalars_as_the_reference_does(case, rng):
    # Bitwise: the advance is the reference's arithmetic, in double, once per step.
    shapes = [(3,), (2, 2), ()]
    params = [rng.standard_normal(s) for s in shapes]
    opt = case.cls(params, **all_state_kwargs(case))
    hyper = opt.hyperparameters
    ref_states = [{} for _ in shapes]
    arrays = None
    for t in range(1, 8):
        grads = [rng.standard_normal(s) for s in shapes]
        opt.step(grads)
        for state, g, p in zip(ref_states, grads, params):
            case.reference(p.copy(), g, state, t, **hyper)
        for i, state in enumerate(ref_states):
            for name in scalar_names(case.cls):
                value = opt.state[i][name]
                assert value.dtype == np.float64 and value.shape == ()
                assert value[()] == state[name], (name, i, t)
        # updated in place: the same arrays at every step
        now = [opt.state[i][name] for i in range(3) for name in scalar_names(case.cls)]
        assert arrays is None or all(a is b for a, b in zip(arrays, now))
        arrays = now
    saved = opt.state_dict()
    for i in range(3):
        for name in scalar_names(case.cls):
            value = saved[f"{name}.{i}"]
            assert isinstance(value, np.ndarray) and value.shape == ()
            assert value == opt.state[i][name] and not np.shares_memory(value,
                                                                         opt.state[i][name])


def _one_parameter(saved, i):
    """The state dict of parameter ``i`` of ``saved`` alone (an optimizer of one array)."""
    return {(k.rsplit(".", 1)[0] + ".0" if "." in k else k): v for k, v in saved.items()
            if "." not in k or k.endswith(f".{i}")}


@pytest.mark.parametrize("case", SCALAR_CASES)
def test_an_assigned_scalar_is_the_one_advanced_and_only_for_its_parameter(case, rng):
    kwargs = all_state_kwargs(case)
    params = [rng.standard_normal(4), rng.standard_normal(4)]
    opt = case.cls(params, **kwargs)
    opt.step([rng.standard_normal(4), rng.standard_normal(4)])
    name = scalar_names(case.cls)[0]
    saved = opt.state_dict()
    new = np.array(0.25)
    opt.state[1][name] = new
    assert opt.state[1][name] is new
    # each parameter alone, from its state (parameter 1: with the new value)
    alone = [p.copy() for p in params]
    twins = [case.cls(p, **kwargs) for p in alone]
    twins[0].load_state_dict(_one_parameter(saved, 0))
    twins[1].load_state_dict(dict(_one_parameter(saved, 1), **{f"{name}.0": 0.25}))
    grads = [rng.standard_normal(4), rng.standard_normal(4)]
    opt.step(grads)
    for twin, g in zip(twins, grads):
        twin.step(g)
    np.testing.assert_array_equal(params[0], alone[0])
    np.testing.assert_array_equal(params[1], alone[1])
    assert new == twins[1].state[0][name] and new != 0.25  # advanced in place
    assert opt.state[0][name] == twins[0].state[0][name] != new


@pytest.mark.parametrize("case", SCALAR_CASES)
def test_bad_scalar_assignment_raises_and_changes_nothing(case):
    params = [np.linspace(0, 1, 4), np.linspace(1, 2, 4)]
    opt = case.cls(params, **all_state_kwargs(case))
    opt.step([np.ones(4), np.ones(4)])
    read_only = np.array(0.5)
    read_only.flags.writeable = False
    for name in scalar_names(case.cls):
        for value, error, match in [
            (0.5, TypeError, "must be a numpy.ndarray"),
            (np.float64(0.5), TypeError, "must be a numpy.ndarray"),
            (np.array(0.5, np.float32), TypeError, "has dtype float32"),
            (np.array(0.5, ">f8"), TypeError, "has dtype >f8"),
            (np.array([0.5]), ValueError, r"has shape \(1,\)"),
            (np.zeros(4), ValueError, r"has shape \(4,\)"),
            (np.array(np.nan), ValueError, "must be finite"),
            (np.array(np.inf), ValueError, "must be finite"),
            (read_only, ValueError, "writeable"),
            (opt.state[1][name], ValueError, "shares memory with another state array"),
        ]:
            before = _snapshot(opt)
            with pytest.raises(error, match=match):
                opt.state[0][name] = value
            with pytest.raises(error, match=match):
                opt.state[0] = dict(opt.state[0], **{name: value})
            assert _snapshot(opt) == before, (name, value)
    opt.step([np.ones(4), np.ones(4)])  # and it still steps


@pytest.mark.parametrize("case", SCALAR_CASES)
@pytest.mark.parametrize("change", ["dtype", "read-only", "replaced"])
def test_scalar_changed_in_place_is_refused_before_anything_is_written(case, change):
    params = [np.linspace(-1, 1, 4), np.linspace(1, 2, 6)]
    opt = case.cls(params, **all_state_kwargs(case))
    grads = [np.full(4, 0.5), np.full(6, 0.5)]
    opt.step(grads)
    for name in scalar_names(case.cls):
        clone = case.cls([p.copy() for p in params], **all_state_kwargs(case))
        clone.load_state_dict(opt.state_dict())
        value = clone.state[1][name]
        raw = [a.reshape(-1).view(np.uint8) for a in
               clone.params + [a for s in clone.state for a in s.values()]]
        before = [r.tobytes() for r in raw]
        if change == "dtype":
            value.dtype = np.int64  # (same itemsize: NumPy allows it on a 0-d array)
            match = "int64"
        elif change == "read-only":
            value.flags.writeable = False
            match = "writeable False"
        else:  # behind the guarded mapping's back
            clone._state[1][name] = 0.5
            clone._set_state(clone.step_count, clone._state)
            match = "got a float"
        with pytest.raises(TypeError, match=rf"state\[1\]\['{name}'\] must stay .*{match}"):
            clone.step(grads)
        assert [r.tobytes() for r in raw] == before
        assert clone.step_count == opt.step_count


@pytest.mark.parametrize("case", SCALAR_CASES)
def test_state_dicts_and_pickles_with_bad_scalars_are_refused(case):
    params = np.linspace(0, 1, 4)
    opt = case.cls(params, **all_state_kwargs(case))
    opt.step(np.ones(4))
    good = opt.state_dict()
    for name in scalar_names(case.cls):
        key = f"{name}.0"
        # numbers, NumPy numbers and 0-d arrays of real dtype are taken (numpy.load's)
        for value in (0.5, 1, np.float32(0.5), np.array(0.5), np.array(2, np.int64)):
            opt.load_state_dict(dict(good, **{key: value}))
            assert opt.state[0][name].dtype == np.float64
            assert opt.state[0][name] == float(value)
        opt.load_state_dict(good)
        for value, error, match in [
            (True, TypeError, "real number"), ("0.5", TypeError, "real number"),
            (None, TypeError, "real number"), (np.array([0.5]), TypeError, "real number"),
            (np.zeros(4), TypeError, "real number"), (0.5j, TypeError, "real number"),
            (float("nan"), ValueError, "finite"), (np.array(np.inf), ValueError, "finite"),
        ]:
            before = _snapshot(opt)
            with pytest.raises(error, match=rf"state_dict\['{key}'\] must be .*{match}"):
                opt.load_state_dict(dict(good, **{key: value}))
            assert _snapshot(opt) == before
            state = opt.__getstate__()
            state["_state"] = [dict(state["_state"][0], **{name: value})]
            with pytest.raises(error, match=rf"pickled state\['{name}'\] must be .*{match}"):
                pickle.loads(pickle.dumps(opt)).__setstate__(state)
        missing = {k: v for k, v in good.items() if k != key}
        with pytest.raises(ValueError, match=f"missing.*{key}"):
            opt.load_state_dict(missing)


def test_rule_step_without_its_scalars_is_an_error_not_a_crash():
    params = np.zeros(3)
    opt = fastopt.NAdam(params)
    opt.step(np.ones(3))
    for scalars in (None, [], [()], [(np.array(1.0), np.array(1.0))]):
        with pytest.raises((ValueError, TypeError)):
            opt._rule.step(np.ones(3), opt._layout, None, opt._slots, 1, 1, scalars)
    np.testing.assert_array_equal(opt.state[0]["mu_product"], opt.state_dict()["mu_product.0"])


# -- the loops -----------------------------------------------------------------------------

D = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
C = np.array([1.0, -2.0, 0.5, 3.0, -1.0])  # a convex quadratic 0.5 (x - C)' D (x - C)


def _quadratic(x):
    return 0.5 * float(np.sum(D * (x - C) ** 2)), D * (x - C)


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.method)
def test_minimize_loop_makes_the_steps_the_class_makes(record):
    # The loop's clock (running products, and the running scalars advanced by
    # rule_step_next) against the class's (pow, each parameter's scalars): the same
    # iterates up to rounding. Without the loop advancing the scalars, NAdam's would stay at
    # their initial value (mu_product 1: a division by zero).
    options = dict(record.options["quadratic"])
    steps = 40
    res = fastopt.minimize(_quadratic, np.zeros(5), method=record.method, jac=True,
                           options=dict(options, maxiter=steps, gtol=0.0))
    assert res.nit == steps
    x = np.zeros(5)
    opt = record.cls(x, **options)
    for _ in range(steps):
        opt.step(_quadratic(x)[1])
    if hasattr(opt, "eval"):  # (schedule-free: minimize returns the averaged point)
        opt.eval()
    np.testing.assert_allclose(res.x, x, rtol=1e-10, atol=1e-12)


def _rows_rosen(X):
    """Vectorised 2-D Rosenbrock, in the C function's order of operations (row by row)."""
    x0, x1 = X[:, 0], X[:, 1]
    with np.errstate(over="ignore", invalid="ignore"):
        a = x1 - x0 * x0
        b = 1.0 - x0
        G = np.empty_like(X)
        G[:, 0] = -400.0 * x0 * a - 2.0 * b
        G[:, 1] = 200.0 * a
        return 100.0 * a * a + b * b, G


def _rosen_one(x):
    f, G = _rows_rosen(np.asarray(x)[None, :])
    return f[0], G[0]


@pytest.mark.parametrize("method", SCALAR_METHODS)
@pytest.mark.parametrize("lrs", [False, True])
def test_batches_are_each_problem_alone(method, lrs):
    # Python and C objectives, one and two threads; per-problem learning rates give each
    # row its own scalars (packed with the rows as problems stop).
    starts = np.random.default_rng(3).uniform(-2.0, 2.0, (20, 2))
    lr = np.linspace(1e-2, 5e-2, len(starts)) if lrs else 5e-2
    options = {"lr": lr, "maxiter": 600, "gtol": 0.5}
    rosen = fastopt.problems.rosenbrock_lowlevel()
    singles = [fastopt.minimize(_rosen_one, x0, method=method, jac=True,
                                options=dict(options, lr=lr[i] if lrs else lr))
               for i, x0 in enumerate(starts)]
    assert len({r.nit for r in singles}) > 1  # problems stop at different iterations
    for fun, jac, threads in ((rosen, None, 1), (rosen, None, 2), (_rows_rosen, True, 1)):
        batch = fastopt.minimize_batch(fun, starts, method=method, jac=jac,
                                       options=dict(options, n_threads=threads))
        for i, alone in enumerate(singles):
            assert (batch.nit[i], batch.status[i]) == (alone.nit, alone.status)
            np.testing.assert_array_equal(batch.x[i], alone.x)


def test_reference_float32_keeps_scalars_in_float64(rng):
    # The scalars are doubles whatever the parameters' dtype (torch: its default dtype).
    params = rng.standard_normal(6).astype(np.float32)
    opt = fastopt.NAdam(params)
    for g in gradient_sequence(rng, 6, np.float32)[:3]:
        opt.step(g)
    assert opt.state[0]["mu_product"].dtype == np.float64
