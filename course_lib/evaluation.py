"""Evaluation wiring shared by the notebooks: retrieval scores of a model, chance levels, seeds
summaries and collapse diagnostics. The metrics themselves are in ``metrics``; this module only
embeds, calls them and collects the numbers.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import torch
from torch import Tensor, nn

from ._checks import check_embeddings, check_labels
from .metrics import map_at_r, precision_at_1
from .runtime import seed_everything
from .training import embed, fit

__all__ = ["retrieval_scores", "chance_levels", "over_seeds", "train_over_seeds", "mean_sd", "effective_rank", "relative_spread",
           "collapse_report", "sample_pair_distances", "registration_report", "error_rate"]


def retrieval_scores(model: nn.Module, x: Tensor, y: Tensor) -> dict[str, float]:
    """P@1 and MAP@R of ``model`` when every image of x searches all the others. x: (N, ...), y: (N,)."""
    e = embed(model, x)
    return {"P@1": precision_at_1(e, y), "MAP@R": map_at_r(e, y)}


def error_rate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1000) -> float:
    """Share of the images x (N, ...) whose highest logit is not their label y (N,); in eval mode."""
    check_labels(y, len(x))
    logits = embed(model, x, batch_size=batch_size)                    # (N, classes), no gradients
    return float((logits.argmax(1) != y).float().mean())


def chance_levels(labels: Tensor, trials: int = 20, seed: int = 0) -> dict[str, float]:
    """What a random ranking scores on these labels: the floor every method is measured against.

    P@1 is exact: the share of the other N - 1 items that share the query's label, averaged over
    queries. MAP@R is averaged over ``trials`` random rankings (random embeddings in N dimensions).
    """
    check_labels(labels)
    y = labels.cpu()
    n = len(y)
    same = y.bincount()[y] - 1                                         # (N,) other items of the same class
    g = torch.Generator().manual_seed(seed)
    maps = [map_at_r(torch.randn(n, 32, generator=g), y) for _ in range(trials)]
    return {"P@1": (same.float() / (n - 1)).mean().item(), "MAP@R": sum(maps) / len(maps)}


def over_seeds(train: Callable[[int], dict[str, float]], seeds: Sequence[int] | int) -> dict[str, list[float]]:
    """Run ``train(seed)`` for every seed and collect each returned number into a list.

    ``train`` trains one model from scratch with that seed and returns its scores, e.g.
    ``{"MAP@R": 0.61, "P@1": 0.88}``. ``seeds=3`` means seeds 0, 1, 2.
    """
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seeds:
        raise ValueError("give at least one seed")
    results: dict[str, list[float]] = {}
    for seed in seeds:
        for name, value in train(seed).items():
            results.setdefault(name, []).append(float(value))
    return results


def train_over_seeds(make_net: Callable[[], nn.Module], batches: Callable[[int], Iterable] | None,
                     step: Callable | None, test: tuple[Tensor, Tensor], seeds: Sequence[int] | int, epochs: int, *,
                     generators: Sequence[torch.Generator] = (),
                     setup: Callable[[int, nn.Module], tuple[Iterable, Callable]] | None = None,
                     **fit_options) -> dict[str, list[float]]:
    """Train a fresh network from every seed and score its retrieval on ``test = (x, y)``.

    For each seed: ``seed_everything(seed)``, reseed every generator in ``generators`` (e.g. the one a
    miner draws from) with the same seed, build ``make_net()``, ``fit`` it for ``epochs`` on
    ``batches(seed)`` with ``step`` (``fit_options`` such as ``lr=`` go to ``fit``), then score it.
    When batches and step depend on the network (HTL's tree is built from it), pass
    ``setup(seed, model) -> (batches, step)`` instead, with ``batches=None, step=None``.
    Returns ``{"P@1": [...], "MAP@R": [...], "seconds": [...]}`` with one entry per seed, so the same
    seeds give the same lists.
    """
    x, y = test
    if (setup is None) == (batches is None or step is None):
        raise ValueError("give batches and step, or setup(seed, model) -> (batches, step), not both")

    def run(seed: int) -> dict[str, float]:
        seed_everything(seed)
        for g in generators:
            g.manual_seed(seed)
        model = make_net()
        batches_now, step_now = setup(seed, model) if setup is not None else (batches(seed), step)
        history = fit(model, batches_now, step_now, epochs=epochs, progress=False, **fit_options)
        return {**retrieval_scores(model, x, y), "seconds": sum(e["seconds"] for e in history.epochs)}

    return over_seeds(run, seeds)


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    v = [float(x) for x in values]
    if not v:
        raise ValueError("no values to summarise")
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, sd


def effective_rank(embeddings: Tensor) -> float:
    """exp(entropy of the normalised singular values) of the centred embeddings (Roy & Vetterli 2007).

    About D for embeddings that use every direction equally, 1 when they vary along a single line,
    and 0 (by convention) when every embedding is the same point. embeddings: (N, D).
    """
    check_embeddings(embeddings)
    x = embeddings.detach().float()
    s = torch.linalg.svdvals(x - x.mean(0))                            # (min(N, D),)
    if s.max() <= torch.finfo(x.dtype).eps * max(x.shape) * x.abs().max():   # rounding noise only
        return 0.0
    p = s / s.sum()
    return torch.exp(-(p * p.clamp_min(1e-30).log()).sum()).item()


def relative_spread(embeddings: Tensor) -> float:
    """Mean distance between two embeddings divided by their mean norm: 0 when all are one point.

    Dividing by the norm makes it blind to scale: a network that merely shrinks its embeddings keeps
    its spread, one that maps everything to the same point does not. embeddings: (N, D).
    """
    check_embeddings(embeddings)
    x = embeddings.detach().float()
    n = len(x)
    if n < 2:
        raise ValueError("need at least two embeddings to measure a spread")
    mean_distance = torch.nn.functional.pdist(x).mean()              # direct differences: exact 0 for equal rows
    return (mean_distance / x.norm(dim=1).mean().clamp_min(1e-12)).item()


def collapse_report(model: nn.Module, x: Tensor, y: Tensor) -> dict[str, float]:
    """Has the embedding collapsed? Effective rank, relative spread and MAP@R of x (N, ...) under model."""
    e = embed(model, x)
    return {"effective rank": effective_rank(e), "relative spread": relative_spread(e), "MAP@R": map_at_r(e, y)}


def sample_pair_distances(model: nn.Module, x: Tensor, y: Tensor, n_pairs: int, seed: int
                          ) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor]]:
    """Distances d(A, B) under ``model`` of ``n_pairs`` random pairs of x (half of them positive).

    -> distances (n_pairs,), same-class flags (n_pairs,), and the pairs' indices (i, j) into x.
    """
    from .data import PairSampler
    from .distances import paired_distances

    i, j, same = next(iter(PairSampler(y, batch_size=n_pairs, positive_fraction=0.5, steps=1, seed=seed)))
    e = embed(model, x)
    return paired_distances(e[i], e[j]), same, (i, j)


def registration_report(model: nn.Module, known: tuple[Tensor, Tensor], registered: tuple[Tensor, Tensor],
                        newcomers: tuple[Tensor, Tensor], threshold: float, seed: int = 3) -> dict[str, float]:
    """How a trained model handles classes it never saw, after *registering* a few images of each.

    known: (images, labels) of the training classes; registered: the few stored images of the new
    classes; newcomers: test images of the new classes. No weights change. Returns accuracies of
    verification (pairs of newcomers, "same if d <= threshold"), "which newcomer?" (nearest
    registered image) and "which of all classes?" (nearest of known + registered images).
    """
    from .metrics import precision_at_1

    d, same, _ = sample_pair_distances(model, *newcomers, n_pairs=1000, seed=seed)
    queries, new_y = embed(model, newcomers[0]), newcomers[1]
    e_reg, e_known = embed(model, registered[0]), embed(model, known[0])
    gallery, gallery_y = torch.cat([e_known, e_reg]), torch.cat([known[1], registered[1]])
    return {"verification of newcomer pairs": ((d <= threshold) == same).float().mean().item(),
            "which newcomer?": precision_at_1(queries, new_y, e_reg, registered[1]),
            "which of all classes?": precision_at_1(queries, new_y, gallery, gallery_y)}
