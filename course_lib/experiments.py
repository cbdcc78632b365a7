"""Experiments over several runs: train the same recipe over seeds, summarise, compare.

This module sits above the maths (it trains and evaluates through them); nothing in ``core`` or in the
lesson packages imports it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from torch import Tensor, nn

from .core.runtime import seed_everything
from .core.training import History, StepFn, cosine_schedule, embed, fit
from .similarity.evaluation import retrieval_scores
from .similarity.hierarchy import (
    AnchorNeighbourSampler,
    ClassTree,
    LiveTree,
    RebuildEachEpoch,
    nearest_classes,
)
from .similarity.losses import batch_all_triplet_loss, batch_contrastive_loss, hierarchical_triplet_loss
from .similarity.metrics import map_at_r, precision_at_1
from .similarity.proxies import ClassProxies, EmbedderWithProxies
from .similarity.samplers import PKSampler
from .similarity.steps import pk_step

__all__ = ["over_seeds", "Build", "train_run", "train_over_seeds", "mean_sd", "Recipe", "recipe_loss",
           "recipe_setup", "recipe_name", "candidate_recipes", "best_recipe", "choose_settings", "Method",
           "method_setup", "train_with_curves", "compare", "pooled_sd", "first_reach"]


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


Build = Callable[[int], "tuple[nn.Module, Iterable, StepFn]"]   # seed -> (model on its device, batches, step)


def train_run(build: Build, seed: int, *, epochs: int, lr: float = 1e-3, cosine: bool = False,
              evaluate: Callable[[nn.Module], dict] | None = None) -> tuple[nn.Module, History]:
    """One training run from a seed: ``seed_everything(seed)``, ``model, batches, step = build(seed)``, then
    ``fit`` for ``epochs`` (Adam at ``lr``; with ``cosine``, the rate decays along a cosine to 0 over all the
    steps), ``evaluate(model)`` after every epoch, no progress bar. Returns (model, history).

    ``build`` makes everything the run needs from its seed, after the seeding: the network (on its device),
    the batches (seeded with ``seed``) and the step function; reseed there any generator the step draws from.
    """
    seed_everything(seed)
    model, batches, step = build(seed)
    schedule = cosine_schedule(epochs * len(batches)) if cosine else None
    history = fit(model, batches, step, epochs=epochs, lr=lr, lr_schedule=schedule, evaluate=evaluate,
                  progress=False)
    return model, history


def train_over_seeds(build: Build, seeds: Sequence[int] | int, *, epochs: int, test: tuple[Tensor, Tensor],
                     lr: float = 1e-3, cosine: bool = False) -> dict[str, list[float]]:
    """:func:`train_run` from every seed, each model scored by retrieval on ``test = (x, y)``.

    Returns ``{"P@1": [...], "MAP@R": [...], "seconds": [...]}`` with one entry per seed (``seeds=3``: 0, 1, 2),
    so the same seeds give the same lists.
    """
    x, y = test

    def run(seed: int) -> dict[str, float]:
        model, history = train_run(build, seed, epochs=epochs, lr=lr, cosine=cosine)
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


@dataclass(frozen=True)
class Recipe:
    """One way to train in notebook 04: which batches, which loss.

    sampling: ``"P×K"`` (random classes) or ``"neighbours"`` (anchor-neighbour batches);
    margin:   a number (batch-all's fixed margin) or ``"dynamic"`` (HTL: beta + gamma (d_H - s_anchor));
    gamma:    the scale of the tree's part of a dynamic margin (1 is Ge et al.'s);
    squared:  hinge on squared distances (the units of d_H and s) instead of plain ones.
    """
    sampling: str
    margin: float | str
    gamma: float = 1.0
    squared: bool = False

    def __post_init__(self):
        if self.sampling not in ("P×K", "neighbours"):
            raise ValueError(f'sampling must be "P×K" or "neighbours", got {self.sampling!r}')
        if not (self.margin == "dynamic" or isinstance(self.margin, (int, float))):
            raise ValueError(f'margin must be a number or "dynamic", got {self.margin!r}')

    @property
    def dynamic(self) -> bool:
        """True for HTL's per-class-pair margin, False for one fixed margin."""
        return self.margin == "dynamic"


