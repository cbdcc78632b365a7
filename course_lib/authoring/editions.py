"""Two editions of every notebook: the instructor edition (committed) and the student edition (generated).

In the instructor notebook an exercise's solution sits between two marker lines, as in nbgrader:

    def my_contrastive_loss(x1, x2, same, margin):
        \"\"\"Contrastive loss ... -> scalar\"\"\"
        ### BEGIN SOLUTION  # hint: d is the Euclidean distance; the hinge is (margin - d).clamp_min(0)
        d = ...
        return ...
        ### END SOLUTION

The student edition replaces each block, markers included, by a stub at the BEGIN marker's indentation:

    # YOUR CODE HERE (hint: d is the Euclidean distance; the hinge is (margin - d).clamp_min(0))
    raise NotImplementedError("exercise: write this function, then run the cell again")

The hint is optional: it is whatever follows ``# hint:`` on the BEGIN line (without one the stub says
``# YOUR CODE HERE``). In a markdown cell (an answer to a written question) the block becomes
``*Your answer here.*``. Markers are the whole contract: cell tags play no part. A BEGIN without END,
an END without BEGIN or nested blocks raise a ValueError naming the notebook and the cell.

The student edition also has its outputs cleared (except the reference outputs that nbval checks), and
a one-line note at the end of its first cell (when markdown) if something was removed. Command line
(writes the student edition of every ``notebooks/NN_*.ipynb`` into OUT/):

    uv run python -m course_lib.authoring.editions student OUT/ [--notebooks DIR]

and the rendered course (every notebook executed, static pages that open offline; course_lib/authoring/render.py):

    uv run python -m course_lib.authoring.editions html OUT/ [--profile standard] [--presentation] [--only 00,03]

``uv run pytest`` executes both editions: see ``pytest_collect_file`` in the repository's conftest.py.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from fnmatch import fnmatch
from pathlib import Path

from ..core.runtime import profile
from .render import RenderError, render_course

__all__ = ["NOTEBOOK_PATTERN", "BEGIN", "END", "STUDENT_NOTE", "strip_solutions", "count_solutions",
           "student_notebook", "write_student_notebook", "write_student_edition", "main"]


NOTEBOOK_PATTERN = "[0-9][0-9]_*.ipynb"  # the lessons; other notebooks (scratch, drafts) are left alone


BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


STUDENT_NOTE = ("*Student edition: the exercise solutions are removed; unsolved exercises fall back to "
                "`course_lib`'s version, so the notebook still runs top to bottom.*")


_HINT = re.compile(r"#\s*hint:\s*(?P<hint>.*?)\s*")  # what may follow BEGIN on its line


def _blocks(lines: list[str]) -> list[tuple[int, int, str, str]]:
    """Solution blocks as (begin line, end line, indentation, hint), 0-based and inclusive."""
    blocks, opened = [], None  # opened: (line, indentation, hint) of a BEGIN still waiting for its END
    for i, line in enumerate(lines):
        text = line.strip()
        if text.startswith(BEGIN):
            hint = _HINT.fullmatch(text[len(BEGIN):].strip())
            if text != BEGIN and hint is None:
                raise ValueError(f"line {i + 1}: write {BEGIN!r} alone on its line or followed by "
                                 f"'  # hint: ...', got {text!r}")
            if opened is not None:
                raise ValueError(f"line {i + 1}: {BEGIN} inside the solution block opened on line "
                                 f"{opened[0] + 1}; blocks cannot be nested, close it with {END} first")
            opened = (i, line[: len(line) - len(line.lstrip())], hint["hint"] if hint else "")
        elif text.startswith(END):
            if text != END:
                raise ValueError(f"line {i + 1}: write {END!r} alone on its line, got {text!r}")
            if opened is None:
                raise ValueError(f"line {i + 1}: {END} without a {BEGIN} before it")
            blocks.append((opened[0], i, opened[1], opened[2]))
            opened = None
    if opened is not None:
        raise ValueError(f"line {opened[0] + 1}: {BEGIN} without an {END} after it")
    return blocks


def _stub(indent: str, hint: str, cell_type: str) -> list[str]:
    if cell_type == "markdown":
        return [indent + (f"*Your answer here (hint: {hint}).*" if hint else "*Your answer here.*")]
    return [indent + (f"# YOUR CODE HERE (hint: {hint})" if hint else "# YOUR CODE HERE"),
            indent + 'raise NotImplementedError("exercise: write this function, then run the cell again")']


def strip_solutions(source: str, cell_type: str = "code") -> str:
    """Replace every BEGIN/END SOLUTION block of one cell's source by a stub; everything else is kept."""
    lines = source.split("\n")  # split/join on "\n" gives back the source exactly, final newline included
    out, start = [], 0
    for begin, end, indent, hint in _blocks(lines):
        out += lines[start:begin] + _stub(indent, hint, cell_type)
        start = end + 1
    return "\n".join(out + lines[start:])


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src  # on disk Jupyter stores a list of lines


def _set_source(cell: dict, text: str) -> None:
    cell["source"] = text.splitlines(keepends=True) if isinstance(cell.get("source"), list) else text


def _output_checked(cell: dict) -> bool:
    """True when nbval compares this cell's output with the stored one (a tag or a comment, as nbval reads them)."""
    comments = [line.strip().lstrip("#").strip() for line in _source(cell).splitlines() if line.strip().startswith("#")]
    return "nbval-check-output" in cell.get("metadata", {}).get("tags", []) or "NBVAL_CHECK_OUTPUT" in comments


