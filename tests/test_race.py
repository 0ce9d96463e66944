"""The race behind ``python -m fastopt race`` and the learning-rate table: a racer's row
depends only on (problem, racer, seed, options); the default race reaches the minimum for the
methods the README names; the picture gives every racer its own colour and line style; the
learning rates are the measured ones (issue 11, C16, C18, C22)."""

import pathlib
import re

import numpy as np
import pytest

import fastopt
from fastopt import _race, problems
from fastopt._cli import main
from fastopt._race import DEFAULT_LR, RACERS, run_race

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"

# The README says these reach Rosenbrock's minimum in the default race.
REACH_ROSENBROCK = ["momentum", "nag", "adam", "adagrad"]


@pytest.mark.parametrize("problem", ["rosenbrock", "noisy_rosenbrock", "booth"])
def test_a_racers_row_does_not_depend_on_the_other_racers(problem):
    alone = {key: run_race(problem, [key], steps=200, seed=3)[1][0]
             for key in ("sgd", "minibatch", "gd")}
    for methods in (["gd", "sgd"], ["minibatch", "sgd", "gd"], ["sgd", "minibatch"]):
        for r in run_race(problem, methods, steps=200, seed=3)[1]:
            np.testing.assert_array_equal(r.path, alone[r.key].path)
    # the seed does change the noisy rows (and the two noisy racers differ)
    other = run_race(problem, ["sgd"], steps=200, seed=4)[1][0]
    assert not np.array_equal(other.path, alone["sgd"].path)
    assert not np.array_equal(alone["sgd"].path[:, 0], alone["minibatch"].path[:, 0])


@pytest.mark.parametrize("seed", [-1, -3, 1.5, "1", True, None])
def test_bad_seeds_are_refused(seed):
    with pytest.raises(ValueError, match="seed"):
        run_race("booth", ["sgd"], steps=5, seed=seed)


@pytest.mark.parametrize("argv", [["race", "--seed", "-1", "--methods", "sgd"],
                                  ["demo", "--seed", "-3"]])
