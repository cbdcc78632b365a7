"""The one training loop of the course: ``history = fit(model, batches, step, epochs=...)``.

``fit`` runs on the device the model is on and shows a ``tqdm.auto`` progress bar. Its pieces:
:func:`resume_point` (where to start), :func:`train_epoch` (one pass over the batches) and :class:`Update`
(one optimizer step). It does not wait for the GPU inside an epoch: losses stay on the device and are read
when the bar redraws (twice a second) and once at the end of the epoch (a step function may still wait,
e.g. for ``nonzero``). It returns a :class:`History` of per-step and per-epoch numbers (and embedding
snapshots for the explorer) and never draws. Press Interrupt (or Ctrl-C) and you keep
the weights and the history so far; call ``fit`` again with ``history=`` (or a ``checkpoint``
with ``resume=True``) to carry on.
"""
from __future__ import annotations

import math
import os
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = ["History", "eval_mode", "embed", "fit", "cosine_schedule", "resume_point", "Update", "train_epoch",
           "save_checkpoint", "load_checkpoint"]


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


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``with eval_mode(model):`` the model in eval mode (batch norm uses its running statistics, dropout is
    off) and no gradients recorded; afterwards it is back in the mode it was in, even after an error.

    >>> net = nn.Dropout(0.5)
    >>> with eval_mode(net):
    ...     net.training, torch.is_grad_enabled()
    (False, False)
    >>> net.training
    True
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def embed(model: nn.Module, x: Tensor, batch_size: int = 1024) -> Tensor:
    """Embeddings of x in eval mode, in batches. x: (N, ...) on the model's device -> (N, D) float32."""
    with eval_mode(model):
        return torch.cat([model(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)])


def fit(model: nn.Module, batches: Iterable, step: StepFn, *, epochs: int, lr: float = 1e-3,
        optimizer: torch.optim.Optimizer | None = None, lr_schedule: Callable[[int], float] | None = None,
        evaluate: Callable[[nn.Module], dict] | None = None, snapshot_inputs: Tensor | None = None,
        snapshot: Callable[[nn.Module], Tensor] | None = None, clip_grad_norm: float | None = None,
        history: History | None = None, checkpoint: str | os.PathLike | None = None, resume: bool = False,
        amp: bool | None = None, compile: bool = False, progress: bool = True) -> History:
    """Train ``model`` until ``epochs`` epochs are done and return the history. Each epoch is one
    :func:`train_epoch`; each step one :class:`Update` (Adam at ``lr`` unless ``optimizer`` is given).

    batches:   re-iterable, one pass per epoch (a TensorBatches, PKSampler, ...); with ``set_epoch``,
               epoch e always draws the same batches (exact resume).
    step:      ``step(model, batch) -> loss`` or ``(loss, {"name": value, ...})``; values may be numbers,
               scalar tensors or small vectors (stored as lists).
    lr_schedule: factor on ``lr`` as a function of the global step, e.g. :func:`cosine_schedule`.
    evaluate:  ``evaluate(model) -> {"name": float}``, run in :func:`eval_mode` after each epoch.
    snapshot:  ``snapshot(model) -> Tensor``, kept (on the CPU) before training and after every epoch, for
               views that replay training; ``snapshot_inputs``: the usual one, the embeddings of these inputs.
    clip_grad_norm: clip the gradient's total norm to this value before every update.
    history:   a History to continue (see :func:`resume_point`), with the same optimizer state.
    checkpoint, resume: save model, optimizer and history after every epoch; ``resume=True`` loads an
               existing checkpoint first.
    amp, compile: mixed precision and ``torch.compile``, both off by default (see :class:`Update`).
    """
    _check_fit_options(epochs, clip_grad_norm, snapshot, snapshot_inputs)
    snapshot = _embedding_snapshot(snapshot_inputs) if snapshot_inputs is not None else snapshot
    device = next(model.parameters()).device
    history = history if history is not None else History()
    optimizer, scaler, amp, amp_dtype = _optimizer_and_scaler(model, history, optimizer, lr, amp, device)
    update = Update(optimizer, scaler, lr_schedule, clip_grad_norm, amp, amp_dtype, device.type,
                    cuda_graphs=compile and device.type == "cuda")   # base rates: this call's, before a resume
    history = _resume(checkpoint, resume, model, optimizer, scaler, history)
    start, done_in_epoch = resume_point(history)
    if snapshot is not None and not history.snapshots:
        _snapshot(model, snapshot, history, epoch=0)
    stepping = _compiled(model, device) if compile else model
    bar = _progress_bar(batches, epochs - start, done_in_epoch, progress)
    losses, caught = [], []                  # this epoch's losses on the device; the warnings of the loop
    model.train()
    try:
        with warnings.catch_warnings(record=True) as caught:    # PyTorch's warnings, passed on at the end
            warnings.filterwarnings("once", message=".*" + _NONDETERMINISTIC)   # once, even where warnings are errors
            for epoch in range(start, epochs):
                bar.set_description(f"epoch {epoch + 1}/{epochs}")
                if hasattr(batches, "set_epoch"):
                    batches.set_epoch(epoch)
                t0, losses = time.perf_counter(), []
                train_epoch(stepping, batches, step, update, history, epoch, losses, bar=bar,
                            skip=done_in_epoch if epoch == start else 0)
                _end_epoch(model, history, epoch, time.perf_counter() - t0, evaluate, snapshot)
                if checkpoint is not None:
                    save_checkpoint(checkpoint, model, optimizer, history, scaler)
    except KeyboardInterrupt:
        history.interrupted = True
        _finish_steps(history.steps[len(history.steps) - len(losses):], _to_floats(losses))
        print(_INTERRUPTED.format(epochs=len(history.epochs), steps=len(history.steps)))
    finally:
        bar.close()
        model.eval()
        _pass_on(caught)
    return history


