"""Hierarchical Triplet Loss (Ge, Huang, Dong & Scott, ECCV 2018): class distances, the class tree
and the dynamic margin.

The embeddings must be L2-normalised: the tree's thresholds run up to 4, the largest squared distance
between two unit vectors. All distances in this module are *squared* Euclidean distances, as in the
paper's class distance

    d(p, q) = 1 / (n_p n_q) * sum_{i in p, j in q} ||r_i - r_j||^2 .

Classes are the sorted distinct labels; row c of every (C, C) matrix is ``classes[c]``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import Tensor, nn

from ..core.batching import EpochSeeded, to_device
from ..core.checks import check_embeddings, check_labels
from ..core.training import embed
from .samplers import ClassIndex

__all__ = ["within_class_distance", "class_distances", "tree_thresholds", "tree_merges", "build_tree",
           "dynamic_margin", "nearest_classes", "ClassTree", "LiveTree", "RebuildEachEpoch",
           "AnchorNeighbourSampler"]


def _check_unit(embeddings: Tensor) -> None:
    check_embeddings(embeddings)
    norms = embeddings.detach().norm(dim=1)
    if len(norms) and not torch.allclose(norms, torch.ones_like(norms), atol=1e-3):
        raise ValueError(
            f"HTL needs L2-normalised embeddings (norms between {norms.min().item():.3g} and "
            f"{norms.max().item():.3g} here): its tree thresholds go up to 4, the largest squared distance "
            "between unit vectors. Pass torch.nn.functional.normalize(e, dim=1), or build the network with "
            "normalize=True.")


def _class_moments(embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """classes (C,), counts (C,), class means (C, D) and mean squared norms (C,)."""
    _check_unit(embeddings)
    check_labels(labels, len(embeddings))
    e = embeddings.detach().double()
    classes, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    c = len(classes)
    means = torch.zeros(c, e.shape[1], dtype=e.dtype, device=e.device).index_add_(0, inverse, e)
    means /= counts[:, None]
    sq_norms = torch.zeros(c, dtype=e.dtype, device=e.device).index_add_(0, inverse, e.pow(2).sum(1))
    return classes, counts, means, sq_norms / counts


def _spreads(counts: Tensor, means: Tensor, sq: Tensor) -> Tensor:
    """(C,) mean squared distance between two different images of each class (0 for a single image)."""
    n = counts.double()
    # mean over all n^2 ordered pairs (i = j included) is 2 (sq - |mu|^2); the n of them with i = j are 0
    all_pairs = 2 * (sq - means.pow(2).sum(1))
    return torch.where(n > 1, all_pairs * n / (n - 1).clamp_min(1), torch.zeros_like(n)).clamp_min(0)


def within_class_distance(embeddings: Tensor, labels: Tensor) -> tuple[float, Tensor]:
    """d0 and s: s (C,) is the mean squared distance between two *different* images of each class;
    d0 is the mean of s over the classes with at least 2 images. embeddings (N, D) unit length, labels (N,).

    A class with a single image has no pair: its s is 0 (it looks perfectly tight), and it is left out of d0.
    """
    _, counts, means, sq = _class_moments(embeddings, labels)
    s = _spreads(counts, means, sq)
    multi = counts > 1
    if not multi.any():
        raise ValueError("every class has a single image: there is no within-class distance to measure")
    return s[multi].mean().item(), s.float()


def class_distances(embeddings: Tensor, labels: Tensor) -> Tensor:
    """(C, C) mean squared distance between the images of each pair of classes (classes = sorted labels).

    Off the diagonal, the mean over every image of class p and every image of class q; on the diagonal,
    the class's own s (mean over pairs of different images, see ``within_class_distance``).
    Computed from class means: mean ||r_i - r_j||^2 = mean ||r_i||^2 + mean ||r_j||^2 - 2 mu_p . mu_q.
    """
    _, counts, means, sq = _class_moments(embeddings, labels)
    d = (sq[:, None] + sq[None, :] - 2 * means @ means.T).clamp_min(0)
    d.diagonal().copy_(_spreads(counts, means, sq))
    return d.float()


def tree_thresholds(d0: float, levels: int = 16) -> Tensor:
    """(L,) merge thresholds d_l = l (4 - d0) / L + d0 for l = 1 .. L (the last one is 4)."""
    if levels < 1:
        raise ValueError(f"levels must be at least 1, got {levels}")
    if not 0 <= d0 < 4:
        raise ValueError(f"d0 = {d0:.3g}: the mean within-class squared distance must lie in [0, 4) for "
                         "unit-length embeddings")
    return d0 + (4 - d0) * torch.arange(1, levels + 1, dtype=torch.float64) / levels


def tree_merges(class_distances: Tensor, d0: float, levels: int = 16) -> list[tuple[float, list[int], list[int]]]:
    """The merges of the class tree, in order: (threshold, classes of node a, classes of node b).

    At level l (threshold d_l), the two closest nodes are merged as long as their distance is at most
    d_l; a node's distance to another is the mean of the class distances between their classes
    (average linkage). Every pair of classes is merged by the last level, whose threshold is 4.
    """
    d = class_distances.detach().double().cpu()
    c = len(d)
    if d.shape != (c, c):
        raise ValueError(f"class_distances must be square (C, C), got shape {tuple(d.shape)}")
    node = d.clone()
    node.fill_diagonal_(float("inf"))
    members = [[i] for i in range(c)]
    alive = torch.ones(c, dtype=torch.bool)
    merges = []
    for t in tree_thresholds(d0, levels).tolist():
        while alive.sum() > 1:
            masked = node.masked_fill(~(alive[:, None] & alive[None, :]), float("inf"))
            flat = int(masked.argmin())
            a, b = divmod(flat, c)
            if masked[a, b] > t + 1e-9:
                break
            merges.append((t, list(members[a]), list(members[b])))
            na, nb = len(members[a]), len(members[b])
            node[a] = node[b] = (na * node[a] + nb * node[b]) / (na + nb)   # mean over class pairs
            node[:, a] = node[a]
            node[a, a] = float("inf")
            members[a] += members[b]
            alive[b] = False
    return merges


def build_tree(class_distances: Tensor, d0: float, levels: int = 16) -> Tensor:
    """d_H (C, C): for every pair of classes, the threshold d_l of the level at which they first share a
    node of the tree (0 on the diagonal). class_distances (C, C) from ``class_distances``."""
    c = len(class_distances)
    d_h = torch.zeros(c, c, dtype=torch.float64)
    for t, a, b in tree_merges(class_distances, d0, levels):
        ia, ib = torch.tensor(a), torch.tensor(b)
        d_h[ia[:, None], ib[None, :]] = t
        d_h[ib[:, None], ia[None, :]] = t
    return d_h.float().to(class_distances.device)


def dynamic_margin(d_h: Tensor, s: Tensor, beta: float = 0.1) -> Tensor:
    """(C, C) HTL's violate margin alpha[a, n] = beta + d_H(a, n) - s_a, for an anchor of class a and a
    negative of class n. d_h (C, C) from ``build_tree``, s (C,) from ``within_class_distance``."""
    return beta + d_h - s[:, None]


def nearest_classes(distances: Tensor, anchors: Tensor, m: int) -> Tensor:
    """(A, m) for each anchor class: itself, then its m - 1 nearest *other* classes, nearest first.

    distances (C, C) class distances (the diagonal is ignored), anchors (A,) class rows.
    """
    if not 1 <= m <= len(distances):
        raise ValueError(f"m = {m} classes per group, but there are {len(distances)} classes")
    rows = distances[anchors].clone()                                  # (A, C)
    rows[torch.arange(len(anchors)), anchors] = float("inf")           # not its own neighbour
    neighbours = rows.topk(m - 1, dim=1, largest=False).indices        # (A, m - 1)
    return torch.cat([anchors[:, None], neighbours], dim=1)


@dataclass
class ClassTree:
    """Everything HTL needs from one pass over the training embeddings.

    classes (C,) the labels, in the row order of every matrix; distances (C, C) class distances;
    s (C,) within-class distances; d0 their mean; d_h (C, C) merge thresholds; seconds the build time.
    """
    classes: Tensor
    distances: Tensor
    s: Tensor
    d0: float
    d_h: Tensor
    levels: int
    seconds: float = 0.0

    @classmethod
    def from_embeddings(cls, embeddings: Tensor, labels: Tensor, levels: int = 16) -> "ClassTree":
        start = time.perf_counter()
        d0, s = within_class_distance(embeddings, labels)
        distances = class_distances(embeddings, labels)
        d_h = build_tree(distances, d0, levels)
        return cls(labels.unique(), distances, s, d0, d_h, levels, time.perf_counter() - start)

    def rows(self, labels: Tensor) -> Tensor:
        """Row of each label (N,) in the tree's matrices; a clear error for a label the tree has not seen."""
        lookup = torch.full((int(max(self.classes.max(), labels.max())) + 1,), -1, dtype=torch.long,
                            device=labels.device)
        lookup[self.classes.to(labels.device)] = torch.arange(len(self.classes), device=labels.device)
        rows = lookup[labels]
        if (rows < 0).any():
            missing = labels[rows < 0].unique().tolist()
            raise ValueError(f"labels {missing[:5]} are not in the tree: build it from the training labels")
        return rows

    def class_margins(self, beta: float = 0.1, scale: float = 1.0) -> Tensor:
        """(C, C) margin of an anchor of class row a against a negative of class row n:
        beta + scale * (d_H[a, n] - s[a]); scale = 1 is Ge et al.'s dynamic margin."""
        return beta + scale * dynamic_margin(self.d_h, self.s.to(self.d_h.device), 0.0)

    def margins(self, labels: Tensor, beta: float = 0.1, scale: float = 1.0) -> Tensor:
        """(B, B) margin for anchor i and negative j of a batch with these labels (B,): the entries
        [row of y_i, row of y_j] of :meth:`class_margins`."""
        alpha = self.class_margins(beta, scale)
        r = self.rows(labels).to(alpha.device)
        return alpha[r[:, None], r[None, :]].to(labels.device)


