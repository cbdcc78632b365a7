"""See anchors and detections: which anchors a matching rule makes objects, and what a detector found.

* ``anchor_explorer``: anchors of a stride / sizes / ratios over a canvas, coloured object / ignored /
  background against the gt boxes by the matching rule (thresholds and the best-anchor rule adjustable),
  with the IoU of the anchors under the cursor and of a selected anchor. Twin: ``plot_anchors_static``.
* ``detection_viewer``: detections against the gt boxes, with a score-threshold slider; right ones green,
  wrong ones red, missed gt boxes dashed. Twin: ``plot_detections_static``.
* ``plot_pr_curves``: precision-recall curves of a detector, one per class, with their AP.
* ``plot_shared_cells``: a canvas on a grid of cells, the digits whose centres share a cell in red.
* ``plot_anchor_fit``: each digit's best anchor IoU against its size. ``plot_detection_history``: training.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..detection.boxes import (
    BACKGROUND,
    IGNORED,
    OBJECT,
    anchor_labels,
    box_iou,
    make_anchors,
)
from ..detection.detector import shared_cells
from ..detection.metrics import match_detections
from .curves import smooth
from .style import PALETTE, font_size, image2d, plotly_layout

__all__ = ["anchor_explorer", "anchor_summary", "plot_anchors_static", "detection_viewer", "plot_detections_static",
           "plot_pr_curves", "plot_shared_cells", "plot_anchor_fit", "plot_detection_history"]

GT_COLOR, OBJECT_COLOR, IGNORED_COLOR, BACKGROUND_COLOR = PALETTE[0], PALETTE[2], PALETTE[1], "#9A9A9A"
WRONG_COLOR, SELECTED_COLOR = PALETTE[3], PALETTE[4]
_LABEL_NAMES = {OBJECT: "object", IGNORED: "ignored", BACKGROUND: "background"}


def _outline(boxes: Tensor) -> tuple[list, list]:
    """(N, 4) boxes -> x, y lists of closed rectangles separated by None (one plotly trace for all)."""
    xs, ys = [], []
    for x1, y1, x2, y2 in boxes.tolist():
        xs += [x1, x2, x2, x1, x1, None]
        ys += [y1, y1, y2, y2, y1, None]
    return xs, ys



def _parse_numbers(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what}: write numbers separated by commas, e.g. 10, 16, 24; got {text!r}") from None
    if not values or min(values) <= 0:
        raise ValueError(f"{what}: give at least one positive number, got {text!r}")
    return values


def anchor_summary(anchors: Tensor, gt_boxes: Tensor, high: float = 0.7, low: float = 0.3,
                   allow_low_quality: bool = True) -> dict:
    """What a matching rule does on one image: anchors (A, 4), gt_boxes (G, 4) ->
    {"labels" (A,), "iou" (G, A), "counts" {object, ignored, background}, "gt_best" (G,) best IoU of each gt
    box, "gt_covered" (G,) whether some object anchor is matched to it}."""
    iou = box_iou(gt_boxes, anchors)
    labels = anchor_labels(iou, high, low, allow_low_quality)
    matched = iou.argmax(0) if len(gt_boxes) else torch.full((len(anchors),), -1)
    covered = torch.tensor([bool(((labels == OBJECT) & (matched == g)).any()) for g in range(len(gt_boxes))],
                           dtype=torch.bool)
    return {"labels": labels, "iou": iou,
            "counts": {name: int((labels == k).sum()) for k, name in _LABEL_NAMES.items()},
            "gt_best": iou.max(1).values if len(gt_boxes) else torch.zeros(0), "gt_covered": covered}


def anchor_explorer(images: Tensor, gt_boxes: Sequence[Tensor], stride: int = 8, sizes: Sequence[float] = (10, 16, 24),
                    ratios: Sequence[float] = (1, 2), high: float = 0.7, low: float = 0.3,
                    allow_low_quality: bool = True):
    """Explore anchors and the matching rule on canvases images (N, 1, S, S) with gt boxes (one (G, 4) per image).

    Controls: the image, the stride (cells of stride x stride pixels), anchor sizes and ratios (h / w, comma
    separated), the thresholds (low, high), the best-anchor rule, and whether to draw background anchors.
    Anchors are drawn green (object), orange dashed (ignored), grey (background); gt boxes blue. Hover over the
    image for the cell under the cursor and its anchors' best IoU; click a cell to select it, and pick one of
    its anchors with the slider: it is drawn in purple with its IoU against every gt box.
    """
    import ipywidgets as W
    import plotly.graph_objects as go

    images = torch.as_tensor(images).detach().float().cpu()
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"images must be (N, 1, S, S), got shape {tuple(images.shape)}")
    if len(gt_boxes) != len(images):
        raise ValueError(f"one (G, 4) tensor of gt boxes per image: {len(gt_boxes)} for {len(images)} images")
    gt_boxes = [torch.as_tensor(b).detach().float().cpu().reshape(-1, 4) for b in gt_boxes]
    size = images.shape[-1]
    style, wide = {"description_width": "150px"}, W.Layout(width="430px")
    pick = W.IntSlider(value=0, min=0, max=len(images) - 1, description="image", style=style, layout=wide)
    stride_w = W.SelectionSlider(options=[4, 8, 16, 32], value=stride, description="stride (px)", style=style,
                                 layout=wide)
    sizes_w = W.Text(value=", ".join(f"{s:g}" for s in sizes), description="sizes (px)", style=style, layout=wide,
                     continuous_update=False)
    ratios_w = W.Text(value=", ".join(f"{r:g}" for r in ratios), description="ratios h / w", style=style, layout=wide,
                      continuous_update=False)
    thresholds = W.FloatRangeSlider(value=(low, high), min=0.0, max=1.0, step=0.05, description="low, high IoU",
                                    style=style, layout=wide)
    best_rule = W.Checkbox(value=allow_low_quality, description="best anchor of each gt box is an object",
                           style={"description_width": "0px"}, layout=W.Layout(width="430px"))
    show_bg = W.Checkbox(value=False, description="draw background anchors", style={"description_width": "0px"},
                         layout=W.Layout(width="430px"))
    choice = W.IntSlider(value=0, min=0, max=len(sizes) * len(ratios) - 1, description="anchor in the cell",
                         style=style, layout=wide)
    readout = W.HTML(layout=W.Layout(width="430px"))
    state = {"cell": (size // stride // 2, size // stride // 2)}

    fig = go.FigureWidget()
    # pixel (row i, column j) covers [j, j + 1] x [i, i + 1], the coordinates of the boxes
    fig.add_heatmap(z=image2d(images[0]), x0=0.5, y0=0.5, colorscale=[[0, "black"], [1, "white"]], zmin=0, zmax=1,
                    showscale=False)
    for name, color, width, dash in (("background", BACKGROUND_COLOR, 1, "solid"),
                                     ("ignored", IGNORED_COLOR, 2, "dash"), ("object", OBJECT_COLOR, 3, "solid"),
                                     ("gt box", GT_COLOR, 4, "solid"), ("selected anchor", SELECTED_COLOR, 4, "dot")):
        fig.add_scatter(x=[], y=[], mode="lines", name=name, line=dict(color=color, width=width, dash=dash),
                        hoverinfo="skip")
    fig.update_xaxes(range=[0, size], showgrid=False, constrain="domain")
    fig.update_yaxes(range=[size, 0], showgrid=False, scaleanchor="x")
    fig.update_layout(**plotly_layout(width=640, height=660, margin=dict(l=40, r=20, t=60, b=80),
                                      legend=dict(orientation="h", y=-0.08, yanchor="top", x=0,
                                                  font=dict(size=font_size() - 2)),
                                      title="anchors against the gt boxes"))

    def current():
        s, r = _parse_numbers(sizes_w.value, "sizes"), _parse_numbers(ratios_w.value, "ratios")
        cells = math.ceil(size / stride_w.value)
        anchors = make_anchors((cells, cells), stride_w.value, s, r)
        low_, high_ = thresholds.value
        return s, r, cells, anchors, anchor_summary(anchors, gt_boxes[pick.value], high_, low_, best_rule.value)

    def hover_text(anchors, summary, s, r, cells) -> np.ndarray:
        """Per pixel: its cell and the best IoU of that cell's anchors with any gt box."""
        a = len(s) * len(r)
        iou = summary["iou"]
        best = (iou.max(0).values if len(iou) else torch.zeros(len(anchors))).view(cells, cells, a)
        k = best.argmax(-1)
        text = np.empty((cells, cells), dtype=object)
        for i in range(cells):
            for j in range(cells):
                kk = int(k[i, j])
                text[i, j] = (f"cell ({i}, {j}): best IoU {float(best[i, j, kk]):.2f} "
                              f"(size {s[kk // len(r)]:g}, ratio {r[kk % len(r)]:g})")
        rows = np.minimum(np.arange(size) // stride_w.value, cells - 1)
        return text[rows][:, rows]

    def update(_=None):
        try:
            s, r, cells, anchors, summary = current()
        except ValueError as error:
            readout.value = f"<span style='color:{WRONG_COLOR}; font-size:{font_size()}px'>{error}</span>"
            return
        a = len(s) * len(r)
        choice.max = a - 1
        i, j = (min(v, cells - 1) for v in state["cell"])
        state["cell"] = (i, j)
        k = (i * cells + j) * a + choice.value
        labels, gt = summary["labels"], gt_boxes[pick.value]
        with fig.batch_update():
            fig.data[0].z = image2d(images[pick.value])
            fig.data[0].customdata = hover_text(anchors, summary, s, r, cells)
            fig.data[0].hovertemplate = "%{customdata}<extra></extra>"
            for trace, label in ((1, BACKGROUND), (2, IGNORED), (3, OBJECT)):
                shown = labels == label if (label != BACKGROUND or show_bg.value) else torch.zeros_like(labels, dtype=torch.bool)
                fig.data[trace].x, fig.data[trace].y = _outline(anchors[shown])
            fig.data[4].x, fig.data[4].y = _outline(gt)
            fig.data[5].x, fig.data[5].y = _outline(anchors[k:k + 1])
        c, g = summary["counts"], len(gt)
        ious = ", ".join(f"{float(v):.2f}" for v in summary["iou"][:, k]) if g else "no gt boxes"
        best = ", ".join(f"{float(v):.2f}" for v in summary["gt_best"])
        x1, y1, x2, y2 = anchors[k].tolist()
        readout.value = (
            f"<div style='font-size:{font_size() - 1}px; line-height:1.45'>"
            f"<b>{len(anchors)} anchors</b> ({cells} × {cells} cells × {a}): "
            f"<span style='color:{OBJECT_COLOR}'><b>{c['object']} object</b></span>, "
            f"<span style='color:{IGNORED_COLOR}'><b>{c['ignored']} ignored</b></span>, {c['background']} background"
            f"<br><b>gt boxes with an object anchor: {int(summary['gt_covered'].sum())} of {g}</b>"
            f"<br>best IoU of each gt box: {best or '-'}"
            f"<br><span style='color:{SELECTED_COLOR}'><b>selected</b></span>: cell ({i}, {j}), size "
            f"{s[choice.value // len(r)]:g}, ratio {r[choice.value % len(r)]:g}: [{x1:.0f}, {y1:.0f}, {x2:.0f}, "
            f"{y2:.0f}]<br>its IoU with the gt boxes: {ious} → <b>{_LABEL_NAMES[int(labels[k])]}</b></div>")

    def on_click(trace, points, selector):
        if points.xs:
            cells = math.ceil(size / stride_w.value)
            state["cell"] = (min(int(points.ys[0]) // stride_w.value, cells - 1),
                             min(int(points.xs[0]) // stride_w.value, cells - 1))
            update()

    fig.data[0].on_click(on_click)
    for w in (pick, stride_w, sizes_w, ratios_w, thresholds, best_rule, show_bg, choice):
        w.observe(update, names="value")
    update()
    controls = W.VBox([pick, stride_w, sizes_w, ratios_w, thresholds, best_rule, show_bg, choice, readout])
    return W.HBox([controls, fig])


def plot_anchors_static(image: Tensor, gt_boxes: Tensor, anchors: Tensor, high: float = 0.7, low: float = 0.3,
                        allow_low_quality: bool = True, title: str | None = None, ax=None):
    """Matplotlib twin of :func:`anchor_explorer` for one image (H, W) / (1, H, W), its gt boxes (G, 4) and
    anchors (A, 4): object anchors green, ignored orange dashed, gt boxes blue; the counts in the title."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    summary = anchor_summary(anchors, gt_boxes, high, low, allow_low_quality)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.imshow(image2d(image), cmap="gray", vmin=0, vmax=1)
    for boxes, color, lw, ls in ((anchors[summary["labels"] == IGNORED], IGNORED_COLOR, 1.5, "--"),
                                 (anchors[summary["labels"] == OBJECT], OBJECT_COLOR, 2.5, "-"),
                                 (gt_boxes, GT_COLOR, 3, "-")):
        for x1, y1, x2, y2 in boxes.tolist():
            ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, color=color, lw=lw, ls=ls))
    c = summary["counts"]
    ax.set_title(title or f"{c['object']} object, {c['ignored']} ignored; "
                 f"{int(summary['gt_covered'].sum())}/{len(gt_boxes)} gt covered", fontsize=font_size() - 3)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _detection_lines(prediction: dict, target: dict, threshold: float, iou_threshold: float):
    keep = prediction["scores"] >= threshold
    shown = {k: v[keep].cpu() for k, v in prediction.items()}
    hit, found = match_detections(shown, target, iou_threshold)
    return shown, hit, found


def detection_viewer(images: Tensor, predictions: list[dict], targets: list[dict], score_threshold: float = 0.5,
                     iou_threshold: float = 0.5):
    """Detections against the gt boxes, image by image, with a score-threshold slider.

    images (N, 1, S, S); predictions: one {"boxes", "scores", "labels"} per image (made with a low threshold,
    the slider filters them); targets: one {"boxes", "labels"} per image. A detection is right (green) if it
    finds a gt box of its class at IoU >= iou_threshold (the mAP rule), else wrong (red); gt boxes that no
    detection found are dashed.
    """
    import ipywidgets as W
    import plotly.graph_objects as go

    images = torch.as_tensor(images).detach().float().cpu()
    if not len(images) == len(predictions) == len(targets):
        raise ValueError(f"one prediction and one target per image: {len(images)} images, {len(predictions)} "
                         f"predictions, {len(targets)} targets")
    size = images.shape[-1]
    style, wide = {"description_width": "120px"}, W.Layout(width="460px")
    pick = W.IntSlider(value=0, min=0, max=len(images) - 1, description="test image", style=style, layout=wide)
    threshold = W.FloatSlider(value=score_threshold, min=0.05, max=0.95, step=0.05, description="score threshold",
                              style=style, layout=wide)
    readout = W.HTML()
    fig = go.FigureWidget()
    fig.add_heatmap(z=image2d(images[0]), x0=0.5, y0=0.5, colorscale=[[0, "black"], [1, "white"]], zmin=0, zmax=1,
                    showscale=False, hoverinfo="skip")
    for name, color, dash in (("gt box", GT_COLOR, "solid"), ("missed gt box", GT_COLOR, "dot"),
                              ("right detection", OBJECT_COLOR, "solid"), ("wrong detection", WRONG_COLOR, "dash")):
        fig.add_scatter(x=[], y=[], mode="lines", name=name, line=dict(color=color, width=3, dash=dash),
                        hoverinfo="skip")
    fig.add_scatter(x=[], y=[], mode="text", text=[], textposition="top right", name="class, score",
                    textfont=dict(size=font_size(), color="white"), showlegend=False, hoverinfo="skip")
    fig.update_xaxes(range=[0, size], showgrid=False, showticklabels=False, constrain="domain")
    fig.update_yaxes(range=[size, 0], showgrid=False, showticklabels=False, scaleanchor="x")
    fig.update_layout(**plotly_layout(width=600, height=640, margin=dict(l=20, r=20, t=30, b=60),
                                      legend=dict(orientation="h", y=-0.02, yanchor="top", x=0,
                                                  font=dict(size=font_size() - 2))))

    def update(_=None):
        i = pick.value
        shown, hit, found = _detection_lines(predictions[i], targets[i], threshold.value, iou_threshold)
        gt = targets[i]["boxes"].float().cpu()
        with fig.batch_update():
            fig.data[0].z = image2d(images[i])
            fig.data[1].x, fig.data[1].y = _outline(gt[found])
            fig.data[2].x, fig.data[2].y = _outline(gt[~found])
            fig.data[3].x, fig.data[3].y = _outline(shown["boxes"][hit])
            fig.data[4].x, fig.data[4].y = _outline(shown["boxes"][~hit])
            b = shown["boxes"]
            fig.data[5].x, fig.data[5].y = b[:, 0].tolist(), b[:, 1].tolist()
            fig.data[5].text = [f"{int(c)} {float(s):.2f}" for c, s in zip(shown["labels"], shown["scores"])]
            fig.data[5].textfont.color = [OBJECT_COLOR if h else WRONG_COLOR for h in hit.tolist()]
        truth = ", ".join(str(int(v)) for v in targets[i]["labels"])
        readout.value = (f"<span style='font-size:{font_size()}px'>digits: {truth}; shown {len(hit)} detections: "
                         f"<b style='color:{OBJECT_COLOR}'>{int(hit.sum())} right</b>, "
                         f"<b style='color:{WRONG_COLOR}'>{int((~hit).sum())} wrong</b>; "
                         f"{int((~found).sum())} of {len(found)} digits missed</span>")

    for w in (pick, threshold):
        w.observe(update, names="value")
    update()
    return W.VBox([W.HBox([pick, threshold]), readout, fig])


def plot_detections_static(images: Tensor, predictions: list[dict] | None, targets: list[dict],
                           score_threshold: float = 0.5, iou_threshold: float = 0.5, n: int = 6,
                           titles: Sequence[str] | None = None, axes=None):
    """Matplotlib twin of :func:`detection_viewer`: the first n images, right detections green, wrong red
    dashed, gt boxes blue (dotted where missed), "class score" above each detection.
    predictions=None draws the gt boxes alone, with the digits in the title."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = min(n, len(images))
    if axes is None:
        _, axes = plt.subplots(1, n, figsize=(2.9 * n, 3.3))
    axes = np.atleast_1d(axes)
    for i, ax in enumerate(axes[:n]):
        if predictions is None:
            none = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)}
            shown, hit = none, torch.zeros(0, dtype=torch.bool)
            found = torch.ones(len(targets[i]["boxes"]), dtype=torch.bool)
        else:
            shown, hit, found = _detection_lines(predictions[i], targets[i], score_threshold, iou_threshold)
        ax.imshow(image2d(images[i]), cmap="gray", vmin=0, vmax=1)
        for box, f in zip(targets[i]["boxes"].float().cpu().tolist(), found.tolist()):
            ax.add_patch(Rectangle((box[0] - 0.5, box[1] - 0.5), box[2] - box[0], box[3] - box[1], fill=False,
                                   color=GT_COLOR, lw=2.5, ls="-" if f else ":"))
        for box, h, c, s in zip(shown["boxes"].tolist(), hit.tolist(), shown["labels"].tolist(),
                                shown["scores"].tolist()):
            color = OBJECT_COLOR if h else WRONG_COLOR
            ax.add_patch(Rectangle((box[0] - 0.5, box[1] - 0.5), box[2] - box[0], box[3] - box[1], fill=False,
                                   color=color, lw=2, ls="-" if h else "--"))
            ax.text(box[0], box[1] - 1, f"{c} {s:.2f}", color=color, fontsize=font_size() - 5, va="bottom",
                    fontweight="bold")
        if titles is not None:
            title = titles[i]
        elif predictions is None:
            title = "digits " + ", ".join(str(int(v)) for v in targets[i]["labels"])
        else:
            title = f"{int(hit.sum())} right, {int((~hit).sum())} wrong, {int((~found).sum())} missed"
        ax.set_title(title, fontsize=font_size() - 5)
        ax.set_xticks([])
        ax.set_yticks([])
    return axes


def plot_pr_curves(curves: dict, title: str = "Precision-recall per class", ax=None):
    """curves {class: (precision (D,), recall (D,), AP)} from :func:`course_lib.detection.metrics.detection_pr`: one step
    line per class, AP in the legend, the mean AP in the title."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 5.5))
    for k, (c, (precision, recall, ap)) in enumerate(sorted(curves.items())):
        ax.step([0, *recall.tolist()], [1, *precision.tolist()], where="post", lw=2, color=PALETTE[k % len(PALETTE)],
                label=f"{c}: AP {ap:.2f}")
    mean_ap = float(np.mean([ap for _, _, ap in curves.values()]))
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title=f"{title} (mAP {mean_ap:.3f})")
    ax.legend(ncol=2, fontsize=font_size() - 5, loc="lower left", title="digit")
    return ax


def plot_shared_cells(image: Tensor, boxes: Tensor, labels: Tensor, stride: float, ax=None, title: str | None = None):
    """One canvas (1, S, S) on its grid of ``stride``-pixel cells, with its gt boxes (K, 4) and labels (K,)
    (padded with -1): each box's centre as a dot, and in red the boxes whose centres share a cell, with that
    cell shaded: a detector with one output per cell can report only one of them."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    side = image.shape[-1]
    ax.imshow(image2d(image), cmap="gray", vmin=0, vmax=1)
    for k in range(1, math.ceil(side / stride)):
        ax.axvline(k * stride - 0.5, color="#BBBBBB", lw=1)
        ax.axhline(k * stride - 0.5, color="#BBBBBB", lw=1)
    shared = shared_cells(boxes[None].cpu(), labels[None].cpu(), stride)[0]
    for (x1, y1, x2, y2), label, bad in zip(boxes.cpu().tolist(), labels.cpu().tolist(), shared.tolist()):
        if label < 0:
            continue
        color = WRONG_COLOR if bad else GT_COLOR
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        if bad:
            col, row = math.floor(cx / stride), math.floor(cy / stride)
            ax.add_patch(Rectangle((col * stride - 0.5, row * stride - 0.5), stride, stride, color=WRONG_COLOR,
                                   alpha=0.25))
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, color=color, lw=2.5))
        ax.plot(cx - 0.5, cy - 0.5, "o", color=color, ms=7)
    ax.set_title(title or f"stride {stride:g}: {int(shared.sum())} digits share a cell", fontsize=font_size() - 4)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def plot_anchor_fit(gt_boxes: Tensor, best_iou: Tensor, high: float = 0.7, low: float = 0.3, ax=None):
    """How well the anchors fit each digit: best IoU of any anchor (G,) against the digit's size
    sqrt(area) of its gt box (G, 4), with the matching thresholds as lines."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    gt_boxes, best_iou = gt_boxes.float().cpu(), best_iou.float().cpu()
    side = ((gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1])).sqrt()
    ax.scatter(side, best_iou, s=12, alpha=0.5, color=GT_COLOR)
    for level, name in ((high, "object above"), (low, "background below")):
        ax.axhline(level, color="gray", ls="--")
        ax.text(float(side.min()) if len(side) else 0, level + 0.01, name, color="gray", fontsize=font_size() - 4)
    ax.set(xlabel="digit size: sqrt(box area) (px)", ylabel="best IoU of any anchor", ylim=(0, 1),
           title="How well the anchors fit each test digit")
    return ax


def plot_detection_history(history, chance: dict | None = None):
    """Three panels of a detector's training (a ``fit`` history with the terms of ``detection_loss`` and the
    test scores of ``detection_scores``): the loss terms per step (smoothed, log scale), the test scores after
    each epoch (``chance``: the untrained detector's, dashed), the object anchors per canvas."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    for term in ("objectness", "class", "box"):
        axes[0].plot(smooth(history.step_values(term)), lw=2.5, label=term)
    axes[0].set(xlabel="step", ylabel="loss (smoothed)", yscale="log", title="The three loss terms")
    axes[0].legend()
    epochs = range(1, len(history.epochs) + 1)
    for name in ("mAP@0.5", "proposal AP"):
        axes[1].plot(epochs, history.epoch_values(name), "o-", lw=2.5, label=name)
    if chance is not None:
        axes[1].axhline(chance["mAP@0.5"], color="gray", ls="--", label="untrained mAP")
    axes[1].set(xlabel="epoch", ylabel="score on the test canvases", ylim=(0, 1), title="Test scores per epoch")
    axes[1].legend()
    axes[2].plot(smooth(history.step_values("positives")), lw=2.5, color=OBJECT_COLOR)
    axes[2].set(xlabel="step", ylabel="object anchors per canvas", ylim=(0, None), title="Positives per canvas")
    fig.tight_layout()
    return fig
