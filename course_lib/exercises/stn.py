"""Checkers for lesson 05.
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..stn.geometry import affine_theta, bilinear_weights, warp
from ..stn.models import SpatialTransformer, predicted_theta
from .harness import Case, fallback, like, run_checks

__all__ = ["check_affine_theta", "check_bilinear_weights", "check_spatial_transformer"]


@fallback(affine_theta)
def check_affine_theta(fn: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]) -> bool:
    """Check ``fn(angle, scale, tx, ty) -> theta``: (B,) tensors each, angle in degrees -> (B, 2, 3),
    theta = [[s cos a, s sin a, tx], [-s sin a, s cos a, ty]]: the sampling grid turned counter-clockwise on
    screen by a (y points down), scaled by s and shifted by (tx, ty) in normalized units.
    """
    g = torch.Generator().manual_seed(10)
    t = lambda *v: torch.tensor(v, dtype=torch.float32)
    cases = [
        Case("identity: angle 0, scale 1, no shift", (t(0.0), t(1.0), t(0.0), t(0.0)), t([[1, 0, 0], [0, 1, 0]])),
        Case("90° counter-clockwise", (t(90.0), t(1.0), t(0.0), t(0.0)), t([[0, 1, 0], [-1, 0, 0]])),
        Case("scale 0.5 and a shift (0.1, -0.2)", (t(0.0), t(0.5), t(0.1), t(-0.2)),
              t([[0.5, 0, 0.1], [0, 0.5, -0.2]])),
        Case("a batch of 4 random grids", (torch.rand(4, generator=g) * 360 - 180, torch.rand(4, generator=g) + 0.5,
                                            torch.rand(4, generator=g) - 0.5, torch.rand(4, generator=g) - 0.5)),
    ]
    rules = [
        ("The angle is in degrees: convert with torch.deg2rad(angle) before cos and sin.",
         like(lambda a, s, x, y: affine_theta(torch.rad2deg(a), s, x, y))),
        ("The grid turns the other way: with y pointing down, counter-clockwise on screen is "
         "[[cos, sin], [-sin, cos]] (sin in the top right).", like(lambda a, s, x, y: affine_theta(-a, s, x, y))),
        ("The shift is not scaled: scale multiplies the 2 x 2 part only, tx and ty go in the last column as they are.",
         like(lambda a, s, x, y: affine_theta(a, s, s * x, s * y))),
        ("The shift goes in the last column (column 2), x in row 0 and y in row 1.",
         like(lambda a, s, x, y: affine_theta(a, s, y, x))),
    ]
    return run_checks("affine theta", fn, cases, lambda *args: affine_theta(*args), rules,
                      "theta is (B, 2, 3): stack [s cos, s sin, tx] and [-s sin, s cos, ty] along dim 1.",
                      library=affine_theta)


def _bilinear_from(x: Tensor, y: Tensor, x0: Tensor, y0: Tensor, product: bool = True) -> Tensor:
    """Bilinear weights from given corners (the right ones are the floors); product=False adds instead."""
    dx, dy = x - x0, y - y0
    combine = (lambda a, b: a * b) if product else (lambda a, b: (a + b) / 2)
    return torch.stack([combine(1 - dx, 1 - dy), combine(dx, 1 - dy), combine(1 - dx, dy), combine(dx, dy)], 1)


@fallback(lambda x, y: bilinear_weights(x, y)[2], "course_lib.stn.bilinear_weights (the weights)")
def check_bilinear_weights(fn: Callable[[Tensor, Tensor], Tensor]) -> bool:
    """Check ``fn(x, y) -> weights``: sample points (N,) in pixel coordinates -> (N, 4), the weights of the
    pixels (floor x, floor y), (floor x + 1, floor y), (floor x, floor y + 1), (floor x + 1, floor y + 1):
    max(0, 1 - |x - col|) * max(0, 1 - |y - row|) for each.
    """
    g = torch.Generator().manual_seed(11)
    t = lambda *v: torch.tensor(v, dtype=torch.float32)
    cases = [
        Case("on a pixel centre (2, 3): all weight on the top-left pixel", (t(2.0), t(3.0)), t([1, 0, 0, 0])),
        Case("half-way between four pixels (2.5, 3.5)", (t(2.5), t(3.5)), t([0.25, 0.25, 0.25, 0.25])),
        Case("a quarter to the right (2.25, 3.0)", (t(2.25), t(3.0)), t([0.75, 0.25, 0, 0])),
        Case("10 random points", (torch.rand(10, generator=g) * 27, torch.rand(10, generator=g) * 27)),
        Case("negative coordinates (-0.5, -1.25)", (t(-0.5), t(-1.25))),
    ]
    reference = lambda x, y: bilinear_weights(x, y)[2]
    rules = [
        ("Each weight belongs to the pixel it is NEAR: the top-left pixel gets (1 − dx)(1 − dy), not dx·dy.",
         like(lambda x, y: reference(x, y).flip(1))),
        ("Round down with torch.floor (int() and .long() round negative numbers towards zero).",
         like(lambda x, y: _bilinear_from(x, y, x.trunc(), y.trunc()))),
        ("Multiply the x and y weights (the kernel is a product), do not add them.",
         like(lambda x, y: _bilinear_from(x, y, x.floor(), y.floor(), product=False))),
    ]
    return run_checks("bilinear weights", fn, cases, reference, rules,
                      "with dx = x − floor(x), dy = y − floor(y): weights [(1−dx)(1−dy), dx(1−dy), (1−dx)dy, dx·dy].",
                      library=bilinear_weights)


# ---------------------------------------------------------------------------------------------- the transformer
_FEATURES = 4                                               # what the checker's localization network returns


def _run(transformer: Callable, images: Tensor, out_size: tuple[int, int], loc_weight: Tensor,
         weight: Tensor | None = None, bias: Tensor | None = None) -> Tensor:
    """images (B, C, H, W) through ``transformer(localization, 4, out_size)`` -> (B, C, H', W').

    The localization network is flatten -> linear (weight ``loc_weight``, (4, C*H*W)) -> tanh. ``weight`` (6, 4)
    and ``bias`` (6,), when given, replace the regressor's: a transformer after some training. They enter as
    inputs, so the gradient check sees whether the loss reaches the localization network's parameters.
    """
    with torch.random.fork_rng(devices=[]):                 # nn.Linear's default init draws from the global RNG
        torch.manual_seed(0)
        localization = nn.Sequential(nn.Flatten(), nn.Linear(loc_weight.shape[1], _FEATURES, bias=False), nn.Tanh())
        module = transformer(localization, _FEATURES, out_size)
    params = {"localization.1.weight": loc_weight}
    params.update({k: v for k, v in (("regressor.weight", weight), ("regressor.bias", bias)) if v is not None})
    return torch.func.functional_call(module, params, (images,))


class _Variant(nn.Module):
    """The transformer of the exercise with one thing changed: the usual mistakes, for the checker's hints."""

    def __init__(self, localization, features, out_size, bias=(1.0, 0, 0, 0, 1, 0), zero=True, columns=False,
                 corners=False, input_size=False, inverse=False, padding="zeros"):
        super().__init__()
        self.localization, self.out_size = localization, tuple(out_size)
        self.regressor = nn.Linear(features, 6)
        self.columns, self.corners, self.input_size, self.inverse, self.padding = (
            columns, corners, input_size, inverse, padding)
        with torch.no_grad():
            if zero:
                self.regressor.weight.zero_()
            self.regressor.bias.copy_(torch.tensor(bias))

    def forward(self, images):
        p = self.regressor(self.localization(images))                                      # (B, 6)
        theta = p.view(-1, 3, 2).transpose(1, 2) if self.columns else p.view(-1, 2, 3)
        if self.inverse:
            a_inv = torch.linalg.inv(theta[:, :, :2])
            theta = torch.cat([a_inv, -a_inv @ theta[:, :, 2:]], dim=2)
        size = images.shape[-2:] if self.input_size else self.out_size
        grid = F.affine_grid(theta, (len(images), images.shape[1], *size), align_corners=self.corners)
        return F.grid_sample(images, grid, padding_mode=self.padding, align_corners=self.corners)


