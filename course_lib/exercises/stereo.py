"""Checkers for lesson 09: the 1-D correlation layer and the NCC matching cost.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..stereo.correlation import correlation_1d, correlation_2d
from ..stereo.costs import ncc_cost, ncc_cost_volume
from .harness import Case, fallback, like, run_checks

__all__ = ["check_correlation_1d", "check_ncc_cost"]


# ---------------------------------------------------------------------------------------------- correlation
def _correlation_variant(f1: Tensor, f2: Tensor, d_max: int, step: int = -1, first: int = 0, wrap: bool = False,
                         reduce: str = "mean", fill: str = "zero") -> Tensor:
    """out[:, d, :, x] = f1[..., x] * f2[..., x + step * (d + first)] and its usual mistakes: ``step`` +1 (the
    right view shifted the wrong way), ``first`` 1 (disparities 1 ... D), ``wrap`` (torch.roll), ``reduce``
    "sum", ``fill`` "edge" (the border column repeated) or "late" (one valid column too few)."""
    w = f1.shape[-1]
    outs = []
    for d in range(first, d_max + first):
        s = step * d                                                             # read f2 at x + s
        if wrap:
            other = torch.roll(f2, -s, dims=-1)
        else:
            idx = torch.arange(w) + s
            inside = (idx >= 0) & (idx < w)
            if fill == "late":
                inside = inside & ((idx > 0) | (s == 0))
            other = f2[..., idx.clamp(0, w - 1)]
            if fill != "edge":
                other = other * inside
        prod = f1 * other
        outs.append(prod.sum(1) if reduce == "sum" else prod.mean(1))
    return torch.stack(outs, 1)


def _correlation_cases() -> list[Case]:
    g = torch.Generator().manual_seed(19)
    r = lambda *shape: torch.randn(*shape, generator=g)
    f1 = torch.tensor([[[[1.0, 2.0, 3.0, 4.0]], [[1.0, 0.0, 1.0, 0.0]]]])           # B = 1, C = 2, H = 1, W = 4
    f2 = torch.tensor([[[[1.0, 10.0, 100.0, 1000.0]], [[2.0, 2.0, 2.0, 2.0]]]])
    # d = 0: (1*1 + 1*2, 2*10 + 0, 3*100 + 2, 4*1000 + 0) / 2; d = 1: (0, 2*1 + 0, 3*10 + 2, 4*100 + 0) / 2; ...
    hand = torch.tensor([[[[3.0, 20.0, 302.0, 4000.0]], [[0.0, 2.0, 32.0, 400.0]], [[0.0, 0.0, 5.0, 40.0]]]]) / 2
    return [
        Case("by hand: C = 2 channels, W = 4 columns, D = 3 (out[d, x] = mean_c f1[x] * f2[x - d], 0 for x < d)",
             (f1, f2, 3), hand),
        Case("random features, B = 2, C = 3, 4 x 9, D = 5", (r(2, 3, 4, 9), r(2, 3, 4, 9), 5), grad="match"),
        Case("the border: D = W = 6, so the last disparity has a single valid column", (r(1, 4, 3, 6), r(1, 4, 3, 6), 6),
             grad="match"),
        Case("one disparity (D = 1): the product at the same pixel", (r(2, 2, 3, 5), r(2, 2, 3, 5), 1)),
        Case("float64 features (keep their dtype)", (r(1, 2, 2, 7).double(), r(1, 2, 2, 7).double(), 4)),
    ]


def _correlation_rules() -> list[tuple[str, Callable]]:
    v = lambda **mistake: like(lambda f1, f2, d: _correlation_variant(f1, f2, d, **mistake))
    return [
        ("The right view is shifted the wrong way: left pixel x matches right pixel x - d (a point moves LEFT in "
         "the right view), so read f2 at column x - d, not x + d.", v(step=1)),
        ("torch.roll wraps around: the columns x < d get f2's last columns instead of 0. Zero them (or pad f2 on "
         "the left with D - 1 zeros and slice).", v(wrap=True)),
        ("Off by one at the border: column x = d is valid (it reads f2's column 0); only x < d has no match.",
         v(fill="late")),
        ("Off by one in the disparities: they run 0 ... D - 1, and d = 0 compares a pixel with the same pixel.",
         v(first=1)),
        ("Average over the channels (divide the sum by C), as FlowNet's correlation layer does.", v(reduce="sum")),
        ("Columns x < d have no match in the right view: fill them with 0, not with the border column of f2 "
         "(F.pad's 'replicate' mode).", v(fill="edge")),
        ("The disparity axis is reversed: channel d of the output must hold disparity d (0 first), not D - 1 - d.",
         like(lambda f1, f2, d: _correlation_variant(f1, f2, d).flip(1))),
        ("Put the disparity axis second: the output is (B, D, H, W), like a batch of D-channel images.",
         like(lambda f1, f2, d: _correlation_variant(f1, f2, d).permute(0, 2, 3, 1))),
    ]


@fallback(correlation_1d)
def check_correlation_1d(fn: Callable[[Tensor, Tensor, int], Tensor]) -> bool:
    """Check ``fn(f1, f2, max_disparity) -> (B, D, H, W)``: f1 (left), f2 (right) (B, C, H, W) feature maps,
    out[:, d, y, x] = mean over channels of f1[:, :, y, x] * f2[:, :, y, x - d] for d = 0 ... D - 1, and 0 where
    x - d < 0."""
    return run_checks("1-D correlation", fn, _correlation_cases(), correlation_1d, _correlation_rules(),
                      "for each d, multiply f1 by f2 moved d columns to the right (zeros coming in on the left), "
                      "average over the channels, and stack the D maps on dim 1.", library=(correlation_2d,))


# ---------------------------------------------------------------------------------------------- NCC
def _ncc_variant(a: Tensor, b: Tensor, eps: float, centre: bool = True, normalize: bool = True,
                 eps_where: str = "product", unbiased_std: bool = False, sums: bool = False,
                 similarity: bool = False, dim: int = -1) -> Tensor:
    """1 - NCC and its usual mistakes: the means not subtracted, no division by the spreads, eps elsewhere
    ("none", "each", "outside"), torch.std's unbiased default, sums instead of means, NCC itself, the wrong dim."""
    if centre:
        a, b = a - a.mean(dim, keepdim=True), b - b.mean(dim, keepdim=True)
    agg = (lambda x: x.sum(dim)) if sums else (lambda x: x.mean(dim))
    cov, var_a, var_b = agg(a * b), agg(a * a), agg(b * b)
    if unbiased_std:
        k = a.shape[dim]
        var_a, var_b = var_a * k / (k - 1), var_b * k / (k - 1)
    denominator = {"product": (var_a * var_b + eps).sqrt(), "none": (var_a * var_b).sqrt(),
                   "each": ((var_a + eps) * (var_b + eps)).sqrt(), "outside": (var_a * var_b).sqrt() + eps}[eps_where]
    ncc = cov / denominator if normalize else cov
    return ncc if similarity else 1 - ncc


