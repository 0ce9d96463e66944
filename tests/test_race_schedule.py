"""``race --schedule``: the race with a learning-rate schedule (fastopt.lr_scheduler through
the drivers' ``lr_scheduler`` option), every racer, every schedule."""

import numpy as np
import pytest

import fastopt
from fastopt import problems
from fastopt._cli import main
from fastopt._race import (DEFAULT_LR, RACERS, SCHEDULES, check_schedule, format_table,
                           run_race, schedule_factory)


@pytest.mark.parametrize("schedule", ["cosine", "warmup-cosine", "onecycle", "step",
                                      "exponential"])
def test_race_path_equals_a_hand_written_loop(schedule):
    # An exact-gradient racer with a schedule: the path is the optimizer's class stepped by
    # hand with the same scheduler after every step.
    steps = 60
    problem = problems.get("booth")
    _, results = run_race("booth", ["momentum", "adam"], steps=steps, schedule=schedule)
    for result in results:
        cls = {"momentum": fastopt.Momentum, "adam": fastopt.Adam}[result.key]
        x = problem.x0.astype(float).copy()
        opt = cls(x, lr=DEFAULT_LR["booth"][result.key])
        sched = schedule_factory(schedule, steps)(opt)
        path = [x.copy()]
        for _ in range(steps):
            opt.step(problem.grad(x))
            sched.step()
            path.append(x.copy())
        # (minimize's loop evaluates a few scalars in another order than the class: to
        # rounding, as tests/test_driver_schedules.py's hand-written loops)
        np.testing.assert_allclose(result.path, np.array(path), rtol=1e-11, atol=1e-12)


def test_a_schedule_changes_the_race():
    _, plain = run_race("booth", ["adam"], steps=200)
    _, decayed = run_race("booth", ["adam"], steps=200, schedule="exponential")
    assert not np.array_equal(plain[0].path, decayed[0].path)
    # the exponential schedule's last steps are a thousandth of the first ones
    first = np.linalg.norm(decayed[0].path[1] - decayed[0].path[0])
    last = np.linalg.norm(decayed[0].path[-1] - decayed[0].path[-2])
    assert last < first


@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_every_schedule_runs_every_racer(schedule):
    _, results = run_race("beale", list(RACERS), steps=30, schedule=schedule)
    assert [r.key for r in results] == list(RACERS)
    for r in results:
        assert r.path.shape == (31, 2) or r.diverged  # (a diverged racer stops early)
        assert np.isfinite(r.path).all() or r.diverged


def test_onecycle_cycles_momentum_only_where_it_is_on():
    gd = fastopt.SGD(np.zeros(2), lr=0.1)
    sched = schedule_factory("onecycle", 10)(gd)
    sched.step()
    assert gd.momentum == 0.0  # GD stays GD
    nag = fastopt.NAG(np.zeros(2), lr=0.1)
    sched = schedule_factory("onecycle", 10)(nag)
    assert nag.momentum == 0.95


def test_schedule_table_line_picture_and_bad_names(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    assert main(["race", "--problem", "booth", "--steps", "50", "--methods", "gd,adam",
                 "--schedule", "cosine", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "learning-rate schedule: cosine (CosineAnnealingLR" in out
    # the picture goes beside the constant-rate one, its title naming the schedule
    assert "race_booth_cosine.png" in out and (tmp_path / "race_booth_cosine.png").exists()
    assert not (tmp_path / "race_booth.png").exists()
    problem, results = run_race("booth", ["gd"], steps=5)
    assert "schedule" not in format_table(problem, results, 5, 1e-4)
    with pytest.raises(SystemExit) as exc:
        main(["race", "--schedule", "sawtooth"])
    assert exc.value.code == 2
    assert "sawtooth" in capsys.readouterr().err
    with pytest.raises(ValueError, match="schedule: unknown 'sawtooth'"):
        run_race("booth", ["gd"], steps=5, schedule="sawtooth")
    assert check_schedule(None) == "none" and schedule_factory("none", 10) is None
