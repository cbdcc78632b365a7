import numpy as np
import pytest
import torch

from course_lib.core import History
from course_lib.detection import make_anchors
from course_lib.viz import (
    contrastive_curves,
    contrastive_loss_explorer,
    embedding_explorer,
    image_png,
    plot_convergence,
    plot_dimension_sweep,
    plot_history,
    plot_identification,
    plot_roc,
    plot_target_logits,
    project_2d,
    smooth,
)


@pytest.fixture
def history():
    g = torch.Generator().manual_seed(0)
    h = History(snapshots=[torch.randn(30, 2, generator=g) for _ in range(3)], snapshot_epochs=[0, 1, 2])
    h.steps = [{"epoch": 1 + i // 5, "step": i + 1, "loss": 1.0 / (i + 1)} for i in range(10)]
    h.epochs = [{"epoch": 1, "loss": 0.5, "seconds": 1.0, "p@1": 0.6}, {"epoch": 2, "loss": 0.1, "seconds": 1.0, "p@1": 0.9}]
    return h


def parts(widget):
    _, body, controls = widget.children
    fig, side = body.children
    return fig, side.children[0], side.children[1], controls.children[1]


class FakePoints:
    def __init__(self, trace_index, point_inds):
        self.trace_index, self.point_inds = trace_index, point_inds


def test_explorer_traces_slider_and_hover(history):
    labels = torch.arange(30) % 3
    images = torch.rand(30, 1, 28, 28)
    fig, picture, caption, slider = parts(embedding_explorer(history, labels, images))
    assert [t.name for t in fig.data] == ["0", "1", "2"]
    assert list(slider.options) == [0, 1, 2] and slider.value == 2
    np.testing.assert_allclose(fig.data[1].x, history.snapshots[2][labels == 1, 0].numpy(), rtol=1e-6)
    slider.value = 0                                                   # replay epoch 0
    np.testing.assert_allclose(fig.data[1].y, history.snapshots[0][labels == 1, 1].numpy(), rtol=1e-6)
    assert "epoch 0" in fig.layout.title.text
    fig.data[2]._dispatch_on_hover(FakePoints(2, [1]), None)           # the second point of class 2 is point 5
    assert "point 5" in caption.value and picture.value == image_png(images[5])


def test_explorer_for_one_snapshot_and_bad_labels():
    x = torch.randn(20, 2)
    widget = embedding_explorer(x, torch.zeros(20, dtype=torch.long))
    assert len(widget.children[2].children) == 0                       # nothing to replay: no slider
    with pytest.raises(ValueError, match="one entry per point"):
        embedding_explorer(x, torch.zeros(19, dtype=torch.long))
    with pytest.raises(ValueError, match="no embedding snapshots"):
        embedding_explorer(History(), torch.zeros(0))


def test_project_2d():
    x = torch.randn(40, 5)
    assert project_2d(x[:, :2]).shape == (40, 2)
    assert np.array_equal(project_2d(x[:, :1])[:, 1], np.zeros(40))
    pca = project_2d(x, method="pca")
    assert pca.shape == (40, 2)
    np.testing.assert_allclose(pca.mean(0), 0, atol=1e-5)
    with pytest.raises(ValueError, match="'umap' or 'pca'"):
        project_2d(x, method="tsne")


def test_plotly_history_and_roc(history):
    fig = plot_history(history)
    assert [t.name for t in fig.data] == ["loss per step", "loss, smoothed", "p@1"]
    assert list(fig.data[2].x) == [5, 10]                              # metrics sit at the end of each epoch
    roc = plot_roc([0, 0.5, 1], [0, 0.9, 1], [-np.inf, 0.3, 0.8], chosen=0.5, auc=0.7)
    assert roc.data[-1].x[0] == 0.5 and "0.700" in roc.layout.title.text
    with pytest.raises(ValueError, match="no steps"):
        plot_history(History())


def test_smooth_is_bias_corrected():
    np.testing.assert_allclose(smooth([2.0, 2.0, 2.0]), [2.0, 2.0, 2.0])


def test_contrastive_curves_and_widget():
    d, pos, neg = contrastive_curves(margin=1.0)
    np.testing.assert_allclose(pos, 0.5 * d ** 2)
    np.testing.assert_allclose(neg, 0.5 * np.clip(1.0 - d, 0, None) ** 2)
    slider, fig, note = contrastive_loss_explorer(margin=1.0).children
    slider.value = 2.0
    np.testing.assert_allclose(fig.data[1].y, 0.5 * np.clip(2.0 - d, 0, None) ** 2)
    assert fig.layout.shapes[0].x0 == 2.0 and "2.00" in note.value


def test_image_png_rejects_batches():
    assert image_png(torch.rand(1, 28, 28))[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        image_png(torch.rand(2, 1, 28, 28))


def test_show_images_and_pairs():
    from course_lib.viz import show_images, show_pairs
    imgs = torch.rand(5, 1, 28, 28)
    fig = show_images(imgs, titles=list("abcde"), ncols=3)
    assert len([a for a in fig.axes if a.images]) == 5
    fig = show_pairs(imgs[:3], imgs[2:], torch.tensor([True, False, True]), torch.tensor([0.1, 0.2, 2.0]), threshold=0.5)
    labels = [a.get_xlabel() for a in fig.axes if a.get_xlabel()]
    assert labels == ["d = 0.10\nsame ✓", "d = 0.20\nsame ✗", "d = 2.00\ndiff. ✗"]
    with pytest.raises(ValueError, match="one entry per pair"):
        show_pairs(imgs[:3], imgs[:2], torch.ones(3))
    with pytest.raises(ValueError, match="5 images but 2 titles"):
        show_images(imgs, titles=["a", "b"])


def test_umap_projection_of_snapshots_is_aligned_and_seeded():
    from course_lib.viz.embeddings import _project_all
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 8, generator=g) * 5
    labels = torch.arange(60) % 3
    x = centres[labels] + torch.randn(60, 8, generator=g) * 0.3
    first = project_2d(x, n_epochs=30, seed=0)
    assert first.shape == (60, 2) and np.isfinite(first).all()
    np.testing.assert_allclose(project_2d(x, n_epochs=30, seed=0), first)        # seeded: same picture
    # The next snapshot starts from the previous layout, so a small change moves points only a little.
    a, b = _project_all([x.numpy(), (x + 0.01).numpy()], "umap", 30, 0)
    spread = np.linalg.norm(a - a.mean(0), axis=1).mean()
    assert np.linalg.norm(a - b, axis=1).mean() < 0.5 * spread
    # clusters stay clusters: each point's nearest neighbour in 2-D has its label
    d = np.linalg.norm(first[:, None] - first[None], axis=-1) + np.eye(60) * 1e9
    assert (labels.numpy()[d.argmin(1)] == labels.numpy()).mean() > 0.95


def test_difficulty_explorer():
    from course_lib.similarity import pairwise_distances
    from course_lib.viz import anchor_view, difficulty_explorer
    g = torch.Generator().manual_seed(0)
    e, y = torch.randn(24, 4, generator=g), torch.arange(24) % 4
    w = difficulty_explorer(e, y, torch.rand(24, 1, 28, 28), margin=0.3, anchor=0)
    anchor_box, positive_box, margin_box = w.children[0].children
    fig = w.children[1].children[0]
    d = pairwise_distances(e)
    for anchor, margin in ((0, 0.3), (5, 1.0)):
        anchor_box.value, margin_box.value = anchor, margin
        v = anchor_view(e, y, anchor)
        assert positive_box.value == v["positive"] == int(torch.where(y == y[anchor], d[anchor], -1).argmax())
        negatives = [i for i in range(24) if y[i] != y[anchor]]
        hard = {i for i in negatives if d[anchor, i] < v["d_ap"]}
        semi = {i for i in negatives if v["d_ap"] <= d[anchor, i] < v["d_ap"] + margin}
        assert set(fig.data[1].customdata) == hard and set(fig.data[2].customdata) == semi
        assert len(fig.data[0].x) == 5 and sum(len(t.x) for t in fig.data[1:]) == 18
    with pytest.raises(ValueError, match="not a positive"):
        anchor_view(e, y, 0, positive=1)
    with pytest.raises(ValueError, match="0 positives"):
        anchor_view(e, torch.arange(24), 0)


def test_busiest_anchor_is_the_one_with_most_non_easy_negatives():
    from course_lib.viz import anchor_view, busiest_anchor, difficulty_explorer
    g = torch.Generator().manual_seed(1)
    e, y = torch.randn(24, 4, generator=g), torch.arange(24) % 4
    best = busiest_anchor(e, y, margin=0.3)
    busy = [sum(anchor_view(e, y, a)["d"][n] < anchor_view(e, y, a)["d_ap"] + 0.3 for n in anchor_view(e, y, a)["neg"])
            for a in range(24)]
    assert busy[best] == max(busy) and best == busy.index(max(busy))
    assert difficulty_explorer(e, y, margin=0.3).children[0].children[0].value == best
    with pytest.raises(ValueError, match="P x K"):
        busiest_anchor(e, torch.arange(24), 0.3)


def test_triplet_landscape_and_widget():
    from course_lib.viz import loss_landscapes, triplet_margin_explorer
    d, con, tri = loss_landscapes(margin=0.5, n=5)                  # d = 0, 0.5, 1, 1.5, 2
    ap, an = np.meshgrid(d, d)                                       # columns: d(a,p), rows: d(a,n)
    np.testing.assert_allclose(tri, np.clip(ap - an + 0.5, 0, None))
    np.testing.assert_allclose(con, 0.5 * ap ** 2 + 0.5 * np.clip(0.5 - an, 0, None) ** 2)
    slider, fig = triplet_margin_explorer(margin=0.5).children
    slider.value = 1.0
    np.testing.assert_allclose(fig.data[1].z, loss_landscapes(1.0)[2])
    assert list(fig.data[3].x) == [0.0, 1.0] and list(fig.data[3].y) == [1.0, 2.0]   # zero edge d_an = d_ap + m


def test_retrieval_grid_and_comparisons(history):
    from course_lib.viz import (
        plot_metric_comparison,
        plot_step_comparison,
        show_retrieval,
    )
    imgs, labels = torch.rand(6, 1, 28, 28), torch.tensor([0, 0, 1, 1, 2, 2])
    fig = show_retrieval(imgs[:2], labels[:2], imgs, labels, torch.tensor([[1, 2], [0, 3]]))
    assert len(fig.axes) == 6
    with pytest.raises(ValueError, match="2 rows"):
        show_retrieval(imgs[:3], labels[:3], imgs, labels, torch.tensor([[1, 2], [0, 3]]))
    comparison = plot_metric_comparison({"a": history, "b": history}, "p@1")
    assert [t.name for t in comparison.data] == ["a", "b"] and list(comparison.data[0].y) == [0.6, 0.9]
    steps = plot_step_comparison({"a": history}, "loss", weight=0.0)
    np.testing.assert_allclose(steps.data[0].y, history.step_values("loss"))
    with pytest.raises(ValueError, match="no per-step 'active'"):
        plot_step_comparison({"a": history}, "active")
    with pytest.raises(ValueError, match="no per-epoch 'MAP'"):
        plot_metric_comparison({"a": history}, "MAP")


# ----------------------------------------------------------------------------- comparisons over seeds

RESULTS = {"contrastive": [0.50, 0.56, 0.53], "triplet": [0.61, 0.66], "one seed": [0.7]}


def test_plot_comparison_bars_error_bars_seeds_and_chance():
    import statistics

    from course_lib.viz import plot_comparison
    fig = plot_comparison(RESULTS, "MAP@R", chance=0.05, baseline=("untrained", 0.12))
    bars, dots = fig.data
    assert list(bars.x) == list(RESULTS)
    np.testing.assert_allclose(bars.y, [statistics.mean(v) for v in RESULTS.values()])
    np.testing.assert_allclose(bars.error_y.array, [statistics.stdev(v) if len(v) > 1 else 0.0
                                                    for v in RESULTS.values()])
    assert list(dots.x) == [n for n, v in RESULTS.items() for _ in v]              # one marker per seed
    np.testing.assert_allclose(dots.y, [s for v in RESULTS.values() for s in v])
    lines = sorted((s.y0, s.y1) for s in fig.layout.shapes)
    assert lines == [(0.05, 0.05), (0.12, 0.12)]
    assert {a.text for a in fig.layout.annotations} == {"chance 0.050", "untrained 0.120"}
    assert not plot_comparison(RESULTS, "MAP@R").layout.shapes                     # no chance given: no line


def test_plot_comparison_zoom_writes_an_off_scale_chance_as_a_note():
    import statistics

    from course_lib.viz import plot_comparison
    fig = plot_comparison({"CNN": [11.0, 12.0], "ST-CNN": [4.0, 6.0]}, "error (%)", chance=90.0, zoom=1.5,
                          fmt="{:.0f} %")
    top = 1.5 * (11.5 + statistics.stdev([11.0, 12.0]))                             # 1.5 x the highest error bar
    assert fig.layout.yaxis.range == pytest.approx((0, top))
    assert not fig.layout.shapes                                                     # no line far above the bars
    assert [a.text for a in fig.layout.annotations] == ["chance 90 %, off scale"]
    near = plot_comparison({"a": [0.5, 0.6]}, "MAP@R", chance=0.5, zoom=1.5)          # chance in range: drawn
    assert [(s.y0, s.y1) for s in near.layout.shapes] == [(0.5, 0.5)]
    assert [a.text for a in near.layout.annotations] == ["chance 0.500"]


@pytest.mark.parametrize("results, match", [({}, "at least one"), ({"a": []}, "one per seed"),
                                            ({"a": [[0.1, 0.2]]}, "one per seed")])
def test_plot_comparison_rejects_empty_input(results, match):
    from course_lib.viz import plot_comparison
    with pytest.raises(ValueError, match=match):
        plot_comparison(results, "MAP@R")


# ----------------------------------------------------------------------------- diagrams

def drawn_images(fig):
    return [im.get_array() for ax in fig.axes for im in ax.images]


def test_siamese_and_triplet_diagrams_draw_the_given_images():
    from course_lib.viz import siamese_diagram, triplet_diagram
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 28, 28, generator=g), torch.rand(28, 56, generator=g).numpy()
    for same in (True, False):
        images = drawn_images(siamese_diagram(a, b, same=same))
        assert len(images) == 2
        np.testing.assert_array_equal(images[0], a[0].numpy())
        np.testing.assert_array_equal(images[1], b)
    triplet = [torch.rand(1, 28, 28, generator=g) for _ in range(3)]
    images = drawn_images(triplet_diagram(*triplet))
    assert len(images) == 3
    for shown, given in zip(images, triplet):
        np.testing.assert_array_equal(shown, given[0].numpy())


# ----------------------------------------------------------------------------- negative distances

def unit_batch(seed=0, classes=6, k=4, dim=8):
    g = torch.Generator().manual_seed(seed)
    e = torch.nn.functional.normalize(torch.randn(classes * k, dim, generator=g), dim=1)
    return e, torch.arange(classes).repeat_interleave(k)


def numpy_distances(e):
    x = e.double().numpy()
    return np.linalg.norm(x[:, None] - x[None], axis=-1)


def test_picked_negative_distances_match_naive_mining():
    from course_lib.viz import picked_negative_distances
    e, y = unit_batch()
    d, lab, margin = numpy_distances(e), y.tolist(), 0.2
    picked = picked_negative_distances(3 * e, y, margin=margin, generator=torch.Generator().manual_seed(0))
    assert set(picked) == {"all negatives", "batch-hard", "semi-hard", "distance-weighted"}
    b = len(lab)
    negatives = [d[i, j] for i in range(b) for j in range(b) if lab[i] != lab[j]]
    np.testing.assert_allclose(np.sort(picked["all negatives"]), np.sort(negatives), atol=1e-5)
    # batch-hard: exactly the closest negative of every anchor, in anchor order
    closest = [min(d[i, j] for j in range(b) if lab[j] != lab[i]) for i in range(b)]
    np.testing.assert_allclose(picked["batch-hard"], closest, atol=1e-5)
    # semi-hard: every triplet with d(a, p) < d(a, n) < d(a, p) + margin
    semi = [d[i, n] for i in range(b) for p in range(b) for n in range(b)
            if p != i and lab[p] == lab[i] and lab[n] != lab[i] and d[i, p] < d[i, n] < d[i, p] + margin]
    assert len(semi) > 10
    np.testing.assert_allclose(np.sort(picked["semi-hard"]), np.sort(semi), atol=1e-5)
    # distance-weighted: one negative per anchor-positive pair that has a negative below 1.4 (after the
    # 0.5 clip), and every pick is one of those negatives of the batch
    pairs = [(i, p) for i in range(b) for p in range(b) if p != i and lab[p] == lab[i]]
    usable = [(i, p) for i, p in pairs if any(max(d[i, n], 0.5) < 1.4 for n in range(b) if lab[n] != lab[i])]
    dw = picked["distance-weighted"]
    assert len(dw) == len(usable) > 0
    assert np.all(np.maximum(dw, 0.5) >= 0.5) and np.all(np.maximum(dw, 0.5) < 1.4)
    assert all(np.isclose(negatives, v, atol=1e-5).any() for v in dw)


def test_picked_negative_distances_are_seeded_and_plotted():
    from course_lib.viz import picked_negative_distances, plot_negative_distances, sphere_distance_density
    e, y = unit_batch(seed=1, dim=16)
    first = picked_negative_distances(e, y, generator=torch.Generator().manual_seed(5))
    again = picked_negative_distances(e, y, generator=torch.Generator().manual_seed(5))
    assert all(np.array_equal(first[k], again[k]) for k in first)
    fig = plot_negative_distances(e, y, generator=torch.Generator().manual_seed(5))
    hists = [t for t in fig.data if t.type == "histogram"]
    assert [h.name.split(" (")[0] for h in hists] == list(first)
    for h, values in zip(hists, first.values()):
        np.testing.assert_array_equal(h.x, values)
    curve = [t for t in fig.data if t.type == "scatter"]
    assert len(curve) == 1 and "D = 16" in curve[0].name
    np.testing.assert_allclose(curve[0].y, sphere_distance_density(16)[1])
    assert sorted(s.x0 for s in fig.layout.shapes) == [0.5, 1.4]


def test_sphere_distance_density():
    from course_lib.viz import sphere_distance_density
    for dim in (3, 8, 64):
        d, q = sphere_distance_density(dim)
        assert np.trapezoid(q, d) == pytest.approx(1.0) and np.all(q >= 0)
    d, q = sphere_distance_density(64)
    assert abs(d[q.argmax()] - np.sqrt(2)) < 0.03
    d, q = sphere_distance_density(3, n=2001)                    # on the 2-sphere, q(d) = d / 2 exactly
    np.testing.assert_allclose(q, d / 2, atol=2e-3)
    # against sampling: the mean distance of random pairs of unit vectors in R^16
    g = torch.Generator().manual_seed(0)
    u, v = (torch.nn.functional.normalize(torch.randn(20000, 16, generator=g), dim=1) for _ in range(2))
    d, q = sphere_distance_density(16)
    assert np.trapezoid(d * q, d) == pytest.approx((u - v).norm(dim=1).mean().item(), abs=0.01)


# ----------------------------------------------------------------------------- collapse

def test_plot_collapse_shares_axes_and_shows_a_collapse_as_one_point():
    from course_lib.viz import plot_collapse
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat_interleave(20)
    healthy = torch.randn(60, 8, generator=g) + 4 * torch.nn.functional.one_hot(labels, 8)
    collapsed = torch.full((60, 8), 0.37)
    fig = plot_collapse({"healthy": healthy, "collapsed": collapsed, "shrunk": 0.01 * healthy}, labels)
    axes = [fig.layout.xaxis, fig.layout.xaxis2, fig.layout.xaxis3, fig.layout.yaxis, fig.layout.yaxis2,
            fig.layout.yaxis3]
    ranges = {tuple(a.range) for a in axes}
    assert len(ranges) == 1
    lo, hi = ranges.pop()
    assert lo == -hi and hi > 0

    def panel(axis):
        traces = [t for t in fig.data if t.xaxis == axis]
        return np.concatenate([t.x for t in traces]), np.concatenate([t.y for t in traces])

    x, y = panel("x")
    assert len(x) == 60 and max(np.abs(x).max(), np.abs(y).max()) <= hi
    assert np.ptp(x) > 0.5 * hi                                 # the healthy run fills its panel
    cx, cy = panel("x2")
    assert len(cx) == 60 and np.ptp(cx) < 1e-6 and np.ptp(cy) < 1e-6   # a single point
    sx, _ = panel("x3")
    assert np.ptp(sx) < 0.05 * np.ptp(x)                        # not rescaled: a shrunk run looks small
    with pytest.raises(ValueError, match="same inputs"):
        plot_collapse({"a": healthy, "b": healthy[:10]}, labels)


class FakeClick:
    def __init__(self, x, y):
        self.xs, self.ys = [x], [y]


def test_anchor_explorer_colours_follow_the_matching_rule():
    from course_lib.detection import OBJECT, match_anchors
    from course_lib.viz.detection import anchor_explorer, anchor_summary, plot_anchors_static
    images = torch.zeros(2, 1, 64, 64)
    boxes = [torch.tensor([[4.0, 4, 20, 26], [40, 40, 46, 50]]), torch.tensor([[10.0, 30, 30, 50]])]
    widget = anchor_explorer(images, boxes, stride=8, sizes=(10, 16, 24), ratios=(1, 2))
    controls, fig = widget.children
    pick, stride, sizes, ratios, thresholds, best_rule, show_bg, choice, readout = controls.children
    anchors = make_anchors((8, 8), 8, [10, 16, 24], [1, 2])
    labels, _ = match_anchors(anchors, boxes[0])
    n_obj = int((labels == OBJECT).sum())
    assert len([v for v in fig.data[3].x if v is None]) == n_obj         # one closed outline per object anchor
    assert f"{n_obj} object" in readout.value and "2 of 2" in readout.value
    assert fig.data[1].x == () or len(fig.data[1].x) == 0                 # background hidden by default
    best_rule.value = False                                               # the small box loses its anchor
    labels, _ = match_anchors(anchors, boxes[0], allow_low_quality=False)
    assert len([v for v in fig.data[3].x if v is None]) == int((labels == OBJECT).sum())
    assert "1 of 2" in readout.value
    stride.value = 16
    assert "96 anchors" in readout.value.replace("<b>", "").replace("</b>", "")
    sizes.value = "ten"
    assert "numbers separated by commas" in readout.value
    sizes.value = "12"
    ratios.value = "1"
    assert "cell (0, 0)" in fig.data[0].customdata[0][0]
    pick.value = 1
    summary = anchor_summary(make_anchors((4, 4), 16, [12], [1]), boxes[1], allow_low_quality=False)
    assert f"{summary['counts']['object']} object" in readout.value
    ax = plot_anchors_static(images[0], boxes[0], anchors)
    assert "2/2 gt covered" in ax.get_title()


def test_anchor_explorer_click_selects_a_cell():
    from course_lib.viz.detection import anchor_explorer
    widget = anchor_explorer(torch.zeros(1, 1, 64, 64), [torch.tensor([[0.0, 0, 16, 16]])], sizes=(16,), ratios=(1,))
    controls, fig = widget.children
    readout = controls.children[-1]
    fig.data[0]._click_callbacks[0](fig.data[0], FakeClick(3, 5), None)   # pixel (x 3, y 5): cell (0, 0)
    # anchor centred on (4, 4), 16 px: [-4, -4, 12, 12], IoU 144 / 368 with the gt box, its best (tied 4 ways)
    assert "cell (0, 0)" in readout.value and "0.39 → <b>object" in readout.value and "4 object" in readout.value
    assert list(fig.data[5].x)[:5] == [-4.0, 12.0, 12.0, -4.0, -4.0]      # the selected anchor is drawn


def test_detection_viewer_threshold_and_static():
    from course_lib.viz.detection import detection_viewer, plot_detections_static, plot_pr_curves
    images = torch.zeros(2, 1, 64, 64)
    targets = [{"boxes": torch.tensor([[0.0, 0, 10, 10], [30, 30, 40, 40]]), "labels": torch.tensor([1, 2])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    preds = [{"boxes": torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60]]), "scores": torch.tensor([0.9, 0.3]),
              "labels": torch.tensor([1, 2])},
             {"boxes": torch.tensor([[5.0, 5, 9, 9]]), "scores": torch.tensor([0.6]), "labels": torch.tensor([0])}]
    widget = detection_viewer(images, preds, targets, score_threshold=0.5)
    (pick, threshold), readout, fig = widget.children[0].children, widget.children[1], widget.children[2]
    assert "1 right" in readout.value and "0 wrong" in readout.value and "1 of 2 digits missed" in readout.value
    threshold.value = 0.2
    assert "1 right" in readout.value and "1 wrong" in readout.value
    assert list(fig.data[5].text) == ["1 0.90", "2 0.30"]
    pick.value = 1
    assert "0 right" in readout.value and "1 wrong" in readout.value
    axes = plot_detections_static(images, preds, targets, score_threshold=0.2, n=2)
    assert axes[0].get_title() == "1 right, 1 wrong, 1 missed"
    from course_lib.detection import detection_pr
    curves = {c: detection_pr(preds, targets, c) for c in (1, 2)}
    ax = plot_pr_curves(curves)
    assert "mAP" in ax.get_title() and len(ax.get_lines()) == 2


