"""Checkers for lesson 07.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from ..pose.keypoints import pck, soft_argmax2d
from .harness import Case, fallback, like, run_checks

__all__ = ["check_soft_argmax", "check_pck"]


def _soft_argmax_variant(h: Tensor, flip: bool = False, per_axis: bool = False, plain: bool = False,
                         from_one: bool = False) -> Tensor:
    """soft-argmax and its usual mistakes: x and y swapped, a softmax per row/column, no softmax, 1-based."""
    b, k, rows, cols = h.shape
    if plain:
        p = h / h.sum(dim=(2, 3), keepdim=True)
        px, py = p.sum(2), p.sum(3)
    elif per_axis:
        px, py = torch.softmax(h.sum(2), -1), torch.softmax(h.sum(3), -1)
    else:
        p = torch.softmax(h.reshape(b, k, -1), -1).reshape(b, k, rows, cols)
        px, py = p.sum(2), p.sum(3)
    start = 1.0 if from_one else 0.0
    x = (px * (torch.arange(cols, dtype=h.dtype) + start)).sum(-1)
    y = (py * (torch.arange(rows, dtype=h.dtype) + start)).sum(-1)
    return torch.stack([y, x] if flip else [x, y], dim=-1)


@fallback(soft_argmax2d)
def check_soft_argmax(fn: Callable[[Tensor], Tensor]) -> bool:
    """Check ``fn(heatmaps) -> xy``: heatmaps (B, K, H, W) -> (B, K, 2), the expected (x, y) pixel position under a
    softmax over each whole map: x = sum p[i, j] * j, y = sum p[i, j] * i, with x the column (0 ... W - 1).
    """
    g = torch.Generator().manual_seed(15)
    t = lambda rows: torch.tensor(rows, dtype=torch.float32)[None, None]
    cases = [
        Case("a flat 3 x 5 map: its centre", (torch.zeros(1, 1, 3, 5),), torch.tensor([[[2.0, 1.0]]])),
        Case("3 x 3: weights 1 everywhere, 2 at (row 1, col 1), 4 at (row 1, col 2)",
              (t([[0.0, 0, 0], [0, math.log(2), math.log(4)], [0, 0, 0]]),), torch.tensor([[[16 / 13, 1.0]]])),
        Case("a peak of 20 at row 0, column 3 of a 4 x 6 map", (t([[0.0] * 3 + [20.0] + [0.0] * 2] + [[0.0] * 6] * 3),)),
        Case("random maps, B = 2, K = 3, 5 x 7", (torch.randn(2, 3, 5, 7, generator=g) * 3,), grad="match"),
        Case("random maps stored channels-last, as the course's networks return them (use reshape, not view)",
              ((torch.randn(2, 3, 5, 7, generator=g) * 3).contiguous(memory_format=torch.channels_last),)),
    ]
    rules = [
        ("x is the COLUMN (the last dimension, 0 ... W - 1) and y the row: return (x, y), not (y, x).",
         like(lambda h: _soft_argmax_variant(h, flip=True))),
        ("Take ONE softmax over the whole map (reshape to (B, K, H * W)), not one per row or column.",
         like(lambda h: _soft_argmax_variant(h, per_axis=True))),
        ("Apply a softmax (exp, then normalise) before the weighted mean: the raw map can be negative.",
         like(lambda h: _soft_argmax_variant(h, plain=True))),
        ("Pixel coordinates start at 0: use torch.arange(W), not 1 ... W.",
         like(lambda h: _soft_argmax_variant(h, from_one=True))),
    ]
    return run_checks("soft-argmax", fn, cases, soft_argmax2d, rules,
                      "p = softmax over the H * W pixels of each map; x = sum of p times the column index, y = sum of p "
                      "times the row index; stack (x, y) in the last dimension.")


@fallback(pck)
def check_pck(fn: Callable[[Tensor, Tensor, float], float]) -> bool:
    """Check ``fn(pred, gt, threshold) -> share``: keypoints (B, K, 2) -> the fraction (0 to 1) of keypoints whose
    Euclidean distance to the ground truth is <= threshold pixels."""
    g = torch.Generator().manual_seed(16)
    gt = torch.zeros(1, 4, 2)
    pred = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 4.0]]])          # distances 0, 1, 2, 5
    rand_gt = torch.rand(3, 5, 2, generator=g) * 20
    rand_pred = rand_gt + torch.randn(3, 5, 2, generator=g) * 2
    cases = [
        Case("distances 0, 1, 2, 5 at threshold 2", (pred, gt, 2.0), 0.75),
        Case("distances 0, 1, 2, 5 at threshold 1 (1 counts: <=)", (pred, gt, 1.0), 0.5),
        Case("distances 0, 1, 2, 5 at threshold 4 (the distance of (3, 4) is 5, not 3 or 4)", (pred, gt, 4.0), 0.75),
        Case("random keypoints, B = 3, K = 5, threshold 2.5", (rand_pred, rand_gt, 2.5)),
    ]
    rules = [
        ("A keypoint exactly at the threshold counts as correct: distance <= threshold.",
         lambda got, expected, args: abs(float(got) - float(((args[0] - args[1]).norm(dim=-1) < args[2]).float().mean())) < 1e-6),
        ("Use the Euclidean distance of the (x, y) difference, .norm(dim=-1), not each coordinate on its own.",
         lambda got, expected, args: abs(float(got) - float(((args[0] - args[1]).abs() <= args[2]).all(-1).float().mean())) < 1e-6),
        ("Return a fraction between 0 and 1 (the mean), not a count or a percentage.",
         lambda got, expected, args: abs(float(got) - 100 * expected) < 1e-4 or abs(float(got) - expected * args[0].shape[0] * args[0].shape[1]) < 1e-4),
    ]
    return run_checks("PCK", fn, cases, lambda p, g_, th: float(pck(p, g_, th)), rules,
                      "distances = (pred - gt).norm(dim=-1), shape (B, K); return (distances <= threshold).float().mean().",
                      library=pck)
