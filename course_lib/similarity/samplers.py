"""Samplers for metric learning: batches of indices drawn from the labels, on the labels' device.

A training step then gathers ``images[idx]`` on the device: no per-sample Python work and no copies back
to the CPU. Each sampler is an :class:`course_lib.core.batching.EpochSeeded`.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

from ..core.batching import EpochSeeded, to_device
from ..core.checks import check_labels

__all__ = ["ClassIndex", "PKSampler", "PairSampler", "TripletSampler"]


class ClassIndex:
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


def _set_up(sampler: EpochSeeded, labels: Tensor, batch_size: int, steps: int | None, seed: int) -> None:
    """Shared by the pair and triplet samplers: check batch_size, group the labels by class, and set
    batch_size, seed and steps (default: about one pass over the labels)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    sampler.index = ClassIndex(labels)
    sampler.batch_size, sampler.seed = batch_size, seed
    sampler.steps = steps if steps is not None else max(1, len(labels) // batch_size)


class PKSampler(EpochSeeded):
    """Class-balanced batches: P random classes, K random samples of each, as (P*K,) index tensors.

    Hermans et al. 2017 ("In defense of the triplet loss") build batches this way so that every
    anchor has positives and many negatives. A class with fewer than K samples repeats some.
    """

    def __init__(self, labels: Tensor, p: int, k: int, steps: int | None = None, seed: int = 0):
        self.index = ClassIndex(labels)
        n_classes = len(self.index.classes)
        if not 1 <= p <= n_classes:
            raise ValueError(f"p={p} classes per batch, but the labels hold {n_classes} classes: use 1 <= p <= {n_classes}")
        if k < 1:
            raise ValueError(f"k must be at least 1 sample per class, got {k}")
        self.p, self.k, self.seed = p, k, seed
        self.steps = steps if steps is not None else max(1, len(labels) // (p * k))

    def __iter__(self) -> Iterator[Tensor]:
        g, ix = self.epoch_generator(), self.index
        if not self.steps:
            return
        epoch = torch.stack([ix.sample_k(torch.randperm(len(ix.classes), generator=g)[: self.p], self.k, g)
                             for _ in range(self.steps)])                            # (steps, P*K)
        yield from to_device(epoch, ix.device)                                       # one copy per epoch


class PairSampler(EpochSeeded):
    """Batches of pairs ``(i, j, same)``: index tensors (B,), and ``same`` (B,) bool.

    A share ``positive_fraction`` of each batch are positive pairs (two different samples of the
    same class); the rest pair a sample with one of another class chosen uniformly.
    """

    def __init__(self, labels: Tensor, batch_size: int, positive_fraction: float = 0.5,
                 steps: int | None = None, seed: int = 0):
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction}")
        _set_up(self, labels, batch_size, steps, seed)
        self.n_pos = round(batch_size * positive_fraction)
        self.n_neg = batch_size - self.n_pos
        if self.n_pos and len(self.index.with_positive) == 0:
            raise ValueError("positive pairs were asked for, but no class has two samples")
        if self.n_neg and len(self.index.classes) < 2:
            raise ValueError("negative pairs were asked for, but the labels hold a single class")

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        g, ix = self.epoch_generator(), self.index
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


class TripletSampler(EpochSeeded):
    """Random triplets ``(a, p, n)``, index tensors (B,) each: an anchor, another sample of its class
    and a sample of another class, all drawn uniformly ("offline", without looking at the network)."""

    def __init__(self, labels: Tensor, batch_size: int, steps: int | None = None, seed: int = 0):
        _set_up(self, labels, batch_size, steps, seed)
        if len(self.index.with_positive) == 0 or len(self.index.classes) < 2:
            raise ValueError("triplets need a class with two samples and at least two classes, got "
                             f"classes {self.index.classes.tolist()} with counts {self.index.count.tolist()}")

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        g, ix = self.epoch_generator(), self.index
        if not self.steps:
            return
        triplets = []
        for _ in range(self.steps):
            a = ix.anchors(self.batch_size, g)
            triplets.append(torch.stack([a, ix.positive_of(a, g), ix.negative_of(a, g)]))   # (3, B)
        epoch = to_device(torch.stack(triplets), ix.device)                           # (steps, 3, B), one copy
        for a, p, n in epoch:
            yield a, p, n
