"""The package as shipped: a LICENSE, an sdist whose tests have what they import, a clean
build, pictures of the race never committed by accident (issue 11, C19), and a hint when the
compiled extensions are missing (C21)."""

import os
import pathlib
import shutil
import subprocess
import sys
import re
import tarfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(),
                                reason="needs the source checkout")


def test_license_file_matches_pyproject():
    pyproject = (ROOT / "pyproject.toml").read_text()  # (tomllib is 3.11+)
    assert re.search(r'^license = "BSD-3-Clause"$', pyproject, re.M)
    assert re.search(r'^license-files = \["LICENSE"\]$', pyproject, re.M)
    text = (ROOT / "LICENSE").read_text()
    assert "BSD 3-Clause License" in text and "fastopt developers" in text


def test_sdist_ships_the_tests_with_what_they_import(tmp_path):
    # Run from tmp_path: in the checkout, setuptools' build/ folder would shadow the package.
    if subprocess.run([sys.executable, "-c", "import build.__main__"], cwd=tmp_path,
                      capture_output=True).returncode != 0:
        pytest.skip("the 'build' package is not installed")
    out = subprocess.run([sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path),
                          str(ROOT)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    log = (out.stdout + out.stderr).lower()
    assert "warning" not in log, [line for line in log.splitlines() if "warning" in line]
    (sdist,) = tmp_path.glob("fastopt-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert "LICENSE" in names and "README.md" in names
    tests = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").glob("*.py")}
    assert {"tests/conftest.py", "tests/_registry.py"} <= tests
    assert tests <= names
    assert not [n for n in names if n.endswith((".so", ".pyc", ".c")) and "src_c" not in n]


def test_race_pictures_in_a_checkout_are_ignored():
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    names = ["race_rosenbrock.png", "race_rosenbrock.gif", "race_beale.png"]
    out = subprocess.run(["git", "check-ignore", *names], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.stdout.split() == names
    kept = subprocess.run(["git", "check-ignore", "docs/race_rosenbrock.png"], cwd=ROOT,
                          capture_output=True, text=True)
    assert kept.returncode == 1  # the README's copy stays tracked


def test_unbuilt_checkout_gives_a_hint(tmp_path):
    # A clean clone before `pip install -e .`: the sources without any compiled module.
    package = tmp_path / "fastopt"
    shutil.copytree(ROOT / "fastopt", package,
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    # -S: no .pth files, so an editable install of this checkout cannot supply the compiled
    # modules; the site folders (numpy, scipy) are put on the path by hand.
    site_dirs = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    setup = f"import sys, runpy; sys.path[1:1] = {site_dirs!r}; "
    for code in ("import fastopt",
                 "sys.argv = ['fastopt']; runpy.run_module('fastopt', run_name='__main__')",
                 "sys.argv = ['fastopt', 'race']; "
                 "runpy.run_module('fastopt', run_name='__main__')"):
        out = subprocess.run([sys.executable, "-S", "-c", setup + code], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120, env=env)
        assert out.returncode != 0
        assert "compiled extensions are not built" in out.stderr, out.stderr
        assert "pip install -e ." in out.stderr
        assert str(package) in out.stderr  # says which copy was imported