def cosine_schedule(total_steps: int) -> Callable[[int], float]:
    """fit's ``lr_schedule`` for a cosine decay: the learning rate's factor falls from 1 at step 0 to 0 at
    ``total_steps``, slowly at first, fastest in the middle, slowly again at the end.

    >>> f = cosine_schedule(100)
    >>> [round(f(step), 3) for step in (0, 25, 50, 75, 100)]
    [1.0, 0.854, 0.5, 0.146, 0.0]
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be at least 1, got {total_steps}")
    return lambda step: 0.5 * (1 + math.cos(math.pi * step / total_steps))


def resume_point(history: History) -> tuple[int, int]:
    """Where training carries on: (index of the first epoch to run, batches of it already applied).

    A finished epoch is in ``history.epochs``; an interrupted one left its steps in ``history.steps`` (and in
    the weights), so its first batches are skipped, not repeated.

    >>> resume_point(History(epochs=[{"epoch": 1}], steps=[{"epoch": 1}] * 5 + [{"epoch": 2}] * 3))
    (1, 3)
    """
    start = len(history.epochs)
    return start, sum(1 for s in history.steps if s["epoch"] == start + 1)


@dataclass
class Update:
    """One optimizer update, as fit makes it: the learning rate from the schedule, the step function's loss
    (under autocast when ``amp``), backward, gradient clipping, the optimizer's step.

    amp: mixed precision (bfloat16 where supported, else float16 with a gradient scaler). Off by default on
    every device: on an H200 the course's small networks trained *slower* with it (MNIST classifier 0.103
    vs 0.093 s per epoch): at these sizes the casts cost more than the tensor cores save.
    fit(compile=True) runs the steps through ``torch.compile`` (``mode="reduce-overhead"`` on CUDA: forward
    and backward replay as CUDA graphs, one launch instead of hundreds; then ``cuda_graphs`` is set here).
    It pays only for steps of one fixed shape; the first steps are slow (compiling, tens of seconds on a
    CPU). ``evaluate`` and ``snapshot`` still run the plain model, which shares the weights.
    """

    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    lr_schedule: Callable[[int], float] | None = None
    clip_grad_norm: float | None = None
    amp: bool = False
    amp_dtype: torch.dtype = torch.bfloat16
    device_type: str = "cpu"      # where autocast applies: the model's device type
    cuda_graphs: bool = False     # a compiled model replaying CUDA graphs: mark where each step begins

    def __post_init__(self):
        # the rates the schedule multiplies: the optimizer's at the start (its first rates, if it ran before)
        self.base_lrs = [g.get("initial_lr", g["lr"]) for g in self.optimizer.param_groups]
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["initial_lr"] = base

    def __call__(self, model: nn.Module, step: StepFn, batch, global_step: int) -> tuple[Tensor, dict]:
        """(loss, extras) of this batch, after the update; global_step counts from 0 over the whole run."""
        if self.lr_schedule is not None:
            for g, base in zip(self.optimizer.param_groups, self.base_lrs):
                g["lr"] = base * self.lr_schedule(global_step)
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()     # a new step: the last one's graph outputs are free
        with torch.autocast(self.device_type, dtype=self.amp_dtype, enabled=self.amp):
            out = step(model, batch)
        loss, extra = out if isinstance(out, tuple) else (out, {})
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.clip_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach(), extra


def train_epoch(model: nn.Module, batches: Iterable, step: StepFn, update: Update, history: History, epoch: int,
                losses: list[Tensor], skip: int = 0, bar: tqdm | None = None) -> None:
    """One pass over ``batches``: an update per batch, a record per step in ``history.steps``, and each loss
    appended to ``losses`` (on the device: nothing waits for the GPU inside the epoch; the loss is read only
    when the progress bar redraws). At the end, the epoch's losses and extras are copied to the host in one
    go and ``losses`` is emptied; after an interruption it holds the losses not yet copied.
    ``skip``: batches of this epoch applied before an interruption."""
    for k, batch in enumerate(batches):
        if k < skip:
            continue                                          # applied before the interruption
        global_step = len(history.steps)
        loss, extra = update(model, step, batch, global_step)
        losses.append(loss)
        history.steps.append({"epoch": epoch + 1, "step": global_step + 1,
                              **{k: v.detach() if isinstance(v, Tensor) else v for k, v in extra.items()}})
        if bar is not None:
            if not bar.disable and time.monotonic() - getattr(bar, "loss_shown_at", 0.0) >= _REFRESH:
                bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)   # reading the loss waits for the GPU
                bar.loss_shown_at = time.monotonic()
            bar.update()
    _finish_steps(history.steps[len(history.steps) - len(losses):], _to_floats(losses))   # one copy to the host
    losses.clear()


_INTERRUPTED = ("Interrupted after {epochs} full epochs and {steps} steps: the model keeps its current weights and "
                "`history` holds everything so far. Call fit(..., history=history) with the same model to continue "
                "where it stopped.")


def _resume(checkpoint, resume: bool, model: nn.Module, optimizer, scaler, history: History) -> History:
    """The history to continue (no longer marked interrupted): the checkpoint's, loaded into model and
    optimizer, with ``resume=True``; else the one given."""
    if checkpoint is not None and resume and Path(checkpoint).exists():
        history = load_checkpoint(checkpoint, model, optimizer, scaler)
        history._optimizer, history._scaler = optimizer, scaler
        print(f"Resumed from {checkpoint}: {len(history.epochs)} epochs done.")
    history.interrupted = False
    return history


def _progress_bar(batches, epochs_left: int, done_in_epoch: int, progress: bool) -> tqdm:
    steps = len(batches) if hasattr(batches, "__len__") else None
    return tqdm(total=None if steps is None else steps * max(epochs_left, 0) - done_in_epoch, disable=not progress,
                unit="step", dynamic_ncols=True, mininterval=_REFRESH)


def _check_fit_options(epochs: int, clip_grad_norm: float | None, snapshot, snapshot_inputs) -> None:
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if clip_grad_norm is not None and clip_grad_norm <= 0:
        raise ValueError(f"clip_grad_norm must be positive (or None for no clipping), got {clip_grad_norm}")
    if snapshot is not None and snapshot_inputs is not None:
        raise ValueError("give snapshot= or snapshot_inputs=, not both")


def _end_epoch(model: nn.Module, history: History, epoch: int, seconds: float, evaluate, snapshot) -> None:
    """The epoch's record (mean loss over all its steps, seconds, evaluation) and its snapshot."""
    record = {"epoch": epoch + 1, "loss": _mean([s for s in history.steps if s["epoch"] == epoch + 1]),
              "seconds": seconds}
    if evaluate is not None:
        record.update(_evaluate(model, evaluate))
    history.epochs.append(record)
    if snapshot is not None:
        _snapshot(model, snapshot, history, epoch=epoch + 1)


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
    with eval_mode(model):
        metrics = evaluate(model)
    if not isinstance(metrics, dict):
        raise ValueError(f"evaluate(model) must return a dict of name -> number, got {type(metrics).__name__}")
    return {k: float(v) for k, v in metrics.items()}


def _snapshot(model: nn.Module, snapshot: Callable[[nn.Module], Tensor], history: History, epoch: int) -> None:
    with eval_mode(model):
        value = snapshot(model)
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
