"""Hardening of the optimizer classes (issue 11): parameters and state arrays changed in place
after construction (A1), tampered pickles (A1), n_threads bounds (A2), assignment into
``opt.state`` (A6), hyperparameters set as attributes (A7), state dicts the C code cannot hold
(A8), and numbers as NumPy users write them (B12)."""

import copy
import inspect
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastopt
from _registry import (
    OPTIMIZERS,
    SQUARES,
    all_state_kwargs,
    bad_kwarg_cases,
    scalar_names,
    state_arrays,
)
from fastopt._openmp import MAX_N_THREADS, effective_n_threads

CASES = [pytest.param(case, id=case.name) for case in OPTIMIZERS]


def _raw(arrays):
    """uint8 views of the arrays' memory, made now: they see every later write whatever
    happens to the arrays' dtype, shape or strides."""
    return [a.reshape(-1).view(np.uint8) if a.flags.c_contiguous else a for a in arrays]


def _snapshot(opt, raw):
    state = [{k: v.tobytes() for k, v in s.items()} for s in opt.state]
    return opt.step_count, opt.hyperparameters, state, [r.tobytes() for r in raw]


# -- A1: parameters changed in place after construction ----------------------------------------


def _set_attr(name, value):
    def change(array):
        setattr(array, name, value)
    return change


def _read_only(array):
    array.flags.writeable = False


def _param_changes():
    """(description, change(p) on a (4, 4) float64 parameter, error, match)."""
    set_attr, read_only = _set_attr, _read_only
    return [
        ("dtype float16", set_attr("dtype", np.float16), TypeError, "has dtype float16"),
        ("dtype float32", set_attr("dtype", np.float32), TypeError, "has dtype float32"),
        ("dtype int64", set_attr("dtype", np.int64), TypeError, "has dtype int64"),
        ("byte order", set_attr("dtype", np.dtype(">f8")), TypeError, "has dtype >f8 now"),
        ("shape", set_attr("shape", (2, 8)), ValueError, r"has shape \(2, 8\) now"),
        ("flat", set_attr("shape", (16,)), ValueError, r"has shape \(16,\) now"),
        ("strides", set_attr("strides", (8, 32)), ValueError, "is no longer C-contiguous"),
        ("read-only", read_only, ValueError, "is no longer writeable"),
    ]


@pytest.mark.filterwarnings("ignore:Setting the strides:DeprecationWarning")
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("steps_before", [0, 2])
@pytest.mark.parametrize("single", [True, False])
def test_param_changed_in_place_raises_and_writes_nothing(case, steps_before, single):
    for description, change, error, match in _param_changes():
        params = [np.linspace(-1, 1, 16).reshape(4, 4), np.linspace(1, 2, 3)]
        if single:
            params = params[:1]
        opt = case.cls(params[0] if single else params, **all_state_kwargs(case))
        grads = [np.full_like(p, 0.5) for p in params]
        for _ in range(steps_before):
            opt.step(grads[0] if single else grads)
        raw = _raw(params + [a for s in opt.state for a in s.values()])
        before = _snapshot(opt, raw)
        change(params[0])
        name = "params" if single else r"params\[0\]"
        with pytest.raises(error, match=f"{name} {match}"):
            opt.step(grads[0] if single else grads)
        assert _snapshot(opt, raw) == before, description


@pytest.mark.parametrize("case", CASES)
def test_param_reshaped_with_matching_grad_gives_a_message_about_the_param(case):
    params = np.zeros(6)
    opt = case.cls(params, lr=0.1)
    opt.step(np.ones(6))
    params.shape = (2, 3)
    with pytest.raises(ValueError, match=r"params has shape \(2, 3\) now.*\(6,\)"):
        opt.step(np.ones((2, 3)))  # the gradient matches the parameter's *new* shape
    params.dtype = np.float32  # (2, 6) float32 now: 12 elements in the same 48 bytes
    with pytest.raises(TypeError, match="params has dtype float32 now"):
        opt.step(np.ones((2, 6), np.float32))


