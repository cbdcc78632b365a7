"""Figures of lesson 08: where a margin goes, learning per step and per second, identification against
verification, and the size of the embedding.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .style import PALETTE, font_size, plotly_layout

__all__ = ["plot_target_logits", "plot_convergence", "plot_identification", "plot_dimension_sweep"]


def plot_target_logits(margin: float = 0.5):
    """The true class's logit (before the scale) against the angle θ between the embedding and its class vector:
    plain cos θ (normalized softmax), cos θ − m (a margin on the cosine, CosFace) and cos(θ + m) (a margin on the
    angle, ArcFace), with ArcFace's fallback cos θ − m sin m past θ = π − m (where cos(θ + m) would rise again)."""
    import plotly.graph_objects as go

    theta = np.linspace(0, math.pi, 361)
    arc = np.where(theta <= math.pi - margin, np.cos(theta + margin), np.cos(theta) - margin * math.sin(margin))
    fig = go.Figure(layout=plotly_layout(
        title=f"The true class's logit / scale, margin m = {margin} rad ({math.degrees(margin):.0f}°)", width=820,
        height=460, xaxis=dict(title="angle θ between embedding and its class vector (degrees)", dtick=30),
        yaxis=dict(title="logit / scale"), legend=dict(x=0.55, y=0.98)))
    degrees = np.degrees(theta)
    for y, name, dash, colour in ((np.cos(theta), "cos θ (normalized softmax)", "solid", PALETTE[0]),
                                  (np.cos(theta) - margin, "cos θ − m (margin on the cosine)", "dash", PALETTE[1]),
                                  (arc, "cos(θ + m) (ArcFace: margin on the angle)", "solid", PALETTE[3])):
        fig.add_scatter(x=degrees, y=y, mode="lines", name=name, line=dict(width=3.5, dash=dash, color=colour))
    fig.add_vline(x=math.degrees(math.pi - margin), line=dict(color="#777", dash="dot", width=2),
                  annotation=dict(text="π − m: the fallback starts", font=dict(size=font_size() - 2)),
                  annotation_position="bottom left")
    return fig


def plot_convergence(curves: dict[str, dict], steps_per_epoch: int, chance: float | None = None):
    """MAP@R against training steps (left) and against training seconds (right), one line per method: the mean
    over seeds, with each seed as a thin line.

    curves: {method: {"curve": [[MAP@R after each epoch] per seed], "epoch seconds": [[seconds] per seed]}}
    (the lists of :func:`course_lib.experiments.train_with_curves`).
    """
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("per optimizer step", "per second of training"),
                        horizontal_spacing=0.1)
    for k, (name, run) in enumerate(curves.items()):
        colour = PALETTE[k % len(PALETTE)]
        per_seed = np.asarray(run["curve"], dtype=float)                        # (S, E)
        seconds = np.cumsum(np.asarray(run["epoch seconds"], dtype=float), axis=1)
        steps = steps_per_epoch * np.arange(1, per_seed.shape[1] + 1)
        for col, xs in ((1, [steps] * len(per_seed)), (2, list(seconds))):
            for x, y in zip(xs, per_seed):
                fig.add_scatter(x=x, y=y, mode="lines", line=dict(color=colour, width=1), opacity=0.35,
                                showlegend=False, hoverinfo="skip", row=1, col=col)
            mean_x = xs[0] if col == 1 else seconds.mean(0)
            fig.add_scatter(x=mean_x, y=per_seed.mean(0), mode="lines+markers", name=name, legendgroup=name,
                            showlegend=col == 1, line=dict(color=colour, width=3.5), marker=dict(size=8),
                            row=1, col=col)
    if chance is not None:
        for col in (1, 2):
            fig.add_hline(y=chance, line=dict(color="#777", dash="dash", width=2), row=1, col=col,
                          annotation=dict(text=f"chance {chance:.3f}", font=dict(size=font_size() - 2)),
                          annotation_position="bottom right")
    fig.update_layout(**plotly_layout(title="MAP@R on the unseen classes while training (thin: one seed)",
                                      width=1050, height=480, legend=dict(orientation="h", y=-0.2, x=0)))
    fig.update_xaxes(title_text="optimizer steps", row=1, col=1)
    fig.update_xaxes(title_text="seconds of training (evaluation left out)", row=1, col=2)
    fig.update_yaxes(title_text="MAP@R", row=1, col=1)
    return fig


