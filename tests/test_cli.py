"""The ``fastopt`` command: configuration and usage, ``race`` (table and pictures), ``demo``."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastopt
from fastopt import problems
from fastopt._cli import main
from fastopt._demo import METHODS, race_table
from fastopt._race import DEFAULT_LR, DEFAULT_RACERS, RACERS, run_race


def test_no_subcommand_prints_config_and_usage(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "openmp" in out and "threads" in out and "python -m fastopt race" in out


def test_demo_prints_config_and_a_row_per_method(capsys):
    assert main(["demo", "--steps", "50"]) == 0
    out = capsys.readouterr().out
    assert "openmp" in out
    for name, cls, _, _ in METHODS:
        assert f"\n{name} " in out and f"{cls.__name__}(" in out


def test_demo_methods_make_progress():
    rows, best, initial = race_table(steps=500)
    for name, _, _, final, _, _ in rows:
        assert final < 0.1 * initial, name
    finals = {row[0]: row[3] for row in rows}
    for name in ("Momentum", "NAG", "Adagrad", "Adam"):
        assert finals[name] == pytest.approx(best, rel=1e-3), name


def test_race_writes_png_and_gif_that_load_and_are_not_blank(tmp_path, capsys):
    plt = pytest.importorskip("matplotlib.pyplot")
    from PIL import Image

    assert main(["race", "--problem", "beale", "--steps", "60", "--out", str(tmp_path),
                 "--animate"]) == 0
    out = capsys.readouterr().out
    for key in DEFAULT_RACERS:  # the default race: the classic methods
        assert f"  {RACERS[key][0]} " in out
    png = plt.imread(tmp_path / "race_beale.png")
    assert png.ndim == 3 and png.shape[0] > 300 and png.std() > 0.05
    with Image.open(tmp_path / "race_beale.gif") as gif:
        assert gif.n_frames > 10
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("RGB"), dtype=float)
        gif.seek(0)
        first = np.asarray(gif.convert("RGB"), dtype=float)
    assert last.std() > 10 and np.abs(last - first).mean() > 0.1  # the paths grew


def test_race_table_agrees_with_minimize(capsys, tmp_path):
    # The table's columns changed (rank, result); the numbers still are minimize's.
    main(["race", "--problem", "booth", "--steps", "100", "--methods", "nag,adam",
          "--lr", "adam=0.2", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    p = problems.booth()
    for method, lr in (("nag", DEFAULT_LR["booth"]["nag"]), ("adam", 0.2)):
        res = fastopt.minimize(p.f, p.x0, method=method, jac=p.grad,
                               options={"lr": lr, "maxiter": 100, "gtol": 0})
        row = next(line for line in out.splitlines()
                   if line.split()[1:2] == [RACERS[method][0]])
        fields = row.split()
        assert float(fields[2]) == pytest.approx(lr, rel=1e-2)
        assert float(fields[-2]) == pytest.approx(res.fun, rel=1e-2, abs=1e-12)


def test_race_results_iterations_to_tolerance():
    problem, results = run_race("booth", ["gd", "adadelta"], steps=300, tol=1e-4,
                                lr={"adadelta": 1.0})
    gd, adadelta = results
    assert gd.iterations_to_tol is not None
    assert np.all(gd.values[gd.iterations_to_tol:] - problem.f_min <= 1e-4)
    assert gd.values[gd.iterations_to_tol - 1] - problem.f_min > 1e-4
    assert adadelta.iterations_to_tol is None  # Adadelta starts slowly on Booth
    assert gd.path.shape == (301, 2)


def test_race_without_matplotlib_prints_table_and_hint(monkeypatch, capsys, tmp_path):
    from fastopt import _plot

    monkeypatch.setattr(_plot, "have_matplotlib", lambda: False)
    assert main(["race", "--steps", "10", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "pip install \"fastopt[plot]\"" in out and "Adam" in out
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv", [
    ["race", "--steps", "0"], ["race", "--steps", "x"], ["race", "--problem", "nope"],
    ["race", "--methods", "adam,bogus"], ["race", "--methods", ","],
    ["race", "--lr", "adam"], ["race", "--lr", "adam=-1"], ["race", "--lr", "nope=0.1"],
    ["race", "--start", "1,2,3"], ["race", "--start", "a,b"], ["race", "--tol", "0"],
    ["race", "--bogus"], ["demo", "--steps", "0"], ["fly"],
])
def test_bad_arguments_exit_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_module_and_console_script_run(tmp_path):
    # run outside the source tree, so that the installed package is the one imported
    out = subprocess.run([sys.executable, "-m", "fastopt"], capture_output=True,
                         text=True, timeout=120, check=True, cwd=tmp_path).stdout
    assert "fastopt" in out and "race" in out
    bad = subprocess.run([sys.executable, "-m", "fastopt", "race", "--steps", "-3"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_bench_prints_a_row_per_case(capsys):
    from fastopt._bench import RULES, run

    rows = run(sizes=[2**8, 2**15], dtypes=["float64"], rules=["Adam", "RMSprop"], repeats=2)
    out = capsys.readouterr().out
    assert len(rows) == 2 * 2 * len({1, fastopt.Adam(np.zeros(1), n_threads=-1).n_threads})
    for row in rows:
        assert row["fastopt_s"] > 0 and row["vs_numpy"] > 0 and row["bandwidth_fraction"] > 0
        assert row["rule"] in RULES and row["vs_numpy_out"] > 0  # both have an out= rule
    assert "Adam" in out and "RMSprop" in out and "vs NumPy" in out


def test_bench_loops_prints_both_tables(capsys):
    assert main(["bench-loops", "--repeats", "1", "--problems", "20",
                 "--scipy-problems", "1"]) == 0
    out = capsys.readouterr().out
    assert "ns/iter" in out and "problems/s" in out
    assert "C-level loop (LowLevelCallable)" in out and "plain scalar C loop" in out
    assert "minimize call, maxiter=1, 2 variables" in out and "x L-BFGS-B" in out
    for threads in ("1 thread", "2 threads"):  # the block rows and their ratio (issue 15)
        assert f"minimize_batch, block C objective, {threads}" in out
        assert f"block SIMD floor (plain C), {threads}" in out
        assert f"block C objective vs block SIMD floor, {threads}: " in out
        assert f"lbfgs batch, C objective, {threads}" in out  # L-BFGS (issue 17)
    assert "Python loop of scipy L-BFGS-B" in out and "gtol=1e-05" in out


@pytest.mark.parametrize("argv", [["bench", "--sizes", "a"], ["bench", "--sizes", "40"],
                                  ["bench", "--rules", "Nope"], ["bench", "--dtypes", "int8"],
                                  ["bench", "--repeats", "0"], ["bench-loops", "--repeats", "0"],
                                  ["bench-loops", "--problems", "-1"]])
def test_bench_bad_arguments_exit_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


# ---------------------------------------------------------------------------------------------
# Every option, fuzzed: a usage message and status 2, never a traceback (issue 11, C17).

BAD_ARGUMENTS = [
    ["race", "--steps", "0"], ["race", "--steps", "-1"], ["race", "--steps", "1e9"],
    ["race", "--steps", "abc"],
    ["race", "--methods", "nope"], ["race", "--methods", ""], ["race", "--methods", ","],
    ["race", "--methods", "adam,adam"], ["race", "--methods", "sgd,SGD"],
    ["race", "--methods", "all,adam"], ["race", "--methods", "nag,all"],
    ["race", "--problem", "nope"], ["race", "--problem", ""],
    ["race", "--tol", "0"], ["race", "--tol", "-1"], ["race", "--tol", "nan"],
    ["race", "--tol", "inf"], ["race", "--tol", "abc"],
    ["race", "--lr", "adam"], ["race", "--lr", "=1"], ["race", "--lr", "adam="],
    ["race", "--lr", "foo=1"], ["race", "--lr", "adam=inf"], ["race", "--lr", "adam=1e999"],
    ["race", "--lr", "adam=nan"], ["race", "--lr", "adam=-inf"], ["race", "--lr", "adam=0"],
    ["race", "--lr", "adam=-0.1"], ["race", "--lr", "adam=0.1,adam=0.2"],
    ["race", "--start", "nan,1"], ["race", "--start", "inf,1"], ["race", "--start", "1,-inf"],
    ["race", "--start", "1"], ["race", "--start", "1,2,3"], ["race", "--start", ""],
    ["race", "--start", "1e999,1"], ["race", "--seed", "-1", "--methods", "sgd"],
    ["race", "--seed", "1.5"], ["race", "--seed", "abc"],
    ["demo", "--seed", "-3"], ["demo", "--steps", "-1"], ["demo", "--steps", "1e9"],
    ["lr-table", "--problems", "nope"], ["lr-table", "--problems", "booth,booth"],
    ["lr-table", "--steps", "0"], ["bench-loops", "--scipy-problems", "0"],
    ["bench-loops", "--chunks", "5"], ["bench-loops", "--dask", "--chunks", "a"],
    ["bench-loops", "--dask", "--chunks", "0"], ["bench-loops", "--dask", "--chunks", "5,"],
]
# Values that would run for hours if accepted: checked in a process with a timeout.
HUGE = [["race", "--steps", "1000000000"], ["demo", "--steps", "1000000000"],
        ["bench", "--repeats", "1000000000"], ["bench-loops", "--problems", "1000000000"],
        ["lr-table", "--steps", "1000000000"]]


@pytest.mark.parametrize("argv", BAD_ARGUMENTS, ids=" ".join)
def test_every_bad_value_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "Traceback" not in err


def _bad_out_folders(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    cases = {"existing file": str(a_file), "under a file": str(a_file / "sub"),
             "/proc": "/proc/fastopt_race_test"}
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    if not os.access(read_only, os.W_OK):  # root may write anywhere
        cases["read-only folder"] = str(read_only)
    return cases


def test_out_that_cannot_be_written_is_a_usage_error(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    for name, out in _bad_out_folders(tmp_path).items():
        with pytest.raises(SystemExit) as info:
            main(["race", "--steps", "5", "--methods", "adam", "--out", out])
        assert info.value.code == 2, name
        err = capsys.readouterr().err
        assert "usage:" in err and "--out" in err, name


@pytest.mark.parametrize("argv", [["race", "--start", "nan,1"], ["race", "--lr", "adam=1e999"],
                                  ["race", "--seed", "-1", "--methods", "sgd"],
                                  ["demo", "--seed", "-3"], ["race", "--out", "/proc/x"], *HUGE],
                         ids=" ".join)
def test_bad_values_in_a_process_print_no_traceback(argv, tmp_path):
    bad = subprocess.run([sys.executable, "-m", "fastopt", *argv], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert bad.returncode == 2
    assert "usage:" in bad.stderr and "Traceback" not in bad.stderr


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"fastopt {fastopt.__version__}"


def test_a_start_point_may_begin_with_a_minus(tmp_path, capsys):
    # argparse would take "-1,2" for an option; the README writes `--start -1,2`.
    assert main(["race", "--problem", "booth", "--steps", "5", "--methods", "adam",
                 "--start", "-1,2", "--out", str(tmp_path)]) == 0
    assert "from (-1, 2)" in capsys.readouterr().out


def test_extreme_learning_rates_diverge_without_a_traceback(tmp_path, capsys):
    assert main(["race", "--steps", "50", "--methods", "gd,adam", "--lr", "gd=1e300",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "diverged" in out
