"""Batches that stay on the device, and the one rule every batch source follows for its randomness.

``EpochSeeded``: epoch e of a source with seed s always draws from the generator seeded by (s, e), so a
run repeats exactly and a resumed run draws the batches it would have drawn. ``fit`` calls
``set_epoch(e)`` before each epoch; plain iteration advances by itself. Every sampler, canvas, figure
and distortion source of the course is an ``EpochSeeded``.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

__all__ = ["to_device", "EpochSeeded", "TensorBatches"]


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


class EpochSeeded:
    """The randomness of every batch source: epoch e of a source with seed s draws from one CPU generator
    seeded by (s, e). Subclasses set ``seed`` and ``steps`` and start each ``__iter__`` with
    ``g = self.epoch_generator()``.

    ``fit`` calls ``set_epoch(e)`` before epoch e, so a resumed run draws the batches it would have drawn;
    plain iteration advances by itself. The draws are made on the CPU (the same numbers on every device)
    and copied to the device in one go with :func:`to_device`.
    """

    seed: int
    steps: int
    epoch: int = 0
    SEED_STRIDE = 1_000_003   # generator seed = seed * SEED_STRIDE + epoch (a large prime: no two (seed, epoch) meet)

    def __len__(self) -> int:
        return self.steps

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def epoch_generator(self) -> torch.Generator:
        """The generator of the current epoch; advances to the next epoch."""
        g = torch.Generator().manual_seed(self.seed * self.SEED_STRIDE + self.epoch)
        self.epoch += 1
        return g


class TensorBatches(EpochSeeded):
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
        g = self.epoch_generator()
        device = self.tensors[0].device
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        order = to_device(order, device)                              # one copy per epoch
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield tuple(t[idx] for t in self.tensors)
