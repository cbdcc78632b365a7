"""Our miners vs pytorch-metric-learning's, side by side, in one run.

    uv run python benchmarks/miners.py            # B = 256, 1024, 4096, D=128 on the CPU

Both get the same unit-normalised embeddings (PML's default LpDistance normalises them) and the
same P x K labels. Reported: the median wall time of repeated calls, and the ratio PML / ours
(> 1 means ours is faster), and how many triplets the two sets do not share (semi-hard triplets
exactly on the margin can fall either side, as the two compute distances in float32 differently).
Semi-hard mining enumerates (anchor, positive, negative) triples, a B x B x B mask in both libraries: at
B = 4096 that is 69 G entries, so it is measured up to --max-semi-hard (1024). The table is printed and
written to benchmarks/results/miners-cpu.md.
"""
from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F
from _common import machine, timings, write_table
from pytorch_metric_learning.miners import BatchHardMiner, TripletMarginMiner

from course_lib.similarity import batch_hard_triplets, semi_hard_triplets


def as_set(triplets) -> set:
    return set(zip(*(t.tolist() for t in triplets)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", default="256,1024,4096", help="comma-separated batch sizes")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--classes", type=int, default=64, help="P classes; K = batch / P samples each")
    ap.add_argument("--margin", type=float, default=0.2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--max-semi-hard", type=int, default=1024, help="largest batch for semi-hard mining")
    a = ap.parse_args()
    pml_hard, pml_semi = BatchHardMiner(), TripletMarginMiner(margin=a.margin, type_of_triplets="semihard")
    rows = []
    for batch in (int(b) for b in a.batch.split(",")):
        torch.manual_seed(0)
        labels = torch.arange(a.classes).repeat_interleave(batch // a.classes)
        centres = torch.randn(a.classes, a.dim)
        e = F.normalize(centres[labels] + 2.0 * torch.randn(len(labels), a.dim), dim=1)
        cases = {"batch-hard": (lambda: batch_hard_triplets(e, labels), lambda: pml_hard(e, labels))}
        if batch <= a.max_semi_hard:
            cases["semi-hard"] = (lambda: semi_hard_triplets(e, labels, a.margin), lambda: pml_semi(e, labels))
        for name, (ours, pml) in cases.items():
            t_ours, t_pml = (statistics.median(timings(f, a.repeats)) for f in (ours, pml))
            mine, theirs = ours(), pml()
            differ = len(as_set(mine) ^ as_set(theirs))  # a few may sit on the margin within float32 rounding
            rows.append((batch, batch // a.classes, name, 1e3 * t_ours, 1e3 * t_pml, len(mine[0]), differ))
            print(f"B={batch:<5} {name:<11} ours {1e3 * t_ours:9.2f} ms  PML {1e3 * t_pml:9.2f} ms  "
                  f"ours/PML {t_ours / t_pml:5.2f}  triplets {len(mine[0])}  differing {differ}", flush=True)
    machine_name = machine()
    table = (f"# Miners: course_lib vs pytorch-metric-learning\n\n{machine_name}; torch {torch.__version__}; D={a.dim}, "
             f"P={a.classes}, margin {a.margin}; median of {a.repeats} calls\n\n"
             "| B | K | miner | ours (ms) | PML (ms) | ours / PML | triplets | differing |\n|---|---|---|---|---|---|---|---|\n")
    table += "".join(f"| {b} | {k} | {n} | {o:.2f} | {t:.2f} | {o / t:.2f} | {c} | {d} |\n" for b, k, n, o, t, c, d in rows)
    write_table(table, "miners-cpu")


if __name__ == "__main__":
    main()
