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


# ---------------------------------------------------------------------------------------------
# The C schedules: where the Python scheduler raises, the C loops raise too (they used to run
# the rule with a negative learning rate, or, in minimize_batch, past OneCycleLR's end).

X0 = np.array([-1.2, 1.0, 0.5, -0.3])
X0_ROWS = np.array([[-1.2, 1.0, 0.5, -0.3], [0.3, -0.5, 1.5, 0.2], [1.1, 1.2, 0.9, 0.8]])

REFUSED_LR = {
    "cosine_negative_eta_min": lambda o: L.CosineAnnealingLR(o, T_max=10, eta_min=-1e-3),
    "warm_restarts_negative_eta_min": lambda o: L.CosineAnnealingWarmRestarts(
        o, T_0=10, eta_min=-1e-3),
    "exponential_negative_gamma": lambda o: L.ExponentialLR(o, gamma=-0.5),
    "step_negative_gamma": lambda o: L.StepLR(o, step_size=3, gamma=-0.5),
    "multistep_negative_gamma": lambda o: L.MultiStepLR(o, milestones=[3], gamma=-0.5),
    "one_cycle_linear_to_its_end": lambda o: L.OneCycleLR(
        o, max_lr=1e-3, total_steps=30, anneal_strategy="linear", three_phase=True),
    "chained_negative_gamma": lambda o: L.ChainedScheduler(
        [L.ExponentialLR(o, gamma=0.9), L.StepLR(o, step_size=4, gamma=-1.0)]),
}


def _python_steps_until_refused(factory):
    opt = fastopt.SGD(np.zeros(4), lr=2e-4, momentum=0.9)
    sched = factory(opt)
    for k in range(100):
        try:
            sched.step()
        except (ValueError, ZeroDivisionError):
            return k
    return None


@pytest.mark.parametrize("name", sorted(REFUSED_LR))
def test_c_schedule_stops_where_the_python_scheduler_raises(name):
    from fastopt import _schedule
    factory = REFUSED_LR[name]
    k = _python_steps_until_refused(factory)
    assert k is not None
    sched = factory(fastopt.SGD(np.zeros(4), lr=2e-4, momentum=0.9))
    lrs, _, n_ok = _schedule.run(sched, 100)
    assert n_ok == k
    assert np.all(lrs[:k] >= 0) and np.all(np.isnan(lrs[k:]))


@pytest.mark.parametrize("name", sorted(REFUSED_LR))
def test_minimize_c_path_refuses_a_bad_scheduled_lr(name):
    options = {"lr": 2e-4, "momentum": 0.9, "maxiter": 40, "lr_scheduler": REFUSED_LR[name]}
    llc = fastopt.problems.rosenbrock_lowlevel()
    with pytest.raises(ValueError, match="learning rate"):
        fastopt.minimize(llc, X0.copy(), method="sgd", options=options)


@pytest.mark.parametrize("per_problem_lr", [False, True])
@pytest.mark.parametrize("name", ["cosine_negative_eta_min", "one_cycle_linear_to_its_end",
                                  "step_negative_gamma"])
def test_minimize_batch_c_path_refuses_a_bad_scheduled_lr(name, per_problem_lr):
    lr = np.array([2e-4, 1e-4, 3e-4]) if per_problem_lr else 2e-4
    options = {"lr": lr, "momentum": 0.9, "maxiter": 40, "gtol": 0.0,
               "lr_scheduler": REFUSED_LR[name]}
    llc = fastopt.problems.rosenbrock_lowlevel()
    with pytest.raises(ValueError, match="learning rate"):
        fastopt.minimize_batch(llc, X0_ROWS.copy(), method="sgd", options=options)


@pytest.mark.parametrize("callback", [None, lambda result: None])
def test_minimize_batch_c_path_refuses_one_cycle_past_its_end(callback):
    # minimize raised here; minimize_batch's C loops ran on with the last rate
    options = {"lr": 1e-2, "maxiter": 60, "gtol": 0.0,
               "lr_scheduler": lambda o: L.OneCycleLR(o, max_lr=1e-2, total_steps=30)}
    llc = fastopt.problems.rosenbrock_lowlevel()
    with pytest.raises(ValueError, match="total"):
        fastopt.minimize_batch(llc, X0_ROWS.copy(), method="adam", options=options,
                               callback=callback)


def test_warm_restarts_refuses_a_group_added_since_it_was_built():
    # torch's CosineAnnealingWarmRestarts.step zips strictly (ValueError); fastopt's stepped
    # the first group only and left the new one at its lr, silently.
    opt = fastopt.SGD([np.zeros(3)], lr=0.1, momentum=0.9)
    sched = L.CosineAnnealingWarmRestarts(opt, T_0=3)
    sched.step()
    opt.add_param_group({"params": [np.zeros(2)], "lr": 0.5})
    before = _snapshot(sched)
    with pytest.raises(ValueError, match="param groups"):
        sched.step()
    assert _snapshot(sched) == before


class _SlottedOptimizer:
    """An optimizer-like object that cannot be weakly referenced (no __weakref__)."""

    __slots__ = ("param_groups",)

    def __init__(self, lr):
        self.param_groups = [{"lr": lr}]


def test_scheduler_of_a_non_weakrefable_optimizer_gets_its_own_initial_lr():
    # The scheduler keys of such optimizers were kept by id(): a new optimizer at a freed id
    # inherited the old one's initial_lr (its base_lrs were another optimizer's).
    import gc
    for i in range(20):
        lr = 0.01 * (i + 1)
        opt = _SlottedOptimizer(lr)
        sched = L.StepLR(opt, step_size=2)
        assert sched.base_lrs == [lr]
        del opt, sched
        gc.collect()


@pytest.mark.parametrize("build", [
    lambda o: L.OneCycleLR(o, max_lr=-0.1, total_steps=10),
    lambda o: L.CyclicLR(o, base_lr=-0.01, max_lr=0.1),
    lambda o: L.CyclicLR(o, base_lr=0.01, max_lr=0.1, base_momentum=-0.5, max_momentum=-0.1),
    lambda o: L.OneCycleLR(o, max_lr=0.1, total_steps=10, max_momentum=-0.5),
    lambda o: L.CosineAnnealingLR(o, T_max=0),
], ids=["one_cycle_negative_max_lr", "cyclic_negative_base_lr", "cyclic_negative_momentum",
        "one_cycle_negative_momentum", "cosine_bad_T_max"])
def test_failed_scheduler_constructor_leaves_the_optimizer_as_it_was(build):
    # A constructor that raised used to leave the groups' lr/momentum changed and its
    # initial_lr / max_lr / ... recorded for the optimizer: the next scheduler of it started
    # from the failed one's initial_lr.
    opt = _sgd2()
    before = _hypers(opt)
    with pytest.raises((TypeError, ValueError)):
        build(opt)
    assert _hypers(opt) == before
    sched = L.StepLR(opt, step_size=2)
    assert sched.base_lrs == [0.1, 0.2]
    assert sched.get_last_lr() == [0.1, 0.2]
