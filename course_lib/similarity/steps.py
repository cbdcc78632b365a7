"""Training steps for batches of indices. A step is ``step(model, batch) -> loss or (loss, {extras})``,
the contract of :func:`course_lib.core.training.fit`. The notebooks write the interesting ones themselves;
these factories hold the plumbing that every P x K strategy shares.
"""
from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from .distances import pairwise_distances
from .losses import triplet_loss

__all__ = ["pk_step", "miner_loss", "mask_miner"]


BatchLoss = Callable[[Tensor, Tensor], "Tensor | tuple[Tensor, dict]"]


Miner = Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]


def pk_step(images: Tensor, labels: Tensor, batch_loss: BatchLoss) -> Callable[[nn.Module, Tensor], tuple]:
    """A step for P x K index batches: embed ``images[idx]`` and apply ``batch_loss(embeddings, labels)``.

    Also records the mean distance between the batch's embeddings, so that a collapse (all points
    in one place) shows up in the history. images: (N, ...) and labels: (N,) on the model's device.
    """
    def step(model: nn.Module, idx: Tensor):
        e = model(images[idx])                                          # (B, D)
        out = batch_loss(e, labels[idx])
        loss, extra = out if isinstance(out, tuple) else (out, {})
        return loss, {**extra, "mean distance": pairwise_distances(e.detach()).mean()}
    return step


def miner_loss(miner: Miner, margin: float = 0.2) -> BatchLoss:
    """Turn a miner (embeddings, labels) -> (a, p, n) into a batch loss: the triplet loss of its triplets."""
    def loss(e: Tensor, y: Tensor):
        a, p, n = miner(e, y)
        return triplet_loss(e[a], e[p], e[n], margin=margin), {"triplets": float(len(a))}
    return loss


def mask_miner(mask: Callable[[Tensor, Tensor, float], Tensor], margin: float = 0.2) -> Miner:
    """Turn a triplet mask ``mask(d, labels, margin) -> (B, B, B) bool`` into a miner.

    The miner returns the (a, p, n) index tensors where the mask is True, each (T,). Distances are
    computed from detached embeddings: mining *chooses* triplets and is not differentiated; the loss
    of the chosen triplets is (see :func:`miner_loss`). Memory grows as B³ booleans (2 MB at B = 128).
    """
    def miner(e: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        a, p, n = mask(pairwise_distances(e.detach()), y, margin).nonzero(as_tuple=True)
        return a, p, n
    return miner
