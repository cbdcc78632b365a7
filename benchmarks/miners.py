"""Our miners vs pytorch-metric-learning's, side by side, in one run.

    uv run python benchmarks/miners.py            # B=1024, D=128 on the CPU

Both get the same unit-normalised embeddings (PML's default LpDistance normalises them) and the
same P x K labels. Reported: the median wall time of repeated calls, and the ratio PML / ours
(> 1 means ours is faster), and how many triplets the two sets do not share (semi-hard triplets
exactly on the margin can fall either side, as the two compute distances in float32 differently).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from pytorch_metric_learning.miners import BatchHardMiner, TripletMarginMiner

from course_lib.mining import batch_hard_triplets, semi_hard_triplets


def median_seconds(fn, repeats: int) -> float:
    fn()                                                     # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def as_set(triplets) -> set:
    return set(zip(*(t.tolist() for t in triplets)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--classes", type=int, default=64, help="P classes; K = batch / P samples each")
    ap.add_argument("--margin", type=float, default=0.2)
    ap.add_argument("--repeats", type=int, default=10)
    a = ap.parse_args()
    torch.manual_seed(0)
    labels = torch.arange(a.classes).repeat_interleave(a.batch // a.classes)
    centres = torch.randn(a.classes, a.dim)
    e = F.normalize(centres[labels] + 2.0 * torch.randn(len(labels), a.dim), dim=1)
    print(f"B={len(labels)}, D={a.dim}, P={a.classes}, K={a.batch // a.classes}, "
          f"threads={torch.get_num_threads()}, torch {torch.__version__}")

    pml_hard, pml_semi = BatchHardMiner(), TripletMarginMiner(margin=a.margin, type_of_triplets="semihard")
    cases = {
        "batch-hard": (lambda: batch_hard_triplets(e, labels), lambda: pml_hard(e, labels)),
        "semi-hard": (lambda: semi_hard_triplets(e, labels, a.margin), lambda: pml_semi(e, labels)),
    }
    print(f"{'miner':<12}{'ours (ms)':>12}{'PML (ms)':>12}{'PML/ours':>10}{'triplets':>10}  differing triplets")
    for name, (ours, pml) in cases.items():
        t_ours, t_pml = median_seconds(ours, a.repeats), median_seconds(pml, a.repeats)
        mine, theirs = ours(), pml()
        differ = len(as_set(mine) ^ as_set(theirs))  # a few may sit on the margin within float32 rounding
        print(f"{name:<12}{1e3 * t_ours:>12.2f}{1e3 * t_pml:>12.2f}{t_pml / t_ours:>10.2f}{len(mine[0]):>10}  {differ}")


if __name__ == "__main__":
    main()
