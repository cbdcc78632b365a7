"""The one training loop of the course: ``history = fit(model, batches, step, epochs=...)``.

``fit`` runs on the device the model is on and shows a ``tqdm.auto`` progress bar. It does not wait
for the GPU inside an epoch: losses stay on the device and are read when the bar redraws (twice a
second) and once at the end of the epoch (a step function may still wait, e.g. for ``nonzero``). It returns a :class:`History` of per-step and per-epoch numbers (and
embedding snapshots for the explorer) and never draws. Press Interrupt (or Ctrl-C) and you keep
the weights and the history so far; call ``fit`` again with ``history=`` (or a ``checkpoint``
with ``resume=True``) to carry on.
"""
from __future__ import annotations

import math
import os
import time
import warnings
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
    snapshots: list[Tensor] = field(default_factory=list)  # one tensor per snapshot, on the CPU (default: (N, D) embeddings)
    snapshot_epochs: list[int] = field(default_factory=list)  # epoch of each snapshot (0 = before training)
    interrupted: bool = False

    # fit also keeps its optimizer and gradient scaler on the history (attributes _optimizer and _scaler,
    # not fields: checkpoints save them separately), so that fit(..., history=h) continues with them.

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
        snapshot: Callable[[nn.Module], Tensor] | None = None, clip_grad_norm: float | None = None,
        history: History | None = None, checkpoint: str | os.PathLike | None = None, resume: bool = False,
        amp: bool | None = None, compile: bool = False, progress: bool = True) -> History:
    """Train ``model`` until ``epochs`` epochs are done and return the history.

    batches:   re-iterable, one pass per epoch (a TensorBatches, PKSampler, PairSampler, ...).
               If it has ``set_epoch``, epoch e always draws the same batches (exact resume).
    step:      ``step(model, batch) -> loss`` or ``(loss, {"name": value, ...})``; fit does the rest.
               Values may be numbers, scalar tensors or small vectors (stored as lists).
    lr_schedule: optional factor on ``lr`` as a function of the global step (warm-up, decay).
    evaluate:  ``evaluate(model) -> {"name": float}``, run in eval mode without gradients after each epoch.
    snapshot:  ``snapshot(model) -> Tensor``, recorded (on the CPU) before training and after every
               epoch, for views that replay training (embeddings, sampling grids, heatmaps, ...).
    snapshot_inputs: shortcut for the usual snapshot, the embeddings of these (N, ...) inputs.
    clip_grad_norm: clip the gradient's total norm to this value before every update (None: no clipping).
    history:   a History to continue: finished epochs are not repeated, an interrupted epoch carries on
               at the batch where it stopped, with the same optimizer state (Adam's moments).
    checkpoint, resume: save model, optimizer and history after every epoch; with ``resume=True``
               an existing checkpoint is loaded first and training continues where it stopped.
    amp:       mixed precision (bfloat16 where supported, else float16 with a gradient scaler). Default
               off on every device: on an H200 the course's small networks trained *slower* with it
               (MNIST classifier 0.103 vs 0.093 s per epoch): at these sizes the casts cost more than
               the tensor cores save. Turn it on for wide networks or large batches.
    compile:   ``torch.compile`` the model for the steps (``mode="reduce-overhead"`` on CUDA: the forward
               and backward replay as CUDA graphs, one launch instead of hundreds). Pays only for steps of
               one fixed shape; the first steps are slow (compiling, tens of seconds on a CPU).
               ``evaluate`` and ``snapshot`` still run the plain model, which shares the weights.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if clip_grad_norm is not None and clip_grad_norm <= 0:
        raise ValueError(f"clip_grad_norm must be positive (or None for no clipping), got {clip_grad_norm}")
    if snapshot is not None and snapshot_inputs is not None:
        raise ValueError("give snapshot= or snapshot_inputs=, not both")
    if snapshot_inputs is not None:
        snapshot = _embedding_snapshot(snapshot_inputs)
    device = next(model.parameters()).device
    history = history if history is not None else History()
    optimizer, scaler, amp, amp_dtype = _optimizer_and_scaler(model, history, optimizer, lr, amp, device)
    base_lrs = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
    for g, base in zip(optimizer.param_groups, base_lrs):
        g["initial_lr"] = base                      # the schedule multiplies this, also after a restart
    if checkpoint is not None and resume and Path(checkpoint).exists():
        history = load_checkpoint(checkpoint, model, optimizer, scaler)
        history._optimizer, history._scaler = optimizer, scaler
        print(f"Resumed from {checkpoint}: {len(history.epochs)} epochs done.")
    history.interrupted = False
    start = len(history.epochs)
    # Steps of an interrupted epoch were already applied to the weights: skip those batches.
    done_in_epoch = sum(1 for s in history.steps if s["epoch"] == start + 1)

    if snapshot is not None and not history.snapshots:
        _snapshot(model, snapshot, history, epoch=0)
    steps_per_epoch = len(batches) if hasattr(batches, "__len__") else None
    stepping = _compiled(model, device) if compile else model
    bar = tqdm(total=None if steps_per_epoch is None else steps_per_epoch * max(epochs - start, 0) - done_in_epoch,
               disable=not progress, unit="step", dynamic_ncols=True, mininterval=_REFRESH)
    first_step, losses, shown = len(history.steps), [], 0.0
    model.train()
    catcher = warnings.catch_warnings(record=True)      # PyTorch's warnings of the loop, passed on at the end
    caught = catcher.__enter__()
    warnings.filterwarnings("once", message=".*" + _NONDETERMINISTIC)   # recorded once, even where warnings are errors
    try:
        for epoch in range(start, epochs):
            bar.set_description(f"epoch {epoch + 1}/{epochs}")
            if hasattr(batches, "set_epoch"):
                batches.set_epoch(epoch)
            t0, losses = time.perf_counter(), []
            first_step = len(history.steps) - (done_in_epoch if epoch == start else 0)
            for k, batch in enumerate(batches):
                if epoch == start and k < done_in_epoch:
                    continue                                      # applied before the interruption
                global_step = len(history.steps)
                if lr_schedule is not None:
                    for g, base in zip(optimizer.param_groups, base_lrs):
                        g["lr"] = base * lr_schedule(global_step)
                if compile and device.type == "cuda":
                    torch.compiler.cudagraph_mark_step_begin()   # a new step: the last one's graph outputs are free
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                    out = step(stepping, batch)
                loss, extra = out if isinstance(out, tuple) else (out, {})
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if clip_grad_norm is not None:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                losses.append(loss.detach())
                history.steps.append({"epoch": epoch + 1, "step": global_step + 1,
                                      **{k: v.detach() if isinstance(v, Tensor) else v for k, v in extra.items()}})
                if progress and time.monotonic() - shown >= _REFRESH:     # reading the loss waits for the GPU:
                    bar.set_postfix(loss=f"{losses[-1].item():.4f}", refresh=False)   # only when the bar redraws
                    shown = time.monotonic()
                bar.update()
            # One device-to-host copy per epoch instead of one per step.
            _finish_steps(history.steps[len(history.steps) - len(losses):], _to_floats(losses))
            losses = []
            record = {"epoch": epoch + 1, "loss": _mean(history.steps[first_step:]),
                      "seconds": time.perf_counter() - t0}
            if evaluate is not None:
                record.update(_evaluate(model, evaluate))
            history.epochs.append(record)
            if snapshot is not None:
                _snapshot(model, snapshot, history, epoch=epoch + 1)
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, history, scaler)
    except KeyboardInterrupt:
        history.interrupted = True
        _finish_steps(history.steps[len(history.steps) - len(losses):], _to_floats(losses))
        print(f"Interrupted after {len(history.epochs)} full epochs and {len(history.steps)} steps: "
              "the model keeps its current weights and `history` holds everything so far. "
              "Call fit(..., history=history) with the same model to continue where it stopped.")
    finally:
        bar.close()
        model.eval()
        catcher.__exit__(None, None, None)
        _pass_on(caught)
    return history


_REFRESH = 0.5   # seconds between progress-bar redraws (and loss reads)
_NONDETERMINISTIC = " does not have a deterministic implementation"
_noted: set[str] = set()   # ops already explained in this process


def _pass_on(caught: list[warnings.WarningMessage]) -> None:
    """Show the warnings recorded during training again, except PyTorch's "X does not have a deterministic
    implementation" (one per step on a GPU for some ops, e.g. grid_sample's backward): for each such op,
    one line, once per process, that says what it means."""
    for w in caught:
        text = str(w.message)
        if _NONDETERMINISTIC not in text:      # it passed the filters when recorded: show it as it was
            warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)
            continue
        op = text.split(_NONDETERMINISTIC)[0].strip()
        if op not in _noted:
            _noted.add(op)
            print(f"Note: PyTorch has no deterministic version of {op} on this device: a rerun with the same "
                  "seed can differ in the last digits.")


def _compiled(model: nn.Module, device: torch.device) -> nn.Module:
    """``torch.compile(model)`` for fit's steps, with the deterministic setting handed to the compiler."""
    # seed_everything flips PyTorch's deterministic switch without importing the compiler's config;
    # setting it again through the public call passes it on to TorchInductor too.
    torch.use_deterministic_algorithms(torch.are_deterministic_algorithms_enabled(),
                                       warn_only=torch.is_deterministic_algorithms_warn_only_enabled())
    mode = "reduce-overhead" if device.type == "cuda" else None
    return torch.compile(model, mode=mode, dynamic=False)


