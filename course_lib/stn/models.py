"""The Spatial Transformer Network of lesson 05.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..core.models import check_images, fast_layout
from .geometry import warp

__all__ = ["STN"]


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
        check_images(x, self.size, "STN")
        return self.regressor(self.localization(x)).view(-1, 2, 3)

    def forward(self, x: Tensor, return_theta: bool = False):
        theta = self.theta(x)
        out = warp(x, theta, size=self.out_size)
        return (out, theta) if return_theta else out
