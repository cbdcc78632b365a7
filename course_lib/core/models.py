"""Parts shared by the lessons' networks: the memory layout, and the plain digit classifier of 05 and 06
(with its training step and error rate).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import check_labels
from .training import embed

__all__ = ["MNIST_MEAN", "MNIST_STD", "fast_layout", "textbook_layout", "check_images", "DigitClassifier",
           "classify_step", "error_rate"]


MNIST_MEAN, MNIST_STD = 0.1307, 0.3081   # the training images' mean and standard deviation


def fast_layout(module: nn.Module) -> nn.Module:
    """Store the module's 4-D weights channels-last (each pixel's channels side by side in memory) and
    return it; call it last in ``__init__``. Values and shapes do not change (``weight.is_contiguous()``
    becomes False). Convolutions then write channels-last feature maps, and the max-pools and ReLUs after
    them run on that layout, which PyTorch's CPU kernels (oneDNN) handle faster than (N, C, H, W): together
    with pooling before ReLU, a DigitClassifier training step on 2 CPU cores runs about 1.8x faster
    (benchmarks/results/training_loop-cpu.md: the hand loop on both layouts).
    """
    return module.to(memory_format=torch.channels_last)


def textbook_layout(module: nn.Module) -> nn.Module:
    """A copy of a course network as textbooks write it: contiguous (N, C, H, W) weights and each ReLU
    before its max-pool. Same weights, same function; the slow reference for tests and benchmarks."""
    ref = copy.deepcopy(module).to(memory_format=torch.contiguous_format)
    for seq in ref.modules():
        if isinstance(seq, nn.Sequential):
            for i in range(len(seq) - 1):
                if isinstance(seq[i], nn.MaxPool2d) and isinstance(seq[i + 1], nn.ReLU):
                    seq[i], seq[i + 1] = seq[i + 1], seq[i]
    return ref


def check_images(x: Tensor, size: tuple[int, int], who: str) -> None:
    if x.ndim != 4 or x.shape[1:] != (1, *size):
        raise ValueError(f"{who} expects images of shape (B, 1, {size[0]}, {size[1]}), got {tuple(x.shape)}; "
                         f"pass size=(H, W) for other image sizes")


class DigitClassifier(nn.Module):
    """A small CNN: image (B, 1, H, W) in [0, 1] -> logits (B, classes).

    Two 5 x 5 conv + 2 x 2 max-pool blocks and two linear layers, like the CNN baseline of the STN
    paper. Its only built-in invariance is the pooling's few pixels of translation.
    """

    def __init__(self, size: tuple[int, int] = (42, 42), width: int = 16, classes: int = 10):
        super().__init__()
        h, w = size
        if h < 8 or w < 8:
            raise ValueError(f"size must be at least (8, 8) for two conv + pool blocks, got {size}")
        self.size = (h, w)
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),                # (B, w, H/2, W/2)
            nn.Conv2d(width, 2 * width, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),        # (B, 2w, H/4, W/4)
            nn.Flatten())
        self.head = nn.Sequential(nn.Linear(2 * width * (h // 2 // 2) * (w // 2 // 2), 128), nn.ReLU(),
                                  nn.Linear(128, classes))
        fast_layout(self)

    def forward(self, x: Tensor) -> Tensor:
        check_images(x, self.size, "DigitClassifier")
        return self.head(self.features((x - MNIST_MEAN) / MNIST_STD))


def classify_step(model: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """A step for ``(images, labels)`` batches: cross-entropy of the model's logits; records the accuracy."""
    x, y = batch
    logits = model(x)                                                   # (B, classes)
    return F.cross_entropy(logits, y), {"accuracy": (logits.argmax(1) == y).float().mean()}


def error_rate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1000) -> float:
    """Share of the images x (N, ...) whose highest logit is not their label y (N,); in eval mode."""
    check_labels(y, len(x))
    logits = embed(model, x, batch_size=batch_size)                    # (N, classes), no gradients
    return float((logits.argmax(1) != y).float().mean())
