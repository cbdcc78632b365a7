"""A tiny single-stage anchor detector on digits-on-a-canvas (lesson 06): the data, the network, the loss and
the inference. The box operations themselves are in :mod:`course_lib.detection.boxes`.

* ``digit_canvases``: 1 to ``max_digits`` MNIST digits at random positions and sizes on a square canvas,
  with tight boxes around their ink and their class, made on the digits' device.
* ``TinyDetector``: a small backbone to a stride-8 feature map; per anchor one objectness logit, class
  logits and 4 box deltas.
* ``match_batch``: :func:`course_lib.detection.boxes.match_anchors` for a whole batch at once (padded gt boxes).
* ``detection_loss``: objectness (binary cross-entropy over non-ignored anchors), class (cross-entropy on
  positive anchors) and box (smooth L1 on the deltas of positive anchors).
* ``detect``: decode, keep scores above a threshold, non-maximum suppression per image.
* ``shared_cells``: which digits share their centre's grid cell with another (one output per cell fails).
* ``detector_build`` and ``failure_canvases``: the lesson's training run and its two hard test sets.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.batching import EpochSeeded, to_device
from ..core.models import fast_layout
from ..core.training import eval_mode
from .boxes import (
    BACKGROUND,
    OBJECT,
    anchor_labels,
    box_iou,
    decode_boxes,
    encode_boxes,
    nms,
)

__all__ = ["INK", "Canvases", "digit_canvases", "CanvasBatches", "TinyDetector", "match_batch", "detection_loss",
           "detection_step", "detect", "shared_cells", "detector_build", "failure_canvases"]


INK = 0.3                                       # a pixel brighter than this belongs to a digit's box


@dataclass
class Canvases:
    """images (N, 1, S, S) in [0, 1]; boxes (N, K, 4) xyxy pixels and labels (N, K), padded with label -1."""
    images: Tensor
    boxes: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.images)

    def targets(self, i: int) -> dict[str, Tensor]:
        """The gt boxes of canvas i without padding: {"boxes": (G, 4), "labels": (G,)}."""
        keep = self.labels[i] >= 0
        return {"boxes": self.boxes[i][keep], "labels": self.labels[i][keep]}

    def all_targets(self) -> list[dict[str, Tensor]]:
        """:meth:`targets` of every canvas: the form the metrics take."""
        return [self.targets(i) for i in range(len(self))]


def digit_canvases(digits: Tensor, labels: Tensor, n: int, g: torch.Generator, canvas: int = 64,
                   max_digits: int = 3, sizes: tuple[float, float] = (14.0, 30.0),
                   layout: str = "quadrants") -> Canvases:
    """n canvases, each with 1 to max_digits digits drawn from digits (N, 1, 28, 28) / labels (N,).

    layout "quadrants" (the training data): the canvas is cut into 2 x 2 quadrants and every digit gets its
    own, so digits never overlap (at most 4 digits). layout "anywhere" (a crowded test): each digit is placed
    anywhere on the canvas, so digits can overlap and cover each other (any number of digits).
    A digit is scaled to a ``sizes`` = (smallest, largest) pixel patch and placed at random. Its box is the
    tight box around its own ink (pixels > 0.3) after placing, so boxes are smaller than the patches.
    Random numbers come from ``g`` (CPU), the images are made on the digits' device.
    """
    if layout not in ("quadrants", "anywhere"):
        raise ValueError(f"layout must be 'quadrants' or 'anywhere', got {layout!r}")
    if max_digits < 1 or (layout == "quadrants" and max_digits > 4):
        raise ValueError(f"max_digits must be 1 to 4 with one digit per quadrant (or use layout='anywhere'), "
                         f"got {max_digits}")
    limit = canvas / 2 if layout == "quadrants" else canvas
    if not 0 < sizes[0] <= sizes[1] <= limit:
        raise ValueError(f"sizes must be (smallest, largest) with 0 < smallest <= largest <= {limit:g} px "
                         f"(the largest digit must fit in {'a quadrant' if layout == 'quadrants' else 'the canvas'}), "
                         f"got {tuple(sizes)}")
    device, k = digits.device, max_digits
    count = torch.randint(1, k + 1, (n,), generator=g)                                   # (n,)
    size = sizes[0] + (sizes[1] - sizes[0]) * torch.rand(n, k, generator=g)              # patch side, px
    if layout == "quadrants":
        quadrant = torch.argsort(torch.rand(n, 4, generator=g), dim=1)[:, :k]            # (n, k) distinct
        origin_x, origin_y, slack = (quadrant % 2) * canvas / 2, (quadrant // 2) * canvas / 2, canvas / 2 - size
    else:
        origin_x = origin_y = torch.zeros(n, k)
        slack = canvas - size
    cx = origin_x + size / 2 + slack * torch.rand(n, k, generator=g)                    # patch centre, px
    cy = origin_y + size / 2 + slack * torch.rand(n, k, generator=g)
    pick = torch.randint(0, len(digits), (n, k), generator=g)
    present = torch.arange(k)[None, :] < count[:, None]                                  # (n, k)
    # canvas point u (normalized) -> digit point v = (canvas / size) (u - c), c the patch centre normalized
    stretch = canvas / size
    theta = torch.zeros(n * k, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = stretch.flatten()
    theta[:, 0, 2] = -stretch.flatten() * (cx.flatten() / canvas * 2 - 1)
    theta[:, 1, 2] = -stretch.flatten() * (cy.flatten() / canvas * 2 - 1)
    # the random draws above are on the CPU (one seeded generator on every device): moved without a host sync
    theta, pick, present = (to_device(t, device) for t in (theta, pick.flatten(), present))
    grid = F.affine_grid(theta, (n * k, 1, canvas, canvas), align_corners=False)
    placed = F.grid_sample(digits[pick], grid, align_corners=False)                      # (n*k, 1, S, S)
    placed = placed.view(n, k, canvas, canvas) * present[:, :, None, None]
    ink = placed > INK
    rows, cols = ink.any(dim=3), ink.any(dim=2)                                           # (n, k, S)
    idx = torch.arange(canvas, device=device, dtype=torch.float32)
    big = float(canvas)
    x1 = torch.where(cols, idx, big).amin(2)
    x2 = torch.where(cols, idx + 1, -big).amax(2)
    y1 = torch.where(rows, idx, big).amin(2)
    y2 = torch.where(rows, idx + 1, -big).amax(2)
    boxes = torch.stack([x1, y1, x2, y2], dim=2)                                          # (n, k, 4)
    has_ink = cols.any(2)
    box_labels = torch.where(present & has_ink, labels.to(device)[pick].view(n, k), -1)
    boxes = torch.where(box_labels[..., None] >= 0, boxes, torch.zeros_like(boxes))
    return Canvases(placed.amax(dim=1, keepdim=True).clamp(0, 1), boxes, box_labels)


class CanvasBatches(EpochSeeded):
    """Batches ``(images, boxes, labels)`` of fresh digit canvases, made on the digits' device.

    Every batch is :func:`digit_canvases` of ``batch_size`` canvases, ``steps`` batches per epoch, from the
    digits (N, 1, 28, 28) / labels (N,). Epoch e always draws the same canvases (a generator seeded by
    (seed, e)), so runs repeat and an interrupted one resumes exactly; ``canvas_options`` go to digit_canvases.
    """

    def __init__(self, digits: Tensor, labels: Tensor, batch_size: int, steps: int, seed: int = 0, **canvas_options):
        if batch_size < 1 or steps < 1:
            raise ValueError(f"batch_size and steps must be positive, got {batch_size} and {steps}")
        if len(digits) != len(labels):
            raise ValueError(f"one label per digit: {len(digits)} digits, {len(labels)} labels")
        self.digits, self.labels, self.batch_size, self.steps, self.seed = digits, labels, batch_size, steps, seed
        self.options = canvas_options
        digit_canvases(digits[:1], labels[:1], 1, torch.Generator(), **canvas_options)     # bad options fail now

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        g = self.epoch_generator()
        for _ in range(self.steps):
            c = digit_canvases(self.digits, self.labels, self.batch_size, g, **self.options)
            yield c.images, c.boxes, c.labels


class TinyDetector(nn.Module):
    """images (B, 1, S, S) in [0, 1] -> (B, H * W * A, 5 + classes): per anchor [objectness logit, dx, dy, dw,
    dh, class logits], anchors in the order of :func:`course_lib.detection.boxes.make_anchors` (cell by cell, row-major).

    Backbone: three 3 x 3 conv + 2 x 2 max-pool blocks of width / 2, width and 2 * width channels, so a stride
    of 8 (a 64 x 64 canvas gives 8 x 8 cells). The first block is narrow because it runs at full resolution:
    it costs most of the time. Two heads read the feature map, each a 3 x 3 conv and a 1 x 1 conv: the box
    head gives A * 5 channels (objectness and deltas: a region proposal network's head), the class head
    A * classes. Separate heads, as in RetinaNet, learn the classes several times faster than one shared head.
    """

    stride = 8

    def __init__(self, anchors_per_cell: int, classes: int = 10, width: int = 32):
        super().__init__()
        if anchors_per_cell < 1 or classes < 1 or width < 2:
            raise ValueError(f"anchors_per_cell, classes and width must be positive (width >= 2), got "
                             f"{anchors_per_cell}, {classes}, {width}")
        self.a, self.classes = anchors_per_cell, classes
        blocks, c_in = [], 1
        for c_out in (width // 2, width, 2 * width):
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.MaxPool2d(2), nn.ReLU()]
            c_in = c_out
        self.backbone = nn.Sequential(*blocks)
        head = lambda out: nn.Sequential(nn.Conv2d(c_in, c_in, 3, padding=1), nn.ReLU(),
                                         nn.Conv2d(c_in, anchors_per_cell * out, 1))
        self.box_head, self.class_head = head(5), head(classes)
        fast_layout(self)                                      # channels-last weights (see fast_layout)

    def forward(self, x: Tensor) -> Tensor:
        features = self.backbone(x - 0.13)                                                # (B, C, H, W)
        b, _, h, w = features.shape
        box = self.box_head(features).view(b, self.a, 5, h, w)                            # objectness, deltas
        cls = self.class_head(features).view(b, self.a, self.classes, h, w)
        out = torch.cat([box, cls], dim=2)                                                # (B, A, 5 + C, H, W)
        return out.permute(0, 3, 4, 1, 2).reshape(b, h * w * self.a, 5 + self.classes)

    def feature_size(self, image_size: int) -> tuple[int, int]:
        side = image_size // self.stride
        return side, side


def match_batch(anchors: Tensor, boxes: Tensor, labels: Tensor, high: float = 0.7, low: float = 0.3,
                allow_low_quality: bool = True) -> tuple[Tensor, Tensor]:
    """:func:`course_lib.detection.boxes.match_anchors` for every image of a batch at once.

    anchors (A, 4); boxes (B, K, 4) and labels (B, K) padded with label -1 -> (anchor labels (B, A), matched
    gt slot (B, A)). An image without gt boxes gets all background.
    """
    valid = labels >= 0                                                                  # (B, K)
    iou = box_iou(boxes, anchors).masked_fill(~valid[:, :, None], -1.0)                  # (B, K, A), -1: no box
    matched = iou.max(dim=1).indices                                                     # (B, A)
    return anchor_labels(iou, high, low, allow_low_quality), matched


def detection_loss(outputs: Tensor, anchors: Tensor, boxes: Tensor, labels: Tensor, high: float = 0.7,
                   low: float = 0.3, allow_low_quality: bool = True) -> tuple[Tensor, dict[str, Tensor]]:
    """The three terms of a single-stage anchor detector; outputs (B, A, 5 + C) from TinyDetector.

    * objectness: binary cross-entropy over every non-ignored anchor, positives weighted so that they count
      as much as the (far more numerous) negatives of the batch;
    * class: cross-entropy of the matched gt's class, on positive anchors;
    * box: smooth L1 between predicted deltas and the matched gt encoded on its anchor, on positive anchors.
    Returns (sum of the three, {"objectness", "class", "box", "positives": anchors per image}).
    """
    anchor_labels, matched = match_batch(anchors, boxes, labels, high, low, allow_low_quality)   # (B, A)
    pos, neg = anchor_labels == OBJECT, anchor_labels == BACKGROUND
    n_pos, n_neg = pos.sum().clamp_min(1), neg.sum().clamp_min(1)
    weight = pos.float() * (n_neg / n_pos) + neg.float()                                  # ignored: 0
    objectness = F.binary_cross_entropy_with_logits(outputs[..., 0], pos.float(), weight=weight,
                                                    reduction="sum") / (2 * n_neg)
    gt_boxes = torch.gather(boxes, 1, matched[..., None].expand(-1, -1, 4))               # (B, A, 4)
    gt_class = torch.gather(labels, 1, matched)                                           # (B, A)
    a = anchors.expand(len(outputs), -1, -1)
    target = encode_boxes(gt_boxes[pos], a[pos]) if pos.any() else outputs.new_zeros(0, 4)
    box = F.smooth_l1_loss(outputs[..., 1:5][pos], target, beta=1 / 9, reduction="sum") / n_pos
    cls = F.cross_entropy(outputs[..., 5:][pos], gt_class[pos], reduction="sum") / n_pos
    return objectness + cls + box, {"objectness": objectness.detach(), "class": cls.detach(), "box": box.detach(),
                                    "positives": pos.sum() / len(outputs)}


def detection_step(anchors: Tensor, high: float = 0.7, low: float = 0.3, allow_low_quality: bool = True
                   ) -> Callable[[nn.Module, tuple[Tensor, Tensor, Tensor]], tuple[Tensor, dict[str, Tensor]]]:
    """A step for ``fit`` on CanvasBatches: :func:`detection_loss` of the model's outputs, with its three terms
    and the number of positive anchors per image recorded in the history."""
    def step(model: nn.Module, batch: tuple[Tensor, Tensor, Tensor]):
        images, boxes, labels = batch
        return detection_loss(model(images), anchors, boxes, labels, high, low, allow_low_quality)
    return step


@torch.no_grad()
def detect(model: TinyDetector, images: Tensor, anchors: Tensor, score_threshold: float = 0.5,
           iou_threshold: float = 0.3, class_agnostic: bool = False, top_k: int = 100,
           max_detections: int = 20, decode: Callable[[Tensor, Tensor], Tensor] = decode_boxes,
           suppress: Callable[[Tensor, Tensor, float], Tensor] = nms) -> list[dict[str, Tensor]]:
    """Detections per image: {"boxes" (D, 4), "scores" (D,), "labels" (D,)} after decoding, a score threshold
    (score = sigmoid(objectness) * class probability) and non-maximum suppression, highest score first.
    As in torchvision's detectors, only the ``top_k`` best-scoring anchors of an image go into NMS and at
    most ``max_detections`` boxes come out (a canvas holds a handful of digits).

    class_agnostic=True: proposals, as a region proposal network makes them: score = sigmoid(objectness)
    alone and label 0 for every box (score them against targets whose labels are all 0).
    ``decode`` (deltas, anchors) -> boxes and ``suppress`` (boxes, scores, iou_threshold) -> kept indices are
    course_lib's decode_boxes and nms unless you pass your own (the exercises of the lesson).
    """
    with eval_mode(model):
        out = model(images)
    if class_agnostic:
        scores = torch.sigmoid(out[..., 0])
        classes = torch.zeros_like(scores, dtype=torch.long)
    else:
        probs = torch.sigmoid(out[..., 0])[..., None] * out[..., 5:].softmax(-1)          # (B, A, C)
        scores, classes = probs.max(-1)
    results = []
    if top_k < 1 or max_detections < 1:
        raise ValueError(f"top_k and max_detections must be positive, got {top_k} and {max_detections}")
    best = scores.topk(min(top_k, scores.shape[1]), dim=1).indices                       # (B, k) per image
    for i in range(len(images)):
        keep = best[i][scores[i, best[i]] > score_threshold]
        boxes = decode(out[i, keep, 1:5], anchors[keep])
        order = suppress(boxes, scores[i, keep], iou_threshold)[:max_detections]
        results.append({"boxes": boxes[order], "scores": scores[i, keep][order], "labels": classes[i, keep][order]})
    return results


def shared_cells(boxes: Tensor, labels: Tensor, stride: float) -> Tensor:
    """Which gt boxes share their centre's grid cell with another box of the same image.

    boxes (B, K, 4) and labels (B, K), padded with label -1 (as in :class:`Canvases`) -> (B, K) bool: True
    where the centre of box k lies in the same ``stride`` x ``stride`` cell as the centre of another real box
    of image b. A detector with one output per cell (the lecture's grid before anchors) can report only one
    of them.

    >>> boxes = torch.tensor([[[0.0, 0, 6, 6], [4, 2, 8, 8], [20, 20, 30, 30]]])
    >>> shared_cells(boxes, torch.tensor([[3, 5, 1]]), stride=8).tolist()
    [[True, True, False]]
    """
    if boxes.dim() != 3 or boxes.shape[-1] != 4 or labels.shape != boxes.shape[:2]:
        raise ValueError(f"boxes must be (B, K, 4) and labels (B, K), got {tuple(boxes.shape)} and "
                         f"{tuple(labels.shape)}: pass a Canvases' .boxes and .labels")
    if stride <= 0:
        raise ValueError(f"stride must be positive (pixels per cell), got {stride}")
    col = torch.floor((boxes[..., 0] + boxes[..., 2]) / 2 / stride)                     # (B, K) centre's cell
    row = torch.floor((boxes[..., 1] + boxes[..., 3]) / 2 / stride)
    real = labels >= 0
    same = (col[:, :, None] == col[:, None, :]) & (row[:, :, None] == row[:, None, :])  # (B, K, K)
    same &= real[:, :, None] & real[:, None, :]
    same &= ~torch.eye(boxes.shape[1], dtype=torch.bool, device=boxes.device)           # not with itself
    return same.any(dim=2)


def detector_build(digits: Tensor, labels: Tensor, anchors: Tensor, batch_size: int, steps: int,
                   anchors_per_cell: int, allow_low_quality: bool = True, high: float = 0.7, low: float = 0.3
                   ) -> Callable[[int], tuple[nn.Module, CanvasBatches, Callable]]:
    """The lesson's training run, as ``build(seed) -> (model, batches, step)`` for
    :func:`course_lib.experiments.train_run`: a fresh :class:`TinyDetector` on the digits' device, fresh
    :class:`CanvasBatches` of the digits (N, 1, 28, 28) seeded with ``seed``, and :func:`detection_step` with
    the matching rule (high, low, allow_low_quality) on ``anchors`` (A, 4)."""
    step = detection_step(anchors, high=high, low=low, allow_low_quality=allow_low_quality)

    def build(seed: int):
        model = TinyDetector(anchors_per_cell).to(digits.device)
        return model, CanvasBatches(digits, labels, batch_size, steps, seed=seed), step
    return build


def failure_canvases(digits: Tensor, labels: Tensor, n: int, seed: int = 7) -> dict[str, Canvases]:
    """Two hard test sets of n canvases each from the digits (N, 1, 28, 28): "small digits" (8-12 pixel
    patches, smaller than the training digits and every anchor) and "crowded digits" (up to 6 digits anywhere
    on the canvas, so they overlap and touch). Seeded: the same digits give the same canvases."""
    return {"small digits": digit_canvases(digits, labels, n, torch.Generator().manual_seed(seed), sizes=(8, 12)),
            "crowded digits": digit_canvases(digits, labels, n, torch.Generator().manual_seed(seed + 1),
                                             max_digits=6, layout="anywhere")}
