"""Every benchmark, one after the other, each printing its table and writing it to benchmarks/results/.

    uv run python benchmarks/run.py                    # all of them (about 35 minutes on 2 cores, most of it the notebooks)
    uv run python benchmarks/run.py --skip notebooks full_profile   # the quick ones only (a few minutes)

They run one at a time on purpose: two benchmarks at once would share the cores and time each other.
Not part of the tests: `uv run pytest` never runs them.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["training_loop", "miners", "vision_ops", "full_profile", "notebooks"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip", nargs="*", default=[], choices=BENCHMARKS, help="benchmarks to leave out")
    a = ap.parse_args()
    failed = []
    for name in (b for b in BENCHMARKS if b not in a.skip):
        print(f"\n=== benchmarks/{name}.py", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(HERE / f"{name}.py")], cwd=HERE.parent)
        print(f"=== {name}: {'done' if rc == 0 else f'FAILED (exit {rc})'} in {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
