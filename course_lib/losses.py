"""Losses that learn a distance. Each is a pure function of embeddings (and labels or pair flags)."""
from __future__ import annotations

import torch
from torch import Tensor

from .distances import paired_distances

__all__ = ["contrastive_loss"]


def contrastive_loss(x1: Tensor, x2: Tensor, same: Tensor, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """Contrastive loss (Hadsell, Chopra & LeCun 2006). x1, x2: (B, D); same: (B,) bool or 0/1 -> scalar.

        L = mean over pairs of  1/2 * s * d^2  +  1/2 * (1 - s) * max(0, margin - d)^2

    with d = ||x1 - x2|| and s = 1 for a same-class pair. Positive pairs are pulled together;
    negative pairs are pushed apart only until they are ``margin`` away, then left alone.
    ``reduction="none"`` returns the (B,) loss of each pair instead of the mean.
    """
    d = paired_distances(x1, x2)                                                # (B,)
    if not isinstance(same, Tensor) or same.shape != d.shape:
        shape = tuple(same.shape) if isinstance(same, Tensor) else type(same).__name__
        raise ValueError(f"same must be a (B,) tensor with B={len(d)} (one flag per pair), got {shape}")
    if same.is_floating_point() and not torch.all((same == 0) | (same == 1)):
        raise ValueError("same must hold 0/1 (or True/False) flags, got other values")
    if len(d) == 0:
        raise ValueError("the batch holds no pairs (B = 0): there is nothing to average")
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    s = same.to(d.dtype)
    per_pair = 0.5 * s * d.pow(2) + 0.5 * (1 - s) * (margin - d).clamp_min(0).pow(2)   # (B,)
    return per_pair.mean() if reduction == "mean" else per_pair