def recipe_name(recipe: Recipe) -> str:
    """A short label: "batch-all, plain, margin 0.2", "HTL, γ 1.0", "neighbours, squared, margin 0.5" (HTL's
    batches, a fixed margin) or "dyn. margin γ 1.0, P×K" (HTL's loss on random batches)."""
    distance = "squared" if recipe.squared else "plain"
    if recipe.dynamic:
        return f"HTL, γ {recipe.gamma}" if recipe.sampling == "neighbours" else f"dyn. margin γ {recipe.gamma}, P×K"
    kind = "batch-all" if recipe.sampling == "P×K" else "neighbours"
    return f"{kind}, {distance}, margin {recipe.margin}"


def candidate_recipes(margins: dict[bool, Sequence[float]], gammas: Sequence[float]) -> list[Recipe]:
    """Notebook 04's validation grid: batch-all on P×K batches for each distance (``margins``' keys, False:
    plain, True: squared) and each margin of its grid, then HTL (neighbour batches, dynamic margin, squared
    distances) for each scale gamma."""
    baselines = [Recipe("P×K", m, squared=squared) for squared, grid in margins.items() for m in grid]
    return baselines + [Recipe("neighbours", "dynamic", gamma=g, squared=True) for g in gammas]


def best_recipe(scores: dict[Recipe, float], keep: Callable[[Recipe], bool] = lambda r: True) -> Recipe:
    """The recipe with the highest score among those ``keep`` accepts; on a tie, the first in ``scores``."""
    kept = [r for r in scores if keep(r)]
    if not kept:
        raise ValueError("no recipe passes the filter: score at least one of the kind you ask for")
    return max(kept, key=lambda r: scores[r])                          # max keeps the first of equal scores


def choose_settings(scores: dict[Recipe, float]) -> tuple[Recipe, Recipe]:
    """(baseline, HTL): the best fixed-margin recipe and the best dynamic-margin one by validation score."""
    return best_recipe(scores, lambda r: not r.dynamic), best_recipe(scores, lambda r: r.dynamic)


def recipe_loss(recipe: Recipe, live: LiveTree | None, beta: float = 0.1,
                htl: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None) -> Callable[[Tensor, Tensor], Tensor]:
    """The recipe's batch loss ``loss(embeddings, labels)``: HTL on the live tree for a dynamic margin, else
    batch-all with the fixed margin (``live`` may then be None).

    ``htl(embeddings, rows, class_margins)``: the HTL loss to train with (notebook 04's exercise, squared
    distances), given each label's row in the tree and the tree's (C, C) margins; None: course_lib's.
    """
    if recipe.margin != "dynamic":
        return lambda e, y: batch_all_triplet_loss(e, y, float(recipe.margin), squared=recipe.squared)
    if htl is None:
        return lambda e, y: hierarchical_triplet_loss(e, y, live.tree, beta, squared=recipe.squared, scale=recipe.gamma)
    if not recipe.squared:
        raise ValueError("an htl loss of your own uses squared distances: give the recipe squared=True")
    return lambda e, y: htl(e, live.tree.rows(y), live.tree.class_margins(beta, recipe.gamma).to(e.device))


