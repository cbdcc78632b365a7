"""Seeing how hard triplets are: every positive and negative of one anchor on a distance axis."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..similarity.distances import pairwise_distances
from ..similarity.labels import label_masks
from ..similarity.mining import (
    DIFFICULTY,
    batch_hard_triplets,
    distance_weighted_triplets,
    semi_hard_triplets,
    triplet_difficulty,
)
from .style import PALETTE, font_size, image_png, plotly_layout

__all__ = ["anchor_view", "busiest_anchor", "difficulty_explorer", "picked_negative_distances",
           "sphere_distance_density", "plot_negative_distances"]

COLOURS = {"positive": PALETTE[0], "hard": PALETTE[3], "semi-hard": PALETTE[1], "easy": PALETTE[9]}


def anchor_view(embeddings: Tensor, labels: Tensor, anchor: int, positive: int | None = None) -> dict:
    """Distances from one anchor: to every positive and negative, and the chosen positive
    (default: the farthest one, as batch-hard would choose)."""
    d = pairwise_distances(embeddings.detach().float())[anchor].cpu()    # (B,)
    y = labels.cpu()
    pos = torch.nonzero((y == y[anchor]) & (torch.arange(len(y)) != anchor)).flatten()
    neg = torch.nonzero(y != y[anchor]).flatten()
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"anchor {anchor} has {len(pos)} positives and {len(neg)} negatives in this batch: "
                         "pick an anchor whose class appears at least twice (use a P x K batch)")
    if positive is None:
        positive = int(pos[d[pos].argmax()])
    elif positive not in pos.tolist():
        raise ValueError(f"{positive} is not a positive of anchor {anchor}; positives are {pos.tolist()}")
    return dict(d=d, pos=pos, neg=neg, positive=positive, d_ap=float(d[positive]))


def busiest_anchor(embeddings: Tensor, labels: Tensor, margin: float) -> int:
    """The anchor whose farthest positive has the most hard or semi-hard negatives: an interesting
    first view (ties: the lowest index). Raises if no anchor has both a positive and a negative."""
    d = pairwise_distances(embeddings.detach().float()).cpu()
    y = labels.cpu()
    same = y[:, None] == y[None, :]
    pos = same & ~torch.eye(len(y), dtype=torch.bool)
    if not (pos.any(1) & (~same).any(1)).any():
        raise ValueError("no anchor has both a positive and a negative in this batch: use a P x K batch")
    d_ap = torch.where(pos, d, torch.zeros_like(d)).amax(1, keepdim=True)           # (B, 1)
    busy = (~same & (d < d_ap + margin)).sum(1) * (pos.any(1) & (~same).any(1))    # non-easy negatives
    return int(busy.argmax())


def _negative_groups(view: dict, margin: float) -> dict[str, Tensor]:
    kind = triplet_difficulty(torch.full((len(view["neg"]),), view["d_ap"]), view["d"][view["neg"]], margin)
    return {name: view["neg"][kind == k] for k, name in enumerate(DIFFICULTY)}


def difficulty_explorer(embeddings: Tensor, labels: Tensor, images: Tensor | None = None, margin: float = 0.2,
                        anchor: int | None = None):
    """Pick an anchor (and a positive): see all its positives (top row) and negatives (bottom row) by
    distance, negatives coloured hard / semi-hard / easy relative to d(a, p) and the margin.
    The first anchor shown is ``anchor``, else :func:`busiest_anchor`."""
    import ipywidgets as W
    import plotly.graph_objects as go

    y = labels.cpu()
    anchors = [i for i in range(len(y)) if (y == y[i]).sum() > 1 and (y != y[i]).any()]
    if not anchors:
        raise ValueError("no anchor has both a positive and a negative in this batch: use a P x K batch")
    rng = np.random.default_rng(0)
    jitter = rng.uniform(-0.18, 0.18, len(y))
    fig = go.FigureWidget(layout=plotly_layout(
        width=900, height=380, xaxis=dict(title="distance from the anchor", rangemode="tozero"),
        yaxis=dict(tickvals=[0, 1], ticktext=["negatives", "positives"], range=[-0.6, 1.6])))
    for name in ("positive", *DIFFICULTY):
        fig.add_scatter(x=[], y=[], mode="markers", name=name, customdata=[],
                        marker=dict(size=12, color=COLOURS[name], line=dict(width=1, color="white")),
                        hovertemplate="sample %{customdata}<br>d = %{x:.3f}<extra>" + name + "</extra>")
    fig.add_vline(x=0, line=dict(color=PALETTE[0], width=3))
    fig.add_vrect(x0=0, x1=margin, fillcolor=PALETTE[1], opacity=0.15, line_width=0)
    first = busiest_anchor(embeddings, labels, margin) if anchor is None else anchor
    anchor_box = W.Dropdown(options=anchors, value=first, description="anchor", layout=W.Layout(width="200px"))
    positive_box = W.Dropdown(description="positive", layout=W.Layout(width="220px"))
    margin_box = W.FloatSlider(value=margin, min=0.05, max=1.0, step=0.05, description="margin",
                               layout=W.Layout(width="360px"))
    picture = W.Image(format="png", width=112, height=112)
    counts = W.HTML()

    def redraw(_=None):
        v = anchor_view(embeddings, labels, anchor_box.value, positive_box.value)
        groups = _negative_groups(v, margin_box.value)
        with fig.batch_update():
            fig.data[0].x, fig.data[0].y, fig.data[0].customdata = v["d"][v["pos"]].numpy(), 1 + jitter[v["pos"].numpy()], v["pos"].numpy()
            for trace, name in zip(fig.data[1:], DIFFICULTY):
                idx = groups[name]
                trace.x, trace.y, trace.customdata = v["d"][idx].numpy(), jitter[idx.numpy()], idx.numpy()
            fig.layout.shapes[0].x0 = fig.layout.shapes[0].x1 = v["d_ap"]
            fig.layout.shapes[1].x0, fig.layout.shapes[1].x1 = v["d_ap"], v["d_ap"] + margin_box.value
            fig.layout.title.text = (f"anchor {anchor_box.value} (class {int(y[anchor_box.value])}), "
                                     f"positive {v['positive']}: d(a, p) = {v['d_ap']:.3f}")
        if images is not None:
            picture.value = image_png(images[anchor_box.value])
        counts.value = (f"<span style='font-size:{font_size()}px'>" + "<br>".join(
            f"<b style='color:{COLOURS[n]}'>{n}</b>: {len(groups[n])}" for n in DIFFICULTY) + "</span>")

    def new_anchor(_=None):
        v = anchor_view(embeddings, labels, anchor_box.value)
        positive_box.unobserve(redraw, names="value")
        positive_box.options = v["pos"].tolist()
        positive_box.value = v["positive"]
        positive_box.observe(redraw, names="value")
        redraw()

    anchor_box.observe(new_anchor, names="value")
    positive_box.observe(redraw, names="value")
    margin_box.observe(redraw, names="value")
    new_anchor()
    side = W.VBox([picture, counts], layout=W.Layout(padding="40px 0 0 10px"))
    return W.VBox([W.HBox([anchor_box, positive_box, margin_box]), W.HBox([fig, side])])


def picked_negative_distances(embeddings: Tensor, labels: Tensor, margin: float = 0.2,
                              generator: torch.Generator | None = None) -> dict[str, np.ndarray]:
    """d(a, n) of the negatives each miner picks in one batch, next to all negative distances.

    -> {"all negatives", "batch-hard", "semi-hard", "distance-weighted"}: 1-D arrays of distances.
    """

    e = torch.nn.functional.normalize(embeddings.detach().float(), dim=1)
    d = pairwise_distances(e)
    _, neg = label_masks(labels)
    out = {"all negatives": d[neg]}
    for name, (a, _, n) in (("batch-hard", batch_hard_triplets(e, labels)),
                            ("semi-hard", semi_hard_triplets(e, labels, margin)),
                            ("distance-weighted", distance_weighted_triplets(e, labels, generator=generator))):
        out[name] = d[a, n]
    return {k: v.cpu().numpy() for k, v in out.items()}


def sphere_distance_density(dim: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """q(d): density of the distance between two uniform random points on the unit sphere in R^dim,
    normalised to integrate to 1 on [0, 2] (Wu, Manmatha, Smola & Krähenbühl 2017)."""
    d = np.linspace(1e-3, 2 - 1e-3, n)
    log_q = (dim - 2) * np.log(d) + (dim - 3) / 2 * np.log(np.clip(1 - d ** 2 / 4, 1e-12, None))
    q = np.exp(log_q - log_q.max())
    return d, q / np.trapezoid(q, d)


def plot_negative_distances(embeddings: Tensor, labels: Tensor, margin: float = 0.2,
                            generator: torch.Generator | None = None, title: str | None = None):
    """Histogram of a batch's negative distances on the unit sphere, q(d) for its dimension, and the
    distances of the negatives picked by batch-hard, semi-hard and distance-weighted sampling.
    Click a legend entry to hide or show it."""
    import plotly.graph_objects as go

    picked = picked_negative_distances(embeddings, labels, margin, generator)
    dim = embeddings.shape[1]
    fig = go.Figure(layout=plotly_layout(
        title=title or f"Negative distances in one batch (D = {dim}) and the ones each miner picks",
        width=980, height=480, barmode="overlay", xaxis=dict(title="d(anchor, negative)", range=[0, 2]),
        yaxis=dict(title="density")))
    colours = {"all negatives": "#999999", "batch-hard": PALETTE[3], "semi-hard": PALETTE[1],
               "distance-weighted": PALETTE[2]}
    for name, values in picked.items():
        fig.add_histogram(x=values, name=f"{name} ({len(values):,})", histnorm="probability density",
                          xbins=dict(start=0, end=2, size=0.04), marker_color=colours[name],
                          opacity=0.45 if name == "all negatives" else 0.6)
    d, q = sphere_distance_density(dim)
    fig.add_scatter(x=d, y=q, mode="lines", name=f"q(d): random points, D = {dim}",
                    line=dict(color="black", width=3, dash="dash"))
    for x, text in ((0.5, "cut-off 0.5"), (1.4, "1.4 = β + α")):
        fig.add_vline(x=x, line=dict(color="#555", dash="dot"), annotation_text=text,
                      annotation_position="top")
    return fig
