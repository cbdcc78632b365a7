"""Checkers for lesson 04 (Hierarchical Triplet Loss): the dynamic margin and the nearest classes.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..similarity.hierarchy import dynamic_margin, nearest_classes
from .harness import Case, fallback, like, run_checks, wrong_dtype

__all__ = ["check_dynamic_margin", "check_nearest_classes"]


@fallback(dynamic_margin)
def check_dynamic_margin(fn: Callable[[Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(d_h, s, beta) -> alpha``: d_h (C, C) merge thresholds of the class tree, s (C,) within-class
    distances, beta float -> (C, C), alpha[a, n] = beta + d_h[a, n] - s[a] (Ge et al. 2018: the margin of an
    anchor of class a against a negative of class n; s is the *anchor's* class spread).
    """
    g = torch.Generator().manual_seed(8)
    hand_h = torch.tensor([[0.0, 1.3, 3.1], [1.3, 0.0, 3.1], [3.1, 3.1, 0.0]])
    hand_s = torch.tensor([0.2, 0.4, 0.1])
    rand_h = torch.rand(5, 5, generator=g) * 4
    rand_h = (rand_h + rand_h.T).fill_diagonal_(0) / 2
    cases = [
        Case("hand example: d_H of classes {0, 1} and {2}, s = 0.2, 0.4, 0.1, beta 0.1", (hand_h, hand_s, 0.1),
              torch.tensor([[-0.1, 1.2, 3.0], [1.0, -0.3, 2.8], [3.1, 3.1, 0.0]])),
        Case("same, beta 0.5", (hand_h, hand_s, 0.5)),
        Case("random (C=5)", (rand_h, torch.rand(5, generator=g), 0.1)),
        Case("a single class (C=1)", (torch.zeros(1, 1), torch.tensor([0.3]), 0.1), torch.tensor([[-0.2]])),
    ]
    rules = [
        ("Subtract the ANCHOR's spread: s belongs to the row (anchor class a), s[:, None], not s[None, :].",
         like(lambda h, s, b: b + h - s[None, :])),
        ("Add beta: alpha = beta + d_H − s.", like(lambda h, s, b: h - s[:, None])),
        ("Subtract s (a spread-out anchor class gets a smaller margin), do not add it.",
         like(lambda h, s, b: b + h + s[:, None])),
        ("Use d_H itself, not its square root: the tree's thresholds are squared distances, like s.",
         like(lambda h, s, b: b + h.sqrt() - s[:, None])),
    ]
    return run_checks("dynamic margin", fn, cases, dynamic_margin, rules,
                      "alpha is a (C, C) matrix: beta + d_h − s[:, None], the anchor's class along the rows.")


@fallback(nearest_classes)
def check_nearest_classes(fn: Callable[[Tensor, Tensor, int], Tensor]) -> bool:
    """Check ``fn(distances, anchors, m) -> groups``: distances (C, C) class distances, anchors (A,) class rows,
    m int -> (A, m) long: each anchor first, then its m − 1 nearest OTHER classes, nearest first.
    The diagonal (a class's own spread) is not a neighbour, even when it is the smallest entry of its row.
    """
    g = torch.Generator().manual_seed(9)
    hand = torch.tensor([[0.1, 0.9, 0.5, 0.7], [0.9, 0.0, 0.3, 0.2], [0.5, 0.3, 0.0, 0.8], [0.7, 0.2, 0.8, 0.0]])
    rand = torch.rand(8, 8, generator=g) * 4
    rand = (rand + rand.T) / 2
    with_inf = rand.clone()
    with_inf[:, [2, 5]] = float("inf")                                 # classes taken by an earlier group
    cases = [
        Case("hand example: anchors 0 and 1, m = 3", (hand, torch.tensor([0, 1]), 3), torch.tensor([[0, 2, 3], [1, 3, 2]])),
        Case("m = 1: the anchor alone", (hand, torch.tensor([2]), 1), torch.tensor([[2]])),
        Case("random (C=8), anchors 3, 0, 7, m = 4", (rand, torch.tensor([3, 0, 7]), 4)),
        Case("classes already taken have distance inf (C=8), anchor 4, m = 3", (with_inf, torch.tensor([4]), 3)),
    ]
    def no_self(d, a, m):
        return torch.cat([a[:, None], d[a].topk(m - 1, dim=1, largest=False).indices], 1)

    def farthest(d, a, m):
        rows = d[a].clone()
        rows[torch.arange(len(a)), a] = -float("inf")
        return torch.cat([a[:, None], rows.topk(m - 1, dim=1).indices], 1)
    rules = [
        ("A class is not its own neighbour: set the anchor's own entry to inf before taking the nearest.",
         like(no_self)),
        ("Nearest means SMALLEST distance: topk(..., largest=False) or argsort ascending.", like(farthest)),
        ("Put the anchor itself in the first column, then its m − 1 neighbours: the result is (A, m).",
         lambda got, expected, args: got.shape == (expected.shape[0], expected.shape[1] - 1)),
        ("Return integer class rows (long), e.g. the .indices of topk.", wrong_dtype),
    ]
    return run_checks("nearest classes", fn, cases, nearest_classes, rules,
                      "For each anchor row: copy it, set its own column to inf, take the m − 1 smallest with "
                      "topk(largest=False), and put the anchor in front.")
