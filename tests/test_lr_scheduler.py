"""fastopt.lr_scheduler against torch.optim.lr_scheduler, and the C schedules against both.

The learning rates (and the momentum / beta1 CyclicLR and OneCycleLR schedule) are compared
bitwise: the schedulers evaluate torch's formulas in torch's order on Python floats, and the C
schedules (fastopt/_schedule.pyx) the same formulas in C. The torch tests (their names contain
"torch") skip where torch is not installed; the C-versus-Python ones need nothing else.
"""

import copy
import doctest
import math
import pickle
import warnings

import numpy as np
import pytest

import fastopt
from fastopt import _schedule
from fastopt import lr_scheduler as ls

STEPS = 300


class FakeOptimizer:
    """Any object with torch's param_groups (a list of dicts) will do for a scheduler: several
    groups, before fastopt's optimizers have them."""

    def __init__(self, groups):
        self.param_groups = groups


# Each case: name -> builder(L, opt), L being fastopt.lr_scheduler or torch's. The cases cover
# every scheduler and their options: periods shorter than the run (restarts, cycles), steps past
# the ends of LinearLR/PolynomialLR/CosineAnnealingLR's T_max, nested composites.
CASES = {
    "LambdaLR": lambda L, o: L.LambdaLR(o, lambda k: 0.97 ** k),
    "MultiplicativeLR": lambda L, o: L.MultiplicativeLR(o, lambda k: 0.99 if k % 3 else 1.01),
    "StepLR": lambda L, o: L.StepLR(o, step_size=7, gamma=0.5),
    "StepLR-default": lambda L, o: L.StepLR(o, 30),
    "MultiStepLR": lambda L, o: L.MultiStepLR(o, milestones=[50, 3, 10, 10], gamma=0.3),
    "ConstantLR": lambda L, o: L.ConstantLR(o, factor=0.25, total_iters=13),
    "ConstantLR-default": lambda L, o: L.ConstantLR(o),
    "LinearLR": lambda L, o: L.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=17),
    "LinearLR-down": lambda L, o: L.LinearLR(o, start_factor=1.0, end_factor=0.0,
                                             total_iters=40),
    "ExponentialLR": lambda L, o: L.ExponentialLR(o, gamma=0.987),
    "PolynomialLR": lambda L, o: L.PolynomialLR(o, total_iters=150, power=1.7),
    "PolynomialLR-default": lambda L, o: L.PolynomialLR(o),
    "CosineAnnealingLR": lambda L, o: L.CosineAnnealingLR(o, T_max=37, eta_min=0.001),
    "CosineAnnealingLR-long": lambda L, o: L.CosineAnnealingLR(o, T_max=1000),
    "CosineAnnealingWarmRestarts": lambda L, o: L.CosineAnnealingWarmRestarts(
        o, T_0=5, T_mult=2, eta_min=1e-4),
    "CosineAnnealingWarmRestarts-1": lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=11),
    "CyclicLR": lambda L, o: L.CyclicLR(o, base_lr=0.01, max_lr=0.2, step_size_up=11),
    "CyclicLR-triangular2": lambda L, o: L.CyclicLR(o, 0.01, 0.2, 11, 7,
                                                    mode="triangular2"),
    "CyclicLR-exp_range": lambda L, o: L.CyclicLR(o, 0.02, 0.2, 9, mode="exp_range",
                                                  gamma=0.995, base_momentum=0.7,
                                                  max_momentum=0.95),
    "CyclicLR-no-momentum": lambda L, o: L.CyclicLR(o, 0.01, 0.1, 5, 13,
                                                    cycle_momentum=False),
    "OneCycleLR": lambda L, o: L.OneCycleLR(o, max_lr=0.3, total_steps=STEPS + 1),
    "OneCycleLR-linear-3": lambda L, o: L.OneCycleLR(
        o, max_lr=0.3, total_steps=STEPS + 1, three_phase=True, anneal_strategy="linear",
        pct_start=0.25),
    "OneCycleLR-epochs": lambda L, o: L.OneCycleLR(
        o, max_lr=1.0, epochs=10, steps_per_epoch=30, cycle_momentum=False, div_factor=10.0,
        final_div_factor=100.0),
    "SequentialLR": lambda L, o: L.SequentialLR(
        o, [L.LinearLR(o, start_factor=0.1, total_iters=10), L.CosineAnnealingLR(o, T_max=50),
            L.StepLR(o, 9, 0.7)], milestones=[10, 60]),
    "SequentialLR-restarts": lambda L, o: L.SequentialLR(
        o, [L.ConstantLR(o, 0.5, 4), L.CosineAnnealingWarmRestarts(o, T_0=7),
            L.ExponentialLR(o, 0.99), L.MultiStepLR(o, [0, 5, 40]),
            L.PolynomialLR(o, 30, 2.0)], milestones=[20, 50, 80, 140]),
    "SequentialLR-cyclic": lambda L, o: L.SequentialLR(
        o, [L.ExponentialLR(o, 0.9), L.CyclicLR(o, 0.01, 0.1, 6)], milestones=[15]),
    "ChainedScheduler": lambda L, o: L.ChainedScheduler(
        [L.ConstantLR(o, 0.5, 20), L.ExponentialLR(o, 0.99),
         L.CosineAnnealingWarmRestarts(o, 13)]),
    "ChainedScheduler-nested": lambda L, o: L.ChainedScheduler(
        [L.SequentialLR(o, [L.LinearLR(o, 0.2, total_iters=5), L.StepLR(o, 10)],
                        milestones=[5]),
         L.MultiStepLR(o, [100, 200], 0.5)]),
    "ReduceLROnPlateau": lambda L, o: L.ReduceLROnPlateau(o, patience=3, cooldown=2,
                                                          factor=0.5, min_lr=1e-3),
    "ReduceLROnPlateau-max-abs": lambda L, o: L.ReduceLROnPlateau(
        o, mode="max", threshold=0.05, threshold_mode="abs", patience=2, factor=0.7),
    "ReduceLROnPlateau-default": lambda L, o: L.ReduceLROnPlateau(o),
}
PYTHON_ONLY = {"LambdaLR", "MultiplicativeLR"}
MOMENTUM = {"CyclicLR", "CyclicLR-triangular2", "CyclicLR-exp_range", "OneCycleLR",
            "OneCycleLR-linear-3", "SequentialLR-cyclic"}


