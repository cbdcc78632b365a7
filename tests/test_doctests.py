"""The examples in the docstrings of the maths a student opens with ``??`` run, and print what they show."""
import doctest
import importlib

import pytest

MODULES = ["distances", "losses", "boxes", "keypoints", "metrics", "geometry", "runtime"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, capsys):
    module = importlib.import_module(f"course_lib.{name}")
    finder = doctest.DocTestFinder()
    with_examples = [t for t in finder.find(module) if t.examples]
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert with_examples and result.failed == 0, capsys.readouterr().out


def test_at_least_ten_functions_show_an_example():
    finder = doctest.DocTestFinder()
    shown = [t.name for name in MODULES for t in finder.find(importlib.import_module(f"course_lib.{name}"))
             if t.examples]
    assert len(shown) >= 10, shown
