"""Where and how big: the device, the random seed, the run-size profile and the data folder.

Every notebook starts with the same four lines, so a student can see what was chosen::

    device = pick_device()      # cuda if there is a GPU, else mps (Apple), else cpu
    P = profile()               # quick (CI) / standard (CPU default) / full (GPU default)
    use_presentation_style(P.presentation)   # large type when COURSE_PRESENTATION=1 (course_lib.viz)
    seed_everything(0)
"""
from __future__ import annotations

import math
import os
import random
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

__all__ = ["pick_device", "seed_everything", "Profile", "PROFILES", "profile", "data_dir", "significant",
           "format_seconds", "timings"]


def pick_device(prefer: str | None = None) -> torch.device:
    """The device to train on: ``prefer``, else ``$COURSE_DEVICE``, else cuda > mps > cpu."""
    name = prefer or os.environ.get("COURSE_DEVICE")
    if name:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {name!r} was asked for, but PyTorch sees no CUDA GPU here; "
                             "use 'cpu' or unset COURSE_DEVICE")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) and ask PyTorch for deterministic kernels,
    so that a rerun on the same machine gives the same numbers.

    Seeding alone is not enough: the backward pass of ``e[idx]`` with repeated indices (what a miner's
    triplets do) adds gradients with parallel atomic additions by default, in an order that changes
    from run to run; the rounding differences then grow over training (measured: semi-hard MAP@R
    0.594 vs 0.590 for two identical runs). ``torch.use_deterministic_algorithms`` switches such ops
    to ordered versions. Ops that have no deterministic version on a device (a few CUDA kernels)
    only warn; results on different machines or PyTorch versions may still differ in the last digits.

    ``torch.use_deterministic_algorithms`` also imports TorchInductor's config (and with it sympy),
    which took 3.9 s of every notebook's first cell here, for a setting only ``torch.compile`` reads.
    When Inductor is not loaded yet we flip the same switch directly (nothing in the course compiles;
    before your own ``torch.compile``, call ``torch.use_deterministic_algorithms(True)``).
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")   # deterministic cuBLAS (CUDA >= 10.2)
    _deterministic(True)
    torch.backends.cudnn.benchmark = False
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def _deterministic(mode: bool) -> None:
    """``torch.use_deterministic_algorithms(mode, warn_only=True)`` without importing Inductor (4 s)."""
    if "torch._inductor.config" in sys.modules or not hasattr(torch._C, "_set_deterministic_algorithms"):
        torch.use_deterministic_algorithms(mode, warn_only=True)
    else:
        torch._C._set_deterministic_algorithms(mode, warn_only=True)


@dataclass(frozen=True)
class Profile:
    """How big every run is. Notebooks read sizes from here and never hard-code them."""

    name: str
    train_size: int | None   # training images to use at most (None: all that were loaded)
    test_size: int | None    # held-out images to evaluate on at most (None: all)
    epochs: int              # passes over the training sampler
    steps_per_epoch: int     # optimizer steps per epoch for samplers that draw pairs/triplets
    batch_size: int          # pairs or images per step
    explorer_points: int     # points drawn in the embedding explorer (kept small for the browser)
    umap_epochs: int         # optimisation epochs for UMAP projections of D > 2 embeddings
    per_class: int           # images per class of the 100-class two-digit benchmark (notebooks 02-04)
    seeds: int               # training runs per method where a notebook compares methods (mean ± sd)
    projection: str = "umap"  # how explorers draw D > 2 embeddings: "umap", or "pca" where UMAP's numba
                              # compile (15-30 s in every new kernel) would outlast the rest of the notebook
    presentation: bool = field(default=False, repr=False)   # figures for a projector: COURSE_PRESENTATION=1


