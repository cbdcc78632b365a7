"""course_lib's box operations and soft-argmax against torchvision's and kornia's, side by side, in one run.

    uv run python benchmarks/vision_ops.py            # on the CPU; --device cuda on a GPU

Ours are written to be read (lessons 06 and 07), theirs to be fast: the table says by how much, at the
sizes the lessons use and at larger ones. Each row checks first that both give the same answer, then
reports the median wall time of repeated calls and the ratio ours / theirs (> 1: ours is slower). kornia
(a dev dependency) has counterparts for box IoU (kornia.metrics.mean_iou_bbox), NMS
(kornia.geometry.bbox.nms) and soft-argmax (kornia.geometry.subpix.spatial_soft_argmax2d); "-" where it
has none. The table is printed and written to benchmarks/results/vision_ops-<device>.md.
"""
from __future__ import annotations

import argparse
import statistics

import torch
import torchvision
from _common import machine, timings, write_table
from torchvision.models.detection._utils import Matcher

from course_lib.detection import box_iou, make_anchors, match_anchors, match_batch, nms
from course_lib.pose import soft_argmax2d

try:
    import kornia
    from kornia.geometry.bbox import nms as kornia_nms
    from kornia.geometry.subpix import spatial_soft_argmax2d
    from kornia.metrics import mean_iou_bbox as kornia_box_iou
except ImportError:                                          # the table says "not installed"
    kornia = None


def median_seconds(fn, repeats: int, device: torch.device) -> float:
    return statistics.median(timings(fn, repeats, device))


def random_boxes(n: int, g: torch.Generator, size: float = 600.0) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * size
    return torch.cat([xy, xy + 8 + torch.rand(n, 2, generator=g) * size / 4], dim=1)


def torchvision_labels(iou: torch.Tensor, high: float, low: float) -> torch.Tensor:
    """torchvision's Matcher(high, low, allow_low_quality_matches=True) as object 1 / background 0 / ignored -1."""
    matched = Matcher(high, low, allow_low_quality_matches=True)(iou)
    return torch.where(matched >= 0, 1, torch.where(matched == Matcher.BELOW_LOW_THRESHOLD, 0, -1))


