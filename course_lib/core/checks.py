"""Input checks shared by the library. Each error says what was expected, what arrived and how to fix it.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_embeddings", "check_labels", "check_same_device"]


def check_embeddings(x: Tensor, name: str = "embeddings") -> None:
    """x must be a floating (B, D) tensor."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (B, D), got {type(x).__name__}")
    if x.ndim != 2:
        hint = " (flatten or call the model first)" if x.ndim > 2 else " (add a batch dimension with x[None])"
        raise ValueError(f"{name} must have shape (B, D), got shape {tuple(x.shape)}{hint}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got dtype {x.dtype} (use x.float())")


def check_labels(labels: Tensor, n: int | None = None, name: str = "labels") -> None:
    """labels must be an integer (B,) tensor with n entries when n is given."""
    if not isinstance(labels, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (B,), got {type(labels).__name__}")
    if labels.ndim != 1:
        raise ValueError(f"{name} must have shape (B,), got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class ids, got dtype {labels.dtype} (use labels.long())")
    if n is not None and labels.shape[0] != n:
        raise ValueError(f"{name} has {labels.shape[0]} entries but there are {n} embeddings: "
                         "pass one label per embedding")


def check_same_device(*tensors: Tensor) -> None:
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise ValueError(f"inputs are on different devices {sorted(map(str, devices))}: move them with .to(device)")
