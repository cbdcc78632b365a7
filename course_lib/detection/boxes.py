"""Boxes for detection with anchors, written to be read: IoU, non-maximum suppression, anchors on a feature
grid, the Faster R-CNN box deltas, the matching of anchors to ground-truth boxes, and how well anchors cover
the boxes (``anchor_coverage``, ``own_object_anchors``).

Every box is ``(x1, y1, x2, y2)`` in pixels, x to the right and y down, with x1 <= x2 and y1 <= y2: the
corners of the box, so its width is x2 - x1 (no "+ 1": pixel coordinates are continuous here, as in
torchvision). A box with x1 == x2 or y1 == y2 is allowed and has area 0.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["BACKGROUND", "IGNORED", "OBJECT", "DELTA_CLIP", "box_area", "box_iou", "nms", "make_anchors",
           "centre_size", "encode_boxes", "decode_boxes", "match_anchors", "anchor_labels", "anchor_coverage",
           "own_object_anchors"]


BACKGROUND, IGNORED, OBJECT = 0, -1, 1                 # anchor labels returned by match_anchors


DELTA_CLIP = math.log(1000.0 / 16)                     # largest dw, dh decoded (torchvision's bbox_xform_clip)


def _check_boxes(boxes: Tensor, name: str = "boxes", batched: bool = False) -> None:
    """(N, 4) boxes: shape and corners checked. With ``batched``, (B, ..., N, 4) is allowed too and checked for
    shape only (padding rows need not be boxes, and reading the values back would make the GPU wait at every
    training step)."""
    if not isinstance(boxes, Tensor) or boxes.shape[-1:] != (4,) or not (boxes.dim() == 2 or batched and boxes.dim() > 2):
        shape = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
        batch = " (or a batch of them, (B, N, 4))" if batched else ""
        raise ValueError(f"{name} must be an (N, 4) tensor of (x1, y1, x2, y2){batch}, got {shape}")
    if boxes.dim() == 2 and len(boxes) and ((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any():
        bad = int(((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).nonzero()[0])
        raise ValueError(f"{name}[{bad}] = {boxes[bad].tolist()} has x2 < x1 or y2 < y1: boxes are (x1, y1, x2, y2) "
                         "corners; convert (x, y, w, h) boxes with x2 = x + w, y2 = y + h")


def box_area(boxes: Tensor) -> Tensor:
    """(..., N, 4) -> (..., N): (x2 - x1) * (y2 - y1)."""
    _check_boxes(boxes, batched=True)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Intersection over union of every box of a (N, 4) with every box of b (M, 4) -> (N, M).

    IoU = area(a ∩ b) / area(a ∪ b), in [0, 1]. Two boxes of area 0 have union 0: their IoU is 0.
    Leading batch dimensions broadcast: a (B, N, 4) with b (M, 4) -> (B, N, M), e.g. every image's gt boxes
    with the anchors (see ``_check_boxes`` for what is checked then).

    Two 2 x 2 boxes that share a 1 x 2 strip: 2 / (4 + 4 - 2); a box far away: 0.

    >>> box_iou(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[1.0, 0.0, 3.0, 2.0], [5.0, 5.0, 6.0, 6.0]]))
    tensor([[0.3333, 0.0000]])
    """
    _check_boxes(a, "a", batched=True)
    _check_boxes(b, "b", batched=True)
    top_left = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])   # (..., N, M, 2)
    bottom_right = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    wh = (bottom_right - top_left).clamp_min(0)                          # no overlap -> 0
    inter = wh[..., 0] * wh[..., 1]                                      # (..., N, M)
    union = box_area(a)[..., :, None] + box_area(b)[..., None, :] - inter
    return torch.where(union > 0, inter / union.clamp_min(1e-12), torch.zeros_like(inter))


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression. boxes (N, 4), scores (N,) -> kept indices (K,), highest score first.

    Take the highest-scoring box left, keep it, drop every remaining box whose IoU with it is strictly
    above ``iou_threshold``; repeat. Equal scores keep their input order, the lower index first (a stable
    sort), as ``torchvision.ops.nms`` does: the same boxes and scores give the same indices.

    Box 1 overlaps the best box 0 by IoU 0.82 and is dropped; box 2 overlaps nothing:

    >>> boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 0.0, 11.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    >>> nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    tensor([0, 2])
    """
    _check_boxes(boxes)
    if scores.dim() != 1 or len(scores) != len(boxes):
        raise ValueError(f"scores must be (N,) with one score per box: {len(boxes)} boxes, shape {tuple(scores.shape)}")
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = box_iou(boxes, boxes)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return torch.tensor(keep, dtype=torch.long, device=boxes.device)


def make_anchors(feature_size: tuple[int, int], stride: float, sizes: Sequence[float], ratios: Sequence[float],
                 device: torch.device | str | None = None) -> Tensor:
    """Anchors of a feature map of ``feature_size`` = (H, W) cells, each cell ``stride`` pixels wide.

    Every cell (i, j) gets A = len(sizes) * len(ratios) anchors centred on the cell's centre
    ((j + 0.5) * stride, (i + 0.5) * stride). An anchor of size s and aspect ratio r = h / w has area s²:
    w = s / sqrt(r), h = s * sqrt(r). Returns (H * W * A, 4), cell by cell in row-major order, and within a
    cell sizes outer, ratios inner: anchor k of cell (i, j) is row (i * W + j) * A + k.
    """
    h, w = feature_size
    if h < 1 or w < 1 or stride <= 0:
        raise ValueError(f"feature_size must be positive and stride > 0, got {feature_size} and {stride}")
    if not sizes or not ratios or min(sizes) <= 0 or min(ratios) <= 0:
        raise ValueError(f"sizes and ratios must be non-empty and positive, got {list(sizes)} and {list(ratios)}")
    s = torch.tensor([float(v) for v in sizes], device=device)[:, None]               # (S, 1)
    r = torch.tensor([float(v) for v in ratios], device=device)[None, :]              # (1, R)
    half_w = (s / r.sqrt() / 2).flatten()                                              # (A,)
    half_h = (s * r.sqrt() / 2).flatten()
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * stride
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")                                     # (H, W)
    cx, cy = cx.reshape(-1, 1), cy.reshape(-1, 1)                                      # (H*W, 1)
    anchors = torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=-1)  # (H*W, A, 4)
    return anchors.reshape(-1, 4)


def centre_size(boxes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Corners (N, 4) -> centre x, centre y, width, height, each (N,): the form the box deltas use."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h, w, h


def encode_boxes(gt: Tensor, anchors: Tensor, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0)) -> Tensor:
    """Box deltas of gt (N, 4) relative to anchors (N, 4), one gt per anchor -> (N, 4) = (dx, dy, dw, dh):

        dx = wx (gx - ax) / aw,   dy = wy (gy - ay) / ah,   dw = ww log(gw / aw),   dh = wh log(gh / ah),

    with (gx, gy), (ax, ay) the box centres and gw, aw ... their widths and heights (Faster R-CNN).
    The shift is measured in anchor widths and the size as a log-ratio, so the same numbers mean the same
    thing for a small anchor and a large one.
    """
    _check_boxes(gt, "gt")
    _check_boxes(anchors, "anchors")
    if gt.shape != anchors.shape:
        raise ValueError(f"encode one gt box per anchor: got {len(gt)} gt boxes and {len(anchors)} anchors")
    gx, gy, gw, gh = centre_size(gt)
    ax, ay, aw, ah = centre_size(anchors)
    if (aw <= 0).any() or (ah <= 0).any() or (gw <= 0).any() or (gh <= 0).any():
        raise ValueError("boxes of width or height 0 have no log-size: encode only boxes with positive area")
    wx, wy, ww, wh = weights
    return torch.stack([wx * (gx - ax) / aw, wy * (gy - ay) / ah, ww * torch.log(gw / aw), wh * torch.log(gh / ah)],
                       dim=1)


def decode_boxes(deltas: Tensor, anchors: Tensor, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0)) -> Tensor:
    """The inverse of :func:`encode_boxes`: deltas (N, 4) on anchors (N, 4) -> boxes (N, 4).

    dw and dh are clipped at log(1000 / 16) before the exponential, as torchvision does, so that a wild
    prediction early in training cannot overflow.
    """
    _check_boxes(anchors, "anchors")
    if deltas.shape != anchors.shape:
        raise ValueError(f"one (dx, dy, dw, dh) per anchor: got deltas {tuple(deltas.shape)}, anchors {tuple(anchors.shape)}")
    ax, ay, aw, ah = centre_size(anchors)
    wx, wy, ww, wh = weights
    cx, cy = ax + deltas[:, 0] / wx * aw, ay + deltas[:, 1] / wy * ah
    w = aw * torch.exp((deltas[:, 2] / ww).clamp(max=DELTA_CLIP))
    h = ah * torch.exp((deltas[:, 3] / wh).clamp(max=DELTA_CLIP))
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=1)


def match_anchors(anchors: Tensor, gt_boxes: Tensor, high: float = 0.7, low: float = 0.3,
                  allow_low_quality: bool = True) -> tuple[Tensor, Tensor]:
    """Label every anchor (A, 4) against the ground-truth boxes (G, 4) -> (labels (A,), matched (A,)).

    With each anchor's best IoU over the gt boxes:
    * IoU >= high: ``OBJECT`` (1), matched to that gt box;
    * IoU < low: ``BACKGROUND`` (0);
    * in between: ``IGNORED`` (-1): too unsure to teach either way.
    ``allow_low_quality``: an anchor that is the best anchor of some gt box (ties included, IoU > 0) is an
    object even below ``high``, so that a box no anchor overlaps well still gets one (Faster R-CNN's rule).
    ``matched`` is the index of the anchor's best gt box (use it where labels == OBJECT), -1 without gt boxes.
    As torchvision's ``Matcher(high, low, allow_low_quality_matches)``, except that a gt box whose best IoU is
    0 does not make every anchor an object.
    """
    _check_boxes(anchors, "anchors")
    _check_boxes(gt_boxes, "gt_boxes")
    if not 0 <= low <= high <= 1:
        raise ValueError(f"thresholds must satisfy 0 <= low <= high <= 1, got low={low}, high={high}")
    n = len(anchors)
    if len(gt_boxes) == 0:                                             # nothing to find: all background
        return (torch.full((n,), BACKGROUND, dtype=torch.long, device=anchors.device),
                torch.full((n,), -1, dtype=torch.long, device=anchors.device))
    iou = box_iou(gt_boxes, anchors)                                   # (G, A)
    return anchor_labels(iou, high, low, allow_low_quality), iou.argmax(dim=0)


def anchor_labels(iou: Tensor, high: float = 0.7, low: float = 0.3, allow_low_quality: bool = True) -> Tensor:
    """The matching rule on an IoU matrix: iou (G, A) of G gt boxes with A anchors -> labels (A,) long.

    OBJECT (1) where an anchor's best IoU is >= high, BACKGROUND (0) where it is < low, IGNORED (-1) in
    between; with ``allow_low_quality``, also OBJECT for the best anchor(s) of every gt box whose best IoU is
    above 0. No gt boxes (G = 0): every anchor is background.
    A batch (B, G, A) -> (B, A) follows the same rule image by image; a row of -1 (a padding slot, no box)
    counts as no box.
    """
    if iou.dim() < 2:
        raise ValueError(f"iou must be (G, A): one row per gt box, one column per anchor; got {tuple(iou.shape)}")
    if iou.shape[-2] == 0:
        return torch.full(iou.shape[:-2] + iou.shape[-1:], BACKGROUND, dtype=torch.long, device=iou.device)
    best = iou.max(dim=-2).values                                      # (..., A) each anchor's best gt
    labels = torch.full(best.shape, IGNORED, dtype=torch.long, device=iou.device)
    labels[best < low] = BACKGROUND
    labels[best >= high] = OBJECT
    if allow_low_quality:
        best_of_gt = iou.max(dim=-1, keepdim=True).values              # (..., G, 1) each gt's best anchor
        is_best = (iou == best_of_gt) & (best_of_gt > 0)               # (..., G, A)
        labels[is_best.any(dim=-2)] = OBJECT
    return labels


# --- how well the anchors cover the gt boxes

def anchor_coverage(boxes: Tensor, anchors: Tensor, thresholds: Sequence[float] = (0.5, 0.7)) -> dict[float, float]:
    """Share of the gt boxes (G, 4) whose best anchor (A, 4) reaches each IoU threshold: {threshold: share}.

    A box whose best IoU stays below the object threshold (0.7) is an object at no anchor unless the
    best-anchor rule gives it one. The second box below overlaps the anchor by 32 / 64 = 0.5:

    >>> anchor_coverage(torch.tensor([[0.0, 0, 8, 8], [0, 0, 4, 8]]), torch.tensor([[0.0, 0, 8, 8]]))
    {0.5: 1.0, 0.7: 0.5}
    """
    _check_boxes(boxes, "boxes")
    if len(boxes) == 0:
        raise ValueError("no gt boxes: the coverage of an empty set is undefined")
    best = box_iou(boxes, anchors).max(dim=1).values                    # (G,) each box's best anchor
    return {t: float((best >= t).float().mean()) for t in thresholds}


def own_object_anchors(boxes: Tensor, labels: Tensor, anchors: Tensor,
                       match: Callable[[Tensor], Tensor] = anchor_labels,
                       iou: Callable[[Tensor, Tensor], Tensor] = box_iou) -> Tensor:
    """Which gt boxes have an object anchor of their own: an anchor labelled OBJECT whose best gt box is this one.

    boxes (B, K, 4) and labels (B, K), padded with label -1 (as in ``Canvases``); anchors (A, 4) -> (B, K)
    bool, False on padding. ``match`` turns an IoU matrix (G, A) into anchor labels (A,) (default
    :func:`anchor_labels` at 0.7 / 0.3 with the best-anchor rule); ``iou`` (G, 4), (A, 4) -> (G, A).
    Pass your own of both to measure your matching rule. Two digits in one grid cell are both found only
    if each has such an anchor. Two equal boxes tie for every anchor, which goes to the first:

    >>> anchors = make_anchors((2, 2), 8, sizes=[8], ratios=[1])          # four 8 x 8 anchors
    >>> boxes = torch.tensor([[[0.0, 0, 8, 8], [0, 0, 8, 8], [8, 8, 16, 16]]])
    >>> own_object_anchors(boxes, torch.tensor([[1, 2, 3]]), anchors).tolist()
    [[True, False, True]]
    """
    if boxes.dim() != 3 or boxes.shape[-1] != 4 or labels.shape != boxes.shape[:2]:
        raise ValueError(f"boxes must be (B, K, 4) and labels (B, K), got {tuple(boxes.shape)} and "
                         f"{tuple(labels.shape)}: pass a Canvases' .boxes and .labels")
    own = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    for b in range(len(boxes)):
        real = (labels[b] >= 0).nonzero()[:, 0]                         # (G,) the slots that hold a box
        if len(real) == 0:
            continue
        overlap = iou(boxes[b, real], anchors)                          # (G, A)
        objects = match(overlap) == OBJECT                              # (A,)
        own[b, real[overlap.argmax(dim=0)[objects]]] = True             # each object anchor's best gt box
    return own
