"""See keypoints: skeletons over images, and a heatmap viewer that puts a predicted map next to its image
with the argmax, the soft-argmax and the ground truth marked.

* ``draw_pose``: a skeleton on a matplotlib axis (left limbs orange, right limbs blue, centre black).
* ``plot_fields``: part affinity fields as arrows over an image, zoomed on the limbs they join.
* ``heatmap_viewer``: a slider over test images and a joint picker; left the image with the skeletons,
  right the joint's predicted map. Twin: ``plot_heatmaps_static``.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..pose.figures import BONES, JOINTS, SIDES
from ..pose.keypoints import heatmap_argmax, rescale, soft_argmax2d
from .style import PALETTE, font_size, plotly_layout

__all__ = ["draw_pose", "show_poses", "heatmap_viewer", "plot_heatmaps_static", "plot_fields"]

SIDE_COLOR = {"left": PALETTE[1], "right": PALETTE[0], "centre": "#222222"}
GT_COLOR, ARGMAX_COLOR, SOFT_COLOR = PALETTE[2], PALETTE[3], PALETTE[4]


def draw_pose(ax, keypoints: Tensor, color: str | None = None, lw: float = 2.0, label: str | None = None,
              marker: str = "o") -> None:
    """Draw one skeleton (K, 2) on a matplotlib axis: bones coloured by side unless ``color`` is given."""
    k = keypoints.detach().cpu().numpy()
    for n, (a, b) in enumerate(BONES):
        side = SIDES[b]
        ax.plot(k[[a, b], 0], k[[a, b], 1], color=color or SIDE_COLOR[side], lw=lw,
                label=label if n == 0 else None)
    ax.scatter(k[:, 0], k[:, 1], s=14, color=color or "white", edgecolors="black", linewidths=0.5, zorder=3,
               marker=marker)


def show_poses(images: Tensor, poses: dict[str, Tensor] | Tensor, n: int = 6, titles: Sequence[str] | None = None,
               size: float = 2.6):
    """The first n images (N, 1, S, S) with skeletons: poses (N, K, 2) or {name: (N, K, 2)} (one colour each)."""
    import matplotlib.pyplot as plt

    if isinstance(poses, Tensor):
        poses = {None: poses}
    n = min(n, len(images))
    fig, axes = plt.subplots(1, n, figsize=(size * n, size + 0.4), squeeze=False)
    colors = [None] if len(poses) == 1 else [GT_COLOR, ARGMAX_COLOR, SOFT_COLOR, PALETTE[5], PALETTE[6]]
    for i, ax in enumerate(axes[0]):
        ax.imshow(images[i, 0].detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        for (name, kp), color in zip(poses.items(), colors):
            draw_pose(ax, kp[i], color=color, label=name if i == 0 else None)
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=font_size() - 5)
    if len(poses) > 1:
        fig.legend(loc="lower center", ncol=len(poses), fontsize=font_size() - 4, frameon=False)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
    else:
        fig.tight_layout()
    return fig


def _points(maps: Tensor, stride: int, beta: float) -> tuple[Tensor, Tensor]:
    return rescale(heatmap_argmax(maps), stride), rescale(soft_argmax2d(maps, beta), stride)


def heatmap_viewer(images: Tensor, heatmaps: Tensor, keypoints: Tensor, stride: int = 4, beta: float = 1.0,
                   joint: int = 4):
    """Browse predicted heatmaps: images (N, 1, S, S), heatmaps (N, K, S / stride, S / stride) (a head's raw
    maps), keypoints (N, K, 2) ground truth in image pixels.

    Left: the image, the ground-truth skeleton (green) and the joint's argmax (red) and soft-argmax
    (purple) points. Right: that joint's map in image coordinates, with the same three points. The readout
    gives each point's distance to the truth in pixels.
    """
    import ipywidgets as W
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    images, heatmaps, keypoints = (t.detach().float().cpu() for t in (images, heatmaps, keypoints))
    if not len(images) == len(heatmaps) == len(keypoints):
        raise ValueError(f"one heatmap stack and one pose per image: {len(images)} images, {len(heatmaps)} "
                         f"heatmaps, {len(keypoints)} poses")
    size, side = images.shape[-1], heatmaps.shape[-1]
    argmax_xy, soft_xy = _points(heatmaps, stride, beta)
    pick = W.IntSlider(value=0, min=0, max=len(images) - 1, description="test image",
                       style={"description_width": "90px"}, layout=W.Layout(width="420px"))
    which = W.Dropdown(options=[(name, k) for k, name in enumerate(JOINTS)], value=joint, description="joint",
                       style={"description_width": "60px"}, layout=W.Layout(width="260px"))
    readout = W.HTML()
    fig = go.FigureWidget(make_subplots(rows=1, cols=2, horizontal_spacing=0.06,
                                        subplot_titles=("image and ground truth", "predicted map of the joint")))
    fig.add_heatmap(z=images[0, 0].numpy(), colorscale="gray", zmin=0, zmax=1, showscale=False, row=1, col=1,
                    hoverinfo="skip")
    centres = rescale(torch.arange(side, dtype=torch.float32), stride).tolist()        # map pixels in image px
    fig.add_heatmap(z=heatmaps[0, joint].numpy(), x=centres, y=centres, colorscale="Viridis", showscale=True,
                    colorbar=dict(len=0.8, x=1.0), row=1, col=2,
                    hovertemplate="x %{x:.1f}, y %{y:.1f}: %{z:.2f}<extra></extra>")
    fig.add_scatter(x=[], y=[], mode="lines", line=dict(color=GT_COLOR, width=3), name="ground truth",
                    hoverinfo="skip", row=1, col=1)
    for col in (1, 2):
        for name, color, symbol in (("truth", GT_COLOR, "circle"), ("argmax", ARGMAX_COLOR, "square"),
                                    ("soft-argmax", SOFT_COLOR, "x")):
            fig.add_scatter(x=[], y=[], mode="markers", name=name, showlegend=col == 1,
                            marker=dict(color=color, size=13, symbol=symbol, line=dict(width=1.5, color="white")),
                            hovertemplate=f"{name}: x %{{x:.2f}}, y %{{y:.2f}}<extra></extra>", row=1, col=col)
        fig.update_xaxes(range=[-0.5, size - 0.5], showgrid=False, constrain="domain", row=1, col=col)
        fig.update_yaxes(range=[size - 0.5, -0.5], showgrid=False, scaleanchor=f"x{'' if col == 1 else 2}",
                         row=1, col=col)
    fig.update_layout(**plotly_layout(width=980, height=520, margin=dict(l=30, r=30, t=60, b=60),
                                      legend=dict(orientation="h", y=-0.04, yanchor="top", x=0)))

    def update(_=None):
        i, k = pick.value, which.value
        bones_x, bones_y = [], []
        for a, b in BONES:
            bones_x += [float(keypoints[i, a, 0]), float(keypoints[i, b, 0]), None]
            bones_y += [float(keypoints[i, a, 1]), float(keypoints[i, b, 1]), None]
        points = [keypoints[i, k], argmax_xy[i, k], soft_xy[i, k]]
        with fig.batch_update():
            fig.data[0].z = images[i, 0].numpy()
            fig.data[1].z = heatmaps[i, k].numpy()
            fig.data[2].x, fig.data[2].y = bones_x, bones_y
            for n, p in enumerate(points):
                for trace in (3 + n, 6 + n):
                    fig.data[trace].x, fig.data[trace].y = [float(p[0])], [float(p[1])]
        err = lambda p: float((p - keypoints[i, k]).norm())
        readout.value = (f"<span style='font-size:{font_size()}px'>{JOINTS[k]}: truth ({float(points[0][0]):.2f}, "
                         f"{float(points[0][1]):.2f}); <b style='color:{ARGMAX_COLOR}'>argmax</b> off by "
                         f"{err(points[1]):.2f} px, <b style='color:{SOFT_COLOR}'>soft-argmax</b> off by "
                         f"{err(points[2]):.2f} px</span>")

    for w in (pick, which):
        w.observe(update, names="value")
    update()
    return W.VBox([W.HBox([pick, which]), readout, fig])


def plot_heatmaps_static(image: Tensor, heatmaps: Tensor, keypoints: Tensor, stride: int = 4, beta: float = 1.0,
                         joints: Sequence[int] = (0, 2, 4, 6, 8, 10)):
    """Matplotlib twin of :func:`heatmap_viewer` for one image (1, S, S): the image with its skeleton, then the
    maps (K, h, w) of some joints with truth (green), argmax (red) and soft-argmax (purple)."""
    import matplotlib.pyplot as plt

    heatmaps, keypoints = heatmaps.detach().float().cpu(), keypoints.detach().float().cpu()
    argmax_xy, soft_xy = _points(heatmaps[None], stride, beta)
    size = image.shape[-1]
    fig, axes = plt.subplots(1, len(joints) + 1, figsize=(2.5 * (len(joints) + 1), 3.0))
    axes[0].imshow(image[0].detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
    draw_pose(axes[0], keypoints, color=GT_COLOR)
    axes[0].set_title("image, truth", fontsize=font_size() - 5)
    extent = (-0.5, size - 0.5, size - 0.5, -0.5)
    for ax, k in zip(axes[1:], joints):
        ax.imshow(heatmaps[k].numpy(), cmap="viridis", extent=extent)
        for p, color, m in ((keypoints[k], GT_COLOR, "o"), (argmax_xy[0, k], ARGMAX_COLOR, "s"),
                            (soft_xy[0, k], SOFT_COLOR, "x")):
            ax.plot(float(p[0]), float(p[1]), m, color=color, ms=8, mew=2, mec="white" if m != "x" else color)
        ax.set_title(JOINTS[k], fontsize=font_size() - 5)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_fields(image: Tensor, fields: dict[str, Tensor], starts: Tensor, ends: Tensor, margin: float = 6.0):
    """Part affinity fields as arrows, one panel per field: image (1, S, S), fields {title: (2, S, S)} (the x and
    y of the field on the image grid), starts and ends (P, 2) the limbs' joints in image pixels, drawn as dashed
    segments. One arrow per pixel where the field is not ~0, zoomed on the limbs (``margin`` pixels around)."""
    import matplotlib.pyplot as plt

    size = image.shape[-1]
    fig, axes = plt.subplots(1, len(fields), figsize=(6 * len(fields), 6), squeeze=False)
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    joints = torch.cat([starts, ends]).detach().float().cpu()
    lo, hi = joints.amin(0) - margin, joints.amax(0) + margin
    for ax, (title, f) in zip(axes[0], fields.items()):
        f = f.detach().float().cpu()
        on = f.norm(dim=0) > 0.05                                                    # no dots where there is no field
        ax.imshow(image[0].detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1.6)     # dimmed: arrows on top
        ax.quiver(xs[on].numpy(), ys[on].numpy(), f[0][on].numpy(), f[1][on].numpy(), color=PALETTE[3],
                  angles="xy", scale_units="xy", scale=1.2, width=0.008)              # data coordinates: y down
        for a, b, color in zip(starts.detach().cpu(), ends.detach().cpu(), (GT_COLOR, SOFT_COLOR)):
            ax.plot([a[0], b[0]], [a[1], b[1]], "o--", color=color, lw=2.5, ms=10)
        ax.set(title=title, xticks=[], yticks=[], xlim=(float(lo[0]), float(hi[0])), ylim=(float(hi[1]), float(lo[1])))
    fig.tight_layout()
    return fig