def _transformer_cases() -> list[Case]:
    g = torch.Generator().manual_seed(12)
    r = lambda *shape: torch.rand(*shape, generator=g)
    n = lambda *shape: torch.randn(*shape, generator=g)
    image = torch.arange(32.0).view(2, 1, 4, 4) / 32                                      # 2 images of 4 x 4
    shifted = torch.cat([image[..., 1:], torch.zeros(2, 1, 4, 1)], dim=-1)               # one pixel left, 0 enters
    return [
        Case("untrained, 2 images of 4 x 4: every pixel reads itself", (image, (4, 4), n(4, 16)), image),
        Case("untrained, 3 channels, a 6 x 6 input read onto a 5 x 7 output", (r(2, 3, 6, 6), (5, 7), n(4, 108))),
        Case("regressor giving a grid shifted right by one pixel (tx = 2/4): the output moves one pixel left",
             (image, (4, 4), n(4, 16), torch.zeros(6, 4), torch.tensor([1.0, 0, 0.5, 0, 1, 0])), shifted),
        Case("trained regressor (random weights and bias), 3 channels, 8 x 8 -> 6 x 6",
             (r(3, 3, 8, 8), (6, 6), 0.1 * n(4, 192), 0.3 * n(6, 4), torch.tensor([0.9, 0.2, 0.1, -0.1, 1.1, 0])),
             grad="match"),
        Case("a grid larger than the image (it reads outside), 8 x 8 -> 10 x 12",
             (r(2, 1, 8, 8), (10, 12), 0.1 * n(4, 64), 0.3 * n(6, 4), torch.tensor([1.4, -0.3, 0.2, 0.4, 1.3, -0.1])),
             grad="match"),
    ]


