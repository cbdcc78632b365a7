"""Lesson 07: heatmap pose regression. Stick figures, heatmaps and soft-argmax, the pose networks and PCK, and
part affinity fields that group the joints of two figures.
"""
from .figures import JOINTS, SIDES, BONES, Figures, draw_segments, figures, FigureBatches, two_figures, PairBatches
from .keypoints import (render_heatmaps, image_to_heatmap, heatmap_target, heatmap_argmax, soft_argmax2d, rescale,
                        mean_error, pck, render_paf, paf_score, limb_fields, limb_scores, pair_two)
from .model import (HEADS, backbone, PoseNet, predict_keypoints, equivariance_error, pose_loss, pose_step, PafNet,
                    paf_step)

__all__ = [
    "JOINTS", "SIDES", "BONES", "Figures", "draw_segments", "figures", "FigureBatches", "render_heatmaps",
    "heatmap_argmax", "soft_argmax2d", "rescale", "mean_error", "pck", "render_paf", "paf_score", "HEADS",
    "PoseNet", "predict_keypoints", "pose_loss", "pose_step", "two_figures", "PairBatches", "limb_fields",
    "limb_scores", "pair_two", "backbone", "PafNet", "paf_step", "image_to_heatmap", "heatmap_target",
    "equivariance_error",
]
