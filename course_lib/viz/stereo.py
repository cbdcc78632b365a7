"""See stereo pairs, matching costs and disparity maps (lesson 09).

* ``show_stereo_pairs``: left and right views, the true disparity and the masks (occluded, textureless).
* ``show_patch_triples``: MC-CNN's training triples, left patch, positive and negative.
* ``cost_explorer``: pick a pixel of the left view (click, or the row and column sliders) and see its cost curve
  over the disparities for every cost, with each cost's winner-takes-all match and the true one marked in the
  right view. Twin: ``plot_cost_curves_static``.
* ``plot_disparity_maps``: disparity maps side by side, with their error rates in the titles.

Convention (``course_lib.stereo``): left (y, x) at disparity d matches right (y, x - d); costs are (B, D, H, W),
lower is better, +inf where x < d.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import Tensor

from ..stereo.costs import error_rate
from .style import PALETTE, font_size, image2d, plotly_layout

__all__ = ["show_stereo_pairs", "show_patch_triples", "cost_explorer", "cost_curves", "plot_cost_curves_static",
           "plot_disparity_maps"]

TRUE_COLOR = "#000000"      # the true disparity in the cost plot
RING_COLOR = "#F0E442"      # the true match in the right view: yellow reads on dark and mid grey
PIXEL_COLOR = "#FFFFFF"     # the chosen left pixel: white with a black edge, a colour no cost uses
MASK_COLORS = {"occluded": (0.0, 0.45, 0.70), "textureless": (0.90, 0.62, 0.0)}   # blue, orange: apart on a projector


def show_stereo_pairs(left: Tensor, right: Tensor, disparity: Tensor, occluded: Tensor | None = None,
                      textureless: Tensor | None = None, n: int = 3, max_disparity: int | None = None):
    """One row per pair (the first ``n``): left view, right view (both on one grey scale), true disparity, and the
    masks (occluded blue, textureless orange, with a legend) over the left view."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    n = min(n, len(left))
    fig, axes = plt.subplots(n, 4, figsize=(13, 2.6 * n), squeeze=False)
    vmax = max_disparity - 1 if max_disparity else float(disparity[:n].max())
    for i in range(n):
        lo, hi = float(min(left[i].min(), right[i].min())), float(max(left[i].max(), right[i].max()))
        axes[i, 0].imshow(image2d(left[i]), cmap="gray", vmin=lo, vmax=hi)
        axes[i, 1].imshow(image2d(right[i]), cmap="gray", vmin=lo, vmax=hi)
        im = axes[i, 2].imshow(disparity[i].cpu().numpy(), cmap="viridis", vmin=0, vmax=vmax)
        fig.colorbar(im, ax=axes[i, 2], fraction=0.035)
        overlay = np.zeros((*disparity[i].shape, 4))
        for mask, colour in ((textureless, MASK_COLORS["textureless"]), (occluded, MASK_COLORS["occluded"])):
            if mask is not None:
                overlay[mask[i].cpu().numpy()] = (*colour, 0.75)
        axes[i, 3].imshow(image2d(left[i]), cmap="gray", vmin=lo, vmax=hi)
        axes[i, 3].imshow(overlay)
    for ax, title in zip(axes[0], ("left view", "right view (gain, bias)", "true disparity (px)")):
        ax.set_title(title, fontsize=font_size() - 4)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    handles = [Patch(color=(*c, 0.75), label=name) for name, c in MASK_COLORS.items()]
    axes[0, 3].legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False,
                      fontsize=font_size() - 5, handlelength=1.2, columnspacing=0.8, borderaxespad=0.2)
    return fig