def _metrics(n, name=""):
    """Metrics with improvements, plateaus, repeats and a NaN (for ReduceLROnPlateau)."""
    rng = np.random.default_rng(14)
    size = max(n, 200)
    m = 100.0 / (1.0 + np.arange(size) // 9) + rng.standard_normal(size) * 0.3
    m[40:70] = m[40]
    m[100] = np.nan
    return (-m if "max" in name else m)[:n]


def _step(sched, name, k, metrics):
    if name.startswith("ReduceLROnPlateau"):
        sched.step(metrics[k])
    else:
        sched.step()


def _momentum(group):
    return group["momentum"] if "momentum" in group else group["betas"][0]


def _fastopt_optimizer(kind, lr=0.1):
    w = np.zeros(3)
    if kind == "momentum":
        return fastopt.SGD(w, lr=lr, momentum=0.9)
    return fastopt.Adam(w, lr=lr)


def _trace(opt, sched, name, steps, start=0):
    """Learning rates and momentums of every group after each of ``steps`` steps."""
    metrics = _metrics(start + steps, name)
    lrs, moms = [], []
    for k in range(start, start + steps):
        _step(sched, name, k, metrics)
        lrs.append([g["lr"] for g in opt.param_groups])
        moms.append([_momentum(g) for g in opt.param_groups])
        assert sched.get_last_lr() == lrs[-1]
    return lrs, moms


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _torch_optimizer(torch, kind, lrs):
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in lrs]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, lrs)]
    if kind == "momentum":
        return torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    return torch.optim.Adam(groups)


