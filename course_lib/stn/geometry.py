"""Sampling grids for Spatial Transformer Networks (Jaderberg et al., NIPS 2015), with PyTorch's conventions.

``F.affine_grid(theta, size)`` and ``F.grid_sample(image, grid)`` work in *normalized coordinates*:
x runs from -1 (left edge) to +1 (right edge) and y from -1 (top) to +1 (bottom), whatever the image
size. theta (B, 2, 3) maps every *output* pixel to the place in the *input* where it is read:

    (x_s, y_s) = theta @ (x_t, y_t, 1)        t: target (output) pixel, s: source (input) point.

So theta moves the **sampling grid**, not the image: a grid scaled by 0.5 reads the central half of
the input, and the output shows it magnified twice; a grid shifted right by one pixel makes the
output move one pixel *left*.

``align_corners`` says where -1 and +1 are. False (the default, used everywhere here): at the outer
edges of the border pixels, so one pixel is 2 / W wide. True: at the centres of the border pixels, so
one pixel is 2 / (W - 1). :func:`pixels_to_normalized` converts.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["affine_theta", "theta_parts", "compose", "pixels_to_normalized", "normalized_to_pixels",
           "sampling_points", "warp", "homography_grid", "bilinear_weights"]


Number = float | int | Tensor


def _batch(*values: Number) -> list[Tensor]:
    """Broadcast floats and (B,) tensors to a common (B,) float tensor each (B = 1 for all scalars)."""
    tensors = [v for v in values if isinstance(v, Tensor)]
    device = tensors[0].device if tensors else None
    dtype = tensors[0].dtype if tensors and tensors[0].is_floating_point() else torch.float32
    out = [torch.as_tensor(v, dtype=dtype, device=device).reshape(-1) for v in values]
    try:
        return list(torch.broadcast_tensors(*out))
    except RuntimeError:
        sizes = [len(v) for v in out]
        raise ValueError(f"angle, scale, tx, ty and shear must be numbers or tensors of one length B, "
                         f"got lengths {sizes}") from None


def affine_theta(angle: Number = 0.0, scale: Number = 1.0, tx: Number = 0.0, ty: Number = 0.0,
                 shear: Number = 0.0) -> Tensor:
    """The (B, 2, 3) theta of a sampling grid that is sheared, scaled, rotated and then shifted.

    angle: degrees, counter-clockwise *on screen* (y points down, so the matrix is
           [[cos, sin], [-sin, cos]], as on the lecture's slide); the output then shows the image
           turned clockwise by the same angle.
    scale: size of the grid; < 1 reads a smaller region, so the output zooms in.
    tx, ty: shift of the grid in normalized units (one pixel = 2 / W, see ``pixels_to_normalized``).
    shear: x moves by shear * y before scaling and rotation.
    Numbers or (B,) tensors (broadcast together); all numbers give B = 1.

        theta = [ scale * R(angle) @ [[1, shear], [0, 1]]  |  (tx, ty) ]

    >>> affine_theta()                                      # the identity: every output pixel reads itself
    tensor([[[1., 0., 0.],
             [0., 1., 0.]]])
    >>> affine_theta(angle=30, scale=2.0, tx=0.25).round(decimals=4)
    tensor([[[ 1.7321,  1.0000,  0.2500],
             [-1.0000,  1.7321,  0.0000]]])
    """
    angle, scale, tx, ty, shear = _batch(angle, scale, tx, ty, shear)
    if (scale <= 0).any():
        raise ValueError(f"scale must be positive (a grid of size 0 or a mirrored one), got {scale.tolist()}")
    a = torch.deg2rad(angle)
    cos, sin = torch.cos(a), torch.sin(a)
    row0 = torch.stack([scale * cos, scale * (cos * shear + sin), tx], dim=1)        # (B, 3)
    row1 = torch.stack([-scale * sin, scale * (-sin * shear + cos), ty], dim=1)
    return torch.stack([row0, row1], dim=1) + 0.0                # (B, 2, 3); + 0.0 prints -0.0 (from -sin 0) as 0


def theta_parts(theta: Tensor) -> dict[str, Tensor]:
    """Read a shear-free theta (B, 2, 3) back as angle (degrees), scale (sqrt of |det|), tx and ty.

    For a general affine theta, ``angle`` is the direction of the grid's x axis and ``scale`` its mean
    stretch: the numbers to compare with the ones a distortion was made from.
    """
    _check_theta(theta)
    a, c = theta[:, 0, 0], theta[:, 1, 0]                              # image of the x axis
    det = theta[:, 0, 0] * theta[:, 1, 1] - theta[:, 0, 1] * theta[:, 1, 0]
    return {"angle": torch.rad2deg(torch.atan2(-c, a)), "scale": det.abs().sqrt(),
            "tx": theta[:, 0, 2], "ty": theta[:, 1, 2]}


def compose(outer: Tensor, inner: Tensor) -> Tensor:
    """theta of reading through ``inner`` and then ``outer``: output -> inner -> outer -> source.

    (B, 2, 3) each. If image V = warp(U, outer) and W = warp(V, inner), then W = warp(U, compose(outer, inner))
    (up to interpolation): the STN's theta composed with the distortion's tells how far the STN undid it.
    """
    _check_theta(outer)
    _check_theta(inner)
    out = outer[:, :, :2] @ inner                                      # linear parts, inner's shift mapped
    out[:, :, 2] += outer[:, :, 2]                                     # plus outer's shift
    return out


def pixels_to_normalized(pixels: Number, size: int, align_corners: bool = False) -> Number:
    """A length in pixels as a length in normalized units, for an image ``size`` pixels across."""
    if size < 2:
        raise ValueError(f"an image must be at least 2 pixels across, got {size}")
    return 2 * pixels / (size - 1 if align_corners else size)


def normalized_to_pixels(coords: Tensor, size: int, align_corners: bool = False) -> Tensor:
    """Normalized coordinates (-1 ... 1) as pixel coordinates (0 = centre of the first pixel)."""
    if align_corners:
        return (coords + 1) * (size - 1) / 2
    return ((coords + 1) * size - 1) / 2


def _check_theta(theta: Tensor) -> None:
    if not isinstance(theta, Tensor) or theta.dim() != 3 or theta.shape[1:] != (2, 3):
        shape = tuple(theta.shape) if isinstance(theta, Tensor) else type(theta).__name__
        raise ValueError(f"theta must be a (B, 2, 3) tensor (one 2x3 matrix per image), got {shape}; "
                         "affine_theta(...) builds one")


def sampling_points(theta: Tensor, size: tuple[int, int], align_corners: bool = False) -> Tensor:
    """Where each output pixel reads the input, in input *pixel* coordinates. -> (B, H, W, 2) as (x, y).

    size: (H, W) of the output (and of the input, which this assumes has the same size).
    """
    _check_theta(theta)
    h, w = size
    grid = F.affine_grid(theta, (len(theta), 1, h, w), align_corners=align_corners)      # (B, H, W, 2)
    return torch.stack([normalized_to_pixels(grid[..., 0], w, align_corners),
                        normalized_to_pixels(grid[..., 1], h, align_corners)], dim=-1)


def warp(images: Tensor, theta: Tensor, size: tuple[int, int] | None = None, align_corners: bool = False,
         padding_mode: str = "zeros", mode: str = "bilinear") -> Tensor:
    """Resample images (B, C, H, W) through theta (B, 2, 3) (or (1, 2, 3) for all) -> (B, C, H', W').

    Exactly what an STN does: ``F.affine_grid`` then ``F.grid_sample``. Points outside the input read
    ``padding_mode``: "zeros" is the right background for images whose background is 0 (MNIST in
    [0, 1]), so warp *before* normalizing them (an image normalized to mean 0 would get a grey border).
    """
    _check_theta(theta)
    if images.dim() != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    if len(theta) == 1 and len(images) > 1:
        theta = theta.expand(len(images), 2, 3)
    if len(theta) != len(images):
        raise ValueError(f"one theta per image: got {len(theta)} thetas for {len(images)} images")
    h, w = size if size is not None else images.shape[-2:]
    grid = F.affine_grid(theta.to(images.dtype), (len(images), images.shape[1], h, w), align_corners=align_corners)
    return F.grid_sample(images, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)


def homography_grid(h: Tensor, size: tuple[int, int], align_corners: bool = False) -> Tensor:
    """Sampling grid (B, H, W, 2) of a projective map h (B, 3, 3) in normalized coordinates:
    (x_s, y_s, w) = h @ (x_t, y_t, 1), read at (x_s / w, y_s / w). With h = [theta; 0 0 1] it is affine_grid."""
    if h.dim() != 3 or h.shape[1:] != (3, 3):
        raise ValueError(f"a homography must be (B, 3, 3), got {tuple(h.shape)}")
    rows, cols = size
    eye = torch.eye(2, 3, dtype=h.dtype, device=h.device)[None]
    base = F.affine_grid(eye, (1, 1, rows, cols), align_corners=align_corners)            # (1, H, W, 2)
    ones = torch.ones_like(base[..., :1])
    points = torch.cat([base, ones], dim=-1)                                               # (1, H, W, 3)
    mapped = torch.einsum("bij,nhwj->bhwi", h, points)                                     # (B, H, W, 3)
    return mapped[..., :2] / mapped[..., 2:].clamp_min(1e-6)


def bilinear_weights(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The four pixels a bilinear sampler reads for points (x, y) in pixel coordinates, with weights.

    x, y: (N,). Returns ``cols`` (N, 4), ``rows`` (N, 4) and ``weights`` (N, 4) for the corners
    top-left, top-right, bottom-left, bottom-right:
    weight = max(0, 1 - |x - col|) * max(0, 1 - |y - row|), the lecture's sampling kernel.
    """
    x0, y0 = torch.floor(x), torch.floor(y)
    dx, dy = x - x0, y - y0
    cols = torch.stack([x0, x0 + 1, x0, x0 + 1], dim=1).long()
    rows = torch.stack([y0, y0, y0 + 1, y0 + 1], dim=1).long()
    weights = torch.stack([(1 - dx) * (1 - dy), dx * (1 - dy), (1 - dx) * dy, dx * dy], dim=1)
    return cols, rows, weights
