"""Which triplets to train on. Miners look at a (B, B) distance matrix and return index tensors.

Every miner returns ``(anchor, positive, negative)``: three (T,) int64 tensors of row indices into
the batch, ready for ``triplet_loss(e[a], e[p], e[n])``. Everything is a mask over the batch: no
Python loop over samples. Building all triplets through the (M,) positive pairs and a (M, B) mask
keeps memory at O(M * B) instead of the O(B^3) of a dense anchor x positive x negative cube.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..core.checks import check_embeddings, check_labels
from .distances import pairwise_distances
from .labels import label_masks, positive_pairs

__all__ = ["count_triplets", "DIFFICULTY", "triplet_difficulty", "all_triplets", "batch_hard_triplets",
           "semi_hard_triplets", "distance_weighted_triplets"]


Triplets = tuple[Tensor, Tensor, Tensor]


def count_triplets(class_sizes: Tensor | list[int]) -> int:
    """Number of valid triplets in a set with these class sizes: sum over classes of
    n_c (n_c - 1) (N - n_c): an anchor, one of its n_c - 1 positives, one of the N - n_c negatives."""
    n = torch.as_tensor(class_sizes, dtype=torch.float64)
    return int((n * (n - 1) * (n.sum() - n)).sum().item())


DIFFICULTY = ("hard", "semi-hard", "easy")


def triplet_difficulty(d_ap: Tensor, d_an: Tensor, margin: float) -> Tensor:
    """0 = hard (d_an <= d_ap), 1 = semi-hard (d_ap < d_an < d_ap + margin), 2 = easy (loss 0).

    Names in ``DIFFICULTY``. Hard and semi-hard triplets have a positive loss; easy ones teach nothing.
    A tie d_an = d_ap counts as hard, so that "semi-hard" means exactly what ``semi_hard_triplets``
    picks (FaceNet's strict inequality).
    """
    return torch.where(d_an <= d_ap, 0, torch.where(d_an < d_ap + margin, 1, 2))


def _expand(a: Tensor, p: Tensor, keep: Tensor) -> Triplets:
    """(M,) pairs and an (M, B) mask of negatives to keep -> (T,) triplets."""
    row, n = keep.nonzero(as_tuple=True)
    return a[row], p[row], n


def all_triplets(labels: Tensor) -> Triplets:
    """Every valid triplet of the batch: same label for (a, p), a != p, another label for n.

    There are O(B^3) of them, most of them easy (already satisfied): this is the pool that the
    smarter miners below choose from.
    """
    _, neg = label_masks(labels)
    a, p = positive_pairs(labels)
    return _expand(a, p, neg[a])


def _check(embeddings: Tensor, labels: Tensor) -> None:
    check_embeddings(embeddings)
    check_labels(labels, len(embeddings))


def batch_hard_triplets(embeddings: Tensor, labels: Tensor) -> Triplets:
    """For each anchor, its farthest positive and its closest negative (Hermans et al. 2017).

    An anchor without a positive or without a negative in the batch is dropped. Ties go to the
    lowest index.
    """
    _check(embeddings, labels)
    x = embeddings.detach()
    with torch.autocast(x.device.type, enabled=False):
        x = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        # Ranking the candidates of anchor i needs only ||x_j||^2 - 2 x_i.x_j: the ||x_i||^2 of
        # d^2 = ||x_i||^2 + ||x_j||^2 - 2 x_i.x_j is the same along the row, and sqrt keeps the order.
        score = torch.addmm(x.pow(2).sum(1)[None, :], x, x.T, alpha=-2.0)    # (B, B)
    same = labels[:, None] == labels[None, :]                                # (B, B)
    pos_score = torch.where(same, score, -math.inf)
    pos_score.fill_diagonal_(-math.inf)                                      # an anchor is not its own positive
    hardest_pos = pos_score.argmax(1)                                       # (B,)
    hardest_neg = torch.where(same, math.inf, score).argmin(1)              # (B,)
    class_size = same.sum(1)
    anchors = ((class_size > 1) & (class_size < len(labels))).nonzero().flatten()
    return anchors, hardest_pos[anchors], hardest_neg[anchors]


def semi_hard_triplets(embeddings: Tensor, labels: Tensor, margin: float = 0.2) -> Triplets:
    """Triplets whose negative is farther than the positive but still inside the margin:
    d(a, p) < d(a, n) < d(a, p) + margin (FaceNet, Schroff et al. 2015).

    They have a positive loss, yet are not so hard that they only teach noise.
    """
    _check(embeddings, labels)
    d = pairwise_distances(embeddings.detach())                       # (B, B)
    _, neg = label_masks(labels)
    a, p = positive_pairs(labels)                                    # (M,)
    d_ap, d_an = d[a, p][:, None], d[a]                              # (M, 1), (M, B)
    return _expand(a, p, neg[a] & (d_an > d_ap) & (d_an < d_ap + margin))


def _log_inverse_sphere_density(d: Tensor, dim: int) -> Tensor:
    """log(1 / q(d)), q the density of the distance between two random points on the unit sphere in R^dim:
    q(d) ∝ d^(dim-2) * (1 - d^2/4)^((dim-3)/2)   (Manmatha et al. 2017, eq. 2)."""
    return -(dim - 2) * d.log() - (dim - 3) / 2 * (1 - d.pow(2) / 4).clamp_min(1e-8).log()


def distance_weighted_triplets(embeddings: Tensor, labels: Tensor, cutoff: float = 0.5,
                               nonzero_loss_cutoff: float = 1.4, generator: torch.Generator | None = None
                               ) -> Triplets:
    """One negative per anchor-positive pair, drawn with weight ∝ 1 / q(d) (Wu, Manmatha, Smola &
    Krähenbühl 2017, "Sampling matters in deep embedding learning").

    On the unit sphere most random pairs sit near distance sqrt(2); weighting by the inverse density
    q(d) flattens that crowded middle, so the picks are not all of one difficulty. d is clipped below
    at ``cutoff`` (so near-duplicates do not get enormous weights) and negatives at or beyond
    ``nonzero_loss_cutoff`` get weight 0 (1.4 = β + α of the paper's margin loss, where such
    negatives have zero loss). A pair with no negative of positive weight is dropped.
    Embeddings are unit-normalised first. ``generator`` must live on the embeddings' device; without
    one the draw uses torch's global generator (seeded by ``seed_everything``).
    """
    _check(embeddings, labels)
    dim = embeddings.shape[1]
    if dim < 2:
        raise ValueError(f"distance-weighted sampling needs D >= 2, got D={dim}")
    x = torch.nn.functional.normalize(embeddings.detach().float(), dim=1)
    d = pairwise_distances(x).clamp_min(cutoff)                       # (B, B)
    _, neg = label_masks(labels)
    log_w = _log_inverse_sphere_density(d, dim)
    allowed = neg & (d < nonzero_loss_cutoff)
    log_w = torch.where(allowed, log_w, -math.inf)
    a, p = positive_pairs(labels)                                    # (M,)
    rows = log_w[a]                                                  # (M, B)
    ok = allowed[a].any(1)
    a, p, rows = a[ok], p[ok], rows[ok]
    if len(a) == 0:
        empty = torch.empty(0, dtype=torch.long, device=embeddings.device)
        return empty, empty, empty
    weights = (rows - rows.max(1, keepdim=True).values).exp()       # stable softmax numerator
    n = torch.multinomial(weights, 1, generator=generator).flatten()
    return a, p, n