def _torch_pair(torch, name, kind, n_groups):
    """(torch optimizer, its scheduler, fastopt's optimizer, its scheduler)."""
    lrs = [0.1, 0.05, 0.3][:n_groups]
    topt = _torch_optimizer(torch, kind, lrs)
    if n_groups == 1:
        fopt = _fastopt_optimizer(kind, lrs[0])
    else:
        extra = {"momentum": 0.9} if kind == "momentum" else {"betas": (0.9, 0.999)}
        fopt = FakeOptimizer([{"params": [], "lr": lr, **extra} for lr in lrs])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's warning: scheduler stepped before optimizer
        return topt, CASES[name](torch.optim.lr_scheduler, topt), fopt, CASES[name](ls, fopt)


@pytest.mark.parametrize("n_groups", [1, 2])
@pytest.mark.parametrize("kind", ["momentum", "betas"])
@pytest.mark.parametrize("name", list(CASES))
def test_learning_rates_equal_torch(torch, name, kind, n_groups):
    topt, tsched, fopt, fsched = _torch_pair(torch, name, kind, n_groups)
    assert fsched.get_last_lr() == tsched.get_last_lr()
    assert [_momentum(g) for g in fopt.param_groups] == [_momentum(g) for g in
                                                         topt.param_groups]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = _trace(topt, tsched, name, STEPS)
    assert _trace(fopt, fsched, name, STEPS) == expected
    assert getattr(fsched, "last_epoch", None) == getattr(tsched, "last_epoch", None)


@pytest.mark.parametrize("how", ["state_dict", "torch_state_dict", "pickle"])
@pytest.mark.parametrize("name", list(CASES))
def test_state_dict_round_trip_mid_run_torch(torch, name, how):
    # Run 120 steps, save, restore into a fresh optimizer and scheduler (torch's recipe:
    # build them as at the start, then load), run on: torch's numbers throughout.
    if how == "pickle" and name in PYTHON_ONLY:
        pytest.skip("a lambda cannot be pickled (torch's neither)")
    kind = "betas" if "exp_range" in name else "momentum"
    topt, tsched, fopt, fsched = _torch_pair(torch, name, kind, 1)
    metrics = _metrics(STEPS, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(120):
            _step(tsched, name, k, metrics)
            _step(fsched, name, k, metrics)
        if how == "pickle":
            fsched = pickle.loads(pickle.dumps(fsched))
            fopt = fsched.optimizer
        else:
            saved = copy.deepcopy(tsched.state_dict() if how == "torch_state_dict"
                                  else fsched.state_dict())
            opt_state = fopt.state_dict()
            fopt = _fastopt_optimizer(kind)
            fsched = CASES[name](ls, fopt)
            fopt.load_state_dict(opt_state)
            fsched.load_state_dict(saved)
        assert fsched.get_last_lr() == tsched.get_last_lr()
        expected = _trace(topt, tsched, name, STEPS - 120, start=120)
    assert _trace(fopt, fsched, name, STEPS - 120, start=120) == expected


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
                                  "ExponentialLR", "PolynomialLR", "CosineAnnealingLR",
                                  "CosineAnnealingWarmRestarts"])
def test_step_with_epoch_uses_the_closed_form_as_torch(torch, name):
    topt, tsched, fopt, fsched = _torch_pair(torch, name, "momentum", 2)
    for epoch in [5, 3, 17, 0, 40, 41, 7, 12.5 if "Warm" in name else 12]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tsched.step(epoch)
            fsched.step(epoch)
        # (torch's CosineAnnealingWarmRestarts takes an epoch without the warning)
        assert any("deprecated" in str(w.message) for w in caught) != ("Warm" in name)
        assert fsched.get_last_lr() == tsched.get_last_lr()


