"""Stick figures with known joints, for pose regression (lesson 07), drawn on the device.

A figure is 11 joints joined by 10 bones: a torso (neck to pelvis) with a head, two arms of two segments
and two legs of two segments, at a random position, scale, torso tilt and random joint angles. The joints'
positions are the ground truth, in pixels (pixel (row i, column j) centred on (x, y) = (j, i), as in
:mod:`course_lib.pose.keypoints`). The figure faces the viewer: its left limbs are on the image's right.

``figures(n, g, size, hard=...)``: the clean setting (upright, high contrast, no clutter) or the hard one
(torso tilted up to ±35°, clutter strokes, low and varying contrast, a background level and noise).
``two_figures(n, g, size)``: two overlapping clean figures per image, for grouping joints into people.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.batching import EpochSeeded, to_device

__all__ = ["JOINTS", "SIDES", "BONES", "Figures", "draw_segments", "figures", "FigureBatches", "two_figures",
           "PairBatches"]


JOINTS = ["head", "neck", "pelvis", "left elbow", "left hand", "right elbow", "right hand",
          "left knee", "left foot", "right knee", "right foot"]


SIDES = ["centre", "centre", "centre", "left", "left", "right", "right", "left", "left", "right", "right"]


BONES = [(0, 1), (1, 2), (1, 3), (3, 4), (1, 5), (5, 6), (2, 7), (7, 8), (2, 9), (9, 10)]   # joint index pairs


@dataclass
class Figures:
    """images (N, 1, S, S) in [0, 1]; keypoints (N, 11, 2) (x, y) in pixels, in the order of JOINTS."""
    images: Tensor
    keypoints: Tensor

    def __len__(self) -> int:
        return len(self.images)


def draw_segments(starts: Tensor, ends: Tensor, size: int, width: float | Tensor) -> Tensor:
    """Anti-aliased strokes: starts, ends (N, M, 2) pixel coordinates -> (N, size, size) in [0, 1], the
    brightest of the M strokes at each pixel. A pixel at distance d from a stroke gets
    clamp(width / 2 + 0.5 - d, 0, 1): full inside, a one-pixel ramp at the edge. width: one number, or
    one per image (N,). Differentiable in starts and ends."""
    if isinstance(width, Tensor):
        width = width[:, None]                                                          # (N, 1)
    coords = torch.arange(size, device=starts.device, dtype=starts.dtype)
    px, py = coords.repeat(size), coords.repeat_interleave(size)                        # (P,): x = column, y = row
    ax, ay = starts[..., 0:1], starts[..., 1:2]                                        # (N, M, 1)
    abx, aby = ends[..., 0:1] - ax, ends[..., 1:2] - ay
    dx, dy = px - ax, py - ay                                                          # (N, M, P): a -> pixel
    # the closest point of the segment is a + t ab with t in [0, 1]
    t = ((dx * abx + dy * aby) / (abx * abx + aby * aby).clamp_min(1e-6)).clamp(0, 1)
    dist2 = (dx - t * abx).square() + (dy - t * aby).square()                          # to the closest point
    # the ramp falls with distance and is the same for every stroke of an image: the brightest stroke is the
    # nearest one, so one square root per pixel (0 stays 0 without sqrt: sqrt has no gradient at 0)
    near = dist2.amin(dim=1)                                                            # (N, P)
    d = torch.where(near > 0, near.clamp_min(1e-30).sqrt(), 0.0)
    ink = (width / 2 + 0.5 - d).clamp(0, 1)
    return ink.reshape(-1, size, size)


def _rot(angle: Tensor) -> Tensor:
    """(N,) angles in radians, measured from straight down, counter-clockwise on screen -> (N, 2) unit vectors."""
    return torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1)


def figures(n: int, g: torch.Generator, size: int = 64, hard: bool = False, device: torch.device | str = "cpu",
            place: Tensor | None = None) -> Figures:
    """n stick figures on size x size images, random numbers from ``g`` (CPU), drawn on ``device``.

    The figure's height is 0.55-0.8 of the image and it stays inside the image. hard=True tilts the torso by
    up to ±35°, adds 2-5 clutter strokes, draws the figure at contrast 0.35-1 over a background level
    0-0.25, and adds Gaussian noise (sd 0.08). ``place`` (n, 2) in [0, 1]: where each figure sits in the room
    the image leaves it (0 left / top, 1 right / bottom), instead of at random.
    """
    if n < 1 or size < 16:
        raise ValueError(f"need n >= 1 figures on images of at least 16 px, got n={n}, size={size}")
    u = lambda *shape: torch.rand(*shape, generator=g)
    deg = math.pi / 180
    height = size * (0.55 + 0.25 * u(n))                                                # head top to feet
    torso = height * 0.32
    tilt = (u(n) * 2 - 1) * (35 if hard else 5) * deg                                  # 0 = upright
    up = -_rot(tilt)                                                                     # pelvis -> neck
    pelvis = torch.zeros(n, 2)
    neck = pelvis + torso[:, None] * up
    head = neck + 0.32 * torso[:, None] * -_rot(tilt + (u(n) * 2 - 1) * 15 * deg)

    def limb(root, base_angle, spread, bend, first, second):
        # a two-segment limb from root: first segment at base_angle ± spread, second bent by up to ±bend
        a1 = tilt + base_angle + (u(n) * 2 - 1) * spread
        a2 = a1 + (u(n) * 2 - 1) * bend
        mid = root + (first * torso)[:, None] * _rot(a1)
        return mid, mid + (second * torso)[:, None] * _rot(a2)
    # angles from straight down; a positive angle points to the image's right, where the figure's left is
    l_elbow, l_hand = limb(neck, 60 * deg, 55 * deg, 70 * deg, 0.5, 0.45)
    r_elbow, r_hand = limb(neck, -60 * deg, 55 * deg, 70 * deg, 0.5, 0.45)
    l_knee, l_foot = limb(pelvis, 18 * deg, 18 * deg, 35 * deg, 0.6, 0.55)
    r_knee, r_foot = limb(pelvis, -18 * deg, 18 * deg, 35 * deg, 0.6, 0.55)
    joints = torch.stack([head, neck, pelvis, l_elbow, l_hand, r_elbow, r_hand, l_knee, l_foot, r_knee, r_foot],
                         dim=1)                                                          # (n, 11, 2)
    # place the figure: its bounding box (with a margin for the head) anywhere inside the image
    head_r = 0.55 * 0.32 * torso                                                        # the ring reaches the neck
    lo = joints.amin(1) - head_r[:, None] - 2
    hi = joints.amax(1) + head_r[:, None] + 2
    extent = hi - lo
    scale = torch.clamp((size - 1) / extent.amax(1), max=1.0)                            # shrink if too big
    joints, head_r, lo, extent = joints * scale[:, None, None], head_r * scale, lo * scale[:, None], extent * scale[:, None]
    where = u(n, 2) if place is None else place.clamp(0, 1)
    offset = -lo + where * (size - 1 - extent).clamp_min(0)
    joints = to_device(joints + offset[:, None, :], device)
    head_r = to_device(head_r, device)

    width = to_device((0.09 * torso * scale).clamp(1.5, 3.5), device)              # stroke width, px
    bones = to_device(torch.tensor(BONES), device)
    ink = _draw_figures(joints, bones, width, head_r, size)
    image = _hard_setting(ink, g, size, device) if hard else ink
    return Figures(image.clamp(0, 1)[:, None], joints)


def _hard_setting(ink: Tensor, g: torch.Generator, size: int, device: torch.device | str) -> Tensor:
    """The hard figures' image from their ink (n, S, S): 2-5 clutter strokes, contrast 0.35-1 over a background
    0-0.25, Gaussian noise of sd 0.08 (random numbers from ``g``, on the CPU)."""
    n, k = len(ink), 5
    u = lambda *shape: torch.rand(*shape, generator=g)
    starts = u(n, k, 2) * size
    ends = starts + (u(n, k, 2) * 2 - 1) * size * 0.35
    present = (torch.arange(k)[None, :] < torch.randint(2, k + 1, (n, 1), generator=g)).float()
    keep = present.bool()[..., None]                                                # (n, k, 1)
    far = torch.full_like(starts, -1e4)                                             # absent strokes: no ink
    starts, ends = (to_device(torch.where(keep, p, far), device) for p in (starts, ends))
    clutter = 0.8 * draw_segments(starts, ends, size, 1.5)                          # (n, S, S)
    contrast = to_device(0.35 + 0.65 * u(n), device)[:, None, None]
    background = to_device(0.25 * u(n), device)[:, None, None]
    noise = to_device(torch.randn(n, size, size, generator=g), device) * 0.08
    return background + contrast * torch.maximum(ink, clutter) + noise


def _draw_figures(joints: Tensor, bones: Tensor, width: Tensor, head_r: Tensor, size: int) -> Tensor:
    """The figures' ink (n, S, S): the bones as strokes of each figure's width, the head as a ring."""
    a, b = joints[:, bones[:, 0]].clone(), joints[:, bones[:, 1]]                      # (n, M, 2)
    head, neck = joints[:, 0], joints[:, 1]
    a[:, 0] = head + (neck - head) * (head_r / (neck - head).norm(dim=-1).clamp_min(1e-6))[:, None]  # ring's edge
    strokes = draw_segments(a, b, size, width)                                          # (n, S, S)
    coords = torch.arange(size, device=joints.device, dtype=joints.dtype)
    p = torch.stack(torch.meshgrid(coords, coords, indexing="xy"), dim=-1)              # (S, S, 2)
    ring = ((p[None] - head[:, None, None, :]).norm(dim=-1) - head_r[:, None, None]).abs()   # distance to the circle
    return torch.maximum(strokes, (width[:, None, None] / 2 + 0.5 - ring).clamp(0, 1))


class FigureBatches(EpochSeeded):
    """Batches ``(images, keypoints)`` of fresh figures, ``steps`` per epoch, drawn on ``device``; epoch e always
    draws the same figures (see :class:`course_lib.core.batching.EpochSeeded`), so runs repeat and resume exactly."""

    SEED_STRIDE = 100_003   # this source's (seed, epoch) -> generator rule since lesson 07 was written

    def __init__(self, batch_size: int, steps: int, seed: int = 0, size: int = 64, hard: bool = False,
                 device: torch.device | str = "cpu"):
        if batch_size < 1 or steps < 1:
            raise ValueError(f"batch_size and steps must be positive, got {batch_size} and {steps}")
        self.batch_size, self.steps, self.seed, self.size, self.hard, self.device = (
            batch_size, steps, seed, size, hard, device)
        self.epoch = 0

    def __iter__(self):
        g = self.epoch_generator()
        for _ in range(self.steps):
            f = figures(self.batch_size, g, self.size, self.hard, self.device)
            yield f.images, f.keypoints


# ------------------------------------------------------------------------------------------------ two people
def two_figures(n: int, g: torch.Generator, size: int = 64, device: torch.device | str = "cpu"
                ) -> tuple[Tensor, Tensor]:
    """n images with two clean figures each, side by side and overlapping (the second placed within ±0.35 of the
    room the image leaves of the first's place), for grouping joints into people: images (n, 1, S, S), the
    brighter figure at each pixel; people (n, 2, K, 2), person 0 then 1."""
    first = torch.rand(n, 2, generator=g)
    second = first + (torch.rand(n, 2, generator=g) * 2 - 1) * 0.35
    f = figures(2 * n, g, size, hard=False, device=device, place=torch.stack([first, second], 1).reshape(2 * n, 2))
    return f.images.view(n, 2, size, size).amax(1, keepdim=True), f.keypoints.view(n, 2, len(JOINTS), 2)


class PairBatches(EpochSeeded):
    """Batches ``(images, people)`` of fresh two-figure images (:func:`two_figures`), ``steps`` per epoch, seeded
    per epoch like :class:`FigureBatches`."""

    SEED_STRIDE = 100_019

    def __init__(self, batch_size: int, steps: int, seed: int = 0, size: int = 64, device: torch.device | str = "cpu"):
        if batch_size < 1 or steps < 1:
            raise ValueError(f"batch_size and steps must be positive, got {batch_size} and {steps}")
        self.batch_size, self.steps, self.seed, self.size, self.device = batch_size, steps, seed, size, device
        self.epoch = 0

    def __iter__(self):
        g = self.epoch_generator()
        for _ in range(self.steps):
            yield two_figures(self.batch_size, g, self.size, self.device)
