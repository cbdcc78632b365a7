"""The shape of ``course_lib`` (see CONTRIBUTING.md): packages in layers, no cycles, small files, no state at import.

Layers, lowest first: ``core``; ``data``; the lesson packages (``similarity``, ``stn``, ``detection``, ``pose``);
then ``experiments``, ``exercises`` and ``viz``, which use the lessons; ``authoring`` (the build tooling) apart.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "course_lib"
MODULES = {".".join(p.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__"): p
           for p in ROOT.rglob("*.py")}
LESSONS = {"similarity", "stn", "detection", "pose", "stereo"}
# what each package may import from course_lib (besides itself)
ALLOWED = {
    "core": set(),
    "data": {"core"},
    **{lesson: {"core", "data"} for lesson in LESSONS},
    "experiments": {"core", "data"} | LESSONS,
    "exercises": {"core"} | LESSONS,
    "viz": {"core"} | LESSONS,
    "authoring": {"core"},
    "": set(),                                                      # course_lib/__init__.py
}


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports(module: str) -> list[tuple[str, list[str], bool]]:
    """(imported course_lib module, names, at module level?) for every import in the module's file."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("course_lib"):
                names = [a.name for a in node.names]
                if target + "." + names[0] in MODULES:                 # from .pkg import module
                    for name in names:
                        found.append((target + "." + name, [], id(node) in top))
                else:
                    found.append((target, names, id(node) in top))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], id(node) in top) for a in node.names if a.name.startswith("course_lib")]
    return found


def test_every_module_imports_only_from_its_layer():
    wrong = [(m, target) for m in MODULES for target, _, _ in imports(m)
             if package(target) != package(m) and package(target) not in ALLOWED[package(m)]]
    assert not wrong, wrong


def test_the_imports_have_no_cycle():
    graph = {m: {t for t, _, top in imports(m) if top and t in MODULES and t != m} for m in MODULES}
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for t in graph[m]:
            if state.get(t) == 1 and not (MODULES[t].name == "__init__.py" and m.startswith(t + ".")):
                raise AssertionError(" -> ".join(path + [t]))
            if t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(MODULES):
        if m not in state:
            visit(m, [m])


def test_no_private_name_is_imported_across_modules():
    private = [(m, t, n) for m in MODULES for t, names, _ in imports(m) for n in names if n.startswith("_")]
    assert not private, private
    for path in (ROOT.parent / "benchmarks").glob("*.py"):               # the benchmarks use course_lib too
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_lib"):
                assert not [a.name for a in node.names if a.name.startswith("_")], (path.name, node.module)


def test_files_and_functions_stay_small():
    long_files = {str(p.relative_to(ROOT)): n for p in MODULES.values() if (n := len(p.read_text().splitlines())) > 500}
    assert not long_files, long_files
    long_functions = []
    for module, path in MODULES.items():
        if package(module) == "viz":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                if node.end_lineno - node.lineno + 1 > 60:
                    long_functions.append(f"{module}.{node.name}")
    assert not long_functions, long_functions


@pytest.mark.parametrize("presentation", ["", "1"])
def test_importing_the_course_loads_no_test_tooling_and_changes_no_setting(presentation):
    code = """
import json, sys
import matplotlib
before = {k: str(v) for k, v in matplotlib.rcParams.items()}
import course_lib, course_lib.core, course_lib.data, course_lib.similarity, course_lib.stn, course_lib.detection
import course_lib.pose, course_lib.experiments, course_lib.exercises, course_lib.viz
after = {k: str(v) for k, v in matplotlib.rcParams.items()}
print(json.dumps({"loaded": sorted(m for m in ("pytest", "nbval", "nbconvert", "nbclient") if m in sys.modules),
                  "changed": sorted(k for k in before if before[k] != after[k])}))
"""
    env = {"COURSE_PRESENTATION": presentation, "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=ROOT.parent, check=True).stdout
    assert out.strip().endswith('{"loaded": [], "changed": []}'), out


def test_presentation_style_is_an_explicit_call_and_can_be_undone():
    import matplotlib

    from course_lib.viz import MATPLOTLIB_PRESENTATION, font_size, plotly_layout, use_presentation_style
    before = {k: matplotlib.rcParams[k] for k in MATPLOTLIB_PRESENTATION}
    assert font_size() == 16
    use_presentation_style()
    try:
        assert font_size() == 20 and plotly_layout()["font"]["size"] == 20
        assert all(matplotlib.rcParams[k] == v for k, v in MATPLOTLIB_PRESENTATION.items())
    finally:
        use_presentation_style(False)
    assert font_size() == 16 and {k: matplotlib.rcParams[k] for k in MATPLOTLIB_PRESENTATION} == before


NOTEBOOKS = sorted((ROOT.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_code_cells_are_short(path):
    """A cell a student reads at a glance: 20 lines at most (plumbing belongs in course_lib)."""
    import json
    cells = json.loads(path.read_text())["cells"]
    long = {i: len("".join(c["source"]).splitlines()) for i, c in enumerate(cells) if c["cell_type"] == "code"}
    assert all(n <= 20 for n in long.values()), {i: n for i, n in long.items() if n > 20}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_sets_its_figure_style_in_its_first_cell(path):
    """Presentation mode is explicit: the first code cell reads the profile and calls use_presentation_style."""
    import json
    first = next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    source = "".join(first["source"])
    assert "P = profile()" in source and "use_presentation_style(P.presentation)" in source


PACKAGES = ["core", "data", "similarity", "stn", "detection", "pose", "stereo", "experiments", "exercises", "viz"]   # not authoring
SHARED_WITHIN_PACKAGE = {"course_lib.exercises.harness"}   # the checkers' machinery: used by the checker files only


def test_public_names_are_listed_and_re_exported():
    """A public function or class is in its module's __all__, and the package's __init__ re-exports it, so that
    ``from course_lib.<package> import name`` works for every one of them."""
    import importlib
    problems = []
    for module, path in MODULES.items():
        if package(module) not in PACKAGES or path.name in ("__init__.py", "__main__.py"):
            continue
        mod = importlib.import_module(module)
        tree = ast.parse(path.read_text())
        public = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")}
        listed = set(getattr(mod, "__all__", []))
        problems += [f"{module}.{n} is not in its __all__" for n in sorted(public - listed)]
        problems += [f"{module}.__all__ names {n}, which it does not define" for n in sorted(listed) if not hasattr(mod, n)]
        if module not in SHARED_WITHIN_PACKAGE:
            pkg = importlib.import_module(f"course_lib.{package(module)}")
            problems += [f"course_lib.{package(module)} does not re-export {module}.{n}"
                         for n in sorted(listed - set(pkg.__all__))]
            problems += [f"course_lib.{package(module)}.{n} is not {module}.{n}"
                         for n in sorted(listed & set(pkg.__all__)) if getattr(pkg, n) is not getattr(mod, n)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_exercise_cells_do_not_import_the_function_they_ask_for(path):
    """An exercise's cell hands the student's function and its checker to use_if_correct, which falls back to
    course_lib's version by itself: the cell does not import that version (which would pass by calling it)."""
    import json
    import re

    import course_lib.exercises as ex
    for cell in json.loads(path.read_text())["cells"]:
        source = "".join(cell["source"])
        for check in re.findall(r"use_if_correct\(\w+, (check_\w+)\)", source):
            reference = re.search(r"course_lib\.[\w.]*\.(\w+)", getattr(ex, check).fallback_name)[1]
            assert not re.search(rf"^from course_lib\S* import [^\n]*\b{reference}\b", source, re.M), (check, reference)
