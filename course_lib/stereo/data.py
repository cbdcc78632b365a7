"""Synthetic rectified stereo pairs with a known disparity: layered fronto-parallel planes, textured with MNIST
digits and noise patterns, seen by two cameras side by side.

The convention of the whole package: the LEFT view is the reference, and its pixel (y, x) at disparity d shows
the same point as the right view's pixel (y, x - d). A nearer plane has a larger disparity, so it moves further
to the left in the right view and hides part of the planes behind it there (occlusion). A plane is drawn in the
left view's coordinates u on a canvas D pixels wider than the image, so that the right view, which shows u = x + d
at its pixel x, always has something to show.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data import load_mnist

__all__ = ["StereoPairs", "make_stereo_pairs", "warp_right"]


@dataclass(frozen=True)
class StereoPairs:
    """n stereo pairs of size (H, W) and their ground truth (see :func:`make_stereo_pairs`)."""
    left: Tensor           # (n, 1, H, W) the reference view, with sensor noise
    right: Tensor          # (n, 1, H, W) gain * (clean right view) + bias, with sensor noise
    disparity: Tensor      # (n, H, W) float: left (y, x) shows the point of right (y, x - disparity)
    visible: Tensor        # (n, H, W) bool: the left pixel's point is seen in the right view too
    occluded: Tensor       # (n, H, W) bool: hidden in the right view behind a nearer plane
    textureless: Tensor    # (n, H, W) bool: the clean left view is flat (std < flat_std) around the pixel
    gain: Tensor           # (n,) the right view's gain (1 without a radiometric change)
    bias: Tensor           # (n,) the right view's bias (0 without a radiometric change)
    max_disparity: int     # D: the true disparities lie in [0, D - 1]

    def __len__(self) -> int:
        return len(self.left)


def warp_right(right: Tensor, disparity: Tensor) -> Tensor:
    """The right view seen from the left: (n, C, H, W), disparity (n, H, W) -> (n, C, H, W), out[.., y, x] =
    right[.., y, x - d(y, x)], linear between columns for a sub-pixel d, 0 where x - d falls outside the image.

    >>> warp_right(torch.tensor([[[[1.0, 2.0, 3.0]]]]), torch.tensor([[[0.0, 1.0, 1.5]]]))
    tensor([[[[1.0000, 1.0000, 1.5000]]]])
    """
    n, c, h, w = right.shape
    u = torch.arange(w, device=right.device, dtype=disparity.dtype) - disparity          # (n, H, W)
    u0 = u.floor()
    frac = (u - u0)[:, None]
    out = 0
    for idx, weight in ((u0, 1 - frac), (u0 + 1, frac)):
        inside = ((idx >= 0) & (idx <= w - 1))[:, None]
        gathered = right.gather(3, idx.clamp(0, w - 1).long()[:, None].expand(n, c, h, w))
        out = out + torch.where(inside, gathered * weight, 0.0)
    return out


# ----------------------------------------------------------------------------------------------- the scene
def _digit_bank(device: torch.device) -> Tensor:
    """(M, 20, 20) MNIST digits cropped to the 20 x 20 box that holds their ink."""
    return load_mnist("train", limit=2000, verbose=False)[0][:, 0, 4:24, 4:24].to(device)


def _patterns(g: torch.Generator, count: int, h: int, wide: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Two kinds of texture in [0, 1], (count, H, wide) each: tiled MNIST digits at a random scale and offset,
    and value noise (coarse blobs plus fine grain)."""
    bank = _digit_bank(device)
    digit = bank[torch.randint(len(bank), (count,), generator=g, device=device)][:, None]   # (count, 1, 20, 20)
    scale = 0.7 + 0.6 * torch.rand(count, 1, 1, generator=g, device=device)               # tile of 14 to 26 px
    off = 20 * torch.rand(count, 2, generator=g, device=device)
    xs = torch.arange(wide, device=device, dtype=torch.float32)[None, None, :]
    ys = torch.arange(h, device=device, dtype=torch.float32)[None, :, None]
    u = (xs / scale + off[:, 0, None, None]) % 20                                          # (count, 1, wide)
    v = (ys / scale + off[:, 1, None, None]) % 20                                          # (count, H, 1)
    grid = torch.stack(torch.broadcast_tensors((2 * u + 1) / 20 - 1, (2 * v + 1) / 20 - 1), -1)
    digits = F.grid_sample(digit, grid, align_corners=False, padding_mode="border")[:, 0]  # (count, H, wide)
    coarse = torch.rand(count, 1, h // 8 + 2, wide // 8 + 2, generator=g, device=device)
    fine = torch.rand(count, 1, h // 2 + 2, wide // 2 + 2, generator=g, device=device)
    noise = 0.6 * F.interpolate(coarse, scale_factor=8, mode="bilinear")[:, 0, :h, :wide] \
        + 0.4 * F.interpolate(fine, scale_factor=2, mode="bilinear")[:, 0, :h, :wide]
    return digits, noise


def _layers(g: torch.Generator, n: int, layers: tuple[int, int], h: int, w: int, wide: int,
            device: torch.device) -> tuple[Tensor, Tensor]:
    """Textures (n, L, H, wide) and supports (n, L, H, wide) bool of the background (layer 0, everywhere) and of
    up to layers[1] foreground rectangles or ellipses (an unused layer has an empty support)."""
    big = layers[1] + 1
    r = lambda *shape: torch.rand(*shape, generator=g, device=device)
    digits, noise = _patterns(g, n * big, h, wide, device)
    kind = torch.bucketize(r(n * big, 1, 1), torch.tensor([0.4, 0.8], device=device))     # digits, noise, flat
    kind[::big] = kind[::big].clamp_max(1)                                                 # a textured background
    lo, contrast = 0.1 + 0.3 * r(n * big, 1, 1), 0.3 + 0.3 * r(n * big, 1, 1)
    pattern = torch.where(kind == 0, digits, torch.where(kind == 1, noise, torch.full_like(noise, 0.5)))
    texture = (lo + contrast * pattern).reshape(n, big, h, wide)
    xs = torch.arange(wide, device=device, dtype=torch.float32)
    ys = torch.arange(h, device=device, dtype=torch.float32)[:, None]
    cx, cy = (0.1 + 0.8 * r(n, big, 1, 1)) * w, r(n, big, 1, 1) * h
    rx, ry = (0.1 + 0.15 * r(n, big, 1, 1)) * w, (0.15 + 0.2 * r(n, big, 1, 1)) * h
    dx, dy = (xs - cx).abs() / rx, (ys - cy).abs() / ry                                    # (n, L, H, wide)
    shape = torch.where(r(n, big, 1, 1) < 0.5, torch.maximum(dx, dy), (dx ** 2 + dy ** 2).sqrt()) <= 1
    count = torch.randint(layers[0], layers[1] + 1, (n, 1, 1, 1), generator=g, device=device)
    support = shape & (torch.arange(big, device=device)[:, None, None] <= count)
    support[:, 0] = True
    wall = shape[:, 0] & (dx[:, 0] <= 0.8 * rx[:, 0])                                     # a blank wall behind
    level = lo.reshape(n, big)[:, 0, None, None] + contrast.reshape(n, big)[:, 0, None, None] / 2
    texture[:, 0] = torch.where(wall, level, texture[:, 0])
    return texture, support


def _sample_columns(a: Tensor, u: Tensor) -> Tensor:
    """a (n, L, H, wide) read at the columns u (n, L, 1, W) >= 0, linear between columns -> (n, L, H, W)."""
    n, big, h, wide = a.shape
    u0 = u.floor()
    frac = u - u0
    i0 = u0.long().clamp(0, wide - 1).expand(n, big, h, u.shape[-1])
    i1 = (i0 + 1).clamp_max(wide - 1)
    return a.gather(3, i0) * (1 - frac) + a.gather(3, i1) * frac


def _render(texture: Tensor, support: Tensor, disp: Tensor, w: int) -> tuple[Tensor, ...]:
    """Both clean views (n, 1, H, W), the left disparity map (n, H, W) and the visible and occluded masks."""
    n, big, h, wide = texture.shape
    order = torch.arange(1, big + 1, device=texture.device)[:, None, None]             # nearer = later = on top
    top_l = (support[..., :w] * order).argmax(1)                                       # (n, H, W) layer index
    u = torch.arange(w, device=texture.device, dtype=disp.dtype) + disp[:, :, None, None]  # (n, L, 1, W)
    seen_r = _sample_columns(support.to(disp.dtype), u) > 0.5
    top_r = (seen_r * order).argmax(1)
    left = texture[..., :w].gather(1, top_l[:, None])
    right = _sample_columns(texture, u).gather(1, top_r[:, None])
    d = disp.gather(1, top_l.flatten(1)).reshape(n, h, w)
    xr = (torch.arange(w, device=texture.device) - d).round().long()                  # the matching right column
    inside = xr >= 0
    same = top_r.gather(2, xr.clamp_min(0)) == top_l
    return left, right, d, inside & same, inside & ~same


def _check_arguments(n: int, size: tuple[int, int], max_disparity: int, layers: tuple[int, int], gain: tuple,
                     bias: tuple, noise: float) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int (the number of pairs), got {n!r}")
    if len(size) != 2 or min(size) < 16:
        raise ValueError(f"size must be (H, W) with both at least 16 pixels, got {size!r}")
    if not 1 <= layers[0] <= layers[1]:
        raise ValueError(f"layers must be (fewest, most) foreground planes with 1 <= fewest <= most, got {layers!r}")
    if not isinstance(max_disparity, int) or not layers[1] + 2 <= max_disparity <= size[1] // 2:
        raise ValueError(f"max_disparity must be an int from {layers[1] + 2} (one disparity per plane and a spare) "
                         f"to W / 2 = {size[1] // 2}, got {max_disparity!r}")
    if not 0 < gain[0] <= gain[1] or bias[0] > bias[1] or noise < 0:
        raise ValueError(f"gain must be a range (low, high) with 0 < low <= high, bias a range (low, high) and noise "
                         f">= 0, got gain {gain!r}, bias {bias!r}, noise {noise!r}")


def make_stereo_pairs(n: int, size: tuple[int, int] = (64, 96), max_disparity: int = 16, seed: int = 0,
                      device: torch.device | str | None = None, *, layers: tuple[int, int] = (1, 3),
                      subpixel: bool = False, radiometric: bool = True, gain: tuple[float, float] = (0.5, 0.8),
                      bias: tuple[float, float] = (0.1, 0.3), noise: float = 0.01, window: int = 9,
                      flat_std: float = 0.02) -> StereoPairs:
    """n rectified stereo pairs of ``size`` (H, W) with a known disparity in [0, D - 1], D = ``max_disparity``.

    Each scene is a background plane and ``layers`` (fewest, most) foreground rectangles or ellipses, nearer
    planes at larger disparities (all different), textured with tiled MNIST digits, value noise, or a flat grey;
    the background always holds a blank wall (a flat rectangle). Left (y, x) shows the point of right (y, x - d).
    Disparities are integers, or with ``subpixel`` any real number (the right view then reads the planes
    linearly between columns). ``radiometric`` gives the right view a gain and a bias drawn per pair from
    ``gain`` and ``bias`` (uniform), so that a raw SAD cost is fooled and NCC or census is not; ``noise`` is the
    standard deviation of the Gaussian sensor noise of both views (either way). Values are not clipped.

    Ground truth: ``visible`` (the point is seen in both views), ``occluded`` (hidden in the right view behind a
    nearer plane; the rest, neither, is the strip x < d that leaves the right image) and ``textureless``
    (the clean left view's standard deviation over a ``window`` x ``window`` window is below ``flat_std``).
    Without noise, ``warp_right((right - bias) / gain, disparity)`` equals ``left`` wherever ``visible``.
    Same seed and device, same pairs; everything is drawn on ``device`` by one torch.Generator.
    """
    _check_arguments(n, size, max_disparity, layers, gain, bias, noise)
    device = torch.device(device or "cpu")
    g = torch.Generator(device=device).manual_seed(seed)
    (h, w), big = size, layers[1] + 1
    texture, support = _layers(g, n, layers, h, w, w + max_disparity, device)
    top = max_disparity - 1 if subpixel else max_disparity                             # leave room for + U[0, 1)
    disp = torch.rand(n, top, generator=g, device=device).argsort(1)[:, :big].sort(1).values.float()
    if subpixel:
        disp = disp + torch.rand(n, big, generator=g, device=device)
    left, right, d, visible, occluded = _render(texture, support, disp, w)
    mean = F.avg_pool2d(left, window, 1, window // 2, count_include_pad=False)
    var = F.avg_pool2d(left ** 2, window, 1, window // 2, count_include_pad=False) - mean ** 2
    textureless = var.clamp_min(0).sqrt()[:, 0] < flat_std
    r = lambda lo_hi: lo_hi[0] + (lo_hi[1] - lo_hi[0]) * torch.rand(n, generator=g, device=device)
    a, b = (r(gain), r(bias)) if radiometric else (torch.ones(n, device=device), torch.zeros(n, device=device))
    left = left + noise * torch.randn(left.shape, generator=g, device=device)
    right = a[:, None, None, None] * right + b[:, None, None, None] \
        + noise * torch.randn(right.shape, generator=g, device=device)
    return StereoPairs(left, right, d, visible, occluded, textureless, a, b, max_disparity)
