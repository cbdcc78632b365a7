"""Detection metrics: the PASCAL VOC average precision per class, and which detections hit which boxes.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .boxes import box_iou
from .detector import Canvases, detect

__all__ = ["detection_pr", "detection_map", "match_detections", "missed_fraction", "detection_scores"]


def detection_pr(predictions: list[dict], targets: list[dict], label: int, iou_threshold: float = 0.5
                 ) -> tuple[Tensor, Tensor, float]:
    """Precision-recall curve and average precision of one class, VOC style, over a set of images.

    predictions: one dict per image with "boxes" (P, 4), "scores" (P,), "labels" (P,);
    targets: one dict per image with "boxes" (G, 4), "labels" (G,).
    All detections of the class, from all images, are sorted by score. Going down the list, a detection is
    a true positive if its best-overlapping unmatched gt box of the class (same image) has IoU >= the
    threshold (that gt box is then used up), else a false positive: a second detection of the same object
    is a false positive. AP is the area under the precision-recall curve after making precision
    non-increasing (VOC 2010+ "all points"). Returns (precision (D,), recall (D,), AP); AP = nan when the
    class has no gt box.
    """

    if len(predictions) != len(targets):
        raise ValueError(f"one prediction dict per image: {len(predictions)} predictions, {len(targets)} targets")
    n_gt = sum(int((t["labels"] == label).sum()) for t in targets)
    found, ious = [], []                                                # (score, image, row) per detection
    for i, (p, t) in enumerate(zip(predictions, targets)):
        keep = p["labels"].cpu() == label
        boxes, gts = p["boxes"].cpu()[keep].float(), t["boxes"].cpu()[t["labels"].cpu() == label].float()
        ious.append(box_iou(boxes, gts).tolist())                       # (P_i, G_i) once per image
        found += [(sc, i, r) for r, sc in enumerate(p["scores"].cpu()[keep].tolist())]
    found.sort(key=lambda d: -d[0])                                     # stable: ties keep image order
    used = [[False] * int((t["labels"] == label).sum()) for t in targets]
    tp = torch.zeros(len(found))
    for k, (_, i, r) in enumerate(found):
        # the best-overlapping gt box of the class not found yet (each gt box counts once)
        free = [(v, j) for j, v in enumerate(ious[i][r]) if not used[i][j]]
        if free:
            v, j = max(free, key=lambda f: (f[0], -f[1]))
            if v >= iou_threshold:
                tp[k], used[i][j] = 1, True
    if n_gt == 0:
        return torch.zeros(0), torch.zeros(0), float("nan")
    hits = tp.cumsum(0)
    precision = hits / torch.arange(1, len(found) + 1)
    recall = hits / n_gt
    if len(found) == 0:
        return precision, recall, 0.0
    envelope = precision.flip(0).cummax(0).values.flip(0)                # best precision at this recall or more
    steps = torch.cat([recall[:1], recall[1:] - recall[:-1]])           # recall gained at each detection
    return precision, recall, float((envelope * steps).sum())


def detection_map(predictions: list[dict], targets: list[dict], num_classes: int, iou_threshold: float = 0.5
                  ) -> dict:
    """mAP@iou_threshold: the mean of :func:`detection_pr`'s AP over the classes that have gt boxes.
    Returns {"mAP": float, "AP": {class: AP}}."""
    aps = {c: detection_pr(predictions, targets, c, iou_threshold)[2] for c in range(num_classes)}
    present = {c: ap for c, ap in aps.items() if ap == ap}             # drop nan: classes without gt
    if not present:
        raise ValueError("no ground-truth boxes in targets: mAP is undefined")
    return {"mAP": sum(present.values()) / len(present), "AP": present}


def match_detections(prediction: dict, target: dict, iou_threshold: float = 0.5) -> tuple[Tensor, Tensor]:
    """Which detections of ONE image are right, and which gt boxes were found, by the rule of detection_pr.

    prediction {"boxes" (P, 4), "scores" (P,), "labels" (P,)}, target {"boxes" (G, 4), "labels" (G,)} ->
    (hit (P,) bool, found (G,) bool). Highest score first, a detection hits the unmatched gt box of its
    class that it overlaps most if that IoU >= iou_threshold; every gt box is found at most once.
    """

    boxes, scores, labels = prediction["boxes"].float().cpu(), prediction["scores"].cpu(), prediction["labels"].cpu()
    gt_boxes, gt_labels = target["boxes"].float().cpu(), target["labels"].cpu()
    hit = torch.zeros(len(boxes), dtype=torch.bool)
    found = torch.zeros(len(gt_boxes), dtype=torch.bool)
    if len(boxes) == 0 or len(gt_boxes) == 0:
        return hit, found
    iou = box_iou(boxes, gt_boxes)                                      # (P, G)
    for k in torch.sort(scores, descending=True, stable=True).indices.tolist():
        candidates = torch.where((gt_labels == labels[k]) & ~found, iou[k], torch.full_like(iou[k], -1.0))
        j = int(candidates.argmax())
        if candidates[j] >= iou_threshold:
            hit[k], found[j] = True, True
    return hit, found


def missed_fraction(predictions: list[dict], targets: list[dict], iou_threshold: float = 0.5) -> float:
    """Share of all gt boxes, over the images, that no detection finds by the rule of :func:`match_detections`
    (right class, IoU >= iou_threshold, each detection finds one box). One dict per image, as detection_pr.

    >>> target = {"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]), "labels": torch.tensor([3, 5])}
    >>> found = {"boxes": torch.tensor([[0.0, 0, 10, 9], [20, 20, 30, 30]]), "scores": torch.tensor([0.9, 0.8]),
    ...          "labels": torch.tensor([3, 4])}                       # the second box has the wrong digit
    >>> missed_fraction([found], [target])
    0.5
    """
    if len(predictions) != len(targets):
        raise ValueError(f"one prediction dict per image: {len(predictions)} predictions, {len(targets)} targets")
    n_gt = sum(len(t["boxes"]) for t in targets)
    if n_gt == 0:
        raise ValueError("no gt boxes in targets: the share missed is undefined")
    missed = sum(int((~match_detections(p, t, iou_threshold)[1]).sum()) for p, t in zip(predictions, targets))
    return missed / n_gt


def detection_scores(model, canvases: Canvases, anchors: Tensor, score_threshold: float = 0.05,
                     iou_threshold: float = 0.3) -> dict[str, float]:
    """The lesson's two test scores of a detector on ``canvases``, both from 0 to 1:

    * "mAP@0.5": :func:`detection_map` over the 10 digits of the detections above a low score, after NMS;
    * "proposal AP": the AP of the boxes alone, ranked by objectness, every digit counted as one class
      "digit": what a region proposal network would hand on, localisation without classification.
    """
    targets = canvases.all_targets()
    found = detect(model, canvases.images, anchors, score_threshold, iou_threshold)
    proposals = detect(model, canvases.images, anchors, score_threshold, iou_threshold, class_agnostic=True)
    any_digit = [{"boxes": t["boxes"], "labels": torch.zeros_like(t["labels"])} for t in targets]
    return {"mAP@0.5": detection_map(found, targets, num_classes=10)["mAP"],
            "proposal AP": detection_map(proposals, any_digit, num_classes=1)["mAP"]}
