"""What every benchmark script shares: the machine's description and where its table goes."""
from __future__ import annotations

import platform
from pathlib import Path

import torch

from course_lib.core.runtime import timings  # noqa: F401  (the benchmarks' timing loop)


def machine(device: torch.device | None = None) -> str:
    """'host, CPU, N threads' (or the GPU's name on CUDA), for the table's header."""
    if device is not None and device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.node() or 'machine'}, {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def write_table(table: str, name: str) -> Path:
    """Print the table and write it to benchmarks/results/<name>.md; return that path."""
    print(table)
    out = Path(__file__).parent / "results" / f"{name}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(table)
    print(f"written to {out}")
    return out
