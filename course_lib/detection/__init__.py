"""Lesson 06: detection with anchor boxes. Box operations, the tiny detector and its data, VOC average precision.
"""
from .boxes import (BACKGROUND, IGNORED, OBJECT, DELTA_CLIP, box_area, box_iou, nms, make_anchors, centre_size,
                   encode_boxes, decode_boxes, match_anchors, anchor_labels, anchor_coverage, own_object_anchors)
from .detector import (INK, Canvases, digit_canvases, CanvasBatches, TinyDetector, match_batch, detection_loss,
                      detection_step, detect, shared_cells, detector_build, failure_canvases)
from .metrics import detection_pr, detection_map, match_detections, missed_fraction, detection_scores

__all__ = [
    "BACKGROUND", "IGNORED", "OBJECT", "DELTA_CLIP", "box_area", "box_iou", "nms", "make_anchors", "centre_size",
    "encode_boxes", "decode_boxes", "match_anchors", "anchor_labels", "INK", "Canvases", "digit_canvases",
    "CanvasBatches", "TinyDetector", "match_batch", "detection_loss", "detection_step", "detect", "detection_pr",
    "detection_map", "match_detections", "shared_cells", "detector_build", "failure_canvases", "detection_scores",
    "anchor_coverage", "own_object_anchors", "missed_fraction",
]