def test_heatmap_viewer_marks_argmax_soft_argmax_and_truth():
    from course_lib.pose import JOINTS, render_heatmaps
    from course_lib.viz.pose import heatmap_viewer, plot_heatmaps_static, show_poses
    g = torch.Generator().manual_seed(0)
    truth = 8 + torch.rand(3, 11, 2, generator=g) * 48                  # image pixels
    maps = render_heatmaps((truth - 1.5) / 4, (16, 16), 1.0).clamp_min(1e-12).log()   # log-Gaussians: sharp softmax
    widget = heatmap_viewer(torch.rand(3, 1, 64, 64), maps, truth, joint=4)
    (pick, which), readout, fig = widget.children[0].children, widget.children[1], widget.children[2]
    assert JOINTS[4] in readout.value and "argmax</b> off by" in readout.value
    assert fig.data[3].x == (float(truth[0, 4, 0]),)                     # the truth marker
    soft_err = float(readout.value.split("soft-argmax</b> off by ")[1].split(" px")[0])
    assert soft_err < 0.3                                                # sharp Gaussian: soft-argmax finds it
    which.value = 0
    assert JOINTS[0] in readout.value and fig.data[3].x == (float(truth[0, 0, 0]),)
    pick.value = 2
    assert fig.data[6].x == (float(truth[2, 0, 0]),)
    fig2 = plot_heatmaps_static(torch.rand(1, 64, 64), maps[0], truth[0])
    assert len(fig2.axes) == 7
    fig3 = show_poses(torch.rand(3, 1, 64, 64), {"truth": truth, "guess": truth + 1}, n=3)
    assert len(fig3.axes) == 3


