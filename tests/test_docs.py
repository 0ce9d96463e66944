"""The README's Python examples and the docstring examples run as written."""

import doctest
import pathlib
import re

import pytest

import fastopt
from fastopt import _adam, _adaptive, _driver, _minibatch, _minimize_batch, _sgd, problems

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("module", [fastopt, _sgd, _adaptive, _adam, _driver, _minibatch,
                                    _minimize_batch, problems])
def test_docstring_examples(module):
    result = doctest.testmod(module, raise_on_error=False, verbose=False)
    assert result.failed == 0
    assert result.attempted > 0


def _readme_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("index", range(len(_readme_blocks())))
def test_readme_python_blocks_print_what_they_say(index, capsys):
    # Lines ending in "# -> text" must print exactly "text" (in order).
    block = _readme_blocks()[index]
    expected = re.findall(r"# -> (.*)$", block, flags=re.M)
    assert expected, "every README example shows its output"
    exec(compile(block, str(README), "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed == [line.rstrip() for line in expected]


@pytest.mark.parametrize("name", ["gd", "sgd", "momentum", "nag", "adagrad", "rmsprop",
                                  "adadelta", "adam", "adamw"])
def test_method_callable_docstring_examples(name):
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(getattr(fastopt, name), name, globs={}):
        runner.run(test)
    assert runner.failures == 0 and runner.tries > 0
