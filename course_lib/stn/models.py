"""The spatial transformers of lesson 05: affine (6 numbers) and projective (8 numbers).

A spatial transformer (Jaderberg et al., NIPS 2015) is three parts: a *localization network* that looks
at the image, a last linear layer (the *regressor*) that turns what it saw into the numbers of a grid,
and a *sampler* that reads the image on that grid. The last layer starts at zero weights and the
identity's bias, so an untrained transformer passes images through unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.models import check_images, fast_layout
from .geometry import homography_grid, warp

__all__ = ["localization_net", "SpatialTransformer", "ProjectiveTransformer", "predicted_theta", "STN"]


def localization_net(size: tuple[int, int] = (42, 42), width: int = 8, features: int = 32) -> nn.Sequential:
    """A small CNN that looks at images (B, 1, H, W) and returns ``features`` numbers each: (B, features).

    Pooled first (the grid needs the digit's position and pose, not its strokes), then two 5 x 5 convs and a
    hidden linear layer. The transformer's regressor turns the features into the grid's numbers.
    """
    h, w = size
    if min(h, w) < 28:
        raise ValueError(f"size must be at least (28, 28) for the localization network's pools and 5 x 5 convs, "
                         f"got {size}")
    net = nn.Sequential(
        nn.MaxPool2d(2), nn.Conv2d(1, width, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 5), nn.ReLU(), nn.Flatten())
    with torch.no_grad():
        flat = net(torch.zeros(1, 1, h, w)).shape[1]
    net.extend([nn.Linear(flat, features), nn.ReLU()])                                      # (B, features)
    return fast_layout(net)


class SpatialTransformer(nn.Module):
    """An affine spatial transformer: images (B, C, H, W) -> the images read on a predicted grid, (B, C, H', W').

    localization: any module images -> (B, features); out_size: (H', W'). The regressor nn.Linear(features, 6)
    gives theta's 6 numbers row by row; ``F.affine_grid`` + ``F.grid_sample`` (align_corners=False, zeros
    outside) read the image. Warp images in [0, 1], *before* a classifier normalizes them: the border reads 0.
    """

    params = 6                                                              # numbers of one grid
    identity = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)                               # theta [[1, 0, 0], [0, 1, 0]] row by row

    def __init__(self, localization: nn.Module, features: int, out_size: tuple[int, int]):
        super().__init__()
        self.localization, self.out_size = localization, tuple(out_size)
        self.regressor = nn.Linear(features, self.params)
        self.reset_to_identity()

    def reset_to_identity(self) -> None:
        """Zero weights and the identity's bias: the untrained transformer reads every pixel where it is."""
        nn.init.zeros_(self.regressor.weight)
        with torch.no_grad():
            self.regressor.bias.copy_(torch.tensor(self.identity))

    def forward(self, images: Tensor) -> Tensor:
        theta = self.regressor(self.localization(images)).view(-1, 2, 3)   # (B, 2, 3)
        return warp(images, theta, size=self.out_size)


class ProjectiveTransformer(SpatialTransformer):
    """A projective spatial transformer: the regressor gives 8 numbers, a homography h (B, 3, 3) with
    h[2, 2] = 1, read row by row; each output point (x, y) reads the input at (x_s / w, y_s / w) where
    (x_s, y_s, w) = h @ (x, y, 1). An affine theta is the special case of a last row (0, 0, 1)."""

    params = 8
    identity = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)

    def forward(self, images: Tensor) -> Tensor:
        p = self.regressor(self.localization(images))                                     # (B, 8)
        h = torch.cat([p, torch.ones_like(p[:, :1])], dim=1).view(-1, 3, 3)              # (B, 3, 3)
        grid = homography_grid(h, self.out_size)                                          # (B, H', W', 2)
        return F.grid_sample(images, grid, padding_mode="zeros", align_corners=False)


def predicted_theta(transformer: nn.Module, images: Tensor) -> Tensor:
    """The grid an affine transformer predicts for each image: (B, C, H, W) -> theta (B, 2, 3).

    Works for any module with ``localization`` and a 6-number ``regressor`` (yours from the exercise too).
    """
    return transformer.regressor(transformer.localization(images)).view(-1, 2, 3)


class STN(SpatialTransformer):
    """A ready-made affine transformer for digits (B, 1, H, W): :func:`localization_net` of ``size`` in front
    of a :class:`SpatialTransformer`. ``nn.Sequential(STN(...), classifier)`` puts it in front of any network;
    ``stn(x, return_theta=True)`` also returns theta (B, 2, 3).
    """

    def __init__(self, size: tuple[int, int] = (42, 42), out_size: tuple[int, int] | None = None, width: int = 8):
        super().__init__(localization_net(size, width), 32, out_size or size)
        self.size = tuple(size)

    def forward(self, x: Tensor, return_theta: bool = False):
        check_images(x, self.size, "STN")
        theta = predicted_theta(self, x)
        out = warp(x, theta, size=self.out_size)
        return (out, theta) if return_theta else out
