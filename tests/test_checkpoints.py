"""Checkpoints: bit-identical resume at steps {0, 1, 2, 7, 25, 49} for every optimizer, flag
setting and dtype, through state_dict, np.savez + np.load(allow_pickle=False), pickle and
copy.deepcopy; state dicts never share memory with the optimizer; load_state_dict is
all-or-nothing against many kinds of bad state dicts."""

import copy
import pickle

import numpy as np
import pytest

from _registry import OPTIMIZERS, all_state_kwargs, variant_cases
from conftest import DTYPES

CASES = [pytest.param(case, id=case.name) for case in OPTIMIZERS]
SPLITS = (0, 1, 2, 7, 25, 49)
TOTAL_STEPS = 55
SHAPES = [(5,), (2, 3)]


def _snapshot(opt, params):
    """Bytes of everything load_state_dict could modify."""
    state = [{k: v.tobytes() for k, v in s.items()} for s in opt.state]
    return opt.step_count, opt.hyperparameters, state, [p.tobytes() for p in params]


def _run(opt, grads):
    for g in grads:
        opt.step(g)


def _through_savez(saved, tmp_path):
    np.savez(tmp_path / "state.npz", **saved)
    with np.load(tmp_path / "state.npz", allow_pickle=False) as data:
        return dict(data)