def count_solutions(nb: dict) -> int:
    """Number of solution blocks in a notebook (a ValueError if its markers are malformed)."""
    return sum(len(_blocks(_source(c).split("\n"))) for c in nb["cells"] if c["cell_type"] != "raw")


def student_notebook(nb: dict, name: str = "notebook") -> dict:
    """Student edition of a notebook (nbformat 4 as a dict): solutions stubbed, outputs cleared.

    Cell and notebook metadata are kept, and so are the outputs and execution counts of the cells whose
    output nbval checks (tag nbval-check-output): they are the expected results CI compares against.
    If something was removed, a markdown cell 0 gets STUDENT_NOTE appended. ``name`` is only used in
    error messages. The input is not modified.
    """
    nb = json.loads(json.dumps(nb))  # deep copy
    removed = 0
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "raw":
            continue
        try:
            source = _source(cell)
            removed += len(_blocks(source.split("\n")))
            stripped = strip_solutions(source, cell["cell_type"])
        except ValueError as err:
            raise ValueError(f"{name}, cell {i} (id {cell.get('id', '?')!r}, {cell['cell_type']}): {err}") from None
        if stripped != source:
            _set_source(cell, stripped)
        if cell["cell_type"] == "code" and not _output_checked(cell):  # nbval's references stay, for CI
            cell["outputs"], cell["execution_count"] = [], None
    first = nb["cells"][0] if nb["cells"] else None
    if removed and first is not None and first["cell_type"] == "markdown" and STUDENT_NOTE not in _source(first):
        _set_source(first, _source(first).rstrip("\n") + "\n\n" + STUDENT_NOTE)
    return nb


def write_student_notebook(src: Path | str, out_dir: Path | str) -> tuple[Path, int]:
    """Write the student edition of one notebook into out_dir; return its path and the solutions removed."""
    src, out_dir = Path(src), Path(out_dir)
    if src.parent.resolve() == out_dir.resolve():
        raise ValueError(f"the student edition of {src} would overwrite it: choose another folder than {out_dir}")
    nb = json.loads(src.read_text(encoding="utf-8"))
    student = student_notebook(nb, name=str(src))
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / src.name
    # Jupyter's own layout (nbformat.writes): sorted keys, indent 1, UTF-8 as is, a final newline.
    # Written beside and renamed: parallel test workers each write it, and none may read half a file.
    tmp = out_dir / f".{src.name}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(student, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                   encoding="utf-8", newline="\n")
    os.replace(tmp, out)
    return out, count_solutions(nb)


def write_student_edition(src_dir: Path | str, out_dir: Path | str, pattern: str = NOTEBOOK_PATTERN) -> list[Path]:
    """Write the student edition of every notebook in src_dir whose name matches pattern; return the paths."""
    return [write_student_notebook(src, out_dir)[0] for src in _notebooks(src_dir, pattern)]


def _notebooks(src_dir: Path | str, pattern: str) -> list[Path]:
    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise ValueError(f"notebook folder {src_dir} does not exist")
    found = sorted(p for p in src_dir.iterdir() if p.is_file() and fnmatch(p.name, pattern))
    if not found:
        raise ValueError(f"no notebook in {src_dir} matches {pattern!r}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.authoring.editions",
                                     description="Produce editions of the course notebooks.")
    commands = parser.add_subparsers(dest="command", required=True)
    default_notebooks = Path(__file__).resolve().parents[2] / "notebooks"
    student = commands.add_parser("student", help="write the student edition (solutions removed, outputs cleared)")
    student.add_argument("out", type=Path, help="folder to write into (created if needed)")
    html = commands.add_parser("html", help="run every notebook and write the rendered course: static pages "
                                            "that open offline, with an index (see course_lib/authoring/render.py)")
    html.add_argument("out", type=Path, help="folder for index.html and one page per notebook (created if needed)")
    html.add_argument("--profile", default=None, choices=["quick", "standard", "full"],
                      help="run size the notebooks execute in (default: $COURSE_PROFILE, else full on a GPU and "
                           "standard otherwise, as in JupyterLab; standard takes about an hour on 2 cores)")
    html.add_argument("--presentation", action="store_true",
                      help="large type in the pages and the figures, for a projector")
    html.add_argument("--only", default="", help="comma-separated lesson numbers, e.g. 00,03 (default: all)")
    html.add_argument("--timeout", type=int, default=3600, help="seconds a cell may run (default: 3600)")
    for command in (student, html):
        command.add_argument("--notebooks", type=Path, default=default_notebooks,
                             help="folder of the instructor notebooks (default: the repository's notebooks/)")
        command.add_argument("--pattern", default=NOTEBOOK_PATTERN, help=f"which notebooks (default: {NOTEBOOK_PATTERN})")
    args = parser.parse_args(argv)

    try:
        notebooks = _notebooks(args.notebooks, args.pattern)
        if args.command == "student":
            for src in notebooks:
                out, removed = write_student_notebook(src, args.out)
                print(f"{out}: {removed} solution{'s' if removed != 1 else ''} removed")
            return 0
        only = {n.strip() for n in args.only.split(",") if n.strip()}
        chosen = [p for p in notebooks if not only or p.name[:2] in only]
        if not chosen:
            raise ValueError(f"--only {args.only!r} matches none of {[p.name[:2] for p in notebooks]}")
        try:
            index = render_course(args.out, chosen, profile=profile(args.profile).name,
                                  presentation=args.presentation, timeout=args.timeout)
        except RenderError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"open {index.resolve()} in a browser (works offline)")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