def recipe_setup(recipe: Recipe, make_net: Callable[[], nn.Module], images: Tensor, labels: Tensor, tree: ClassTree,
                 *, classes_per_batch: int, per_class: int, steps: int, anchors: int, m: int, every: int = 2,
                 beta: float = 0.1, nearest: Callable[[Tensor, Tensor, int], Tensor] = nearest_classes,
                 htl: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None) -> Build:
    """``build(seed) -> (model, batches, step)`` for :func:`train_over_seeds`: ``make_net()``, then the recipe's
    sampler and loss.

    images (N, ...), labels (N,): the training set, on the model's device. ``tree`` is the tree of the
    weights every run starts from (the shared warm start); a run that needs a tree (neighbour batches or
    a dynamic margin) starts from it and rebuilds it from its own network every ``every`` epochs.
    Batches hold ``classes_per_batch`` x ``per_class`` images either way: P×K draws the classes at random,
    neighbour batches take ``anchors`` groups of ``m`` classes (anchors * m = classes_per_batch).
    ``nearest`` picks the neighbour classes and ``htl`` is the HTL loss (see :func:`recipe_loss`).
    """
    if recipe.sampling == "neighbours" and anchors * m != classes_per_batch:
        raise ValueError(f"neighbour batches of {anchors} anchors x m = {m} classes hold {anchors * m} classes, "
                         f"P×K batches {classes_per_batch}: make them equal so that the budgets match")

    def build(seed: int):
        model = make_net()
        random_batches = PKSampler(labels, classes_per_batch, per_class, steps=steps, seed=seed)
        if recipe.sampling == "P×K" and recipe.margin != "dynamic":         # no tree needed
            return model, random_batches, pk_step(images, labels, recipe_loss(recipe, None))
        live = LiveTree(model, images, labels, tree.levels, every=every, tree=tree)
        if recipe.sampling == "P×K":
            batches = RebuildEachEpoch(random_batches, live)
        else:
            batches = AnchorNeighbourSampler(labels, live, anchors, m, per_class, steps=steps, seed=seed,
                                             nearest=nearest)
        return model, batches, pk_step(images, labels, recipe_loss(recipe, live, beta, htl))
    return build


@dataclass(frozen=True)
class Method:
    """One contender of lesson 08's reality check: a loss and the value of its one tuned setting.

    ``Method("contrastive", 1.0)``: margin 1.0 on all pairs of the batch; ``Method("triplet", 0.2)``: batch-all,
    margin 0.2; ``Method("normalized softmax", 16)``: scale 16; ``Method("ArcFace", 0.5)``: margin 0.5 rad at
    scale ``ARCFACE_SCALE``; ``Method("Proxy-NCA", 8)``: scale 8.
    """
    loss: str
    value: float

    SETTINGS = {"contrastive": "margin", "triplet": "margin", "normalized softmax": "scale", "ArcFace": "margin",
                "Proxy-NCA": "scale"}
    ARCFACE_SCALE = 16.0

    def __post_init__(self):
        if self.loss not in self.SETTINGS:
            raise ValueError(f"loss must be one of {list(self.SETTINGS)}, got {self.loss!r}")

    @property
    def uses_proxies(self) -> bool:
        return self.loss in ("normalized softmax", "ArcFace", "Proxy-NCA")

    def options(self) -> dict[str, float]:
        """The keyword arguments of the loss function: {"margin": 0.5, "scale": 16.0} for ArcFace, ..."""
        extra = {"scale": self.ARCFACE_SCALE} if self.loss == "ArcFace" else {}
        return {self.SETTINGS[self.loss]: float(self.value), **extra}

    def __str__(self) -> str:
        return f"{self.loss}, {self.SETTINGS[self.loss]} {self.value:g}"


def method_setup(method: Method, make_net: Callable[[], nn.Module], images: Tensor, labels: Tensor, *,
                 classes_per_batch: int, per_class: int, steps: int,
                 losses: dict[str, Callable] | None = None) -> Build:
    """``build(seed) -> (model, batches, step)`` for :func:`train_run`: the same network (``make_net()``), the
    same P x K batches (seeded by the run's seed) and the same steps for every method; only the loss differs.

    images (N, ...), labels (N,): the training set on the model's device. Pair and triplet losses get the
    network's embeddings; proxy losses train one class vector per training class beside the network
    (:class:`EmbedderWithProxies`, one optimizer). ``losses``: your own loss functions by name ("normalized
    softmax", "ArcFace", "Proxy-NCA"), with the signature of course_lib's; the others are course_lib's.
    """
    classes = labels.unique().tolist()

    def build(seed: int):
        net = make_net()
        batches = PKSampler(labels, classes_per_batch, per_class, steps=steps, seed=seed)
        if method.loss == "contrastive":
            return net, batches, pk_step(images, labels, lambda e, y: batch_contrastive_loss(e, y, method.value))
        if method.loss == "triplet":
            return net, batches, pk_step(images, labels, lambda e, y: batch_all_triplet_loss(e, y, method.value))
        names = {"normalized softmax": "normalized softmax", "ArcFace": "arcface", "Proxy-NCA": "proxy-nca"}
        loss = (losses or {}).get(method.loss, names[method.loss])
        dim = net(images[:2]).shape[1]
        proxies = ClassProxies(classes, dim, loss, **method.options()).to(images.device)
        model = EmbedderWithProxies(net, proxies)
        return model, batches, pk_step(images, labels, model.loss)
    return build


