"""Loss functions drawn as curves of the distance d, with an interactive margin."""
from __future__ import annotations

import numpy as np
import torch

from ..similarity.losses import contrastive_loss, triplet_loss
from .style import PALETTE, font_size, plotly_layout

__all__ = ["contrastive_curves", "contrastive_loss_explorer", "loss_landscapes",
           "triplet_margin_explorer"]


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
        note.value = (f"<span style='font-size:{font_size()}px'>Negative pairs farther apart than m = {m:.2f} "
                      "cost nothing: the loss stops pushing them.</span>")

    slider.observe(update, names="value")
    update()
    return W.VBox([slider, fig, note])


def loss_landscapes(margin: float, d_max: float = 2.0, n: int = 81) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Loss of one (anchor, positive, negative) over a grid of d(a, p) (columns) and d(a, n) (rows):
    contrastive (the pair (a, p) plus the pair (a, n)) and triplet. -> d, contrastive (n, n), triplet (n, n)."""
    d = torch.linspace(0, d_max, n, dtype=torch.float64)
    d_ap, d_an = d[None, :].expand(n, n).reshape(-1), d[:, None].expand(n, n).reshape(-1)
    zero = torch.zeros(n * n, 1, dtype=torch.float64)
    positive, negative = d_ap[:, None], -d_an[:, None]                   # 1-D points at those distances from 0
    pos = contrastive_loss(zero, positive, torch.ones(n * n, dtype=torch.bool), margin, reduction="none")
    neg = contrastive_loss(zero, negative, torch.zeros(n * n, dtype=torch.bool), margin, reduction="none")
    trip = triplet_loss(zero, positive, negative, margin, reduction="none")
    return d.numpy(), (pos + neg).reshape(n, n).numpy(), trip.reshape(n, n).numpy()


def _zero_edge_contrastive(margin: float, d_max: float) -> tuple[list, list]:
    """Contrastive loss is zero only where d(a, p) = 0 and d(a, n) >= m: a segment of the left edge."""
    return [0.0, 0.0], [min(margin, d_max), d_max]


def _zero_edge_triplet(margin: float, d_max: float) -> tuple[list, list]:
    """Triplet loss is zero above the line d(a, n) = d(a, p) + m."""
    return [0.0, max(d_max - margin, 0.0)], [min(margin, d_max), d_max]


def triplet_margin_explorer(margin: float = 0.5, d_max: float = 2.0):
    """Contrastive and triplet loss of one triplet over (d(a, p), d(a, n)), with a margin slider.

    Contrastive is zero only in one corner (positive at distance 0, negative beyond m); triplet is zero
    on a whole half-plane: any d(a, n) >= d(a, p) + m will do. That is "only asks for a ranking".
    """
    import ipywidgets as W
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    d, con, tri = loss_landscapes(margin, d_max)
    fig = go.FigureWidget(make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                                        subplot_titles=("contrastive: both pairs", "triplet: the ranking")))
    for col, z in ((1, con), (2, tri)):
        fig.add_heatmap(x=d, y=d, z=z, zmin=0, zmax=2.0, colorscale="Viridis", row=1, col=col,
                        showscale=col == 2, colorbar=dict(title="loss"),
                        hovertemplate="d(a,p) %{x:.2f}<br>d(a,n) %{y:.2f}<br>loss %{z:.3f}<extra></extra>")
    for col, (x, y) in ((1, _zero_edge_contrastive(margin, d_max)), (2, _zero_edge_triplet(margin, d_max))):
        fig.add_scatter(x=x, y=y, mode="lines", line=dict(color=PALETTE[1], width=6), hoverinfo="skip",
                        showlegend=False, cliponaxis=False, row=1, col=col)
    fig.update_xaxes(title_text="d(anchor, positive)")
    fig.update_yaxes(title_text="d(anchor, negative)")
    fig.update_layout(**plotly_layout(width=980, height=460, title="Where is the loss zero? (orange line: its edge)"))
    slider = W.FloatSlider(value=margin, min=0.1, max=1.5, step=0.05, description="margin m",
                           style={"description_width": "80px"}, layout=W.Layout(width="480px"))

    def update(_=None):
        _, c, t = loss_landscapes(slider.value, d_max)
        with fig.batch_update():
            fig.data[0].z, fig.data[1].z = c, t
            (fig.data[2].x, fig.data[2].y), (fig.data[3].x, fig.data[3].y) = (
                _zero_edge_contrastive(slider.value, d_max), _zero_edge_triplet(slider.value, d_max))

    slider.observe(update, names="value")
    return W.VBox([slider, fig])


