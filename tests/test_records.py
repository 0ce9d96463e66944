"""The optimizer records (fastopt/_record.py, fastopt/_registry.py): each is complete, agrees
with its kernel, and is what every consumer (exports, method callables, drivers, race, demo,
benchmarks) lists."""

import inspect
from dataclasses import replace

import numpy as np
import pytest

import fastopt
from fastopt import _demo, _race
from fastopt._base import Optimizer
from fastopt._methods import METHODS, method_name
from fastopt._record import OptimizerRecord, StateSlot, lr, maximize, real
from fastopt._registry import BY_METHOD, RACERS, RECORDS
from fastopt._step import Rule, kernel_kinds, kernel_spec

RECORD_IDS = [record.cls.__name__ for record in RECORDS]


@pytest.mark.parametrize("record", RECORDS, ids=RECORD_IDS)
def test_record_agrees_with_its_kernel(record):
    assert record.kernel in kernel_kinds()
    inputs, slots, _ = kernel_spec(record.kernel)
    assert record.slot_names == slots
    # the rule is built by the kernel's input names, for every flag setting
    variants = [record.defaults] + [
        {**record.defaults, h.name: not h.default}
        for h in record.arguments if h.sample == "bool"
    ]
    for hyper in variants:
        try:
            hyper = record.cls._check_hyperparameters(**hyper)
        except ValueError:
            continue
        assert set(record.kernel_inputs(hyper)) <= set(inputs)
        Rule(record.kernel, **record.kernel_inputs(hyper))


@pytest.mark.parametrize("record", RECORDS, ids=RECORD_IDS)
def test_record_is_complete(record):
    assert record.cls.record is record
    for situation in ("example", "quadratic", "least_squares"):
        assert situation in record.options, (record.method, situation)
    assert record.racers
    for racer in record.racers:
        assert racer.gradient in ("exact", "sample", "batch")
        assert set(racer.race_lr) == set(_race.DEFAULT_STEPS), racer.key
        assert all(rate > 0 for rate in racer.race_lr.values())
        assert racer.demo.get("lr", 0) > 0
    for h in record.hyperparameters:
        assert h.sample is not None, (record.method, h.name)
        h.check(h.default)  # every default passes its own check
    for slot in record.state:
        assert slot.initial is None or slot.initial in record.names


@pytest.mark.parametrize("record", RECORDS, ids=RECORD_IDS)
def test_constructor_signature_is_the_records(record):
    parameters = list(inspect.signature(record.cls).parameters.values())
    assert [p.name for p in parameters] == ["params", *(h.name for h in record.arguments),
                                            "n_threads", "flush_subnormals"]
    for p, h in zip(parameters[1:], record.arguments):
        assert p.default == h.default
        assert (p.kind is p.KEYWORD_ONLY) == h.keyword_only
    opt = record.cls(np.zeros(3))
    assert opt.hyperparameters == record.defaults


def test_every_consumer_lists_every_record():
    classes = {record.cls.__name__ for record in RECORDS}
    methods = {name for record in RECORDS for name in record.methods}
    assert classes | methods <= set(fastopt.__all__)
    assert set(METHODS) == methods == set(BY_METHOD)
    for record in RECORDS:
        assert getattr(fastopt, record.cls.__name__) is record.cls
        for name in record.methods:
            assert method_name(getattr(fastopt, name)) == name
        assert method_name(record.cls) == record.method
    assert set(_race.RACERS) == set(RACERS)
    assert {cls for _, cls, _, _ in _demo.METHODS} == {record.cls for record in RECORDS}


def test_a_record_that_disagrees_with_its_kernel_is_refused():
    adam_slots = kernel_spec("adam")[1]
    with pytest.raises(TypeError, match="state slots"):
        class WrongSlots(Optimizer):  # noqa: F841 (refused while the class is made)
            record = OptimizerRecord(
                method="wrong", kernel="adam", hyperparameters=(lr(1e-3), maximize()),
                state=tuple(StateSlot(name) for name in reversed(adam_slots)),
                kernel_inputs=dict)


def test_kernel_inputs_are_checked_by_name():
    with pytest.raises(ValueError, match="beta3"):
        Rule("adam", **{**dict.fromkeys(kernel_spec("adam")[0], 0.0), "beta3": 0.5})
    with pytest.raises(ValueError):
        Rule("no such kernel")


def test_derive_changes_defaults_and_pins_values():
    nag = fastopt.NAG.record
    assert nag.defaults["momentum"] == 0.9 and nag.fixed == {"nesterov": True}
    assert "nesterov" not in [h.name for h in nag.arguments]
    with pytest.raises(ValueError, match="no hyperparameters"):
        nag.derive(defaults={"no_such": 1})
    opt = fastopt.NAG(np.zeros(2))
    with pytest.raises(ValueError, match="NAG requires nesterov=True"):
        opt.nesterov = False
    assert opt.nesterov is True


