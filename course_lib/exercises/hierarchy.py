"""Checkers for lesson 04 (Hierarchical Triplet Loss): the HTL loss and the nearest classes.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..similarity.distances import pairwise_distances
from ..similarity.hierarchy import dynamic_margin, nearest_classes
from ..similarity.losses import batch_all_triplet_loss, class_margin_triplet_loss, hierarchical_triplet_loss
from .harness import SELF_HINT, Case, fallback, has_nan, like, line_points, random_labels, run_checks, wrong_dtype

__all__ = ["check_htl_loss", "check_nearest_classes"]


# ---------------------------------------------------------------------------------------------- the HTL loss
def _htl(e: Tensor, labels: Tensor, class_margins: Tensor, margin_of: str = "a,n", over: str = "active",
         distinct: bool = True, squared: bool = True, hinge: bool = True) -> Tensor:
    """HTL's batch loss as an [a, p, n] cube, with switches that rebuild the common wrong versions (the
    defaults are right). margin_of: whose classes index the margin table, and along which cube axes."""
    d = pairwise_distances(e, squared=squared)                         # (B, B)
    table = class_margins[labels[:, None], labels[None, :]]            # (B, B) [i, j] = alpha[y_i, y_j]
    margin = {"a,n": table[:, None, :], "n,a": table.T[:, None, :], "a,p": table[:, :, None]}[margin_of]
    loss = d[:, :, None] - d[:, None, :] + margin                      # (B, B, B) [a, p, n]
    loss = loss.clamp_min(0) if hinge else loss
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device) if distinct else same
    valid = pos[:, :, None] & ~same[:, None, :]                        # (B, B, B)
    keep = valid & (loss > 0) if over == "active" else valid
    return (loss * valid).sum() if over == "sum" else (loss * keep).sum() / keep.sum().clamp_min(1)


def _random_margins(g: torch.Generator, c: int) -> Tensor:
    """(C, C) margins shaped like HTL's: beta + d_H[a, n] - s[a], with a symmetric d_H and a spread per row."""
    d_h = torch.rand(c, c, generator=g) * 1.5 + 0.5
    d_h = (d_h + d_h.T).fill_diagonal_(0) / 2
    return dynamic_margin(d_h, torch.rand(c, generator=g) * 0.6, 0.1)


def _unit(g: torch.Generator, b: int, dim: int) -> Tensor:
    return torch.nn.functional.normalize(torch.randn(b, dim, generator=g), dim=1)


@fallback(lambda e, y, class_margins: class_margin_triplet_loss(e, y, class_margins)[0],
          "course_lib.similarity.class_margin_triplet_loss (the loss alone)")
def check_htl_loss(fn: Callable[[Tensor, Tensor, Tensor], Tensor]) -> bool:
    """Check ``fn(embeddings, labels, class_margins) -> loss``: embeddings (B, D), labels (B,) long class rows
    0 .. C-1, class_margins (C, C) float -> scalar tensor.

    Every valid triplet (a ≠ p of one class, n of another class) costs
    max(0, ||e_a − e_p||² − ||e_a − e_n||² + class_margins[y_a, y_n]) (squared distances, the units of d_H and s);
    average over the ACTIVE triplets (loss > 0), 0 (still connected to the embeddings) when none is. This is the
    Hierarchical Triplet Loss (Ge et al. 2018) once the tree has given the margins.
    """
    g = torch.Generator().manual_seed(8)
    zero = torch.tensor(0.0)
    two = torch.tensor([[-0.1, 1.5], [0.5, 0.2]])                      # class-0 anchors 1.5, class-1 anchors 0.5
    c6, c4 = _random_margins(g, 6), _random_margins(g, 4)
    cases = [
        Case("hand example: points 0, 1 (class 0), 1.5, 3 (class 1); margins 1.5 for class-0 anchors, 0.5 for "
             "class-1 anchors: 4 active of 8", (line_points(0, 1, 1.5, 3), torch.tensor([0, 0, 1, 1]), two),
             torch.tensor(1.375)),
        Case("a class with a single image: points 0, 1 (class 0), 1.5 (class 1)",
             (line_points(0, 1, 1.5), torch.tensor([0, 0, 1]), two), torch.tensor(1.25)),
        Case("random unit vectors (B=12), 4 of 6 classes in the batch", (_unit(g, 12, 8),
             torch.tensor([1, 3, 4, 5]).repeat_interleave(3)[torch.randperm(12, generator=g)], c6), grad="match"),
        Case("random unit vectors (B=16, 4 classes)", (_unit(g, 16, 6), random_labels(g, 4, 4), c4), grad="match"),
        Case("two identical images", (torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]),
                                      torch.tensor([0, 0, 1, 1]), two), grad="finite"),
        Case("well-separated classes, small margins: no active triplet",
             (line_points(0, 0.1, 5, 5.1), torch.tensor([0, 0, 1, 1]), torch.full((2, 2), 0.5)), zero),
        Case("one class", (_unit(g, 4, 3), torch.zeros(4, dtype=torch.long), c4), zero),
        Case("all labels distinct", (_unit(g, 4, 3), torch.arange(4), c4), zero),
    ]
    v = lambda **kw: like(lambda e, y, m: _htl(e, y, m, **kw))         # noqa: E731
    rules = [
        ("No triplet is active here: return 0 connected to the graph (divide by the count clamped at 1), "
         "not 0 / 0 = NaN.", has_nan),
        ("The table is read the wrong way round: your margin is α(n, a), the negative's class first, where the "
         "triplet needs α(a, n), the anchor's class first. α is not symmetric: it subtracts the spread s_a of the ANCHOR's class.",
         v(margin_of="n,a")),
        ("The margin belongs to the pair (anchor, NEGATIVE), not (anchor, positive): in the [a, p, n] cube the "
         "(B, B) margins run along the a and n axes.", v(margin_of="a,p")),
        ("Average over the ACTIVE triplets (loss > 0) only, as batch-all does: all valid triplets lets the many "
         "easy ones dilute the few that teach.", v(over="valid")),
        (SELF_HINT, v(distinct=False)),
        ("Use SQUARED distances ||a − b||²: d_H and s, so the margins too, are mean squared distances.",
         v(squared=False)),
        ("Clamp each triplet's loss at 0 (the hinge max(0, ...)).", v(hinge=False, over="valid")),
        ("Divide the sum by the number of active triplets instead of returning the sum.", v(over="sum")),
    ]
    return run_checks("HTL loss", fn, cases, lambda e, y, m: _htl(e, y, m), rules,
                      "Look up each (anchor, negative) pair's margin by their classes, then do 03's batch-all on "
                      "squared distances with that margin: every valid triplet, hinge, mean over the active ones.",
                      library=(class_margin_triplet_loss, hierarchical_triplet_loss, batch_all_triplet_loss,
                               dynamic_margin))