def test_plot_fields_draws_one_panel_per_field_with_arrows_on_the_limb():
    from course_lib.pose import render_paf
    from course_lib.viz import plot_fields
    starts, ends = torch.tensor([[10.0, 10.0], [30.0, 12.0]]), torch.tensor([[20.0, 25.0], [22.0, 30.0]])
    field = render_paf(starts[None], ends[None], (40, 40))[0]                          # (2, 40, 40)
    fig = plot_fields(torch.rand(1, 40, 40), {"truth": field, "half": field / 2}, starts, ends)
    assert [ax.get_title() for ax in fig.axes] == ["truth", "half"]
    quiver = fig.axes[0].collections[0]
    assert len(quiver.U) == int((field.norm(dim=0) > 0.05).sum()) > 0              # one arrow per pixel on a limb
    assert fig.axes[0].get_xlim() == (4.0, 36.0) and fig.axes[0].get_ylim() == (36.0, 4.0)   # zoomed, y down


def test_show_source_prints_the_lines_and_says_what_to_pass(capsys):
    from course_lib.detection import box_iou
    from course_lib.viz import show_source
    show_source(box_iou)
    out = capsys.readouterr().out
    assert out.startswith("# course_lib.detection.boxes.box_iou\ndef box_iou(") and "return" in out
    with pytest.raises(TypeError, match="Pass the function itself"):
        show_source(box_iou(torch.zeros(1, 4), torch.zeros(1, 4)))


