"""The README's Python examples and the docstring examples run as written."""

import doctest
import pathlib
import re

import pytest

import fastopt
from fastopt import _adam, _adaptive, _sgd

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("module", [fastopt, _sgd, _adaptive, _adam])
def test_docstring_examples(module):
    result = doctest.testmod(module, raise_on_error=False, verbose=False)
    assert result.failed == 0
    assert result.attempted > 0


def test_readme_python_blocks_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})
    printed = capsys.readouterr().out
    assert "False" not in printed and "True" in printed