class LiveTree:
    """A ClassTree rebuilt from the model's current embeddings of the training set, every ``every`` epochs.

    The anchor-neighbour sampler calls ``refresh(epoch)`` at the start of each epoch; the HTL step reads
    ``live.tree``. ``rebuilds`` counts them and ``seconds`` keeps every build's time.
    """

    def __init__(self, model: nn.Module, images: Tensor, labels: Tensor, levels: int = 16, every: int = 1,
                 tree: ClassTree | None = None):
        """``tree``: the model's current tree when it is already built (e.g. from warm-start weights that
        every run shares); it is then used as it is, without embedding the training set again."""
        if every < 1:
            raise ValueError(f"every must be at least 1 epoch, got {every}")
        self.model, self.images, self.labels, self.levels, self.every = model, images, labels, levels, every
        self.seconds: list[float] = []
        self.tree = self._build() if tree is None else tree
        self._epoch_built = 0

    def _build(self) -> ClassTree:
        start = time.perf_counter()
        tree = ClassTree.from_embeddings(embed(self.model, self.images), self.labels, self.levels)
        tree.seconds = time.perf_counter() - start                     # embedding included
        self.seconds.append(tree.seconds)
        return tree

    def refresh(self, epoch: int) -> None:
        """Rebuild if ``epoch`` is a rebuild epoch (a multiple of ``every``) not built for yet."""
        if epoch % self.every == 0 and epoch != self._epoch_built:
            self.tree = self._build()
            self._epoch_built = epoch