# --- lesson 08: class vectors in the explorer, and the figures of viz/proxies.py --------------------------


def proxy_snapshots(dim, n=12, c=3, epochs=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n + c, dim, generator=g) for _ in range(epochs)]


def test_explorer_draws_2d_class_vectors_with_rays_and_moves_them_with_the_slider():
    snaps, labels = proxy_snapshots(2), torch.arange(12) % 3
    fig, _, _, slider = parts(embedding_explorer(snaps, labels, proxies=torch.tensor([0, 1, 2]),
                                                 class_names=["zero", "one", "two"]))
    assert [t.name for t in fig.data] == ["zero", "one", "two", "class directions", "class vectors (proxies)"]
    stars, rays = fig.data[-1], fig.data[-2]
    np.testing.assert_allclose(np.c_[stars.x, stars.y], snaps[-1][12:].numpy(), rtol=1e-6)
    assert list(stars.customdata) == ["zero", "one", "two"]
    np.testing.assert_allclose(fig.data[1].x, snaps[-1][:12][labels == 1, 0].numpy(), rtol=1e-6)   # points stay
    slider.value = 0
    np.testing.assert_allclose(np.c_[stars.x, stars.y], snaps[0][12:].numpy(), rtol=1e-6)
    expected_x = [v for x in snaps[0][12:, 0].tolist() for v in (0.0, x, None)]
    assert [v if v is None else pytest.approx(v, rel=1e-6) for v in rays.x] == expected_x
    assert rays.y[4] == pytest.approx(float(snaps[0][13, 1]), rel=1e-6)


