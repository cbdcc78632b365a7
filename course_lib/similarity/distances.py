"""Euclidean distances with gradients that stay finite when two embeddings coincide.

d = sqrt(s) has gradient 1 / (2 sqrt(s)), which is infinite at s = 0 (a positive pair that has
collapsed, or an embedding compared with itself). We take the square root only where s > 0 and
return 0 with a zero gradient elsewhere.

Distances are computed in float32 even inside mixed precision (``torch.autocast``): in 16 bits the
expansion ||a||^2 + ||b||^2 - 2 a.b cancels badly, and small distances, the ones mining cares
about, would drown in rounding noise.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..core.checks import check_embeddings

__all__ = ["pairwise_distances", "paired_distances"]


def _safe_sqrt(sq: Tensor) -> Tensor:
    positive = sq > 0
    return torch.where(positive, sq.clamp_min(torch.finfo(sq.dtype).tiny).sqrt(), torch.zeros_like(sq))


def _full_precision(x: Tensor) -> Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def pairwise_distances(x: Tensor, squared: bool = False) -> Tensor:
    """All distances within a batch. x: (B, D) -> (B, B), with exact zeros on the diagonal.

    Uses ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b, one matrix product instead of a (B, B, D) tensor.

    >>> pairwise_distances(torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]]))
    tensor([[0.0000, 5.0000, 1.0000],
            [5.0000, 0.0000, 4.2426],
            [1.0000, 4.2426, 0.0000]])
    """
    check_embeddings(x)
    with torch.autocast(x.device.type, enabled=False):
        return _pairwise(_full_precision(x), squared)


def _pairwise(x: Tensor, squared: bool) -> Tensor:
    sq_norm = x.pow(2).sum(1)                                        # (B,)
    sq = sq_norm[:, None] + sq_norm[None, :] - 2.0 * (x @ x.T)       # (B, B)
    sq = sq.clamp_min(0.0)                                           # rounding can make it slightly negative
    sq = sq * (1.0 - torch.eye(len(x), device=x.device, dtype=x.dtype))  # d(i, i) = 0 exactly
    return sq if squared else _safe_sqrt(sq)


def paired_distances(x1: Tensor, x2: Tensor, squared: bool = False) -> Tensor:
    """Row-by-row distances d(x1[i], x2[i]). x1, x2: (B, D) -> (B,).

    >>> paired_distances(torch.tensor([[0.0, 0.0], [1.0, 1.0]]), torch.tensor([[3.0, 4.0], [1.0, 1.0]]))
    tensor([5., 0.])
    >>> paired_distances(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]]), squared=True)
    tensor([25.])"""
    check_embeddings(x1, "x1")
    check_embeddings(x2, "x2")
    if x1.shape != x2.shape:
        raise ValueError(f"x1 and x2 must have the same shape (B, D), got {tuple(x1.shape)} and {tuple(x2.shape)}")
    sq = (_full_precision(x1) - _full_precision(x2)).pow(2).sum(1)   # (B,)
    return sq if squared else _safe_sqrt(sq)
