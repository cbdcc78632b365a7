"""Patch networks that learn a matching cost, and the training pairs they learn from.

* MC-CNN-fast (Žbontar & LeCun, JMLR 2016): a Siamese tower of 3 x 3 convolutions (tied weights) maps a 9 x 9
  patch to a unit vector; the score of a pair is the cosine of their vectors. Fully convolutional, so the features
  are computed once per image, and the whole cost volume is one correlation (:func:`fast_cost_volume`).
* 2-channel (Zagoruyko & Komodakis, CVPR 2015): both patches stacked as the channels of one input, one tower and a
  decision layer: one full pass per pixel AND disparity.
* Siamese with a decision network (Zagoruyko & Komodakis's "siam"; the layout of MC-CNN-acrt, JMLR 2016): one
  tower with tied weights for both patches, the two feature vectors concatenated, then fully connected decision
  layers that output the match logit. Its towers run once per image, its decision layers once per disparity.
* pseudo-Siamese (Zagoruyko & Komodakis's "pseudo-siam"): the same with two towers of UNTIED weights.
  (MC-CNN-fast is their "siam-l2" kind: tied towers and a fixed comparison, here the cosine.)

Training pairs (:func:`sample_patch_pairs`), as MC-CNN makes them: for a left pixel (x, y) of true disparity d,
a positive right patch at x - d + o_pos with o_pos in [-P_hi, P_hi], a negative at x - d + o_neg with |o_neg| in
[N_lo, N_hi]. The JMLR paper uses N_lo = 4, N_hi = 10 and P_hi = 1 on KITTI; the defaults here are N_lo = 4,
N_hi = 10 and P_hi = 0 (the synthetic disparities are exact).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .correlation import correlation_1d

__all__ = ["FastTower", "fast_cost_volume", "TwoChannelNet", "SiameseDecisionNet", "PseudoSiameseNet",
           "sample_patch_pairs"]


def _tower(in_channels: int, features: int, layers: int, last_relu: bool) -> nn.Sequential:
    """``layers`` 3 x 3 convolutions without padding (a 9 x 9 patch -> 1 x 1 for 4 layers), ReLU between them."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Conv2d(in_channels if i == 0 else features, features, 3)]
        if i < layers - 1 or last_relu:
            mods += [nn.ReLU()]
    return nn.Sequential(*mods)


class FastTower(nn.Module):
    """MC-CNN-fast's tower: (B, 1, H, W) -> (B, features, H - 8, W - 8) unit vectors (4 layers: 9 x 9 patches).
    On one 9 x 9 patch it gives one vector, (B, features, 1, 1)."""

    def __init__(self, features: int = 64, layers: int = 4):
        super().__init__()
        self.net = _tower(1, features, layers, last_relu=False)
        self.patch = 2 * layers + 1

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.net(x), dim=1)


def fast_cost_volume(tower: FastTower, left: Tensor, right: Tensor, max_disparity: int) -> Tensor:
    """The learned cost -cosine for every disparity: (B, 1, H, W) views -> (B, D, H, W), lower is better, +inf
    where x < d (the package's rule). Each image goes through the tower ONCE (zero-padded so that every pixel has
    its patch); then one correlation (the mean over C channels, times C: the cosine)."""
    r = tower.patch // 2
    f1, f2 = tower(F.pad(left, (r, r, r, r))), tower(F.pad(right, (r, r, r, r)))      # (B, C, H, W) each
    cosine = correlation_1d(f1, f2, max_disparity) * f1.shape[1]
    x, d = torch.arange(left.shape[-1], device=left.device), torch.arange(max_disparity, device=left.device)
    return (-cosine).masked_fill((x < d[:, None])[:, None], math.inf)


