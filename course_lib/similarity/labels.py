"""Which samples of a batch go together: masks and index pairs built from the labels alone.

Losses and miners both need them, so they live here rather than in either.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..core.checks import check_labels

__all__ = ["label_masks", "positive_pairs"]


def label_masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """(B,) labels -> positive mask (same label, not itself) and negative mask (other label), both (B, B)."""
    check_labels(labels)
    same = labels[:, None] == labels[None, :]                          # (B, B)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def positive_pairs(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Every ordered anchor-positive pair (a, p), a != p, same label. -> two (M,) index tensors."""
    pos, _ = label_masks(labels)
    a, p = pos.nonzero(as_tuple=True)
    return a, p