# ---------------------------------------------------------------------------------------------- nearest classes
@fallback(nearest_classes)
def check_nearest_classes(fn: Callable[[Tensor, Tensor, int], Tensor]) -> bool:
    """Check ``fn(distances, anchors, m) -> groups``: distances (C, C) class distances, anchors (A,) class rows,
    m int -> (A, m) long: each anchor first, then its m − 1 nearest OTHER classes, nearest first.
    The diagonal (a class's own spread) is not a neighbour, whether or not it is the smallest entry of its row.
    """
    g = torch.Generator().manual_seed(9)
    hand = torch.tensor([[0.1, 0.9, 0.5, 0.7], [0.9, 0.0, 0.3, 0.2], [0.5, 0.3, 0.0, 0.8], [0.7, 0.2, 0.8, 0.0]])
    spread = hand.clone().fill_diagonal_(0.6)                          # a spread larger than some distances
    rand = torch.rand(8, 8, generator=g) * 4
    rand = (rand + rand.T) / 2
    with_inf = rand.clone()
    with_inf[:, [2, 5]] = float("inf")                                 # classes taken by an earlier group
    cases = [
        Case("hand example: anchors 0 and 1, m = 3", (hand, torch.tensor([0, 1]), 3), torch.tensor([[0, 2, 3], [1, 3, 2]])),
        Case("m = 1: the anchor alone", (hand, torch.tensor([2]), 1), torch.tensor([[2]])),
        Case("spread-out classes (diagonal 0.6): anchors 0 and 2, m = 3", (spread, torch.tensor([0, 2]), 3),
             torch.tensor([[0, 2, 3], [2, 1, 0]])),
        Case("random (C=8), anchors 3, 0, 7, m = 4", (rand, torch.tensor([3, 0, 7]), 4)),
        Case("classes already taken have distance inf (C=8), anchor 4, m = 3", (with_inf, torch.tensor([4]), 3)),
    ]

    def no_self(d, a, m):
        return torch.cat([a[:, None], d[a].topk(m - 1, dim=1, largest=False).indices], 1)

    def drop_first(d, a, m):
        return torch.cat([a[:, None], d[a].argsort(dim=1)[:, 1:m]], 1)

    def farthest(d, a, m):
        rows = d[a].clone()
        rows[torch.arange(len(a)), a] = -float("inf")
        return torch.cat([a[:, None], rows.topk(m - 1, dim=1).indices], 1)
    rules = [
        ("A class is not its own neighbour: its own entry must be kept out before the nearest are taken.",
         like(no_self)),
        ("Dropping the first column of the sorted row assumes the class itself sorts first, but its diagonal "
         "entry is its spread, which can exceed its distance to another class: keep the class out by its "
         "position instead.", like(drop_first)),
        ("Nearest means SMALLEST distance: sort in increasing order.", like(farthest)),
        ("Put the anchor itself in the first column, then its m − 1 neighbours: the result is (A, m).",
         lambda got, expected, args: got.shape == (expected.shape[0], expected.shape[1] - 1)),
        ("Return integer class rows (long), as indices come.", wrong_dtype),
    ]
    return run_checks("nearest classes", fn, cases, nearest_classes, rules,
                      "For each anchor's row: leave the anchor itself out, keep the m − 1 smallest distances in "
                      "increasing order, and put the anchor in front.")
