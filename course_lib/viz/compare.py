"""Comparing methods honestly: mean ± sd over seeds, every seed as a dot, chance level as a line."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .style import PALETTE, font_size, plotly_layout

__all__ = ["plot_comparison"]


def _summary(results: dict[str, Sequence[float]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    if not results:
        raise ValueError("give at least one {method: [score per seed]}")
    names = list(results)
    values = [np.asarray(results[n], dtype=float) for n in names]
    if any(v.ndim != 1 or len(v) == 0 for v in values):
        raise ValueError("each method needs a list of scores, one per seed")
    means = np.array([v.mean() for v in values])
    sds = np.array([v.std(ddof=1) if len(v) > 1 else 0.0 for v in values])
    return names, means, sds


def plot_comparison(results: dict[str, Sequence[float]], metric: str, chance: float | None = None,
                    baseline: tuple[str, float] | None = None, title: str | None = None,
                    zoom: float | None = None, fmt: str = "{:.3f}"):
    """Bars of the mean over seeds with ±1 sd error bars and one dot per seed.

    results: {method: [score of seed 0, seed 1, ...]}; chance: the score of a random ranking;
    baseline: an extra reference line, e.g. ("untrained", 0.11).
    zoom: show the y-axis from 0 to ``zoom`` times the highest bar or dot; a chance or baseline line above
    that is not drawn but written as a note ("chance 90 %, off scale"), so that small bars stay readable.
    fmt: how the lines' labels write their value, e.g. ``"{:.0f} %"``.
    """
    import plotly.graph_objects as go

    names, means, sds = _summary(results)
    n_seeds = max(len(v) for v in results.values())
    fig = go.Figure(layout=plotly_layout(
        title=title or f"{metric}: mean ± sd over {n_seeds} seeds", width=820, height=460,
        yaxis=dict(title=metric, rangemode="tozero"), showlegend=True,
        legend=dict(orientation="h", y=-0.18, x=0)))
    fig.add_bar(x=names, y=means, error_y=dict(type="data", array=sds, thickness=2.5, width=10),
                marker_color=[PALETTE[k % len(PALETTE)] for k in range(len(names))], opacity=0.75,
                name="mean ± sd", hovertemplate="%{x}: %{y:.3f}<extra></extra>")
    xs = [n for n in names for _ in results[n]]
    fig.add_scatter(x=xs, y=[v for n in names for v in results[n]], mode="markers", name="one seed",
                    marker=dict(size=11, color="black", symbol="circle-open", line=dict(width=2)))
    top = zoom * max(max(means + sds), max(max(v) for v in results.values())) if zoom else None
    off_scale = []
    for value, label, dash, colour in ((chance, "chance", "dash", "#777"),
                                       (baseline[1] if baseline else None, baseline[0] if baseline else "", "dot", PALETTE[3])):
        if value is not None and top is not None and value > top:
            off_scale.append(f"{label} {fmt.format(value)}, off scale")
        elif value is not None:
            fig.add_hline(y=value, line=dict(color=colour, dash=dash, width=2.5),
                          annotation=dict(text=f"{label} {fmt.format(value)}", font=dict(size=font_size() - 2)),
                          annotation_position="top left")
    if top is not None:
        fig.update_yaxes(range=[0, top])
    if off_scale:
        fig.add_annotation(text="; ".join(off_scale), xref="paper", yref="paper", x=0, y=1, xanchor="left",
                           yanchor="top", showarrow=False, font=dict(size=font_size() - 2, color="#555"))
    return fig


