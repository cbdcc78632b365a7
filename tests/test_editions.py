"""Tests for course_lib/authoring/editions.py and for the conftest hook that runs the student editions under nbval."""
import json
import shutil
from pathlib import Path

import pytest

from course_lib.authoring.editions import (
    BEGIN,
    END,
    NOTEBOOK_PATTERN,
    STUDENT_NOTE,
    count_solutions,
    main,
    strip_solutions,
    student_notebook,
    write_student_edition,
)

pytest_plugins = ["pytester"]  # runs pytest on a throw-away project, for the conftest hook

ROOT = Path(__file__).resolve().parents[1]
RAISE = 'raise NotImplementedError("exercise: write this function, then run the cell again")'

EXERCISE = '''import math

def my_norm(x, y):
    """Euclidean norm of (x, y) -> float"""
    ### BEGIN SOLUTION  # hint: math.hypot, or the square root of a sum of squares
    s = x * x + y * y
    return math.sqrt(s)
    ### END SOLUTION

answer = 42'''


def _cell(cell_type, source, metadata=None, execution_count=None, outputs=()):
    cell = {"cell_type": cell_type, "metadata": metadata or {}, "source": source.splitlines(keepends=True)}
    if cell_type == "code":
        cell.update(execution_count=execution_count, outputs=list(outputs))
    return cell


def _notebook(*cells):
    cells = [{"id": f"c{i}", **cell} for i, cell in enumerate(cells)]
    return {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
            "nbformat": 4, "nbformat_minor": 5}


def _text(cell):
    return "".join(cell["source"])


# --- strip_solutions -----------------------------------------------------------------------------------

def test_strip_keeps_signature_docstring_and_surrounding_code():
    out = strip_solutions(EXERCISE)
    assert out == '''import math

def my_norm(x, y):
    """Euclidean norm of (x, y) -> float"""
    # YOUR CODE HERE (hint: math.hypot, or the square root of a sum of squares)
    ''' + RAISE + '''

answer = 42'''


def test_strip_uses_the_begin_markers_indentation_and_default_stub():
    src = "class A:\n    def f(self):\n        ### BEGIN SOLUTION\n  return 1\n        ### END SOLUTION\n"
    assert strip_solutions(src) == ("class A:\n    def f(self):\n        # YOUR CODE HERE\n"
                                    f"        {RAISE}\n")


def test_strip_several_blocks_in_one_cell():
    src = ("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n\n"
           "def g():\n    x = 0\n    ### BEGIN SOLUTION  # hint: two\n    return 2\n    ### END SOLUTION\n")
    out = strip_solutions(src)
    assert out.count(RAISE) == 2 and "return 1" not in out and "return 2" not in out
    assert "def f():\n    # YOUR CODE HERE\n" in out and "    x = 0\n    # YOUR CODE HERE (hint: two)\n" in out


def test_strip_markdown_answer():
    src = "**Question:** why a margin?\n\n### BEGIN SOLUTION\nBecause far negatives\nteach nothing.\n### END SOLUTION\n\nNext."
    assert strip_solutions(src, "markdown") == "**Question:** why a margin?\n\n*Your answer here.*\n\nNext."
    hinted = "### BEGIN SOLUTION  # hint: think of easy triplets\nanswer\n### END SOLUTION"
    assert strip_solutions(hinted, "markdown") == "*Your answer here (hint: think of easy triplets).*"


def test_source_without_markers_is_returned_unchanged():
    for src in ["", "x = 1\n", "# mentions ### BEGIN SOLUTION in the middle of a line\n"]:
        assert strip_solutions(src) == src


def test_the_stub_raises_not_implemented_when_run():
    solved, student = {}, {}
    exec(EXERCISE, solved)
    exec(strip_solutions(EXERCISE), student)  # defining the function still works...
    assert solved["my_norm"](3, 4) == 5.0 and student["answer"] == 42
    assert student["my_norm"].__doc__ == "Euclidean norm of (x, y) -> float"
    with pytest.raises(NotImplementedError, match="exercise"):  # ...calling it does not
        student["my_norm"](3, 4)


@pytest.mark.parametrize("src, message", [
    (f"def f():\n    {BEGIN}\n    return 1\n", "line 2: ### BEGIN SOLUTION without an ### END SOLUTION"),
    (f"x = 1\n{END}\n", "line 2: ### END SOLUTION without a ### BEGIN SOLUTION"),
    (f"{BEGIN}\n{BEGIN}\n{END}\n{END}\n", "line 2: .* nested"),
    (f"{BEGIN} use +\n{END}\n", "line 1: write '### BEGIN SOLUTION' alone"),
    (f"{BEGIN}\n{END} here\n", "line 2: write '### END SOLUTION' alone"),
])
def test_malformed_markers(src, message):
    with pytest.raises(ValueError, match=message):
        strip_solutions(src)
    nb = _notebook(_cell("markdown", "# Title"), _cell("code", "x = 1"), _cell("code", src))
    with pytest.raises(ValueError, match=r"^03_demo\.ipynb, cell 2 \(id 'c2', code\): line \d"):
        student_notebook(nb, name="03_demo.ipynb")