def plot_identification(sizes: Sequence[int], measured: Sequence[float], predicted_sizes: Sequence[int],
                        predicted: Sequence[float], verification: dict[str, float]):
    """Error rates against the gallery size, both axes logarithmic: rank-1 identification measured (``sizes``,
    ``measured``: accuracies) and predicted from the pairs' distances (``predicted_sizes``, ``predicted``:
    accuracies), identification's chance error 1 - 1/G, and each verification error as a horizontal line
    (``verification``: {label: accuracy}; verification has no gallery)."""
    import plotly.graph_objects as go

    def error(accuracies):
        return [max(1.0 - a, 1e-4) for a in accuracies]              # a log axis cannot show 0: floor at 1e-4

    fig = go.Figure(layout=plotly_layout(
        title="Error rate against the number of enrolled classes (log–log)", width=900, height=520,
        xaxis=dict(title="gallery size G (classes enrolled, one image each)", type="log"),
        yaxis=dict(title="error rate (1 − accuracy)", type="log"), legend=dict(orientation="h", y=-0.22, x=0)))
    fig.add_scatter(x=list(predicted_sizes), y=error(predicted), mode="lines", name="identification, predicted from pairs",
                    line=dict(color=PALETTE[1], width=3, dash="dash"))
    fig.add_scatter(x=list(sizes), y=error(measured), mode="markers", name="identification, measured (rank 1)",
                    marker=dict(color=PALETTE[0], size=12))
    fig.add_scatter(x=list(predicted_sizes), y=[1 - 1 / g for g in predicted_sizes], mode="lines",
                    name="identification chance", line=dict(color="#777", width=2, dash="dot"))
    for k, (label, accuracy) in enumerate(verification.items()):
        fig.add_hline(y=max(1 - accuracy, 1e-4), line=dict(color=PALETTE[(3 + k) % len(PALETTE)], width=3),
                      annotation=dict(text=f"verification, {label}", font=dict(size=font_size() - 2)),
                      annotation_position="top left" if k == 0 else "bottom left")
    return fig


def plot_dimension_sweep(results: dict[int, Sequence[float]], chance: float, metric: str = "MAP@R"):
    """``metric`` against the embedding size (log axis): mean ± sd over seeds, one dot per seed, and chance.
    results: {dimension: [score of each seed]}."""
    import plotly.graph_objects as go

    dims = sorted(results)
    means = [float(np.mean(results[d])) for d in dims]
    sds = [float(np.std(results[d], ddof=1)) if len(results[d]) > 1 else 0.0 for d in dims]
    fig = go.Figure(layout=plotly_layout(
        title=f"{metric} on the unseen classes against the embedding size", width=820, height=460,
        xaxis=dict(title="embedding dimensions (log scale)", type="log", tickvals=dims),
        yaxis=dict(title=metric, rangemode="tozero"), legend=dict(orientation="h", y=-0.2, x=0)))
    fig.add_scatter(x=dims, y=means, mode="lines+markers", name="mean ± sd over seeds",
                    error_y=dict(type="data", array=sds, thickness=2.5, width=8),
                    line=dict(color=PALETTE[0], width=3.5), marker=dict(size=10))
    fig.add_scatter(x=[d for d in dims for _ in results[d]], y=[v for d in dims for v in results[d]],
                    mode="markers", name="one seed", marker=dict(size=10, color="black", symbol="circle-open"))
    fig.add_hline(y=chance, line=dict(color="#777", dash="dash", width=2.5),
                  annotation=dict(text=f"chance {chance:.3f}", font=dict(size=font_size() - 2)),
                  annotation_position="top left")
    return fig
