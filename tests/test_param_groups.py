"""Parameter groups: ``opt.param_groups`` (torch.optim's live list of group mappings).

Driven by the registry (tests/_registry.py): every optimizer, every hyperparameter.
"""

import numpy as np
import pytest

from _registry import OPTIMIZERS, bad_kwarg_cases, variant_cases
from conftest import gradient_sequence

IDS = lambda case: case.name  # noqa: E731


def _state_copy(opt):
    return [{k: np.array(v, copy=True) for k, v in s.items()} for s in opt.state]


def _run(opt, params, grads):
    for g in grads:
        opt.step(g if isinstance(params, np.ndarray) else [g.copy() for _ in params])


# -- one group (interface A) ----------------------------------------------------------------


@pytest.mark.parametrize("case", OPTIMIZERS, ids=IDS)
@pytest.mark.parametrize("single", [True, False])
def test_one_group_mirrors_the_optimizer(case, single, rng):
    w = rng.standard_normal(4)
    params = w if single else [w, rng.standard_normal((2, 3))]
    opt = case.cls(params, lr=0.05)
    groups = opt.param_groups
    assert isinstance(groups, list) and len(groups) == 1
    group = groups[0]
    assert list(group) == ["params", *opt.hyperparameters]
    assert len(group) == 1 + len(opt.hyperparameters)
    got = group["params"]
    expected = [w] if single else params
    assert isinstance(got, list) and len(got) == len(expected)
    assert all(a is b for a, b in zip(got, expected))
    for name, value in opt.hyperparameters.items():
        assert group[name] == value
    assert group["lr"] == 0.05


@pytest.mark.parametrize("case", OPTIMIZERS, ids=IDS)
def test_group_lr_is_the_optimizers_lr(case, rng):
    shape = (3, 4)
    w0 = rng.standard_normal(shape)
    grads = list(gradient_sequence(rng, shape, np.float64, [1.0, 0.5, 2.0, 0.1]))
    a, b = w0.copy(), w0.copy()
    opt_a, opt_b = case.cls(a, lr=0.1), case.cls(b, lr=0.1)
    group = opt_a.param_groups[0]  # a live view: kept across steps
    for k, g in enumerate(grads):
        lr = 0.1 / (k + 1)
        group["lr"] = lr
        opt_b.lr = lr
        assert opt_a.lr == lr and group["lr"] == lr
        opt_a.step(g)
        opt_b.step(g)
        np.testing.assert_array_equal(a, b)
    # numpy scalars and 0-d arrays are accepted as the constructor accepts them
    group["lr"] = np.float32(0.25)
    assert opt_a.lr == 0.25 and type(group["lr"]) is float


@pytest.mark.parametrize("case, kwargs", variant_cases())
def test_every_hyperparameter_writable_through_the_group(case, kwargs, rng):
    # Setting a variant's values through param_groups gives the optimizer built with them.
    shape = (5,)
    w0 = rng.standard_normal(shape)
    grads = list(gradient_sequence(rng, shape, np.float64, [1.0, 0.5, 2.0]))
    a, b = w0.copy(), w0.copy()
    opt_a, opt_b = case.cls(a), case.cls(b, **kwargs)
    group = opt_a.param_groups[0]
    # (all at once: some combinations are valid only together, e.g. nesterov with momentum)
    changes = {k: v for k, v in kwargs.items()}
    order = sorted(changes, key=lambda k: k != "momentum")  # momentum before nesterov
    for name in order:
        try:
            group[name] = changes[name]
        except ValueError:
            opt_a._set_hyperparameters(changes)  # a combination valid only as a whole
            break
    assert opt_a.hyperparameters == opt_b.hyperparameters
    assert dict(group) == {"params": [a], **opt_b.hyperparameters}
    for g in grads:
        opt_a.step(g)
        opt_b.step(g)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case, kwargs, error, match", [
    p for p in bad_kwarg_cases()
    if len(p.values[1]) == 1 and next(iter(p.values[1])) in p.values[0].defaults
    and next(iter(p.values[1])) not in p.values[0].cls.record.fixed  # (TypeError there)
])
def test_bad_group_value_refused_nothing_modified(case, kwargs, error, match, rng):
    w = rng.standard_normal(4)
    opt = case.cls(w, lr=0.1)
    opt.step(rng.standard_normal(4))
    before = opt.state_dict()
    (name, value), = kwargs.items()
    with pytest.raises(error, match=match):
        opt.param_groups[0][name] = value
    np.testing.assert_equal(opt.state_dict(), before)  # (NaN equals NaN here)


