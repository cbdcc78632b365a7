"""How good is an embedding, or a detector? Retrieval metrics (nearest neighbours), verification metrics
(pairs), and detection metrics (average precision of boxes).

Retrieval: every query looks up its nearest references. Without a reference set the queries
search among themselves, leaving the query itself out.
Verification: a pair is declared "same" when its distance is at most a threshold.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

from ._checks import check_embeddings, check_labels, check_same_device

__all__ = ["nearest_neighbours", "precision_at_1", "recall_at_k", "map_at_r", "average_precision_at_r", "verification_roc", "roc_auc", "best_threshold",
           "detection_pr", "detection_map", "match_detections"]

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
             ref_labels: Tensor | None = None) -> float:
    """Mean average precision at R (Musgrave, Belongie & Lim 2020, "A metric learning reality check").

    For a query with R same-label references, look at its R nearest neighbours and average the
    precision at each rank i <= R where the neighbour is relevant:  (1/R) sum_i P(i) * rel(i).
    A perfect ranking scores 1. Queries with R = 0 have nothing to find and are left out.

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
    total, counted = 0.0, 0
    for rows, near in _neighbour_labels(embeddings, labels, reference, ref_labels, int(r.max())):
        rq = r[rows]                                                                  # (q,)
        ranks = torch.arange(1, near.shape[1] + 1, device=near.device)                # (Rmax,)
        rel = ((near == labels[rows, None]) & (ranks[None, :] <= rq[:, None])).float()  # only the first R count
        ap = (rel.cumsum(1) / ranks * rel).sum(1) / rq.clamp_min(1)                   # (q,) sum P(i) rel(i) / R
        total += ap[rq > 0].sum().item()
        counted += int((rq > 0).sum())
    return total / counted


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


# ----------------------------------------------------------------------------------------------- detection

def detection_pr(predictions: list[dict], targets: list[dict], label: int, iou_threshold: float = 0.5
                 ) -> tuple[Tensor, Tensor, float]:
    """Precision-recall curve and average precision of one class, VOC style, over a set of images.

    predictions: one dict per image with "boxes" (P, 4), "scores" (P,), "labels" (P,);
    targets: one dict per image with "boxes" (G, 4), "labels" (G,).
    All detections of the class, from all images, are sorted by score. Going down the list, a detection is
    a true positive if its best-overlapping unmatched gt box of the class (same image) has IoU >= the
    threshold (that gt box is then used up), else a false positive: a second detection of the same object
    is a false positive. AP is the area under the precision-recall curve after making precision
    non-increasing (VOC 2010+ "all points"). Returns (precision (D,), recall (D,), AP); AP = nan when the
    class has no gt box.
    """
    from .boxes import box_iou

    if len(predictions) != len(targets):
        raise ValueError(f"one prediction dict per image: {len(predictions)} predictions, {len(targets)} targets")
    n_gt = sum(int((t["labels"] == label).sum()) for t in targets)
    found, ious = [], []                                                # (score, image, row) per detection
    for i, (p, t) in enumerate(zip(predictions, targets)):
        keep = p["labels"].cpu() == label
        boxes, gts = p["boxes"].cpu()[keep].float(), t["boxes"].cpu()[t["labels"].cpu() == label].float()
        ious.append(box_iou(boxes, gts).tolist())                       # (P_i, G_i) once per image
        found += [(sc, i, r) for r, sc in enumerate(p["scores"].cpu()[keep].tolist())]
    found.sort(key=lambda d: -d[0])                                     # stable: ties keep image order
    used = [[False] * int((t["labels"] == label).sum()) for t in targets]
    tp = torch.zeros(len(found))
    for k, (_, i, r) in enumerate(found):
        # the best-overlapping gt box of the class not found yet (each gt box counts once)
        free = [(v, j) for j, v in enumerate(ious[i][r]) if not used[i][j]]
        if free:
            v, j = max(free, key=lambda f: (f[0], -f[1]))
            if v >= iou_threshold:
                tp[k], used[i][j] = 1, True
    if n_gt == 0:
        return torch.zeros(0), torch.zeros(0), float("nan")
    hits = tp.cumsum(0)
    precision = hits / torch.arange(1, len(found) + 1)
    recall = hits / n_gt
    if len(found) == 0:
        return precision, recall, 0.0
    envelope = precision.flip(0).cummax(0).values.flip(0)                # best precision at this recall or more
    steps = torch.cat([recall[:1], recall[1:] - recall[:-1]])           # recall gained at each detection
    return precision, recall, float((envelope * steps).sum())


def detection_map(predictions: list[dict], targets: list[dict], num_classes: int, iou_threshold: float = 0.5
                  ) -> dict:
    """mAP@iou_threshold: the mean of :func:`detection_pr`'s AP over the classes that have gt boxes.
    Returns {"mAP": float, "AP": {class: AP}}."""
    aps = {c: detection_pr(predictions, targets, c, iou_threshold)[2] for c in range(num_classes)}
    present = {c: ap for c, ap in aps.items() if ap == ap}             # drop nan: classes without gt
    if not present:
        raise ValueError("no ground-truth boxes in targets: mAP is undefined")
    return {"mAP": sum(present.values()) / len(present), "AP": present}


def match_detections(prediction: dict, target: dict, iou_threshold: float = 0.5) -> tuple[Tensor, Tensor]:
    """Which detections of ONE image are right, and which gt boxes were found, by the rule of detection_pr.

    prediction {"boxes" (P, 4), "scores" (P,), "labels" (P,)}, target {"boxes" (G, 4), "labels" (G,)} ->
    (hit (P,) bool, found (G,) bool). Highest score first, a detection hits the unmatched gt box of its
    class that it overlaps most if that IoU >= iou_threshold; every gt box is found at most once.
    """
    from .boxes import box_iou

    boxes, scores, labels = prediction["boxes"].float().cpu(), prediction["scores"].cpu(), prediction["labels"].cpu()
    gt_boxes, gt_labels = target["boxes"].float().cpu(), target["labels"].cpu()
    hit = torch.zeros(len(boxes), dtype=torch.bool)
    found = torch.zeros(len(gt_boxes), dtype=torch.bool)
    if len(boxes) == 0 or len(gt_boxes) == 0:
        return hit, found
    iou = box_iou(boxes, gt_boxes)                                      # (P, G)
    for k in torch.sort(scores, descending=True, stable=True).indices.tolist():
        candidates = torch.where((gt_labels == labels[k]) & ~found, iou[k], torch.full_like(iou[k], -1.0))
        j = int(candidates.argmax())
        if candidates[j] >= iou_threshold:
            hit[k], found[j] = True, True
    return hit, found

