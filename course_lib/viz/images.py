"""Grids of images and of image pairs (static matplotlib figures)."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor

from .style import PALETTE, font_size, image2d

__all__ = ["show_images", "show_pairs", "show_retrieval"]



def show_images(images: Tensor, titles: Sequence | None = None, ncols: int = 10, title: str | None = None,
                size: float = 1.3):
    """A grid of (N, 1, H, W) images with an optional caption under each."""
    import matplotlib.pyplot as plt

    n = len(images)
    if n == 0:
        raise ValueError("no images to show")
    if titles is not None and len(titles) != n:
        raise ValueError(f"{n} images but {len(titles)} titles")
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, min(ncols, n), figsize=(size * min(ncols, n), size * 1.15 * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(image2d(images[k]), cmap="gray_r", vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(str(titles[k]), fontsize=font_size() - 2)
    if title:
        fig.suptitle(title, fontsize=font_size() + 2)
    fig.tight_layout()
    return fig


def show_pairs(first: Tensor, second: Tensor, same: Tensor, distances: Tensor | None = None,
               threshold: float | None = None, title: str | None = None):
    """Pairs stacked in columns: the top image over the bottom one, framed green for a same-class pair
    and orange for a different-class pair. With ``distances`` and ``threshold`` each column also shows
    d and the verdict "same if d <= threshold", with a tick when the verdict is right."""
    import matplotlib.pyplot as plt

    n = len(first)
    if len(second) != n or len(same) != n or (distances is not None and len(distances) != n):
        raise ValueError("first, second, same (and distances) need one entry per pair")
    fig, axes = plt.subplots(2, n, figsize=(1.5 * n, 3.6), squeeze=False)
    for k in range(n):
        colour = PALETTE[2] if bool(same[k]) else PALETTE[3]
        for row, img in enumerate((first[k], second[k])):
            ax = axes[row, k]
            ax.imshow(image2d(img), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set(color=colour, linewidth=4)
        caption = "same" if bool(same[k]) else "different"
        if distances is not None:
            d = float(distances[k])
            caption = f"d = {d:.2f}"
            if threshold is not None:
                says_same = d <= threshold
                caption += f"\n{'same' if says_same else 'diff.'} {'✓' if says_same == bool(same[k]) else '✗'}"
        axes[1, k].set_xlabel(caption, fontsize=font_size() - 3)
    if title:
        fig.suptitle(title + "  (green frame: same class, orange: different)", fontsize=font_size())
    fig.tight_layout()
    return fig


def show_retrieval(query_images: Tensor, query_labels: Tensor, gallery_images: Tensor, gallery_labels: Tensor,
                   neighbours: Tensor, title: str | None = None):
    """One row per query: the query, then its k nearest gallery images, framed green when they share
    the query's label and orange otherwise. neighbours: (Q, k) gallery indices, nearest first."""
    import matplotlib.pyplot as plt

    q, k = neighbours.shape
    if len(query_images) != q or len(query_labels) != q:
        raise ValueError(f"neighbours has {q} rows but there are {len(query_images)} query images")
    fig, axes = plt.subplots(q, k + 1, figsize=(1.25 * (k + 1), 1.35 * q), squeeze=False)
    for r in range(q):
        axes[r, 0].imshow(image2d(query_images[r]), cmap="gray_r", vmin=0, vmax=1)
        axes[r, 0].set_ylabel(f"query {int(query_labels[r])}", fontsize=font_size() - 4)
        for c in range(k):
            j = int(neighbours[r, c])
            ax = axes[r, c + 1]
            ax.imshow(image2d(gallery_images[j]), cmap="gray_r", vmin=0, vmax=1)
            hit = int(gallery_labels[j]) == int(query_labels[r])
            for spine in ax.spines.values():
                spine.set(color=PALETTE[2] if hit else PALETTE[3], linewidth=4)
            if r == 0:
                ax.set_title(f"#{c + 1}", fontsize=font_size() - 4)
        for ax in axes[r]:
            ax.set_xticks([]), ax.set_yticks([])
    if title:
        fig.suptitle(title + "  (green: same digit as the query, orange: another digit)", fontsize=font_size() - 2)
    fig.tight_layout()
    return fig