def test_explorer_projects_5d_class_vectors_with_the_points():
    snaps, labels = proxy_snapshots(5), torch.arange(12) % 3
    fig, _, _, slider = parts(embedding_explorer(snaps, labels, proxies=[2, 0, 1], method="pca"))
    assert [t.name for t in fig.data] == ["0", "1", "2", "class vectors (proxies)"]      # no rays after a PCA
    stars = fig.data[-1]
    last = np.c_[stars.x, stars.y].copy()
    slider.value = 0
    first = project_2d(snaps[0], method="pca")               # epoch 0 is drawn unaligned: points and stars
    np.testing.assert_allclose(np.c_[stars.x, stars.y], first[12:], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.c_[fig.data[0].x, fig.data[0].y], first[:12][(labels == 0).numpy()],
                               rtol=1e-4, atol=1e-5)
    assert not np.allclose(last, np.c_[stars.x, stars.y])


def test_explorer_rejects_snapshots_without_the_class_vectors():
    snaps = [s[:-1] for s in proxy_snapshots(2)]             # one class vector missing
    with pytest.raises(ValueError, match="every snapshot must hold the 12 points and then the 3"):
        embedding_explorer(snaps, torch.arange(12) % 3, proxies=[0, 1, 2])


def arcface_curve(margin):
    fig = plot_target_logits(margin)
    trace = next(t for t in fig.data if t.name.startswith("cos(θ + m)"))
    return np.radians(np.asarray(trace.x)), np.asarray(trace.y)


