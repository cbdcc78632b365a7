"""The classification losses of lesson 08 (normalized softmax, ArcFace, Proxy-NCA) vs pytorch-metric-learning's,
forward + backward, side by side.

    uv run python benchmarks/proxy_losses.py        # B = 256, 1024, 4096; C = 100 classes; D = 128 on the CPU

Both get the same embeddings, labels and class vectors (PML stores its W as (D, C)). Reported: the median wall time
of a forward and backward pass, the ratio ours / PML (< 1: ours is faster) and the difference of the two losses.
Normalized softmax and ArcFace agree with PML (scale = 1 / temperature; ArcFace's margin in radians here, in degrees
there). PML's ProxyNCALoss differs in convention (it keeps the positive proxy in the denominator, an NCA over all
proxies), so its loss is shown but not expected to match. The table goes to benchmarks/results/proxy-losses-cpu.md.
"""
from __future__ import annotations

import argparse
import math
import statistics

import torch
from _common import machine, timings, write_table
from pytorch_metric_learning.losses import ArcFaceLoss, NormalizedSoftmaxLoss, ProxyNCALoss

from course_lib.similarity import arcface_loss, normalized_softmax_loss, proxy_nca_loss


def forward_backward(loss_fn, e):
    def run():
        e.grad = None
        loss = loss_fn(e)
        loss.backward()
        return loss
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", default="256,1024,4096", help="comma-separated batch sizes")
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=10)
    a = ap.parse_args()
    scale, margin = 16.0, 0.5
    rows = []
    for batch in (int(b) for b in a.batch.split(",")):
        torch.manual_seed(0)
        e = torch.randn(batch, a.dim, requires_grad=True)
        y = torch.randint(0, a.classes, (batch,))
        w = torch.randn(a.classes, a.dim)
        ns, arc = NormalizedSoftmaxLoss(a.classes, a.dim, temperature=1 / scale), ArcFaceLoss(
            a.classes, a.dim, margin=math.degrees(margin), scale=scale)
        nca = ProxyNCALoss(a.classes, a.dim, softmax_scale=scale)
        for pml in (ns, arc):
            pml.W.data = w.T.clone()
        nca.proxies.data = w.clone()
        cases = {"normalized softmax": (lambda x: normalized_softmax_loss(x, y, w, scale), lambda x: ns(x, y)),
                 "ArcFace": (lambda x: arcface_loss(x, y, w, margin, scale), lambda x: arc(x, y)),
                 "Proxy-NCA": (lambda x: proxy_nca_loss(x, y, w, scale), lambda x: nca(x, y))}
        for name, (ours, theirs) in cases.items():
            t_ours, t_pml = (statistics.median(timings(forward_backward(f, e), a.repeats)) for f in (ours, theirs))
            diff = abs(ours(e).item() - theirs(e).item())
            rows.append((batch, name, 1e3 * t_ours, 1e3 * t_pml, diff))
            print(f"B={batch:<5} {name:<19} ours {1e3 * t_ours:8.2f} ms  PML {1e3 * t_pml:8.2f} ms  "
                  f"ours/PML {t_ours / t_pml:5.2f}  |loss difference| {diff:.2e}", flush=True)
    table = (f"# Proxy losses: course_lib vs pytorch-metric-learning (forward + backward)\n\n{machine()}; torch "
             f"{torch.__version__}; C={a.classes}, D={a.dim}, scale {scale}, ArcFace margin {margin} rad; median of "
             f"{a.repeats} calls. Proxy-NCA: PML keeps the positive proxy in the denominator, so its loss differs.\n\n"
             "| B | loss | ours (ms) | PML (ms) | ours / PML | loss difference |\n|---|---|---|---|---|---|\n")
    table += "".join(f"| {b} | {n} | {o:.2f} | {t:.2f} | {o / t:.2f} | {d:.1e} |\n" for b, n, o, t, d in rows)
    write_table(table, "proxy-losses-cpu")


if __name__ == "__main__":
    main()
