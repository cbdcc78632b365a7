"""The one training loop of the course: ``history = fit(model, batches, step, epochs=...)``.

``fit`` runs on the device the model is on, with mixed precision on CUDA, and shows a
``tqdm.auto`` progress bar. It returns a :class:`History` of per-step and per-epoch numbers (and
embedding snapshots for the explorer) and never draws. Press Interrupt (or Ctrl-C) and you keep
the weights and the history so far; call ``fit`` again with ``history=`` (or a ``checkpoint``
with ``resume=True``) to carry on.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = ["History", "fit", "embed", "load_checkpoint"]

StepFn = Callable[[nn.Module, object], "Tensor | tuple[Tensor, dict]"]


@dataclass
class History:
    """What happened during training. Plain lists, so it pickles, saves and plots easily."""

    steps: list[dict] = field(default_factory=list)        # {"epoch", "step", "loss", ...} per optimizer step
    epochs: list[dict] = field(default_factory=list)       # {"epoch", "loss", "seconds", ...eval metrics}
    snapshots: list[Tensor] = field(default_factory=list)  # (N, D) embeddings on the CPU, one per snapshot
    snapshot_epochs: list[int] = field(default_factory=list)  # epoch of each snapshot (0 = before training)
    interrupted: bool = False

    def step_values(self, name: str = "loss") -> list[float]:
        return [s[name] for s in self.steps if name in s]

    def epoch_values(self, name: str = "loss") -> list[float]:
        return [e[name] for e in self.epochs if name in e]

    def __repr__(self) -> str:
        last = self.epochs[-1] if self.epochs else {}
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in last.items())
        return (f"History({len(self.epochs)} epochs, {len(self.steps)} steps, {len(self.snapshots)} snapshots"
                f"{', interrupted' if self.interrupted else ''}; last epoch: {shown or '-'})")


@torch.no_grad()
def embed(model: nn.Module, x: Tensor, batch_size: int = 1024) -> Tensor:
    """Embeddings of x in eval mode, in batches. x: (N, ...) on the model's device -> (N, D) float32."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


