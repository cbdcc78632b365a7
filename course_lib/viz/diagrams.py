"""Diagrams of the architectures, drawn with the student's own images: a Siamese pair and a triplet."""
from __future__ import annotations

from typing import Sequence

from .style import PALETTE, font_size, image2d

__all__ = ["siamese_diagram", "triplet_diagram"]



def _shared_net_diagram(images: Sequence, names: Sequence[str], colours: Sequence[str], loss_text: str,
                        title: str):
    """One row per input: image -> the same network f -> embedding; all rows feed one loss box."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    n = len(images)
    fig = plt.figure(figsize=(12, 1.9 * n + 0.8))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 12), ax.set_ylim(0, 1.9 * n + 0.8), ax.axis("off")
    ys = [1.9 * (n - 1 - k) + 1.1 for k in range(n)]
    # the network: one box spanning all rows, because it is one set of weights
    ax.add_patch(FancyBboxPatch((3.6, ys[-1] - 0.6), 2.6, ys[0] - ys[-1] + 1.2, boxstyle="round,pad=0.1",
                                fc="#EAF2FB", ec=PALETTE[0], lw=3))
    ax.text(4.9, (ys[0] + ys[-1]) / 2, "f\n(one CNN,\nshared weights)", ha="center", va="center",
            fontsize=font_size(), color=PALETTE[0])
    for y, img, name, colour in zip(ys, images, names, colours):
        inset = fig.add_axes([0.5 / 12, (y - 0.75) / (1.9 * n + 0.8), 2.2 / 12, 1.5 / (1.9 * n + 0.8)])
        inset.imshow(image2d(img), cmap="gray_r", vmin=0, vmax=1)
        inset.set_xticks([]), inset.set_yticks([])
        for spine in inset.spines.values():
            spine.set(color=colour, linewidth=4)
        inset.set_title(name, fontsize=font_size() - 2, color=colour)
        ax.add_patch(FancyArrowPatch((2.8, y), (3.6, y), arrowstyle="-|>", mutation_scale=22, lw=2.5, color="#444"))
        ax.add_patch(FancyArrowPatch((6.3, y), (7.2, y), arrowstyle="-|>", mutation_scale=22, lw=2.5, color="#444"))
        ax.text(7.3, y, f"f({name.split()[0]})", va="center", fontsize=font_size(), color=colour)
        ax.add_patch(FancyArrowPatch((8.5, y), (9.3, (ys[0] + ys[-1]) / 2), arrowstyle="-|>", mutation_scale=18,
                                     lw=2, color="#888"))
    ax.text(10.6, (ys[0] + ys[-1]) / 2, loss_text, ha="center", va="center", fontsize=font_size() - 1,
            bbox=dict(boxstyle="round,pad=0.5", fc="#FFF4E0", ec=PALETTE[1], lw=3))
    ax.text(6, 1.9 * n + 0.45, title, ha="center", fontsize=font_size() + 2)
    return fig


def siamese_diagram(image_a, image_b, same: bool):
    """A Siamese network: both images through the same f, the distance of the embeddings into the loss."""
    colour = PALETTE[2] if same else PALETTE[3]
    return _shared_net_diagram([image_a, image_b], ["A", "B"], [PALETTE[0], colour],
                               "d = ‖f(A) − f(B)‖\n\ncontrastive loss\n" + ("same: ½ d²" if same else "different:\n½ max(0, m − d)²"),
                               "A Siamese network: one network, applied twice")


def triplet_diagram(anchor, positive, negative):
    """A triplet network: anchor, positive and negative through the same f, into the triplet loss."""
    return _shared_net_diagram([anchor, positive, negative], ["a (anchor)", "p (positive)", "n (negative)"],
                               [PALETTE[0], PALETTE[2], PALETTE[3]],
                               "max(0, d(a,p)\n − d(a,n) + m)\n\ntriplet loss",
                               "A triplet network: one network, applied three times")