@pytest.mark.parametrize("case", OPTIMIZERS, ids=IDS)
def test_unknown_group_keys_refused(case, rng):
    w = rng.standard_normal(3)
    opt = case.cls(w, lr=0.1)
    group = opt.param_groups[0]
    before = opt.hyperparameters
    for key in ("initial_lr", "max_lr", "base_lr", "n_threads", "step", 3, None):
        with pytest.raises(KeyError, match=repr(key).replace("(", r"\(")):
            group[key] = 0.1
        with pytest.raises(KeyError):
            group[key]
        assert key not in group
    assert group.get("initial_lr") is None
    with pytest.raises(TypeError, match="'params'.*cannot be assigned"):
        group["params"] = [w]
    for key in ("lr", "params", "initial_lr"):
        with pytest.raises(TypeError, match="cannot be deleted"):
            del group[key]
    assert opt.hyperparameters == before
    assert group["params"][0] is w


# -- several groups ---------------------------------------------------------------------------

# Two groups: two arrays (one above the nogil/parallel sizes) and one; shapes and starts.
SHAPES = [(3, 4), (50, 50), (5,)]


def _arrays(rng, dtype=np.float64, shapes=SHAPES):
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


def _grads(rng, dtype=np.float64, shapes=SHAPES, n=6):
    scales = [1.0, 0.5, 0.0, 2.0, 1.0, 0.1, 3.0, 1e-3]
    return [[(rng.standard_normal(s) * scales[k % len(scales)]).astype(dtype) for s in shapes]
            for k in range(n)]


def _assert_same_state(opt, parts, index_map):
    for i, (part, j) in enumerate(index_map):
        got, expected = opt.state[i], parts[part].state[j]
        assert got.keys() == expected.keys()
        for key in got:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=f"{i} {key}")


def _group_kwargs(case, kwargs):
    """Group 0: the defaults with lr 0.05 (and weight decay where the class has it); group 1:
    the variant ``kwargs``."""
    first = {"lr": 0.05}
    if "weight_decay" in case.defaults:
        first["weight_decay"] = 0.01
    return first, kwargs


@pytest.mark.parametrize("case, kwargs", variant_cases())
def test_groups_step_as_separate_optimizers(case, kwargs, rng):
    # Each group steps exactly as an optimizer of its own on its arrays, with its
    # hyperparameters: the constructor's where the group gives none.
    first, second = _group_kwargs(case, kwargs)
    start = _arrays(rng)
    grads = _grads(rng)
    params = [a.copy() for a in start]
    opt = case.cls([{"params": params[:2], **first}, {"params": [params[2]]}], **second)
    assert len(opt.param_groups) == 2
    assert opt.param_groups[0]["params"][1] is params[1]
    assert all(a is b for a, b in zip(opt.params, params))
    sep = [a.copy() for a in start]
    parts = [case.cls(sep[:2], **{**second, **first}), case.cls([sep[2]], **second)]
    for g in grads:
        opt.step(g)
        parts[0].step(g[:2])
        parts[1].step(g[2:])
    for a, b in zip(params, sep):
        np.testing.assert_array_equal(a, b)
    _assert_same_state(opt, parts, [(0, 0), (0, 1), (1, 0)])
    assert opt.step_count == len(grads)


