"""Losses that learn a distance. Each is a pure function of embeddings (and labels or pair flags)."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..core.checks import check_labels
from .distances import paired_distances, pairwise_distances
from .hierarchy import ClassTree
from .labels import label_masks, positive_pairs

__all__ = ["contrastive_loss", "batch_contrastive_loss", "triplet_loss", "batch_all_triplet_loss", "batch_hard_triplet_loss",
           "class_margin_triplet_loss", "hierarchical_triplet_loss"]


def contrastive_loss(x1: Tensor, x2: Tensor, same: Tensor, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """Contrastive loss (Hadsell, Chopra & LeCun 2006). x1, x2: (B, D); same: (B,) bool or 0/1 -> scalar.

        L = mean over pairs of  1/2 * s * d^2  +  1/2 * (1 - s) * max(0, margin - d)^2

    with d = ||x1 - x2|| and s = 1 for a same-class pair. Positive pairs are pulled together;
    negative pairs are pushed apart only until they are ``margin`` away, then left alone.
    ``reduction="none"`` returns the (B,) loss of each pair instead of the mean.

    A positive pair 0.5 apart costs 0.5 * 0.5², a negative pair 0.5 apart 0.5 * (1 - 0.5)², one 2 apart 0:

    >>> x1, x2 = torch.zeros(3, 2), torch.tensor([[0.5, 0.0], [0.5, 0.0], [2.0, 0.0]])
    >>> contrastive_loss(x1, x2, torch.tensor([True, False, False]), margin=1.0, reduction="none")
    tensor([0.1250, 0.1250, 0.0000])
    """
    d = paired_distances(x1, x2)                                                # (B,)
    if not isinstance(same, Tensor) or same.shape != d.shape:
        shape = tuple(same.shape) if isinstance(same, Tensor) else type(same).__name__
        raise ValueError(f"same must be a (B,) tensor with B={len(d)} (one flag per pair), got {shape}")
    if same.is_floating_point() and not torch.all((same == 0) | (same == 1)):
        raise ValueError("same must hold 0/1 (or True/False) flags, got other values")
    if len(d) == 0:
        raise ValueError("the batch holds no pairs (B = 0): there is nothing to average")
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    s = same.to(d.dtype)
    per_pair = 0.5 * s * d.pow(2) + 0.5 * (1 - s) * (margin - d).clamp_min(0).pow(2)   # (B,)
    return per_pair.mean() if reduction == "mean" else per_pair


def batch_contrastive_loss(embeddings: Tensor, labels: Tensor, margin: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
    """The contrastive loss of every pair in a batch (lesson 08's pair baseline). embeddings: (B, D), labels: (B,).

        L = 1/2 mean over positive pairs of d²  +  1/2 mean over ACTIVE negative pairs of max(0, margin - d)²

    Positive and negative pairs are averaged separately: a P x K batch of 16 classes holds 15 times more
    negative pairs than positive ones, and the negatives already farther than the margin (loss 0) are left out
    of their mean, as batch-all leaves out inactive triplets. Returns ``(loss, {"active": share of negative
    pairs inside the margin})``; 0 with a gradient where there is no pair of a kind.

    >>> e, y = torch.tensor([[0.0], [1.0], [1.5], [3.0]]), torch.tensor([0, 0, 1, 1])
    >>> loss, stats = batch_contrastive_loss(e, y, margin=1.0)   # positives 1 and 1.5; negatives 0.5 (active), 1.5, 3, 2
    >>> round(loss.item(), 4), stats["active"].item()            # (1 + 2.25) / 4 + 0.25 / 2
    (0.9375, 0.25)
    """
    check_labels(labels, len(embeddings) if isinstance(embeddings, Tensor) else None)
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    pos, neg = label_masks(labels)                                   # (B, B) each
    sq = pairwise_distances(embeddings, squared=True)                # (B, B)
    hinge = (margin - pairwise_distances(embeddings)).clamp_min(0) ** 2
    active = neg & (hinge > 0)
    pulled = (sq * pos).sum() / pos.sum().clamp_min(1)               # no `if`: no host-device sync per step
    pushed = (hinge * active).sum() / active.sum().clamp_min(1)
    return 0.5 * pulled + 0.5 * pushed, {"active": active.sum() / neg.sum().clamp_min(1)}


def triplet_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 0.2,
                 squared: bool = False, reduction: str = "mean") -> Tensor:
    """Triplet loss (FaceNet, Schroff et al. 2015). anchor, positive, negative: (T, D) -> scalar.

        L = mean over triplets of  max(0, d(a, p) - d(a, n) + margin)

    It only asks for a ranking: the positive closer than the negative by the margin. With
    ``squared=True`` d is the squared distance, as in FaceNet. Works directly on a miner's output:
    ``triplet_loss(e[a], e[p], e[n])``. No triplets (T = 0) gives 0 with a gradient.
    ``reduction="none"`` returns the (T,) loss of each triplet.

    >>> a = torch.zeros(2, 2)
    >>> p, n = torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[0.0, 1.1], [0.0, 3.0]])
    >>> triplet_loss(a, p, n, margin=0.2, reduction="none")       # max(0, 1 - 1.1 + 0.2), max(0, 1 - 3 + 0.2)
    tensor([0.1000, 0.0000])
    """
    if not (anchor.shape == positive.shape == negative.shape):
        raise ValueError(f"anchor, positive and negative must have the same shape (T, D), got "
                         f"{tuple(anchor.shape)}, {tuple(positive.shape)}, {tuple(negative.shape)}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    d_ap = paired_distances(anchor, positive, squared=squared)      # (T,)
    d_an = paired_distances(anchor, negative, squared=squared)      # (T,)
    per_triplet = (d_ap - d_an + margin).clamp_min(0)                 # (T,)
    return per_triplet.sum() / max(len(per_triplet), 1) if reduction == "mean" else per_triplet


def batch_all_triplet_loss(embeddings: Tensor, labels: Tensor, margin: float | Tensor = 0.2,
                           squared: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
    """Batch-all triplet loss (Hermans, Beyer & Leibe 2017). embeddings: (B, D), labels: (B,).

    Takes every valid triplet of the batch and averages the loss over the *active* ones (loss > 0),
    so that thousands of easy triplets do not dilute the few that still teach something.
    ``margin`` is one number, or a (B, B) tensor whose [a, n] entry is the margin of anchor a against
    negative n (the Hierarchical Triplet Loss's dynamic margin).
    Returns ``(loss, {"active": share of valid triplets with a positive loss})``; ready to be
    returned from a training step. A batch with no active triplet gives 0 with a gradient.

    Two classes on a line, 8 valid triplets; 3 are active: (a 1, p 0, n 2) with 1 - 0.5 + 0.2 = 0.7,
    (a 2, p 3, n 0) with 1.5 - 1.5 + 0.2 = 0.2 and (a 2, p 3, n 1) with 1.5 - 0.5 + 0.2 = 1.2; their mean:

    >>> e, y = torch.tensor([[0.0], [1.0], [1.5], [3.0]]), torch.tensor([0, 0, 1, 1])
    >>> loss, stats = batch_all_triplet_loss(e, y, margin=0.2)
    >>> round(loss.item(), 4), stats["active"].item()
    (0.7, 0.375)
    """
    check_labels(labels, len(embeddings) if isinstance(embeddings, Tensor) else None)
    d = pairwise_distances(embeddings, squared=squared)               # (B, B)
    _, neg = label_masks(labels)
    a, p = positive_pairs(labels)                                    # (M,) anchor-positive pairs
    if isinstance(margin, Tensor):
        if margin.shape != d.shape:
            raise ValueError(f"a margin tensor must be (B, B) = {tuple(d.shape)}, one per anchor and "
                             f"negative, got shape {tuple(margin.shape)}")
        margin = margin[a]                                           # (M, B)
    losses = (d[a, p][:, None] - d[a] + margin).clamp_min(0)         # (M, B): pair x negative
    valid = neg[a]                                                   # (M, B)
    active = valid & (losses > 1e-16)
    n_active = active.sum()
    # No `if`: dividing by max(n, 1) gives 0 (with a gradient) when nothing is active, without
    # asking the GPU for the count (a host-device sync on every step).
    loss = (losses * active).sum() / n_active.clamp_min(1)
    return loss, {"active": n_active / valid.sum().clamp_min(1)}


def batch_hard_triplet_loss(embeddings: Tensor, labels: Tensor, margin: float = 0.2,
                            soft: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
    """Batch-hard triplet loss (Hermans, Beyer & Leibe 2017). embeddings: (B, D), labels: (B,).

    Each anchor uses its farthest positive and its closest negative. ``soft=True`` replaces the hinge
    max(0, x + margin) by softplus(x) = log(1 + exp(x)), which never stops pulling and has no margin.
    Anchors without a positive or a negative are left out; none left gives 0 with a gradient.
    Returns ``(loss, {"active": share of the anchors used whose loss is positive})``.

    The same points: anchor 1 (farthest positive 1 away, closest negative 0.5) costs 0.7, anchor 2
    (1.5 and 0.5) 1.2, anchors 0 and 3 nothing; the mean over the 4 anchors:

    >>> e, y = torch.tensor([[0.0], [1.0], [1.5], [3.0]]), torch.tensor([0, 0, 1, 1])
    >>> loss, stats = batch_hard_triplet_loss(e, y, margin=0.2)
    >>> round(loss.item(), 4), stats["active"].item()
    (0.475, 0.5)
    """
    check_labels(labels, len(embeddings) if isinstance(embeddings, Tensor) else None)
    d = pairwise_distances(embeddings)                                # (B, B)
    pos, neg = label_masks(labels)
    hardest_pos = torch.where(pos, d, torch.zeros_like(d)).amax(1)    # (B,) distances are >= 0
    hardest_neg = torch.where(neg, d, torch.full_like(d, math.inf)).amin(1)
    keep = pos.any(1) & neg.any(1)                                    # (B,) anchors with both
    x = torch.where(keep, hardest_pos - hardest_neg, torch.zeros_like(hardest_pos))  # no inf left
    per_anchor = torch.nn.functional.softplus(x) if soft else (x + margin).clamp_min(0)
    n_keep = keep.sum().clamp_min(1)
    loss = (per_anchor * keep).sum() / n_keep
    return loss, {"active": ((per_anchor > 0) & keep).sum() / n_keep}


def class_margin_triplet_loss(embeddings: Tensor, labels: Tensor, class_margins: Tensor,
                              squared: bool = True) -> tuple[Tensor, dict[str, Tensor]]:
    """Batch-all triplet loss with one margin per (anchor class, negative class): the loss of the
    Hierarchical Triplet Loss once its margins are known. embeddings (B, D); labels (B,) long, each
    image's class as a row of ``class_margins`` (C, C), whose [a, n] entry is the margin of an anchor of
    class a against a negative of class n (not symmetric: HTL's depends on the anchor's spread).

    Every valid triplet (a ≠ p of one class, n of another) costs
    max(0, d(a, p) - d(a, n) + class_margins[y_a, y_n]), with squared distances by default (the units of
    HTL's d_H and s); the mean is over the active triplets, as ``batch_all_triplet_loss``.
    Returns ``(loss, {"active": ..., "mean margin": mean margin over the batch's anchor-negative pairs})``.

    Points 0, 1 (class 0) and 1.5, 3 (class 1); class-0 anchors get margin 1.5, class-1 anchors 0.5:
    4 of the 8 triplets are active, with 1 - 2.25 + 1.5, 1 - 0.25 + 1.5, 2.25 - 2.25 + 0.5, 2.25 - 0.25 + 0.5.

    >>> e, y = torch.tensor([[0.0], [1.0], [1.5], [3.0]]), torch.tensor([0, 0, 1, 1])
    >>> loss, stats = class_margin_triplet_loss(e, y, torch.tensor([[-0.1, 1.5], [0.5, 0.2]]))
    >>> round(loss.item(), 4), stats["active"].item()
    (1.375, 0.5)
    """
    check_labels(labels, len(embeddings) if isinstance(embeddings, Tensor) else None)
    if not isinstance(class_margins, Tensor) or class_margins.ndim != 2 \
            or class_margins.shape[0] != class_margins.shape[1]:
        shape = tuple(class_margins.shape) if isinstance(class_margins, Tensor) else type(class_margins).__name__
        raise ValueError(f"class_margins must be a square (C, C) tensor, one margin per (anchor class, negative "
                         f"class), got {shape}")
    if labels.is_floating_point() or (len(labels) and not 0 <= int(labels.min()) <= int(labels.max())
                                      < len(class_margins)):
        raise ValueError(f"labels must be class rows 0 .. {len(class_margins) - 1} of class_margins (long); "
                         "map the dataset's labels to rows first, e.g. with ClassTree.rows(labels)")
    margins = class_margins[labels[:, None], labels[None, :]]        # (B, B) alpha[y_anchor, y_negative]
    loss, stats = batch_all_triplet_loss(embeddings, labels, margins, squared=squared)
    _, neg = label_masks(labels)
    stats["mean margin"] = (margins.detach() * neg).sum() / neg.sum().clamp_min(1)
    return loss, stats


def hierarchical_triplet_loss(embeddings: Tensor, labels: Tensor, tree: ClassTree, beta: float = 0.1,
                              squared: bool = False, scale: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
    """Hierarchical Triplet Loss (Ge, Huang, Dong & Scott, ECCV 2018). embeddings (B, D) unit length,
    labels (B,), tree a :class:`ClassTree` built on the training classes.

    Every valid triplet of the batch gets the dynamic violate margin
    alpha = beta + d_H(y_a, y_n) - s_{y_a}: small for a negative class that merges early with the
    anchor's class in the tree, large for one far away, and shifted by how spread the anchor's class is.
    The hinge (plain distances by default) is averaged over the active triplets, exactly as
    ``batch_all_triplet_loss`` (Ge et al. write 1 / (2|T|) over all triplets: a constant factor and a
    different average, which we keep the same as the batch-all baseline so that only the margin differs).
    ``squared=True`` writes the hinge with squared distances, the units of d_H and s. ``scale`` multiplies
    the tree's part: alpha = beta + scale * (d_H - s_{y_a}); scale = 1 is the paper's margin.
    Returns ``(loss, {"active": ..., "mean margin": mean alpha over the batch's anchor-negative pairs})``;
    the loss itself is :func:`class_margin_triplet_loss` on the tree's class margins.
    """
    rows = tree.rows(labels)                                         # (B,) each label's row in the tree
    return class_margin_triplet_loss(embeddings, rows, tree.class_margins(beta, scale).to(rows.device), squared)
