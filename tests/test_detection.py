"""The canvases, the batched matcher and the detector's loss against the one-image box functions."""
import pytest
import torch

from course_lib.detection import (
    INK,
    OBJECT,
    TinyDetector,
    box_iou,
    detect,
    detection_loss,
    digit_canvases,
    encode_boxes,
    make_anchors,
    match_anchors,
    match_batch,
)


def fake_digits(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    d = torch.zeros(n, 1, 28, 28)
    d[:, :, 6:22, 9:19] = torch.rand(n, 1, 16, 10, generator=g) * 0.5 + 0.5          # a bright block of "ink"
    return d, torch.arange(n) % 10


def test_canvases_are_seeded_and_boxes_hold_the_ink():
    digits, labels = fake_digits()
    a = digit_canvases(digits, labels, 30, torch.Generator().manual_seed(1), max_digits=4)
    b = digit_canvases(digits, labels, 30, torch.Generator().manual_seed(1), max_digits=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.boxes, b.boxes)
    assert a.images.shape == (30, 1, 64, 64) and a.boxes.shape == (30, 4, 4)
    counts = (a.labels >= 0).sum(1)
    assert counts.min() >= 1 and counts.max() <= 4
    for i in range(30):
        t = a.targets(i)
        inside = torch.zeros(64, 64, dtype=torch.bool)
        for x1, y1, x2, y2 in t["boxes"].long().tolist():
            assert 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 64
            inside[y1:y2, x1:x2] = True
        assert not (a.images[i, 0][~inside] > INK).any()                  # no ink outside the boxes
        if len(t["boxes"]) > 1:
            iou = box_iou(t["boxes"], t["boxes"])
            assert (iou - torch.eye(len(iou))).abs().max() == 0          # quadrants: boxes never overlap
    assert set(a.labels[a.labels >= 0].tolist()) <= set(range(10))
    with pytest.raises(ValueError, match="quadrant"):
        digit_canvases(digits, labels, 2, torch.Generator(), canvas=40)


@pytest.mark.parametrize("low_quality", [False, True])
def test_batched_matching_equals_one_image_matching(low_quality):
    digits, labels = fake_digits()
    c = digit_canvases(digits, labels, 12, torch.Generator().manual_seed(2))
    anchors = make_anchors((8, 8), 8, sizes=[12, 20], ratios=[1.0, 2.0])
    batch, matched = match_batch(anchors, c.boxes, c.labels, allow_low_quality=low_quality)
    for i in range(12):
        t = c.targets(i)
        one, slot = match_anchors(anchors, t["boxes"], allow_low_quality=low_quality)
        assert batch[i].tolist() == one.tolist()
        pos = one == OBJECT
        assert torch.equal(c.boxes[i][matched[i][pos]], t["boxes"][slot[pos]])


def test_loss_terms_and_detection_shapes():
    torch.manual_seed(0)
    digits, labels = fake_digits()
    c = digit_canvases(digits, labels, 8, torch.Generator().manual_seed(3))
    anchors = make_anchors((8, 8), 8, sizes=[12, 20], ratios=[1.0, 2.0])
    model = TinyDetector(anchors_per_cell=4)
    out = model(c.images)
    assert out.shape == (8, 8 * 8 * 4, 15)
    loss, stats = detection_loss(out, anchors, c.boxes, c.labels)
    loss.backward()
    assert torch.isfinite(loss) and stats["positives"] > 0
    assert all(p.grad is not None for p in model.parameters())
    # a perfect box prediction has zero box loss
    labels_b, matched = match_batch(anchors, c.boxes, c.labels)
    perfect = out.detach().clone()
    gt = torch.gather(c.boxes, 1, matched[..., None].expand(-1, -1, 4))
    pos = labels_b == OBJECT
    perfect[..., 1:5][pos] = encode_boxes(gt[pos], anchors.expand(8, -1, -1)[pos])
    assert detection_loss(perfect, anchors, c.boxes, c.labels)[1]["box"].item() == pytest.approx(0.0, abs=1e-6)
    empty = detection_loss(out.detach(), anchors, c.boxes, torch.full_like(c.labels, -1))
    assert torch.isfinite(empty[0]) and empty[1]["positives"] == 0
    found = detect(model, c.images, anchors, score_threshold=0.0)
    assert len(found) == 8 and all(f["boxes"].shape[1] == 4 and len(f["scores"]) == len(f["labels"]) for f in found)
    assert all(torch.all(f["scores"][:-1] >= f["scores"][1:]) for f in found)


def test_crowded_canvases_can_overlap_and_keep_every_digit_box():
    from course_lib.detection import digit_canvases
    d, y = fake_digits()
    c = digit_canvases(d, y, 50, torch.Generator().manual_seed(2), max_digits=6, sizes=(16, 24), layout="anywhere")
    assert c.boxes.shape == (50, 6, 4) and (c.labels >= 0).sum(1).max() == 6
    overlaps = 0
    for i in range(50):
        b = c.targets(i)["boxes"]
        iou = box_iou(b, b) - torch.eye(len(b))
        overlaps += int((iou > 0).any())
        assert ((b[:, 2:] - b[:, :2]) > 0).all()
    assert overlaps > 10                                                # "anywhere" lets digits touch and overlap
    with pytest.raises(ValueError, match="one digit per quadrant"):
        digit_canvases(d, y, 2, torch.Generator(), max_digits=5)
    with pytest.raises(ValueError, match="layout"):
        digit_canvases(d, y, 2, torch.Generator(), layout="grid")
    with pytest.raises(ValueError, match="smallest"):
        digit_canvases(d, y, 2, torch.Generator(), sizes=(20, 10))


def test_canvas_batches_are_seeded_per_epoch_and_train():
    from course_lib.core import fit
    from course_lib.detection import CanvasBatches, detection_step
    d, y = fake_digits()
    batches = CanvasBatches(d, y, batch_size=4, steps=3, seed=5)
    batches.set_epoch(1)
    first = [b[1] for b in batches]
    batches.set_epoch(1)
    assert all(torch.equal(a, b) for a, b in zip(first, [b[1] for b in batches]))
    batches.set_epoch(2)
    assert not torch.equal(first[0], next(iter(batches))[1])
    assert len(batches) == 3
    anchors = make_anchors((8, 8), 8, [12, 20], [1, 2])
    torch.manual_seed(0)
    model = TinyDetector(4, width=8)
    history = fit(model, batches, detection_step(anchors), epochs=2, progress=False)
    assert len(history.steps) == 6
    assert {"objectness", "class", "box", "positives"} <= set(history.steps[0])
    with pytest.raises(ValueError, match="positive"):
        CanvasBatches(d, y, batch_size=0, steps=3)
    with pytest.raises(ValueError, match="layout"):
        CanvasBatches(d, y, batch_size=2, steps=3, layout="grid")


def test_shared_cells_against_a_loop_and_its_checks():
    from course_lib.detection import shared_cells
    d, y = fake_digits()
    c = digit_canvases(d, y, 40, torch.Generator().manual_seed(3), max_digits=6, sizes=(8, 20), layout="anywhere")
    for stride in (8, 16, 64 / 3):
        got = shared_cells(c.boxes, c.labels, stride)
        cell = lambda b: (int(((b[0] + b[2]) / 2) // stride), int(((b[1] + b[3]) / 2) // stride))
        for i in range(len(c)):
            for k in range(c.boxes.shape[1]):
                others = [j for j in range(c.boxes.shape[1]) if j != k and c.labels[i, j] >= 0]
                slow = c.labels[i, k] >= 0 and any(cell(c.boxes[i, j]) == cell(c.boxes[i, k]) for j in others)
                assert bool(got[i, k]) == bool(slow)
    quadrants = digit_canvases(d, y, 40, torch.Generator().manual_seed(4), max_digits=4)
    assert not shared_cells(quadrants.boxes, quadrants.labels, 16).any()      # one digit per 32-px quarter
    assert shared_cells(quadrants.boxes, quadrants.labels, 64).any()          # one cell for the whole canvas
    with pytest.raises(ValueError, match="stride"):
        shared_cells(c.boxes, c.labels, 0)
    with pytest.raises(ValueError, match=r"\(B, K, 4\)"):
        shared_cells(c.boxes[0], c.labels[0], 8)


def test_lesson_plumbing_builds_trains_and_scores():
    from course_lib.detection import detection_scores, detector_build, failure_canvases
    from course_lib.experiments import train_run
    d, y = fake_digits()
    anchors = make_anchors((8, 8), 8, [12, 20], [1, 2])
    build = detector_build(d, y, anchors, batch_size=4, steps=2, anchors_per_cell=4, allow_low_quality=False)
    model, batches, step = build(3)
    assert isinstance(model, TinyDetector) and batches.seed == 3 and len(batches) == 2
    model, history = train_run(build, 0, epochs=1)
    hard = failure_canvases(d, y, 6)
    assert set(hard) == {"small digits", "crowded digits"}
    again = failure_canvases(d, y, 6)
    assert all(torch.equal(hard[k].images, again[k].images) for k in hard)
    small = hard["small digits"].boxes[hard["small digits"].labels >= 0]
    assert (small[:, 2:] - small[:, :2]).max() <= 12
    targets = hard["crowded digits"].all_targets()
    assert len(targets) == 6 and all((t["labels"] >= 0).all() for t in targets)
    scores = detection_scores(model, hard["crowded digits"], anchors)
    assert set(scores) == {"mAP@0.5", "proposal AP"} and all(0 <= v <= 1 for v in scores.values())


def test_detect_uses_the_decode_and_nms_it_is_given():
    from course_lib.detection import decode_boxes, nms
    d, y = fake_digits()
    anchors = make_anchors((8, 8), 8, [12, 20], [1, 2])
    torch.manual_seed(0)
    model = TinyDetector(4, width=8)
    images = digit_canvases(d, y, 3, torch.Generator().manual_seed(0)).images
    calls = []
    mine = lambda b, s, t: calls.append(len(b)) or nms(b, s, t)
    base = detect(model, images, anchors, score_threshold=0.0)
    same = detect(model, images, anchors, score_threshold=0.0, decode=lambda x, a: decode_boxes(x, a), suppress=mine)
    assert len(calls) == 3
    assert all(torch.equal(a["boxes"], b["boxes"]) for a, b in zip(base, same))
    keep_all = detect(model, images, anchors, score_threshold=0.0, suppress=lambda b, s, t: torch.argsort(s, descending=True))
    assert all(len(k["boxes"]) == 20 for k in keep_all)                          # max_detections


def test_the_lessons_figures_draw():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from course_lib.core import fit
    from course_lib.detection import CanvasBatches, detection_step
    from course_lib.viz import plot_anchor_fit, plot_detection_history, plot_shared_cells
    d, y = fake_digits()
    c = digit_canvases(d, y, 2, torch.Generator().manual_seed(0), max_digits=6, layout="anywhere")
    ax = plot_shared_cells(c.images[0], c.boxes[0], c.labels[0], 16)
    assert "stride 16" in ax.get_title()
    anchors = make_anchors((8, 8), 8, [12, 20], [1, 2])
    gt = c.boxes[c.labels >= 0]
    ax = plot_anchor_fit(gt, box_iou(gt, anchors).max(1).values)
    assert len(ax.collections[0].get_offsets()) == len(gt)
    history = fit(TinyDetector(4, width=8), CanvasBatches(d, y, 4, 2), detection_step(anchors), epochs=1,
                  evaluate=lambda m: {"mAP@0.5": 0.1, "proposal AP": 0.2}, progress=False)
    fig = plot_detection_history(history, {"mAP@0.5": 0.0})
    assert len(fig.axes) == 3
    plt.close("all")


def test_missed_fraction_against_a_loop():
    from course_lib.detection import missed_fraction
    g = torch.Generator().manual_seed(4)
    targets, predictions = [], []
    for n_gt, n_det in ((3, 4), (0, 2), (2, 0), (4, 6)):
        xy = torch.rand(n_gt, 2, generator=g) * 40
        gt = torch.cat([xy, xy + 10], 1)
        targets.append({"boxes": gt, "labels": torch.randint(0, 3, (n_gt,), generator=g)})
        pick = torch.randint(0, max(n_gt, 1), (n_det,), generator=g)
        boxes = (gt[pick] if n_gt else torch.zeros(n_det, 4)) + torch.rand(n_det, 4, generator=g) * 4
        predictions.append({"boxes": boxes, "scores": torch.rand(n_det, generator=g),
                            "labels": torch.randint(0, 3, (n_det,), generator=g)})
    missed = 0
    for p, t in zip(predictions, targets):                       # VOC rule written out, highest score first
        used = [False] * len(t["boxes"])
        for k in sorted(range(len(p["scores"])), key=lambda k: -float(p["scores"][k])):
            ious = [(float(box_iou(p["boxes"][k:k + 1], t["boxes"][j:j + 1])), j) for j in range(len(used))
                    if not used[j] and t["labels"][j] == p["labels"][k]]
            if ious and max(ious)[0] >= 0.5:
                used[max(ious, key=lambda v: (v[0], -v[1]))[1]] = True
        missed += used.count(False)
    assert missed_fraction(predictions, targets) == pytest.approx(missed / 9)
    assert 0 < missed < 9
    with pytest.raises(ValueError, match="no gt boxes"):
        missed_fraction(predictions[1:2], targets[1:2])