def test_negative_seeds_on_the_command_line(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "--seed" in err


def test_huge_seeds_work():
    r1 = run_race("booth", ["sgd"], steps=20, seed=2**70)[1][0]
    r2 = run_race("booth", ["sgd"], steps=20, seed=2**70)[1][0]
    np.testing.assert_array_equal(r1.path, r2.path)


def test_demo_rows_depend_on_the_seed_and_method_only():
    from fastopt._demo import race_table

    a, _, _ = race_table(steps=30, seed=5)
    b, _, _ = race_table(steps=30, seed=5)
    c, _, _ = race_table(steps=30, seed=6)
    assert [row[3] for row in a] == [row[3] for row in b]
    assert a[1][3] != c[1][3]  # SGD's samples follow the seed


def test_default_race_reaches_the_minimum_for_the_methods_the_readme_names():
    problem, results = run_race()  # python -m fastopt race: Rosenbrock, default budget
    rows = {r.key: r for r in results}
    for key in REACH_ROSENBROCK:
        r = rows[key]
        assert r.reached, (key, r.outcome)
        assert np.all(r.values[r.iterations_to_tol:] - problem.f_min <= _race.DEFAULT_TOL)
        assert r.distance < 0.05
    # and the README says so
    text = README.read_text()
    for key in REACH_ROSENBROCK:
        assert RACERS[key][0] in text


def test_default_race_is_the_classic_methods_and_all_races_every_optimizer(tmp_path, capsys):
    # issue 13: the default race stays the readable one; "all" races every optimizer.
    assert set(_race.DEFAULT_RACERS) < set(RACERS)
    assert [r.key for r in run_race("booth", steps=5)[1]] == list(_race.DEFAULT_RACERS)
    for methods in ("all", ["all"]):
        assert [r.key for r in run_race("booth", methods, steps=5)[1]] == list(RACERS)
    assert [r.key for r in run_race("booth", "nag, adam", steps=5)[1]] == ["nag", "adam"]
    extra = [RACERS[key][0] for key in RACERS if key not in _race.DEFAULT_RACERS]
    assert main(["race", "--problem", "booth", "--steps", "5", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert all(f"  {RACERS[key][0]} " in out for key in _race.DEFAULT_RACERS)
    assert not any(f"  {label} " in out for label in extra)
    assert main(["race", "--problem", "booth", "--steps", "5", "--methods", "All",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert all(f"  {label} " in out for label, _, _ in RACERS.values())


@pytest.mark.parametrize("methods", [["all", "adam"], "nag,all", 5, []])
def test_all_alone_and_bad_method_lists_are_refused(methods):
    with pytest.raises((TypeError, ValueError), match="methods"):
        run_race("booth", methods, steps=5)


def test_table_is_ranked_and_says_reached_or_not(capsys):
    problem, results = run_race("booth", steps=300)
    table = _race.format_table(problem, results, 300, _race.DEFAULT_TOL)
    rows = [line for line in table.splitlines() if re.match(r"\s+\d+  ", line)]
    assert [int(row.split()[0]) for row in rows] == list(range(1, len(results) + 1))
    steps = [int(m.group(1)) for row in rows
             for m in [re.search(r"reached in (\d+) steps", row)] if m]
    assert steps == sorted(steps) and steps
    reached_rows = [i for i, row in enumerate(rows) if "reached in" in row]
    assert reached_rows == list(range(len(reached_rows)))  # arrivals first
    for row in rows[len(reached_rows):]:
        assert re.search(r"not reached \(distance [0-9.e+-]+\)|diverged", row)


def test_race_rates_are_the_measured_ones():
    # DEFAULT_LR holds what `python -m fastopt lr-table --race` measures.
    assert _race.race_lr("rosenbrock") == DEFAULT_LR["rosenbrock"]
    assert set(DEFAULT_LR) == set(problems.PROBLEMS)
    for rates in DEFAULT_LR.values():
        assert set(rates) == set(RACERS)


def test_robust_lr_avoids_the_edge():
    lrs = np.geomspace(1e-3, 1, 7)
    gaps = np.array([1.0, 1e-1, 1e-14, 1e-14, 1e-14, 1e-14, np.inf])
    assert _race.robust_lr(lrs, gaps) == pytest.approx(lrs[3])  # never next to divergence


# ---------------------------------------------------------------------------------------------
# The picture.

def test_every_racer_has_its_own_colour_and_line_style():
    from fastopt._plot import STYLES, style

    assert set(STYLES) == set(RACERS)
    looks = [style(key) for key in RACERS]
    assert len({colour.lower() for colour, _, _ in looks}) == len(RACERS)
    assert len({str(dashes) for _, dashes, _ in looks}) == len(RACERS)
    assert len({marker for _, _, marker in looks}) == len(RACERS)


def test_figure_paths_ends_and_frame(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from fastopt import _plot

    problem, results = run_race("rosenbrock", steps=300)
    fig, ax, lines = _plot._figure(problem, results, 300, 1e-4)
    try:
        drawn = [line for _, line, _ in lines]
        assert len({line.get_color() for line in drawn}) == len(results)
        assert len({str(line.get_linestyle()) + str(line._dash_pattern) for line in drawn}) \
            == len(results)
        for r, line, finite in lines:
            assert line.get_markevery() == [len(finite) - 1]  # the end is marked
        (x_lo, x_hi), (y_lo, y_hi) = ax.get_xlim(), ax.get_ylim()
        assert x_lo <= 1 <= x_hi and y_lo <= 1 <= y_hi  # the minimum is in view
        for r in results:
            assert np.all((r.path[:, 0] >= x_lo) & (r.path[:, 0] <= x_hi))
            assert np.all((r.path[:, 1] >= y_lo) & (r.path[:, 1] <= y_hi))
        # framed on the paths: the view is no larger than they need
        (d_lo, d_hi), _ = problem.domain
        assert x_hi - x_lo < d_hi - d_lo
        labels = ax.get_legend_handles_labels()[1]
        assert sum("reached" in label or "diverged" in label for label in labels) \
            == len(results)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_png_is_made_in_full_colour(tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    assert main(["race", "--steps", "100", "--out", str(tmp_path)]) == 0
    with Image.open(tmp_path / "race_rosenbrock.png") as image:
        assert image.mode in ("RGB", "RGBA")
        colours = len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0))
    assert colours > 256  # not palette-reduced


def test_readme_picture_is_full_colour_and_current():
    from PIL import Image

    picture = README.parent / "docs" / "race_rosenbrock.png"
    if not picture.exists():
        pytest.skip("docs/ not shipped")
    with Image.open(picture) as image:
        assert image.mode in ("RGB", "RGBA") and image.width >= 1000
        assert len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)) > 256


# ---------------------------------------------------------------------------------------------
# The learning-rate table (C22).

def test_lr_table_ranges_converge_and_the_outside_does_not():
    lrs = np.geomspace(1e-3, 10, 13)
    table = _race.lr_table(["booth", "valley"], methods=["gd", "adam"], steps=2000, lrs=lrs)
    for method, entry in table.items():
        for name, found in entry["ranges"].items():
            assert found is not None, (method, name)
            p = problems.get(name)
            lo, hi = found
            for lr in (lo, hi):
                res = fastopt.minimize(p.f, p.x0, method=method, jac=p.grad,
                                       options={"lr": lr, "maxiter": 2000, "gtol": 0.0})
                assert res.fun - p.f_min <= _race.LR_TABLE_TOL, (method, name, lr)
            i = int(np.flatnonzero(np.isclose(lrs, hi))[0])
            if i + 1 < lrs.size:
                with np.errstate(all="ignore"):
                    res = fastopt.minimize(p.f, p.x0, method=method, jac=p.grad,
                                           options={"lr": lrs[i + 1], "maxiter": 2000,
                                                    "gtol": 0.0})
                assert not res.fun - p.f_min <= _race.LR_TABLE_TOL, (method, name)
        lr, k = entry["start"]
        assert k >= 1 and sum(r[0] <= lr <= r[1] for r in entry["ranges"].values()) == k


def test_readme_lr_table_is_what_the_command_prints():
    text = README.read_text()
    table = _race.format_lr_table(_race.lr_table())
    assert table.split("\n", 2)[2] in text  # the Markdown rows, as printed
    assert "python -m fastopt lr-table" in text
