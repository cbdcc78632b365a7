"""Checkers for lesson 05.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..stn.geometry import affine_theta, bilinear_weights
from .harness import Case, fallback, like, run_checks

__all__ = ["check_affine_theta", "check_bilinear_weights"]


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