class TwoChannelNet(nn.Module):
    """2-channel network: a pair of patches (B, 2, 9, 9) (left, right) -> (B,) match logits. Its decision layers
    are 1 x 1 convolutions, so it also runs on two whole aligned images (B, 2, H, W) -> (B, H - 8, W - 8)."""

    def __init__(self, features: int = 64, layers: int = 4, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(_tower(2, features, layers, last_relu=True), nn.Conv2d(features, hidden, 1),
                                 nn.ReLU(), nn.Conv2d(hidden, 1, 1))

    def forward(self, pairs: Tensor) -> Tensor:
        return self.net(pairs)[:, 0].squeeze(-1).squeeze(-1)


class SiameseDecisionNet(nn.Module):
    """Siamese network with a decision network (MC-CNN-acrt's layout): left and right patches (B, 1, 9, 9) each,
    through ONE tower (tied weights), features concatenated, then decision layers -> (B,) match logits. The
    decision layers are 1 x 1 convolutions (fully connected layers on a 1 x 1 map), so it is fully convolutional."""

    def __init__(self, features: int = 64, layers: int = 4, hidden: int = 128):
        super().__init__()
        self.tower = _tower(1, features, layers, last_relu=True)
        self.decide = nn.Sequential(nn.Conv2d(2 * features, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, 1, 1))

    def features(self, left: Tensor, right: Tensor) -> tuple[Tensor, Tensor]:
        """The two views' features, (B, features, h, w) each: the same tower for both."""
        return self.tower(left), self.tower(right)

    def forward(self, left: Tensor, right: Tensor) -> Tensor:
        return self.decide(torch.cat(self.features(left, right), 1))[:, 0].squeeze(-1).squeeze(-1)


class PseudoSiameseNet(nn.Module):
    """Pseudo-Siamese network: left and right patches (B, 1, 9, 9) each, through two towers with UNTIED weights,
    features concatenated, then decision layers -> (B,) match logits (fully convolutional as above)."""

    def __init__(self, features: int = 64, layers: int = 4, hidden: int = 128):
        super().__init__()
        self.left_tower = _tower(1, features, layers, last_relu=True)
        self.right_tower = _tower(1, features, layers, last_relu=True)
        self.decide = nn.Sequential(nn.Conv2d(2 * features, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, 1, 1))

    def features(self, left: Tensor, right: Tensor) -> tuple[Tensor, Tensor]:
        """The two views' features, (B, features, h, w) each: the left tower for the left, the right for the right."""
        return self.left_tower(left), self.right_tower(right)

    def forward(self, left: Tensor, right: Tensor) -> Tensor:
        return self.decide(torch.cat(self.features(left, right), 1))[:, 0].squeeze(-1).squeeze(-1)


def _patches(images: Tensor, b: Tensor, y: Tensor, x: Tensor, size: int) -> Tensor:
    """(n, 1, H, W) images -> (N, 1, size, size) patches centred on (b, y, x), zero outside the image."""
    r = size // 2
    padded = F.pad(images, (r, r, r, r))
    offsets = torch.arange(size, device=images.device)
    rows = (y[:, None] + offsets)[:, :, None]                                           # (N, size, 1)
    cols = (x[:, None] + offsets)[:, None, :]                                           # (N, 1, size)
    return padded[b[:, None, None], 0, rows, cols][:, None]


def sample_patch_pairs(left: Tensor, right: Tensor, disparity: Tensor, visible: Tensor, count: int,
                       seed: int = 0, patch: int = 9, neg: tuple[int, int] = (4, 10),
                       pos: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """``count`` training triples as MC-CNN draws them: left patches at visible pixels, the right patch at the
    true match x - d + o_pos (|o_pos| <= ``pos``) and one at x - d + o_neg (N_lo <= |o_neg| <= N_hi, ``neg``,
    either side, inside the right image) -> three (count, 1, patch, patch) tensors (left, positive, negative).
    Integer disparities (round them first for sub-pixel ones)."""
    if not 1 <= neg[0] <= neg[1]:
        raise ValueError(f"neg must be (N_lo, N_hi) with 1 <= N_lo <= N_hi, got {neg!r}")
    g = torch.Generator(device=left.device).manual_seed(seed)
    w = left.shape[-1]
    idx = torch.multinomial(visible.flatten().float(), count, replacement=True, generator=g)
    b, y, x = torch.unravel_index(idx, visible.shape)
    match = x - disparity[b, y, x].round().long()
    o_pos = torch.randint(-pos, pos + 1, (count,), generator=g, device=left.device)
    size = torch.randint(neg[0], neg[1] + 1, (count,), generator=g, device=left.device)
    sign = torch.where(torch.rand(count, generator=g, device=left.device) < 0.5, -1, 1)
    o_neg = torch.where((match + sign * size < 0) | (match + sign * size >= w), -sign, sign) * size
    return (_patches(left, b, y, x, patch), _patches(right, b, y, (match + o_pos).clamp(0, w - 1), patch),
            _patches(right, b, y, (match + o_neg).clamp(0, w - 1), patch))
