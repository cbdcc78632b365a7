"""Views of the Hierarchical Triplet Loss: the class tree as a dendrogram, a class's nearest classes,
and the dynamic margin per class pair."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..similarity.hierarchy import nearest_classes, tree_merges
from .images import show_images
from .style import PALETTE, font_size, plotly_layout

__all__ = ["dendrogram_segments", "plot_class_tree", "neighbour_table", "plot_class_neighbours_static",
           "class_neighbours_explorer", "plot_margin_matrix"]


def dendrogram_segments(merges: Sequence[tuple[float, list[int], list[int]]], n: int
                        ) -> tuple[list[int], list[tuple[float, float, float, float]]]:
    """Leaf order (n,) and line segments (x0, y0, x1, y1) of a dendrogram, from ``tree_merges``' output.

    A merge at height t joins the nodes holding its two member lists; leaves sit at height 0 and a
    node's x is the mean of its children's x, with the leaves at x = 0 .. n - 1 in the tree's order.
    """
    node_of = list(range(n))                                           # member -> current node id
    children: dict[int, tuple[int, int, float]] = {}
    next_id = n
    for t, a, b in merges:
        left, right = node_of[a[0]], node_of[b[0]]
        children[next_id] = (left, right, t)
        for member in (*a, *b):
            node_of[member] = next_id
        next_id += 1
    roots = sorted(set(node_of))
    order: list[int] = []

    def leaves(node: int) -> None:
        stack = [node]
        while stack:
            v = stack.pop()
            if v < n:
                order.append(v)
            else:
                stack.extend([children[v][1], children[v][0]])

    for r in roots:
        leaves(r)
    x = {leaf: float(i) for i, leaf in enumerate(order)}
    height = {leaf: 0.0 for leaf in range(n)}
    segments = []
    for v in sorted(children):                                         # children are made before parents
        left, right, t = children[v]
        x[v], height[v] = (x[left] + x[right]) / 2, t
        segments += [(x[left], height[left], x[left], t), (x[right], height[right], x[right], t),
                     (x[left], t, x[right], t)]
    return order, segments


def _tree_layout(tree, names: Sequence[str]):
    merges = tree_merges(tree.distances, tree.d0, tree.levels)
    order, segments = dendrogram_segments(merges, len(tree.classes))
    labels = [names[int(tree.classes[i])] for i in order]
    return order, segments, labels


def plot_class_tree(tree, names: Sequence[str], title: str = "The class tree (average linkage)"):
    """A dendrogram of the training classes: two classes join at the threshold d_l of the level where
    they first share a node. The dotted line is d0, the mean within-class squared distance."""
    import plotly.graph_objects as go

    order, segments, labels = _tree_layout(tree, names)
    xs, ys = [], []
    for x0, y0, x1, y1 in segments:
        xs += [x0, x1, None]
        ys += [y0, y1, None]
    tick = font_size() - 2                                             # 14 px, 18 in presentation mode
    fig = go.Figure(layout=plotly_layout(
        title=title, width=max(900, (tick + 4) * len(order)), height=520, showlegend=False,
        xaxis=dict(tickmode="array", tickvals=list(range(len(order))), ticktext=labels, tickangle=-90,
                   tickfont=dict(size=tick), title="class"),
        yaxis=dict(title="merge threshold d_l (squared distance)", rangemode="tozero")))
    fig.add_scatter(x=xs, y=ys, mode="lines", line=dict(color=PALETTE[0], width=2), hoverinfo="skip")
    fig.add_hline(y=tree.d0, line=dict(color="#777", dash="dot", width=2),
                  annotation=dict(text=f"d0 = {tree.d0:.3f}", font=dict(size=font_size() - 2)),
                  annotation_position="top left")
    return fig


def neighbour_table(tree, cls: int, k: int = 5) -> list[tuple[int, float, float]]:
    """The k classes nearest to class label ``cls``: (label, class distance, d_H), nearest first."""
    row = tree.rows(torch.tensor([cls]))
    nearest = nearest_classes(tree.distances.cpu(), row, min(k, len(tree.classes) - 1) + 1)[0, 1:].tolist()
    row = int(row[0])
    return [(int(tree.classes[j]), float(tree.distances[row, j]), float(tree.d_h[row, j])) for j in nearest]


def plot_class_neighbours_static(tree, images: Tensor, labels: Tensor, names: Sequence[str], cls: int,
                                 k: int = 5, per_class: int = 3):
    """Images of class ``cls`` (first column) and of its k nearest classes, with distance and d_H."""
    rows = [(cls, 0.0, 0.0), *neighbour_table(tree, cls, k)]
    picks, titles = [], []
    for c, dist, dh in rows:
        idx = torch.nonzero(labels.cpu() == c).flatten()[:per_class]
        picks += idx.tolist()
        first = names[c] if c == cls else f"{names[c]}: d={dist:.2f}, d_H={dh:.2f}"
        titles += [first] + [""] * (len(idx) - 1)
    return show_images(images.cpu()[picks], titles=titles, ncols=per_class, size=2.4,
                       title=f"Class {names[cls]} (top row) and its {k} nearest classes")


def class_neighbours_explorer(tree, images: Tensor, labels: Tensor, names: Sequence[str], k: int = 5,
                              start: int | None = None):
    """Pick a training class: its images, then its k nearest classes with their class distance and d_H."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    options = [(names[int(c)], int(c)) for c in tree.classes]
    pick = widgets.Dropdown(options=options, value=start if start is not None else options[0][1],
                            description="class", layout=widgets.Layout(width="220px"),
                            style={"description_width": "60px"})
    out = widgets.Output()

    def draw(*_):
        with out:
            out.clear_output(wait=True)
            fig = plot_class_neighbours_static(tree, images, labels, names, pick.value, k)
            display(fig)
            plt.close(fig)

    pick.observe(draw, names="value")
    draw()
    return widgets.VBox([pick, out])


def plot_margin_matrix(alpha: Tensor, tree, names: Sequence[str], title: str = "Dynamic margin α per class pair",
                       classes: Tensor | Sequence[int] | None = None):
    """Heatmap of alpha[anchor class, negative class] (C, C), classes in the dendrogram's order.

    ``classes``: only these class labels (e.g. the classes of one batch), every one labelled. With more than
    24 classes, every 5th is labelled (hover shows each cell's pair), so the labels stay readable.
    """
    import plotly.graph_objects as go

    order, _, labels = _tree_layout(tree, names)
    if classes is not None:
        keep = set(tree.rows(torch.as_tensor(classes).cpu()).tolist())
        labels = [lab for o, lab in zip(order, labels) if o in keep]
        order = [o for o in order if o in keep]
    a = alpha.detach().cpu()[order][:, order].numpy()
    step = 1 if len(order) <= 24 else 5
    axis = dict(tickmode="array", tickvals=labels[::step], ticktext=labels[::step], tickfont=dict(size=font_size() - 2))
    side = 700 if len(order) > 24 else 160 + 26 * len(order)
    fig = go.Figure(layout=plotly_layout(title=title, width=side + 60, height=side,
                                         xaxis=dict(title="negative's class", **axis),
                                         yaxis=dict(title="anchor's class", autorange="reversed", **axis)))
    fig.add_heatmap(z=np.where(np.eye(len(a), dtype=bool), np.nan, a), x=labels, y=labels, colorscale="Viridis",
                    colorbar=dict(title="α"),
                    hovertemplate="anchor %{y}, negative %{x}: α = %{z:.2f}<extra></extra>")
    return fig
