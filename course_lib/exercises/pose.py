"""Checkers for lesson 07.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from ..pose.keypoints import pck, render_heatmaps, soft_argmax2d
from .harness import Case, fallback, like, run_checks

__all__ = ["check_render_heatmaps", "check_soft_argmax", "check_pck"]


def _heatmap_variant(keypoints: Tensor, size: tuple[int, int], sigma: float, swap: bool = False,
                     denominator: str = "2 sigma²", shift: float = 0.0, rounded: bool = False,
                     sum_one: bool = False, plain_distance: bool = False) -> Tensor:
    """Gaussian maps and their usual mistakes: rows and columns swapped, a wrong denominator, pixel centres
    shifted by ``shift``, keypoints rounded to whole pixels, maps normalised to sum 1, the distance not squared."""
    h, w = size
    kp = keypoints.round() if rounded else keypoints
    x, y = kp[..., 0, None, None], kp[..., 1, None, None]                          # (B, K, 1, 1)
    if swap:
        x, y = y, x
    cols = torch.arange(w, dtype=kp.dtype) + shift
    rows = torch.arange(h, dtype=kp.dtype)[:, None] + shift
    d2 = (cols - x) ** 2 + (rows - y) ** 2                                          # (B, K, H, W)
    d = d2.sqrt() if plain_distance else d2
    scale = {"2 sigma²": 2 * sigma ** 2, "sigma²": sigma ** 2, "2 sigma": 2 * sigma}[denominator]
    maps = torch.exp(-d / scale)
    return maps / maps.sum(dim=(-2, -1), keepdim=True) if sum_one else maps


@fallback(render_heatmaps)
def check_render_heatmaps(fn: Callable[[Tensor, tuple[int, int], float], Tensor]) -> bool:
    """Check ``fn(keypoints, size, sigma) -> maps``: keypoints (B, K, 2) (x, y) in map pixels, size (H, W) ->
    (B, K, H, W), a Gaussian of peak 1 and width sigma at each keypoint, exp(-||p - k||² / (2 sigma²)), where
    p = (j, i) is the centre of pixel (row i, column j).
    """
    g = torch.Generator().manual_seed(17)
    e = math.exp
    t = lambda rows: torch.tensor(rows, dtype=torch.float32)[None, None]
    cases = [
        Case("a keypoint on pixel (1, 1) of a 3 x 3 map, sigma 1", (torch.tensor([[[1.0, 1.0]]]), (3, 3), 1.0),
             t([[e(-1), e(-0.5), e(-1)], [e(-0.5), 1, e(-0.5)], [e(-1), e(-0.5), e(-1)]])),
        Case("x = 2, y = 0 on a map of H = 2 rows and W = 4 columns, sigma 0.5 (x is the column)",
             (torch.tensor([[[2.0, 0.0]]]), (2, 4), 0.5),
             t([[e(-8), e(-2), 1, e(-2)], [e(-10), e(-4), e(-2), e(-4)]])),
        Case("a keypoint between pixel centres, (x, y) = (1.5, 0.5) on a 2 x 3 map, sigma 1",
             (torch.tensor([[[1.5, 0.5]]]), (2, 3), 1.0),
             t([[e(-1.25), e(-0.25), e(-0.25)], [e(-1.25), e(-0.25), e(-0.25)]])),
        Case("random keypoints, B = 2, K = 3, on 5 x 7 maps, sigma 1.3",
             (torch.rand(2, 3, 2, generator=g) * torch.tensor([6.0, 4.0]), (5, 7), 1.3), grad="match"),
        Case("the lesson's sizes: B = 3, K = 11, 16 x 16 maps, sigma 2",
             (torch.rand(3, 11, 2, generator=g) * 15, (16, 16), 2.0), grad="match"),
        Case("keypoints outside the map (x = -2, y = 7.5 on 4 x 4): only the Gaussian's tail shows",
             (torch.tensor([[[-2.0, 7.5], [5.0, -1.0]]]), (4, 4), 1.5)),
        Case("an empty batch: keypoints (0, 4, 2)", (torch.zeros(0, 4, 2), (6, 5), 1.0)),
        Case("float64 keypoints (keep their dtype)", (torch.rand(2, 2, 2, generator=g).double() * 4, (5, 5), 1.0)),
    ]
    rules = [
        ("x is the COLUMN (the last dimension, W) and y the ROW: compare x with the column indices and y with the "
         "row indices (torch.meshgrid's default indexing='ij' gives rows first).",
         like(lambda k, s, sg: _heatmap_variant(k, s, sg, swap=True))),
        ("Divide the squared distance by 2 sigma², not by sigma²: the Gaussian's standard deviation is sigma.",
         like(lambda k, s, sg: _heatmap_variant(k, s, sg, denominator="sigma²"))),
        ("Square sigma: the denominator is 2 sigma², not 2 sigma.",
         like(lambda k, s, sg: _heatmap_variant(k, s, sg, denominator="2 sigma"))),
        ("Pixel (row i, column j) is centred on (x, y) = (j, i): use torch.arange(W) as it is, not shifted by half "
         "a pixel.", lambda got, want, args: any(like(lambda k, s, sg, d=d: _heatmap_variant(k, s, sg, shift=d))(got, want, args)
                             for d in (0.5, -0.5))),
        ("The target has peak 1 at the keypoint (a map per joint that the network can match pixel by pixel), "
         "not a probability distribution that sums to 1: leave out the normalisation.",
         like(lambda k, s, sg: _heatmap_variant(k, s, sg, sum_one=True))),
        ("Keep the keypoint's sub-pixel position: do not round it to a whole pixel, the map carries the fraction.",
         like(lambda k, s, sg: _heatmap_variant(k, s, sg, rounded=True))),
        ("Use the SQUARED distance (x - j)² + (y - i)² in the exponent, not the distance itself.",
         like(lambda k, s, sg: _heatmap_variant(k, s, sg, plain_distance=True))),
    ]
    return run_checks("Gaussian heatmaps", fn, cases, render_heatmaps, rules,
                      "broadcast the column indices (1, 1, 1, W) against x (B, K, 1, 1) and the row indices "
                      "(1, 1, H, 1) against y; exp(-(dx² + dy²) / (2 sigma²)) is then (B, K, H, W).")


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
