"""The correlation layer (Fischer et al., FlowNet, ICCV 2015): compare a feature vector of one image with the
feature vectors of the other image at a range of offsets, with no learnable weight.

A matching score is the mean over channels of the product of two feature vectors (FlowNet's correlation with a
1 x 1 patch: its sum divided by the number of channels). With L2-normalized features this is the cosine
similarity divided by C, which is how MC-CNN-fast (Žbontar & LeCun, 2016) turns one pass of its Siamese tower
per image into a whole cost volume.

Rectified stereo (the convention of :mod:`course_lib.stereo`): the left pixel (y, x) matches the right pixel
(y, x - d) for a disparity d >= 0. Positions that fall outside the second feature map score 0 (zero padding).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["correlation_1d", "correlation_2d"]


def _check_pair(f1: Tensor, f2: Tensor) -> None:
    for name, f in (("f1", f1), ("f2", f2)):
        if not isinstance(f, Tensor) or f.dim() != 4:
            shape = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
            raise ValueError(f"{name} must be a (B, C, H, W) feature map, got {shape}")
    if f1.shape != f2.shape:
        raise ValueError(f"f1 {tuple(f1.shape)} and f2 {tuple(f2.shape)} need the same shape: the features of "
                         "two views, computed by the same network")


def correlation_1d(f1: Tensor, f2: Tensor, max_disparity: int) -> Tensor:
    """Scores of every disparity 0 ... D - 1 (D = ``max_disparity``): f1, f2 (B, C, H, W) -> (B, D, H, W) with

        out[b, d, y, x] = mean over c of f1[b, c, y, x] * f2[b, c, y, x - d],   0 where x - d < 0.

    f1 holds the left view's features, f2 the right view's. A loop over the D disparities, each step one product
    over the whole batch: D is small, and this beats one einsum over all shifts at once several times over on the
    CPU (benchmarks/correlation.py).

    >>> f1 = torch.tensor([[[[1.0, 2.0, 3.0]]]])                  # B = C = H = 1, W = 3
    >>> f2 = torch.tensor([[[[10.0, 20.0, 30.0]]]])
    >>> correlation_1d(f1, f2, 2)[0, :, 0]                        # d = 0: 1 * 10, ...; d = 1: 0, 2 * 10, 3 * 20
    tensor([[10., 40., 90.],
            [ 0., 20., 60.]])
    """
    _check_pair(f1, f2)
    if not isinstance(max_disparity, int) or max_disparity < 1:
        raise ValueError(f"max_disparity must be a positive int (the number of disparities 0 ... D - 1), "
                         f"got {max_disparity!r}")
    b, c, h, w = f1.shape
    out = f1.new_zeros(b, max_disparity, h, w)
    for d in range(min(max_disparity, w)):
        out[:, d, :, d:] = (f1[..., d:] * f2[..., :w - d]).mean(1)                # left x against right x - d
    return out


def correlation_2d(f1: Tensor, f2: Tensor, max_displacement: int, stride: int = 1) -> Tensor:
    """FlowNet's correlation with a 1 x 1 patch: f1, f2 (B, C, H, W) -> (B, K * K, H, W), K = 2 k / s + 1 for
    k = ``max_displacement`` pixels and s = ``stride`` (FlowNet's stride2, the step between displacements):

        out[b, i * K + j, y, x] = mean over c of f1[b, c, y, x] * f2[b, c, y + dy, x + dx],
        dy = i * s - k,  dx = j * s - k   (i, j = 0 ... K - 1),   0 where (y + dy, x + dx) is outside f2.

    The channels are in row-major order: dy is the slow index, dx the fast one, so channel (K * K) // 2 is the
    zero displacement, and a horizontal shift by -d is channel K // 2 * K + (k - d) / s (stereo's disparity d).
    FlowNetC uses k = 20, s = 2 (K = 21) on features at 1/8 of the image size.

    >>> f = torch.arange(4.0).reshape(1, 1, 2, 2)                 # [[0, 1], [2, 3]]
    >>> correlation_2d(f, f, 1)[0, :, 0, 0]                       # pixel (0, 0) = 0 against its 3 x 3 neighbours
    tensor([0., 0., 0., 0., 0., 0., 0., 0., 0.])
    >>> correlation_2d(f, f, 1)[0, :, 1, 1]                       # pixel (1, 1) = 3 against 0, 1, _, 2, 3, _, ...
    tensor([0., 3., 0., 6., 9., 0., 0., 0., 0.])
    """
    _check_pair(f1, f2)
    if not isinstance(max_displacement, int) or max_displacement < 0:
        raise ValueError(f"max_displacement must be an int >= 0 (pixels), got {max_displacement!r}")
    if not isinstance(stride, int) or stride < 1 or max_displacement % stride:
        raise ValueError(f"stride must be a positive int that divides max_displacement ({max_displacement}), "
                         f"got {stride!r}: the displacements are -k, -k + s, ..., k")
    b, c, h, w = f1.shape
    k = max_displacement
    padded = F.pad(f2, (k, k, k, k))                                             # (B, C, H + 2k, W + 2k)
    starts = range(0, 2 * k + 1, stride)                                         # dy + k (then dx + k)
    return torch.stack([(f1 * padded[..., i:i + h, j:j + w]).mean(1) for i in starts for j in starts], 1)
