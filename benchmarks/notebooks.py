"""Wall time and peak memory of every notebook, in every profile asked for, each in a fresh kernel.

    uv run python benchmarks/notebooks.py                        # quick and standard (+ full on a GPU)
    uv run python benchmarks/notebooks.py --profiles quick --only 05,07

Each notebook runs top to bottom as a student runs it (instructor edition, ``COURSE_PROFILE`` set for the
kernel), one at a time, with all of the machine's cores. Per notebook and profile the table gives:

* seconds: from starting the kernel to shutting it down (start-up, imports, every cell, and a last
  cell this script adds to read the memory figures)
* peak RSS: the kernel process's peak resident memory (``getrusage``), and on a GPU the peak memory
  that PyTorch allocated on it
* slowest cell: where most of that time goes: the cell as JupyterLab numbers it after Run All (In [n])
  and its first line

Results are kept per device in benchmarks/results/notebooks-<device>.json, so profiles run on different
days end up in one table (benchmarks/results/notebooks-<device>.md).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
import torch
from _common import machine, write_table
from nbclient import NotebookClient

from course_lib.authoring.render import environment
from course_lib.core import PROFILES, pick_device

ROOT = Path(__file__).resolve().parent.parent
PROBE = """\
import json as _json, sys as _sys, torch as _torch
try:
    import resource as _resource
    _rss = _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss * (1 if _sys.platform == "darwin" else 1024)
except ImportError:          # Windows
    _rss = None
print("BENCHMARK " + _json.dumps({"rss": _rss, "gpu": _torch.cuda.max_memory_allocated()
                                  if _torch.cuda.is_available() else None}))
"""


def cell_seconds(cell) -> float:
    """Seconds between a cell's execute_input and its reply, from nbclient's timing metadata."""
    t = cell.metadata.get("execution", {})
    start, end = t.get("iopub.execute_input"), t.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    return (parse(end) - parse(start)).total_seconds()


def run_notebook(path: Path, profile: str, timeout: int) -> dict:
    """Execute one notebook in a fresh kernel in ``profile``; its seconds, peak memory and slowest cell."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    stamp = {"date": time.strftime("%Y-%m-%d"), "torch": torch.__version__}
    start = time.perf_counter()
    try:                                                     # a failed notebook is a row, not the end of the run
        with environment(COURSE_PROFILE=profile, MPLBACKEND="Agg", PYDEVD_DISABLE_FILE_VALIDATION="1"):
            NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False,
                           resources={"metadata": {"path": str(path.parent)}}).execute()
        seconds = time.perf_counter() - start
        probe = next(o["text"] for o in nb.cells[-1].outputs if o.get("name") == "stdout" and "BENCHMARK" in o["text"])
        memory = json.loads(probe.split("BENCHMARK ", 1)[1])
        slow = max((c for c in nb.cells[:-1] if c.cell_type == "code"), key=cell_seconds)
    except Exception as e:
        return {**stamp, "seconds": time.perf_counter() - start, "error": f"{type(e).__name__}: {str(e)[-300:]}"}
    first = next((line for line in slow.source.splitlines() if line.strip()), "")
    return {**stamp, "seconds": seconds, "rss": memory["rss"], "gpu": memory["gpu"],
            "slowest": {"cell": slow.execution_count, "seconds": cell_seconds(slow), "line": first[:60]}}


def table(results: dict, device: torch.device) -> str:
    profiles = [p for p in PROFILES if p in results]
    names = sorted({n for p in profiles for n in results[p]["notebooks"]})
    gpu = device.type == "cuda"
    head = "| notebook | " + " | ".join(
        f"{p}: s | {p}: peak RSS MiB" + (f" | {p}: peak GPU MiB" if gpu else "") for p in profiles) + " |\n"
    head += "|---" * (1 + len(profiles) * (3 if gpu else 2)) + "|\n"

    def cells(r: dict | None) -> list[str]:
        if r is None:
            return ["not run"] + [""] * (2 if gpu else 1)
        if "error" in r:
            return [f"FAILED after {r['seconds']:.0f} s (below)"] + [""] * (2 if gpu else 1)
        mb = lambda b: "" if b is None else f"{b / 2 ** 20:,.0f}"
        return [f"{r['seconds']:.1f}", mb(r["rss"])] + ([mb(r["gpu"])] if gpu else [])

    rows = "".join(f"| {n} | " + " | ".join(c for p in profiles for c in cells(results[p]["notebooks"].get(n)))
                   + " |\n" for n in names)
    def total(p: str) -> str:
        done = results[p]["notebooks"]
        if len(done) < len(names) or any("error" in r for r in done.values()):
            return "incomplete"
        return f"**{sum(r['seconds'] for r in done.values()):.0f}**"

    total_row = "| **all** | " + " | ".join(c for p in profiles for c in [total(p), ""] + ([""] if gpu else [])) + " |\n"
    escape = lambda text: text.replace("|", "\\|")
    slow = "\nWhere the time goes (slowest cell of each notebook, In [n] after Run All):\n\n" \
           "| profile | notebook | In [n] | s | first line |\n|---|---|---|---|---|\n" + "".join(
               f"| {p} | {n} | {r['slowest']['cell']} | {r['slowest']['seconds']:.1f} | `{escape(r['slowest']['line'])}` |\n"
               for p in profiles for n, r in sorted(results[p]["notebooks"].items()) if "slowest" in r)
    failures = "".join(f"\n{p} / {n} failed: {escape(r['error'])}\n" for p in profiles
                       for n, r in sorted(results[p]["notebooks"].items()) if "error" in r)
    runs = "".join(f"- {p}: {results[p]['machine']}, torch "
                   f"{', '.join(sorted({r['torch'] for r in results[p]['notebooks'].values()}))}, "
                   f"{', '.join(sorted({r['date'] for r in results[p]['notebooks'].values()}))}\n" for p in profiles)
    return (f"# Notebooks: wall time and peak memory per profile\n\nEach notebook in a fresh kernel, one at a time "
            f"(kernel start, imports and every cell).\n\n{runs}\n{head}{rows}{total_row}{slow}{failures}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", nargs="+", choices=list(PROFILES), default=None,
                    help="default: quick and standard, and full on a GPU")
    ap.add_argument("--only", default=None, help="comma-separated notebook numbers, e.g. 05,07")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    a = ap.parse_args()
    device = pick_device()
    profiles = a.profiles or (["quick", "standard"] + (["full"] if device.type == "cuda" else []))
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if a.only:
        wanted = {s.strip() for s in a.only.split(",")}
        notebooks = [p for p in notebooks if p.name[:2] in wanted]
        if not notebooks:
            sys.exit(f"--only {a.only}: no notebook starts with those numbers in {ROOT / 'notebooks'}")
    store = ROOT / "benchmarks" / "results" / f"notebooks-{device.type}.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    for profile in profiles:
        entry = results.setdefault(profile, {"notebooks": {}})
        entry["machine"] = machine(device)
        for path in notebooks:
            r = run_notebook(path, profile, a.timeout)
            entry["notebooks"][path.stem] = r
            store.parent.mkdir(exist_ok=True)
            store.write_text(json.dumps(results, indent=1) + "\n")          # kept even if a later one is stopped
            print(f"{profile:>8} {path.stem:<26} {r['seconds']:7.1f} s  "
                  + (r["error"] if "error" in r else f"peak RSS {r['rss'] / 2 ** 20:,.0f} MiB"), flush=True)
    write_table(table(results, device), f"notebooks-{device.type}")


if __name__ == "__main__":
    main()
