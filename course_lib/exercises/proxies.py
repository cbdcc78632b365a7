"""Checkers for lesson 08: the classification losses that teach a distance.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..similarity.proxies import arcface_loss, cosine_logits, normalized_softmax_loss, proxy_nca_loss
from .harness import Case, fallback, has_nan, like, run_checks

__all__ = ["check_normalized_softmax_loss", "check_arcface_loss", "check_proxy_nca_loss"]

_NORMALIZE_HINT = ("Normalize BOTH the embeddings and the class vectors (F.normalize(..., dim=1)): the logit is a "
                   "cosine, so only directions count.")


def _cases(seed: int, extra: tuple = ()) -> list[Case]:
    """Hand-made and random batches: (embeddings, labels, class vectors, *extra)."""
    g = torch.Generator().manual_seed(seed)
    t = lambda *rows: torch.tensor(rows, dtype=torch.float32)
    e, y, w = torch.randn(10, 4, generator=g) * 3, torch.randint(0, 5, (10,), generator=g), torch.randn(5, 4, generator=g) * 2
    return [
        Case("one embedding on its class vector, two classes", (t([2.0, 0.0]), torch.tensor([0]), t([1.0, 0.0], [0.0, 3.0]), *extra)),
        Case("three embeddings of different lengths", (t([1.0, 1.0], [0.0, -5.0], [0.3, 0.1]), torch.tensor([1, 0, 1]),
                                                      t([1.0, 0.0], [0.0, 1.0], [-1.0, 1.0]), *extra), grad="match"),
        Case("random batch (B=10, C=5, D=4), vectors not unit length", (e, y, w, *extra), grad="match"),
        Case("an embedding exactly opposite its class vector (cos = -1) and a zero embedding",
             (t([-1.0, 0.0], [0.0, 0.0]), torch.tensor([0, 1]), t([1.0, 0.0], [0.0, 1.0]), *extra), grad="finite"),
    ]


@fallback(normalized_softmax_loss)
def check_normalized_softmax_loss(fn: Callable[[Tensor, Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(embeddings, labels, weights, scale) -> loss``: (B, D), (B,), (C, D), float -> the mean over the
    batch of the cross-entropy of ``scale * cos(e, w_c)``."""
    def unnormalized_w(e, y, w, s):
        return F.cross_entropy(s * F.normalize(e, dim=1) @ w.T, y)
    rules = [
        (_NORMALIZE_HINT, like(lambda e, y, w, s: F.cross_entropy(s * e @ w.T, y))),
        (_NORMALIZE_HINT + " (the class vectors are not normalized)", like(unnormalized_w)),
        ("Multiply the cosines by the scale before the softmax: cosines lie in [-1, 1], too close together for "
         "a confident softmax.", like(lambda e, y, w, s: F.cross_entropy(cosine_logits(e, w), y))),
        ("Return the mean over the batch, not the sum.",
         like(lambda e, y, w, s: F.cross_entropy(s * cosine_logits(e, w), y, reduction="sum"))),
        ("Cross-entropy is −log softmax of the TRUE class's logit: use F.cross_entropy(logits, labels), not the "
         "largest logit.", like(lambda e, y, w, s: F.cross_entropy(s * cosine_logits(e, w), (s * cosine_logits(e, w)).argmax(1)))),
    ]
    return run_checks("normalized softmax loss", fn, _cases(20, (8.0,)), normalized_softmax_loss, rules,
                      "logits = scale × cos(embedding, class vector), (B, C); then F.cross_entropy(logits, labels).")


def _arc_variant(e, y, w, m, s, where="angle", clamp=True):
    cos = cosine_logits(e, w)
    cos = cos.clamp(-1 + 1e-6, 1 - 1e-6) if clamp else cos
    target = cos.gather(1, y[:, None])
    if where == "angle":
        new = torch.cos(torch.acos(target) + m)
    elif where == "cosine":
        new = target - m
    else:                                                   # the margin on every class
        return F.cross_entropy(s * torch.cos(torch.acos(cos) + m), y)
    return F.cross_entropy(s * cos.scatter(1, y[:, None], new), y)