@pytest.mark.parametrize("case", CASES)
def test_state_array_changed_in_place_raises_and_writes_nothing(case):
    params = [np.linspace(-1, 1, 4), np.linspace(1, 2, 6)]
    opt = case.cls(params, **all_state_kwargs(case))
    grads = [np.full(4, 0.5), np.full(6, 0.5)]
    opt.step(grads)
    for name in state_arrays(opt, 1):  # (running scalars: tests/test_scalars.py)
        for change, error, match in [
            (_set_attr("dtype", np.float32), TypeError, "has dtype float32 now"),
            (_set_attr("dtype", np.float16), TypeError, "has dtype float16 now"),
            (_set_attr("dtype", np.dtype(">f8")), TypeError, "has dtype >f8 now"),
            (_set_attr("shape", (2, 3)), ValueError, r"has shape \(2, 3\) now"),
            (_read_only, ValueError, "is no longer writeable"),
        ]:
            clone = case.cls([p.copy() for p in params], **all_state_kwargs(case))
            clone.load_state_dict(opt.state_dict())
            array = clone.state[1][name]
            raw = _raw(clone.params + [a for s in clone.state for a in s.values()])
            before = _snapshot(clone, raw)
            change(array)
            with pytest.raises(error, match=rf"state\[1\]\['{name}'\] {match}"):
                clone.step(grads)
            assert _snapshot(clone, raw) == before


@pytest.mark.filterwarnings("ignore:Setting the strides:DeprecationWarning")
def test_state_array_strides_changed_in_place_raises():
    params = np.zeros((4, 4))
    opt = fastopt.Adam(params, lr=0.1)
    opt.step(np.ones((4, 4)))
    opt.state[0]["exp_avg"].strides = (8, 32)
    with pytest.raises(ValueError, match=r"state\[0\]\['exp_avg'\] is no longer C-contiguous"):
        opt.step(np.ones((4, 4)))


def test_param_changed_while_the_gradients_are_read_is_caught():
    # A list subclass runs Python code when indexed: the parameters are checked again after.
    params = [np.ones(4), np.ones(3)]
    opt = fastopt.Adam(params, lr=0.1)
    opt.step([np.ones(4), np.ones(3)])
    raw = _raw(params + list(opt.state[0].values()) + list(opt.state[1].values()))
    before = _snapshot(opt, raw)

    class Sneaky(list):
        def __getitem__(self, index):
            params[0].dtype = np.float16
            return list.__getitem__(self, index)

    with pytest.raises(TypeError, match=r"params\[0\] has dtype float16 now"):
        opt.step(Sneaky([np.ones(4), np.ones(3)]))
    assert _snapshot(opt, raw) == before


