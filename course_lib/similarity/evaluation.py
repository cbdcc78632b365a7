"""Evaluation wiring for lessons 01-04: retrieval scores of a model, chance levels and collapse
diagnostics. The metrics themselves are in :mod:`course_lib.similarity.metrics`; this module only
embeds, calls them and collects the numbers.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..core.checks import check_embeddings, check_labels
from ..core.training import embed
from .distances import paired_distances, pairwise_distances
from .metrics import map_at_r, precision_at_1
from .samplers import PairSampler

__all__ = ["retrieval_scores", "chance_levels", "effective_rank", "relative_spread", "collapse_report",
           "sample_pair_distances", "registration_report", "verification_accuracy", "genuine_impostor_distances",
           "identification_accuracy", "identification_from_pairs"]


def retrieval_scores(model: nn.Module, x: Tensor, y: Tensor) -> dict[str, float]:
    """P@1 and MAP@R of ``model`` when every image of x searches all the others. x: (N, ...), y: (N,)."""
    e = embed(model, x)
    return {"P@1": precision_at_1(e, y), "MAP@R": map_at_r(e, y)}


def chance_levels(labels: Tensor, trials: int = 20, seed: int = 0) -> dict[str, float]:
    """What a random ranking scores on these labels: the floor every method is measured against.

    P@1 is exact: the share of the other N - 1 items that share the query's label, averaged over
    queries. MAP@R is averaged over ``trials`` random rankings (random embeddings in N dimensions).
    """
    check_labels(labels)
    y = labels.cpu()
    n = len(y)
    same = y.bincount()[y] - 1                                         # (N,) other items of the same class
    g = torch.Generator().manual_seed(seed)
    maps = [map_at_r(torch.randn(n, 32, generator=g), y) for _ in range(trials)]
    return {"P@1": (same.float() / (n - 1)).mean().item(), "MAP@R": sum(maps) / len(maps)}


def effective_rank(embeddings: Tensor) -> float:
    """exp(entropy of the normalised singular values) of the centred embeddings (Roy & Vetterli 2007).

    About D for embeddings that use every direction equally, 1 when they vary along a single line,
    and 0 (by convention) when every embedding is the same point. embeddings: (N, D).
    """
    check_embeddings(embeddings)
    x = embeddings.detach().float()
    s = torch.linalg.svdvals(x - x.mean(0))                            # (min(N, D),)
    if s.max() <= torch.finfo(x.dtype).eps * max(x.shape) * x.abs().max():   # rounding noise only
        return 0.0
    p = s / s.sum()
    return torch.exp(-(p * p.clamp_min(1e-30).log()).sum()).item()


def relative_spread(embeddings: Tensor) -> float:
    """Mean distance between two embeddings divided by their mean norm: 0 when all are one point.

    Dividing by the norm makes it blind to scale: a network that merely shrinks its embeddings keeps
    its spread, one that maps everything to the same point does not. embeddings: (N, D).
    """
    check_embeddings(embeddings)
    x = embeddings.detach().float()
    n = len(x)
    if n < 2:
        raise ValueError("need at least two embeddings to measure a spread")
    mean_distance = torch.nn.functional.pdist(x).mean()              # direct differences: exact 0 for equal rows
    return (mean_distance / x.norm(dim=1).mean().clamp_min(1e-12)).item()


def collapse_report(model: nn.Module, x: Tensor, y: Tensor) -> dict[str, float]:
    """Has the embedding collapsed? Effective rank, relative spread and MAP@R of x (N, ...) under model."""
    e = embed(model, x)
    return {"effective rank": effective_rank(e), "relative spread": relative_spread(e), "MAP@R": map_at_r(e, y)}


def sample_pair_distances(model: nn.Module, x: Tensor, y: Tensor, n_pairs: int, seed: int
                          ) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor]]:
    """Distances d(A, B) under ``model`` of ``n_pairs`` random pairs of x (half of them positive).

    -> distances (n_pairs,), same-class flags (n_pairs,), and the pairs' indices (i, j) into x.
    """

    i, j, same = next(iter(PairSampler(y, batch_size=n_pairs, positive_fraction=0.5, steps=1, seed=seed)))
    e = embed(model, x)
    return paired_distances(e[i], e[j]), same, (i, j)


def registration_report(model: nn.Module, known: tuple[Tensor, Tensor], registered: tuple[Tensor, Tensor],
                        newcomers: tuple[Tensor, Tensor], threshold: float, seed: int = 3) -> dict[str, float]:
    """How a trained model handles classes it never saw, after *registering* a few images of each.

    known: (images, labels) of the training classes; registered: the few stored images of the new
    classes; newcomers: test images of the new classes. No weights change. Returns accuracies of
    verification (pairs of newcomers, "same if d <= threshold"), "which newcomer?" (nearest
    registered image) and "which of all classes?" (nearest of known + registered images).
    """

    d, same, _ = sample_pair_distances(model, *newcomers, n_pairs=1000, seed=seed)
    queries, new_y = embed(model, newcomers[0]), newcomers[1]
    e_reg, e_known = embed(model, registered[0]), embed(model, known[0])
    gallery, gallery_y = torch.cat([e_known, e_reg]), torch.cat([known[1], registered[1]])
    return {"verification of newcomer pairs": ((d <= threshold) == same).float().mean().item(),
            "which newcomer?": precision_at_1(queries, new_y, e_reg, registered[1]),
            "which of all classes?": precision_at_1(queries, new_y, gallery, gallery_y)}


def verification_accuracy(distances: Tensor, same: Tensor, threshold: float) -> float:
    """Share of pairs judged right by "same if d <= threshold". distances, same: (B,)."""
    if distances.shape != same.shape or distances.ndim != 1 or len(distances) == 0:
        raise ValueError(f"distances and same must both be (B,) with B > 0, got {tuple(distances.shape)} and "
                         f"{tuple(same.shape)}")
    return ((distances <= threshold) == same.bool()).float().mean().item()


def genuine_impostor_distances(embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Distances of every pair i < j: (genuine: same class, impostor: different classes), two 1-D tensors."""
    check_embeddings(embeddings)
    check_labels(labels, len(embeddings))
    d = pairwise_distances(embeddings.float())
    i, j = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
    same = labels[i] == labels[j]
    return d[i, j][same], d[i, j][~same]


