"""Hand-crafted matching costs over a window, winner-takes-all, and the error rate of a disparity map.

A cost volume holds, for every left pixel (y, x) and every disparity d = 0 ... D - 1, how badly the window around
the left pixel (y, x) matches the window around the right pixel (y, x - d): (B, D, H, W), LOWER IS BETTER for all
of them (NCC enters as the cost 1 - NCC). Rules shared by the three costs:

* a left pixel whose match x - d falls outside the right image (x < d) gets the cost +inf at that d, so that
  :func:`winner_takes_all` never picks it (d = 0 is always allowed);
* a window uses only its pixels that lie inside both images: SAD and NCC average over the window's pixels
  (y + i, x + j) with 0 <= y + i < H and d <= x + j < W; census compares a pixel only with neighbours inside its
  own image.

Costs (Scharstein & Szeliski, 2002; census: Zabih & Woodfill, 1994): SAD, the sum of absolute differences, here
its mean over the window (the same ranking wherever the whole window is inside, and comparable at borders); NCC,
zero-mean normalized cross-correlation, blind to a gain and a bias between the views; census, the Hamming
distance between the bit strings "is this neighbour darker than the centre?", blind to any increasing change of
brightness.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["shifted_right", "sad_cost_volume", "ncc_cost", "ncc_cost_volume", "census_transform",
           "census_cost_volume", "winner_takes_all", "error_rate", "chance_error", "disparity_errors",
           "disparity_errors_per_pair"]


def _check_views(left: Tensor, right: Tensor, max_disparity: int, window: int) -> None:
    for name, x in (("left", left), ("right", right)):
        if not isinstance(x, Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a (B, C, H, W) image batch (C = 1 for grey), got {shape}")
    if left.shape != right.shape:
        raise ValueError(f"left {tuple(left.shape)} and right {tuple(right.shape)} need the same shape")
    if not isinstance(max_disparity, int) or max_disparity < 1:
        raise ValueError(f"max_disparity must be a positive int (disparities 0 ... D - 1), got {max_disparity!r}")
    if not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ValueError(f"window must be an odd positive int (a window centred on the pixel), got {window!r}")


def _box_sum(x: Tensor, window: int) -> Tensor:
    """Sum over a window x window neighbourhood, zero outside the image: (N, C, H, W) -> (N, C, H, W)."""
    return F.avg_pool2d(x, window, stride=1, padding=window // 2, count_include_pad=True) * window ** 2


def shifted_right(right: Tensor, max_disparity: int) -> tuple[Tensor, Tensor]:
    """The right view moved by every disparity: (B, C, H, W) -> (B, D, C, H, W) with
    out[:, d, :, y, x] = right[:, :, y, x - d], and the mask (1, D, 1, 1, W) of x - d >= 0 (0 where False)."""
    b, c, h, w = right.shape
    padded = F.pad(right, (max_disparity - 1, 0))                                # (B, C, H, W + D - 1)
    shifted = padded.unfold(3, w, 1).flip(3).permute(0, 3, 1, 2, 4)              # (B, D, C, H, W), a view
    d = torch.arange(max_disparity, device=right.device)
    valid = torch.arange(w, device=right.device) >= d[:, None]                   # (D, W)
    return shifted, valid[None, :, None, None, :]


def _windowed_means(terms: list[Tensor], valid: Tensor, window: int) -> list[Tensor]:
    """Means over each window of every (B, D, C, H, W) term, over the pixels where ``valid``, and the
    centre-is-valid mask (1, D, 1, 1, W) -> ([(B, D, H, W), ...], (1, D, 1, W) bool)."""
    b, dd, c, h, w = terms[0].shape
    v = valid.to(terms[0].dtype).expand(1, dd, 1, h, w).reshape(dd, 1, h, w)
    count = _box_sum(v, window)[None, :, 0]                                      # (1, D, H, W) pixels used
    means = []
    for t in terms:
        s = _box_sum((t * valid).reshape(b * dd, c, h, w), window).reshape(b, dd, c, h, w).sum(2)
        means.append(s / (count * c).clamp_min(1))
    return means, valid[:, :, 0]


def sad_cost_volume(left: Tensor, right: Tensor, max_disparity: int, window: int = 9) -> Tensor:
    """SAD cost volume: (B, C, H, W) views -> (B, D, H, W), the mean of |left - right shifted by d| over the
    window (and channels); +inf where x < d. Fooled by a gain or a bias between the views.

    >>> left = torch.tensor([[[[0.0, 1.0, 0.0, 0.0]]]])
    >>> sad_cost_volume(left, left.roll(-1, -1), 3, window=1)[0, :, 0]    # right = left moved 1 px left: d = 1
    tensor([[1., 1., 0., 0.],
            [inf, 0., 0., 0.],
            [inf, inf, 1., 0.]])
    """
    _check_views(left, right, max_disparity, window)
    shifted, valid = shifted_right(right, max_disparity)
    (sad,), centre = _windowed_means([(left[:, None] - shifted).abs()], valid, window)
    return sad.masked_fill(~centre, math.inf)


def ncc_cost(a: Tensor, b: Tensor, eps: float = 1e-6) -> Tensor:
    """1 - zero-mean NCC of window pairs: a, b (N, K) (N windows of K pixels each) -> (N,), from 0 (the same
    up to a gain > 0 and a bias) through 1 (unrelated, or a flat window) to 2 (one is the negative of the other):

        NCC = cov(a, b) / sqrt(var(a) var(b) + eps),

    with means over the K pixels (cov = mean((a - mean a)(b - mean b)), var(a) = cov(a, a)). eps keeps a flat
    window (variance 0) at NCC = 0 instead of 0 / 0.

    >>> ncc_cost(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[5.0, 7.0, 9.0]])).round(decimals=4)   # b = 2a + 3
    tensor([0.])
    >>> ncc_cost(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[4.0, 4.0, 4.0]]))    # a flat window
    tensor([1.])
    """
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"a {tuple(a.shape)} and b {tuple(b.shape)} must both be (N, K): N windows of K pixels")
    a0, b0 = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
    cov, var_a, var_b = (a0 * b0).mean(-1), (a0 * a0).mean(-1), (b0 * b0).mean(-1)
    return 1 - cov / (var_a * var_b + eps).sqrt()


def ncc_cost_volume(left: Tensor, right: Tensor, max_disparity: int, window: int = 9, eps: float = 1e-6) -> Tensor:
    """NCC cost volume: (B, C, H, W) views -> (B, D, H, W), 1 - NCC (as :func:`ncc_cost`) of the window around
    (y, x) in the left view and (y, x - d) in the right view, over the window's pixels inside both (channels
    pooled); +inf where x < d. Blind to a gain > 0 and a bias between the views."""
    _check_views(left, right, max_disparity, window)
    shifted, valid = shifted_right(right, max_disparity)
    l5 = left[:, None].expand_as(shifted)
    means, centre = _windowed_means([l5, shifted, l5 * l5, shifted * shifted, l5 * shifted], valid, window)
    ml, mr, mll, mrr, mlr = means                                                # (B, D, H, W) each
    cov, var_l, var_r = mlr - ml * mr, (mll - ml * ml).clamp_min(0), (mrr - mr * mr).clamp_min(0)
    return (1 - cov / (var_l * var_r + eps).sqrt()).masked_fill(~centre, math.inf)


def census_transform(image: Tensor, window: int = 9) -> Tensor:
    """Census bits: (B, C, H, W) -> (B, C * (window² - 1), H, W) bool, one bit per neighbour in the window
    (row-major, the centre left out): "is this neighbour darker than the centre?". A neighbour outside the
    image gives False."""
    if image.dim() != 4 or not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ValueError(f"image must be (B, C, H, W) and window an odd positive int, got {tuple(image.shape)} "
                         f"and {window!r}")
    b, c, h, w = image.shape
    r = window // 2
    padded = F.pad(image, (r, r, r, r), value=math.inf)                          # inf < centre: False outside
    patches = padded.unfold(2, h, 1).unfold(3, w, 1)                             # (B, C, win, win, H, W)
    bits = (patches < image[:, :, None, None]).reshape(b, c, window * window, h, w)
    keep = torch.arange(window * window, device=image.device) != window * window // 2
    return bits[:, :, keep].reshape(b, -1, h, w)


def census_cost_volume(left: Tensor, right: Tensor, max_disparity: int, window: int = 9) -> Tensor:
    """Census cost volume: (B, C, H, W) views -> (B, D, H, W) float, the Hamming distance between the census
    bits (:func:`census_transform` over the window) of left (y, x) and right (y, x - d); +inf where x < d."""
    _check_views(left, right, max_disparity, window)
    bits_l, bits_r = census_transform(left, window), census_transform(right, window)
    shifted, valid = shifted_right(bits_r.to(torch.uint8), max_disparity)     # (B, D, bits, H, W)
    hamming = (bits_l[:, None].to(torch.uint8) ^ shifted).sum(2, dtype=left.dtype)
    return hamming.masked_fill(~valid[:, :, 0], math.inf)


def winner_takes_all(cost: Tensor) -> Tensor:
    """The disparity of least cost at every pixel: (B, D, H, W) -> (B, H, W) int64 (the first one on a tie).

    >>> winner_takes_all(torch.tensor([[[[3.0]], [[1.0]], [[2.0]]]]))
    tensor([[[1]]])
    """
    if cost.dim() != 4:
        raise ValueError(f"cost must be a (B, D, H, W) cost volume, got {tuple(cost.shape)}")
    return cost.argmin(1)


def error_rate(pred: Tensor, true: Tensor, mask: Tensor | None = None, threshold: float = 1.0) -> Tensor:
    """The share of pixels (where ``mask``) whose disparity is off by MORE than ``threshold`` pixels:
    pred, true (B, H, W) -> a 0-dim float tensor, NaN if the mask is empty. threshold = 3 is KITTI's rule.

    >>> error_rate(torch.tensor([[[0, 2, 5, 9]]]), torch.tensor([[[0.0, 3.0, 3.0, 3.0]]]))   # off by 0, 1, 2, 6
    tensor(0.5000)
    """
    if pred.shape != true.shape or pred.dim() != 3:
        raise ValueError(f"pred {tuple(pred.shape)} and true {tuple(true.shape)} must both be (B, H, W) "
                         "disparity maps")
    wrong = (pred.to(true.dtype) - true).abs() > threshold
    if mask is not None:
        if mask.shape != true.shape or mask.dtype != torch.bool:
            raise ValueError(f"mask must be a (B, H, W) bool tensor like true, got {tuple(mask.shape)} {mask.dtype}")
        wrong = wrong[mask]
    return wrong.float().mean()


def chance_error(max_disparity: int, threshold: float = 1.0, true: Tensor | None = None) -> float:
    """The error rate of a disparity drawn uniformly from 0 ... D - 1 (D = ``max_disparity``), off by more than
    ``threshold``.

    Without ``true``: 1 - (2 floor(threshold) + 1) / D, a true disparity at least ``threshold`` away from both
    ends of the range (1 - 3 / D within 1 px). With ``true`` (any shape): the exact expectation over those true
    disparities, where the range's ends leave fewer right answers (a slightly higher error).

    >>> round(chance_error(16), 4)                                # 1 - 3 / 16
    0.8125
    >>> round(chance_error(16, true=torch.tensor([0.0, 8.0])), 4)    # d* = 0: 2 right answers, d* = 8: 3
    0.8438
    """
    if not isinstance(max_disparity, int) or max_disparity < 1 or threshold < 0:
        raise ValueError(f"max_disparity must be a positive int and threshold >= 0, got {max_disparity!r}, "
                         f"{threshold!r}")
    if true is None:
        return max(0.0, 1 - (2 * math.floor(threshold) + 1) / max_disparity)
    t = true.double()
    lo = torch.ceil((t - threshold).clamp_min(0))
    hi = torch.floor((t + threshold).clamp_max(max_disparity - 1))
    return float(1 - ((hi - lo + 1).clamp_min(0) / max_disparity).mean())


def _regions(pairs) -> dict[str, tuple[Tensor, float]]:
    visible, flat = pairs.visible, pairs.textureless
    return {"visible": (visible, 1), "visible, 3 px": (visible, 3), "textured": (visible & ~flat, 1),
            "textureless": (visible & flat, 1), "occluded": (pairs.occluded, 1)}


def disparity_errors(pred: Tensor, pairs) -> dict[str, float]:
    """The error rates of a disparity map (B, H, W) on :class:`StereoPairs` ``pairs``, by region: "visible" (> 1 px,
    pixels seen in both views), "visible, 3 px" (KITTI's rule), "textured" and "textureless" (visible pixels whose
    left window is / is not flat) and "occluded" (hidden in the right view: no right answer to find)."""
    return {name: float(error_rate(pred, pairs.disparity, mask, threshold)) for name, (mask, threshold) in
            _regions(pairs).items()}


def disparity_errors_per_pair(pred: Tensor, pairs) -> dict[str, Tensor]:
    """:func:`disparity_errors` pair by pair: {region: (B,) error rate of each pair}, NaN for a pair without a
    pixel in the region (the per-pair values give a standard error over the test pairs).

    >>> from types import SimpleNamespace
    >>> p = SimpleNamespace(disparity=torch.tensor([[[1.0, 1.0]], [[2.0, 2.0]]]), visible=torch.ones(2, 1, 2).bool(),
    ...                     textureless=torch.zeros(2, 1, 2).bool(), occluded=torch.zeros(2, 1, 2).bool())
    >>> disparity_errors_per_pair(torch.tensor([[[1, 5]], [[2, 2]]]), p)["visible"]
    tensor([0.5000, 0.0000])
    """
    out = {}
    for name, (mask, threshold) in _regions(pairs).items():
        wrong = ((pred.to(pairs.disparity.dtype) - pairs.disparity).abs() > threshold) & mask     # (B, H, W)
        out[name] = wrong.sum((1, 2)).float() / mask.sum((1, 2)).float()                           # 0 / 0 = NaN
    return out