def _optimizer_and_scaler(model: nn.Module, history: History, optimizer, lr: float, amp: bool | None,
                          device: torch.device):
    """The optimizer and gradient scaler to use: given, else the ones this history trained with
    (so that continuing keeps Adam's moments), else new ones."""
    previous = getattr(history, "_optimizer", None)
    if optimizer is None and previous is not None:
        ours = {id(p) for p in model.parameters()}
        if all(id(p) in ours for g in previous.param_groups for p in g["params"]):
            optimizer = previous
    # fused: Adam's update for all parameters in one CUDA kernel instead of a few per tensor
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr, fused=device.type == "cuda")
    amp = False if amp is None else amp                          # measured slower for the course's networks
    amp_dtype = torch.bfloat16 if device.type != "cuda" or torch.cuda.is_bf16_supported() else torch.float16
    scaler = getattr(history, "_scaler", None) if optimizer is previous else None
    if scaler is None:
        scaler = torch.amp.GradScaler(device.type, enabled=amp and amp_dtype == torch.float16)
    history._optimizer, history._scaler = optimizer, scaler     # not dataclass fields: not saved by asdict
    return optimizer, scaler, amp, amp_dtype


def _to_floats(losses: list[Tensor]) -> list[float]:
    return torch.stack(losses).float().cpu().tolist() if losses else []