def _ncc_cases() -> list[Case]:
    g = torch.Generator().manual_seed(23)
    r = lambda *shape: torch.rand(*shape, generator=g)
    a = torch.tensor([[1.0, 2.0, 3.0, 6.0]] * 4)
    b = torch.stack([2 * a[0] + 1, -a[0], 0.5 * a[0] + 10, torch.tensor([2.0, 1.0, 4.0, 3.0])])
    return [
        Case("by hand: b = 2a + 1 (cost 0), b = -a (cost 2), b = a / 2 + 10 (cost 0), and a shuffle of a",
             (a, b, 1e-9)),
        Case("a flat window (b = 5, 5, 5, 5): its variance is 0, so NCC = 0 and the cost is 1",
             (a[:2], torch.tensor([[5.0] * 4, [1.0, 2.0, 3.0, 4.0]]), 1e-6), grad="finite"),
        Case("random 9 x 9 windows (N = 6, K = 81), eps = 1e-6", (r(6, 81), r(6, 81), 1e-6), grad="match"),
        Case("a large eps, 0.5, on windows of variance ~ 1 (where eps goes matters)",
             (3 * torch.randn(5, 7, generator=g), 3 * torch.randn(5, 7, generator=g), 0.5), grad="match"),
        Case("windows on a bright background (mean ~ 10): only the pattern may count",
             (10 + r(4, 25), 10 + r(4, 25), 1e-6)),
        Case("float64 windows (keep their dtype)", (r(3, 9).double(), r(3, 9).double(), 1e-6)),
    ]


def _ncc_rules() -> list[tuple[str, Callable]]:
    v = lambda **mistake: like(lambda a, b, eps: _ncc_variant(a, b, eps, **mistake))
    return [
        ("No normalization: divide the covariance by sqrt(var(a) var(b) + eps), or a brighter or higher-contrast "
         "window scores higher (plain correlation is not blind to a gain).",
         lambda got, want, args: v(normalize=False)(got, want, args) or v(normalize=False, centre=False)(got, want,
                                                                                                        args)),
        ("Subtract each window's mean first (ZERO-mean NCC): otherwise a bias between the views changes the score.",
         v(centre=False)),
        ("Return the COST 1 - NCC (0 for a perfect match), not NCC itself: the cost volume is minimised.",
         v(similarity=True)),
        ("A flat window has variance 0: without eps you get 0 / 0 = NaN. Add eps under the root, "
         "sqrt(var(a) var(b) + eps).", v(eps_where="none")),
        ("Put eps once under the root, sqrt(var(a) var(b) + eps), not into each variance.", v(eps_where="each")),
        ("Put eps under the root, sqrt(var(a) var(b) + eps), not after it.", v(eps_where="outside")),
        ("torch.std and torch.var divide by K - 1 by default while your covariance divides by K: use "
         "unbiased=False (correction=0), or means throughout.", v(unbiased_std=True)),
        ("Use means over the K pixels, not sums: eps is compared with mean variances.", v(sums=True)),
        ("Average over each window's pixels (the last dim, K), not over the N windows (dim 0).", v(dim=0)),
    ]


@fallback(ncc_cost)
def check_ncc_cost(fn: Callable[[Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(a, b, eps) -> (N,)``: a, b (N, K) window pairs (K pixels each) -> the cost 1 - NCC with
    NCC = cov(a, b) / sqrt(var(a) var(b) + eps), means over the K pixels of each window (zero-mean NCC)."""
    return run_checks("NCC cost", fn, _ncc_cases(), ncc_cost, _ncc_rules(),
                      "centre each window (subtract its mean over dim -1), then cov = mean(a0 * b0), var = "
                      "mean(a0 ** 2); return 1 - cov / sqrt(var_a * var_b + eps).", library=(ncc_cost_volume,))
