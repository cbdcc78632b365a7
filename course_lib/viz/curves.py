"""Training curves and ROC curves, as interactive plotly figures."""
from __future__ import annotations

import numpy as np

from .style import PALETTE, plotly_layout, to_numpy

__all__ = ["smooth", "plot_history", "plot_roc", "plot_metric_comparison", "plot_step_comparison"]


def smooth(values, weight: float = 0.9) -> np.ndarray:
    """Exponential moving average with bias correction (as TensorBoard's smoothing slider)."""
    v = np.asarray(values, dtype=float)
    out, avg = np.empty_like(v), 0.0
    for i, x in enumerate(v):
        avg = weight * avg + (1 - weight) * x
        out[i] = avg / (1 - weight ** (i + 1))
    return out


def _curves(history):
    if not history.steps:
        raise ValueError("the history has no steps yet: train with fit(...) first")
    steps = np.arange(1, len(history.steps) + 1)
    loss = np.array(history.step_values("loss"), dtype=float)
    per_epoch = [k for k in (history.epochs[0] if history.epochs else {}) if k not in ("epoch", "loss", "seconds")]
    ends = np.cumsum([sum(1 for s in history.steps if s["epoch"] == e["epoch"]) for e in history.epochs])
    return steps, loss, per_epoch, ends


def plot_history(history, title: str = "Training"):
    """Loss per step (faint) and smoothed, and each evaluation metric per epoch, side by side."""
    from plotly.subplots import make_subplots

    steps, loss, metrics, ends = _curves(history)
    fig = make_subplots(rows=1, cols=2 if metrics else 1, subplot_titles=["loss", "evaluation"][: 1 + bool(metrics)])
    fig.add_scatter(x=steps, y=loss, mode="lines", name="loss per step", line=dict(color=PALETTE[0], width=1),
                    opacity=0.35, row=1, col=1)
    fig.add_scatter(x=steps, y=smooth(loss), mode="lines", name="loss, smoothed", line=dict(color=PALETTE[0], width=3),
                    row=1, col=1)
    for k, name in enumerate(metrics):
        fig.add_scatter(x=ends, y=history.epoch_values(name), mode="lines+markers", name=name,
                        line=dict(color=PALETTE[(k + 1) % len(PALETTE)], width=3), marker=dict(size=9), row=1, col=2)
    fig.update_xaxes(title_text="step")
    fig.update_layout(**plotly_layout(title=title, height=420, width=1000 if metrics else 620))
    return fig



def plot_roc(fpr, tpr, thresholds=None, chosen: float | None = None, auc: float | None = None,
             title: str = "Verification ROC"):
    """ROC curve; hover shows each threshold; ``chosen`` marks the operating point of one threshold."""
    import plotly.graph_objects as go

    fpr, tpr = to_numpy(fpr), to_numpy(tpr)
    fig = go.Figure(layout=plotly_layout(title=title + (f" (AUC = {auc:.3f})" if auc is not None else ""),
                                         width=600, height=540, xaxis=dict(title="false accept rate", range=[0, 1]),
                                         legend=dict(x=0.98, y=0.02, xanchor="right", yanchor="bottom"),
                                         yaxis=dict(title="true accept rate", range=[0, 1.02])))
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line=dict(color="#999", dash="dash"))
    extra = dict(customdata=to_numpy(thresholds), hovertemplate="threshold %{customdata:.3f}<br>FAR %{x:.3f}, TAR %{y:.3f}"
                 "<extra></extra>") if thresholds is not None else {}
    fig.add_scatter(x=fpr, y=tpr, mode="lines", name="model", line=dict(color=PALETTE[0], width=3), **extra)
    if chosen is not None and thresholds is not None:
        i = max(int(np.searchsorted(to_numpy(thresholds), chosen, side="right")) - 1, 0)
        fig.add_scatter(x=[fpr[i]], y=[tpr[i]], mode="markers", name=f"threshold {chosen:.3f}",
                        marker=dict(size=16, color=PALETTE[3], symbol="star"))
    return fig


def plot_metric_comparison(histories: dict, metric: str, title: str | None = None):
    """One line per training run: ``metric`` after every epoch. histories: {name: History}."""
    import plotly.graph_objects as go

    if not histories:
        raise ValueError("give at least one {name: history}")
    fig = go.Figure(layout=plotly_layout(title=title or metric, width=760, height=440,
                                         xaxis=dict(title="epoch", dtick=1), yaxis=dict(title=metric)))
    for k, (name, h) in enumerate(histories.items()):
        values = h.epoch_values(metric)
        if not values:
            raise ValueError(f"run {name!r} has no per-epoch {metric!r}: pass evaluate=... to fit")
        fig.add_scatter(x=[e["epoch"] for e in h.epochs if metric in e], y=values, mode="lines+markers", name=name,
                        line=dict(width=3, color=PALETTE[k % len(PALETTE)]), marker=dict(size=9))
    return fig


def plot_step_comparison(histories: dict, name: str, title: str | None = None, weight: float = 0.9,
                         log_y: bool = False):
    """One smoothed line per run of a per-step value (loss, share of active triplets, ...)."""
    import plotly.graph_objects as go

    fig = go.Figure(layout=plotly_layout(title=title or name, width=760, height=440, xaxis=dict(title="step"),
                                         yaxis=dict(title=name, type="log" if log_y else "linear")))
    for k, (run, h) in enumerate(histories.items()):
        values = h.step_values(name)
        if not values:
            raise ValueError(f"run {run!r} recorded no per-step {name!r}: return it from the step function")
        fig.add_scatter(x=list(range(1, len(values) + 1)), y=smooth(values, weight), mode="lines", name=run,
                        line=dict(width=3, color=PALETTE[k % len(PALETTE)]))
    return fig


