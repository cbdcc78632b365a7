"""The embedding network of lessons 01-04.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..core.models import MNIST_MEAN, MNIST_STD, fast_layout

__all__ = ["EmbeddingNet"]


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
