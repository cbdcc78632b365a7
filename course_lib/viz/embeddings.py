"""See an embedding space: an interactive explorer (plotly + ipywidgets) and the projection behind it.

Embeddings with D > 2 are projected to 2-D with UMAP (McInnes et al. 2018); successive snapshots
start from the previous layout so that the picture does not jump between epochs.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from torch import Tensor

from .style import color_of, font_size, image_png, plotly_layout, to_numpy

__all__ = ["project_2d", "embedding_explorer", "plot_collapse"]



def project_2d(embeddings: Tensor | np.ndarray, method: str = "umap", init: np.ndarray | None = None,
               n_epochs: int | None = None, seed: int = 0) -> np.ndarray:
    """(N, D) -> (N, 2) for plotting. D <= 2 is returned as is (D = 1 gets y = 0).

    method: "umap" (keeps neighbourhoods, slower) or "pca" (a linear view, instant).
    init:   (N, 2) starting layout for UMAP, e.g. the previous epoch's projection.
    """
    x = to_numpy(embeddings, np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"embeddings must be a non-empty (N, D) array, got shape {x.shape}")
    if x.shape[1] == 2:
        return x
    if x.shape[1] == 1:
        return np.concatenate([x, np.zeros_like(x)], axis=1)
    if method == "pca":
        centred = x - x.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        return centred @ vt[:2].T
    if method != "umap":
        raise ValueError(f"method must be 'umap' or 'pca', got {method!r}")
    import umap  # imported here: it takes several seconds (numba) and only D > 2 needs it
    if init is not None and np.asarray(init).shape != (len(x), 2):
        raise ValueError(f"init must have shape ({len(x)}, 2), got {np.asarray(init).shape}")
    reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(x) - 1), random_state=seed,
                        init="spectral" if init is None else np.asarray(init, dtype=np.float32),
                        n_epochs=n_epochs, n_jobs=1)
    return reducer.fit_transform(x)


def _snapshots_of(source, epochs: Sequence[int] | None) -> tuple[list[np.ndarray], list[int]]:
    """Accept a History, a list of (N, D) snapshots, or one (N, D) tensor."""
    if hasattr(source, "snapshots"):
        snaps, epochs = list(source.snapshots), list(source.snapshot_epochs)
    elif isinstance(source, (list, tuple)):
        snaps = list(source)
    else:
        snaps = [source]
    if not snaps:
        raise ValueError("there are no embedding snapshots: train with fit(..., snapshot_inputs=x)")
    epochs = list(range(len(snaps))) if epochs is None else list(epochs)
    if len(epochs) != len(snaps):
        raise ValueError(f"{len(snaps)} snapshots but {len(epochs)} epoch numbers")
    return [to_numpy(s, np.float32) for s in snaps], epochs


def _align(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotate, reflect, scale and shift points (N, 2) to lie as close as possible to target (N, 2)
    (orthogonal Procrustes): a projection's orientation and scale carry no meaning, so successive
    frames are put in the same pose and the slider shows real changes only."""
    p, t = points - points.mean(0), target - target.mean(0)
    u, sigma, vt = np.linalg.svd(p.T @ t)
    scale = sigma.sum() / max((p ** 2).sum(), 1e-12)
    return scale * p @ (u @ vt) + target.mean(0)


def _project_all(snaps: list[np.ndarray], method: str, n_epochs: int | None, seed: int) -> list[np.ndarray]:
    out, previous = [], None
    for s in snaps:
        current = project_2d(s, method=method, init=previous, n_epochs=n_epochs, seed=seed)
        # 2-D embeddings are drawn as they are; only projections (D > 2) are put in the previous pose
        previous = current if previous is None or s.shape[1] <= 2 else _align(current, previous)
        out.append(previous)
    return out