@pytest.mark.parametrize("margin", [0.2, 0.5])
def test_plot_target_logits_draws_three_curves_and_arcface_is_monotone(margin):
    fig = plot_target_logits(margin)
    assert len(fig.data) == 3
    theta, arc = arcface_curve(margin)
    np.testing.assert_allclose(np.asarray(fig.data[0].y), np.cos(theta), atol=1e-12)
    np.testing.assert_allclose(np.asarray(fig.data[1].y), np.cos(theta) - margin, atol=1e-12)
    before = theta <= np.pi - margin
    np.testing.assert_allclose(arc[before], np.cos(theta[before] + margin), atol=1e-12)
    np.testing.assert_allclose(arc[~before], np.cos(theta[~before]) - margin * np.sin(margin), atol=1e-12)
    assert (np.diff(arc) < 0).all()                           # monotone decreasing: a larger angle never helps


def test_plot_target_logits_arcface_jumps_where_the_fallback_starts():
    """The fallback cos θ − m sin m (the authors' code) starts at −cos m − m sin m, below cos(π) = −1: one jump of
    cos m + m sin m − 1 (0.117 at m = 0.5) at θ = π − m, and |slope| <= 1 everywhere else."""
    theta, arc = arcface_curve(0.5)
    steps = np.abs(np.diff(arc))
    jump = int(steps.argmax())
    assert theta[jump] <= np.pi - 0.5 < theta[jump + 1]
    assert steps[jump] == pytest.approx(np.cos(0.5) + 0.5 * np.sin(0.5) - 1, abs=0.01)
    assert np.delete(steps, jump).max() <= 1.01 * (theta[1] - theta[0])


