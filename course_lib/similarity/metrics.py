"""Retrieval and verification metrics: nearest neighbours, Precision@1, Recall@K, MAP@R, ROC.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

from ..core.checks import check_embeddings, check_labels, check_same_device

__all__ = ["nearest_neighbours", "precision_at_1", "recall_at_k", "map_at_r", "verification_roc", "roc_auc",
           "best_threshold", "average_precision_at_r"]


_CHUNK = 1024  # queries per block, so a (Q, N) distance matrix never has to fit in memory at once


def _neighbour_labels(queries: Tensor, labels: Tensor, reference: Tensor | None, ref_labels: Tensor | None,
                      k: int) -> Iterator[tuple[slice, Tensor]]:
    """Labels of the k nearest references of each query, nearest first, one block of queries at a time.

    Yields (rows, neighbour labels (q, k)) so that a (Q, N) distance matrix is never held at once.
    """
    check_embeddings(queries, "embeddings")
    check_labels(labels, len(queries))
    self_search = reference is None
    if self_search != (ref_labels is None):
        raise ValueError("give both reference embeddings and reference labels, or neither")
    if self_search:
        reference, ref_labels = queries, labels
    else:
        check_embeddings(reference, "reference")
        check_labels(ref_labels, len(reference), "reference labels")
        if reference.shape[1] != queries.shape[1]:
            raise ValueError(f"embeddings have D={queries.shape[1]} but reference has D={reference.shape[1]}")
    check_same_device(queries, reference, labels, ref_labels)
    for rows, idx in _neighbour_indices(queries, reference, k, self_search):
        yield rows, ref_labels[idx]


def _neighbour_indices(queries: Tensor, reference: Tensor, k: int, self_search: bool) -> Iterator[tuple[slice, Tensor]]:
    available = len(reference) - (1 if self_search else 0)
    if not 1 <= k <= available:
        raise ValueError(f"k={k} neighbours asked for, but each query has {available} candidates")
    for start in range(0, len(queries), _CHUNK):
        rows = slice(start, start + _CHUNK)
        q = queries[rows].float()
        d = torch.cdist(q, reference.float())                                # (q, N)
        if self_search:
            i = torch.arange(len(q), device=q.device)
            d[i, i + start] = float("inf")                                   # a query is not its own neighbour
        yield rows, d.topk(k, dim=1, largest=False).indices                 # (q, k), nearest first


def nearest_neighbours(embeddings: Tensor, k: int, reference: Tensor | None = None) -> Tensor:
    """Indices of the k nearest references of each query, nearest first. (Q, D) -> (Q, k).

    Without ``reference`` the queries search among themselves and never find themselves.
    """
    check_embeddings(embeddings)
    if reference is not None:
        check_embeddings(reference, "reference")
        check_same_device(embeddings, reference)
    ref = embeddings if reference is None else reference
    return torch.cat([idx for _, idx in _neighbour_indices(embeddings, ref, k, reference is None)])


def precision_at_1(embeddings: Tensor, labels: Tensor, reference: Tensor | None = None,
                   ref_labels: Tensor | None = None) -> float:
    """Share of queries whose nearest neighbour has the same label. embeddings: (Q, D), labels: (Q,)."""
    hits = [(near[:, 0] == labels[rows]) for rows, near in
            _neighbour_labels(embeddings, labels, reference, ref_labels, 1)]
    return torch.cat(hits).float().mean().item()


def recall_at_k(embeddings: Tensor, labels: Tensor, k: int, reference: Tensor | None = None,
                ref_labels: Tensor | None = None) -> float:
    """Share of queries with at least one same-label item among their k nearest (the "R@k" of
    metric-learning papers, e.g. the CUB/CARS/SOP tables). embeddings: (Q, D), labels: (Q,)."""
    hits = [(near == labels[rows, None]).any(1) for rows, near in
            _neighbour_labels(embeddings, labels, reference, ref_labels, k)]
    return torch.cat(hits).float().mean().item()


def map_at_r(embeddings: Tensor, labels: Tensor, reference: Tensor | None = None,
             ref_labels: Tensor | None = None, reduction: str = "mean") -> float | Tensor:
    """Mean average precision at R (Musgrave, Belongie & Lim 2020, "A metric learning reality check").

    For a query with R same-label references, look at its R nearest neighbours and average the
    precision at each rank i <= R where the neighbour is relevant:  (1/R) sum_i P(i) * rel(i).
    A perfect ranking scores 1. Queries with R = 0 have nothing to find and are left out.
    ``reduction="none"`` returns the AP@R of each counted query, (Q',), e.g. for the standard error of the mean.

    Two tight classes score 1. Then the point at 1.5 joins class 1 while it sits inside class 0: the
    query at 0 (R = 2) finds 1 (relevant) then 1.5 (not): AP (1/2)(1/1) = 0.5; the mean over 6 queries:

    >>> y = torch.tensor([0, 0, 0, 1, 1, 1])
    >>> map_at_r(torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]]), y)
    1.0
    >>> round(map_at_r(torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [1.5]]), y), 4)
    0.3333
    """
    check_labels(labels, len(embeddings) if isinstance(embeddings, Tensor) else None)
    ref = labels if ref_labels is None else ref_labels
    check_labels(ref, name="reference labels")
    classes, inverse = torch.unique(torch.cat([labels, ref]), return_inverse=True)
    per_class = torch.bincount(inverse[len(labels):], minlength=len(classes))          # (C,) in the reference
    r = per_class[inverse[:len(labels)]] - (1 if reference is None else 0)            # (Q,) R of each query
    if not (r > 0).any():
        raise ValueError("no query has a same-label reference, so MAP@R is undefined: "
                         "every class needs at least two samples (or one in the reference set)")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    aps = []
    for rows, near in _neighbour_labels(embeddings, labels, reference, ref_labels, int(r.max())):
        rq = r[rows]                                                                  # (q,)
        ranks = torch.arange(1, near.shape[1] + 1, device=near.device)                # (Rmax,)
        rel = ((near == labels[rows, None]) & (ranks[None, :] <= rq[:, None])).float()  # only the first R count
        ap = (rel.cumsum(1) / ranks * rel).sum(1) / rq.clamp_min(1)                   # (q,) sum P(i) rel(i) / R
        aps.append(ap[rq > 0])
    aps = torch.cat(aps)
    return aps if reduction == "none" else aps.double().mean().item()


def _check_pairs(distances: Tensor, same: Tensor) -> None:
    if distances.ndim != 1 or not isinstance(same, Tensor) or same.shape != distances.shape:
        raise ValueError(f"distances and same must both be (B,), got {tuple(distances.shape)} and "
                         f"{tuple(same.shape) if isinstance(same, Tensor) else type(same).__name__}")
    pos = int(same.bool().sum())
    if pos == 0 or pos == len(same):
        raise ValueError(f"a ROC needs both same and different pairs, got {pos} same of {len(same)}")


def verification_roc(distances: Tensor, same: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """ROC of the rule "same if distance <= t". distances, same: (B,) -> fpr, tpr, thresholds (T,).

    Thresholds run from -inf (nobody accepted: fpr = tpr = 0) through every distinct distance
    (the last accepts everyone: fpr = tpr = 1).
    """
    _check_pairs(distances, same)
    d, order = distances.float().sort()
    s = same.bool()[order].float()
    tp, fp = s.cumsum(0), (1 - s).cumsum(0)                     # accepted so far, at each sorted distance
    last = torch.ones_like(d, dtype=torch.bool)                 # keep only the last of equal distances
    last[:-1] = d[1:] != d[:-1]
    zero = d.new_zeros(1)
    tpr = torch.cat([zero, tp[last] / s.sum()])
    fpr = torch.cat([zero, fp[last] / (1 - s).sum()])
    thresholds = torch.cat([d.new_full((1,), -float("inf")), d[last]])
    return fpr, tpr, thresholds


def roc_auc(fpr: Tensor, tpr: Tensor) -> float:
    """Area under a ROC curve by the trapezoid rule (fpr increasing)."""
    return torch.trapezoid(tpr, fpr).item()


def best_threshold(distances: Tensor, same: Tensor) -> tuple[float, float]:
    """The threshold t with the highest accuracy of "same if distance <= t". -> (t, accuracy).

    t is placed halfway between two neighbouring distances, so it also suits new pairs; it is
    -inf when rejecting every pair is best, and the largest distance when accepting all is best.
    """
    fpr, tpr, thresholds = verification_roc(distances, same)
    n_pos = same.bool().sum()
    n_neg = len(same) - n_pos
    accuracy = (tpr * n_pos + (1 - fpr) * n_neg) / len(same)      # (T,)
    best = int(accuracy.argmax())
    t = thresholds[best]
    if 0 < best < len(thresholds) - 1:                         # halfway to the next distance
        t = (t + thresholds[best + 1]) / 2
    return float(t), float(accuracy[best])


def average_precision_at_r(hits: Tensor) -> Tensor:
    """AP@R of each query from the relevance of its R nearest neighbours. hits: (Q, R) bool -> (Q,).

    (1/R) sum_i P(i) rel(i), with P(i) the share of hits among the first i: a miss counts 0 and the
    sum is divided by R, not by the number of hits (Musgrave et al. 2020). ✓✗✓ gives (1 + 2/3) / 3.
    """
    if hits.ndim != 2 or hits.shape[1] == 0:
        raise ValueError(f"hits must be (Q, R) with R >= 1, got shape {tuple(hits.shape)}")
    rel = hits.float()                                                  # (Q, R)
    ranks = torch.arange(1, rel.shape[1] + 1, device=rel.device)        # (R,)
    return (rel.cumsum(1) / ranks * rel).sum(1) / rel.shape[1]
