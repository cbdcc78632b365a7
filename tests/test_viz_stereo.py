"""Lesson 09's figures and the cost explorer: controls, clicks and the readout follow the pixel."""
import math

import numpy as np
import torch

from course_lib.stereo import make_stereo_pairs, ncc_cost_volume, sad_cost_volume, sample_patch_pairs
from course_lib.viz.stereo import (cost_curves, cost_explorer, plot_cost_curves_static, plot_disparity_maps,
                                   show_patch_triples, show_stereo_pairs)


class FakeClick:
    def __init__(self, x, y):
        self.xs, self.ys = [x], [y]


def _setup():
    p = make_stereo_pairs(2, (24, 40), 8, seed=0)
    costs = {"SAD": sad_cost_volume(p.left, p.right, 8), "NCC": ncc_cost_volume(p.left, p.right, 8)}
    return p, costs


def test_cost_curves_are_rescaled_and_gap_where_outside():
    p, costs = _setup()
    curves = cost_curves(costs, 0, 5, 3)                                  # x = 3: d = 4 ... 7 fall outside
    for c in curves.values():
        assert np.isnan(c[4:]).all() and np.nanmin(c) == 0 and np.nanmax(c) == 1
    flat = cost_curves({"flat": torch.ones(1, 4, 2, 2)}, 0, 0, 1)["flat"]
    assert (flat == 0).all()


def test_cost_explorer_sliders_and_click_move_the_pixel():
    p, costs = _setup()
    widget = cost_explorer(p.left, p.right, costs, p.disparity, pair=0, pixel=(10, 20))
    controls, fig = widget.children
    pick, row, col, readout = controls.children
    true = p.disparity[0, 10, 20].item()
    assert "y 10, x 20" in readout.value and f"true d = {true:g}" in readout.value
    assert list(fig.data[3].x) == [20 - true]                             # the true match in the right view
    d_sad = int(np.nanargmin(cost_curves(costs, 0, 10, 20)["SAD"]))
    assert list(fig.data[4].x) == [20 - d_sad]                            # SAD's WTA match
    before = readout.value
    col.value = 30
    assert "x 30" in readout.value and readout.value != before and list(fig.data[2].x) == [30]
    fig.data[0]._click_callbacks[0](fig.data[0], FakeClick(7, 4), None)
    assert (row.value, col.value) == (4, 7) and "y 4, x 7" in readout.value
    pick.value = 1
    assert "pair 1" in readout.value
    assert np.allclose(np.asarray(fig.data[0].z, dtype=float), p.left[1, 0].numpy(), atol=1e-6)
    shapes = fig.layout.shapes
    assert len(shapes) == 1 and math.isclose(shapes[0].x0, p.disparity[1, 4, 7].item())


def test_cost_explorer_without_truth():
    p, costs = _setup()
    widget = cost_explorer(p.left, p.right, costs)
    readout = widget.children[0].children[-1]
    assert "true d" not in readout.value and "✓" not in readout.value


def test_static_figures_draw():
    p, costs = _setup()
    fig = plot_cost_curves_static(p.left, p.right, costs, p.disparity, 0, (10, 20))
    assert len(fig.axes) == 3 and "SAD (picks d =" in [t.get_text() for t in fig.axes[2].get_legend().get_texts()][1]
    fig = show_stereo_pairs(p.left, p.right, p.disparity, p.occluded, p.textureless, n=2, max_disparity=8)
    assert len(fig.axes) == 2 * 4 + 2                                     # 4 panels per pair and 2 colour bars
    left, pos, neg = sample_patch_pairs(p.left, p.right, p.disparity, p.visible, 5, seed=0)
    assert len(show_patch_triples(left, pos, neg, n=5).axes) == 15
    maps = {"SAD": costs["SAD"].argmin(1), "truth + 2": p.disparity + 2}
    fig = plot_disparity_maps(maps, p.disparity, pair=1, mask=p.visible, max_disparity=8)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "truth" and titles[2] == "truth + 2: 1.00 wrong"
    import matplotlib.pyplot as plt
    plt.close("all")