def show_patch_triples(left: Tensor, pos: Tensor, neg: Tensor, n: int = 8):
    """MC-CNN's training triples (N, 1, P, P) each: one column per triple, rows left patch, positive, negative, on
    one grey scale per column (so that a gain or a bias between the views shows)."""
    import matplotlib.pyplot as plt

    n = min(n, len(left))
    fig, axes = plt.subplots(3, n, figsize=(1.4 * n, 4.6), squeeze=False)
    for row, (name, patches) in enumerate((("left", left), ("positive", pos), ("negative", neg))):
        for j in range(n):
            lo, hi = (float(f(torch.stack([left[j], pos[j], neg[j]]))) for f in (torch.min, torch.max))
            axes[row, j].imshow(image2d(patches[j]), cmap="gray", vmin=lo, vmax=hi)     # one grey scale per triple
            axes[row, j].set_xticks([])
            axes[row, j].set_yticks([])
        axes[row, 0].set_ylabel(name, fontsize=font_size() - 4)
    fig.tight_layout()
    return fig


def cost_curves(costs: Mapping[str, Tensor], pair: int, y: int, x: int) -> dict[str, np.ndarray]:
    """Each cost's curve over the disparities at left pixel (y, x) of pair ``pair``, rescaled to [0, 1] over its
    finite values (the costs have different units: SAD in grey levels, census in bits, 1 - NCC, -cosine);
    +inf (x < d) becomes NaN, a gap in the plot."""
    out = {}
    for name, volume in costs.items():
        c = volume[pair, :, y, x].detach().double().cpu().numpy()
        finite = np.isfinite(c)
        c = np.where(finite, c, np.nan)
        lo, hi = np.nanmin(c), np.nanmax(c)
        out[name] = (c - lo) / (hi - lo) if hi > lo else np.zeros_like(c)
    return out


def _winner(curve: np.ndarray) -> int:
    return int(np.nanargmin(curve)) if np.isfinite(curve).any() else 0