def embedding_explorer(source, labels: Tensor, images: Tensor | None = None, *, epochs: Sequence[int] | None = None,
                       class_names: Sequence[str] | None = None, method: str = "umap",
                       umap_epochs: int | None = None, title: str = "Embedding space", seed: int = 0,
                       proxies: Sequence[int] | Tensor | None = None):
    """An interactive 2-D view of embeddings, coloured by class.

    source: a History from ``fit(..., snapshot_inputs=x)``, a list of (N, D) snapshots, or one (N, D).
    labels: (N,) class of each point; images: (N, 1, H, W) shown when a point is hovered or clicked.
    The epoch slider (with a play button) replays the snapshots recorded during training.
    Click a class in the legend to hide it; double-click to show it alone.
    proxies: the classes of C class vectors stored as the LAST C rows of every snapshot (lesson 08's
    ``proxy_snapshot``): they are drawn as large stars in their class's colour, with a line from the origin
    when D = 2, and moved by the slider with the points.
    """
    import ipywidgets as W
    import plotly.graph_objects as go

    snaps, epochs = _snapshots_of(source, epochs)
    proxy_y = to_numpy(proxies).astype(int) if proxies is not None else np.zeros(0, dtype=int)
    y = to_numpy(labels).astype(int)
    if len(proxy_y):
        if any(len(s) != len(y) + len(proxy_y) for s in snaps):
            raise ValueError(f"with proxies, every snapshot must hold the {len(y)} points and then the "
                             f"{len(proxy_y)} class vectors: got snapshots of {sorted({len(s) for s in snaps})} rows")
        snaps, stars = [s[:len(y)] for s in snaps], [s[len(y):] for s in snaps]
    else:
        stars = [s[:0] for s in snaps]
    if y.ndim != 1 or any(len(s) != len(y) for s in snaps):
        raise ValueError(f"labels must be (N,) with one entry per point: got {y.shape} labels for "
                         f"snapshots of {sorted({len(s) for s in snaps})} points")
    if images is not None and len(images) != len(y):
        raise ValueError(f"images must have one entry per point: got {len(images)} for {len(y)} points")
    xy = _project_all([np.concatenate([s, t]) for s, t in zip(snaps, stars)], method, umap_epochs, seed)
    xy, star_xy = [p[:len(y)] for p in xy], [p[len(y):] for p in xy]
    heading = (lambda epoch: f"{title} — epoch {epoch}") if len(snaps) > 1 else (lambda epoch: title)
    classes = np.unique(y)
    names = [str(class_names[c]) if class_names is not None else str(c) for c in classes]
    members = [np.flatnonzero(y == c) for c in classes]                # point indices of each trace

    fig = go.FigureWidget(layout=plotly_layout(
        title=heading(epochs[-1]), width=720, height=600, legend_title_text="class",
        xaxis=dict(title="dimension 1", zeroline=False), yaxis=dict(title="dimension 2", zeroline=False)))
    for k, (name, idx) in enumerate(zip(names, members)):
        fig.add_scatter(x=xy[-1][idx, 0], y=xy[-1][idx, 1], mode="markers", name=name,
                        marker=dict(size=9, color=color_of(int(classes[k])), opacity=0.8,
                                    line=dict(width=0.5, color="white")),
                        customdata=idx, hovertemplate=f"class {name}<br>point %{{customdata}}<extra></extra>")

    if len(proxy_y):
        _add_proxies(fig, star_xy[-1], proxy_y, class_names, rays=snaps[0].shape[1] == 2)
    picture = W.Image(format="png", width=140, height=140, layout=W.Layout(border="1px solid #ccc"))
    picture.add_class("course-pixelated")
    caption = W.HTML()
    style = W.HTML("<style>.course-pixelated img, img.course-pixelated {image-rendering: pixelated;}</style>")

    def show(i: int, hint: str = "") -> None:
        if images is not None:
            picture.value = image_png(images[i])
        caption.value = (f"<span style='font-size:{font_size()}px'>point {i}, class <b>{names[np.searchsorted(classes, y[i])]}</b>"
                         f"{hint}</span>")

    def show_point(trace, points, _state=None):
        if points.point_inds:
            show(int(members[points.trace_index][points.point_inds[0]]))

    show(0, "<br><i>Hover over or click a point<br>to see its image.</i>")

    for trace in fig.data[:len(members)]:                              # the points, not the class vectors
        trace.on_hover(show_point)
        trace.on_click(show_point)

    slider = W.SelectionSlider(options=epochs, value=epochs[-1], description="epoch",
                               continuous_update=True, layout=W.Layout(width="520px"),
                               style={"description_width": "60px"})
    play = W.Play(min=0, max=len(epochs) - 1, value=len(epochs) - 1, interval=700, description="play")
    W.jslink((play, "value"), (slider, "index"))

    def show_epoch(change):
        points = xy[slider.index]
        with fig.batch_update():
            for trace, idx in zip(fig.data, members):
                trace.x, trace.y = points[idx, 0], points[idx, 1]
            if len(proxy_y):
                _move_proxies(fig, star_xy[slider.index], rays=snaps[0].shape[1] == 2)
            fig.layout.title.text = heading(slider.value)

    slider.observe(show_epoch, names="value")
    side = W.VBox([picture, caption], layout=W.Layout(padding="60px 0 0 10px"))
    controls = W.HBox([play, slider]) if len(epochs) > 1 else W.HBox([])
    return W.VBox([style, W.HBox([fig, side]), controls])


