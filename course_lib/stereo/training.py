"""Training the patch networks on MC-CNN's pairs, and turning any of them into a cost volume.

* :class:`PatchTriples`: batches of (left, positive, negative) 9 x 9 patches drawn by :func:`sample_patch_pairs`
  from a fixed set of training stereo pairs, fresh every step (the course's seeding rule, ``EpochSeeded``).
* :func:`patch_scores`: the score of a batch of patch pairs for any of the four networks (higher = a better
  match): the cosine of MC-CNN-fast's two unit vectors, the decision layers' logit for the others.
* :func:`patch_step`: the loss of each network as its paper trains it. MC-CNN-fast (Žbontar & LeCun, 2016): the
  hinge max(0, m + s- - s+) on the cosines of a positive and a negative sharing their left patch (m = 0.2). The
  decision networks: the binary cross-entropy of the logits (positive 1, negative 0), as MC-CNN-acrt (JMLR 2016:
  one sigmoid output).
* :func:`learned_cost_volume`: -score for every pixel and disparity, (B, D, H, W), +inf where x < d (the package's
  rule). How much work that takes is the point of UCN's O(n) vs O(n^2): MC-CNN-fast runs its tower once per
  image and then one correlation; Siamese + decision and pseudo-Siamese run their towers once per image, then
  their decision layers once per disparity; 2-channel runs the whole network once per disparity (every pixel and
  disparity its own pass).
"""
from __future__ import annotations

import math
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.batching import EpochSeeded
from .costs import shifted_right
from .data import StereoPairs
from .correlation import correlation_1d
from .models import FastTower, PseudoSiameseNet, SiameseDecisionNet, TwoChannelNet, fast_cost_volume, sample_patch_pairs

__all__ = ["PatchTriples", "patch_scores", "patch_step", "learned_cost_volume", "PairBatches",
           "correspondence_contrastive_step"]

_DECISION = (SiameseDecisionNet, PseudoSiameseNet)      # two feature towers, then decision layers
_NAMES = "a FastTower, TwoChannelNet, SiameseDecisionNet or PseudoSiameseNet"


class PatchTriples(EpochSeeded):
    """``steps`` batches per epoch of ``batch_size`` (left, positive, negative) patch triples, (N, 1, 9, 9) each,
    drawn from ``pairs`` (visible pixels only) by :func:`sample_patch_pairs`: the positive at the true match, the
    negative ``neg`` = (N_lo, N_hi) pixels off along the row, either side. Epoch e of seed s always draws the
    same patches."""

    def __init__(self, pairs: StereoPairs, batch_size: int, steps: int, seed: int = 0,
                 neg: tuple[int, int] = (4, 10), pos: int = 0, patch: int = 9):
        if batch_size < 1 or steps < 1:
            raise ValueError(f"batch_size and steps must be positive, got {batch_size} and {steps}")
        self.pairs, self.batch_size, self.steps, self.seed = pairs, batch_size, steps, seed
        self.neg, self.pos, self.patch = neg, pos, patch

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        g = self.epoch_generator()
        p = self.pairs
        for s in torch.randint(2 ** 31 - 1, (self.steps,), generator=g).tolist():
            yield sample_patch_pairs(p.left, p.right, p.disparity, p.visible, self.batch_size, seed=s,
                                     patch=self.patch, neg=self.neg, pos=self.pos)


def patch_scores(model: nn.Module, left: Tensor, right: Tensor) -> Tensor:
    """Scores of patch pairs, higher = a better match: left, right (N, 1, 9, 9) -> (N,). MC-CNN-fast: the
    cosine of its unit vectors; 2-channel, Siamese + decision and pseudo-Siamese: their logit."""
    if isinstance(model, FastTower):
        return (model(left) * model(right)).sum(1).flatten()
    if isinstance(model, TwoChannelNet):
        return model(torch.cat([left, right], 1))
    if isinstance(model, _DECISION):
        return model(left, right)
    raise TypeError(f"model must be {_NAMES}, got {type(model).__name__}")


def _triple_scores(model: nn.Module, left: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor]:
    """(s+, s-), (N,) each: the scores of (left, pos) and (left, neg), with the left patch through a tower ONCE
    where the network has towers (the 2-channel network must see each pair whole)."""
    n = len(left)
    if isinstance(model, FastTower):
        fl, fr = model(left), model(torch.cat([pos, neg]))                          # (N, C, 1, 1), (2N, C, 1, 1)
        return (fl * fr[:n]).sum(1).flatten(), (fl * fr[n:]).sum(1).flatten()
    if isinstance(model, _DECISION):
        fl, fr = model.features(left, torch.cat([pos, neg]))
        logits = model.decide(torch.cat([fl.repeat(2, 1, 1, 1), fr], 1)).flatten()    # (2N,)
        return logits[:n], logits[n:]
    both = patch_scores(model, torch.cat([left, left]), torch.cat([pos, neg]))
    return both[:n], both[n:]


def patch_step(margin: float = 0.2):
    """The step for ``fit``: (model, (left, positive, negative) patches) -> (loss, {"accuracy": share of triples
    whose positive scores higher than its negative}). FastTower: the hinge mean(max(0, margin + s- - s+)) on
    cosines; the decision networks: binary cross-entropy of the logits, positives 1 and negatives 0."""

    def step(model: nn.Module, batch: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, dict]:
        left, pos, neg = batch
        s_pos, s_neg = _triple_scores(model, left, pos, neg)
        if isinstance(model, FastTower):
            loss = (margin + s_neg - s_pos).clamp_min(0).mean()
        else:
            logits = torch.cat([s_pos, s_neg])
            labels = torch.cat([torch.ones_like(s_pos), torch.zeros_like(s_neg)])
            loss = F.binary_cross_entropy_with_logits(logits, labels)
        return loss, {"accuracy": (s_pos > s_neg).float().mean().detach()}

    return step


