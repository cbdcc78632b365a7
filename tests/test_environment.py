"""The three ways in (uv, conda, CI) must install the same thing, and notebooks are committed clean."""
import json
import re
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def pyproject_pins(groups: tuple[str, ...] = ()):
    """Exact pins of the runtime dependencies, and of the named dependency groups."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = project["project"]["dependencies"] + [d for g in groups for d in project["dependency-groups"][g]]
    pins = {}
    for dep in deps:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", dep)
        assert match, f"pyproject.toml dependency {dep!r} is not pinned to an exact version (name==x.y.z)"
        pins[match[1].lower()] = match[2]
    return pins


def environment_pins():
    text = (ROOT / "environment.yml").read_text()
    return {m[1].lower(): m[2] for m in re.finditer(r"^\s*-\s*([A-Za-z0-9_.\-]+)==(\S+)\s*$", text, re.M)}


def test_environment_yml_matches_pyproject():
    """conda gets the runtime and the test tools (not the benchmarks' comparison libraries), pinned alike."""
    env, everything = environment_pins(), pyproject_pins(("dev", "browser"))
    assert set(pyproject_pins()) <= set(env), "environment.yml lacks a runtime dependency of pyproject.toml"
    assert {"pytest", "nbval"} <= set(env), "environment.yml must also install the test tools"
    assert {name: everything.get(name) for name in env} == env, "environment.yml and pyproject.toml pin differently"
    python = re.search(r"^\s*-\s*python=(\S+)", (ROOT / "environment.yml").read_text(), re.M)[1]
    assert python == "3.11"


def test_lock_file_pins_the_same_versions():
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {}
    for p in lock["package"]:
        locked.setdefault(p["name"].lower(), set()).add(p["version"])
    for name, version in pyproject_pins(("dev", "browser")).items():
        assert locked.get(name) == {version}, f"uv.lock has {name} {locked.get(name)}, pyproject pins {version}: run uv lock"


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_committed_without_outputs(path):
    """Outputs belong to a run, not to the source. The only exception: cells tagged nbval-check-output
    keep their small, deterministic text output, which nbval compares against."""
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        if "nbval-check-output" in cell.get("metadata", {}).get("tags", []):
            assert all(o["output_type"] in ("stream", "execute_result") and set(o.get("data", {})) <= {"text/plain"}
                       for o in cell["outputs"]), f"{path.name} cell {i}: checked outputs must be plain text"
        else:
            assert not cell.get("outputs"), f"{path.name} cell {i} carries outputs: clear them before committing"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution count: clear outputs"


def test_there_are_notebooks():
    assert {"00_start_here.ipynb", "01_siamese_mnist.ipynb", "02_triplet_loss.ipynb",
            "03_hard_mining.ipynb"} <= {p.name for p in NOTEBOOKS}
