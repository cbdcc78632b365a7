"""Classification losses that teach a distance (lesson 08): one learned vector per class (a *proxy*),
compared with the embeddings by cosine similarity.

Normalized softmax, ArcFace (Deng et al., CVPR 2019) and Proxy-NCA (Movshovitz-Attias et al., ICCV 2017).
All three normalize both the embeddings and the class vectors, so that only directions matter.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from torch import Tensor, nn

from ..core.checks import check_labels

__all__ = ["cosine_logits", "normalized_softmax_loss", "arcface_loss", "proxy_nca_loss", "ClassProxies",
           "EmbedderWithProxies", "proxy_snapshot"]

# cos θ is clamped to [-1 + EPS, 1 - EPS] before acos: acos has an infinite slope at ±1, which gives NaN
# gradients when an embedding lies exactly on its class vector (or opposite it).
EPS = 1e-6


def _check(embeddings: Tensor, labels: Tensor, weights: Tensor, name: str) -> None:
    check_labels(labels, len(embeddings))
    if embeddings.ndim != 2 or weights.ndim != 2 or weights.shape[1] != embeddings.shape[1]:
        raise ValueError(f"embeddings must be (B, D) and {name} (C, D) with the same D, got "
                         f"{tuple(embeddings.shape)} and {tuple(weights.shape)}: one row per class")
    if len(labels) and int(labels.max()) >= len(weights):
        raise ValueError(f"a label is {int(labels.max())} but there are only {len(weights)} rows of {name}: "
                         "labels must be 0 … C - 1 (remap them, or make one row per class)")


def cosine_logits(embeddings: Tensor, weights: Tensor) -> Tensor:
    """cos of the angle between each embedding (B, D) and each class vector (C, D) -> (B, C).
    A zero embedding has cosine 0 with every class (and a finite gradient)."""
    return F.normalize(embeddings, dim=1) @ F.normalize(weights, dim=1).T


def normalized_softmax_loss(embeddings: Tensor, labels: Tensor, weights: Tensor, scale: float = 16.0) -> Tensor:
    """Cross-entropy on ``scale * cos(e, w_c)``: embeddings (B, D), labels (B,) in 0 … C-1, weights (C, D) ->
    the mean over the batch. pytorch-metric-learning's NormalizedSoftmaxLoss is this with scale = 1 /
    temperature and its W stored transposed, (D, C).

    >>> e, w = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> round(normalized_softmax_loss(e, torch.tensor([0]), w, scale=1.0).item(), 4)   # -log(e / (e + 1))
    0.3133
    """
    _check(embeddings, labels, weights, "weights")
    return F.cross_entropy(scale * cosine_logits(embeddings, weights), labels)


def arcface_loss(embeddings: Tensor, labels: Tensor, weights: Tensor, margin: float = 0.5,
                 scale: float = 16.0) -> Tensor:
    """ArcFace: the target class's logit becomes ``scale * cos(θ_y + margin)`` (the margin, in radians, is
    added to the ANGLE), the others stay ``scale * cos θ_j``; then cross-entropy, mean over the batch.

    Where θ_y + margin would pass π, cos(θ + m) would rise again; there the logit is cos θ − m sin m, as in
    the authors' code and pytorch-metric-learning's ArcFaceLoss (whose margin is in degrees: 28.6° ≈ 0.5).
    """
    _check(embeddings, labels, weights, "weights")
    cos = cosine_logits(embeddings, weights).clamp(-1 + EPS, 1 - EPS)   # (B, C)
    target = cos.gather(1, labels[:, None])                              # (B, 1)
    theta = torch.acos(target)
    with_margin = torch.where(theta <= math.pi - margin, torch.cos(theta + margin),
                              target - margin * math.sin(margin))
    logits = cos.scatter(1, labels[:, None], with_margin)
    return F.cross_entropy(scale * logits, labels)


def proxy_nca_loss(embeddings: Tensor, labels: Tensor, proxies: Tensor, scale: float = 8.0) -> Tensor:
    """Proxy-NCA: with d_j = ||ê − p̂_j||² (unit vectors, so d_j = 2 − 2 cos), the loss of an embedding is
    −log( exp(−s d_y) / Σ_{j ≠ y} exp(−s d_j) ) = s d_y + logsumexp_{j ≠ y}(−s d_j): the positive proxy is
    left out of the denominator, as in the paper (so the loss can go below 0). Mean over the batch.
    Needs at least two classes (C ≥ 2).
    """
    _check(embeddings, labels, proxies, "proxies")
    if len(proxies) < 2:
        raise ValueError("Proxy-NCA needs at least two proxies: the denominator sums over the other classes")
    d = 2 - 2 * cosine_logits(embeddings, proxies)                       # (B, C) squared distances
    own = F.one_hot(labels, len(proxies)).bool()
    others = torch.logsumexp((-scale * d).masked_fill(own, -math.inf), dim=1)
    return (scale * d[own] + others).mean()


class ClassProxies(nn.Module):
    """One learned vector per class, (C, D), and the loss that uses them: ``ClassProxies(classes, D, loss)(e, y)``.
    Give its parameters to the same optimizer as the network's (:class:`EmbedderWithProxies` does).

    classes: the number of classes C (labels 0 … C-1), or the class labels themselves, e.g. the 70 training
             classes of the two-digit benchmark (labels 0-99): row k then belongs to ``classes[k]``.
    loss:    ``"normalized softmax"``, ``"arcface"``, ``"proxy-nca"``, or a function
             ``loss(embeddings, rows, weights, **options)`` with the signature of those three (e.g. your own);
             ``options`` (scale, margin) go to it.
    """
    LOSSES = {"normalized softmax": normalized_softmax_loss, "arcface": arcface_loss, "proxy-nca": proxy_nca_loss}

    def __init__(self, classes: int | Sequence[int], dim: int, loss: str | Callable = "normalized softmax",
                 **options: float):
        super().__init__()
        if isinstance(loss, str) and loss not in self.LOSSES:
            raise ValueError(f"loss must be one of {sorted(self.LOSSES)} or a function, got {loss!r}")
        labels = torch.arange(classes) if isinstance(classes, int) else torch.as_tensor(list(classes))
        if labels.ndim != 1 or len(labels) < 1 or len(labels.unique()) != len(labels) or int(labels.min()) < 0:
            raise ValueError(f"classes must be a positive count or distinct labels >= 0, got {classes!r}")
        lookup = torch.full((int(labels.max()) + 1,), -1, dtype=torch.long)
        lookup[labels] = torch.arange(len(labels))
        self.register_buffer("lookup", lookup, persistent=False)       # label -> row (-1: not a class here)
        self.weight = nn.Parameter(torch.randn(len(labels), dim) / math.sqrt(dim))
        self.loss_fn = self.LOSSES[loss] if isinstance(loss, str) else loss
        self.loss_name = loss if isinstance(loss, str) else getattr(loss, "__name__", "your loss")
        self.options = options

    def rows(self, labels: Tensor) -> Tensor:
        """The row of each label: (B,) labels -> (B,) rows in 0 … C-1."""
        inside = (labels >= 0) & (labels < len(self.lookup))
        rows = torch.where(inside, self.lookup[labels.clamp(0, len(self.lookup) - 1)], -1)
        if (rows < 0).any():
            unknown = sorted(set(labels[rows < 0].tolist()))
            raise ValueError(f"labels {unknown[:5]} have no class vector: give ClassProxies every training class")
        return rows

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return self.loss_fn(embeddings, self.rows(labels), self.weight, **self.options)


class EmbedderWithProxies(nn.Module):
    """A network and its class vectors, trained together by one optimizer: ``model(x)`` is the network's
    embedding (so retrieval scores it as any other), ``model.loss(e, labels)`` the proxies' loss."""

    def __init__(self, net: nn.Module, proxies: ClassProxies):
        super().__init__()
        self.net, self.proxies = net, proxies

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def loss(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return self.proxies(embeddings, labels)


def proxy_snapshot(inputs: Tensor) -> Callable[[nn.Module], Tensor]:
    """fit's ``snapshot`` for an :class:`EmbedderWithProxies`: the embeddings of ``inputs`` (N, D) followed by
    the C class vectors, each scaled to the embeddings' 90th-percentile length so that they are drawn among
    the points -> (N + C, D). ``embedding_explorer(..., proxies=classes)`` draws the last C rows as stars."""
    def snapshot(model: nn.Module) -> Tensor:
        w = model.proxies.weight.float()
        e = torch.cat([w[:0]] + [model(inputs[i:i + 1024]).float() for i in range(0, len(inputs), 1024)])
        radius = e.norm(dim=1).quantile(0.9) if len(e) else 1.0
        return torch.cat([e, F.normalize(w, dim=1) * radius])
    return snapshot
