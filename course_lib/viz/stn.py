"""See a sampling grid: where each output pixel of ``grid_sample`` reads the input.

The views use ``course_lib.stn.geometry`` (``affine_grid`` + ``grid_sample``), the calls an STN makes.
Left: the input with the grid drawn over it (every few grid lines, the border in orange, the output's
top-left corner as a dot). Right: the output, the input read at those points.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..stn.geometry import affine_theta, pixels_to_normalized, sampling_points, warp
from .style import PALETTE, font_size, plotly_layout

__all__ = ["grid_lines", "sampling_grid_explorer", "plot_sampling_grid_static", "stn_browser",
           "plot_stn_examples_static"]


def grid_lines(theta: Tensor, size: tuple[int, int], every: int = 4, align_corners: bool = False
               ) -> tuple[list[np.ndarray], np.ndarray, tuple[float, float]]:
    """Polylines of one grid (theta (1, 2, 3)) in input pixel coordinates, for drawing.

    Returns (lines, border, corner): every ``every``-th row and column of sampling points as (n, 2)
    arrays of (x, y), the closed outline of the grid (5, 2), and the point read by the output's
    top-left pixel.
    """
    pts = sampling_points(theta[:1], size, align_corners)[0].detach().cpu().numpy()       # (H, W, 2)
    h, w = size
    rows = [pts[r] for r in range(0, h, every)] + [pts[h - 1]]
    cols = [pts[:, c] for c in range(0, w, every)] + [pts[:, w - 1]]
    border = np.stack([pts[0, 0], pts[0, w - 1], pts[h - 1, w - 1], pts[h - 1, 0], pts[0, 0]])
    return rows + cols, border, (float(pts[0, 0, 0]), float(pts[0, 0, 1]))


def _as_image(image: Tensor) -> Tensor:
    image = torch.as_tensor(image, dtype=torch.float32).detach().cpu()
    if image.dim() == 2:
        image = image[None]
    if image.dim() != 3 or image.shape[0] != 1:
        raise ValueError(f"image must be (H, W) or (1, H, W), got shape {tuple(image.shape)}")
    return image


def _grid_traces(fig, image: Tensor, theta: Tensor, out: Tensor, align_corners: bool) -> None:
    """Add: input heatmap, output heatmap, grid lines, border, corner (in that order) to a 1 x 2 figure."""
    h, w = image.shape[-2:]
    gray = [[0, "black"], [1, "white"]]
    fig.add_heatmap(z=image[0].numpy(), colorscale=gray, zmin=0, zmax=1, showscale=False, row=1, col=1,
                    hovertemplate="input x %{x}, y %{y}: %{z:.2f}<extra></extra>")
    fig.add_heatmap(z=out[0].numpy(), colorscale=gray, zmin=0, zmax=1, showscale=False, row=1, col=2,
                    hovertemplate="output x %{x}, y %{y}: %{z:.2f}<extra></extra>")
    xs, ys, border, corner = _line_xy(theta, (h, w), align_corners)
    fig.add_scatter(x=xs, y=ys, mode="lines", line=dict(color=PALETTE[0], width=2), hoverinfo="skip",
                    showlegend=False, row=1, col=1)
    fig.add_scatter(x=border[:, 0], y=border[:, 1], mode="lines", line=dict(color=PALETTE[1], width=4),
                    hoverinfo="skip", showlegend=False, row=1, col=1)
    fig.add_scatter(x=[corner[0]], y=[corner[1]], mode="markers", marker=dict(color=PALETTE[1], size=14),
                    hovertemplate="output pixel (0, 0) reads here<extra></extra>", showlegend=False, row=1, col=1)
    for col, (n, pad) in ((1, ((h, w), 0.2)), (2, (out.shape[-2:], 0.0))):   # room for a grid that reads outside
        fig.update_xaxes(range=[-0.5 - pad * n[1], n[1] - 0.5 + pad * n[1]], constrain="domain", showgrid=False,
                         row=1, col=col)
        fig.update_yaxes(range=[n[0] - 0.5 + pad * n[0], -0.5 - pad * n[0]], scaleanchor=f"x{'' if col == 1 else 2}",
                         showgrid=False, row=1, col=col)


def _move_grid(fig, theta: Tensor, size: tuple[int, int], align_corners: bool) -> None:
    """Redraw traces 2-4 (grid lines, border, corner) of a figure made by _grid_traces for a new theta."""
    xs, ys, border, corner = _line_xy(theta, size, align_corners)
    fig.data[2].x, fig.data[2].y = xs, ys
    fig.data[3].x, fig.data[3].y = border[:, 0], border[:, 1]
    fig.data[4].x, fig.data[4].y = [corner[0]], [corner[1]]


def _line_xy(theta: Tensor, size: tuple[int, int], align_corners: bool):
    lines, border, corner = grid_lines(theta, size, align_corners=align_corners)
    xs, ys = [], []
    for line in lines:                                    # one trace: polylines separated by None
        xs += [*line[:, 0].tolist(), None]
        ys += [*line[:, 1].tolist(), None]
    return xs, ys, border, corner


def _theta_text(theta: Tensor) -> str:
    t = theta[0].tolist()
    return ("θ = [[{:+.3f}, {:+.3f}, {:+.3f}], [{:+.3f}, {:+.3f}, {:+.3f}]]".format(*t[0], *t[1]))


def sampling_grid_explorer(image: Tensor, angle: float = 0.0, scale: float = 1.0, shift_x: float = 0.0,
                           shift_y: float = 0.0, shear: float = 0.0, align_corners: bool = False):
    """Sliders for rotation (degrees), scale, shift (in *pixels*) and shear of the sampling grid, drawn over
    ``image`` (H, W) or (1, H, W) in [0, 1], with the resampled output next to it, updated live.

    The shift is converted to normalized units with ``pixels_to_normalized`` and the current theta is
    printed under the figure, so "shift by one pixel" and "by half a pixel" can be tried and read off.
    """
    import ipywidgets as W
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    image = _as_image(image)
    h, w = image.shape[-2:]
    style, layout = {"description_width": "110px"}, W.Layout(width="420px")
    sliders = {
        "angle": W.FloatSlider(value=angle, min=-180, max=180, step=5, description="angle (°)", style=style,
                               layout=layout),
        "scale": W.FloatSlider(value=scale, min=0.3, max=2.0, step=0.05, description="scale", style=style,
                               layout=layout),
        "shift_x": W.FloatSlider(value=shift_x, min=-w / 2, max=w / 2, step=0.5, description="shift x (px)",
                                 style=style, layout=layout),
        "shift_y": W.FloatSlider(value=shift_y, min=-h / 2, max=h / 2, step=0.5, description="shift y (px)",
                                 style=style, layout=layout),
        "shear": W.FloatSlider(value=shear, min=-1, max=1, step=0.05, description="shear", style=style,
                               layout=layout),
    }
    corners = W.Checkbox(value=align_corners, description="align_corners")
    readout = W.HTML()

    def current() -> tuple[Tensor, Tensor]:
        v = {k: s.value for k, s in sliders.items()}
        theta = affine_theta(v["angle"], v["scale"], pixels_to_normalized(v["shift_x"], w, corners.value),
                             pixels_to_normalized(v["shift_y"], h, corners.value), v["shear"])
        return theta, warp(image[None], theta, align_corners=corners.value)[0]

    theta, out = current()
    fig = go.FigureWidget(make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                                        subplot_titles=("input and sampling grid", "output = input read on the grid")))
    _grid_traces(fig, image, theta, out, corners.value)
    fig.update_layout(**plotly_layout(width=900, height=470, margin=dict(l=30, r=30, t=60, b=30)))

    def update(_=None):
        theta, out = current()
        with fig.batch_update():
            fig.data[1].z = out[0].numpy()
            _move_grid(fig, theta, (h, w), corners.value)
        readout.value = f"<span style='font-size:{font_size()}px; font-family:monospace'>{_theta_text(theta)}</span>"

    for s in (*sliders.values(), corners):
        s.observe(update, names="value")
    update()
    return W.HBox([W.VBox([*sliders.values(), corners, readout]), fig])


def plot_sampling_grid_static(image: Tensor, theta: Tensor, align_corners: bool = False, title: str | None = None):
    """Matplotlib twin of :func:`sampling_grid_explorer` for one theta (1, 2, 3)."""
    import matplotlib.pyplot as plt

    image = _as_image(image)
    out = warp(image[None], theta[:1].float(), align_corners=align_corners)[0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    _draw_pair(axes, image, theta[:1], out, align_corners)
    axes[0].set_title("input and sampling grid")
    axes[1].set_title("output = input read on the grid")
    fig.suptitle(title or _theta_text(theta[:1]), fontsize=12)
    fig.tight_layout()
    return fig


def _draw_pair(axes, image: Tensor, theta: Tensor, out: Tensor, align_corners: bool = False, every: int = 4) -> None:
    h, w = image.shape[-2:]
    lines, border, corner = grid_lines(theta, (h, w), every=every, align_corners=align_corners)
    axes[0].imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=1)
    for line in lines:
        axes[0].plot(line[:, 0], line[:, 1], color=PALETTE[0], lw=1)
    axes[0].plot(border[:, 0], border[:, 1], color=PALETTE[1], lw=2.5)
    axes[0].plot(*corner, "o", color=PALETTE[1], ms=7)
    axes[0].set(xlim=(-0.5 - 0.2 * w, w - 0.5 + 0.2 * w), ylim=(h - 0.5 + 0.2 * h, -0.5 - 0.2 * h))
    axes[1].imshow(out[0].detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])


def stn_browser(images: Tensor, thetas: Tensor, titles: Sequence[str] | None = None):
    """Browse what an STN did: a slider over test images (N, 1, H, W); each shows the image with the STN's
    predicted grid (thetas (N, 2, 3)) and the STN's output next to it."""
    import ipywidgets as W
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    images, thetas = images.detach().float().cpu(), thetas.detach().float().cpu()
    if len(images) != len(thetas):
        raise ValueError(f"one theta per image: got {len(thetas)} thetas for {len(images)} images")
    titles = list(titles) if titles is not None else [f"image {i}" for i in range(len(images))]
    h, w = images.shape[-2:]
    outputs = warp(images, thetas)
    fig = go.FigureWidget(make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                                        subplot_titles=("test image and the STN's grid", "what the classifier sees")))
    _grid_traces(fig, images[0], thetas[:1], outputs[0], False)
    fig.update_layout(**plotly_layout(width=860, height=470, title=titles[0], margin=dict(l=30, r=30, t=90, b=30)))
    pick = W.IntSlider(value=0, min=0, max=len(images) - 1, description="test image",
                       style={"description_width": "90px"}, layout=W.Layout(width="520px"))

    def update(_=None):
        i = pick.value
        with fig.batch_update():
            fig.data[0].z, fig.data[1].z = images[i, 0].numpy(), outputs[i, 0].numpy()
            _move_grid(fig, thetas[i:i + 1], (h, w), False)
            fig.layout.title.text = titles[i]

    pick.observe(update, names="value")
    return W.VBox([pick, fig])


def plot_stn_examples_static(images: Tensor, thetas: Tensor, titles: Sequence[str] | None = None, n: int = 6):
    """Matplotlib twin of :func:`stn_browser`: the first n images, grid above and output below (about six grid
    lines each way, so that a row of small panels stays readable)."""
    import matplotlib.pyplot as plt

    images, thetas = images[:n].detach().float().cpu(), thetas[:n].detach().float().cpu()
    outputs = warp(images, thetas)
    fig, axes = plt.subplots(2, len(images), figsize=(2.4 * len(images), 5.2))
    axes = np.asarray(axes).reshape(2, -1)
    every = max(4, images.shape[-1] // 6)
    for i in range(len(images)):
        _draw_pair(axes[:, i], images[i], thetas[i:i + 1], outputs[i], every=every)
        if titles is not None:
            axes[0, i].set_title(titles[i], fontsize=13)
    axes[0, 0].set_ylabel("input + grid", fontsize=13)
    axes[1, 0].set_ylabel("STN output", fontsize=13)
    fig.tight_layout()
    return fig
