"""The examples in the docstrings (the maths a student opens with ``??``) run, and print what they show.

Every module of ``course_lib`` is searched, so an example added anywhere is run here."""
import doctest
import importlib
import pkgutil

import pytest

import course_lib

MODULES = sorted(m.name for m in pkgutil.walk_packages(course_lib.__path__, "course_lib.")
                 if not m.name.endswith("__main__"))
FINDER = doctest.DocTestFinder()


def examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    return [t for t in FINDER.find(module) if t.examples and t.name.startswith(name)]


@pytest.mark.parametrize("name", [m for m in MODULES if examples(m)])
def test_docstring_examples(name, capsys):
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in examples(name):
        runner.run(test)
    assert runner.failures == 0, capsys.readouterr().out


def test_at_least_ten_functions_show_an_example():
    shown = [t.name for m in MODULES for t in examples(m)]
    assert len(shown) >= 10, shown
