"""course_lib's `fit` against a hand-written PyTorch loop and the usual tutorial pipeline, in one run.

    uv run python benchmarks/training_loop.py            # on the CPU; --device cuda on a GPU

Same model (DigitClassifier on 28 x 28 digits), same optimizer (Adam, lr 1e-3), same batch size, same
number of images per epoch:

* fit        course_lib.core.training.fit with TensorBatches: the images live on the device, a batch is one index
* hand loop  the minimal loop: zero_grad, forward, cross-entropy, backward, step, over the same batches
* DataLoader the tutorial pipeline: a dataset that turns each uint8 image into a PIL image and runs
             torchvision's ToTensor on it (what torchvision.datasets.MNIST does), a DataLoader that collates
             the samples, and .to(device) per batch

More rows show what the course's network layout and mixed precision are worth:

* "textbook layout": the same network as a tutorial writes it, (N, C, H, W) weights and ReLU before
             max-pool (course_lib.core.models.fast_layout keeps weights channels-last and pools first)
* "fit, mixed precision": fit(amp=True), bfloat16 autocast; on CPUs with AMX or AVX-512 BF16 units
* "fit, compile=True": torch.compile'd model (CUDA graphs on a GPU); on CUDA always, on a CPU with --compile

The hand loop uses fit's optimizer (Adam, fused into one kernel on CUDA), so that the first two rows
differ only by what fit adds; the DataLoader pipeline uses plain Adam, as a tutorial does.

Each row is the median of several one-epoch runs (fresh model each time, after one warm-up run), as images
per second. Below the table, what the hardware allows: the FLOPs of one training step (forward and
backward, counted by torch.utils.flop_counter) against the rate of a large matrix product on the same
device, fp32 and bfloat16: near that rate a step is bound by arithmetic, far below it by overheads
(kernel launches on a GPU, memory traffic and Python on a CPU). The table is printed and written to
benchmarks/results/training_loop-<device>.md.
"""
from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F
import torchvision
from _common import machine, timings, write_table
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import ToTensor

from course_lib.core import (
    DigitClassifier,
    TensorBatches,
    classify_step,
    fit,
    pick_device,
    seed_everything,
    textbook_layout,
)
from course_lib.data import load_mnist


class UInt8Digits(Dataset):
    """torchvision.datasets.MNIST's per-sample path: uint8 array -> PIL image -> ToTensor()."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images = (images[:, 0] * 255).round().to(torch.uint8).numpy()    # (N, 28, 28) uint8
        self.labels = labels.tolist()
        self.transform = ToTensor()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i], mode="L")), self.labels[i]


def matmul_flops_per_second(device: torch.device, dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """The device's practical arithmetic rate: a large (n x n) @ (n x n) product, 2 n^3 FLOPs."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n ** 3 / statistics.median(timings(lambda: a @ b, repeats, device))


