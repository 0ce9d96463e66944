"""The README's examples and the docstring examples run as written: every Python block runs
(the ctypes one against libsphere.so built from the README's C block), every other block says
its language and is not Python in disguise, bash blocks parse, the Cython block compiles."""

import doctest
import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import pytest

import fastopt
from fastopt import _driver, _minibatch, _minimize_batch, problems
from fastopt._registry import BY_METHOD, FAMILIES, RECORDS

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("module", [fastopt, *FAMILIES, _driver, _minibatch, _minimize_batch,
                                    problems])
def test_docstring_examples(module):
    result = doctest.testmod(module, raise_on_error=False, verbose=False)
    assert result.failed == 0
    assert result.attempted > 0


# Fenced blocks: an optional indent (blocks inside list items), a language, the body.
FENCE = re.compile(r"^( *)```([\w+-]*)\n(.*?)^\1```", flags=re.S | re.M)
LANGUAGES = {"python", "bash", "c", "cython", "text"}
PYTHON_ALIASES = {"py", "python3", "pycon", "ipython"}


def _blocks(text=None):
    """Every fenced block of the README as (language, dedented body)."""
    text = README.read_text() if text is None else text
    return [(lang, textwrap.dedent("\n".join(line[len(indent):] for line in
                                             body.splitlines())))
            for indent, lang, body in FENCE.findall(text)]


def _readme_blocks():
    return [body for lang, body in _blocks() if lang == "python"]


def test_every_block_says_its_language():
    blocks = _blocks()
    assert len(blocks) == README.read_text().count("```") // 2  # none missed by the pattern
    for lang, body in blocks:
        assert lang in LANGUAGES, f"a block marked {lang!r} (use one of {sorted(LANGUAGES)}):\n" \
                                  f"{body[:200]}"


def test_no_python_in_disguise():
    # Blocks that are not marked python must not be Python that would then go untested.
    python_line = re.compile(r"^\s*(import \w|from [\w.]+ import |>>> |print\(|def \w+\(.*\):$)",
                             flags=re.M)
    for lang, body in _blocks():
        if lang not in ("python", "cython"):
            assert not python_line.search(body), f"{lang} block holds Python:\n{body[:300]}"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_blocks_are_valid_bash():
    for lang, body in _blocks():
        if lang == "bash":
            out = subprocess.run(["bash", "-n"], input=body, capture_output=True, text=True)
            assert out.returncode == 0, (body, out.stderr)


def test_the_cython_block_compiles(tmp_path):
    pytest.importorskip("Cython")
    bodies = [body for lang, body in _blocks() if lang == "cython"]
    assert "cdef api double" in bodies[0] and "cdef api void" in bodies[1]  # scalar, block
    (tmp_path / "readme_block.pyx").write_text("\n\n".join(bodies))
    out = subprocess.run([sys.executable, "-m", "cython", "-3", "readme_block.pyx"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "readme_block.c").exists()


@pytest.fixture(scope="module")
def readme_dir(tmp_path_factory):
    """A folder where the README's examples run: libsphere.so built from its C block."""
    folder = tmp_path_factory.mktemp("readme")
    c_source = "\n".join(body for lang, body in _blocks() if lang == "c")  # scalar, block
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    cc = shutil.which(cc) or shutil.which("cc")
    if cc is not None and sys.platform != "win32":
        (folder / "sphere.c").write_text(c_source)
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(folder / "libsphere.so"),
                        str(folder / "sphere.c")], check=True)
    return folder


@pytest.mark.parametrize("index", range(len(_readme_blocks())))
def test_readme_python_blocks_print_what_they_say(index, capsys, readme_dir, monkeypatch):
    # Every python block runs as written, in a fresh namespace, from a folder holding what
    # the README told the reader to build (libsphere.so). Lines ending in "# -> text" must
    # print exactly "text" (in order).
    block = _readme_blocks()[index]
    if "libsphere.so" in block and not (readme_dir / "libsphere.so").exists():
        pytest.skip("no C compiler to build libsphere.so")
    expected = re.findall(r"# -> (.*)$", block, flags=re.M)
    assert expected, "every README example shows its output"
    monkeypatch.chdir(readme_dir)
    exec(compile(block, str(README), "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed == [line.rstrip() for line in expected]


@pytest.mark.parametrize("name", list(BY_METHOD))
def test_method_callable_docstring_examples(name):
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(getattr(fastopt, name), name, globs={}):
        runner.run(test)
    assert runner.failures == 0 and runner.tries > 0


@pytest.mark.parametrize("record", RECORDS, ids=lambda record: record.cls.__name__)
def test_every_optimizer_has_its_row_in_the_readme_and_full_docstrings(record):
    cls = record.cls
    section = README.read_text().split("## The optimizers", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    assert any(f"`{cls.__name__}(" in row for row in rows), f"README's table lacks {cls.__name__}"
    doc = cls.__doc__
    for heading in ("Parameters", "Notes", "Examples"):
        assert f"\n    {heading}\n    ---" in doc, (cls.__name__, heading)
    parameters = doc.split("Parameters\n    ----------\n", 1)[1].split("\n\n", 1)[0]
    documented = re.findall(r"^    (\w+) :", parameters, flags=re.M)
    assert documented == ["params", *(h.name for h in record.arguments), "n_threads"], cls


def test_readme_development_lists_every_family_module_with_its_classes():
    # issue 13: the Development section's layout named 3 of the 9 family modules
    from fastopt import _registry

    section = README.read_text().split("## Development", 1)[1].split("\n## ", 1)[0]
    for module in _registry.FAMILIES:
        filename = module.__name__.rsplit(".", 1)[1] + ".py"
        lines = [line for line in section.splitlines() if f"`{filename}`:" in line]
        assert len(lines) == 1, f"README's Development section lacks a line for {filename}"
        for record in _registry._records(module):
            assert record.cls.__name__ in lines[0], (filename, record.cls.__name__)
