"""The 1-D correlation layer of lesson 09 three ways: course_lib's correlation_1d (a Python loop over the D
disparities, one slice and product per d), all shifts at once (one strided view of the padded right features and
one einsum), and the cost volume built with F.unfold (every shift copied out, as an im2col would).

    uv run python benchmarks/correlation.py                 # on the CPU; --device cuda on a GPU

Sizes: the lesson's (a batch of 8 feature maps of 64 x 96 with 64 channels, D = 16, as MC-CNN-fast's features
of the synthetic pairs) and a KITTI-like one (1 map of 64 channels, 376 x 1240 at half resolution, 188 x 620,
D = 64). Each row checks first that all three agree, then reports the median wall time of forward and of forward
+ backward, in ms. The table goes to benchmarks/results/correlation-<device>.md.
"""
from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F
from _common import machine, timings, write_table

from course_lib.stereo import correlation_1d


def one_einsum(f1: torch.Tensor, f2: torch.Tensor, d_max: int) -> torch.Tensor:
    """Every shift at once: a strided view (B, C, H, D, W) of the zero-padded right features, one einsum."""
    shifted = F.pad(f2, (d_max - 1, 0)).unfold(3, f1.shape[-1], 1).flip(3)
    return torch.einsum("bchw,bchdw->bdhw", f1, shifted) / f1.shape[1]


def with_unfold(f1: torch.Tensor, f2: torch.Tensor, d_max: int) -> torch.Tensor:
    """F.unfold copies a 1 x D window of the padded right features per pixel: (B, C * D, H * W), then a product."""
    b, c, h, w = f1.shape
    cols = F.unfold(F.pad(f2, (d_max - 1, 0)), (1, d_max)).reshape(b, c, d_max, h, w).flip(2)
    return (f1[:, :, None] * cols).mean(1)


def median_ms(fn, repeats: int, device: torch.device) -> float:
    return 1e3 * statistics.median(timings(fn, repeats, device))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    device = torch.device(a.device)
    sizes = [("lesson", (8, 64, 64, 96), 16), ("KITTI / 2", (1, 64, 188, 620), 64)]
    methods = {"correlation_1d (a loop over d)": correlation_1d, "one einsum over a strided view": one_einsum,
               "F.unfold volume": with_unfold}
    rows = []
    for label, shape, d_max in sizes:
        g = torch.Generator(device=device).manual_seed(0)
        f1 = torch.randn(*shape, generator=g, device=device, requires_grad=True)
        f2 = torch.randn(*shape, generator=g, device=device, requires_grad=True)
        reference = correlation_1d(f1, f2, d_max).detach()
        for name, fn in methods.items():
            torch.testing.assert_close(fn(f1, f2, d_max).detach(), reference, rtol=1e-4, atol=1e-5)
            with torch.no_grad():
                forward = median_ms(lambda: fn(f1, f2, d_max), a.repeats, device)
            both = median_ms(lambda: fn(f1, f2, d_max).sum().backward(), a.repeats, device)
            rows.append((label, shape, d_max, name, forward, both))
            print(f"{label:<10} {name:<32} forward {forward:9.2f} ms  forward + backward {both:9.2f} ms", flush=True)
    table = (f"# The 1-D correlation layer: three implementations\n\n{machine(device)}; torch {torch.__version__}; "
             f"median of {a.repeats} calls after a warm-up; float32. All three agree (checked before timing).\n\n"
             "| size | (B, C, H, W) | D | implementation | forward (ms) | forward + backward (ms) |\n"
             "|---|---|---|---|---|---|\n")
    table += "".join(f"| {lab} | {tuple(s)} | {d} | {n} | {f:.2f} | {fb:.2f} |\n" for lab, s, d, n, f, fb in rows)
    write_table(table, f"correlation-{device.type}")


if __name__ == "__main__":
    main()