def test_dtype_change_that_grows_the_array_cannot_write_past_its_end():
    # The failure that corrupted the heap before: float64 -> float16 makes the array look 4x
    # longer. Run in a subprocess so that a regression shows as a crash, not a broken run.
    code = textwrap.dedent("""
        import numpy as np, fastopt
        for cls in (fastopt.SGD, fastopt.Adam, fastopt.RMSprop, fastopt.Adagrad,
                    fastopt.Adadelta):
            for size in (10, 100_000):
                p = np.ones(size)
                opt = cls(p, lr=0.1)
                opt.step(np.ones(size))
                p.dtype = np.float16
                for _ in range(3):
                    try:
                        opt.step(np.ones(4 * size, np.float16))
                    except TypeError:
                        pass
                    else:
                        raise SystemExit("no error")
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# -- A1: tampered pickles -----------------------------------------------------------------------


class _Tampered:
    """Pickles as an optimizer of class ``cls`` with the given (tampered) state."""

    def __init__(self, cls, state):
        self.cls, self.state = cls, state

    def __reduce__(self):
        return _new_optimizer, (self.cls,), self.state


def _new_optimizer(cls):
    return cls.__new__(cls)


def _tamperings(good):
    p = good["_params"][0]
    state0 = good["_state"][0]
    name = next(iter(state0))
    square = next((k for k in state0 if k in SQUARES), None)

    def with_state(**arrays):
        return dict(good, _state=[dict(state0, **arrays)])

    bad = [
        ("params float16", dict(good, _params=[p.astype(np.float16)]), TypeError, "dtype"),
        ("params strided", dict(good, _params=[np.zeros(8)[::2]]), ValueError, "C-contiguous"),
        ("params read-only", dict(good, _params=[np.frombuffer(b"\0" * 32)]), ValueError,
         "writeable"),
        ("params not arrays", dict(good, _params=[[1.0] * 4]), TypeError, "numpy.ndarray"),
        ("two params, single", dict(good, _params=[p, p.copy()]), ValueError, "list of one"),
        ("step -1", dict(good, _step=-1), ValueError, "Invalid step"),
        ("step 2**63", dict(good, _step=2 ** 63), ValueError, "Invalid step"),
        ("step str", dict(good, _step="1"), TypeError, "Invalid step"),
        ("lr -1", dict(good, _hyper=dict(good["_hyper"], lr=-1.0)), ValueError,
         "Invalid learning rate"),
        ("unknown hyper", dict(good, _hyper=dict(good["_hyper"], bogus=1)), TypeError,
         "bogus"),
        ("n_threads", dict(good, _n_threads_spec=10 ** 6), ValueError, "n_threads"),
        ("missing key", {k: v for k, v in good.items() if k != "_step"}, ValueError,
         "missing"),
        ("state list length", dict(good, _state=good["_state"] * 2), ValueError, "list of 1"),
        ("state key missing", dict(good, _state=[{}]), ValueError, "keys"),
        ("state wrong shape", with_state(**{name: np.zeros(p.size + 5)}), ValueError,
         "has shape"),
        ("state wrong dtype", with_state(**{name: np.zeros(p.size, np.float32)}), TypeError,
         "has dtype float32"),
        ("state not array", with_state(**{name: [0.0] * p.size}), TypeError,
         "numpy.ndarray"),
    ]
    if square is not None:
        bad.append(("negative squares", with_state(**{square: -np.ones(p.size)}), ValueError,
                    "negative entries"))
    return bad


@pytest.mark.parametrize("case", CASES)
def test_tampered_pickle_raises(case):
    opt = case.cls(np.linspace(0, 1, 4), **all_state_kwargs(case))
    opt.step(np.ones(4))
    good = opt.__getstate__()
    clone = pickle.loads(pickle.dumps(_Tampered(case.cls, good)))
    assert clone.state_dict().keys() == opt.state_dict().keys()
    for description, bad, error, match in _tamperings(good):
        if description not in ("params strided", "params read-only"):  # (pickle copies them)
            data = pickle.dumps(_Tampered(case.cls, bad))
            with pytest.raises(error, match=match):
                pickle.loads(data)
        with pytest.raises(error, match=match):
            case.cls.__new__(case.cls).__setstate__(bad)


def test_pickled_state_is_private_even_if_the_pickle_aliases_it():
    params = np.zeros(4)
    opt = fastopt.Adam(params, lr=0.1)
    opt.step(np.ones(4))
    good = opt.__getstate__()
    shared = good["_params"][0]  # the pickle makes exp_avg the parameter itself
    clone = pickle.loads(pickle.dumps(_Tampered(
        fastopt.Adam, dict(good, _params=[shared], _state=[dict(good["_state"][0],
                                                                 exp_avg=shared)]))))
    assert not np.shares_memory(clone.params, clone.state[0]["exp_avg"])
    clone.step(np.ones(4))


# -- A2: n_threads --------------------------------------------------------------------------

BAD_N_THREADS = [100_000, 2 ** 40, -(2 ** 40), MAX_N_THREADS + 1, -MAX_N_THREADS - 1,
                 2 ** 63, np.int64(2 ** 40)]


@pytest.mark.parametrize("n_threads", BAD_N_THREADS, ids=str)
@pytest.mark.parametrize("case", CASES)
def test_too_many_threads_is_refused_by_every_class(case, n_threads):
    with pytest.raises(ValueError, match="n_threads=.* is out of range"):
        case.cls(np.zeros(3), n_threads=n_threads)


def _quadratic(x):
    return float(x @ x), 2 * x


@pytest.mark.parametrize("n_threads", BAD_N_THREADS, ids=str)
def test_too_many_threads_is_refused_by_every_driver(n_threads):
    with pytest.raises(ValueError, match="n_threads"):
        fastopt.minimize(_quadratic, np.ones(3), jac=True, options={"n_threads": n_threads})
    with pytest.raises(ValueError, match="n_threads"):
        fastopt.minimize_batch(lambda X: ((X ** 2).sum(1), 2 * X), np.ones((5, 3)), jac=True,
                               options={"n_threads": n_threads})
    with pytest.raises(ValueError, match="n_threads"):
        fastopt.minimize_minibatch(lambda w, Xb: (float(w @ w), 2 * w), np.ones(3),
                                   data=(np.ones((10, 3)),), options={"n_threads": n_threads})


def test_n_threads_bounds_and_integer_kinds():
    assert effective_n_threads(MAX_N_THREADS) == MAX_N_THREADS
    assert effective_n_threads(-MAX_N_THREADS) == 1  # all cores but 1023: at least one
    assert 1 <= effective_n_threads(None) <= MAX_N_THREADS
    assert effective_n_threads(np.array(2)) == effective_n_threads(2)
    assert effective_n_threads(np.uint8(2)) == effective_n_threads(2)
    for bad in (True, np.True_, 2.0, np.array(2.0), np.array([2]), "2"):
        with pytest.raises(TypeError, match="n_threads"):
            effective_n_threads(bad)


def test_too_many_threads_no_longer_kills_the_interpreter():
    code = textwrap.dedent("""
        import numpy as np, fastopt
        p = np.ones(100_000)
        try:
            fastopt.SGD(p, n_threads=100_000).step(np.ones_like(p))
        except ValueError as exc:
            print("ValueError", exc)
        try:
            fastopt.minimize_batch(lambda X: ((X ** 2).sum(1), 2 * X), np.ones((4000, 3)),
                                   jac=True, options={"n_threads": 100_000})
        except ValueError as exc:
            print("ValueError", exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("ValueError n_threads=100000") == 2


# -- A6: assignment into opt.state ----------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_assigned_state_array_is_used_by_the_kernels(case, rng):
    kwargs = all_state_kwargs(case)
    params = rng.standard_normal(5)
    opt = case.cls(params, **kwargs)
    opt.step(rng.standard_normal(5))
    for name in list(opt.state[0]):
        # non-negative: fits every slot; a 0-d float64 array for a running scalar
        new = np.array(np.abs(rng.standard_normal(() if name in scalar_names(case.cls)
                                                  else 5)))
        twin_params = params.copy()
        twin = case.cls(twin_params, **kwargs)
        saved = opt.state_dict()
        saved[f"{name}.0"] = new.copy()
        twin.load_state_dict(saved)
        opt.state[0][name] = new
        assert opt.state[0][name] is new
        np.testing.assert_array_equal(opt.state_dict()[f"{name}.0"], new)
        grad = rng.standard_normal(5)
        opt.step(grad)
        twin.step(grad)
        np.testing.assert_array_equal(params, twin_params)
        np.testing.assert_array_equal(new, twin.state[0][name])  # updated in place


@pytest.mark.parametrize("case", CASES)
def test_whole_state_entry_can_be_replaced(case, rng):
    kwargs = all_state_kwargs(case)
    params = [rng.standard_normal(3), rng.standard_normal(4)]
    opt = case.cls(params, **kwargs)
    opt.step([np.ones(3), np.ones(4)])
    new = {name: np.full(() if name in scalar_names(case.cls) else 4, 0.25)
           for name in opt.state[1]}
    opt.state[1] = new
    for name, array in new.items():
        assert opt.state[1][name] is array
    opt.step([np.ones(3), np.ones(4)])
    if new:
        assert not np.array_equal(next(iter(new.values())), np.full(4, 0.25))


def _bad_assignments(opt, name):
    param = opt.params[0]
    other = next((k for k in state_arrays(opt) if k != name), None)  # (not a scalar)
    strided = np.zeros(8)[::2]
    read_only = np.zeros(4)
    read_only.flags.writeable = False
    bad = [
        ("list", [0.0] * 4, TypeError, "must be a numpy.ndarray"),
        ("dtype", np.zeros(4, np.float32), TypeError, "has dtype float32"),
        ("big endian", np.zeros(4, ">f8"), TypeError, "has dtype"),
        ("shape", np.zeros(5), ValueError, "has shape"),
        ("same size, other shape", np.zeros((2, 2)), ValueError, "has shape"),
        ("strided", strided, ValueError, "C-contiguous"),
        ("read-only", read_only, ValueError, "writeable"),
        ("the parameter", param, ValueError, r"shares memory with params\[0\]"),
        ("another parameter's memory", opt.params[1][:4], ValueError,
         r"shares memory with params\[1\]"),
    ]
    if other is not None:
        bad.append(("another state array", opt.state[0][other], ValueError,
                    "shares memory with another state array"))
    if name in SQUARES:
        bad.append(("negative squares", -np.ones(4), ValueError, "negative entries"))
    return bad


@pytest.mark.parametrize("case", CASES)
def test_bad_state_assignment_raises_and_changes_nothing(case):
    params = [np.linspace(0, 1, 4), np.linspace(1, 2, 6)]
    opt = case.cls(params, **all_state_kwargs(case))
    opt.step([np.ones(4), np.ones(6)])
    for name in state_arrays(opt):  # (running scalars: tests/test_scalars.py)
        for description, value, error, match in _bad_assignments(opt, name):
            before = _snapshot(opt, params)
            with pytest.raises(error, match=match):
                opt.state[0][name] = value
            with pytest.raises(error, match=match):
                opt.state[0] = dict(opt.state[0], **{name: value})
            assert _snapshot(opt, params) == before, description
    before = _snapshot(opt, params)
    with pytest.raises(KeyError, match="no_such_state"):
        opt.state[0]["no_such_state"] = np.zeros(4)
    with pytest.raises(KeyError, match="exactly the keys"):
        opt.state[0] = {"no_such_state": np.zeros(4)}
    with pytest.raises(TypeError, match="dict of arrays"):
        opt.state[0] = [np.zeros(4)]
    for name in list(opt.state[0]):
        with pytest.raises(TypeError, match="cannot be deleted"):
            del opt.state[0][name]
        with pytest.raises(TypeError, match="cannot be deleted"):
            opt.state[0].pop(name)
    with pytest.raises(TypeError, match="cannot be deleted"):
        del opt.state[0]
    with pytest.raises(IndexError):
        opt.state[2] = {}
    with pytest.raises(AttributeError):
        opt.state = []
    assert _snapshot(opt, params) == before


@pytest.mark.parametrize("case", CASES)
def test_state_assignment_before_the_first_step_is_refused(case):
    params = np.zeros(4)
    opt = case.cls(params, **all_state_kwargs(case))
    assert len(opt.state) == 1 and dict(opt.state[0]) == {}
    name = case.cls._slot_names[0]
    with pytest.raises(ValueError, match="first step"):
        opt.state[0][name] = np.zeros(4)
    with pytest.raises(ValueError, match="first step"):
        opt.state[0] = {name: np.zeros(4)}
    assert dict(opt.state[0]) == {} and opt.step_count == 0
    opt.step(np.ones(4))
    assert opt.state_dict()["step"] == 1


# -- A7: hyperparameters as attributes ------------------------------------------------------


def _constructor_kwargs(case, hyper):
    parameters = inspect.signature(case.cls).parameters
    return {k: v for k, v in hyper.items() if k in parameters}


def _new_values(case):
    """{hyperparameter: a valid value other than the default} for ``case``."""
    values = {}
    for variant in case.variants:
        for name, value in variant.items():
            if value != case.defaults[name]:
                values.setdefault(name, value)
    for name, default in case.defaults.items():
        if name not in values:
            if isinstance(default, bool):
                if name not in case.cls.record.fixed:  # (NAG's nesterov, AdamW's decay)
                    values[name] = not default
            elif isinstance(default, tuple):
                values[name] = (0.5, 0.75)
            else:
                values[name] = default + 0.25 if name != "lr" else 0.05
    if case.cls in (fastopt.SGD, fastopt.Momentum) and values.get("nesterov"):
        values["nesterov"] = False  # needs zero dampening: tested as a cross-field rule
    if case.cls is fastopt.NAG:
        values["dampening"] = 0.0  # Nesterov momentum needs zero dampening
    return values


@pytest.mark.parametrize("case", CASES)
def test_every_hyperparameter_can_be_set_between_steps(case, rng):
    for name, value in _new_values(case).items():
        params = rng.standard_normal(5)
        opt = case.cls(params, lr=0.1)
        grads = [rng.standard_normal(5) for _ in range(4)]
        for g in grads[:2]:
            opt.step(g)
        setattr(opt, name, value)
        assert getattr(opt, name) == value == opt.hyperparameters[name]
        assert opt.state_dict()[name] == value
        # The same as an optimizer built with the value and given the state so far.
        twin_params = params.copy()
        twin = case.cls(twin_params, **_constructor_kwargs(case, opt.hyperparameters))
        twin.load_state_dict(opt.state_dict())
        for g in grads[2:]:
            opt.step(g)
            twin.step(g)
        np.testing.assert_array_equal(params, twin_params, err_msg=name)


def test_set_hyperparameters_change_the_update():
    # Each setter reaches the kernel: a zero step is no longer a zero step, and vice versa.
    p = np.ones(3)
    opt = fastopt.SGD(p, lr=0.1)
    opt.weight_decay = 10.0
    opt.step(np.zeros(3))
    np.testing.assert_allclose(p, 0.0)
    p = np.ones(3)
    opt = fastopt.Adam(p, lr=0.1)
    opt.maximize = True
    opt.step(np.ones(3))
    np.testing.assert_allclose(p, 1.1)
    p = np.ones(3)
    opt = fastopt.Adam(p, lr=0.1)
    opt.betas = (0.0, 0.0)
    opt.eps = 1.0
    opt.step(np.ones(3))
    np.testing.assert_allclose(p, 0.95)  # lr * g / (|g| + eps)


def _bad_setter_cases():
    """The registry's bad constructor kwargs that are all hyperparameters of the class
    (not n_threads, unknown options, or fixed ones: NAG's nesterov, AdamW's
    decoupled_weight_decay)."""
    return [
        param for param in bad_kwarg_cases()
        if all(name in param.values[0].defaults for name in param.values[1])
        and not any(name in param.values[0].cls.record.fixed for name in param.values[1])
    ]


@pytest.mark.parametrize("case, kwargs, error, match", _bad_setter_cases())
def test_bad_hyperparameter_set_as_attribute_raises_as_the_constructor(case, kwargs, error,
                                                                       match):
    params = np.linspace(0, 1, 3)
    opt = case.cls(params, lr=0.1, momentum=0.9) if "momentum" in case.defaults else \
        case.cls(params, lr=0.1)
    opt.step(np.ones(3))
    before = _snapshot(opt, [params])
    with pytest.raises(error, match=match):
        for name, value in kwargs.items():  # several: the last makes the combination invalid
            setattr(opt, name, value)
    if len(kwargs) == 1:
        assert _snapshot(opt, [params]) == before


def test_cross_field_rules_hold_for_setters():
    opt = fastopt.SGD(np.zeros(3), lr=0.1, momentum=0.9, nesterov=True)
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        opt.momentum = 0.0
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        opt.dampening = 0.5
    assert opt.hyperparameters["momentum"] == 0.9 and opt.dampening == 0.0
    nag = fastopt.NAG(np.zeros(3), lr=0.1)
    with pytest.raises(ValueError, match="NAG requires nesterov=True"):
        nag.nesterov = False
    assert nag.nesterov is True


@pytest.mark.parametrize("case", CASES)
def test_unknown_public_attributes_are_refused(case):
    opt = case.cls(np.zeros(3), lr=0.1)
    before = _snapshot(opt, [opt.params])
    for name in ("beta1", "weight_decy", "learning_rate", "momentum", "betas", "step",
                 "nesterov", "foo"):
        if name in case.defaults:
            continue
        with pytest.raises(AttributeError, match=rf"no hyperparameter '{name}'.*lr"):
            setattr(opt, name, 0.5)
    for name in case.defaults:
        if name != "lr":
            with pytest.raises(AttributeError, match="cannot delete"):
                delattr(opt, name)
    for name in ("params", "state", "hyperparameters", "step_count", "n_threads"):
        with pytest.raises(AttributeError):
            setattr(opt, name, None)
    assert _snapshot(opt, [opt.params]) == before
    opt._private_note = "fine"  # private attributes are not checked
    assert opt._private_note == "fine"
    assert set(case.defaults) <= set(dir(opt))


@pytest.mark.parametrize("case, name, value, slot", [
    (fastopt.SGD, "momentum", 0.9, "momentum_buffer"),
    (fastopt.Adam, "amsgrad", True, "max_exp_avg_sq"),
    (fastopt.AdamW, "amsgrad", True, "max_exp_avg_sq"),
    (fastopt.RMSprop, "centered", True, "grad_avg"),
    (fastopt.RMSprop, "momentum", 0.5, "momentum_buffer"),
])
def test_setting_that_needs_a_new_slot_makes_it_with_zeros(case, name, value, slot, rng):
    params = rng.standard_normal(4)
    opt = case(params, lr=0.1)
    for _ in range(3):
        opt.step(rng.standard_normal(4))
    assert slot not in opt.state[0]
    setattr(opt, name, value)
    np.testing.assert_array_equal(opt.state[0][slot], np.zeros(4))
    saved = opt.state_dict()
    assert saved[f"{slot}.0"].shape == (4,)
    twin_params = params.copy()
    twin = case(twin_params, **{name: value})
    twin.load_state_dict(saved)
    for _ in range(3):
        g = rng.standard_normal(4)
        opt.step(g)
        twin.step(g)
    np.testing.assert_array_equal(params, twin_params)
    # Switching back drops the slot; the state dict loads into a fresh optimizer.
    setattr(opt, name, case(np.zeros(1)).hyperparameters[name])
    assert slot not in opt.state[0]
    case(np.zeros(4)).load_state_dict(opt.state_dict())


def test_setting_momentum_on_sgd_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(4) for _ in range(6)]
    p = np.ones(4)
    tp = torch.ones(4, dtype=torch.float64, requires_grad=True)
    opt, topt = fastopt.SGD(p, lr=0.1), torch.optim.SGD([tp], lr=0.1)
    for t, g in enumerate(grads):
        if t == 3:
            opt.momentum = 0.9
            topt.param_groups[0]["momentum"] = 0.9
        opt.step(g)
        tp.grad = torch.from_numpy(g.copy())
        topt.step()
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-12)