# --- student_notebook ----------------------------------------------------------------------------------

def test_notebook_without_markers_only_loses_its_outputs():
    output = {"name": "stdout", "output_type": "stream", "text": ["1\n"]}
    nb = _notebook(_cell("markdown", "# Title\n\nIntro"),
                   _cell("code", "print(1)", execution_count=3, outputs=[output], metadata={"tags": ["x"]}),
                   {"cell_type": "raw", "id": "r", "metadata": {}, "source": ["raw ### END SOLUTION\n"]})
    student = student_notebook(nb)
    expected = json.loads(json.dumps(nb))
    expected["cells"][1].update(execution_count=None, outputs=[])
    assert student == expected
    assert nb["cells"][1]["outputs"] == [output]  # the input is not modified
    assert count_solutions(nb) == 0


def test_outputs_that_nbval_checks_are_kept():
    output = {"name": "stdout", "output_type": "stream", "text": ["2\n"]}
    nb = _notebook(_cell("code", "print(1 + 1)", execution_count=4, outputs=[output],
                         metadata={"tags": ["nbval-check-output"]}),
                   _cell("code", "# NBVAL_CHECK_OUTPUT\nprint(1 + 1)", execution_count=5, outputs=[output]),
                   _cell("code", "print(1 + 1)", execution_count=6, outputs=[output]))
    student = student_notebook(nb)
    assert [c["outputs"] for c in student["cells"]] == [[output], [output], []]
    assert [c["execution_count"] for c in student["cells"]] == [4, 5, None]  # nbval skips cells never run


def test_student_notebook_strips_every_cell_and_keeps_metadata():
    nb = _notebook(_cell("markdown", "# 09 — Demo\n\nWhat you learn."),
                   _cell("code", EXERCISE, execution_count=1, metadata={"tags": ["exercise"], "x": 1},
                         outputs=[{"output_type": "stream", "name": "stdout", "text": "hi\n"}]),
                   _cell("markdown", f"Why?\n\n{BEGIN}\nBecause.\n{END}\n"))
    student = student_notebook(nb, name="09_demo.ipynb")
    md0, code, md2 = student["cells"]
    assert _text(md0) == "# 09 — Demo\n\nWhat you learn.\n\n" + STUDENT_NOTE
    assert RAISE in _text(code) and "math.sqrt" not in _text(code)
    assert code["metadata"] == {"tags": ["exercise"], "x": 1} and code["id"] == nb["cells"][1]["id"]
    assert code["outputs"] == [] and code["execution_count"] is None
    assert _text(md2) == "Why?\n\n*Your answer here.*\n"
    assert student["metadata"] == nb["metadata"] and student["nbformat_minor"] == 5
    assert all(isinstance(c["source"], list) for c in student["cells"])  # Jupyter's on-disk form
    assert count_solutions(nb) == 2
    assert student_notebook(student) == student  # idempotent: no second note, nothing left to strip


# --- files and command line ----------------------------------------------------------------------------

def _write(path, nb):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def test_cli_writes_the_student_edition_and_prints_counts(tmp_path, capsys):
    src = tmp_path / "notebooks"
    _write(src / "00_intro.ipynb", _notebook(_cell("markdown", "# Intro — start"), _cell("code", "x = 1")))
    _write(src / "01_ex.ipynb", _notebook(_cell("markdown", "# Ex"), _cell("code", EXERCISE),
                                          _cell("code", f"def g():\n    {BEGIN}\n    pass\n    {END}")))
    _write(src / "scratch.ipynb", _notebook(_cell("code", "x = 1")))

    assert main(["student", str(tmp_path / "out" / "student"), "--notebooks", str(src)]) == 0
    lines = capsys.readouterr().out.splitlines()
    out = tmp_path / "out" / "student"
    assert lines == [f"{out / '00_intro.ipynb'}: 0 solutions removed", f"{out / '01_ex.ipynb'}: 2 solutions removed"]
    assert sorted(p.name for p in out.iterdir()) == ["00_intro.ipynb", "01_ex.ipynb"]
    # Jupyter's layout: indent 1, sorted keys, UTF-8 kept, final newline. Unchanged notebooks stay byte-identical.
    assert (out / "00_intro.ipynb").read_bytes() == (src / "00_intro.ipynb").read_bytes()
    text = (out / "01_ex.ipynb").read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    assert BEGIN not in text and END not in text and text.count("NotImplementedError") == 2

    assert write_student_edition(src, tmp_path / "again", pattern="01_*.ipynb") == [tmp_path / "again" / "01_ex.ipynb"]


