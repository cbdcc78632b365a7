"""Three ways to regress keypoints on one backbone (lesson 07): direct coordinates, heatmaps with argmax,
and integral regression (soft-argmax), with their losses and a training step for ``fit``.

The backbone has stride 4: a 64 x 64 image gives a 16 x 16 x 64 feature map. The heads:

* ``"pool"``: direct regression through global average pooling and a linear layer: 2K numbers.
* ``"flat"``: direct regression through a linear layer on the flattened feature map.
* ``"heatmap"``: a 1 x 1 conv to K maps of 16 x 16, trained towards Gaussians (mean squared error) and
  decoded with argmax: whole map pixels, so 4-pixel steps in the image.
* ``"integral"``: the same K maps, decoded with :func:`course_lib.pose.keypoints.soft_argmax2d` and trained
  with an L1 loss on the coordinates themselves.

``pose_step(coord_loss="l1" or "l2")`` trains the direct and integral heads with either loss. ``PafNet``: the
same backbone predicting OpenPose's part affinity fields, trained by ``paf_step``.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.models import fast_layout
from ..core.training import eval_mode
from .figures import BONES
from .keypoints import heatmap_argmax, heatmap_target, image_to_heatmap, limb_fields, rescale, soft_argmax2d

__all__ = ["HEADS", "backbone", "PoseNet", "predict_keypoints", "equivariance_error", "pose_loss", "pose_step", "PafNet",
           "paf_step"]


HEADS = ("pool", "flat", "heatmap", "integral")


def backbone(width: int = 32) -> nn.Sequential:
    """The pose networks' CNN: images (B, 1, S, S) -> features (B, 2 width, S / 4, S / 4), stride 4 (two 2 x 2
    max-pools), four 3 x 3 conv layers with batch norm and ReLU."""
    block = lambda i, o, pool=False: [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o),    # pool before ReLU:
                                      *([nn.MaxPool2d(2)] if pool else []), nn.ReLU()]   # the same, ReLU on 1/4
    return nn.Sequential(*block(1, width // 2, pool=True), *block(width // 2, width, pool=True),
                         *block(width, 2 * width), *block(2 * width, 2 * width))


class PoseNet(nn.Module):
    """images (B, 1, S, S) -> the head's raw output: (B, K, 2) coordinates in image pixels for "pool" and
    "flat", (B, K, S / 4, S / 4) maps for "heatmap" and "integral". Use :func:`predict_keypoints` for
    (B, K, 2) pixels from any head."""

    stride = 4

    def __init__(self, head: str, joints: int, image_size: int = 64, width: int = 32):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}: choose one of {HEADS}")
        if image_size % self.stride:
            raise ValueError(f"image_size must be a multiple of {self.stride}, got {image_size}")
        self.head_name, self.joints, self.image_size = head, joints, image_size
        self.backbone = backbone(width)
        c, side = 2 * width, image_size // self.stride
        if head == "pool":
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 2 * joints))
        elif head == "flat":
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * side * side, 2 * joints))
        else:
            self.head = nn.Conv2d(c, joints, 1)
        fast_layout(self)

    def forward(self, x: Tensor) -> Tensor:
        out = self.head(self.backbone(x - 0.2))
        if self.head_name in ("pool", "flat"):                    # predict around the centre, in units of half the image
            half = self.image_size / 2
            return out.view(len(x), self.joints, 2) * half + (half - 0.5)
        return out


def predict_keypoints(model: PoseNet, images: Tensor, beta: float = 1.0) -> Tensor:
    """(B, K, 2) keypoints in image pixels from any head: direct heads as they are, heatmaps by argmax,
    integral maps by soft-argmax; map coordinates are taken back to the image with :func:`rescale`.
    Runs in eval mode without gradients (:func:`course_lib.core.eval_mode`)."""
    with eval_mode(model):
        out = model(images)
    if model.head_name == "heatmap":
        return rescale(heatmap_argmax(out), model.stride)
    if model.head_name == "integral":
        return rescale(soft_argmax2d(out, beta), model.stride)
    return out


def equivariance_error(model: PoseNet, images: Tensor, keypoints: Tensor, shift: tuple[int, int], margin: int = 4
                       ) -> float:
    """How far a model's answer fails to follow a shifted input: images (N, 1, S, S) with their true keypoints
    (N, K, 2) in image pixels, ``shift`` (dx, dy) whole pixels ->

        mean over the kept figures and their joints of || pred(roll(x, shift)) - (pred(x) + shift) ||  (pixels),

    0 for a perfectly translation-equivariant model. ``torch.roll`` wraps the image around, so only figures whose
    joints stay at least ``margin`` pixels inside the image after the shift are kept."""
    _, _, h, w = images.shape
    dx, dy = shift
    moved_kp = keypoints + torch.tensor([dx, dy], dtype=keypoints.dtype, device=keypoints.device)   # (N, K, 2)
    inside = (moved_kp >= margin) & (moved_kp <= torch.tensor([w - 1 - margin, h - 1 - margin],
                                                              dtype=keypoints.dtype, device=keypoints.device))
    keep = inside.all(dim=-1).all(dim=-1)                                              # (N,)
    if not keep.any():
        raise ValueError(f"no figure keeps its joints {margin} px inside the image after the shift {shift}")
    before = predict_keypoints(model, images[keep])                                   # (N', K, 2)
    after = predict_keypoints(model, torch.roll(images[keep], shifts=(dy, dx), dims=(2, 3)))
    return (after - before - torch.tensor([dx, dy], dtype=before.dtype, device=before.device)
            ).norm(dim=-1).mean().item()


def pose_loss(model: PoseNet, out: Tensor, keypoints: Tensor, sigma: float = 1.0, coord_loss: str | None = None
              ) -> Tensor:
    """The loss of each head, keypoints (B, K, 2) in image pixels, coordinates compared in map pixels:
    direct heads: mean squared error of the coordinates (L2); heatmap: squared error against Gaussians of
    ``sigma`` map pixels, summed over each map's pixels and averaged over maps; integral: mean absolute error
    (L1) of the soft-argmax coordinates. ``coord_loss`` "l1" or "l2" overrides the coordinate loss of the
    direct and integral heads."""
    if coord_loss not in (None, "l1", "l2"):
        raise ValueError(f"coord_loss must be None, 'l1' or 'l2', got {coord_loss!r}")
    s = model.stride
    target = image_to_heatmap(keypoints, s)                         # image pixels -> map pixels
    if model.head_name == "heatmap":
        maps = heatmap_target(keypoints, s, tuple(out.shape[-2:]), sigma)
        return F.mse_loss(out, maps) * maps[0].numel() / maps.shape[1]   # a sum over each map's pixels
    if model.head_name == "integral":
        pred, default = soft_argmax2d(out), "l1"
    else:
        pred, default = image_to_heatmap(out, s), "l2"
    return (F.l1_loss if (coord_loss or default) == "l1" else F.mse_loss)(pred, target)


def pose_step(sigma: float = 1.0, coord_loss: str | None = None
              ) -> Callable[[PoseNet, tuple[Tensor, Tensor]], tuple[Tensor, dict]]:
    """A step for ``fit`` on (images, keypoints) batches: the head's loss (see :func:`pose_loss`), and the mean
    pixel error."""
    def step(model: PoseNet, batch: tuple[Tensor, Tensor]):
        images, keypoints = batch
        out = model(images)
        loss = pose_loss(model, out, keypoints, sigma, coord_loss)
        with torch.no_grad():
            pred = {"heatmap": lambda: rescale(heatmap_argmax(out), model.stride),
                    "integral": lambda: rescale(soft_argmax2d(out), model.stride)}.get(model.head_name, lambda: out)()
            error = (pred - keypoints).norm(dim=-1).mean()
        return loss, {"pixel error": error}
    return step


# ------------------------------------------------------------------------------------- part affinity fields
class PafNet(nn.Module):
    """images (B, 1, S, S) -> part affinity fields (B, 2L, S, S) of L limb types (the layout of
    :func:`course_lib.pose.limb_fields`): the backbone, a 1 x 1 conv to 2L maps at stride 4, and a bilinear
    upsampling to the image grid (map pixel j is centred on image pixel 4j + 1.5, as in :func:`rescale`)."""

    stride = 4

    def __init__(self, limbs: int = len(BONES), width: int = 32):
        super().__init__()
        self.limbs = limbs
        self.backbone = backbone(width)
        self.head = nn.Conv2d(2 * width, 2 * limbs, 1)
        fast_layout(self)

    def forward(self, x: Tensor) -> Tensor:
        out = self.head(self.backbone(x - 0.2))
        return F.interpolate(out, scale_factor=self.stride, mode="bilinear", align_corners=False)


def paf_step(bones: list[tuple[int, int]] = BONES, width: float = 1.5
             ) -> Callable[[PafNet, tuple[Tensor, Tensor]], tuple[Tensor, dict]]:
    """A step for ``fit`` on (images, people) batches (:class:`course_lib.pose.PairBatches`): the squared error
    between the predicted fields and those drawn from the true joints (:func:`limb_fields`), summed over each
    field's pixels and averaged over fields (OpenPose's L2 loss on the fields)."""
    def step(model: PafNet, batch: tuple[Tensor, Tensor]):
        images, people = batch
        out = model(images)
        target = limb_fields(people, bones, tuple(out.shape[-2:]), width)
        loss = F.mse_loss(out, target) * out.shape[-2] * out.shape[-1]
        return loss, {}
    return step