# -- A8: state dicts the C code cannot hold ---------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_step_too_large_for_the_c_code_is_refused(case):
    params = np.zeros(3)
    opt = case.cls(params, lr=0.1)
    opt.step(np.ones(3))
    good = opt.state_dict()
    for step in (2 ** 63, 2 ** 62, 2 ** 64 + 1, np.uint64(2 ** 63), 1e300, 2.0 ** 62):
        before = _snapshot(opt, [params])
        with pytest.raises(ValueError, match="Invalid step: step="):
            opt.load_state_dict(dict(good, step=step))
        assert _snapshot(opt, [params]) == before
    opt.load_state_dict(dict(good, step=2 ** 62 - 1))  # the largest one allowed steps
    opt.step(np.ones(3))
    assert opt.step_count == 2 ** 62
    opt.load_state_dict(dict(good, step=np.array(7)))
    assert opt.step_count == 7
    opt.load_state_dict(dict(good, step=5.0))  # torch keeps step as a float
    assert opt.step_count == 5
    for step in (1.5, float("nan"), float("inf"), True, np.True_, "3", None):
        with pytest.raises(TypeError, match="Invalid step"):
            opt.load_state_dict(dict(good, step=step))


@pytest.mark.parametrize("case", CASES)
def test_state_dict_numbers_as_numpy_writes_them(case):
    params = np.zeros(3)
    opt = case.cls(params, lr=0.1)
    opt.step(np.ones(3))
    good = opt.state_dict()
    as_numpy = {k: (np.array(v) if not isinstance(v, np.ndarray) else v)
                for k, v in good.items()}
    opt.load_state_dict(as_numpy)
    assert opt.hyperparameters == case.cls(np.zeros(3), lr=0.1).hyperparameters
    for bad, error in [(np.array([0.1]), TypeError), (10 ** 400, ValueError),
                       (np.array(True), TypeError), (np.array(0.1 + 0j), TypeError),
                       (np.array("0.1"), TypeError), (np.float64("inf"), ValueError)]:
        with pytest.raises(error, match="lr"):
            opt.load_state_dict(dict(good, lr=bad))


