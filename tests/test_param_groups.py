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