def test_resume_with_last_epoch_torch(torch):
    # torch resumes from last_epoch with the groups' initial_lr that an earlier scheduler
    # recorded; fastopt keeps it next to the optimizer, with the same effect.
    topt, tsched, fopt, fsched = _torch_pair(torch, "ExponentialLR", "momentum", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(5):
            tsched.step()
            fsched.step()
        tsched = torch.optim.lr_scheduler.StepLR(topt, step_size=4, gamma=0.5, last_epoch=9)
        fsched = ls.StepLR(fopt, step_size=4, gamma=0.5, last_epoch=9)
        assert fsched.base_lrs == tsched.base_lrs == [0.1]
        expected = _trace(topt, tsched, "StepLR", 30)
    assert _trace(fopt, fsched, "StepLR", 30) == expected
    with pytest.raises(KeyError, match="initial_lr"):
        ls.StepLR(_fastopt_optimizer("momentum"), step_size=4, last_epoch=9)


def test_cycled_momentum_reaches_the_optimizer_torch(torch):
    # The momentum CyclicLR schedules is the one SGD uses: the trajectory equals torch's.
    rng = np.random.default_rng(3)
    w = rng.standard_normal(6)
    tw = torch.nn.Parameter(torch.from_numpy(w.copy()))
    topt = torch.optim.SGD([tw], lr=0.1, momentum=0.9)
    fopt = fastopt.SGD(w, lr=0.1, momentum=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.05, total_steps=40)
    fsched = ls.OneCycleLR(fopt, max_lr=0.05, total_steps=40)
    for _ in range(40):
        g = rng.standard_normal(6)
        tw.grad = torch.from_numpy(g.copy())
        topt.step()
        fopt.step(g)
        tsched.step()
        fsched.step()
        assert fopt.momentum == topt.param_groups[0]["momentum"]
    np.testing.assert_allclose(w, tw.detach().numpy(), rtol=1e-12, atol=1e-14)


GROUP_CASES = {
    "StepLR": lambda L, o: L.StepLR(o, step_size=10, gamma=0.5),
    "OneCycleLR": lambda L, o: L.OneCycleLR(o, max_lr=[0.2, 0.05], total_steps=100),
    "CyclicLR": lambda L, o: L.CyclicLR(o, base_lr=[0.01, 0.001], max_lr=[0.1, 0.02],
                                        step_size_up=7, base_momentum=[0.8, 0.7],
                                        max_momentum=0.9),
    "warmup-cosine": lambda L, o: L.SequentialLR(
        o, [L.LinearLR(o, start_factor=0.1, total_iters=10), L.CosineAnnealingLR(o, 120)],
        milestones=[10]),
    "ReduceLROnPlateau": lambda L, o: L.ReduceLROnPlateau(o, patience=2, factor=0.5,
                                                          min_lr=[1e-3, 1e-4]),
}


@pytest.mark.parametrize("kind", ["momentum", "betas"])
@pytest.mark.parametrize("name", list(GROUP_CASES))
def test_parameter_groups_trajectories_equal_torch(torch, name, kind):
    # fastopt's optimizers with torch's list of groups (per-group lr and weight decay): one
    # learning rate (and momentum) per group, scheduled as torch does, the same trajectory.
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(s) for s in [(3, 2), (2,), (4,)]]
    tparams = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in arrays]
    spec = [({"lr": 0.1}, [0, 1]), ({"lr": 0.02, "weight_decay": 1e-2}, [2])]
    cls, tcls, extra = ((fastopt.SGD, torch.optim.SGD, {"momentum": 0.9}) if kind == "momentum"
                        else (fastopt.Adam, torch.optim.Adam, {}))
    fopt = cls([{"params": [arrays[i] for i in idx], **h} for h, idx in spec], lr=0.05,
               **extra)
    topt = tcls([{"params": [tparams[i] for i in idx], **h} for h, idx in spec], lr=0.05,
                **extra)
    fsched = GROUP_CASES[name](ls, fopt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tsched = GROUP_CASES[name](torch.optim.lr_scheduler, topt)
    metrics = _metrics(100)
    for k in range(100):
        grads = [rng.standard_normal(a.shape) for a in arrays]
        fopt.step(grads)
        for p, g in zip(tparams, grads):
            p.grad = torch.from_numpy(g.copy())
        topt.step()
        _step(fsched, name, k, metrics)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _step(tsched, name, k, metrics)
        assert [g["lr"] for g in fopt.param_groups] == [g["lr"] for g in topt.param_groups]
        assert [_momentum(g) for g in fopt.param_groups] == \
            [_momentum(g) for g in topt.param_groups]
    assert len({g["lr"] for g in fopt.param_groups}) == 2
    for a, p in zip(arrays, tparams):
        np.testing.assert_allclose(a, p.detach().numpy(), rtol=1e-10, atol=1e-12)


# -- without torch ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["momentum", "betas"])
@pytest.mark.parametrize("start", [0, 37])
@pytest.mark.parametrize("name", [n for n in CASES if n not in PYTHON_ONLY])
def test_c_schedule_equals_python_bitwise(name, kind, start):
    opt = _fastopt_optimizer(kind)
    sched = CASES[name](ls, opt)
    metrics = _metrics(start + STEPS, name)
    for k in range(start):
        _step(sched, name, k, metrics)
    assert _schedule.supported(sched)
    lrs, moms, n_ok = _schedule.run(sched, STEPS, metrics[start:])
    assert opt.param_groups[0]["lr"] == sched.get_last_lr()[0]  # run leaves it as it was
    expected_lrs, expected_moms = [], []
    for k in range(start, start + STEPS):
        try:
            _step(sched, name, k, metrics)
        except ValueError as exc:
            assert "OneCycleLR" in name
            # past total_steps, or torch's linear anneal at step total_steps overshooting
            # min_lr, here below 0 (the optimizer refuses it): the C schedule stops there too
            assert k - start == n_ok, str(exc)
            break
        expected_lrs.append(opt.param_groups[0]["lr"])
        expected_moms.append(_momentum(opt.param_groups[0]))
    else:
        assert n_ok == STEPS
    assert lrs[:n_ok].tolist() == expected_lrs
    if name in MOMENTUM:
        assert moms[:n_ok].tolist() == expected_moms
    else:
        assert np.isnan(moms).all()


def test_c_schedule_past_onecycle_total_steps():
    opt = _fastopt_optimizer("momentum")
    sched = ls.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    lrs, moms, n_ok = _schedule.run(sched, 12)
    assert n_ok == 10 and np.isnan(lrs[10:]).all() and np.isfinite(lrs[:10]).all()
    for _ in range(10):
        sched.step()
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        sched.step()


@pytest.mark.parametrize("build", [
    lambda o: ls.LambdaLR(o, lambda k: 1.0),
    lambda o: ls.MultiplicativeLR(o, lambda k: 1.0),
    lambda o: ls.CyclicLR(o, 0.01, 0.1, scale_fn=lambda x: 1.0),
    lambda o: ls.SequentialLR(o, [ls.StepLR(o, 3), ls.LambdaLR(o, lambda k: 1.0)], [5]),
    lambda o: ls.ChainedScheduler([ls.StepLR(o, 3), ls.MultiplicativeLR(o, lambda k: 1.0)]),
    lambda o: ls.SequentialLR(o, [ls.StepLR(o, 3), ls.ChainedScheduler([ls.StepLR(o, 3)])],
                              [5]),
], ids=["LambdaLR", "MultiplicativeLR", "scale_fn", "Sequential-lambda", "Chained-lambda",
        "Sequential-restarting-composite"])
def test_schedules_that_need_python_raise_typeerror(build):
    sched = build(_fastopt_optimizer("momentum"))
    with pytest.raises(TypeError):
        _schedule.run(sched, 3)
    assert not _schedule.supported(sched)


def test_c_schedule_needs_one_group():
    opt = FakeOptimizer([{"params": [], "lr": 0.1}, {"params": [], "lr": 0.2}])
    with pytest.raises(TypeError, match="one-group"):
        _schedule.run(ls.StepLR(opt, 3), 3)
    opt = FakeOptimizer([{"params": [], "lr": 0.1}])
    assert _schedule.run(ls.StepLR(opt, 3, gamma=0.5), 3)[0].tolist() == [0.1, 0.1, 0.05]


def test_c_schedule_too_big_is_refused():
    opt = _fastopt_optimizer("momentum")
    chain = ls.ChainedScheduler([ls.ExponentialLR(opt, 0.99) for _ in range(9)])
    with pytest.raises(TypeError, match="at most"):
        _schedule.run(chain, 2)
    many = ls.MultiStepLR(opt, milestones=range(1, 100))
    with pytest.raises(TypeError, match="milestones"):
        _schedule.run(many, 2)


def test_c_schedule_refuses_inconsistent_state():
    # A scheduler changed by hand into a state Python cannot step either: refused, never read
    # out of bounds.
    opt = _fastopt_optimizer("momentum")
    seq = ls.SequentialLR(opt, [ls.StepLR(opt, 3), ls.ExponentialLR(opt, 0.9)], [5])
    seq._milestones = [1, 2, 3]
    with pytest.raises(TypeError, match="milestones"):
        _schedule.run(seq, 10)
    step = ls.StepLR(opt, 3)
    step.last_epoch = "3"
    with pytest.raises(TypeError, match="last_epoch"):
        _schedule.run(step, 10)


def test_run_checks_its_arguments():
    sched = ls.ReduceLROnPlateau(_fastopt_optimizer("momentum"))
    with pytest.raises(ValueError, match="metrics"):
        _schedule.run(sched, 3, [1.0, 2.0])
    with pytest.raises(ValueError, match="steps"):
        _schedule.run(sched, -1)
    with pytest.raises(TypeError):
        _schedule.run(object(), 3)


def test_sequential_children_start_from_the_initial_lr():
    # The second scheduler's base_lrs are the optimizer's learning rate before the first one
    # changed it (torch's initial_lr, shared by every scheduler of an optimizer).
    opt = _fastopt_optimizer("momentum", lr=1.0)
    warm = ls.LinearLR(opt, start_factor=0.1, total_iters=5)
    assert opt.lr == 0.1
    cos = ls.CosineAnnealingLR(opt, T_max=10)
    assert cos.base_lrs == [1.0]
    seq = ls.SequentialLR(opt, [warm, cos], milestones=[5])
    lrs = []
    for _ in range(15):
        seq.step()
        lrs.append(opt.lr)
    assert lrs[4] == 1.0  # the cosine restarted at its base, 1.0
    assert lrs[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 10 / 10)) + 0.0, abs=1e-12)