# -- B12: numbers as NumPy users write them ---------------------------------------------------


def _numpy_kinds(value):
    """The same value as NumPy users write it: NumPy scalars and 0-d arrays (float32 ones only
    where they hold the value exactly)."""
    if isinstance(value, bool):
        return [np.bool_(value), np.array(value)]
    if isinstance(value, tuple):
        kinds = [tuple(np.array(v) for v in value), np.array(value), list(value)]
        if all(float(np.float32(v)) == v for v in value):
            kinds.append(tuple(np.float32(v) for v in value))
        return kinds
    kinds = [np.float64(value), np.array(value)]
    if float(np.float32(value)) == value:
        kinds += [np.array(value, np.float32), np.float32(value)]
    return kinds


@pytest.mark.parametrize("case", CASES)
def test_numpy_numbers_are_accepted_everywhere(case):
    signature = inspect.signature(case.cls)
    for name, default in case.defaults.items():
        if name not in signature.parameters:
            continue
        value = _new_values(case).get(name, default)
        if isinstance(value, float) and value != 0.0:
            value = float(np.float32(value))  # exact in float32 (and still valid)
        for numpy_value in _numpy_kinds(value):
            expected = case.cls(np.zeros(3), **{name: value}).hyperparameters
            opt = case.cls(np.zeros(3), **{name: numpy_value})
            assert opt.hyperparameters == expected, (name, numpy_value)
            other = case.cls(np.zeros(3))
            setattr(other, name, numpy_value)
            assert other.hyperparameters == expected
            loaded = case.cls(np.zeros(3))
            loaded.load_state_dict(dict(opt.state_dict(), **{name: numpy_value}))
            assert loaded.hyperparameters == expected
            # (int: an integer hyperparameter, schedule-free's warmup_steps)
            assert all(type(v) in (float, bool, tuple, int)
                       for v in opt.hyperparameters.values())