def fit(model: nn.Module, batches: Iterable, step: StepFn, *, epochs: int, lr: float = 1e-3,
        optimizer: torch.optim.Optimizer | None = None, lr_schedule: Callable[[int], float] | None = None,
        evaluate: Callable[[nn.Module], dict] | None = None, snapshot_inputs: Tensor | None = None,
        history: History | None = None, checkpoint: str | os.PathLike | None = None, resume: bool = False,
        amp: bool | None = None, progress: bool = True) -> History:
    """Train ``model`` until ``epochs`` epochs are done and return the history.

    batches:   re-iterable, one pass per epoch (a TensorBatches, PKSampler, PairSampler, ...).
               If it has ``set_epoch``, epoch e always draws the same batches (exact resume).
    step:      ``step(model, batch) -> loss`` or ``(loss, {"name": value, ...})``; fit does the rest.
    lr_schedule: optional factor on ``lr`` as a function of the global step (warm-up, decay).
    evaluate:  ``evaluate(model) -> {"name": float}``, run in eval mode without gradients after each epoch.
    snapshot_inputs: (N, ...) inputs whose embeddings are recorded before training and after
               every epoch, for the embedding explorer's epoch slider.
    history:   a History to continue (epochs already in it are not repeated).
    checkpoint, resume: save model, optimizer and history after every epoch; with ``resume=True``
               an existing checkpoint is loaded first and training continues where it stopped.
    amp:       mixed precision; default on for CUDA (bfloat16 where supported), off elsewhere.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    device = next(model.parameters()).device
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    amp = device.type == "cuda" if amp is None else amp
    amp_dtype = torch.bfloat16 if device.type != "cuda" or torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler(device.type, enabled=amp and amp_dtype == torch.float16)
    history = history if history is not None else History()
    if checkpoint is not None and resume and Path(checkpoint).exists():
        history = load_checkpoint(checkpoint, model, optimizer, scaler)
        print(f"Resumed from {checkpoint}: {len(history.epochs)} epochs done.")
    history.interrupted = False
    start = len(history.epochs)

    if snapshot_inputs is not None and not history.snapshots:
        _snapshot(model, snapshot_inputs, history, epoch=0)
    steps_per_epoch = len(batches) if hasattr(batches, "__len__") else None
    bar = tqdm(total=None if steps_per_epoch is None else steps_per_epoch * max(epochs - start, 0),
               disable=not progress, unit="step", dynamic_ncols=True)
    first_step, losses = len(history.steps), []
    model.train()
    try:
        for epoch in range(start, epochs):
            bar.set_description(f"epoch {epoch + 1}/{epochs}")
            if hasattr(batches, "set_epoch"):
                batches.set_epoch(epoch)
            t0, first_step, losses = time.perf_counter(), len(history.steps), []
            for batch in batches:
                global_step = len(history.steps)
                if lr_schedule is not None:
                    for g, base in zip(optimizer.param_groups, base_lrs):
                        g["lr"] = base * lr_schedule(global_step)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                    out = step(model, batch)
                loss, extra = out if isinstance(out, tuple) else (out, {})
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                losses.append(loss.detach())
                history.steps.append({"epoch": epoch + 1, "step": global_step + 1,
                                      **{k: v.detach() if isinstance(v, Tensor) else v for k, v in extra.items()}})
                bar.update()
                if len(losses) % 10 == 1:
                    bar.set_postfix(loss=f"{losses[-1].item():.4f}")
            # One device-to-host copy per epoch instead of one per step.
            _finish_steps(history.steps[first_step:], torch.stack(losses).float().cpu().tolist() if losses else [])
            record = {"epoch": epoch + 1, "loss": _mean(history.steps[first_step:]),
                      "seconds": time.perf_counter() - t0}
            if evaluate is not None:
                record.update(_evaluate(model, evaluate))
            history.epochs.append(record)
            if snapshot_inputs is not None:
                _snapshot(model, snapshot_inputs, history, epoch=epoch + 1)
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, history, scaler)
    except KeyboardInterrupt:
        history.interrupted = True
        _finish_steps(history.steps[first_step:], torch.stack(losses).float().cpu().tolist() if losses else [])
        print(f"Interrupted after {len(history.epochs)} full epochs and {len(history.steps)} steps: "
              "the model keeps its current weights and `history` holds everything so far. "
              "Call fit(..., history=history) with the same model to continue.")
    finally:
        bar.close()
        model.eval()
    return history


def _finish_steps(steps: list[dict], losses: list[float]) -> None:
    """Turn the step records' tensors into floats, once, at the end of an epoch."""
    for record, loss in zip(steps, losses):
        record["loss"] = loss
        for k, v in record.items():
            if isinstance(v, Tensor):
                record[k] = v.float().item()


def _mean(steps: list[dict]) -> float:
    values = [s["loss"] for s in steps if "loss" in s]
    return sum(values) / len(values) if values else math.nan


def _evaluate(model: nn.Module, evaluate: Callable[[nn.Module], dict]) -> dict:
    model.eval()
    try:
        with torch.no_grad():
            metrics = evaluate(model)
    finally:
        model.train()
    if not isinstance(metrics, dict):
        raise ValueError(f"evaluate(model) must return a dict of name -> number, got {type(metrics).__name__}")
    return {k: float(v) for k, v in metrics.items()}


def _snapshot(model: nn.Module, inputs: Tensor, history: History, epoch: int) -> None:
    history.snapshots.append(embed(model, inputs).cpu())
    history.snapshot_epochs.append(epoch)
    model.train()


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer,
                    history: History, scaler: torch.amp.GradScaler | None = None) -> None:
    """Write model, optimizer and history atomically (a crash mid-write leaves the old file intact)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "history": asdict(history),
             "scaler": scaler.state_dict() if scaler is not None else None}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scaler: torch.amp.GradScaler | None = None) -> History:
    """Load weights (and optimizer state) saved by ``fit`` into ``model``; return the saved history."""
    device = next(model.parameters()).device
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, EOFError) as err:
        raise ValueError(f"checkpoint {path} does not fit this model or is damaged ({err}); "
                         "delete it or train with resume=False") from None
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    return History(**state["history"])