def test_cyclic_momentum_on_fastopt_optimizers():
    for opt, key in [(_fastopt_optimizer("momentum"), "momentum"),
                     (_fastopt_optimizer("betas"), "betas")]:
        sched = ls.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=2)
        assert sched.get_last_lr() == [0.01]
        sched.step()
        value = opt.param_groups[0][key]
        # torch's formula at x = 1/2: max - (max - base) * 1/2
        assert (value if key == "momentum" else value[0]) == 0.9 - (0.9 - 0.8) * 0.5
        if key == "betas":
            assert value[1] == 0.999 and opt.betas == value
    with pytest.raises(ValueError, match="momentum or beta1"):
        ls.OneCycleLR(fastopt.Adagrad(np.zeros(2)), max_lr=0.1, total_steps=10)
    ls.OneCycleLR(fastopt.Adagrad(np.zeros(2)), max_lr=0.1, total_steps=10,
                  cycle_momentum=False)


@pytest.mark.parametrize("build, match", [
    (lambda o: ls.StepLR(o, 0), "step_size"),
    (lambda o: ls.StepLR(o, 2.5), "step_size"),
    (lambda o: ls.StepLR(o, 3, gamma="x"), "gamma"),
    (lambda o: ls.MultiStepLR(o, 3), "milestones"),
    (lambda o: ls.ConstantLR(o, factor=1.5), "factor"),
    (lambda o: ls.LinearLR(o, start_factor=0), "start_factor"),
    (lambda o: ls.LinearLR(o, total_iters=-1), "total_iters"),
    (lambda o: ls.CosineAnnealingLR(o, T_max=0), "T_max"),
    (lambda o: ls.CosineAnnealingWarmRestarts(o, T_0=0), "T_0"),
    (lambda o: ls.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=0), "T_mult"),
    (lambda o: ls.CyclicLR(o, 0.01, 0.1, mode="zigzag"), "mode"),
    (lambda o: ls.CyclicLR(o, [0.01, 0.02], 0.1), "base_lr"),
    (lambda o: ls.CyclicLR(o, 0.01, 0.1, base_momentum=float("nan")), "base_momentum"),
    (lambda o: ls.OneCycleLR(o, 0.1), "total_steps"),
    (lambda o: ls.OneCycleLR(o, 0.1, total_steps=10, pct_start=2.0), "pct_start"),
    (lambda o: ls.OneCycleLR(o, 0.1, total_steps=10, anneal_strategy="exp"), "anneal"),
    (lambda o: ls.ReduceLROnPlateau(o, factor=1.0), "actor"),
    (lambda o: ls.ReduceLROnPlateau(o, mode="up"), "mode"),
    (lambda o: ls.ReduceLROnPlateau(o, threshold_mode="x"), "threshold"),
    (lambda o: ls.ReduceLROnPlateau(o, patience=-1), "patience"),
    (lambda o: ls.SequentialLR(o, [ls.StepLR(o, 3)], milestones=[3]), "milestones"),
    (lambda o: ls.SequentialLR(o, [ls.ReduceLROnPlateau(o)], milestones=[]), "Plateau"),
    (lambda o: ls.ChainedScheduler([]), "at least one"),
    (lambda o: ls.StepLR(o, 3, last_epoch=-2), "last_epoch"),
    (lambda o: ls.StepLR(object(), 3), "Optimizer"),
])
def test_bad_arguments_are_refused_and_change_nothing(build, match):
    opt = _fastopt_optimizer("momentum", lr=0.1)
    before = dict(opt.param_groups[0])
    with pytest.raises((TypeError, ValueError), match=match):
        build(opt)
    after = dict(opt.param_groups[0])
    assert {k: v for k, v in after.items() if k != "params"} == \
        {k: v for k, v in before.items() if k != "params"}