def test_zero_dim_arrays_of_other_kinds_are_refused():
    for bad in (np.array(True), np.array(1 + 0j), np.array(None, dtype=object),
                np.array("0.1"), np.array([0.1]), np.zeros((1, 1))):
        with pytest.raises(TypeError, match="Invalid learning rate: lr="):
            fastopt.Adam(np.zeros(2), lr=bad)
    for bad in (np.array(0), np.array(1.0), np.int64(0), 0):
        with pytest.raises(TypeError, match="maximize=.* must be a bool"):
            fastopt.Adam(np.zeros(2), maximize=bad)


@pytest.mark.parametrize("betas", [
    {0.9, 0.5}, frozenset({0.9, 0.5}), {0.9: 0, 0.5: 1}, (b for b in (0.9, 0.5)),
    iter([0.9, 0.5]), "ab", np.array([[0.9, 0.5]]), np.array(0.9), 0.9, None,
], ids=lambda b: type(b).__name__)
def test_unordered_or_malformed_betas_are_refused(betas):
    for cls in (fastopt.Adam, fastopt.AdamW):
        with pytest.raises(TypeError, match="Invalid betas: betas="):
            cls(np.zeros(2), betas=betas)
        opt = cls(np.zeros(2))
        with pytest.raises(TypeError, match="Invalid betas: betas="):
            opt.betas = betas
        assert opt.betas == (0.9, 0.999)


