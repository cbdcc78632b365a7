"""Checkers for lessons 01-03 (lesson 04's are in hierarchy.py).
"""
from __future__ import annotations

import math
import operator as op
from typing import Callable

import torch
from torch import Tensor

from ..similarity.distances import paired_distances, pairwise_distances
from ..similarity.losses import (
    batch_all_triplet_loss,
    batch_hard_triplet_loss,
    contrastive_loss,
    triplet_loss,
)
from ..similarity.metrics import average_precision_at_r, precision_at_1
from ..similarity.mining import semi_hard_triplets
from .harness import (
    SELF_HINT,
    SQUARED_HINT,
    Case,
    compare,
    fallback,
    has_nan,
    like,
    line_points,
    random_labels,
    run_checks,
)

__all__ = ["check_pairwise_distances", "check_contrastive_loss", "check_precision_at_1", "check_triplet_loss",
           "check_average_precision_at_r", "check_batch_hard_loss", "check_semi_hard_mask", "check_batch_all_loss"]


# ---------------------------------------------------------------------------------------------- the exercises
@fallback(pairwise_distances)
def check_pairwise_distances(fn: Callable[[Tensor], Tensor]) -> bool:
    """Check ``fn(x) -> d``: x (B, D) float -> d (B, B), d[i, j] = ||x[i] - x[j]|| (plain Euclidean, not squared).

    d keeps the dtype of x, its diagonal is exactly 0, and gradients stay finite when two points coincide.
    """
    g = torch.Generator().manual_seed(0)
    cases = [
        Case("3-4-5 triangle", (torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]]),),
              torch.tensor([[0.0, 3.0, 4.0], [3.0, 0.0, 5.0], [4.0, 5.0, 0.0]])),
        Case("one point (B=1)", (torch.randn(1, 5, generator=g),), torch.zeros(1, 1), grad="finite"),
        Case("random (B=6, D=4)", (torch.randn(6, 4, generator=g),), grad="match"),
        Case("random float64 (B=5, D=3)", (torch.randn(5, 3, generator=g, dtype=torch.float64),)),
        Case("points far from the origin (B=16, D=8)", (torch.randn(16, 8, generator=g) * 3 + 30,)),
        Case("two identical points", (torch.tensor([[1.0, 2.0], [1.0, 2.0], [4.0, 6.0]]),), grad="match"),
    ]
    off = lambda m: m[~torch.eye(len(m), dtype=torch.bool)]           # noqa: E731  the off-diagonal entries
    rules = [
        ("These are squared distances: take the square root at the end.",
         like(lambda x: pairwise_distances(x, squared=True))),
        ("NaN: rounding can make ||a||² + ||b||² − 2a·b slightly negative, and the sqrt of a negative number is "
         "NaN. Clamp first: sq.clamp_min(0).sqrt().", has_nan),
        ("The diagonal must be exactly 0 (each point to itself), but rounding in ||a||² + ||b||² − 2a·b leaves "
         "small values there. Zero it, e.g. multiply by (1 − torch.eye(B)).",
         lambda got, want, args: compare(off(got), off(want)) is None
         and compare(got.diagonal(), want.diagonal()) is not None),
        ("This looks like the (B, B, D) differences: sum their squares over the last dim, then take the root.",
         lambda got, want, args: got.ndim == 3),
    ]
    return run_checks("pairwise distances", fn, cases, pairwise_distances, rules,
                      "d[i, j] = sqrt(sum over k of (x[i, k] − x[j, k])²), for every pair of rows i, j.")


def _contrastive_terms(x1, x2, same, margin, pos=lambda d: d ** 2, neg=lambda d, m: (m - d).clamp_min(0) ** 2,
                       half=0.5) -> Tensor:
    """(B,) per-pair contrastive losses, with replaceable terms to rebuild the common wrong versions."""
    d, s = paired_distances(x1, x2), same.float()
    return half * (s * pos(d) + (1 - s) * neg(d, margin))