def test_plot_convergence_means_over_seeds_per_step_and_per_second():
    curves = {"triplet": {"curve": [[0.1, 0.2, 0.3], [0.3, 0.4, 0.5]], "epoch seconds": [[1, 1, 1], [2, 2, 2]]},
              "ArcFace": {"curve": [[0.2, 0.5, 0.6], [0.2, 0.3, 0.6]], "epoch seconds": [[3, 3, 3], [1, 1, 1]]}}
    fig = plot_convergence(curves, steps_per_epoch=10, chance=0.05)
    assert len(fig.data) == 2 * (2 + 1) * 2                    # per method and panel: 2 seeds + the mean
    means = [t for t in fig.data if t.name in curves]
    assert [t.name for t in means] == ["triplet", "triplet", "ArcFace", "ArcFace"]
    np.testing.assert_allclose(means[0].x, [10, 20, 30])
    np.testing.assert_allclose(means[0].y, [0.2, 0.3, 0.4])
    np.testing.assert_allclose(means[1].x, [1.5, 3.0, 4.5])    # the mean cumulative seconds
    np.testing.assert_allclose(means[3].x, [2.0, 4.0, 6.0])
    assert [shape.y0 for shape in fig.layout.shapes] == [0.05, 0.05]


def test_plot_identification_draws_error_rates_on_log_axes():
    fig = plot_identification([2, 5, 10], [0.8, 0.5, 1.0], [2, 10, 100], [0.75, 0.45, 0.05],
                              verification={"threshold from training": 0.9, "best threshold": 0.95})
    predicted, measured, chance = fig.data
    np.testing.assert_allclose(measured.y, [0.2, 0.5, 1e-4])          # errors; a perfect score floored at 1e-4
    np.testing.assert_allclose(predicted.y, [0.25, 0.55, 0.95])
    np.testing.assert_allclose(chance.y, [0.5, 0.9, 0.99])
    np.testing.assert_allclose([shape.y0 for shape in fig.layout.shapes], [0.1, 0.05])
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_plot_dimension_sweep_with_one_seed_and_with_several():
    fig = plot_dimension_sweep({8: [0.3], 2: [0.1], 32: [0.5]}, chance=0.02)
    mean, seeds = fig.data
    assert list(mean.x) == [2, 8, 32] and list(mean.y) == [0.1, 0.3, 0.5]
    assert list(mean.error_y.array) == [0.0, 0.0, 0.0]         # one seed: no spread (and no NaN)
    assert list(seeds.x) == [2, 8, 32] and fig.layout.shapes[0].y0 == 0.02
    fig = plot_dimension_sweep({4: [0.2, 0.4, 0.6], 16: [0.5, 0.5]}, chance=0.02)
    np.testing.assert_allclose(fig.data[0].y, [0.4, 0.5])
    np.testing.assert_allclose(fig.data[0].error_y.array, [0.2, 0.0])
    assert list(fig.data[1].x) == [4, 4, 4, 16, 16]
