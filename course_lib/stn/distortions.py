"""Distorted MNIST (Jaderberg et al., NIPS 2015, section 4.1), generated on the fly on the digits' device.

* ``R``:   rotated by a random angle in [-90°, 90°], 28 x 28.
* ``RTS``: rotated in [-45°, 45°], scaled by 0.7 to 1.2 and placed at a random position in a
           42 x 42 canvas.
* ``P``:   a random projective warp: scaled by 0.75 to 1, then each corner moved by Gaussian noise
           (sd 0.1 in normalized units), 28 x 28.

Every distortion is one ``grid_sample`` from the clean 28 x 28 digit, whose background is 0: the
area outside the digit reads 0 too (``padding_mode="zeros"``), so distort *before* any normalization.
The truth of each distortion is kept: angle (degrees, counter-clockwise on screen), scale, position
(cx, cy) of the digit's centre in the canvas's normalized coordinates, and theta (B, 2, 3), the
sampling grid canvas -> digit.
"""
from __future__ import annotations

import math
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from ..core.batching import EpochSeeded, to_device
from ..core.checks import check_labels
from .geometry import affine_theta, homography_grid, pixels_to_normalized, warp

__all__ = ["KINDS", "CANVAS", "distort", "distorted_test_set", "DistortedBatches", "moved"]


KINDS = ("R", "RTS", "P")


CANVAS = {"R": 28, "RTS": 42, "P": 28}           # output size of each kind


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def distort(digits: Tensor, kind: str, g: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
    """Distort a batch of digits (B, 1, 28, 28) in [0, 1]. -> images (B, 1, S, S), truth {name: (B,) or theta}.

    The random numbers come from ``g`` (a CPU generator), so the same generator state gives the same
    images on every device.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown distortion {kind!r}: choose one of {KINDS} (rotation; rotation, "
                         "translation and scale; projective)")
    if digits.dim() != 4 or digits.shape[1:] != (1, 28, 28):
        raise ValueError(f"digits must be (B, 1, 28, 28) MNIST images, got shape {tuple(digits.shape)}")
    n, size = len(digits), CANVAS[kind]
    zeros = torch.zeros(n)
    if kind == "P":
        scale = _uniform(n, 0.75, 1.0, g)
        corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])      # (4, 2)
        moved = corners * scale[:, None, None] + 0.1 * torch.randn(n, 4, 2, generator=g)  # (B, 4, 2)
        h = _homography(moved, corners.expand(n, 4, 2))      # canvas point -> digit point
        grid = homography_grid(to_device(h.to(digits.dtype), digits.device), (size, size))
        images = F.grid_sample(digits, grid, padding_mode="zeros", align_corners=False)
        return images, {"angle": zeros, "scale": scale, "cx": zeros, "cy": zeros, "homography": h}
    if kind == "R":
        angle, scale, cx, cy = _uniform(n, -90, 90, g), torch.ones(n), zeros, zeros
    else:
        angle, scale = _uniform(n, -45, 45, g), _uniform(n, 0.7, 1.2, g)
        cx, cy = _uniform(n, -0.25, 0.25, g), _uniform(n, -0.25, 0.25, g)
    # Canvas point u -> digit point v = A (u - c): the grid turns against the content (angle -> -angle)
    # and is size/28 / scale times the digit's frame.
    stretch = size / 28 / scale
    theta = affine_theta(-angle, stretch)                                                  # (B, 2, 3)
    centre = torch.stack([cx, cy], dim=1)[:, :, None]                                      # (B, 2, 1)
    theta[:, :, 2:] = -theta[:, :, :2] @ centre
    grid = F.affine_grid(to_device(theta.to(digits.dtype), digits.device), (n, 1, size, size), align_corners=False)
    images = F.grid_sample(digits, grid, padding_mode="zeros", align_corners=False)
    return images, {"angle": angle, "scale": scale, "cx": cx, "cy": cy, "theta": theta}


def _homography(src: Tensor, dst: Tensor) -> Tensor:
    """(B, 3, 3) h with h @ (src, 1) ~ (dst, 1) for 4 point pairs src, dst (B, 4, 2): the direct linear
    transform with h[2, 2] = 1, one 8 x 8 solve per image."""
    x, y = src[..., 0], src[..., 1]
    u, v = dst[..., 0], dst[..., 1]
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rows_u = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], dim=-1)            # (B, 4, 8)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], dim=-1)
    a = torch.cat([rows_u, rows_v], dim=1)                                                 # (B, 8, 8)
    b = torch.cat([u, v], dim=1)                                                           # (B, 8)
    h = torch.linalg.solve(a.double(), b.double()).float()
    return torch.cat([h, torch.ones(len(h), 1)], dim=1).view(-1, 3, 3)


def distorted_test_set(digits: Tensor, labels: Tensor, kind: str, seed: int = 0
                       ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """A fixed distorted copy of a test set: the same ``seed`` always gives the same images."""
    check_labels(labels, len(digits))
    images, truth = distort(digits, kind, torch.Generator().manual_seed(seed))
    return images, labels, truth


class DistortedBatches(EpochSeeded):
    """Batches ``(images, labels)`` of digits distorted afresh every epoch, made on the digits' device.

    digits (N, 1, 28, 28) in [0, 1], labels (N,). Epoch e always draws the same order and the same
    distortions (a generator seeded by (seed, e)), so runs repeat and an interrupted one resumes exactly.
    """

    def __init__(self, digits: Tensor, labels: Tensor, kind: str, batch_size: int, seed: int = 0):
        check_labels(labels, len(digits))
        if kind not in KINDS:
            raise ValueError(f"unknown distortion {kind!r}: choose one of {KINDS}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.digits, self.labels, self.kind, self.batch_size, self.seed = digits, labels, kind, batch_size, seed
        self.steps = -(-len(labels) // batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        g = self.epoch_generator()
        order = to_device(torch.randperm(len(self.labels), generator=g), self.labels.device)
        for b in range(self.steps):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            images, _ = distort(self.digits[idx], self.kind, g)
            yield images, self.labels[idx]


def moved(digits: Tensor, shift: float = 0.0, angle: float = 0.0, seed: int = 0) -> Tensor:
    """Images (B, 1, H, W) in [0, 1], each turned by ``angle`` degrees about its centre (one way or the other,
    at random) and moved by ``shift`` pixels in a random direction -> (B, 1, H, W), 0 where the image came from
    outside. One ``warp``; the same ``seed`` gives the same directions, so a sweep over ``shift`` or ``angle``
    changes only the size of the move: how far a classifier's tolerance reaches.
    """
    if digits.dim() != 4:
        raise ValueError(f"digits must be (B, 1, H, W), got shape {tuple(digits.shape)}")
    g = torch.Generator().manual_seed(seed)
    n, (h, w) = len(digits), digits.shape[-2:]
    direction = 2 * math.pi * torch.rand(n, generator=g)                                  # (B,) radians
    sense = (2 * torch.randint(0, 2, (n,), generator=g) - 1).float()                      # (B,) +1 or -1
    tx = -pixels_to_normalized(shift, w) * torch.cos(direction)                          # the grid moves against
    ty = -pixels_to_normalized(shift, h) * torch.sin(direction)                          # the image
    theta = affine_theta(sense * angle, 1.0, tx, ty)                                      # (B, 2, 3)
    return warp(digits, to_device(theta.to(digits.dtype), digits.device))