def test_other_optimizers_schedulers_are_refused():
    a, b = _fastopt_optimizer("momentum"), _fastopt_optimizer("momentum")
    with pytest.raises(ValueError, match="same optimizer"):
        ls.ChainedScheduler([ls.StepLR(a, 3), ls.StepLR(b, 3)])
    with pytest.raises(ValueError, match="same optimizer"):
        ls.SequentialLR(a, [ls.StepLR(a, 3), ls.StepLR(b, 3)], milestones=[2])


def test_get_lr_outside_step_warns_as_torch():
    sched = ls.StepLR(_fastopt_optimizer("momentum"), 3)
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()
    assert sched.get_last_lr() is not sched._last_lr  # a copy: the caller cannot change it


def test_docstring_examples():
    result = doctest.testmod(ls, raise_on_error=False, verbose=False)
    assert result.failed == 0 and result.attempted >= 15


def test_exported():
    assert fastopt.lr_scheduler is ls
    assert "lr_scheduler" in fastopt.__all__
    assert len([n for n in ls.__all__ if n != "LRScheduler"]) == 15


@pytest.mark.parametrize("composite", ["SequentialLR", "ChainedScheduler"])
@pytest.mark.parametrize("bad_child, error, match", [
    (lambda opt, other: object(), TypeError, "at index 1 should have `optimizer`"),
    (lambda opt, other: ls.ReduceLROnPlateau(opt), ValueError, "does not support `ReduceLROnP"),
    (lambda opt, other: ls.StepLR(other, 3), ValueError, "belong to the same optimizer"),
])
def test_composites_check_their_children_as_torch(composite, bad_child, error, match):
    opt = fastopt.SGD(np.zeros(3), lr=0.1)
    other = fastopt.SGD(np.zeros(3), lr=0.1)
    children = [ls.StepLR(opt, 3), bad_child(opt, other)]
    with pytest.raises(error, match=f"{composite} .*{match}"):
        if composite == "SequentialLR":
            ls.SequentialLR(opt, children, milestones=[2])
        else:
            ls.ChainedScheduler(children)
    assert opt.lr == 0.1
