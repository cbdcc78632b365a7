"""Checkers for lesson 06.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from ..detection.boxes import anchor_labels, box_iou, centre_size, decode_boxes, encode_boxes, nms
from .harness import Case, fallback, has_nan, like, run_checks

__all__ = ["check_box_iou", "check_encode_boxes", "check_anchor_labels", "check_decode_boxes", "check_nms"]


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


# ---------------------------------------------------------------------------------------------- decoding deltas
def _decode_variant(deltas: Tensor, anchors: Tensor, exp: bool = True, corner: bool = False, swap: bool = False,
                    centre_out: bool = False, half: float = 0.5) -> Tensor:
    """Decoding and its usual mistakes: no exp, shift from the corner, w and h swapped, (cx, cy, w, h) out,
    the whole width on each side of the centre."""
    ax, ay, aw, ah = centre_size(anchors)
    if corner:
        ax, ay = anchors[:, 0], anchors[:, 1]
    sx, sy = (ah, aw) if swap else (aw, ah)
    cx, cy = ax + deltas[:, 0] * sx, ay + deltas[:, 1] * sy
    grow = torch.exp if exp else (lambda d: d)
    w, h = aw * grow(deltas[:, 2]), ah * grow(deltas[:, 3])
    if centre_out:
        return torch.stack([cx, cy, w, h], 1)
    return torch.stack([cx - half * w, cy - half * h, cx + half * w, cy + half * h], 1)


@fallback(decode_boxes)
def check_decode_boxes(fn: Callable[[Tensor, Tensor], Tensor]) -> bool:
    """Check ``fn(deltas, anchors) -> boxes``: deltas (N, 4) = (dx, dy, dw, dh) on anchors (N, 4) -> boxes (N, 4)
    as corners (x1, y1, x2, y2): centre (ax + dx aw, ay + dy ah), size (aw exp(dw), ah exp(dh)); the inverse of
    encode_boxes. Gradients must reach the deltas.
    """
    g = torch.Generator().manual_seed(15)
    t = lambda *rows: torch.tensor(rows, dtype=torch.float32)
    xy = torch.rand(6, 2, generator=g) * 40
    anchors = torch.cat([xy, xy + 4 + torch.rand(6, 2, generator=g) * 20], 1)
    gt = anchors + torch.randn(6, 4, generator=g) * 2
    gt[:, 2:] = torch.maximum(gt[:, 2:], gt[:, :2] + 2)
    cases = [
        Case("zero deltas give the anchor back", (t([0, 0, 0, 0]), t([10, 10, 20, 30])), t([10, 10, 20, 30])),
        Case("dx = 0.5 moves the anchor right by half its width", (t([0.5, 0, 0, 0]), t([10, 10, 20, 30])),
             t([15, 10, 25, 30])),
        Case("dx = dy = 0.5 on an anchor 10 wide and 20 tall", (t([0.5, 0.5, 0, 0]), t([0, 0, 10, 20])),
             t([5, 10, 15, 30])),
        Case("dw = log 2, dh = log 0.5: twice as wide, half as tall, same centre",
             (t([0, 0, math.log(2), math.log(0.5)]), t([10, 10, 20, 30])), t([5, 15, 25, 25])),
        Case("the deltas of encode_boxes(gt, anchors) decode to gt", (encode_boxes(gt, anchors), anchors), gt),
        Case("6 random deltas on random anchors", (torch.randn(6, 4, generator=g) * 0.5, anchors), grad="match"),
        Case("no boxes (N = 0)", (torch.zeros(0, 4), torch.zeros(0, 4)), torch.zeros(0, 4)),
    ]
    either = lambda *variants: (lambda got, want, args: any(like(v)(got, want, args) for v in variants))
    rules = [
        ("dw and dh are LOG-ratios: the width is aw * torch.exp(dw), so that dw = 0 keeps the anchor's width.",
         either(lambda d, a: _decode_variant(d, a, exp=False),
                lambda d, a: _decode_variant(torch.cat([d[:, :2], d[:, 2:] - 1], 1), a, exp=False))),
        ("Shift from the anchor's CENTRE, ((x1 + x2) / 2, (y1 + y2) / 2), not from its top-left corner.",
         like(lambda d, a: _decode_variant(d, a, corner=True))),
        ("dx is in anchor WIDTHS and dy in anchor HEIGHTS: cx = ax + dx * aw, cy = ay + dy * ah.",
         like(lambda d, a: _decode_variant(d, a, swap=True))),
        ("Return corners (x1, y1, x2, y2) = (cx − w/2, cy − h/2, cx + w/2, cy + h/2), not (cx, cy, w, h).",
         like(lambda d, a: _decode_variant(d, a, centre_out=True))),
        ("Half the width on each side of the centre: x1 = cx − w / 2, x2 = cx + w / 2.",
         like(lambda d, a: _decode_variant(d, a, half=1.0))),
        ("Sign: cx = ax + dx * aw (a positive dx moves the box right), as encode measures gt minus anchor.",
         like(lambda d, a: _decode_variant(-d, a))),
    ]
    return run_checks("decode boxes", fn, cases, decode_boxes, rules,
                      "anchor centres and sizes first; centre + shift in anchor units, size times exp of the "
                      "log-ratio; then the corners, stacked along dim 1.")


# ---------------------------------------------------------------------------------------------- NMS
def _nms_variant(boxes: Tensor, scores: Tensor, threshold: float, ge: bool = False, sort: bool = True,
                 ties_reversed: bool = False, every_box: bool = False, self_first: bool = False,
                 output: str = "indices") -> Tensor:
    """Greedy NMS and its usual mistakes (see check_nms)."""
    if not sort:
        order = torch.arange(len(scores))
    elif ties_reversed:
        order = torch.sort(scores, stable=True).indices.flip(0)
    else:
        order = torch.sort(scores, descending=True, stable=True).indices
    iou = box_iou(boxes, boxes)
    over = iou >= threshold if ge else iou > threshold
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if self_first:
            suppressed |= over[i]
        if not suppressed[i]:
            keep.append(i)
        if every_box or not suppressed[i]:
            suppressed |= over[i]
    if output == "mask":
        mask = torch.zeros(len(boxes), dtype=torch.bool)
        mask[keep] = True
        return mask
    return torch.tensor(sorted(keep) if output == "sorted" else keep, dtype=torch.long)


def _torchvision_nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    import torchvision
    return torchvision.ops.nms(boxes, scores, iou_threshold)


@fallback(nms)
def check_nms(fn: Callable[[Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(boxes, scores, iou_threshold) -> keep`` against ``torchvision.ops.nms``: boxes (N, 4), scores
    (N,) -> the indices (K,) long of the boxes kept by greedy NMS, highest score first. A box is dropped when a
    KEPT box of higher rank overlaps it by IoU strictly above the threshold. Equal scores: the lower index
    ranks first (torchvision's order). Calling torchvision's or course_lib's nms does not count.
    """
    import torchvision

    g = torch.Generator().manual_seed(16)
    t = lambda *rows: torch.tensor(rows, dtype=torch.float32)
    idx = lambda *v: torch.tensor(v, dtype=torch.long)

    def random_boxes(n: int) -> Tensor:
        xy = torch.rand(n, 2, generator=g) * 40
        return torch.cat([xy, xy + 4 + torch.rand(n, 2, generator=g) * 16], 1)
    cases = [
        Case("box 1 overlaps the better box 0 by IoU 0.82; box 2 is alone",
             (t([0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]), t(0.9, 0.8, 0.7), 0.5), idx(0, 2)),
        Case("three separate boxes scored 0.2, 0.9, 0.5: all kept, best first",
             (t([0, 0, 5, 5], [10, 0, 15, 5], [20, 0, 25, 5]), t(0.2, 0.9, 0.5), 0.5), idx(1, 2, 0)),
        Case("two pairs, the better box of each pair second in the input",
             (t([0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [21, 20, 31, 30]), t(0.3, 0.9, 0.6, 0.8), 0.5),
             idx(1, 3)),
        Case("a chain: 1 overlaps 0 and 2 (IoU 1/3), 0 and 2 do not touch; threshold 0.3",
             (t([0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10]), t(0.9, 0.8, 0.7), 0.3), idx(0, 2)),
        Case("IoU exactly 0.5 at threshold 0.5: not above it, both kept",
             (t([0, 0, 4, 2], [0, 0, 2, 2]), t(0.9, 0.8), 0.5), idx(0, 1)),
        Case("threshold 0: any overlap suppresses, boxes that only touch do not",
             (t([0, 0, 2, 2], [2, 0, 4, 2], [1, 1, 3, 3]), t(0.9, 0.8, 0.7), 0.0), idx(0, 1)),
        Case("equal scores 0.5 and a better box: ties keep the lower index first",
             (t([0, 0, 10, 10], [30, 30, 40, 40], [1, 0, 11, 10], [60, 60, 70, 70]), t(0.5, 0.5, 0.5, 0.7), 0.5),
             idx(3, 0, 1)),
        Case("two identical boxes with equal scores: the first one is kept",
             (t([0, 0, 10, 10], [0, 0, 10, 10]), t(0.5, 0.5), 0.5), idx(0)),
        Case("no boxes (N = 0)", (torch.zeros(0, 4), torch.zeros(0), 0.5), torch.zeros(0, dtype=torch.long)),
        Case("30 random boxes, scores rounded to quarters (many ties), threshold 0.3",
             (random_boxes(30), (torch.rand(30, generator=g) * 4).round() / 4, 0.3)),
        Case("60 random boxes, threshold 0.6", (random_boxes(60), torch.rand(60, generator=g), 0.6)),
    ]
    rules = [
        ("Suppress only IoU strictly ABOVE the threshold (iou > threshold): a box at exactly the threshold stays.",
         like(lambda b, s, th: _nms_variant(b, s, th, ge=True))),
        ("Visit the boxes from the highest score down (torch.sort(scores, descending=True, stable=True)), not in "
         "input order.", like(lambda b, s, th: _nms_variant(b, s, th, sort=False))),
        ("Only a KEPT box suppresses others: a box that was itself suppressed must not remove its neighbours.",
         like(lambda b, s, th: _nms_variant(b, s, th, every_box=True))),
        ("Return the kept INDICES (a long tensor, best first), not a mask over all the boxes.",
         lambda got, want, args: isinstance(got, Tensor) and got.dtype == torch.bool),
        ("Return the indices in the order they were kept (highest score first), not sorted by index.",
         like(lambda b, s, th: _nms_variant(b, s, th, output="sorted"))),
        ("A box has IoU 1 with itself: decide whether box i is kept BEFORE it suppresses its neighbours, or it "
         "suppresses itself.", like(lambda b, s, th: _nms_variant(b, s, th, self_first=True))),
        ("Equal scores: the LOWER index comes first, as in torchvision (a stable descending sort: "
         "torch.sort(scores, descending=True, stable=True)).",
         like(lambda b, s, th: _nms_variant(b, s, th, ties_reversed=True))),
    ]
    return run_checks("NMS", fn, cases, _torchvision_nms, rules,
                      "sort by score (descending, stable); walk that order, keep a box unless a kept box overlaps "
                      "it by IoU > threshold; return the kept indices (torch.long), best first.",
                      library=(nms, torchvision.ops.nms, torchvision.ops.batched_nms))
