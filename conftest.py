"""Test defaults: the quick profile and no network, unless the caller set them.

Set here (not in a fixture) so that the Jupyter kernels started by nbval inherit them too.
"""
import os
import re
from fnmatch import fnmatch
from pathlib import Path

import pytest

os.environ.setdefault("COURSE_PROFILE", "quick")
os.environ.setdefault("COURSE_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("COURSE_STRICT", "1")   # expect_at_least(...) in the notebooks asserts under test

# --- Parallel workers (pytest-xdist, `-n auto` in pyproject.toml) ---------------------------------------
# Each worker runs whole files (--dist loadfile: a notebook's cells stay in order on one kernel). The CPU
# threads are shared out, so that two kernels on a 2-core laptop do not fight over the cores: measured
# here, one notebook with 2 threads took 46 s, two notebooks side by side with 1 thread each 74 s.
MAX_WORKERS = 4   # each worker may hold a notebook kernel with its data: keep memory bounded


def pytest_xdist_auto_num_workers(config):
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def pytest_configure(config):
    """`-m browser`: one test per notebook, so spread them one by one (--dist load), not file by file."""
    if getattr(config.option, "markexpr", "") == "browser" and getattr(config.option, "dist", "no") == "loadfile":
        config.option.dist = "load"
        config.option.maxschedchunk = 1


def pytest_collection_modifyitems(items):
    """Longest first: notebooks by descending lesson number (07 trains the most), then the unit tests.

    Workers take files in this order, so the long notebooks start at once and the short files fill the
    end, instead of one worker finishing 07 alone while the other waits. Cells keep their order.
    """
    def key(item):
        path = Path(str(item.fspath))
        if path.suffix == ".ipynb" and path.name[:2].isdigit():
            return (0, -int(path.name[:2]), "student-edition" in path.parts)
        return (1, 0, False)
    items.sort(key=key)   # stable: the order inside each file is kept


if os.environ.get("PYTEST_XDIST_WORKER"):
    _threads = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    os.environ.setdefault("OMP_NUM_THREADS", str(_threads))   # read by torch in the notebook kernels
    import torch
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


# --- Student editions --------------------------------------------------------------------------------
# With nbval on, every notebooks/NN_*.ipynb that has exercises is also executed as its student edition
# (solutions replaced by stubs, see course_lib/authoring/editions.py): it is written to build/student-edition/
# and its cells are collected as "build/student-edition/01_siamese_mnist.ipynb::Cell 3".
# --no-student-edition runs the instructor notebooks only. A notebook named on the command line
# (`pytest notebooks/01_siamese_mnist.ipynb`) runs as the instructor edition only; pytest keeps just
# the nodes at that path: select a folder and `-k 01_siamese` to run both editions of one notebook.
collect_ignore = ["build"]  # generated notebooks are collected through their instructor notebook, not twice


def pytest_addoption(parser):
    parser.addoption("--no-student-edition", action="store_true",
                     help="execute only the instructor notebooks, not their student editions")


@pytest.hookimpl(trylast=True)  # after nbval's hook: a notebook runs before its student edition
def pytest_collect_file(file_path, parent):
    config = parent.config
    nbval_on = getattr(config.option, "nbval", False) or getattr(config.option, "nbval_lax", False)
    if not nbval_on or config.option.no_student_edition or file_path.suffix != ".ipynb":
        return None
    from course_lib.authoring.editions import BEGIN, NOTEBOOK_PATTERN, write_student_notebook

    in_notebooks = file_path.parent.resolve() == (config.rootpath / "notebooks").resolve()
    if not in_notebooks or not fnmatch(file_path.name, NOTEBOOK_PATTERN):
        return None
    if BEGIN not in file_path.read_text(encoding="utf-8"):
        return None  # no exercise, so no student edition to run
    from nbval.plugin import IPyNbFile

    student, _ = write_student_notebook(file_path, config.rootpath / "build" / "student-edition")
    # The name makes `-k student` / `-k "not student"` pick one edition.
    return IPyNbFile.from_parent(parent, path=student, name=student.relative_to(config.rootpath).as_posix())


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the matplotlib figures a test made, so a long run does not keep hundreds of them open."""
    yield
    import sys
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def pytest_terminal_summary(terminalreporter):
    """Name the screenshots folder after a browser test run (tests/test_browser.py)."""
    reports = [r for key in ("passed", "failed", "error") for r in terminalreporter.stats.get(key, [])
               if hasattr(r, "nodeid")]   # tests that ran, not deselected ones
    if any("test_browser.py" in r.nodeid for r in reports):
        import json
        from pathlib import Path
        folder = Path(__file__).resolve().parent / "build" / "browser"
        terminalreporter.write_sep("-", f"browser screenshots: {folder}")
        ran = {r.nodeid.rsplit("[", 1)[-1].rstrip("]") for r in reports if "test_browser.py" in r.nodeid}
        for report in sorted(folder.glob("*/report.json")):
            r = json.loads(report.read_text())
            if r["notebook"] not in ran:
                continue   # left from an earlier run
            done = ", ".join(f"{kind} {result}" for kind, result in r["interactions"].items()) or "no widget controls"
            if r.get("problems"):
                done = "PROBLEMS: " + "; ".join(r["problems"])
            terminalreporter.write_line(f"{r['notebook']}: {done}")
        site = folder / "site_report.json"
        if site.exists() and any("test_rendered_course" in r.nodeid for r in reports):
            for page, r in json.loads(site.read_text()).items():
                terminalreporter.write_line(f"rendered {page}: {r['drawn']}/{r['plots']} plotly figures drawn, "
                                            f"{r['images']} images, {r['math']} formulas, {r['mb']} MB")


# --- No warnings in a student's notebook ---------------------------------------------------------------
# A warning in a cell's output (a framework's "UserWarning: ..." on stderr) fails that cell, in both
# editions: a student should never have to wonder whether it matters. Avoid its cause, or catch it where
# it arises and say in one line what it means (as fit does for PyTorch's non-determinism warnings).
_WARNING_TEXT = re.compile(r"\b\w*Warning: ")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    outputs = getattr(item, "test_outputs", None)                      # nbval's cell items keep their outputs
    if call.when != "call" or not report.passed or not outputs:
        return
    warned = [o.get("text", "") for o in outputs
              if o.get("output_type") == "stream" and o.get("name") == "stderr" and _WARNING_TEXT.search(o.get("text", ""))]
    if warned:
        report.outcome = "failed"
        report.longrepr = ("The cell printed a warning (a student would see it):\n" + "\n".join(warned)[:2000] +
                           "\nAvoid its cause, or catch it where it arises and say in one line what it means.")