class RebuildEachEpoch:
    """Wrap any sampler (e.g. PKSampler) so that ``live`` is refreshed at the start of each epoch, before
    the epoch's batches are drawn: a dynamic margin on random batches then also follows the network.
    A wrapper, not a batch source: the wrapped sampler keeps its own seed; this one passes the epoch on."""

    def __init__(self, batches, live: LiveTree):
        self.batches, self.live, self.epoch = batches, live, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.batches, "set_epoch"):
            self.batches.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        self.live.refresh(self.epoch)
        self.epoch += 1                                                # plain iteration advances too
        return iter(self.batches)


class AnchorNeighbourSampler(EpochSeeded):
    """HTL's batches: ``anchors`` random classes, each with its m - 1 nearest classes, t images of each
    class, as (anchors * m * t,) index tensors, grouped class by class.

    tree: a ClassTree, or a LiveTree (rebuilt from the current model at the start of its epochs).
    Within a batch the classes are distinct: a class already taken by an earlier group is not a
    neighbour again, so every batch holds anchors * m classes. ``nearest`` is the function that picks
    neighbours from the class-distance matrix (the exercise's, or ``nearest_classes``).
    """

    def __init__(self, labels: Tensor, tree: "ClassTree | LiveTree", anchors: int, m: int, t: int,
                 steps: int | None = None, seed: int = 0,
                 nearest: Callable[[Tensor, Tensor, int], Tensor] = nearest_classes):
        self.index = ClassIndex(labels)
        n_classes = len(self.index.classes)
        if anchors < 1 or m < 1 or t < 1:
            raise ValueError(f"anchors, m and t must be at least 1, got {anchors}, {m}, {t}")
        if anchors * m > n_classes:
            raise ValueError(f"{anchors} anchors x m = {m} classes need {anchors * m} distinct classes, but the "
                             f"labels hold {n_classes}: lower anchors or m")
        self.tree, self.anchors, self.m, self.t, self.seed, self.nearest = tree, anchors, m, t, seed, nearest
        self.steps = steps if steps is not None else max(1, len(labels) // (anchors * m * t))
        self._check_tree()

    def _current(self) -> ClassTree:
        return self.tree.tree if isinstance(self.tree, LiveTree) else self.tree

    def _check_tree(self) -> None:
        if not torch.equal(self._current().classes.cpu(), self.index.classes):
            raise ValueError("the tree was built on other classes than these labels: build it from the same "
                             "training labels")

    def choose_classes(self, g: torch.Generator, distances: Tensor | None = None) -> Tensor:
        """(anchors, m) class rows: random anchors, each followed by its nearest classes not yet taken.
        ``distances``: the tree's class distances on the CPU (read once per epoch by ``__iter__``)."""
        distances = (self._current().distances.detach().cpu() if distances is None else distances).clone()
        groups = []
        taken = torch.zeros(len(distances), dtype=torch.bool)
        for a in torch.randperm(len(distances), generator=g).tolist():
            if len(groups) == self.anchors:
                break
            if taken[a]:
                continue
            group = self.nearest(distances, torch.tensor([a]), self.m)[0]    # (m,)
            groups.append(group)
            taken[group] = True
            distances[:, group] = float("inf")                                 # not a neighbour again
        return torch.stack(groups)

    def __iter__(self) -> Iterator[Tensor]:
        if isinstance(self.tree, LiveTree):
            self.tree.refresh(self.epoch)
        g = self.epoch_generator()
        distances = self._current().distances.detach().cpu()          # (C, C), one copy per epoch
        if not self.steps:
            return
        epoch = torch.stack([self.index.sample_k(self.choose_classes(g, distances).flatten(), self.t, g)
                             for _ in range(self.steps)])               # (steps, anchors*m*t) on the CPU
        yield from to_device(epoch, self.index.device)                  # one copy to the device per epoch
