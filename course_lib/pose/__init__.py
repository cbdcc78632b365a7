"""Lesson 07: heatmap pose regression. Stick figures, heatmaps and soft-argmax, the pose networks and PCK.
"""
from .figures import JOINTS, SIDES, BONES, Figures, draw_segments, figures, FigureBatches
from .keypoints import render_heatmaps, heatmap_argmax, soft_argmax2d, rescale, mean_error, pck, render_paf, paf_score
from .model import HEADS, PoseNet, predict_keypoints, pose_loss, pose_step

__all__ = [
    "JOINTS", "SIDES", "BONES", "Figures", "draw_segments", "figures", "FigureBatches", "render_heatmaps",
    "heatmap_argmax", "soft_argmax2d", "rescale", "mean_error", "pck", "render_paf", "paf_score", "HEADS",
    "PoseNet", "predict_keypoints", "pose_loss", "pose_step",
]