@fallback(contrastive_loss)
def check_contrastive_loss(fn: Callable[[Tensor, Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(x1, x2, same, margin) -> loss``: x1, x2 (B, D); same (B,) bool; margin float -> scalar tensor.

        loss = mean over pairs of ½·s·d² + ½·(1 − s)·max(0, margin − d)²,  d = ||x1 − x2||  (Hadsell et al. 2006)

    The gradient must stay finite (and match course_lib's) for a positive pair at distance 0.
    """
    g = torch.Generator().manual_seed(1)
    r = lambda *shape: torch.randn(*shape, generator=g) * 0.5         # noqa: E731  distances around the margin
    flags = lambda b: torch.rand(b, generator=g) < 0.5                # noqa: E731
    yes_no = torch.tensor([True, False])
    cases = [
        Case("hand example: positive pair at d=1, negative pair at d=0.5, margin 1",
              (torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [0.0, 0.5]]), yes_no, 1.0), torch.tensor(0.3125)),
        Case("negative pair beyond the margin", (torch.zeros(1, 2), torch.tensor([[3.0, 4.0]]), ~yes_no[:1], 1.0),
              torch.tensor(0.0)),
        Case("one positive pair (B=1)", (r(1, 3), r(1, 3), yes_no[:1], 1.0)),
        Case("random (B=8, D=3, margin 1)", (r(8, 3), r(8, 3), flags(8), 1.0), grad="match"),
        Case("random (B=16, D=5, margin 2)", (r(16, 5), r(16, 5), flags(16), 2.0), grad="match"),
        Case("positive pair at distance 0", (torch.tensor([[1.0, 2.0], [0.0, 0.0]]),
              torch.tensor([[1.0, 2.0], [0.3, 0.4]]), yes_no, 1.0), torch.tensor(0.0625), grad="match"),
    ]
    v = lambda reduce=Tensor.mean, flip=False, m=None, **kw: like(   # noqa: E731
                                                                  lambda x1, x2, s, margin: reduce(_contrastive_terms(x1, x2, s ^ flip, m or margin, **kw)))
    rules = [
        ("The hinge uses the plain distance: max(0, m − d)², not max(0, m − d²)².",
         v(neg=lambda d, m: (m - d ** 2).clamp_min(0) ** 2)),
        ("Each term has a factor ½: ½·d² for positive pairs, ½·max(0, m − d)² for negative ones.", v(half=1.0)),
        ("Average over the pairs (.mean()) instead of summing: the loss should not grow with the batch.",
         v(Tensor.sum)),
        ("Clamp the negative term at 0: max(0, m − d)². A negative pair farther than the margin adds nothing.",
         v(neg=lambda d, m: (m - d) ** 2)),
        ("Same-class pairs (same=True) get d², the others the hinge: yours are swapped.", v(flip=True)),
        ("Square the hinge: max(0, m − d)², not max(0, m − d).", v(neg=lambda d, m: (m - d).clamp_min(0))),
        ("The positive term is ½·d², with the distance squared.", v(pos=lambda d: d)),
        ("Use the margin argument instead of a fixed value.", v(m=1.0)),
    ]
    return run_checks("contrastive loss", fn, cases, contrastive_loss, rules,
                      "loss = mean over pairs of ½·s·d² + ½·(1 − s)·max(0, m − d)², d the plain Euclidean distance.")


def _hits_at_1(queries, query_labels, gallery, gallery_labels, pick=torch.argmin) -> Tensor:
    """(Q,) 1.0 where the nearest gallery item (or another pick) has the query's label."""
    return (gallery_labels[pick(torch.cdist(queries, gallery), dim=1)] == query_labels).float()


@fallback(precision_at_1)
def check_precision_at_1(fn: Callable[[Tensor, Tensor, Tensor, Tensor], float]) -> bool:
    """Check ``fn(queries, query_labels, gallery, gallery_labels) -> p``: queries (Q, D), query_labels (Q,),
    gallery (N, D), gallery_labels (N,) -> a float in [0, 1], the share of queries whose nearest gallery item
    (smallest Euclidean distance) has the query's label.
    """
    g = torch.Generator().manual_seed(2)
    centres = torch.randn(5, 4, generator=g) * 2
    gl, ql = torch.randint(0, 5, (30,), generator=g), torch.randint(0, 5, (12,), generator=g)
    gallery, queries = centres[gl] + torch.randn(30, 4, generator=g), centres[ql] + torch.randn(12, 4, generator=g)
    own, zeros = torch.randn(6, 3, generator=g), torch.zeros(30, dtype=torch.long)
    cases = [
        Case("hand example: gallery 0, 1 (label 0), 10 (label 1); queries 0.2 (label 0), 9 (1), 0.9 (1)",
              (line_points(0.2, 9, 0.9), torch.tensor([0, 1, 1]), line_points(0, 1, 10), torch.tensor([0, 0, 1])), 2 / 3),
        Case("one query (Q=1)", (queries[:1], ql[:1], gallery, gl)),
        Case("random clusters (Q=12, N=30)", (queries, ql, gallery, gl)),
        Case("one class", (queries, zeros[:12], gallery, zeros), 1.0),
        Case("all labels distinct, each query next to its own gallery item",
              (own.flip(0) + 0.01, torch.arange(6).flip(0), own, torch.arange(6)), 1.0),
    ]
    rules = [
        ("You took the farthest gallery item: the nearest one has the smallest distance (argmin).",
         like(lambda *a: _hits_at_1(*a, pick=torch.argmax).mean().item())),
        ("Return the share of queries (between 0 and 1): divide the number of hits by Q.",
         like(lambda *a: _hits_at_1(*a).sum().item())),
        ("Return a fraction between 0 and 1, not a percentage.", like(lambda *a: _hits_at_1(*a).mean().item() * 100)),
    ]
    return run_checks("precision@1", fn, cases, precision_at_1, rules,
                      "For each query take the gallery item with the smallest distance, compare its label with the "
                      "query's label, and average these hits over the queries.")


@fallback(triplet_loss)
def check_triplet_loss(fn: Callable[[Tensor, Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(anchor, positive, negative, margin) -> loss``: (T, D) each, margin float -> scalar tensor.

        loss = mean over triplets of max(0, d(a, p) − d(a, n) + margin), d plain Euclidean

    (FaceNet, Schroff et al. 2015).
    """
    g = torch.Generator().manual_seed(3)
    r = lambda *shape: torch.randn(*shape, generator=g) * 0.3         # noqa: E731  about half the triplets active
    a = r(4, 3)
    cases = [
        Case("hand example: d(a,p)=1, d(a,n)=1.1, margin 0.2",
              (torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.1]]), 0.2), torch.tensor(0.1)),
        Case("hand example: one active triplet (0.1) and one easy one (0)",
              (torch.zeros(2, 2), torch.tensor([[1.0, 0.0]] * 2), torch.tensor([[0.0, 1.1], [0.0, 3.0]]), 0.2),
              torch.tensor(0.05)),
        Case("one triplet (T=1)", (r(1, 4), r(1, 4), r(1, 4), 0.2)),
        Case("random (T=8, D=3, margin 0.2)", (r(8, 3), r(8, 3), r(8, 3), 0.2), grad="match"),
        Case("random (T=20, D=16, margin 1)", (r(20, 16), r(20, 16), r(20, 16), 1.0), grad="match"),
        Case("anchor == positive", (a, a.clone(), r(4, 3), 0.5), grad="finite"),   # no unique gradient at d = 0
    ]
    raw = lambda a, p, n, m: paired_distances(a, p) - paired_distances(a, n) + m   # noqa: E731  (T,) before the hinge
    rules = [
        (SQUARED_HINT, like(lambda *args: triplet_loss(*args, squared=True))),
        ("Clamp each triplet at 0: max(0, d(a,p) − d(a,n) + m). An easy triplet adds 0, not a negative number.",
         like(lambda *args: raw(*args).mean())),
        ("Average over all T triplets: averaging over the active ones only is what batch-all does, not this loss.",
         like(lambda *args: raw(*args)[raw(*args) > 0].mean())),
        ("Average over the triplets (.mean()) instead of summing.", like(lambda *args: raw(*args).clamp_min(0).sum())),
        ("The margin is added: d(a,p) − d(a,n) + m. The positive must be closer than the negative by at least m.",
         like(lambda a, p, n, m: raw(a, p, n, -m).clamp_min(0).mean())),
        ("It is d(a,p) − d(a,n) + m, the positive's distance first: yours are swapped.",
         like(lambda a, p, n, m: triplet_loss(a, n, p, m))),
    ]
    return run_checks("triplet loss", fn, cases, triplet_loss, rules,
                      "loss = mean over triplets of max(0, ||a − p|| − ||a − n|| + margin).")


def _ap_terms(hits: Tensor) -> tuple[Tensor, Tensor]:
    """hits (Q, R) bool -> rel(i) and P(i) = (hits among the first i) / i, both (Q, R)."""
    rel = hits.float()
    return rel, rel.cumsum(1) / torch.arange(1, hits.shape[1] + 1)


def _ap_at_r(hits: Tensor) -> Tensor:
    rel, precision = _ap_terms(hits)
    return (precision * rel).sum(1) / hits.shape[1]                    # (Q,)


@fallback(average_precision_at_r)
def check_average_precision_at_r(fn: Callable[[Tensor], Tensor]) -> bool:
    """Check ``fn(hits) -> ap``: hits (Q, R) bool -> (Q,) float. hits[q, i] says whether the (i+1)-th nearest
    neighbour of query q is relevant; R is the number of relevant items of each query.

        AP@R = (1/R) Σ_i P(i)·rel(i),   P(i) = (hits among the first i) / i      (Musgrave, Belongie & Lim 2020)
    """
    g = torch.Generator().manual_seed(4)
    t = lambda *rows: torch.tensor(rows, dtype=torch.bool)           # noqa: E731
    cases = [
        Case("hand example ✓✗✓ (R=3)", (t([1, 0, 1]),), torch.tensor([5 / 9])),
        Case("hand example ✗✓ (R=2)", (t([0, 1]),), torch.tensor([0.25])),
        Case("all hits and no hit (R=4)", (t([1, 1, 1, 1], [0, 0, 0, 0]),), torch.tensor([1.0, 0.0])),
        Case("R=1", (t([1], [0]),), torch.tensor([1.0, 0.0])),
        Case("random (Q=6, R=5)", (torch.rand(6, 5, generator=g) < 0.5,)),
        Case("random (Q=4, R=12)", (torch.rand(4, 12, generator=g) < 0.6,)),
    ]
    v = lambda ap: like(lambda h: ap(*_ap_terms(h), h.shape[1]))     # noqa: E731  ap(rel, P, R)
    rules = [
        ("Divide by R, not by the number of hits: a miss counts 0 (✓✗✓ gives (1 + 0 + 2/3)/3 = 0.556, not 0.833).",
         v(lambda rel, p, r: (p * rel).sum(1) / rel.sum(1))),
        ("Add P(i) only at the ranks where the neighbour is relevant: multiply by rel(i) before summing.",
         v(lambda rel, p, r: p.mean(1))),
        ("That is precision@R. AP@R weights each hit by the precision at its rank, P(i) = (hits in the first i) / i.",
         v(lambda rel, p, r: rel.mean(1))),
        ("P(i) divides the hits so far by the rank i, not by R.",
         v(lambda rel, p, r: (rel.cumsum(1) / r * rel).sum(1) / r)),
        ("Ranks start at 1: P(1) = rel(1) / 1. Use torch.arange(1, R + 1).",
         v(lambda rel, p, r: (rel.cumsum(1) / torch.arange(r) * rel).sum(1) / r)),
        ("Return one AP per query, shape (Q,), not their mean.", like(lambda h: _ap_at_r(h).mean())),
    ]
    return run_checks("average precision at R", fn, cases, _ap_at_r, rules,
                      "AP@R = (1/R) Σ_i P(i)·rel(i), with P(i) = hits.cumsum / rank. By hand, ✓✗✓ gives (1 + 0 + 2/3)/3.",
                      library=average_precision_at_r)


def _batch_hard(e, labels, margin, far_pos=True, near_neg=True, hinge=True, over_all=False, reduce=torch.mean,
                squared=False, self_pos=False, other_neg=True) -> Tensor:
    """Batch-hard loss with switches that rebuild the common wrong versions (the defaults are right)."""
    d = pairwise_distances(e, squared=squared)                          # (B, B)
    same, eye = labels[:, None] == labels[None, :], torch.eye(len(labels), dtype=torch.bool)
    pos, neg = (same if self_pos else same & ~eye), (~same if other_neg else ~eye)
    hp = torch.where(pos, d, 0.0).amax(1) if far_pos else torch.where(pos, d, math.inf).amin(1)     # (B,)
    hn = torch.where(neg, d, math.inf).amin(1) if near_neg else torch.where(neg, d, 0.0).amax(1)    # (B,)
    x, keep = hp - hn + margin, pos.any(1) & neg.any(1)
    x = x.clamp_min(0) if hinge else x
    return reduce(torch.where(keep, x, 0.0)) if over_all else reduce(x[keep])


@fallback(lambda e, y, margin: batch_hard_triplet_loss(e, y, margin)[0],
          "course_lib.similarity.batch_hard_triplet_loss (the loss alone)")
def check_batch_hard_loss(fn: Callable[[Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(embeddings, labels, margin) -> loss``: embeddings (B, D), labels (B,) int -> scalar tensor.

    Each anchor takes its farthest positive and its closest negative (plain distances):
    max(0, d(a, p*) − d(a, n*) + margin), averaged over the anchors that have at least one positive and one
    negative; 0 (still connected to the embeddings) when there are none. (Hermans, Beyer & Leibe 2017)
    """
    g = torch.Generator().manual_seed(5)
    r = lambda b, d=3: torch.randn(b, d, generator=g)                 # noqa: E731
    zero = torch.tensor(0.0)
    cases = [
        Case("hand example: points 0, 1 (label 0), 2, 4 (label 1), margin 0.5",
              (line_points(0, 1, 2, 4), torch.tensor([0, 0, 1, 1]), 0.5), torch.tensor(0.5)),
        Case("a class with a single sample: points 0, 2 (label 0), 3 (label 1), 5 (label 2), margin 1.5",
              (line_points(0, 2, 3, 5), torch.tensor([0, 0, 1, 2]), 1.5), torch.tensor(1.5)),
        Case("random (B=12, 3 classes, margin 0.5)", (r(12, 4), random_labels(g, 3, 4), 0.5), grad="match"),
        Case("random (B=16, 4 classes, margin 1)", (r(16, 8), random_labels(g, 4, 4), 1.0), grad="match"),
        Case("one class: no negatives", (r(5), torch.zeros(5, dtype=torch.long), 0.5), zero, grad="match"),
        Case("all labels distinct: no positives", (r(5), torch.arange(5), 0.5), zero),
        Case("one sample (B=1)", (r(1), torch.tensor([0]), 0.5), zero),
        Case("identical embeddings", (torch.ones(6, 3), torch.tensor([0, 0, 1, 1, 2, 2]), 0.3), torch.tensor(0.3),
              grad="finite"),
    ]
    v = lambda **kw: like(lambda e, y, m: _batch_hard(e, y, m, **kw))  # noqa: E731
    rules = [
        ("No anchor has both a positive and a negative here: return 0 connected to the graph "
         "(embeddings.sum() * 0), not the mean of an empty tensor (NaN).", has_nan),
        ("Batch-hard takes the farthest positive (max over the same label), not the closest.", v(far_pos=False)),
        ("Batch-hard takes the closest negative (min over the other labels), not the farthest.", v(near_neg=False)),
        ("Take the hardest pairs, the farthest positive and the closest negative; yours takes the easiest ones.",
         v(far_pos=False, near_neg=False)),
        (SELF_HINT + " An anchor alone in its class has no positive and is left out.", v(self_pos=True)),
        ("Average only over the anchors that have a positive and a negative; the others have no triplet.",
         v(over_all=True)),
        ("The closest negative must have another label: mask out same-label samples before the min.",
         v(other_neg=False)),
        ("Clamp each anchor's loss at 0 (the hinge max(0, ...)).", v(hinge=False)),
        (SQUARED_HINT, v(squared=True)),
        ("Average over the anchors instead of summing.", v(reduce=torch.sum)),
    ]
    return run_checks("batch-hard triplet loss", fn, cases, batch_hard_triplet_loss, rules,
                      "Per anchor: farthest positive, closest negative, max(0, d_ap − d_an + margin); mean over the "
                      "anchors that have both.")


def _triplet_mask(d, labels, margin, lower=op.lt, upper=op.lt, distinct=True, other=True) -> Tensor:
    """(B, B, B) mask[a, p, n] of valid triplets with lower(d_ap, d_an) and upper(d_an, d_ap + margin).

    None drops a bound; the switches rebuild the common wrong versions (the defaults are right).
    """
    same = labels[:, None] == labels[None, :]                           # (B, B)
    pos = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device) if distinct else same
    neg = ~same if other else torch.ones_like(same)
    d_ap, d_an = d[:, :, None], d[:, None, :]                           # (B, B, 1), (B, 1, B)
    mask = pos[:, :, None] & neg[:, None, :]
    mask = mask & lower(d_ap, d_an) if lower else mask
    return mask & upper(d_an, d_ap + margin) if upper else mask


@fallback(_triplet_mask, "course_lib's semi-hard mask (the rule of course_lib.similarity.semi_hard_triplets)")
def check_semi_hard_mask(fn: Callable[[Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(d, labels, margin) -> mask``: d (B, B) distances, labels (B,) -> (B, B, B) bool, mask[a, p, n]
    True exactly when a ≠ p, labels[p] == labels[a], labels[n] != labels[a] and

        d[a, p] < d[a, n] < d[a, p] + margin        (semi-hard negatives, FaceNet, Schroff et al. 2015)

    The reference is course_lib.similarity.mining.semi_hard_triplets.
    """
    g = torch.Generator().manual_seed(6)

    def case(name, e, labels, margin, expected=None):
        if expected is None:                                            # course_lib's miner, as a mask
            expected = torch.zeros(len(labels), len(labels), len(labels), dtype=torch.bool)
            expected[semi_hard_triplets(e, labels, margin)] = True
        return Case(name, (pairwise_distances(e), labels, margin), expected)

    only_014 = torch.zeros(6, 6, 6, dtype=torch.bool)
    only_014[0, 1, 4] = True
    # The hand example: a = 0, p = 1 (d = 1); negatives at -1 (d = 1, a tie), 1.5 (d = 1 + margin), -1.25, 0.25.
    cases = [
        case("hand example with ties d(a,n) = d(a,p) and d(a,n) = d(a,p) + margin", line_points(0, 1, -1, 1.5, -1.25, 0.25),
             torch.tensor([0, 0, 1, 2, 3, 4]), 0.5, only_014),
        case("random (B=10, 3 classes, margin 0.5)", torch.randn(10, 2, generator=g),
             torch.randint(0, 3, (10,), generator=g), 0.5),
        case("random (B=12, 4 classes, margin 1)", torch.randn(12, 3, generator=g), random_labels(g, 4, 3), 1.0),
        case("one class", torch.randn(4, 2, generator=g), torch.zeros(4, dtype=torch.long), 1.0),
        case("all labels distinct", torch.randn(4, 2, generator=g), torch.arange(4), 1.0),
        case("one sample (B=1)", torch.randn(1, 2, generator=g), torch.tensor([0]), 1.0),
    ]
    v = lambda **kw: like(lambda d, y, m: _triplet_mask(d, y, m, **kw))  # noqa: E731
    rules = [
        ("FaceNet's semi-hard is strict: d(a,p) < d(a,n). A negative exactly as far as the positive is not "
         "semi-hard (use <, not ≤).", v(lower=op.le)),
        ("The upper bound is strict too: d(a,n) < d(a,p) + margin; at equality the loss is exactly 0.",
         v(upper=op.le)),
        ("Both bounds are strict: d(a,p) < d(a,n) < d(a,p) + margin (use <, not ≤).", v(lower=op.le, upper=op.le)),
        (SELF_HINT + " E.g. & ~torch.eye(B, dtype=torch.bool).", v(distinct=False)),
        ("Add the upper bound d(a,n) < d(a,p) + margin: without it you include easy negatives (loss 0).",
         v(upper=None)),
        ("Add the lower bound d(a,p) < d(a,n): without it you include hard negatives, closer than the positive.",
         v(lower=None)),
        ("The negative must have another label than the anchor.", v(other=False)),
        ("Index the mask as mask[a, p, n]: d[:, :, None] is d(a,p), d[:, None, :] is d(a,n).",
         like(lambda d, y, m: _triplet_mask(d, y, m).transpose(1, 2))),
    ]
    return run_checks("semi-hard mask", fn, cases, None, rules,
                      "mask[a, p, n] = (a ≠ p) & same label(a, p) & other label(a, n) & (d(a,p) < d(a,n)) & "
                      "(d(a,n) < d(a,p) + margin), with d(a,p) = d[:, :, None] and d(a,n) = d[:, None, :].",
                      library=semi_hard_triplets)


def _batch_all(e, labels, margin, over="active", valid_only=True, hinge=True, squared=False,
               distinct=True) -> Tensor:
    """Batch-all loss with switches that rebuild the common wrong versions (the defaults are right)."""
    d = pairwise_distances(e, squared=squared)                          # (B, B)
    loss = d[:, :, None] - d[:, None, :] + margin                       # (B, B, B) [a, p, n]
    loss = loss.clamp_min(0) if hinge else loss
    valid = _triplet_mask(d, labels, margin, None, None, distinct) if valid_only else torch.ones_like(loss).bool()
    keep = valid & (loss > 0) if over == "active" else valid
    return (loss * valid).sum() if over == "sum" else (loss * keep).sum() / keep.sum()


@fallback(lambda e, y, margin: batch_all_triplet_loss(e, y, margin)[0],
          "course_lib.similarity.batch_all_triplet_loss (the loss alone)")
def check_batch_all_loss(fn: Callable[[Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(embeddings, labels, margin) -> loss``: embeddings (B, D), labels (B,) int -> scalar tensor.

    Every valid triplet (a ≠ p with the same label, n with another label) has the loss
    max(0, d(a,p) − d(a,n) + margin) (plain distances); average over the ACTIVE ones (loss > 0), and return
    0 (still connected to the embeddings) when none is active. (Hermans, Beyer & Leibe 2017)
    """
    g = torch.Generator().manual_seed(7)
    zero = torch.tensor(0.0)
    cases = [
        Case("hand example: points 0, 1 (label 0), 2, 4 (label 1), margin 0.5: 3 active of 8 valid",
              (line_points(0, 1, 2, 4), torch.tensor([0, 0, 1, 1]), 0.5), torch.tensor(2.5 / 3)),
        Case("a class with a single sample: points 0, 2 (label 0), 3 (label 1), 5 (label 2), margin 1.5",
              (line_points(0, 2, 3, 5), torch.tensor([0, 0, 1, 2]), 1.5), torch.tensor(3.5 / 3)),
        Case("random (B=9, 3 classes, margin 0.5)", (torch.randn(9, 4, generator=g), random_labels(g, 3, 3), 0.5),
              grad="match"),
        Case("random (B=12, 4 classes, margin 1)", (torch.randn(12, 8, generator=g), random_labels(g, 4, 3), 1.0),
              grad="match"),
        Case("well-separated classes: no active triplet",
              (torch.tensor([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [10.0, 0.1]]), torch.tensor([0, 0, 1, 1]), 0.5),
              zero, grad="match"),
        Case("one class", (torch.randn(4, 3, generator=g), torch.zeros(4, dtype=torch.long), 0.5), zero),
        Case("all labels distinct", (torch.randn(4, 3, generator=g), torch.arange(4), 0.5), zero),
    ]
    v = lambda **kw: like(lambda e, y, m: _batch_all(e, y, m, **kw))   # noqa: E731
    rules = [
        ("No triplet is active here: return 0 connected to the graph (e.g. divide by n_active.clamp_min(1)), "
         "not 0 / 0 = NaN.", has_nan),
        ("Average over the ACTIVE triplets (loss > 0) only: averaging over all valid triplets lets the many easy "
         "ones (loss 0) dilute the few that still teach.", v(over="valid")),
        ("Only valid triplets count (a ≠ p with the same label, n with another label): mask the (B, B, B) cube.",
         v(valid_only=False)),
        (SELF_HINT, v(distinct=False)),
        (SQUARED_HINT, v(squared=True)),
        ("Clamp each triplet's loss at 0 (the hinge max(0, ...)).", v(hinge=False, over="valid")),
        ("Divide the sum by the number of active triplets instead of returning the sum.", v(over="sum")),
    ]
    return run_checks("batch-all triplet loss", fn, cases, batch_all_triplet_loss, rules,
                      "Build the (B, B, B) cube d(a,p) − d(a,n) + margin, clamp it at 0, keep the valid triplets, and "
                      "average over those with a loss > 0.")