def _ray_xy(stars: np.ndarray) -> tuple[list, list]:
    """Lines from the origin to each star, separated by None (one trace)."""
    xs = [v for x in stars[:, 0] for v in (0.0, float(x), None)]
    ys = [v for y in stars[:, 1] for v in (0.0, float(y), None)]
    return xs, ys


def _add_proxies(fig, stars: np.ndarray, classes: np.ndarray, class_names, rays: bool) -> None:
    """Two traces after the class traces: the rays (D = 2) and the stars."""
    names = [str(class_names[c]) if class_names is not None else str(c) for c in classes]
    if rays:
        xs, ys = _ray_xy(stars)
        fig.add_scatter(x=xs, y=ys, mode="lines", name="class directions", hoverinfo="skip",
                        line=dict(color="#444", width=1.5, dash="dot"))
    fig.add_scatter(x=stars[:, 0], y=stars[:, 1], mode="markers", name="class vectors (proxies)",
                    marker=dict(symbol="star", size=22, color=[color_of(int(c)) for c in classes],
                                line=dict(width=1.5, color="black")),
                    customdata=names, hovertemplate="class vector of %{customdata}<extra></extra>")


def _move_proxies(fig, stars: np.ndarray, rays: bool) -> None:
    star_trace = fig.data[-1]
    star_trace.x, star_trace.y = stars[:, 0], stars[:, 1]
    if rays:
        fig.data[-2].x, fig.data[-2].y = _ray_xy(stars)


def plot_collapse(runs: dict, labels: Tensor, title: str = "The same test images under two networks"):
    """Embeddings of several runs side by side, in the *same* axes: all are projected on the two
    principal directions of the first run (the healthy one), without rescaling, so a collapsed
    embedding shows up as a single dot instead of being blown up to fill its panel.

    runs: {name: (N, D) embeddings of the same N inputs}; labels: (N,).
    """
    from plotly.subplots import make_subplots

    names = list(runs)
    xs = [to_numpy(runs[n], np.float32) for n in names]
    if len({x.shape for x in xs}) != 1:
        raise ValueError(f"all runs must embed the same inputs, got shapes {[x.shape for x in xs]}")
    centre = xs[0].mean(0)
    _, _, vt = np.linalg.svd(xs[0] - centre, full_matrices=False)
    xy = [(x - centre) @ vt[:2].T for x in xs]
    lim = float(np.abs(np.concatenate(xy)).max()) * 1.08
    y = to_numpy(labels).astype(int)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.06)
    for col, points in enumerate(xy, start=1):
        for c in np.unique(y):
            m = y == c
            fig.add_scatter(x=points[m, 0], y=points[m, 1], mode="markers", name=str(c), legendgroup=str(c),
                            showlegend=False, marker=dict(size=7, color=color_of(int(c)), opacity=0.7),
                            hovertemplate=f"class {c}<extra></extra>", row=1, col=col)
    fig.update_xaxes(range=[-lim, lim], title_text="principal direction 1 (of the first run)")
    fig.update_yaxes(range=[-lim, lim])
    fig.update_layout(**plotly_layout(title=title, width=520 * len(names), height=520))
    return fig