def test_numpy_options_reach_the_classes_through_minimize():
    res = fastopt.minimize(_quadratic, np.ones(2), jac=True, method="adam",
                           options={"lr": np.array(0.1), "amsgrad": np.True_,
                                    "betas": (np.array(0.9), np.float32(0.5))})
    assert res.nit > 0


def test_copy_and_deepcopy_keep_working():
    opt = fastopt.Adam([np.ones(3), np.ones(2)], lr=0.1)
    opt.step([np.ones(3), np.ones(2)])
    clones = [copy.deepcopy(opt)] + [pickle.loads(pickle.dumps(opt, protocol=protocol))
                                     for protocol in range(pickle.HIGHEST_PROTOCOL + 1)]
    for clone in clones:
        assert clone.state_dict().keys() == opt.state_dict().keys()
        clone.betas = (0.5, 0.5)
        clone.step([np.ones(3), np.ones(2)])
        assert opt.betas == (0.9, 0.999)


def test_timedelta_is_not_a_number_anywhere():
    # numpy.timedelta64 subclasses numpy.signedinteger (so numbers.Integral): not a rate,
    # a step count or an iteration limit.
    with pytest.raises(TypeError, match="lr="):
        fastopt.Adam(np.zeros(3), lr=np.timedelta64(1))
    opt = fastopt.SGD(np.zeros(3), lr=0.1)
    opt.step(np.ones(3))
    with pytest.raises(TypeError, match="Invalid step"):
        opt.load_state_dict(dict(opt.state_dict(), step=np.timedelta64(3)))
    with pytest.raises(TypeError, match="maxiter"):
        fastopt.minimize(lambda x: (x @ x, 2 * x), np.ones(2), jac=True,
                         options={"maxiter": np.timedelta64(5)})