@pytest.mark.parametrize("channel", ["state_dict", "savez", "pickle", "deepcopy"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case, kwargs", variant_cases())
def test_resume_is_bit_identical(case, kwargs, dtype, channel, tmp_path):
    rng = np.random.default_rng(49)
    start = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(TOTAL_STEPS)]
    full = [p.copy() for p in start]
    _run(case.cls(full, **kwargs), grads)

    for split in SPLITS:
        params = [p.copy() for p in start]
        opt = case.cls(params, **kwargs)
        _run(opt, grads[:split])
        if channel in ("pickle", "deepcopy"):
            clone = (pickle.loads(pickle.dumps(opt)) if channel == "pickle"
                     else copy.deepcopy(opt))
            resumed = clone.params
            assert all(not np.shares_memory(a, b) for a, b in zip(resumed, params))
        else:
            saved = opt.state_dict()
            if channel == "savez":
                saved = _through_savez(saved, tmp_path)
            resumed = [p.copy() for p in params]
            clone = case.cls(resumed, lr=0.123)  # another lr: the state dict restores it
            clone.load_state_dict(saved)
        _run(opt, grads[split:split + 3])  # the original goes on: the clone must not see it
        assert clone.step_count == split
        assert clone.hyperparameters == case.cls(start, **kwargs).hyperparameters
        _run(clone, grads[split:])
        for a, b in zip(resumed, full):
            np.testing.assert_array_equal(a, b, err_msg=f"resumed at step {split}")


@pytest.mark.parametrize("case", CASES)
def test_state_dict_never_shares_memory(case):
    params = np.ones(4)
    opt = case.cls(params, lr=0.1)
    opt.step(np.ones(4))
    saved = opt.state_dict()
    for value in saved.values():
        if isinstance(value, np.ndarray):
            assert not any(np.shares_memory(value, s) for s in opt.state[0].values())
    opt.load_state_dict(saved)
    for value in saved.values():
        if isinstance(value, np.ndarray):
            assert not any(np.shares_memory(value, s) for s in opt.state[0].values())
    before = {k: v.copy() for k, v in opt.state[0].items()}
    for value in saved.values():  # writing to the dict later changes nothing in the optimizer
        if isinstance(value, np.ndarray):
            value[...] = 7.0
    for k, v in opt.state[0].items():
        np.testing.assert_array_equal(v, before[k])


def _bad_state_dicts(good, case):
    """(description, bad dict, error type, message pattern) for one optimizer's good dict."""
    array_key = next((k for k in good if "." in k), None)
    other_slot = "momentum_buffer.0" if "exp_avg.0" in good else "exp_avg.0"
    bad = [
        ("not a dict", [1, 2], TypeError, "state_dict must be a dict"),
        ("None", None, TypeError, "state_dict must be a dict"),
        ("missing step", {k: v for k, v in good.items() if k != "step"}, ValueError,
         "missing.*step"),
        ("missing lr", {k: v for k, v in good.items() if k != "lr"}, ValueError, "missing.*lr"),
        ("negative step", dict(good, step=-1), ValueError, "Invalid step: step=-1"),
        ("fractional step", dict(good, step=1.5), TypeError, "Invalid step"),
        ("bool step", dict(good, step=True), TypeError, "Invalid step"),
        ("string step", dict(good, step="3"), TypeError, "Invalid step"),
        ("negative lr", dict(good, lr=-1.0), ValueError, "Invalid learning rate"),
        ("NaN lr", dict(good, lr=float("nan")), ValueError, "Invalid learning rate"),
        ("string lr", dict(good, lr="fast"), TypeError, "Invalid learning rate"),
        ("unexpected key", dict(good, extra=np.zeros(4)), ValueError, "unexpected keys.*extra"),
        ("another optimizer's state", dict(good, **{other_slot: np.zeros(4)}), ValueError,
         "unexpected keys"),
    ]
    if array_key is not None:
        bad += [
            ("missing array", {k: v for k, v in good.items() if k != array_key}, ValueError,
             "missing"),
            ("wrong shape", dict(good, **{array_key: np.zeros(5)}), ValueError, "has shape"),
            ("same size, other shape", dict(good, **{array_key: np.zeros((2, 2))}), ValueError,
             "has shape"),
            ("wrong dtype", dict(good, **{array_key: np.zeros(4, np.float32)}), TypeError,
             "has dtype float32"),
            ("object dtype", dict(good, **{array_key: np.zeros(4, object)}), TypeError,
             "has dtype object"),
            ("list instead of array", dict(good, **{array_key: [0.0] * 4}), TypeError,
             "must be a numpy.ndarray"),
            ("None instead of array", dict(good, **{array_key: None}), TypeError,
             "must be a numpy.ndarray"),
        ]
    for key in good:
        if key.rsplit(".", 1)[0] in case.cls.record.nonnegative_state:
            bad.append((f"negative {key}", dict(good, **{key: -np.ones(4)}), ValueError,
                        "negative entries"))
    return bad


@pytest.mark.parametrize("case", CASES)
def test_bad_state_dict_raises_and_changes_nothing(case):
    params = np.linspace(0, 1, 4)
    opt = case.cls(params, **all_state_kwargs(case))  # every slot, max_exp_avg_sq too
    opt.step(np.ones(4))
    good = opt.state_dict()
    bad_dicts = _bad_state_dicts(good, case)
    assert len(bad_dicts) >= 15 or "." not in "".join(good)  # SGD without momentum: no arrays
    for description, bad, error, match in bad_dicts:
        before = _snapshot(opt, [params])
        with pytest.raises(error, match=match):
            opt.load_state_dict(bad)
        assert _snapshot(opt, [params]) == before, description
    opt.load_state_dict(good)  # and the good one still loads


# ---------------------------------------------------------------------------------------------
# Checkpoints written before a hyperparameter existed (issue 13: Adam's decoupled_weight_decay)
# load with the class's default, the behaviour of the code that wrote them.

class _OldPickle:
    """Pickles as ``opt`` did before ``decoupled_weight_decay`` existed (no such key)."""

    def __init__(self, opt):
        self.reduced = opt.__reduce_ex__(4)

    def __reduce__(self):
        fn, args, state = self.reduced
        hyper = {k: v for k, v in state["_hyper"].items() if k != "decoupled_weight_decay"}
        return fn, args, {**state, "_hyper": hyper}


@pytest.mark.parametrize("channel", ["state_dict", "savez", "pickle"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [{}, {"weight_decay": 0.1, "amsgrad": True}])
@pytest.mark.parametrize("name, default", [("Adam", False), ("AdamW", True)])
def test_checkpoint_from_before_decoupled_weight_decay_loads_with_the_default(
        name, default, kwargs, dtype, channel, tmp_path):
    import fastopt

    cls = getattr(fastopt, name)
    rng = np.random.default_rng(0)
    start = rng.standard_normal(6).astype(dtype)
    grads = [rng.standard_normal(6).astype(dtype) for _ in range(9)]
    whole = start.copy()
    _run(cls(whole, lr=0.1, **kwargs), grads)  # the uninterrupted run, the class's default

    first = start.copy()
    opt = cls(first, lr=0.1, **kwargs)
    _run(opt, grads[:4])
    if channel == "pickle":
        resumed = pickle.loads(pickle.dumps(_OldPickle(opt)))
        params = resumed.params
    else:
        old = {k: v for k, v in opt.state_dict().items() if k != "decoupled_weight_decay"}
        if channel == "savez":
            old = _through_savez(old, tmp_path)
        params = first.copy()
        # the flag the checkpoint implies wins over the constructor's, as every saved
        # hyperparameter does (AdamW's is fixed: it takes no such argument)
        flipped = {} if name == "AdamW" else {"decoupled_weight_decay": not default}
        resumed = cls(params, lr=0.1, **kwargs, **flipped)
        resumed.load_state_dict(old)
    assert resumed.decoupled_weight_decay is default
    assert resumed.state_dict()["decoupled_weight_decay"] is default
    _run(resumed, grads[4:])
    np.testing.assert_array_equal(params, whole)
