"""Checkers for lesson 06.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from ..detection.boxes import anchor_labels, box_iou, centre_size, encode_boxes
from .harness import Case, fallback, has_nan, like, run_checks

__all__ = ["check_box_iou", "check_encode_boxes", "check_anchor_labels"]


def _iou_variant(a: Tensor, b: Tensor, plus_one: float = 0.0, clamp: bool = True, denominator: str = "union") -> Tensor:
    """IoU and its usual mistakes: +1 in widths, no clamp of negative overlaps, another denominator."""
    tl = torch.maximum(a[:, None, :2], b[None, :, :2])
    br = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = br - tl + plus_one
    wh = wh.clamp_min(0) if clamp else wh
    inter = wh[..., 0] * wh[..., 1]
    area_a = ((a[:, 2] - a[:, 0] + plus_one) * (a[:, 3] - a[:, 1] + plus_one))[:, None]
    area_b = ((b[:, 2] - b[:, 0] + plus_one) * (b[:, 3] - b[:, 1] + plus_one))[None, :]
    denom = {"union": area_a + area_b - inter, "sum": area_a + area_b, "min": torch.minimum(area_a, area_b),
             "a": area_a.expand_as(inter)}[denominator]
    return torch.where(denom > 0, inter / denom.clamp_min(1e-12), torch.zeros_like(inter))


@fallback(box_iou)
def check_box_iou(fn: Callable[[Tensor, Tensor], Tensor]) -> bool:
    """Check ``fn(a, b) -> iou``: boxes a (N, 4) and b (M, 4) as (x1, y1, x2, y2) -> (N, M),
    area(a ∩ b) / area(a ∪ b), widths x2 − x1 (no + 1), and 0 (not NaN) where the union has area 0.
    """
    g = torch.Generator().manual_seed(12)
    t = lambda *rows: torch.tensor(rows, dtype=torch.float32)
    xy = torch.rand(6, 2, generator=g) * 20
    rand = torch.cat([xy, xy + 1 + torch.rand(6, 2, generator=g) * 10], 1)
    cases = [
        Case("the same box twice", (t([0, 0, 4, 2]), t([0, 0, 4, 2])), t([1.0])),
        Case("half overlap: [0, 0, 2, 2] and [1, 0, 3, 2] (overlap 2, union 6)", (t([0, 0, 2, 2]), t([1, 0, 3, 2])),
              t([1 / 3])),
        Case("a box inside another: [0, 0, 4, 4] and [1, 1, 3, 3]", (t([0, 0, 4, 4]), t([1, 1, 3, 3])), t([0.25])),
        Case("boxes far apart: [0, 0, 2, 2] and [5, 5, 7, 7]", (t([0, 0, 2, 2]), t([5, 5, 7, 7])), t([0.0])),
        Case("boxes that touch at an edge: [0, 0, 2, 2] and [2, 0, 4, 2]", (t([0, 0, 2, 2]), t([2, 0, 4, 2])),
              t([0.0])),
        Case("two boxes of area 0", (t([1, 1, 1, 3]), t([1, 1, 1, 3])), t([0.0])),
        Case("4 random boxes against 2 (N != M)", (rand[:4], rand[4:])),
    ]
    rules = [
        ("Widths are x2 − x1 here, with no + 1: coordinates are continuous (the convention of torchvision).",
         like(lambda a, b: _iou_variant(a, b, plus_one=1.0))),
        ("Boxes that do not overlap have a NEGATIVE width or height of overlap: clamp each at 0 "
         "(.clamp_min(0)) before multiplying, or two negatives make a positive area.",
         like(lambda a, b: _iou_variant(a, b, clamp=False))),
        ("The union counts the overlap once: area(a) + area(b) − intersection.",
         like(lambda a, b: _iou_variant(a, b, denominator="sum"))),
        ("Divide by the UNION, not by the smaller box's area.", like(lambda a, b: _iou_variant(a, b, denominator="min"))),
        ("Divide by the union of both boxes, not by the area of a alone.",
         like(lambda a, b: _iou_variant(a, b, denominator="a"))),
        ("0 / 0 is NaN: where the union is 0 return 0, e.g. torch.where(union > 0, inter / union.clamp_min(1e-12), 0).",
         has_nan),
        ("Compare every box of a with every box of b: a[:, None, :2] against b[None, :, :2] gives (N, M, 2).",
         lambda got, expected, args: got.shape != expected.shape),
    ]
    return run_checks("box IoU", fn, cases, box_iou, rules,
                      "overlap: max of the top-left corners, min of the bottom-right ones, width and height clamped at 0; "
                      "IoU = overlap / (area a + area b − overlap).")


@fallback(encode_boxes)
def check_encode_boxes(fn: Callable[[Tensor, Tensor], Tensor]) -> bool:
    """Check ``fn(gt, anchors) -> deltas``: gt (N, 4) and anchors (N, 4), one gt per anchor -> (N, 4) =
    (dx, dy, dw, dh) = ((gx − ax) / aw, (gy − ay) / ah, log(gw / aw), log(gh / ah)) with centres and sizes.
    """
    g = torch.Generator().manual_seed(13)
    t = lambda *rows: torch.tensor(rows, dtype=torch.float32)
    xy = torch.rand(5, 2, generator=g) * 40
    gt = torch.cat([xy, xy + 4 + torch.rand(5, 2, generator=g) * 20], 1)
    anchors = gt + torch.randn(5, 4, generator=g) * 2
    anchors[:, 2:] = torch.maximum(anchors[:, 2:], anchors[:, :2] + 2)

    def variant(gt, a, size="anchor", log=True, corners=False, swap=False):
        gx, gy, gw, gh = centre_size(gt)
        ax, ay, aw, ah = centre_size(a)
        if corners:
            gx, gy, ax, ay = gt[:, 0], gt[:, 1], a[:, 0], a[:, 1]
        sw, sh = (aw, ah) if size == "anchor" else (gw, gh)
        if swap:
            sw, sh = sh, sw
        f = torch.log if log else (lambda r: r)
        return torch.stack([(gx - ax) / sw, (gy - ay) / sh, f(gw / aw), f(gh / ah)], 1)
    cases = [
        Case("gt equal to its anchor: nothing to change", (t([10, 10, 20, 30]), t([10, 10, 20, 30])), t([0, 0, 0, 0])),
        Case("gt moved right by half the anchor's width", (t([15, 10, 25, 30]), t([10, 10, 20, 30])),
              t([0.5, 0, 0, 0])),
        Case("gt twice as wide and half as tall, same centre", (t([5, 15, 25, 25]), t([10, 10, 20, 30])),
              t([0, 0, math.log(2), math.log(0.5)])),
        Case("5 random pairs", (gt, anchors)),
    ]
    rules = [
        ("Measure the shift in ANCHOR widths and heights: (gx − ax) / aw, not / gw.",
         like(lambda gt, a: variant(gt, a, size="gt"))),
        ("dw and dh are log-ratios: torch.log(gw / aw). A plain ratio would make 'no change' 1 instead of 0.",
         like(lambda gt, a: variant(gt, a, log=False))),
        ("Use the box CENTRES, (x1 + x2) / 2, for dx and dy, not the top-left corners.",
         like(lambda gt, a: variant(gt, a, corners=True))),
        ("dx is divided by the anchor's width and dy by its height, not the other way round.",
         like(lambda gt, a: variant(gt, a, swap=True))),
        ("Sign: gt minus anchor, (gx − ax), and log(gw / aw), so that a positive dx moves the anchor right.",
         like(lambda gt, a: -encode_boxes(gt, a))),
    ]
    return run_checks("encode boxes", fn, cases, encode_boxes, rules,
                      "centres and sizes first (cx = (x1 + x2) / 2, w = x2 − x1), then "
                      "[(gx − ax) / aw, (gy − ay) / ah, log(gw / aw), log(gh / ah)] stacked along dim 1.")


@fallback(anchor_labels)
def check_anchor_labels(fn: Callable[[Tensor, float, float], Tensor]) -> bool:
    """Check ``fn(iou, high, low) -> labels``: iou (G, A) between G gt boxes and A anchors -> (A,) long:
    1 (object) where the anchor's best IoU >= high, 0 (background) where < low, -1 (ignored) in between, and
    1 for the best anchor(s) of every gt box (ties included) whose best IoU is above 0. No gt: all 0.
    """
    g = torch.Generator().manual_seed(14)
    t = lambda *rows: torch.tensor(rows, dtype=torch.float32)
    rand = torch.rand(3, 12, generator=g) * 0.8
    cases = [
        Case("one gt, anchors at IoU 0.8, 0.5, 0.1", (t([0.8, 0.5, 0.1]), 0.7, 0.3), torch.tensor([1, -1, 0])),
        Case("exactly on the thresholds: 0.7 is an object, 0.3 is ignored", (t([0.7, 0.3, 0.29, 0.9]), 0.7, 0.3),
              torch.tensor([1, -1, 0, 1])),
        Case("a small gt whose best anchor has IoU 0.4: that anchor is its object",
              (t([0.9, 0.2, 0.0, 0.0], [0.0, 0.1, 0.4, 0.25]), 0.7, 0.3), torch.tensor([1, 0, 1, 0])),
        Case("two anchors tie as a gt's best (0.5): both are objects", (t([0.5, 0.5, 0.2]), 0.7, 0.3),
              torch.tensor([1, 1, 0])),
        Case("a gt that overlaps no anchor (best IoU 0) makes no anchor an object",
              (t([0.8, 0.1, 0.0], [0.0, 0.0, 0.0]), 0.7, 0.3), torch.tensor([1, 0, 0])),
        Case("no gt boxes at all (G = 0): every anchor is background", (torch.zeros(0, 4), 0.7, 0.3),
              torch.tensor([0, 0, 0, 0])),
        Case("3 gt boxes and 12 anchors, thresholds 0.6 / 0.4", (rand, 0.6, 0.4)),
    ]
    rules = [
        ("Each gt box must get its best anchor, even below `high`: find the largest IoU of each ROW "
         "(iou.max(dim=1)) and label the anchors that reach it 1.",
         like(lambda iou, h, l: anchor_labels(iou, h, l, allow_low_quality=False))),
        ("IoU equal to `high` is an object (>= high); equal to `low` is ignored (background is < low).",
         lambda got, expected, args: (got != expected).any() and bool(((args[0] == args[1]) | (args[0] == args[2])).any())),
        ("The best anchor of a gt box is the largest IoU along its ROW (dim=1, over anchors), not along a column.",
         like(lambda iou, h, l: _labels_best_per_anchor(iou, h, l))),
        ("A gt box with best IoU 0 overlaps no anchor: every anchor 'ties' at 0, so require best > 0 "
         "before making its best anchors objects.",
         like(lambda iou, h, l: _labels_zero_best(iou, h, l))),
    ]
    return run_checks("anchor labels", fn, cases, anchor_labels, rules,
                      "best = iou.max(dim=0).values per anchor; labels -1 everywhere, 0 where best < low, 1 where "
                      "best >= high; then 1 where iou equals its row's maximum (and that maximum > 0). G = 0: all 0.")


def _labels_best_per_anchor(iou: Tensor, high: float, low: float) -> Tensor:
    labels = anchor_labels(iou, high, low, allow_low_quality=False)
    if len(iou):
        best = iou.max(dim=0, keepdim=True).values
        labels[((iou == best) & (best > 0)).any(dim=0)] = 1
    return labels


def _labels_zero_best(iou: Tensor, high: float, low: float) -> Tensor:
    labels = anchor_labels(iou, high, low, allow_low_quality=False)
    if len(iou):
        labels[(iou == iou.max(dim=1, keepdim=True).values).any(dim=0)] = 1
    return labels