@pytest.mark.parametrize("case", OPTIMIZERS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_group_hyperparameter_change_touches_that_group_only(case, dtype, rng):
    # A hyperparameter set through param_groups[1] (every variant's values, state made or
    # dropped as needed) changes group 1 only; an attribute sets every group.
    start, grads = _arrays(rng, dtype), _grads(rng, dtype)
    params, sep = [a.copy() for a in start], [a.copy() for a in start]
    opt = case.cls([{"params": params[:2]}, {"params": params[2:]}], lr=0.05)
    parts = [case.cls(sep[:2], lr=0.05), case.cls(sep[2:], lr=0.05)]
    for k, g in enumerate(grads):
        variant = case.variants[k % len(case.variants)]
        if variant:
            changes = {**case.defaults, "lr": 0.05, **variant}
            opt._set_hyperparameters(changes, groups=(1,))
            parts[1]._set_hyperparameters(changes)
        if k == 3:
            opt.param_groups[0]["lr"] = 0.02
            parts[0].lr = 0.02
        if k == 4:
            opt.lr = 0.03  # every group
            parts[0].lr = parts[1].lr = 0.03
            assert opt.lr == 0.03
        assert opt.param_groups[0]["lr"] == parts[0].lr
        assert dict(opt.param_groups[1]) == {"params": params[2:], **parts[1].hyperparameters}
        opt.step(g)
        parts[0].step(g[:2])
        parts[1].step(g[2:])
    for a, b in zip(params, sep):
        np.testing.assert_array_equal(a, b)
    _assert_same_state(opt, parts, [(0, 0), (0, 1), (1, 0)])


@pytest.mark.parametrize("case", OPTIMIZERS, ids=IDS)
def test_add_param_group_after_steps_counts_its_own_updates(case, rng):
    # torch keeps a step count per parameter: a group added after steps starts its bias
    # corrections (warm-ups, running scalars) at update 1, as a new optimizer would.
    start, grads = _arrays(rng), _grads(rng, n=7)
    params, sep = [a.copy() for a in start], [a.copy() for a in start]
    opt = case.cls(params[:2], lr=0.05)
    parts = [case.cls(sep[:2], lr=0.05)]
    for k, g in enumerate(grads):
        if k == 3:
            opt.add_param_group({"params": params[2], "lr": 0.01})
            parts.append(case.cls([sep[2]], lr=0.01))
            assert opt.defaults["lr"] == 0.05 and opt.param_groups[1]["lr"] == 0.01
            assert len(opt.state) == 3 and opt.params[2] is params[2]
        if k < 3:
            opt.step(g[:2])
        else:
            opt.step(g)
            parts[1].step(g[2:])
        parts[0].step(g[:2])
    for a, b in zip(params, sep):
        np.testing.assert_array_equal(a, b)
    _assert_same_state(opt, parts, [(0, 0), (0, 1), (1, 0)])
    saved = opt.state_dict()
    assert saved["param_groups"] == (2, 1)
    assert saved["param_groups.0.step"] == 7 and saved["param_groups.1.step"] == 4


@pytest.mark.parametrize("case", OPTIMIZERS, ids=IDS)
def test_group_defaults_and_attributes(case, rng):
    params = _arrays(rng)
    opt = case.cls([{"params": params[:2], "lr": 0.1}, {"params": params[2]}], lr=0.2)
    assert opt.defaults == {**case.defaults, "lr": 0.2}
    assert opt.param_groups[1]["params"] == [params[2]]
    with pytest.raises(ValueError, match=r"different lr \(0.1, 0.2\).*param_groups\[i\]"):
        opt.lr
    with pytest.raises(ValueError, match="param_groups"):
        opt.hyperparameters
    other = [name for name in case.defaults if name != "lr"]
    for name in other:  # the same in both groups
        assert getattr(opt, name) == case.defaults[name]
    opt.lr = 0.3
    assert opt.lr == 0.3 and [g["lr"] for g in opt.param_groups] == [0.3, 0.3]
    assert opt.hyperparameters == {**case.defaults, "lr": 0.3}
    assert opt.defaults["lr"] == 0.2  # the constructor's, as torch's defaults
    assert "2 arrays" in repr(opt) and "1 arrays" in repr(opt)


def test_attribute_valid_in_one_group_only_changes_none(rng):
    import fastopt

    params = _arrays(rng)
    opt = fastopt.SGD([{"params": params[:2], "momentum": 0.9}, {"params": params[2]}],
                      lr=0.1)
    opt.step(_grads(rng)[0])
    before = opt.state_dict()
    with pytest.raises(ValueError, match=r"param_groups\[1\]: Nesterov momentum requires"):
        opt.nesterov = True
    np.testing.assert_equal(opt.state_dict(), before)
    opt.param_groups[0]["nesterov"] = True  # valid there
    assert [g["nesterov"] for g in opt.param_groups] == [True, False]


@pytest.mark.parametrize("case", OPTIMIZERS, ids=IDS)
def test_group_state_dict_round_trip(case, rng, tmp_path):
    start, grads = _arrays(rng), _grads(rng, n=8)
    params = [a.copy() for a in start]
    kwargs = _group_kwargs(case, {})[0]
    opt = case.cls([{"params": params[:2], **kwargs}, {"params": params[2:]}], lr=0.02)
    for g in grads[:3]:
        opt.step(g)
    opt.add_param_group({"params": [np.ones(4)], "lr": 0.03})
    more = [g + [np.full(4, 0.5)] for g in grads]
    opt.step(more[3])
    np.savez(tmp_path / "s.npz", **opt.state_dict())
    twin_params = [p.copy() for p in opt.params]
    twin = case.cls([{"params": twin_params[:2]}, {"params": twin_params[2:3]}], lr=0.5)
    twin.add_param_group({"params": twin_params[3]})
    with np.load(tmp_path / "s.npz") as data:
        twin.load_state_dict(dict(data))
    assert [dict(g) for g in twin.param_groups] == [
        {**dict(g), "params": t} for g, t in zip(opt.param_groups,
                                                  [twin_params[:2], twin_params[2:3],
                                                   twin_params[3:]])]
    for g in more[4:]:
        opt.step(g)
        twin.step(g)
    for a, b in zip(opt.params, twin_params):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", OPTIMIZERS, ids=IDS)
def test_group_pickle_round_trip(case, rng):
    import pickle

    grads = _grads(rng)
    params = _arrays(rng)
    opt = case.cls([{"params": params[:1], "lr": 0.01}, {"params": params[1:]}], lr=0.02)
    opt.step(grads[0])
    opt.add_param_group({"params": np.ones(3)})
    grads = [g + [np.ones(3)] for g in grads]
    opt.step(grads[1])
    twin = pickle.loads(pickle.dumps(opt))
    assert [g["lr"] for g in twin.param_groups] == [0.01, 0.02, 0.02]
    assert twin.defaults == opt.defaults
    for g in grads[2:]:
        opt.step(g)
        twin.step(g)
    for a, b in zip(opt.params, twin.params):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_equal(twin.state_dict(), opt.state_dict())


@pytest.mark.parametrize("case", OPTIMIZERS, ids=IDS)
def test_one_group_formats_unchanged(case, rng):
    # One group (however built) saves and pickles exactly as before groups existed, and
    # those checkpoints load.
    import pickle

    w = rng.standard_normal(5)
    built = [case.cls(w.copy(), lr=0.1), case.cls([w.copy()], lr=0.1),
             case.cls([{"params": [w.copy()]}], lr=0.1),
             case.cls([{"params": [w.copy()], "lr": 0.1}])]
    for opt in built:
        opt.step(w if opt._single else [w])
        saved = opt.state_dict()
        extra = {"train_mode"} if hasattr(case.cls, "eval") else set()  # (schedule-free)
        assert set(saved) == {"step", *case.defaults, *(f"{k}.0" for k in opt.state[0]),
                              *extra}
        opt.load_state_dict(saved)
        state = opt.__getstate__()
        old = {k: state[k] for k in type(opt)._PICKLED}  # a pickle made before groups
        twin = type(opt).__new__(type(opt))
        twin.__setstate__(old)
        assert len(twin.param_groups) == 1 and twin.defaults == twin.hyperparameters
        np.testing.assert_equal(twin.state_dict(), saved)
        np.testing.assert_equal(pickle.loads(pickle.dumps(opt)).state_dict(), saved)


@pytest.mark.parametrize("case", OPTIMIZERS, ids=IDS)
def test_group_structure_mismatch_refused(case, rng):
    params = _arrays(rng)
    one = case.cls([p.copy() for p in params], lr=0.1)
    two = case.cls([{"params": params[:2]}, {"params": params[2]}], lr=0.1)
    other = case.cls([{"params": [p.copy() for p in params[:1]]},
                      {"params": [p.copy() for p in params[1:]]}], lr=0.1)
    saved_one, saved_two = one.state_dict(), two.state_dict()
    with pytest.raises(ValueError, match="one parameter group; the optimizer has 2 groups"):
        two.load_state_dict(saved_one)
    with pytest.raises(ValueError, match=r"parameter groups of \(2, 1\) arrays"):
        one.load_state_dict(saved_two)
    with pytest.raises(ValueError, match=r"\(2, 1\) arrays; the optimizer has 2 groups of "
                       r"\(1, 2\)"):
        other.load_state_dict(saved_two)
    bad = dict(saved_two, **{"param_groups.1.lr": -1.0})
    with pytest.raises(ValueError, match=r"param_groups.1: Invalid learning rate"):
        two.load_state_dict(bad)
    bad = dict(saved_two, **{"param_groups.1.step": 1})
    with pytest.raises(ValueError, match="param_groups.1.step"):
        two.load_state_dict(bad)
    missing = {k: v for k, v in saved_two.items() if k != "param_groups.0.step"}
    with pytest.raises(ValueError, match="missing"):
        two.load_state_dict(missing)
    np.testing.assert_equal(two.state_dict(), saved_two)


def _snapshot(opt):
    return (opt.state_dict(), [p.copy() for p in opt.params], [dict(g) for g in
                                                                opt.param_groups])


def _assert_unchanged(opt, snapshot):
    saved, params, groups = snapshot
    np.testing.assert_equal(opt.state_dict(), saved)
    assert len(opt.params) == len(params)
    for a, b in zip(opt.params, params):
        np.testing.assert_array_equal(a, b)
    assert len(opt.param_groups) == len(groups)
    for g, before in zip(opt.param_groups, groups):
        assert g.keys() == before.keys()
        assert all(a is b for a, b in zip(g["params"], before["params"]))


@pytest.mark.parametrize("case", OPTIMIZERS, ids=IDS)
def test_bad_groups_refused(case, rng):
    w, b, v = rng.standard_normal(3), rng.standard_normal(2), rng.standard_normal(4)
    name = case.name
    bad = [
        ([{"params": []}], ValueError, r"params\[0\]\['params'\] is empty"),
        ([{"params": [w]}, {"params": []}], ValueError, r"params\[1\]\['params'\] is empty"),
        ([{"params": [w]}, {"params": [b, w]}], ValueError,
         r"params\[1\]\['params'\]\[1\] is the same array as params\[0\]\['params'\]\[0\]"),
        ([{"params": [w, w]}], ValueError, "is the same array as"),
        ([{"params": [w]}, {"params": [w[1:]]}], ValueError, "shares memory with"),
        ([{"params": [w], "lrr": 0.1}], ValueError,
         rf"params\[0\] has unknown key 'lrr': a parameter group takes 'params' and {name}"),
        ([{"params": [w], "n_threads": 2}], ValueError, "unknown key 'n_threads'"),
        ([{"params": [w], "lr": -1.0}], ValueError,
         r"params\[0\]: Invalid learning rate: lr=-1.0"),
        ([{"params": [w]}, {"params": b, "lr": "x"}], TypeError,
         r"params\[1\]: Invalid learning rate"),
        ([{"params": [w]}, b], TypeError, r"mixes parameter groups \(dicts\) and other"),
        ([w, {"params": [b]}], TypeError, r"params\[0\] is ndarray"),
        ({"params": [w]}, TypeError, "got a dict: wrap it in a list"),
        ([{"lr": 0.1}], ValueError, r"params\[0\] has no 'params' key"),
        ([{"params": 3}], TypeError, r"params\[0\]\['params'\] must be a numpy.ndarray"),
        ([{"params": [w, [1.0]]}], TypeError, r"params\[0\]\['params'\]\[1\] must be a numpy"),
        ([{"params": [w.astype(np.int64)]}], (TypeError, ValueError), r"params\[0\]\['params'\]"),
    ]
    for params, error, match in bad:
        with pytest.raises(error, match=match):
            case.cls(params, lr=0.1)
    # add_param_group: refused with nothing modified (before and after steps)
    opt = case.cls([{"params": [w]}, {"params": b, "lr": 0.2}], lr=0.1)
    grads = [rng.standard_normal(3), rng.standard_normal(2)]
    for made_steps in (False, True):
        if made_steps:
            opt.step(grads)
        snapshot = _snapshot(opt)
        for group, error, match in [
            ({"params": []}, ValueError, r"param_group\['params'\] is empty"),
            ({"params": [v, w]}, ValueError,
             r"param_group\['params'\]\[1\] is the same array as params\[0\]"),
            ({"params": b[:1]}, ValueError, r"shares memory with params\[1\]"),
            ({"params": v, "momentum_typo": 1}, ValueError, "unknown key 'momentum_typo'"),
            ({"params": v, "lr": float("nan")}, ValueError, "param_group: Invalid learning"),
            ({"lr": 0.1}, ValueError, "has no 'params' key"),
            ([v], TypeError, "param_group must be a dict"),
            ({"params": "v"}, TypeError, "must be a numpy.ndarray or a list"),
        ]:
            with pytest.raises(error, match=match):
                opt.add_param_group(group)
            _assert_unchanged(opt, snapshot)
        opt.step(grads)  # still takes the same gradients
    single = case.cls(w.copy(), lr=0.1)
    with pytest.raises(TypeError, match=r"built on one array.*\[w\]"):
        single.add_param_group({"params": v})
    assert len(single.param_groups) == 1


@pytest.mark.parametrize("case", OPTIMIZERS, ids=IDS)
def test_group_grads_checked_across_groups_nothing_modified(case, rng):
    params = _arrays(rng)
    opt = case.cls([{"params": params[:2]}, {"params": params[2:], "lr": 0.5}], lr=0.1)
    grads = _grads(rng, n=2)
    opt.step(grads[0])
    snapshot = _snapshot(opt)
    g = grads[1]
    for bad, error, match in [
        (g[:2], ValueError, "grads has 2 arrays, params has 3"),
        (g[:2] + [g[2].astype(np.float32)], TypeError, r"grads\[2\] has dtype float32"),
        (g[:2] + [np.ones(6)], ValueError, r"grads\[2\] has shape \(6,\)"),
        ([g[0], g[1], params[2]], ValueError, r"grads\[2\] shares memory with its parameter"),
        (g[0], TypeError, "grads must be a list of 3 arrays"),
    ]:
        with pytest.raises(error, match=match):
            opt.step(bad)
        _assert_unchanged(opt, snapshot)
    opt.step(g)


@pytest.mark.parametrize("case", [c for c in OPTIMIZERS if hasattr(c.cls, "eval")], ids=IDS)
def test_schedule_free_modes_with_groups(case, rng):
    # eval()/train() move each group's arrays with that group's beta
    beta_name = "betas" if "betas" in case.defaults else "momentum"
    beta = (0.5, 0.99) if beta_name == "betas" else 0.5
    start, grads = _arrays(rng), _grads(rng)
    params, sep = [a.copy() for a in start], [a.copy() for a in start]
    opt = case.cls([{"params": params[:2]}, {"params": params[2:], beta_name: beta}],
                   lr=0.05)
    parts = [case.cls(sep[:2], lr=0.05), case.cls(sep[2:], lr=0.05, **{beta_name: beta})]
    for g in grads:
        opt.step(g)
        parts[0].step(g[:2])
        parts[1].step(g[2:])
    opt.eval()
    for part in parts:
        part.eval()
    for a, b in zip(params, sep):
        np.testing.assert_array_equal(a, b)
    opt.train()
    for part in parts:
        part.train()
    for a, b in zip(params, sep):
        np.testing.assert_array_equal(a, b)


def test_step_groups_checks_its_structure(rng):
    # fastopt._step.step_groups refuses group ends and starts that do not fit the layout
    import fastopt

    params = _arrays(rng)
    opt = fastopt.Adam([{"params": params[:2]}, {"params": params[2:]}])
    opt.step(_grads(rng, n=1)[0])
    from fastopt._step import step_groups

    with pytest.raises(ValueError, match="internal error"):
        step_groups(opt._rules, (2, 2), (0, 0), _grads(rng, n=1)[0], opt._layout,
                    opt._spans, opt._slots, 1, 1)
    with pytest.raises(ValueError, match="internal error"):
        step_groups(opt._rules, (2, 3), (0, 5), _grads(rng, n=1)[0], opt._layout,
                    opt._spans, opt._slots, 1, 1)


# -- torch.optim's parameter groups -----------------------------------------------------------


def _torch_group_cases():
    return [c for c in OPTIMIZERS if c.torch_name]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", _torch_group_cases(), ids=IDS)
def test_group_trajectories_match_torch(case, dtype, rng):
    # Per-group lr and weight decay (where the class has it) and a group added after steps
    # (counting its own steps): torch.optim's trajectories, to rounding. (A lr changed
    # mid-run through a group is the attribute's change, tested above; ASGD's differs from
    # torch's by one step, as its docstring says.)
    torch = pytest.importorskip("torch")
    from fastopt._bench import torch_twin

    twin = torch_twin(torch, case.torch_name)
    if twin is None:
        pytest.skip(f"{case.torch_name.partition('.')[0]} is not installed")
    shapes = [(3, 4), (5,), (2, 3)]
    start = [rng.standard_normal(s).astype(dtype) for s in shapes]
    params = [a.copy() for a in start]
    wd = "weight_decay" in case.defaults
    first = {"lr": 0.02, **({"weight_decay": 0.1} if wd else {})}
    second = {"lr": 0.005}
    opt = case.cls([{"params": params[:2], **first}, {"params": params[2]}], lr=0.01,
                   **({"weight_decay": 0.01} if wd else {}))
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    try:
        tp = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in start]
        topt = twin([{"params": tp[:2], **first}, {"params": [tp[2]]}], lr=0.01,
                    **({"weight_decay": 0.01} if wd else {}), **case.torch_kwargs)
        extra = rng.standard_normal(4).astype(dtype)
        tp.append(torch.nn.Parameter(torch.from_numpy(extra.copy())))
        params.append(extra)
        shapes.append((4,))
        scales = [1.0, 0.5, 0.0, 2.0, 1.0, 0.1, 0.0, 3.0, 1e-3, 1.0] * 2
        for k, scale in enumerate(scales):
            if k == 5:
                opt.add_param_group({"params": extra, **second})
                topt.add_param_group({"params": [tp[3]], **second})
            n = 4 if k >= 5 else 3
            grads = [(rng.standard_normal(s) * scale).astype(dtype) for s in shapes[:n]]
            opt.step(grads)
            for p, g in zip(tp[:n], grads):
                p.grad = torch.from_numpy(g.copy())
            topt.step()
            rtol = {np.float64: 1e-10, np.float32: 1e-5}[dtype]
            for a, p in zip(params[:n], tp[:n]):
                np.testing.assert_allclose(a, p.detach().numpy(), rtol=rtol, atol=rtol)
    finally:
        torch.set_default_dtype(previous)