def test_cli_errors_name_the_problem(tmp_path, capsys):
    src = tmp_path / "notebooks"
    _write(src / "01_bad.ipynb", _notebook(_cell("code", f"{BEGIN}\nx = 1\n")))
    assert main(["student", str(tmp_path / "out"), "--notebooks", str(src)]) == 1
    assert "01_bad.ipynb, cell 0" in capsys.readouterr().err
    assert main(["student", str(src), "--notebooks", str(src)]) == 1  # never overwrite the instructor edition
    assert "would overwrite" in capsys.readouterr().err
    assert main(["student", str(tmp_path / "out"), "--notebooks", str(tmp_path / "nowhere")]) == 1
    with pytest.raises(SystemExit):
        main([])  # a subcommand is required


# --- the committed notebooks ---------------------------------------------------------------------------

def _solution_lines(source):
    """(non-blank lines strictly inside solution blocks, lines outside them) of one cell."""
    inside, outside, opened = set(), set(), False
    for line in source.split("\n"):
        if line.strip().startswith(BEGIN):
            opened = True
        elif line.strip().startswith(END):
            opened = False
        elif opened and line.strip():
            inside.add(line)
        elif not opened:
            outside.add(line)
    return inside, outside


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob(NOTEBOOK_PATTERN)), ids=lambda p: p.name)
def test_committed_notebooks_have_a_clean_student_edition(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    student = student_notebook(nb, name=path.name)  # not executed: nbval does that in `uv run pytest`
    assert BEGIN not in json.dumps(student, ensure_ascii=False)
    for i, (cell, new) in enumerate(zip(nb["cells"], student["cells"])):
        inside, outside = _solution_lines(_text(cell))
        leaked = (inside - outside) & set(_text(new).split("\n"))
        assert not leaked, f"{path.name}, cell {i}: solution lines left in the student edition: {sorted(leaked)}"


# --- conftest.py: both editions under nbval ------------------------------------------------------------
# pytester runs pytest in this process on a throw-away project that has a copy of our conftest.py.

@pytest.fixture
def project(pytester):
    """Our conftest.py, a tests/ folder and two tiny notebooks, one with an exercise."""
    shutil.copy(ROOT / "conftest.py", pytester.path / "conftest.py")
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    _write(pytester.path / "notebooks" / "00_intro.ipynb", _notebook(_cell("markdown", "# Intro"), _cell("code", "x = 1")))
    exercise = "def my_add(a, b):\n    ### BEGIN SOLUTION  # hint: +\n    return a + b\n    ### END SOLUTION"
    fallback = "try:\n    s = my_add(1, 2)\nexcept NotImplementedError:\n    s = 3  # the library's version\nassert s == 3"
    checked = _cell("code", "print(1 + 1)", metadata={"tags": ["nbval-check-output"]}, execution_count=1,
                    outputs=[{"name": "stdout", "output_type": "stream", "text": ["2\n"]}])
    _write(pytester.path / "notebooks" / "01_ex.ipynb", _notebook(_cell("markdown", "# Ex"), _cell("code", exercise),
                                                                  _cell("code", fallback), checked,
                                                                  _cell("code", "my_add(1, 2)")))
    return pytester


def test_conftest_collects_the_student_edition_of_notebooks_with_exercises(project):
    build = project.path / "build" / "student-edition"
    result = project.runpytest("--collect-only", "-q", "--nbval-lax", "tests/")
    result.assert_outcomes()
    assert result.stdout.lines[0] == "tests/test_nothing.py::test_nothing" and not build.exists()

    result = project.runpytest("--collect-only", "-q", "--nbval-lax", "notebooks/")
    assert sorted(line for line in result.stdout.lines if "::" in line) == [
        *(f"build/student-edition/01_ex.ipynb::Cell {i}" for i in range(4)),  # no edition for 00: no exercise
        "notebooks/00_intro.ipynb::Cell 0", *(f"notebooks/01_ex.ipynb::Cell {i}" for i in range(4))]
    assert [p.name for p in build.iterdir()] == ["01_ex.ipynb"]
    assert "    # YOUR CODE HERE (hint: +)\n" in _text(json.loads((build / "01_ex.ipynb").read_text())["cells"][1])

    result = project.runpytest("--collect-only", "-q", "--nbval-lax", "-k", "student", "notebooks/")
    result.stdout.fnmatch_lines(["4/9 tests collected (5 deselected)*"])
    for args in (["--nbval-lax", "--no-student-edition"], []):  # asked not to, or nbval off: no student edition
        result = project.runpytest("--collect-only", "-q", *args, "notebooks/")
        assert not any("build/" in line for line in result.stdout.lines), result.stdout.str()


def test_nbval_executes_both_editions(project):
    """Both pass the output check; only the student edition fails, where it calls the unsolved function bare."""
    (project.path / "notebooks" / "00_intro.ipynb").unlink()
    result = project.runpytest("-q", "--nbval-lax", "--nbval-current-env", "notebooks/")
    result.assert_outcomes(passed=7, failed=1)
    result.stdout.fnmatch_lines(["FAILED build/student-edition/01_ex.ipynb::Cell 3*"])