def _embedding_snapshot(inputs: Tensor) -> Callable[[nn.Module], Tensor]:
    def snapshot(model: nn.Module) -> Tensor:
        return embed(model, inputs)
    return snapshot


def _finish_steps(steps: list[dict], losses: list[float]) -> None:
    """Turn the step records' tensors into floats (vectors into lists), at the end of an epoch: one copy to
    the host per name (stacked), not one per step and name."""
    for record, loss in zip(steps, losses):
        record["loss"] = loss
    names = {k for record in steps for k, v in record.items() if isinstance(v, Tensor)}
    for name in sorted(names):
        holders = [r for r in steps if isinstance(r.get(name), Tensor)]
        values = [r[name].detach().float() for r in holders]
        values = [v.reshape(()) if v.numel() == 1 else v for v in values]   # one number -> a float
        if len({v.shape for v in values}) == 1:                      # the usual case: one stack, one copy
            host = torch.stack(values).cpu().tolist()
        else:
            host = [v.cpu().tolist() for v in values]
        for record, value in zip(holders, host):
            record[name] = value


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


def _snapshot(model: nn.Module, snapshot: Callable[[nn.Module], Tensor], history: History, epoch: int) -> None:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            value = snapshot(model)
    finally:
        model.train(was_training)
    if not isinstance(value, Tensor):
        raise ValueError(f"snapshot(model) must return a tensor, got {type(value).__name__}")
    history.snapshots.append(value.detach().cpu())
    history.snapshot_epochs.append(epoch)


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
