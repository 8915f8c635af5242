"""The examples in the package's docstrings, run as doctests: one test per docstring that has any.

Examples that need data, a trained model or minutes are written as plain code
(without `>>>`) and are not run.
"""

import doctest
import importlib
import pathlib

import pytest

import tf_resattn

PACKAGE = pathlib.Path(tf_resattn.__file__).parent


def _module_name(path):
    """`tf_resattn/data/slices.py` -> `tf_resattn.data.slices`; a package's `__init__.py` -> the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _docstring_examples():
    """The doctests of every package module whose source holds an example, in file order."""
    finder = doctest.DocTestFinder()
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            module = importlib.import_module(_module_name(path))
            yield from (test for test in finder.find(module) if test.examples)


EXAMPLES = list(_docstring_examples())


@pytest.mark.parametrize("example", EXAMPLES, ids=[test.name for test in EXAMPLES])
def test_docstring_example(example):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    runner.run(example, out=report.append)
    assert not runner.failures, "".join(report)
