"""Lesson 05: Spatial Transformer Networks. Sampling-grid geometry, distorted MNIST and the STN itself.
"""
from .distortions import KINDS, CANVAS, distort, distorted_test_set, DistortedBatches, moved
from .geometry import (affine_theta, theta_parts, compose, pixels_to_normalized, normalized_to_pixels,
                      sampling_points, warp, homography_grid, bilinear_weights)
from .models import STN, SpatialTransformer, ProjectiveTransformer, localization_net, predicted_theta

__all__ = [
    "KINDS", "CANVAS", "distort", "distorted_test_set", "DistortedBatches", "moved", "affine_theta", "theta_parts",
    "compose", "pixels_to_normalized", "normalized_to_pixels", "sampling_points", "warp", "homography_grid",
    "bilinear_weights", "STN", "SpatialTransformer", "ProjectiveTransformer", "localization_net",
    "predicted_theta",
]
