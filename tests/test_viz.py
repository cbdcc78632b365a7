import matplotlib
import numpy as np
import pytest
import torch

from course_lib.training import History
from course_lib.viz import (contrastive_curves, contrastive_loss_explorer, embedding_explorer, image_png,
                            plot_contrastive_loss_static, plot_embedding_static, plot_history, plot_history_static,
                            plot_roc, plot_roc_static, plot_snapshots_static, project_2d, smooth)


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


def test_static_figures(history):
    labels = torch.arange(30) % 3
    for fig in (plot_snapshots_static(history, labels), plot_embedding_static(history.snapshots[0], labels,
                                                                              torch.rand(30, 1, 28, 28)),
                plot_history_static(history), plot_contrastive_loss_static(),
                plot_roc_static([0, 0.5, 1], [0, 0.9, 1], [-np.inf, 0.3, 0.8], chosen=0.3, auc=0.7)):
        assert isinstance(fig, matplotlib.figure.Figure) and fig.axes


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


def test_difficulty_explorer_and_static():
    from course_lib.mining import pairwise_distances
    from course_lib.viz import anchor_view, difficulty_explorer, plot_difficulty_static
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
    assert plot_difficulty_static(e, y, anchor=0).axes


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
    from course_lib.viz import loss_landscapes, plot_triplet_vs_contrastive_static, triplet_margin_explorer
    d, con, tri = loss_landscapes(margin=0.5, n=5)                  # d = 0, 0.5, 1, 1.5, 2
    ap, an = np.meshgrid(d, d)                                       # columns: d(a,p), rows: d(a,n)
    np.testing.assert_allclose(tri, np.clip(ap - an + 0.5, 0, None))
    np.testing.assert_allclose(con, 0.5 * ap ** 2 + 0.5 * np.clip(0.5 - an, 0, None) ** 2)
    slider, fig = triplet_margin_explorer(margin=0.5).children
    slider.value = 1.0
    np.testing.assert_allclose(fig.data[1].z, loss_landscapes(1.0)[2])
    assert list(fig.data[3].x) == [0.0, 1.0] and list(fig.data[3].y) == [1.0, 2.0]   # zero edge d_an = d_ap + m
    assert plot_triplet_vs_contrastive_static().axes


def test_retrieval_grid_and_comparisons(history):
    from course_lib.viz import (plot_metric_comparison, plot_metric_comparison_static, plot_step_comparison,
                                plot_step_comparison_static, show_retrieval)
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
    assert plot_metric_comparison_static({"a": history}, "p@1").axes
    assert plot_step_comparison_static({"a": history}, "loss").axes