def cost_explorer(left: Tensor, right: Tensor, costs: Mapping[str, Tensor], disparity: Tensor | None = None,
                  pair: int = 0, pixel: tuple[int, int] | None = None):
    """Pick a left pixel and see how every cost in ``costs`` ({name: (B, D, H, W) volume}) ranks the disparities.

    Controls: the pair, the row y and the column x of the pixel (or click the left view). Left: the pixel (a
    cross). Right view: each cost's winner-takes-all match (y, x - d) as a coloured marker, the true match as a
    yellow ring. Below: the cost curves over d (each rescaled to [0, 1]: only their shapes and minima compare),
    the true disparity as a dashed line. The readout lists each cost's choice and whether it is within 1 px.
    """
    import ipywidgets as W
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    left, right = left.detach().float().cpu(), right.detach().float().cpu()
    costs = {k: v.detach().float().cpu() for k, v in costs.items()}
    b, _, h, w = left.shape
    d_count = next(iter(costs.values())).shape[1]
    y0, x0 = pixel if pixel is not None else (h // 2, w // 2)
    style, wide = {"description_width": "90px"}, W.Layout(width="420px")
    pick = W.IntSlider(value=pair, min=0, max=b - 1, description="pair", style=style, layout=wide)
    row = W.IntSlider(value=y0, min=0, max=h - 1, description="row y", style=style, layout=wide)
    col = W.IntSlider(value=x0, min=0, max=w - 1, description="column x", style=style, layout=wide)
    readout = W.HTML(layout=W.Layout(width="420px"))

    base = make_subplots(rows=2, cols=2, specs=[[{}, {}], [{"colspan": 2}, None]], row_heights=[0.5, 0.5],
                         vertical_spacing=0.14, horizontal_spacing=0.06,
                         subplot_titles=("left view: click a pixel", "right view: the matches",
                                         "cost over disparity (each rescaled to [0, 1])"))
    fig = go.FigureWidget(base)
    grey = dict(colorscale=[[0, "black"], [1, "white"]], showscale=False, zmin=float(torch.min(left.min(), right.min())),
                zmax=float(torch.max(left.max(), right.max())))            # one grey scale: the gain and bias show
    fig.add_heatmap(z=image2d(left[pair]), **grey, row=1, col=1, hovertemplate="y %{y}, x %{x}<extra></extra>")
    fig.add_heatmap(z=image2d(right[pair]), **grey, row=1, col=2, hoverinfo="skip")
    fig.add_scatter(x=[x0], y=[y0], mode="markers", marker=dict(symbol="x", size=16, color=PIXEL_COLOR,
                                                                   line=dict(width=1.5, color=TRUE_COLOR)),
                    name="pixel", showlegend=False, row=1, col=1)
    fig.add_scatter(x=[], y=[], mode="markers", marker=dict(symbol="circle-open", size=22, color=RING_COLOR,
                    line=dict(width=4)), name="true match", row=1, col=2)
    names = list(costs)
    for k, name in enumerate(names):
        colour = PALETTE[k % len(PALETTE)]
        fig.add_scatter(x=[], y=[], mode="markers", marker=dict(size=11, color=colour, symbol="diamond"),
                        name=name, legendgroup=name, showlegend=False, row=1, col=2)
        fig.add_scatter(x=list(range(d_count)), y=[], mode="lines+markers", name=name, legendgroup=name,
                        line=dict(color=colour, width=3), marker=dict(size=7), row=2, col=1,
                        hovertemplate=f"{name}: d %{{x}}, cost %{{y:.2f}}<extra></extra>")
    for c in (1, 2):
        fig.update_xaxes(range=[-0.5, w - 0.5], showgrid=False, row=1, col=c)
        fig.update_yaxes(range=[h - 0.5, -0.5], showgrid=False, scaleanchor="x" if c == 1 else "x2", row=1, col=c)
    fig.update_xaxes(title="disparity d (px)", dtick=2, row=2, col=1)
    fig.update_yaxes(title="cost", range=[-0.05, 1.05], row=2, col=1)
    fig.update_layout(**plotly_layout(width=820, height=720, margin=dict(l=60, r=20, t=60, b=60),
                                      legend=dict(orientation="h", y=-0.12, x=0, font=dict(size=font_size() - 2))))

    def update(_=None):
        i, y, x = pick.value, row.value, col.value
        curves = cost_curves(costs, i, y, x)
        true = float(disparity[i, y, x]) if disparity is not None else None
        lines = [f"<b>pair {i}, pixel (y {y}, x {x})</b>" + (f": true d = {true:g}" if true is not None else "")]
        with fig.batch_update():
            fig.data[0].z, fig.data[1].z = image2d(left[i]), image2d(right[i])
            fig.data[2].x, fig.data[2].y = [x], [y]
            fig.data[3].x, fig.data[3].y = ([x - true], [y]) if true is not None else ([], [])
            for k, name in enumerate(names):
                d = _winner(curves[name])
                fig.data[4 + 2 * k].x, fig.data[4 + 2 * k].y = [x - d], [y]
                fig.data[5 + 2 * k].y = curves[name]
                ok = "" if true is None else (" ✓" if abs(d - true) <= 1 else " ✗")
                lines.append(f"<span style='color:{PALETTE[k % len(PALETTE)]}'><b>{name}</b></span>: d = {d}{ok}")
            fig.layout.shapes = [] if true is None else [dict(type="line", x0=true, x1=true, y0=0, y1=1,
                                                              xref="x3", yref="y3 domain",
                                                              line=dict(color=TRUE_COLOR, dash="dash", width=2))]
        readout.value = f"<div style='font-size:{font_size() - 1}px; line-height:1.5'>{'<br>'.join(lines)}</div>"

    def on_click(trace, points, selector):
        if points.xs:
            row.value, col.value = int(round(points.ys[0])), int(round(points.xs[0]))

    fig.data[0].on_click(on_click)
    for control in (pick, row, col):
        control.observe(update, names="value")
    update()
    return W.HBox([W.VBox([pick, row, col, readout]), fig])


def plot_cost_curves_static(left: Tensor, right: Tensor, costs: Mapping[str, Tensor], disparity: Tensor | None,
                            pair: int, pixel: tuple[int, int]):
    """Matplotlib twin of :func:`cost_explorer` for one pair and pixel (y, x): the two views (on one grey scale, so
    that the gain and bias show) with the pixel, each cost's match and the true match, and the rescaled cost
    curves. Colours follow the order of ``costs``, as in the explorer."""
    import matplotlib.pyplot as plt

    y, x = pixel
    curves = cost_curves(costs, pair, y, x)
    true = float(disparity[pair, y, x]) if disparity is not None else None
    fig = plt.figure(figsize=(12, 7))
    ax_l, ax_r, ax_c = fig.add_subplot(2, 2, 1), fig.add_subplot(2, 2, 2), fig.add_subplot(2, 1, 2)
    lo = float(min(left[pair].min(), right[pair].min()))
    hi = float(max(left[pair].max(), right[pair].max()))
    ax_l.imshow(image2d(left[pair]), cmap="gray", vmin=lo, vmax=hi)
    ax_l.plot([x], [y], "x", color=TRUE_COLOR, ms=16, mew=5)
    ax_l.plot([x], [y], "x", color=PIXEL_COLOR, ms=14, mew=2.5)
    ax_r.imshow(image2d(right[pair]), cmap="gray", vmin=lo, vmax=hi)
    if true is not None:
        ax_r.plot([x - true], [y], "o", mfc="none", mec=TRUE_COLOR, ms=18, mew=5)
        ax_r.plot([x - true], [y], "o", mfc="none", mec=RING_COLOR, ms=18, mew=2.5, label="true match")
        ax_c.axvline(true, color=TRUE_COLOR, ls="--", lw=2, label=f"true d = {true:g}")
    for k, (name, curve) in enumerate(curves.items()):
        d = _winner(curve)
        colour = PALETTE[k % len(PALETTE)]
        ax_r.plot([x - d], [y], "D", color=colour, ms=9)
        ax_c.plot(np.arange(len(curve)), curve, "-o", color=colour, lw=2.5, ms=5, label=f"{name} (picks d = {d})")
    ax_l.set_title(f"left view, pair {pair}: pixel (y {y}, x {x})", fontsize=font_size() - 4)
    ax_r.set_title("right view: each cost's match, true match (yellow ring)", fontsize=font_size() - 4)
    for ax in (ax_l, ax_r):
        ax.set_xticks([])
        ax.set_yticks([])
    ax_c.set(xlabel="disparity d (px)", ylabel="cost, rescaled to [0, 1]")
    ax_c.legend(fontsize=font_size() - 5, ncol=2)
    fig.tight_layout()
    return fig


def plot_disparity_maps(maps: Mapping[str, Tensor], true: Tensor, pair: int = 0, mask: Tensor | None = None,
                        max_disparity: int | None = None):
    """Disparity maps (B, H, W) side by side for one pair, the truth first; each title gives the map's error
    rate (> 1 px) on that pair, on the pixels of ``mask`` (B, H, W) bool if given."""
    import matplotlib.pyplot as plt

    items = [("truth", true)] + list(maps.items())
    cols = min(len(items), 4)
    rows = -(-len(items) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    vmax = max_disparity - 1 if max_disparity else float(true[pair].max())
    for ax, (name, m) in zip(axes.flat, items):
        im = ax.imshow(m[pair].float().cpu().numpy(), cmap="viridis", vmin=0, vmax=vmax)
        title = name
        if name != "truth":
            sub = None if mask is None else mask[pair:pair + 1]
            title += f": {float(error_rate(m[pair:pair + 1], true[pair:pair + 1], sub)):.2f} wrong"
        ax.set_title(title, fontsize=font_size() - 4)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.flat[len(items):]:
        ax.axis("off")
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    fig.colorbar(im, cax=fig.add_axes((0.94, 0.15, 0.012, 0.7)), label="disparity (px)")
    return fig
