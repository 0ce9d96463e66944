"""The optimizer records (fastopt/_record.py, fastopt/_registry.py): each is complete, agrees
with its kernel, and is what every consumer (exports, method callables, drivers, race, demo,
benchmarks) lists."""

import inspect

import numpy as np
import pytest

import fastopt
from fastopt import _demo, _race
from fastopt._base import Optimizer
from fastopt._methods import METHODS, method_name
from fastopt._record import OptimizerRecord, StateSlot, lr, maximize
from fastopt._registry import BY_METHOD, RACERS, RECORDS
from fastopt._step import Rule, kernel_kinds, kernel_spec

RECORD_IDS = [record.cls.__name__ for record in RECORDS]


@pytest.mark.parametrize("record", RECORDS, ids=RECORD_IDS)
def test_record_agrees_with_its_kernel(record):
    assert record.kernel in kernel_kinds()
    inputs, slots = kernel_spec(record.kernel)
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
                                            "n_threads"]
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