def soft_argmax_reference(h: torch.Tensor) -> torch.Tensor:
    """The usual compact implementation (softmax, then two weighted sums via einsum)."""
    b, k, rows, cols = h.shape
    p = torch.softmax(h.reshape(b, k, -1), -1).reshape(b, k, rows, cols)
    xs = torch.arange(cols, device=h.device, dtype=h.dtype)
    ys = torch.arange(rows, device=h.device, dtype=h.dtype)
    return torch.stack([torch.einsum("bkij,j->bk", p, xs), torch.einsum("bkij,i->bk", p, ys)], -1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=20)
    a = ap.parse_args()
    device = torch.device(a.device)
    torch.set_grad_enabled(False)
    g = torch.Generator().manual_seed(0)
    rows = []

    def row(name, ours, theirs, same, korn=None):
        """korn: (kornia's function, whether it gives our answer), or None where kornia has no counterpart."""
        t_ours, t_theirs = median_seconds(ours, a.repeats, device), median_seconds(theirs, a.repeats, device)
        t_korn = median_seconds(korn[0], a.repeats, device) if korn and kornia else None
        rows.append((name, same and (korn is None or kornia is None or korn[1]), 1e3 * t_ours, 1e3 * t_theirs,
                     None if t_korn is None else 1e3 * t_korn))

    for n, m in ((384, 3), (2000, 20), (20000, 50)):
        anchors, gt = random_boxes(n, g).to(device), random_boxes(m, g).to(device)
        same = torch.allclose(box_iou(gt, anchors), torchvision.ops.box_iou(gt, anchors), atol=1e-6)
        row(f"box_iou, {m} gt x {n} anchors", lambda: box_iou(gt, anchors),
            lambda: torchvision.ops.box_iou(gt, anchors), same,
            kornia and (lambda: kornia_box_iou(gt, anchors),
                        torch.allclose(box_iou(gt, anchors), kornia_box_iou(gt, anchors), atol=1e-6)))
        labels_ours = match_anchors(anchors, gt)[0]
        labels_tv = torchvision_labels(torchvision.ops.box_iou(gt, anchors), 0.7, 0.3)
        row(f"anchor matching, {m} gt x {n} anchors", lambda: match_anchors(anchors, gt),
            lambda: Matcher(0.7, 0.3, True)(torchvision.ops.box_iou(gt, anchors)),
            bool((labels_ours == labels_tv).all()))
    for n in (100, 1000, 4000):
        boxes = random_boxes(n, g, size=200.0).to(device)
        scores = torch.rand(n, generator=g).to(device)
        same = torch.equal(nms(boxes, scores, 0.5), torchvision.ops.nms(boxes, scores, 0.5))
        row(f"nms, {n} boxes", lambda: nms(boxes, scores, 0.5), lambda: torchvision.ops.nms(boxes, scores, 0.5), same,
            kornia and (lambda: kornia_nms(boxes, scores, 0.5), torch.equal(nms(boxes, scores, 0.5),
                                                                            kornia_nms(boxes, scores, 0.5))))
    # a batch of 64 canvases, 384 anchors, up to 3 digits each: our batched matcher vs a loop of torchvision's
    anchors = make_anchors((8, 8), 8, [10, 16, 24], [1, 2], device=device)
    gt = torch.stack([random_boxes(3, g, size=48.0) for _ in range(64)]).to(device)
    labels = torch.randint(-1, 10, (64, 3), generator=g).to(device)
    labels[:, 0] = labels[:, 0].clamp_min(0)

    def loop():
        return [Matcher(0.7, 0.3, True)(torchvision.ops.box_iou(gt[i][labels[i] >= 0], anchors)) for i in range(64)]
    ours = match_batch(anchors, gt, labels)[0]
    theirs = torch.stack([torchvision_labels(torchvision.ops.box_iou(gt[i][labels[i] >= 0], anchors), 0.7, 0.3)
                          for i in range(64)])
    row("match_batch, 64 images x 384 anchors (torchvision: a loop)", lambda: match_batch(anchors, gt, labels), loop,
        bool((ours == theirs).all()))
    for b, k, s in ((32, 11, 16), (256, 17, 64)):
        h = torch.randn(b, k, s, s, generator=g).to(device)
        one = torch.tensor(1.0, device=device)
        row(f"soft_argmax2d, {b} x {k} maps of {s} x {s} (torchvision: none; vs einsum)", lambda: soft_argmax2d(h),
            lambda: soft_argmax_reference(h), torch.allclose(soft_argmax2d(h), soft_argmax_reference(h), atol=1e-4),
            kornia and (lambda: spatial_soft_argmax2d(h, one, normalized_coordinates=False),
                        torch.allclose(soft_argmax2d(h), spatial_soft_argmax2d(h, one, False), atol=1e-4)))

    machine_name = machine(device)
    kornia_version = kornia.__version__ if kornia else "not installed (uv sync installs the dev group)"
    header = (f"# Vision ops: course_lib vs torchvision and kornia\n\n{machine_name}; torch {torch.__version__}, "
              f"torchvision {torchvision.__version__}, kornia {kornia_version}; median of {a.repeats} calls\n\n"
              "| operation | same result | ours (ms) | torchvision (ms) | kornia (ms) | ours / torchvision | ours / kornia |\n"
              "|---|---|---|---|---|---|---|\n")
    table = header + "".join(
        f"| {n} | {'yes' if s else 'NO'} | {o:.3f} | {t:.3f} | {'-' if k is None else f'{k:.3f}'} | {o / t:.2f} | "
        f"{'-' if k is None else f'{o / k:.2f}'} |\n" for n, s, o, t, k in rows)
    write_table(table, f"vision_ops-{device.type}")


if __name__ == "__main__":
    main()