def _decision_volume(model: nn.Module, left: Tensor, right: Tensor, max_disparity: int) -> Tensor:
    """-logit for every disparity (B, D, H, W) of a decision network, before the +inf rule."""
    r = 4                                                                           # 9 x 9 patches
    pl, pr = F.pad(left, (r, r, r, r)), F.pad(right, (r, r, r, r))
    if isinstance(model, _DECISION):                                                # towers once per image
        fl, fr = model.features(pl, pr)                                             # (B, F, H, W) each
        shifted, _ = shifted_right(fr, max_disparity)                               # (B, D, F, H, W)
        return torch.stack([-model.decide(torch.cat([fl, shifted[:, d]], 1))[:, 0]
                            for d in range(max_disparity)], 1)
    shifted, _ = shifted_right(pr, max_disparity)                                   # whole net per disparity
    return torch.stack([-model.net(torch.cat([pl, shifted[:, d]], 1))[:, 0] for d in range(max_disparity)], 1)


@torch.no_grad()
def learned_cost_volume(model: nn.Module, left: Tensor, right: Tensor, max_disparity: int,
                        batch_size: int = 8) -> Tensor:
    """The learned cost -score of every pixel and disparity: (B, 1, H, W) views -> (B, D, H, W), lower is better,
    +inf where x < d; in eval mode, without gradients, ``batch_size`` pairs at a time. Views are zero-padded by
    4 pixels, so that every pixel has its 9 x 9 patch (as the training patches)."""
    was_training = model.training
    model.eval()
    try:
        parts = []
        for i in range(0, len(left), batch_size):
            l, r = left[i:i + batch_size], right[i:i + batch_size]
            if isinstance(model, FastTower):
                parts.append(fast_cost_volume(model, l, r, max_disparity))
            elif isinstance(model, (TwoChannelNet, *_DECISION)):
                parts.append(_decision_volume(model, l, r, max_disparity))
            else:
                raise TypeError(f"model must be {_NAMES}, got {type(model).__name__}")
        cost = torch.cat(parts)
    finally:
        model.train(was_training)
    x, d = torch.arange(left.shape[-1], device=left.device), torch.arange(max_disparity, device=left.device)
    return cost.masked_fill((x < d[:, None])[:, None], math.inf)


# ----------------------------------------------------------------------------------------------- UCN
class PairBatches(EpochSeeded):
    """``steps`` batches per epoch of ``batch_size`` whole training pairs, drawn at random from ``pairs``:
    (left, right (N, 1, H, W), disparity (N, H, W), visible (N, H, W)), for dense training."""

    def __init__(self, pairs: StereoPairs, batch_size: int, steps: int, seed: int = 0):
        if not 1 <= batch_size <= len(pairs) or steps < 1:
            raise ValueError(f"batch_size must be 1 ... {len(pairs)} (the pairs there are) and steps positive, "
                             f"got {batch_size} and {steps}")
        self.pairs, self.batch_size, self.steps, self.seed = pairs, batch_size, steps, seed

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
        g = self.epoch_generator()
        p = self.pairs
        for _ in range(self.steps):
            i = torch.randperm(len(p), generator=g)[:self.batch_size].to(p.left.device)
            yield p.left[i], p.right[i], p.disparity[i], p.visible[i]


def correspondence_contrastive_step(max_disparity: int, margin: float = 1.0, neg_low: int = 4):
    """UCN's correspondence contrastive loss (Choy et al., 2016) for a :class:`FastTower` on whole pairs, the step
    for ``fit``: the tower runs once per image (fully convolutional), and at EVERY visible left pixel

        loss = 1/2 ||f_L(x) - f_R(x - d)||^2 + 1/2 max(0, margin - ||f_L(x) - f_R(x - d_neg)||)^2,

    averaged over the pixels, where d_neg is the hardest negative: among the disparities at least ``neg_low`` from
    the true d (and inside the image), the one whose right feature is nearest to f_L(x). Unit features:
    ||a - b||^2 = 2 - 2 cos, and all the cosines come from one correlation. Returns (loss, {"accuracy": share of
    pixels whose true match beats the hardest negative})."""

    def step(model: nn.Module, batch: tuple[Tensor, Tensor, Tensor, Tensor]) -> tuple[Tensor, dict]:
        left, right, disparity, visible = batch
        r = model.patch // 2
        f1, f2 = model(F.pad(left, (r, r, r, r))), model(F.pad(right, (r, r, r, r)))   # (B, C, H, W)
        cosine = correlation_1d(f1, f2, max_disparity) * f1.shape[1]                    # (B, D, H, W)
        d = disparity.round().long().clamp(0, max_disparity - 1)                         # (B, H, W)
        cos_pos = cosine.gather(1, d[:, None])[:, 0]
        ds = torch.arange(max_disparity, device=left.device)[None, :, None, None]
        x = torch.arange(left.shape[-1], device=left.device)
        candidate = ((ds - d[:, None]).abs() >= neg_low) & (x >= ds)                     # (B, D, H, W)
        cos_neg = cosine.masked_fill(~candidate, -2.0).amax(1)                           # the hardest negative
        dist_neg = (2 - 2 * cos_neg).clamp_min(1e-8).sqrt()
        per_pixel = 0.5 * (2 - 2 * cos_pos) + 0.5 * (margin - dist_neg).clamp_min(0) ** 2
        keep = visible & candidate.any(1)
        return per_pixel[keep].mean(), {"accuracy": (cos_pos > cos_neg)[keep].float().mean().detach()}

    return step