def identification_accuracy(embeddings: Tensor, labels: Tensor, gallery_size: int, trials: int = 100,
                            seed: int = 0) -> float:
    """Rank-1 identification with a gallery of ``gallery_size`` people (classes): each trial draws that many
    classes, enrols ONE random image of each (the gallery), and asks, for every other image of those classes
    (the probes), which gallery image is nearest. Mean share of right answers over ``trials`` draws.
    Chance is 1 / gallery_size. embeddings: (N, D), labels: (N,), every class with at least two images.
    """
    check_embeddings(embeddings)
    check_labels(labels, len(embeddings))
    classes, counts = labels.unique(return_counts=True)
    if not 1 <= gallery_size <= len(classes) or (counts < 2).any():
        raise ValueError(f"gallery_size must be 1 … {len(classes)} (the classes present), got {gallery_size}, "
                         "and every class needs two images (one enrolled, one probe)")
    d = pairwise_distances(embeddings.float())                              # (N, N)
    g = torch.Generator().manual_seed(seed)
    hits, total = 0, 0
    places = torch.arange(len(labels), device=labels.device)
    for _ in range(trials):
        chosen = classes[torch.randperm(len(classes), generator=g)[:gallery_size]]                   # (G,)
        order = torch.randperm(len(labels), generator=g).to(labels.device)
        first = torch.full((int(labels.max()) + 1,), len(labels), device=labels.device)
        first = first.scatter_reduce(0, labels[order], places, "amin")         # each class's first place in order
        enrolled = order[first[chosen]]                                        # (G,) one random image per class
        probes = torch.isin(labels, chosen) & ~torch.isin(places, enrolled)
        nearest = d[probes][:, enrolled].argmin(1)                             # (P,) index into the gallery
        hits += int((chosen[nearest] == labels[probes]).sum())
        total += int(probes.sum())
    return hits / total


def identification_from_pairs(genuine: Tensor, impostor: Tensor, gallery_sizes: list[int]) -> list[float]:
    """What the verification distances predict for identification: a probe is named right when its genuine
    distance beats all G - 1 impostors. If each impostor were an independent draw from ``impostor``, that
    happens with probability P(impostor > d)^(G-1) for a genuine distance d; the mean over ``genuine``
    for every gallery size G. genuine, impostor: 1-D distances.
    """
    if genuine.ndim != 1 or impostor.ndim != 1 or not len(genuine) or not len(impostor):
        raise ValueError("genuine and impostor must be non-empty 1-D tensors of distances")
    ordered = impostor.double().sort().values
    beaten = 1 - torch.searchsorted(ordered, genuine.double(), right=True) / len(ordered)   # P(impostor > d)
    return [float((beaten ** (size - 1)).mean()) for size in gallery_sizes]