PROFILES: dict[str, Profile] = {
    # CI: seconds per notebook, enough to show every figure and pass the notebook's own checks.
    "quick": Profile("quick", train_size=2400, test_size=800, epochs=2, steps_per_epoch=16,
                     batch_size=128, explorer_points=400, umap_epochs=60, per_class=24, seeds=2, projection="pca"),
    # Laptop CPU default: a few minutes per notebook.
    "standard": Profile("standard", train_size=12_000, test_size=2_000, epochs=8, steps_per_epoch=60,
                        batch_size=128, explorer_points=1_000, umap_epochs=200, per_class=80, seeds=2),
    # GPU default: all of the data, twice standard's batch, 5 seeds, and standard's number of epochs (03's and
    # 07's curves flatten at epoch 8-9 with these sizes: benchmarks/results/full_profile-cpu.md), sized so that
    # each notebook takes about two minutes on one GPU (offline data): the GPU's speed goes into seeds and data.
    "full": Profile("full", train_size=None, test_size=None, epochs=8, steps_per_epoch=80,
                    batch_size=256, explorer_points=2_000, umap_epochs=200, per_class=400, seeds=5),
}


def profile(name: str | None = None) -> Profile:
    """The run-size profile: ``name``, else ``$COURSE_PROFILE``, else ``full`` on CUDA, ``standard`` otherwise."""
    chosen = name or os.environ.get("COURSE_PROFILE") or ("full" if torch.cuda.is_available() else "standard")
    chosen = chosen.strip().lower()
    if chosen not in PROFILES:
        raise ValueError(f"unknown profile {chosen!r}: expected one of {sorted(PROFILES)} "
                         "(set COURSE_PROFILE=quick, standard or full)")
    return replace(PROFILES[chosen], presentation=_presentation())


def _presentation() -> bool:
    """``COURSE_PRESENTATION=1`` (or true, yes, on): figures for a projector, see ``viz.use_presentation_style``."""
    return os.environ.get("COURSE_PRESENTATION", "").strip().lower() in ("1", "true", "yes", "on")


def data_dir() -> Path:
    """Folder for datasets and checkpoints: ``$COURSE_DATA``, else ``data/`` at the repository root."""
    env = os.environ.get("COURSE_DATA")
    path = Path(env).expanduser() if env else Path(__file__).resolve().parents[2] / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def significant(x: float, digits: int = 2) -> str:
    """``x`` rounded to ``digits`` significant digits, written without an exponent: 1120368 -> '1,100,000',
    0.004217 -> '0.0042', 12.5 -> '12' (digits=2). Timings vary by a few percent between runs: more
    digits than that only look precise.

    >>> significant(1120368), significant(0.004217), significant(9.96)
    ('1,100,000', '0.0042', '10')"""
    if digits < 1:
        raise ValueError(f"digits must be at least 1, got {digits}")
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    decimals = digits - 1 - math.floor(math.log10(abs(x)))
    rounded = round(x, decimals)
    if rounded and math.floor(math.log10(abs(rounded))) > math.floor(math.log10(abs(x))):   # 9.96 -> 10: one digit up
        decimals -= 1
        rounded = round(x, decimals)
    if decimals <= 0:
        return f"{rounded:,.0f}"
    return f"{rounded:.{decimals}f}"


_UNITS = (("µs", 1e-6), ("ms", 1e-3), ("s", 1.0), ("min", 60.0))


def format_seconds(seconds: float, digits: int = 2) -> str:
    """A duration in the unit that suits it, with ``digits`` significant digits: 8.9e-7 -> '0.89 µs',
    0.00042 -> '420 µs', 2.53 -> '2.5 s', 200 -> '3.3 min'.

    >>> [format_seconds(s) for s in (8.9e-7, 0.00042, 2.53, 200)]
    ['0.89 µs', '420 µs', '2.5 s', '3.3 min']"""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be a finite number of seconds >= 0, got {seconds}")
    if seconds == 0:
        return "0 s"
    rounded = float(significant(seconds, digits).replace(",", ""))     # 0.9997 s is '1.0 s', not '1,000 ms'
    unit, size = _UNITS[0]
    for name, value in _UNITS:
        if rounded >= value:
            unit, size = name, value
    return f"{significant(rounded / size, digits)} {unit}"


def timings(fn, repeats: int = 3, device: torch.device | None = None) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn()``, after one warm-up call (first calls allocate and pick
    kernels). On CUDA each call is waited for: the GPU runs asynchronously, and without
    ``torch.cuda.synchronize`` the clock would stop before the work is done. Take ``min`` for the best
    case, the median for a typical one."""
    def sync():
        if device is not None and torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)
    fn()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times