def train_with_curves(build: Build, seeds: Sequence[int] | int, *, epochs: int, test: tuple[Tensor, Tensor],
                      lr: float = 1e-3) -> dict[str, list]:
    """:func:`train_run` from every seed, scored on ``test = (x, y)`` after every epoch.

    Returns lists with one entry per seed: "P@1", "MAP@R" (final), "seconds" (training time, evaluation
    left out), "curve" (MAP@R after each epoch), "epoch seconds" (training time of each epoch), "AP@R"
    (the final per-query AP@R, a (Q,) tensor: its standard error is the test set's own sampling error),
    "embeddings" (the final test embeddings, on the CPU) and "model" (the trained network).
    """
    x, y = test
    out: dict[str, list] = {k: [] for k in ("P@1", "MAP@R", "seconds", "curve", "epoch seconds", "AP@R",
                                           "embeddings", "model")}
    for seed in ([*range(seeds)] if isinstance(seeds, int) else list(seeds)):
        model, history = train_run(build, seed, epochs=epochs, lr=lr,
                                   evaluate=lambda m: {"MAP@R": map_at_r(embed(m, x), y)})
        e = embed(model, x)
        aps = map_at_r(e, y, reduction="none")
        for key, value in (("P@1", precision_at_1(e, y)), ("MAP@R", aps.double().mean().item()),
                           ("seconds", sum(r["seconds"] for r in history.epochs)),
                           ("curve", [r["MAP@R"] for r in history.epochs]),
                           ("epoch seconds", [r["seconds"] for r in history.epochs]),
                           ("AP@R", aps.cpu()), ("embeddings", e.cpu()), ("model", model)):
            out[key].append(value)
    return out


def compare(a: Sequence[float], b: Sequence[float], floor: float = 0.0) -> tuple[float, float, str]:
    """Is the mean of ``a`` really above that of ``b``? -> (gap, noise, word).

    noise = the larger of the two sds over seeds and ``floor`` (e.g. the test set's own sampling error);
    the word is "ahead" when gap > 2 noise, "behind" when gap < -2 noise, else "within the spread". A rule of
    thumb, not a test: it keeps one lucky seed from deciding a comparison.
    """
    (mean_a, sd_a), (mean_b, sd_b) = mean_sd(a), mean_sd(b)
    gap, noise = mean_a - mean_b, max(sd_a, sd_b, floor)
    return gap, noise, "ahead" if gap > 2 * noise else "behind" if gap < -2 * noise else "within the spread"


def pooled_sd(groups: Sequence[Sequence[float]]) -> float:
    """The seed-to-seed spread pooled over several methods: sqrt of the mean of their sample variances, each
    weighted by its degrees of freedom (n - 1). With 2 or 3 seeds one method's sd is a poor estimate (two
    close seeds give almost 0); pooling five methods gives it five times the degrees of freedom."""
    dof = sum(len(g) - 1 for g in groups)
    if dof < 1:
        raise ValueError("need at least one group with two or more values to estimate a spread")
    return math.sqrt(sum(mean_sd(g)[1] ** 2 * (len(g) - 1) for g in groups if len(g) > 1) / dof)


def first_reach(curve: Sequence[float], xs: Sequence[float], target: float) -> float:
    """The first x (step, second) at which ``curve`` reaches ``target``; inf if it never does. curve and xs:
    one value per epoch."""
    if len(curve) != len(xs):
        raise ValueError(f"curve and xs need one value per epoch each, got {len(curve)} and {len(xs)}")
    return next((float(x) for c, x in zip(curve, xs) if c >= target), math.inf)
