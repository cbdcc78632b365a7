"""Small networks for MNIST-sized images, quick enough to train on a laptop CPU: an embedding network,
a digit classifier, and a spatial transformer to put in front of either.

Two details make them faster without changing what they compute:

* each block max-pools *before* its ReLU. ReLU is monotone, so relu(max of a window) = max of the relu'd
  window, also for the gradients; the ReLU then touches a quarter of the pixels. (This does not hold for
  average pooling.)
* :func:`fast_layout` stores their conv weights channels-last. Their feature maps are then channels-last
  too: use ``reshape`` rather than ``view`` on them.
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from .geometry import warp

__all__ = ["EmbeddingNet", "DigitClassifier", "STN", "fast_layout", "textbook_layout"]

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


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


class EmbeddingNet(nn.Module):
    """f: image (B, 1, H, W) in [0, 1] -> embedding (B, D); (H, W) = ``input_size``, (28, 28) by default.

    Two conv blocks and two linear layers, in the spirit of the MNIST Siamese networks of Hadsell
    et al. 2006. A Siamese network is this one module applied to both images of a pair: the
    weights are shared because they are the same weights. ``normalize=True`` puts every embedding
    on the unit sphere (FaceNet, Schroff et al. 2015), so that distances lie in [0, 2] and a margin
    means the same thing throughout training.
    """

    def __init__(self, embedding_dim: int = 2, width: int = 32, normalize: bool = False,
                 input_size: tuple[int, int] = (28, 28)):
        super().__init__()
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        h, w = input_size
        if h < 16 or w < 16:
            raise ValueError(f"input_size must be at least (16, 16) for two 5x5 conv + pool blocks, got {input_size}")
        self.embedding_dim, self.normalize, self.input_size = embedding_dim, normalize, (h, w)
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 5), nn.BatchNorm2d(width), nn.MaxPool2d(2), nn.ReLU(),              # (B, w, 12, 12)
            nn.Conv2d(width, 2 * width, 5), nn.BatchNorm2d(2 * width), nn.MaxPool2d(2), nn.ReLU(),  # (B, 2w, 4, 4)
            nn.Flatten(),
        )                                                   # sizes for 28 x 28; 28 x 56 gives (B, 2w, 4, 11)
        flat = 2 * width * ((h - 4) // 2 - 4) // 2 * (((w - 4) // 2 - 4) // 2)
        self.head = nn.Sequential(nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, embedding_dim))
        fast_layout(self)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1:] != (1, *self.input_size):
            raise ValueError(f"EmbeddingNet expects images of shape (B, 1, {self.input_size[0]}, {self.input_size[1]}), "
                             f"got {tuple(x.shape)}; pass input_size=(H, W) for other image sizes")
        e = self.head(self.features((x - MNIST_MEAN) / MNIST_STD))  # (B, D)
        return nn.functional.normalize(e, dim=1) if self.normalize else e


def _check_images(x: Tensor, size: tuple[int, int], who: str) -> None:
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
        _check_images(x, self.size, "DigitClassifier")
        return self.head(self.features((x - MNIST_MEAN) / MNIST_STD))


class STN(nn.Module):
    """A spatial transformer (Jaderberg et al. 2015): x (B, 1, H, W) -> x resampled on a predicted grid.

    A small localization network looks at the image and regresses the 6 numbers of theta (B, 2, 3);
    ``geometry.warp`` (``affine_grid`` + ``grid_sample``) then reads the image on that grid. The last
    layer starts at zero weights and the identity's bias, so an untrained STN passes images through
    unchanged and training starts from the plain classifier. ``nn.Sequential(STN(...), classifier)``
    puts it in front of any network; ``stn(x, return_theta=True)`` also returns theta.
    The image is warped in [0, 1], *before* the classifier normalizes it, so the border reads 0 =
    background.
    """

    def __init__(self, size: tuple[int, int] = (42, 42), out_size: tuple[int, int] | None = None, width: int = 8):
        super().__init__()
        self.size, self.out_size = tuple(size), tuple(out_size or size)
        self.localization = nn.Sequential(
            nn.MaxPool2d(2), nn.Conv2d(1, width, 5), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 5), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            flat = self.localization(torch.zeros(1, 1, *self.size)).shape[1]
        self.regressor = nn.Sequential(nn.Linear(flat, 32), nn.ReLU(), nn.Linear(32, 6))
        self.reset_to_identity()
        fast_layout(self)

    def reset_to_identity(self) -> None:
        """Last layer: zero weights, bias = the identity theta [[1, 0, 0], [0, 1, 0]]."""
        last = self.regressor[-1]
        nn.init.zeros_(last.weight)
        with torch.no_grad():
            last.bias.copy_(torch.tensor([1.0, 0, 0, 0, 1, 0]))

    def theta(self, x: Tensor) -> Tensor:
        """The predicted sampling grid of each image: (B, 1, H, W) -> (B, 2, 3)."""
        _check_images(x, self.size, "STN")
        return self.regressor(self.localization(x)).view(-1, 2, 3)

    def forward(self, x: Tensor, return_theta: bool = False):
        theta = self.theta(x)
        out = warp(x, theta, size=self.out_size)
        return (out, theta) if return_theta else out