@fallback(SpatialTransformer)
def check_spatial_transformer(transformer: Callable[[nn.Module, int, tuple[int, int]], nn.Module]) -> bool:
    """Check a transformer class ``transformer(localization, features, out_size)``: an nn.Module whose
    ``regressor = nn.Linear(features, 6)`` starts as the identity grid (zero weights, bias [1, 0, 0, 0, 1, 0]),
    and whose forward maps images (B, C, H, W) -> regressor(localization(images)) as theta (B, 2, 3) ->
    affine_grid for (B, C, *out_size) -> grid_sample, align_corners=False, zeros outside -> (B, C, H', W').
    """
    variant = lambda **changed: like(lambda *args: _run(partial(_Variant, **changed), *args))
    rules = [
        ("θ's 6 numbers are its two ROWS one after the other: .view(-1, 2, 3), not a (3, 2) view transposed.",
         variant(columns=True)),
        ("The identity θ is [[1, 0, 0], [0, 1, 0]]: which six numbers, in which order, does .view(B, 2, 3) read "
         "into it?",
         variant(bias=(1.0, 0, 0, 1, 0, 0))),
        ("Untrained, θ must be the identity for EVERY image: with the regressor's random starting weights it "
         "depends on the image. What must the weights be so that only the bias counts?", variant(zero=False)),
        ("Make the grid for out_size: affine_grid's size is (B, C, *out_size), not the input's (B, C, H, W).",
         variant(input_size=True)),
        ("Use align_corners=False in affine_grid and in grid_sample (the course's convention, PyTorch's default): "
         "±1 are the outer edges of the border pixels.", variant(corners=True)),
        ("θ maps each OUTPUT pixel to the input point it reads: use it as it is, not its inverse (a grid shifted "
         "right makes the output move left).", variant(inverse=True)),
        ("Points outside the input read 0, the background: padding_mode='zeros' (grid_sample's default), not "
         "'border'.", variant(padding="border")),
    ]
    return run_checks("spatial transformer", lambda *args: _run(transformer, *args), _transformer_cases(),
                      lambda *args: _run(SpatialTransformer, *args), rules,
                      "θ comes from regressor(localization(images)) as (B, 2, 3); the grid's size is the "
                      "output's, (B, C, *out_size); the sampler reads the input on that grid, with the course's "
                      "align_corners=False and zeros outside.",
                      library=(SpatialTransformer.__init__, SpatialTransformer.forward,
                               SpatialTransformer.reset_to_identity, predicted_theta, warp))
