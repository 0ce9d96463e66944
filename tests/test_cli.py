"""``python -m fastopt``: configuration, then the optimizers' table."""

import subprocess
import sys

import pytest

from fastopt.__main__ import main
from fastopt._demo import METHODS, race_table


def test_main_prints_config_and_a_row_per_method(capsys):
    assert main(["--steps", "50"]) == 0
    out = capsys.readouterr().out
    assert "openmp" in out and "threads" in out
    for name, cls, _, _ in METHODS:
        assert f"\n{name} " in out and f"{cls.__name__}(" in out


def test_every_method_makes_progress():
    rows, best, initial = race_table(steps=500)
    for name, _, _, final, _, _ in rows:
        assert final < 0.1 * initial, name
    # the full-gradient methods that suit this problem reach its optimum
    finals = {row[0]: row[3] for row in rows}
    for name in ("Momentum", "NAG", "Adagrad", "Adam"):
        assert finals[name] == pytest.approx(best, rel=1e-3), name


def test_bad_arguments_exit_with_status_2():
    for argv in (["--steps", "0"], ["--steps", "x"], ["--nope"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2


def test_module_runs_as_a_command(tmp_path):
    # run outside the source tree, so that the installed package is the one imported
    out = subprocess.run([sys.executable, "-m", "fastopt", "--steps", "20"], capture_output=True,
                         text=True, timeout=120, check=True, cwd=tmp_path).stdout
    assert "Adam" in out and "fastopt" in out