@fallback(arcface_loss)
def check_arcface_loss(fn: Callable[[Tensor, Tensor, Tensor, float, float], Tensor]) -> bool:
    """Check ``fn(embeddings, labels, weights, margin, scale) -> loss``: (B, D), (B,), (C, D), margin in radians,
    float -> mean cross-entropy where the true class's logit is ``scale * cos(θ_y + margin)`` and the others
    ``scale * cos θ_j``. θ = acos of a cosine clamped to [-1 + 1e-6, 1 - 1e-6] (acos is infinitely steep at ±1).
    Where θ_y + margin > π, use cos θ_y − margin · sin(margin) (cos would rise again past π)."""
    cases = _cases(21, (0.5, 8.0))
    rules = [
        ("The margin goes on the ANGLE: cos(θ + m), not cos θ − m (that is CosFace).",
         like(lambda e, y, w, m, s: _arc_variant(e, y, w, m, s, where="cosine"))),
        ("Only the TRUE class gets the margin; the other classes keep cos θ_j.",
         like(lambda e, y, w, m, s: _arc_variant(e, y, w, m, s, where="all"))),
        ("Past π, cos(θ + m) rises again, so the margin would help: where θ_y + m > π use cos θ_y − m·sin(m).",
         like(lambda e, y, w, m, s: _arc_variant(e, y, w, m, s, where="angle"))),
        (_NORMALIZE_HINT, like(lambda e, y, w, m, s: F.cross_entropy(s * (e @ w.T).scatter(
            1, y[:, None], torch.cos(torch.acos((e @ w.T).gather(1, y[:, None]).clamp(-1 + 1e-6, 1 - 1e-6)) + m)), y))),
        ("Multiply the logits by the scale.", like(lambda e, y, w, m, s: _arc_variant(e, y, w, m, 1.0))),
        ("acos has an infinite slope at ±1: clamp the cosine to [-1 + 1e-6, 1 - 1e-6] before acos, or an "
         "embedding on (or opposite) its class vector gives NaN.", has_nan),
    ]
    return run_checks("ArcFace loss", fn, cases, arcface_loss, rules,
                      "cos (B, C) of unit vectors; θ_y = acos of the true class's (clamped) cosine; put cos(θ_y + m) "
                      "back in its place (scatter or a one-hot mask); scale; cross-entropy.")


def _nca_variant(e, y, p, s, keep_positive=False, normalize=True, squared=True):
    en, pn = (F.normalize(e, dim=1), F.normalize(p, dim=1)) if normalize else (e, p)
    d = torch.cdist(en, pn) ** (2 if squared else 1)
    own = F.one_hot(y, len(p)).bool()
    logits = -s * d
    denominator = torch.logsumexp(logits if keep_positive else logits.masked_fill(own, -math.inf), dim=1)
    return (-logits[own] + denominator).mean()


@fallback(proxy_nca_loss)
def check_proxy_nca_loss(fn: Callable[[Tensor, Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(embeddings, labels, proxies, scale) -> loss``: (B, D), (B,), (C, D), float -> the mean over the
    batch of −log(exp(−s d_y) / Σ_{j≠y} exp(−s d_j)), d_j = ||ê − p̂_j||² between unit vectors."""
    rules = [
        ("Leave the positive proxy OUT of the denominator (Σ over j ≠ y), as in the paper: mask it with -inf "
         "before logsumexp.", like(lambda e, y, p, s: _nca_variant(e, y, p, s, keep_positive=True))),
        (_NORMALIZE_HINT, like(lambda e, y, p, s: _nca_variant(e, y, p, s, normalize=False))),
        ("d is the SQUARED distance ||ê − p̂||² (= 2 − 2 cos for unit vectors).",
         like(lambda e, y, p, s: _nca_variant(e, y, p, s, squared=False))),
        ("Multiply the distances by the scale inside the exponentials.", like(lambda e, y, p, s: _nca_variant(e, y, p, 1.0))),
    ]
    cases = _cases(22, (4.0,))
    return run_checks("Proxy-NCA loss", fn, cases, proxy_nca_loss, rules,
                      "d = 2 − 2 cos (B, C); loss = s·d_y + logsumexp over the other classes of (−s·d_j); mean.")
