"""Loss functions drawn as curves of the distance d, with an interactive margin."""
from __future__ import annotations

import numpy as np
import torch

from ..losses import contrastive_loss
from .style import FONT_SIZE, PALETTE, plotly_layout

__all__ = ["contrastive_curves", "contrastive_loss_explorer", "plot_contrastive_loss_static"]


def contrastive_curves(margin: float, d_max: float = 2.5, n: int = 201) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """d and the loss of a positive and of a negative pair at distance d, computed by ``contrastive_loss``."""
    d = torch.linspace(0, d_max, n, dtype=torch.float64)
    origin, points = torch.zeros(n, 1, dtype=torch.float64), d[:, None]  # n pairs, pair i at distance d[i]
    pos = contrastive_loss(origin, points, torch.ones(n, dtype=torch.bool), margin, reduction="none")
    neg = contrastive_loss(origin, points, torch.zeros(n, dtype=torch.bool), margin, reduction="none")
    return d.numpy(), pos.numpy(), neg.numpy()


def contrastive_loss_explorer(margin: float = 1.0, d_max: float = 2.5):
    """Both halves of the contrastive loss against d, with a margin slider."""
    import ipywidgets as W
    import plotly.graph_objects as go

    d, pos, neg = contrastive_curves(margin, d_max)
    fig = go.FigureWidget(layout=plotly_layout(
        title="Contrastive loss of one pair", width=760, height=460,
        xaxis=dict(title="distance d = ||f(A) − f(B)||", range=[0, d_max]), yaxis=dict(title="loss", range=[0, 1.6])))
    fig.add_scatter(x=d, y=pos, name="same class: ½ d²", line=dict(color=PALETTE[0], width=4))
    fig.add_scatter(x=d, y=neg, name="different class: ½ max(0, m − d)²", line=dict(color=PALETTE[3], width=4))
    fig.add_vline(x=margin, line=dict(color="#666", dash="dot"))
    slider = W.FloatSlider(value=margin, min=0.25, max=2.0, step=0.05, description="margin m",
                           style={"description_width": "80px"}, layout=W.Layout(width="480px"))
    note = W.HTML()

    def update(_=None):
        m = slider.value
        _, _, neg_m = contrastive_curves(m, d_max)
        with fig.batch_update():
            fig.data[1].y = neg_m
            fig.layout.shapes[0].x0 = fig.layout.shapes[0].x1 = m
        note.value = (f"<span style='font-size:{FONT_SIZE}px'>Negative pairs farther apart than m = {m:.2f} "
                      "cost nothing: the loss stops pushing them.</span>")

    slider.observe(update, names="value")
    update()
    return W.VBox([slider, fig, note])


def plot_contrastive_loss_static(margins=(0.5, 1.0, 2.0), d_max: float = 2.5):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    d, pos, _ = contrastive_curves(margins[0], d_max)
    ax.plot(d, pos, lw=3, color=PALETTE[0], label="same class: ½ d²")
    for k, m in enumerate(margins):
        _, _, neg = contrastive_curves(m, d_max)
        ax.plot(d, neg, lw=3, color=PALETTE[3], alpha=0.4 + 0.6 * (k + 1) / len(margins),
                label=f"different class, m = {m}")
    ax.set(xlabel="distance d", ylabel="loss", ylim=(0, 1.6), title="Contrastive loss of one pair")
    ax.legend(fontsize=FONT_SIZE - 4)
    fig.tight_layout()
    return fig
