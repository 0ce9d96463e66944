"""Adversarial checks of issue 14's parameter groups and schedulers: a call that is refused
leaves the optimizer and the scheduler exactly as they were."""

import math

import numpy as np
import pytest

import fastopt
from fastopt import lr_scheduler as L


def _two_group_adam():
    return fastopt.Adam([{"params": [np.zeros(3)], "lr": 0.1},
                         {"params": [np.zeros(2)], "betas": (0.8, 0.9)}], lr=0.01)


def _hypers(opt):
    return [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]


@pytest.mark.parametrize("changes, error", [
    ({"lr": 0.2, "no_such_key": 1}, KeyError),
    ({"lr": 0.2, "betas": (2.0, 0.9)}, ValueError),
    ({"eps": 1e-6, "params": [np.zeros(3)]}, TypeError),
    ({"weight_decay": 0.5, "lr": float("nan")}, ValueError),
])
def test_param_group_update_is_all_or_nothing(changes, error):
    opt = _two_group_adam()
    before = _hypers(opt)
    with pytest.raises(error):
        opt.param_groups[0].update(changes)
    assert _hypers(opt) == before


def test_param_group_update_sets_every_key_of_one_group():
    opt = _two_group_adam()
    opt.param_groups[0].update({"lr": 0.3}, betas=[0.5, 0.6])
    assert opt.param_groups[0]["lr"] == 0.3
    assert opt.param_groups[0]["betas"] == (0.5, 0.6)
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["betas"] == (0.8, 0.9)


def _snapshot(sched):
    state = sched.state_dict()
    groups = [{k: g[k] for k in ("lr", "momentum", "betas") if k in g}
              for g in sched.optimizer.param_groups]
    return repr(state), groups


def _sgd2(**kw):
    return fastopt.SGD([{"params": [np.zeros(2)], "lr": 0.1},
                        {"params": [np.zeros(3)], "lr": 0.2}], momentum=0.9, **kw)


def _failing_cases():
    # LambdaLR whose second group's factor turns negative at step 3
    def lam(opt):
        return L.LambdaLR(opt, [lambda k: 1.0, lambda k: 1.0 - k / 2.5])

    def cos(opt):  # a negative eta_min: torch would set a negative lr
        return L.CosineAnnealingLR(opt, T_max=4, eta_min=-0.5)

    def warm(opt):
        return L.CosineAnnealingWarmRestarts(opt, T_0=5, eta_min=-0.5)

    def one_cycle(opt):  # stepped to total_steps, the linear anneal goes below 0
        return L.OneCycleLR(opt, [0.5, 1.0], total_steps=10, anneal_strategy="linear",
                            three_phase=True)

    def chained(opt):  # the first child steps fine, the second one's lr is refused
        return L.ChainedScheduler([L.ExponentialLR(opt, 0.9),
                                   L.LambdaLR(opt, lambda k: 1.0 - k / 2.5)])

    def sequential(opt):
        return L.SequentialLR(opt, [L.ConstantLR(opt, 0.5, total_iters=1),
                                    L.LambdaLR(opt, lambda k: 1.0 - k / 2.5)], [2])
    return [lam, cos, warm, one_cycle, chained, sequential]


@pytest.mark.parametrize("build", _failing_cases(), ids=lambda f: f.__name__)
def test_scheduler_step_that_raises_changes_nothing(build):
    opt = _sgd2()
    sched = build(opt)
    for _ in range(40):
        before = _snapshot(sched)
        last = sched.get_last_lr()
        try:
            sched.step()
        except ValueError:
            break
    else:
        pytest.fail("the schedule never produced a refused learning rate")
    assert _snapshot(sched) == before
    assert sched.get_last_lr() == last
    # and it raises the same way again (it did not move on)
    with pytest.raises(ValueError):
        sched.step()
    assert _snapshot(sched) == before
    assert all(math.isfinite(g["lr"]) and g["lr"] >= 0 for g in opt.param_groups)


def test_scheduler_step_epoch_that_raises_changes_nothing():
    opt = _sgd2()
    sched = L.CosineAnnealingLR(opt, T_max=10, eta_min=-1.0)
    before = _snapshot(sched)
    with pytest.warns(UserWarning, match="epoch parameter"), pytest.raises(ValueError):
        sched.step(5)
    assert _snapshot(sched) == before