def _record(**changes):
    fields = dict(method="user", kernel="sgd", hyperparameters=fastopt.SGD.record.hyperparameters,
                  state=fastopt.SGD.record.state, kernel_inputs=fastopt.SGD.record.kernel_inputs)
    return OptimizerRecord(**{**fields, **changes})


@pytest.mark.parametrize("name", ["params", "n_threads", "self", "step", "state",
                                  "state_dict", "hyperparameters", "a b", "_private", "lambda",
                                  "lr"])
def test_a_record_whose_hyperparameter_names_cannot_be_arguments_is_refused(name):
    # A name that cannot be a constructor argument, clashes with Optimizer's attributes (a
    # hyperparameter "step" would also overwrite the step count in state_dict), or repeats
    # one, is refused with a TypeError naming it when the class is made (it was a SyntaxError
    # from the generated constructor, or a hyperparameter silently shadowed by a method).
    hyperparameters = (*fastopt.SGD.record.hyperparameters, real(name, 0.0, low=0.0))
    with pytest.raises(TypeError, match="hyperparameter names"):
        class User(Optimizer):  # noqa: F841 (refused while the class is made)
            record = _record(hyperparameters=hyperparameters)


def test_a_record_without_lr_is_refused():
    hyperparameters = tuple(h for h in fastopt.SGD.record.hyperparameters if h.name != "lr")
    with pytest.raises(TypeError, match="no hyperparameter 'lr'"):
        class User(Optimizer):  # noqa: F841
            record = _record(hyperparameters=hyperparameters)


@pytest.mark.parametrize("kernel_inputs", [
    lambda h: {"lr": h["lr"], "beta": 0.9},                     # wrong names
    lambda h: {"lr": h["lr"]},                                   # missing ones
    lambda h: {**fastopt.SGD.record.kernel_inputs(h), "eps": 1},  # one too many
    lambda h: {"lr": h["no_such_hyperparameter"]},               # fails
])
def test_a_record_whose_kernel_inputs_disagree_with_its_kernel_is_refused(kernel_inputs):
    # Checked when the class is made, not at the first construction.
    with pytest.raises(TypeError, match="kernel_inputs|the kernel takes exactly"):
        class User(Optimizer):  # noqa: F841
            record = _record(kernel_inputs=kernel_inputs)


def test_a_record_whose_slot_needs_an_unknown_hyperparameter_is_refused():
    state = (StateSlot("momentum_buffer", needed=lambda h: h["no_such"] != 0),)
    with pytest.raises(TypeError, match="needed"):
        class User(Optimizer):  # noqa: F841
            record = _record(state=state)


def test_user_subclasses():
    # Without a record: the base class's optimizer under another name.
    class MyAdam(fastopt.Adam):
        pass

    w = np.ones(3)
    opt = MyAdam(w, lr=0.1)
    opt.step(np.ones(3))
    assert isinstance(opt, fastopt.Adam) and w[0] == pytest.approx(0.9)
    # A derived record may drop a hyperparameter of its base class: the base's attribute
    # is then unknown (AttributeError), not a KeyError.
    adam = fastopt.Adam.record
    kept = tuple(h for h in adam.hyperparameters if h.name != "amsgrad")

    class NoAmsgrad(fastopt.Adam):
        record = adam.derive(
            method="noamsgrad", hyperparameters=kept, defaults={"lr": 0.5},
            kernel_inputs=lambda h: adam.kernel_inputs({**h, "amsgrad": False}),
            state=tuple(replace(s, needed=lambda h: False) if s.needed else s
                        for s in adam.state))

    assert "amsgrad" not in inspect.signature(NoAmsgrad).parameters
    opt = NoAmsgrad(np.ones(2))
    assert opt.lr == 0.5 and "amsgrad" not in opt.hyperparameters
    with pytest.raises(AttributeError, match="amsgrad"):
        opt.amsgrad
    with pytest.raises(AttributeError, match="amsgrad"):
        opt.amsgrad = True
    assert "amsgrad" not in opt.hyperparameters
    opt.step(np.ones(2))
    assert list(opt.state[0]) == ["exp_avg", "exp_avg_sq"]


def test_race_help_names_every_racer():
    # The race's --help listed its racers by hand (and missed Adamax).
    from fastopt._cli import _build_parser

    race = _build_parser()[1]["race"]
    for record in RECORDS:
        for racer in record.racers:
            assert racer.label in race.description, racer.label


@pytest.mark.parametrize("doc", [fastopt.minimize.__doc__, fastopt.minimize_batch.__doc__,
                                 fastopt.minimize_minibatch.__doc__, fastopt.__doc__],
                         ids=["minimize", "minimize_batch", "minimize_minibatch", "fastopt"])
def test_docstrings_list_every_method_or_none_by_hand(doc):
    # A hand-written list of method names in a docstring goes stale when an optimizer is
    # added (minimize's and minimize_minibatch's missed "adamax"): a few examples, or all.
    quoted = [name for name in METHODS if f'``"{name}"``' in doc]
    assert len(quoted) <= 3 or set(quoted) == set(METHODS), sorted(set(METHODS) - set(quoted))
