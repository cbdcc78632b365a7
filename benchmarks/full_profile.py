"""Where do the training curves flatten? The evidence behind the ``full`` profile's epochs.

    uv run python benchmarks/full_profile.py                  # on this machine's default device
    uv run python benchmarks/full_profile.py --epochs 12      # longer curves

Trains, with the ``full`` profile's sizes (batch, steps per epoch, all the data per class) but for
``--epochs`` epochs (default 1.5x the profile's), one seed of the main training of lessons 02 (random
triplets), 03 (batch-hard on P x K batches) and 07 (the integral pose head), and scores it after every
epoch. A curve has flattened at the first epoch whose score is within ``--tolerance`` of the best score
of the whole run. The numbers depend on steps and batches, not on the device, so a CPU can measure them
(slowly); the step times in the table are this machine's.

Writes benchmarks/results/full_profile-<device>.md.
"""
from __future__ import annotations

import argparse
import math
import time

import torch
from _common import machine, write_table

from course_lib.core import PROFILES, fit, format_seconds, pick_device, seed_everything
from course_lib.data import load_two_digit_mnist
from course_lib.pose import JOINTS, FigureBatches, PoseNet, figures, pck, pose_step, predict_keypoints
from course_lib.similarity import (
    EmbeddingNet,
    PKSampler,
    TripletSampler,
    batch_hard_triplet_loss,
    pk_step,
    retrieval_scores,
    triplet_loss,
)

P = PROFILES["full"]


def two_digit_runs(device: torch.device, epochs: int) -> dict[str, list[float]]:
    """MAP@R on the 30 unseen classes after every epoch, for 02's random triplets and 03's batch-hard."""
    bench = load_two_digit_mnist(P.per_class, seed=0, verbose=False)
    x, y = bench.train_x.to(device), bench.train_y.to(device)
    tx, ty = bench.test_x.to(device), bench.test_y.to(device)
    make = lambda: EmbeddingNet(64, width=16, normalize=True, input_size=(28, 56)).to(device)
    scores = lambda f: {"score": retrieval_scores(f, tx, ty)["MAP@R"]}

    def triplet_step(f, batch):
        e_a, e_p, e_n = f(x[torch.cat(batch)]).chunk(3)
        return triplet_loss(e_a, e_p, e_n, 0.2)

    runs = {}
    seed_everything(0)
    batches = TripletSampler(y, P.batch_size // 3, P.steps_per_epoch, seed=0)
    runs["02 triplet (MAP@R)"] = fit(make(), batches, triplet_step, epochs=epochs, evaluate=scores, progress=False)
    seed_everything(0)
    batches = PKSampler(y, p=16, k=P.batch_size // 16, steps=P.steps_per_epoch, seed=0)
    step = pk_step(x, y, lambda e, labels: batch_hard_triplet_loss(e, labels, 0.2))
    runs["03 batch-hard (MAP@R)"] = fit(make(), batches, step, epochs=epochs, evaluate=scores, progress=False)
    return runs


def pose_run(device: torch.device, epochs: int):
    """PCK@2px on 500 hard test figures after every epoch, for 07's integral head (cosine schedule)."""
    test = figures(500, torch.Generator().manual_seed(123), 64, hard=True, device=device)
    seed_everything(0)
    model = PoseNet("integral", len(JOINTS), 64).to(device)
    batches = FigureBatches(P.batch_size // 4, P.steps_per_epoch, seed=0, size=64, hard=True, device=device)
    total = epochs * P.steps_per_epoch

    def scores(m):
        return {"score": float(pck(predict_keypoints(m, test.images), test.keypoints, 2.0))}

    return fit(model, batches, pose_step(), epochs=epochs, lr=2e-3, evaluate=scores, progress=False,
               lr_schedule=lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))


def flat_at(curve: list[float], tolerance: float) -> int:
    """The first epoch (1-based) whose score is within ``tolerance`` of the run's best."""
    best = max(curve)
    return next(e for e, v in enumerate(curve, 1) if v >= best - tolerance)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=P.epochs * 3 // 2)
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = pick_device(args.device)
    runs = two_digit_runs(device, args.epochs)
    runs["07 integral head (PCK@2px)"] = pose_run(device, args.epochs)
    rows = []
    for name, h in runs.items():
        curve = h.epoch_values("score")
        step_time = sum(e["seconds"] for e in h.epochs) / len(h.steps)
        rows.append([name, " ".join(f"{v:.3f}" for v in curve), f"{flat_at(curve, args.tolerance)} of {len(curve)}",
                     f"{curve[P.epochs - 1]:.3f} / {max(curve):.3f}", format_seconds(step_time)])
        print(*rows[-1], sep=" | ")
    lines = [f"# Where the curves flatten (`full` profile), {machine(device)}", "",
             f"Sizes of `full`: batch {P.batch_size}, {P.steps_per_epoch} steps per epoch, {P.per_class} images per "
             f"class; one seed, {args.epochs} epochs (the profile trains {P.epochs}). torch {torch.__version__}, "
             f"{time.strftime('%Y-%m-%d')}. `uv run python benchmarks/full_profile.py`", "",
             f"| training (score) | score after each epoch | flat (within {args.tolerance} of the best) at epoch | "
             f"at epoch {P.epochs} / best | per step (with evaluation) |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    write_table("\n".join(lines) + "\n", f"full_profile-{device.type}")

if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"done in {format_seconds(time.perf_counter() - start)}")
