"""Checkers for lesson 07.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from ..pose.keypoints import heatmap_target, image_to_heatmap, pck, render_heatmaps, soft_argmax2d
from .harness import Case, fallback, like, run_checks

__all__ = ["check_heatmap_target", "check_soft_argmax", "check_pck"]


def _heatmap_variant(keypoints: Tensor, stride: int, size: tuple[int, int], sigma: float, mapping: str = "right",
                     swap: bool = False, denominator: str = "2 sigma²", shift: float = 0.0, rounded: bool = False,
                     sum_one: bool = False, plain_distance: bool = False, sigma_in_image: bool = False) -> Tensor:
    """Gaussian targets and their usual mistakes: the image -> map mapping (``mapping``: "right", "no offset",
    "stride / 2", "plus offset", "half pixel", "not divided", "rescale"), rows and columns swapped, a wrong
    denominator, map pixel centres shifted by ``shift``, keypoints rounded, maps normalised to sum 1, the
    distance not squared, sigma taken as image pixels."""
    s, h, w = stride, *size
    kp = {"right": lambda k: (k - (s - 1) / 2) / s, "no offset": lambda k: k / s,
          "stride / 2": lambda k: (k - s / 2) / s, "plus offset": lambda k: (k + (s - 1) / 2) / s,
          "half pixel": lambda k: (k - 0.5) / s, "not divided": lambda k: k - (s - 1) / 2,
          "rescale": lambda k: k * s + (s - 1) / 2}[mapping](keypoints)
    kp = kp.round() if rounded else kp
    sigma = sigma / s if sigma_in_image else sigma
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


def _variant(**mistake) -> Callable:
    return like(lambda k, st, sz, sg: _heatmap_variant(k, st, sz, sg, **mistake))


def _heatmap_target_cases() -> list[Case]:
    """The cases of :func:`check_heatmap_target`: hand-worked maps at strides 1, 2 and 4, then random ones."""
    g = torch.Generator().manual_seed(17)
    e = math.exp
    t = lambda rows: torch.tensor(rows, dtype=torch.float32)[None, None]
    cases = [
        Case("stride 1 (map = image): a keypoint on pixel (1, 1) of a 3 x 3 map, sigma 1",
             (torch.tensor([[[1.0, 1.0]]]), 1, (3, 3), 1.0),
             t([[e(-1), e(-0.5), e(-1)], [e(-0.5), 1, e(-0.5)], [e(-1), e(-0.5), e(-1)]])),
        Case("stride 4: image point (x, y) = (5.5, 1.5) is the centre of map pixel (row 0, column 1); 2 x 3 map, "
             "sigma 1", (torch.tensor([[[5.5, 1.5]]]), 4, (2, 3), 1.0),
             t([[e(-0.5), 1, e(-0.5)], [e(-1), e(-0.5), e(-1)]])),
        Case("stride 2: image point (0.5, 2.5) is the centre of map pixel (row 1, column 0); H = 2 rows, W = 4 "
             "columns, sigma 0.5 (x is the column)", (torch.tensor([[[0.5, 2.5]]]), 2, (2, 4), 0.5),
             t([[e(-2), e(-4), e(-10), e(-20)], [1, e(-2), e(-8), e(-18)]])),
        Case("random image keypoints, stride 4, B = 2, K = 3, on 5 x 7 maps, sigma 1.3",
             (torch.rand(2, 3, 2, generator=g) * torch.tensor([28.0, 20.0]), 4, (5, 7), 1.3), grad="match"),
        Case("the lesson's sizes: B = 3, K = 11, 64 x 64 images, stride 4, 16 x 16 maps, sigma 2",
             (torch.rand(3, 11, 2, generator=g) * 63, 4, (16, 16), 2.0), grad="match"),
        Case("an odd stride, 3: B = 2, K = 2 on 6 x 6 maps, sigma 1",
             (torch.rand(2, 2, 2, generator=g) * 17, 3, (6, 6), 1.0)),
        Case("keypoints outside the image (x = -8, y = 30 with stride 4 on 4 x 4): only the Gaussian's tail shows",
             (torch.tensor([[[-8.0, 30.0], [20.0, -4.0]]]), 4, (4, 4), 1.5)),
        Case("an empty batch: keypoints (0, 4, 2)", (torch.zeros(0, 4, 2), 4, (6, 5), 1.0)),
        Case("float64 keypoints (keep their dtype)", (torch.rand(2, 2, 2, generator=g).double() * 16, 4, (5, 5), 1.0)),
    ]
    return cases


def _heatmap_target_rules() -> list[tuple[str, Callable]]:
    """The named mistakes of :func:`check_heatmap_target`, the image -> map mapping first."""
    rules = [
        ("Map pixel j is centred on image pixel j * stride + (stride - 1) / 2, not on j * stride: undo that "
         "offset before dividing by the stride.", _variant(mapping="no offset")),
        ("Image pixels have centres too: map pixel j covers image pixels j * stride ... (j + 1) * stride - 1, so "
         "its centre is (stride - 1) / 2 past j * stride, not stride / 2.", _variant(mapping="stride / 2")),
        ("The offset goes the other way: map pixel 0 is centred on image pixel (stride - 1) / 2, so subtract it "
         "from the image coordinate before dividing.", _variant(mapping="plus offset")),
        ("The offset is (stride - 1) / 2 image pixels, not half a pixel: where is the centre of image pixels "
         "0 ... stride - 1?", _variant(mapping="half pixel")),
        ("Divide by the stride too: one map pixel is ``stride`` image pixels wide.", _variant(mapping="not divided")),
        ("That is the way back (map -> image, course_lib's rescale); you need image -> map.",
         _variant(mapping="rescale")),
        ("sigma is given in MAP pixels, like the grid you compare with: use it as it is.",
         _variant(sigma_in_image=True)),
        ("x is the COLUMN (the last dimension, W) and y the ROW: compare x with the column indices and y with the "
         "row indices (torch.meshgrid's default indexing='ij' gives rows first).", _variant(swap=True)),
        ("Divide the squared distance by 2 sigma², not by sigma²: the Gaussian's standard deviation is sigma.",
         _variant(denominator="sigma²")),
        ("Square sigma: the denominator is 2 sigma², not 2 sigma.", _variant(denominator="2 sigma")),
        ("Map pixel (row i, column j) is centred on (x, y) = (j, i) in map pixels: use torch.arange(W) as it is, "
         "not shifted by half a pixel.", lambda got, want, args: any(_variant(shift=d)(got, want, args)
                                                                      for d in (0.5, -0.5))),
        ("The target has peak 1 at the keypoint (a map per joint that the network can match pixel by pixel), "
         "not a probability distribution that sums to 1: leave out the normalisation.", _variant(sum_one=True)),
        ("Keep the keypoint's sub-pixel position: do not round it to a whole pixel, the map carries the fraction.",
         _variant(rounded=True)),
        ("Use the SQUARED distance (x - j)² + (y - i)² in the exponent, not the distance itself.",
         _variant(plain_distance=True)),
    ]
    return rules


@fallback(heatmap_target)
def check_heatmap_target(fn: Callable[[Tensor, int, tuple[int, int], float], Tensor]) -> bool:
    """Check ``fn(keypoints, stride, size, sigma) -> maps``: keypoints (B, K, 2) (x, y) in IMAGE pixels, a map of
    ``stride`` image pixels per map pixel and size (H, W) -> (B, K, H, W), a Gaussian of peak 1 and width sigma
    (map pixels) at each keypoint's position on the map, exp(-||p - k||² / (2 sigma²)), where p = (j, i) is the
    centre of map pixel (row i, column j) and k the keypoint in map pixels.
    """
    cases, rules = _heatmap_target_cases(), _heatmap_target_rules()
    return run_checks("Gaussian heatmap targets", fn, cases, heatmap_target, rules,
                      "first take the keypoints from image pixels to map pixels (where is map pixel j's centre in "
                      "the image?), then a Gaussian on the map's grid; broadcast, no loop.",
                      library=(render_heatmaps, image_to_heatmap))


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
                      "one softmax over the H * W pixels of each map, then the expected column and row; (B, K, 2), "
                      "x first.")


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
