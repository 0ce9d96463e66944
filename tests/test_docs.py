"""The README's examples and the docstring examples run as written: every Python block runs
(the ctypes ones against the libraries built from the README's C blocks, the block objective's
against the module built from its Cython block), every other block says its language and is
not Python in disguise, bash blocks parse, the Cython blocks compile, and the block objectives
give the results of the scalar ones."""

import ctypes
import doctest
import importlib
import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import numpy as np
import pytest
from scipy import LowLevelCallable

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


def test_fastopt_dask_docstring_examples():
    pytest.importorskip("dask")
    test_docstring_examples(importlib.import_module("fastopt.dask"))


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


def test_the_cython_blocks_compile(tmp_path):
    pytest.importorskip("Cython")
    bodies = [body for lang, body in _blocks() if lang == "cython"]
    assert len(bodies) == 2 and all("cdef api" in body for body in bodies)
    for k, body in enumerate(bodies):
        (tmp_path / f"readme_block{k}.pyx").write_text(body)
        out = subprocess.run([sys.executable, "-m", "cython", "-3", f"readme_block{k}.pyx"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert (tmp_path / f"readme_block{k}.c").exists()


# What the README tells the reader to build, each from the block defining the function named
# (C blocks: the compiler flags of the README's command line, which the test checks is there):
# {marker in the block: (file the block goes to, what it builds, flags)}.
C_BUILDS = {
    "double weighted_sphere(": ("sphere.c", "libsphere.so", ["-O2"]),
    "void weighted_sphere_block(": ("wsphere_block.c", "libwsphere_block.so",
                                    ["-O3", "-march=native"]),
}
CYTHON_BUILDS = {"cdef api void rosen_block(": "rosen_block.pyx"}


def _c_compiler():
    if sys.platform == "win32":
        return None
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) or shutil.which("gcc") or shutil.which("cc")


def _block_source(marker, lang):
    (body,) = [body for kind, body in _blocks() if kind == lang and marker in body]
    return body


def _build_c(folder, marker, extra_flags=()):
    """Build the README's C block holding ``marker`` in ``folder``, as the README says (plus
    ``extra_flags``); returns the library's path, or None without a C compiler."""
    source, library, flags = C_BUILDS[marker]
    cc = _c_compiler()
    if cc is None:
        return None
    library = folder / library
    (folder / source).write_text(_block_source(marker, "c"))
    subprocess.run([cc, *flags, *extra_flags, "-shared", "-fPIC", "-o", str(library),
                    str(folder / source)], check=True)
    return library


def test_readme_build_commands_are_the_tests():
    text = " ".join(README.read_text().split())
    for source, library, flags in C_BUILDS.values():
        command = " ".join([*flags, "-shared", "-fPIC", "-o", library, source])
        assert command in text, command
    for source in CYTHON_BUILDS.values():
        assert f"cythonize -i {source}" in text


@pytest.fixture(scope="module")
def readme_dir(tmp_path_factory):
    """A folder where the README's examples run: the libraries built from its C blocks, the
    module built from its block-objective Cython block (where a compiler is present)."""
    folder = tmp_path_factory.mktemp("readme")
    for marker in C_BUILDS:
        _build_c(folder, marker)
    if _c_compiler() is not None and importlib.util.find_spec("Cython") is not None:
        for marker, source in CYTHON_BUILDS.items():
            (folder / source).write_text(_block_source(marker, "cython"))
            subprocess.run([sys.executable, "-m", "Cython.Build.Cythonize", "-i", source],
                           cwd=folder, check=True, capture_output=True, timeout=600)
    return folder


def _built(folder, name):
    """The module or library ``name`` built in ``folder`` (a glob for extension suffixes)."""
    return next(iter(folder.glob(name)), None)


@pytest.mark.parametrize("index", range(len(_readme_blocks())))
def test_readme_python_blocks_print_what_they_say(index, capsys, readme_dir, monkeypatch):
    # Every python block runs as written, in a fresh namespace, from a folder holding what
    # the README told the reader to build (libsphere.so). Lines ending in "# -> text" must
    # print exactly "text" (in order).
    block = _readme_blocks()[index]
    if re.search(r"^(import|from) dask\b", block, flags=re.M):
        pytest.importorskip("dask.array")  # an optional dependency
    for _, library, _ in C_BUILDS.values():
        if library in block and _built(readme_dir, library) is None:
            pytest.skip(f"no C compiler to build {library}")
    for source in CYTHON_BUILDS.values():
        module = source.removesuffix(".pyx")
        if f"import {module}" in block and _built(readme_dir, f"{module}.*.so") is None:
            pytest.skip(f"no C compiler (or no Cython) to build {module}")
    if "import dask" in block and not all(importlib.util.find_spec(name) for name in
                                          ("dask", "distributed")):
        pytest.skip('dask and distributed are not installed (pip install "fastopt[dask]")')
    monkeypatch.syspath_prepend(str(readme_dir))
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


# -- the README's block objectives give the scalar objectives' results -----------------------

RESULT_FIELDS = ("x", "fun", "jac", "nit", "nfev", "status")


def _assert_same_results(a, b):
    for name in RESULT_FIELDS:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_readme_cython_block_objective_is_fastopts_block_rosenbrock(readme_dir, monkeypatch):
    # The README's Cython block objective (built as the README says) against fastopt's block
    # Rosenbrock and the scalar one: bitwise the same results, in blocks of every fill (problems
    # finish at different iterations), n = 2 and 5, one and two threads.
    if _built(readme_dir, "rosen_block.*.so") is None:
        pytest.skip("no C compiler (or no Cython) to build the README's rosen_block.pyx")
    monkeypatch.syspath_prepend(str(readme_dir))
    rosen_block = importlib.import_module("rosen_block")
    funs = [LowLevelCallable.from_cython(rosen_block, "rosen_block"),
            problems.rosenbrock_block_lowlevel(), problems.rosenbrock_lowlevel()]
    rng = np.random.default_rng(3)
    for X0 in [rng.uniform(-2, 2, (600, 2)), rng.uniform(0.5, 1.5, (300, 5))]:
        for n_threads in (1, 2):
            options = {"lr": 0.01, "maxiter": 3000, "gtol": 1e-4, "n_threads": n_threads}
            readme, *others = [fastopt.minimize_batch(fun, X0, options=options) for fun in funs]
            assert 0 < readme.success.sum() < len(X0)  # some finish early, some do not
            for other in others:
                _assert_same_results(readme, other)


def _weighted_sphere(library, name, weights):
    lib = ctypes.CDLL(str(library))
    fun = getattr(lib, name)
    block = name.endswith("_block")
    fun.restype = None if block else ctypes.c_double
    fun.argtypes = ([ctypes.c_int] * (2 if block else 1)
                    + [ctypes.POINTER(ctypes.c_double)] * (3 if block else 2) + [ctypes.c_void_p])
    return LowLevelCallable(fun, user_data=weights.ctypes.data_as(ctypes.c_void_p))


def test_readme_c_block_objective_is_the_scalar_one(readme_dir, tmp_path):
    # The README's C block objective against its scalar weighted_sphere: built as the README
    # says (-march=native may fuse multiply-adds: close), and both built with
    # -ffp-contract=off (bitwise the same results).
    block_library = _built(readme_dir, "libwsphere_block.so")
    if block_library is None:
        pytest.skip("no C compiler to build the README's C blocks")
    weights = np.array([1.0, 10.0, 100.0])
    X0 = np.random.default_rng(4).normal(size=(700, 3))
    options = {"lr": 0.1, "maxiter": 200, "gtol": 1e-3}
    scalar = _weighted_sphere(_built(readme_dir, "libsphere.so"), "weighted_sphere", weights)
    block = _weighted_sphere(block_library, "weighted_sphere_block", weights)
    want = fastopt.minimize_batch(scalar, X0, options=options)
    assert 0 < want.success.sum() < len(X0)
    got = fastopt.minimize_batch(block, X0, options=options)
    np.testing.assert_allclose(got.x, want.x, rtol=0, atol=1e-9)
    exact = {}
    for marker in C_BUILDS:
        library = _build_c(tmp_path, marker, ["-ffp-contract=off"])
        name = marker.split()[1].rstrip("(")
        exact[name] = _weighted_sphere(library, name, weights)
    want = fastopt.minimize_batch(exact["weighted_sphere"], X0, options=options)
    for n_threads in (1, 2):
        got = fastopt.minimize_batch(exact["weighted_sphere_block"], X0,
                                     options=dict(options, n_threads=n_threads))
        _assert_same_results(got, want)