def step_flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """FLOPs of one training step's forward and backward pass (convolutions and matrix products)."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="cpu or cuda (default: what pick_device() chooses)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--compile", action="store_true", help="also time fit(compile=True) (always on CUDA)")
    a = ap.parse_args()
    device = pick_device(a.device)
    images, labels = load_mnist("train", verbose=False)                   # (N, 1, 28, 28) in [0, 1]
    n = len(labels)
    x, y = images.to(device), labels.to(device)

    def model(textbook: bool = False):
        seed_everything(0)
        m = DigitClassifier(size=(28, 28))
        return (textbook_layout(m) if textbook else m).to(device)

    def run_fit(amp: bool = False, compile: bool = False):
        fit(model(), TensorBatches(x, y, batch_size=a.batch_size, seed=0), classify_step, epochs=1, amp=amp,
            compile=compile, progress=False)

    def run_hand(textbook: bool = False):
        m = model(textbook)
        opt = torch.optim.Adam(m.parameters(), lr=1e-3, fused=device.type == "cuda")   # fit's optimizer
        m.train()
        for xb, yb in TensorBatches(x, y, batch_size=a.batch_size, seed=0):
            loss = F.cross_entropy(m(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    loader = DataLoader(UInt8Digits(images, labels), batch_size=a.batch_size, shuffle=True, num_workers=0)

    def run_loader(textbook: bool = False):
        m = model(textbook)
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        m.train()
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = F.cross_entropy(m(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    rows = {}
    runs = (("fit (course_lib)", run_fit), ("hand loop", run_hand), ("DataLoader + ToTensor", run_loader),
            ("hand loop, textbook layout", lambda: run_hand(textbook=True)),
            ("DataLoader + ToTensor, textbook layout", lambda: run_loader(textbook=True)),
            ("fit, mixed precision (bf16)" if device.type != "cuda" or torch.cuda.is_bf16_supported()
             else "fit, mixed precision (fp16)", lambda: run_fit(amp=True)))
    if a.compile or device.type == "cuda":
        runs += (("fit, compile=True" + (" (CUDA graphs)" if device.type == "cuda" else ""),
                  lambda: run_fit(compile=True)),)
    for name, run in runs:
        times = timings(run, a.runs, device)                                  # after a warm-up run
        rows[name] = (statistics.median(times), min(times), max(times))
        print(f"{name:>22}: median {rows[name][0]:.3f} s per epoch of {n} images", flush=True)

    hand = rows["hand loop"][0]
    steps = -(-n // a.batch_size)
    machine_name = machine(device)
    table = (f"# Training loop: fit vs a hand-written loop vs a DataLoader pipeline\n\n{machine_name}; torch "
             f"{torch.__version__}, torchvision {torchvision.__version__}; DigitClassifier 28 x 28, Adam, batch "
             f"{a.batch_size}, one epoch of {n} images, median of {a.runs} runs after a warm-up\n\n"
             "| pipeline | seconds per epoch (median, min-max) | images / s | time / hand loop's |\n|---|---|---|---|\n")
    table += "".join(f"| {name} | {med:.3f} ({lo:.3f}-{hi:.3f}) | {n / med:,.0f} | {med / hand:.2f} |\n"
                     for name, (med, lo, hi) in rows.items())
    fit_t, loader_t = rows["fit (course_lib)"][0], rows["DataLoader + ToTensor"][0]
    textbook_t, amp_t = rows["DataLoader + ToTensor, textbook layout"][0], rows[runs[5][0]][0]
    layout_gain = rows["hand loop, textbook layout"][0] / hand
    table += (f"\nfit's overhead over the hand loop: {100 * (fit_t / hand - 1):+.1f}%\n\n"
              f"fit's throughput / the DataLoader pipeline's: {loader_t / fit_t:.2f}x on the same network, "
              f"{textbook_t / fit_t:.2f}x against the textbook layout; with mixed precision {loader_t / amp_t:.2f}x "
              f"and {textbook_t / amp_t:.2f}x\n\n"
              f"One step of the network alone (hand loop): {1000 * hand / steps:.1f} ms ({layout_gain:.2f}x faster than "
              f"the textbook layout's); the DataLoader's per-sample path adds {1000 * (loader_t - hand) / steps:.1f} ms "
              f"per batch of {a.batch_size}\n")
    flops = step_flops(model(), x[:a.batch_size], y[:a.batch_size])
    rate32, rate16 = (matmul_flops_per_second(device, dt) for dt in (torch.float32, torch.bfloat16))
    achieved = flops * steps / fit_t
    table += (f"\nWhat the hardware allows: one step is {flops / 1e9:.2f} GFLOP (forward + backward, batch "
              f"{a.batch_size}); fit runs it at {achieved / 1e9:.0f} GFLOP/s, {100 * achieved / rate32:.0f}% of a "
              f"2048 x 2048 fp32 matrix product's rate on this device ({rate32 / 1e9:.0f} GFLOP/s; bfloat16: "
              f"{rate16 / 1e9:.0f} GFLOP/s). At that rate the step would take {1000 * flops / rate32:.1f} ms (fp32); "
              f"it takes {1000 * fit_t / steps:.1f} ms. For fit to run 3x as fast as the DataLoader pipeline, a step "
              f"would have to take at most {1000 * (loader_t - hand) / steps / 2:.1f} ms (half of the per-sample "
              f"path's {1000 * (loader_t - hand) / steps:.1f} ms).\n")
    write_table(table, f"training_loop-{device.type}")


if __name__ == "__main__":
    main()
