"""Box operations against hand-worked fixtures, slow loops and torchvision's implementations."""
import math

import pytest
import torch
import torchvision
from torchvision.models.detection._utils import BoxCoder, Matcher

from course_lib.detection import (
    BACKGROUND,
    IGNORED,
    OBJECT,
    box_area,
    box_iou,
    decode_boxes,
    encode_boxes,
    make_anchors,
    match_anchors,
    nms,
)


def random_boxes(n, seed=0, size=64.0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * size / 2 + 1
    return torch.cat([xy, xy + wh], dim=1)


def iou_loop(a, b):
    out = torch.zeros(len(a), len(b))
    for i, (ax1, ay1, ax2, ay2) in enumerate(a.tolist()):
        for j, (bx1, by1, bx2, by2) in enumerate(b.tolist()):
            iw, ih = max(0.0, min(ax2, bx2) - max(ax1, bx1)), max(0.0, min(ay2, by2) - max(ay1, by1))
            union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - iw * ih
            out[i, j] = iw * ih / union if union > 0 else 0.0
    return out


def test_iou_by_hand_and_against_a_loop_and_torchvision():
    a = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]])
    b = torch.tensor([[5.0, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]])
    assert torch.allclose(torch.diag(box_iou(a, b)), torch.tensor([50 / 150, 1.0, 0.0]))
    x, y = random_boxes(30, 1), random_boxes(20, 2)
    assert torch.allclose(box_iou(x, y), iou_loop(x, y), atol=1e-6)
    assert torch.allclose(box_iou(x, y), torchvision.ops.box_iou(x, y), atol=1e-6)
    assert torch.allclose(box_area(a), torch.full((3,), 100.0))


def test_iou_edge_cases():
    line = torch.tensor([[5.0, 5, 5, 9]])                               # width 0
    assert box_iou(line, line).item() == 0.0 and box_area(line).item() == 0.0
    assert box_iou(torch.zeros(0, 4), random_boxes(3)).shape == (0, 3)
    touching = box_iou(torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([[1.0, 0, 2, 1]]))
    assert touching.item() == 0.0
    with pytest.raises(ValueError, match="x2 < x1"):
        box_iou(torch.tensor([[10.0, 0, 0, 10]]), line)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        box_iou(torch.zeros(4), line)


def nms_loop(boxes, scores, threshold):
    order = sorted(range(len(boxes)), key=lambda i: -scores[i].item())
    keep = []
    for i in order:
        if all(iou_loop(boxes[i:i + 1], boxes[k:k + 1]).item() <= threshold for k in keep):
            keep.append(i)
    return keep


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.9])
def test_nms_against_a_loop_and_torchvision(threshold):
    boxes = random_boxes(60, 3, size=40)
    scores = torch.rand(60, generator=torch.Generator().manual_seed(4))
    keep = nms(boxes, scores, threshold)
    assert keep.tolist() == nms_loop(boxes, scores, threshold)
    assert keep.tolist() == torchvision.ops.nms(boxes, scores, threshold).tolist()
    assert torch.all(scores[keep][:-1] >= scores[keep][1:])            # highest score first


def test_nms_by_hand_ties_and_the_strict_threshold():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [5, 0, 15, 10], [30, 30, 40, 40]])
    scores = torch.tensor([0.9, 0.9, 0.8, 0.1])
    assert nms(boxes, scores, 0.5).tolist() == [0, 2, 3]               # tie: the earlier box wins
    assert nms(boxes, scores, 1 / 3).tolist() == [0, 2, 3]             # IoU exactly 1/3 is not above it
    assert nms(boxes, scores, 0.3).tolist() == [0, 3]
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []
    with pytest.raises(ValueError, match="one score per box"):
        nms(boxes, scores[:3], 0.5)


def test_anchors_by_hand():
    anchors = make_anchors((2, 3), stride=8, sizes=[8], ratios=[1.0])
    assert anchors.shape == (6, 4)
    assert anchors[0].tolist() == [0.0, 0.0, 8.0, 8.0] and anchors[5].tolist() == [16.0, 8.0, 24.0, 16.0]
    tall = make_anchors((1, 1), stride=16, sizes=[8, 16], ratios=[0.5, 2.0])      # ratio = h / w
    w, h = tall[:, 2] - tall[:, 0], tall[:, 3] - tall[:, 1]
    assert torch.allclose(h / w, torch.tensor([0.5, 2.0, 0.5, 2.0]))
    assert torch.allclose(w * h, torch.tensor([64.0, 64, 256, 256]))
    assert torch.allclose((tall[:, :2] + tall[:, 2:]) / 2, torch.full((4, 2), 8.0))
    many = make_anchors((4, 5), stride=4, sizes=[4, 8], ratios=[0.5, 1, 2])
    i, j, k = 2, 3, 4                                                   # cell (2, 3), anchor 4
    assert torch.allclose((many[(i * 5 + j) * 6 + k, :2] + many[(i * 5 + j) * 6 + k, 2:]) / 2,
                          torch.tensor([(j + 0.5) * 4, (i + 0.5) * 4]))
    with pytest.raises(ValueError, match="positive"):
        make_anchors((2, 2), 8, [], [1.0])


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_encode_decode_round_trip_and_torchvision(weights):
    anchors, gt = random_boxes(40, 5), random_boxes(40, 6)
    deltas = encode_boxes(gt, anchors, weights)
    assert torch.allclose(decode_boxes(deltas, anchors, weights), gt, atol=1e-4)
    coder = BoxCoder(weights)
    assert torch.allclose(deltas, coder.encode_single(gt, anchors), atol=1e-5)
    assert torch.allclose(decode_boxes(deltas, anchors, weights), coder.decode_single(deltas, anchors), atol=1e-4)


def test_encode_by_hand_and_clipping():
    anchor = torch.tensor([[0.0, 0, 10, 20]])                           # centre (5, 10), 10 x 20
    gt = torch.tensor([[5.0, 0, 15, 40]])                               # centre (10, 20), 10 x 40
    assert torch.allclose(encode_boxes(gt, anchor), torch.tensor([[0.5, 0.5, 0.0, math.log(2)]]))
    huge = decode_boxes(torch.tensor([[0.0, 0, 50, 50]]), anchor)
    assert torch.isfinite(huge).all() and (huge[0, 2] - huge[0, 0]).item() == pytest.approx(10 * 1000 / 16, rel=1e-4)
    with pytest.raises(ValueError, match="positive area"):
        encode_boxes(torch.tensor([[1.0, 1, 1, 5]]), anchor)


def test_matching_on_a_hand_drawn_example():
    gt = torch.tensor([[0.0, 0, 10, 10], [40, 40, 44, 44]])             # a big box and a small one
    anchors = torch.tensor([[0.0, 0, 10, 10],                           # IoU 1 with gt 0: object
                            [0, 0, 10, 12],                             # IoU 0.83: object
                            [0, 0, 10, 20],                             # IoU 0.5: ignored
                            [20, 20, 30, 30],                           # IoU 0: background
                            [38, 38, 48, 48]])                          # IoU 0.16 with the small box: its best
    labels, matched = match_anchors(anchors, gt)
    assert labels.tolist() == [OBJECT, OBJECT, IGNORED, BACKGROUND, OBJECT]
    assert matched[[0, 1, 4]].tolist() == [0, 0, 1]
    labels, _ = match_anchors(anchors, gt, allow_low_quality=False)     # RPN thresholds alone: the small box is lost
    assert labels.tolist() == [OBJECT, OBJECT, IGNORED, BACKGROUND, BACKGROUND]
    labels, matched = match_anchors(anchors, torch.zeros(0, 4))
    assert labels.tolist() == [BACKGROUND] * 5 and matched.tolist() == [-1] * 5
    with pytest.raises(ValueError, match="low <= high"):
        match_anchors(anchors, gt, high=0.3, low=0.7)


@pytest.mark.parametrize("low_quality", [False, True])
def test_matching_agrees_with_torchvision_matcher(low_quality):
    anchors = make_anchors((8, 8), stride=8, sizes=[8, 16], ratios=[0.5, 1, 2])
    gt = random_boxes(5, 7, size=48)
    labels, matched = match_anchors(anchors, gt, 0.7, 0.3, low_quality)
    tv = Matcher(0.7, 0.3, allow_low_quality_matches=low_quality)(box_iou(gt, anchors))
    expected = torch.where(tv >= 0, OBJECT, torch.where(tv == -1, BACKGROUND, IGNORED))
    assert labels.tolist() == expected.tolist()
    assert matched[labels == OBJECT].tolist() == tv[tv >= 0].tolist()


def test_anchor_labels_on_an_iou_matrix():
    from course_lib.detection import anchor_labels
    iou = torch.tensor([[0.9, 0.5, 0.2, 0.0], [0.0, 0.1, 0.45, 0.3]])
    assert anchor_labels(iou).tolist() == [OBJECT, IGNORED, OBJECT, IGNORED]       # anchor 2: best of gt 1
    assert anchor_labels(iou, allow_low_quality=False).tolist() == [OBJECT, IGNORED, IGNORED, IGNORED]
    assert anchor_labels(iou, high=0.5, low=0.5).tolist() == [OBJECT, OBJECT, OBJECT, BACKGROUND]
    assert anchor_labels(torch.zeros(0, 3)).tolist() == [BACKGROUND] * 3
    assert anchor_labels(torch.zeros(1, 3)).tolist() == [BACKGROUND] * 3           # a gt that overlaps nothing
    with pytest.raises(ValueError, match="one row per gt box"):
        anchor_labels(torch.rand(5))


def test_iou_broadcasts_over_a_batch_and_checks_only_the_shape_of_padded_batches():
    a = torch.stack([random_boxes(5, seed=s) for s in range(3)])                   # (3, 5, 4)
    b = random_boxes(7, seed=9)
    batched = box_iou(a, b)
    assert batched.shape == (3, 5, 7)
    for i in range(3):
        torch.testing.assert_close(batched[i], iou_loop(a[i], b))
    both = box_iou(a, torch.stack([b, b, b]))                                       # (3, 5, 4) with (3, 7, 4)
    torch.testing.assert_close(both, batched)
    padded = torch.cat([a, torch.full((3, 1, 4), -1.0)], dim=1)                     # a padding slot is no box
    assert box_iou(padded, b).shape == (3, 6, 7)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        box_iou(torch.rand(3, 5, 3), b)


def test_anchor_labels_of_a_batch_equal_each_image_alone_and_padding_counts_as_no_box():
    from course_lib.detection import anchor_labels
    g = torch.Generator().manual_seed(3)
    iou = torch.rand(4, 3, 10, generator=g)                                         # 4 images, 3 gt slots, 10 anchors
    iou[1, 2] = -1.0                                                                # image 1: slot 2 is padding
    iou[3] = -1.0                                                                   # image 3: no box at all
    for rule in (True, False):
        batched = anchor_labels(iou, 0.7, 0.3, rule)
        assert batched.shape == (4, 10)
        for i, rows in enumerate([iou[0], iou[1, :2], iou[2], iou[3, :0]]):
            assert torch.equal(batched[i], anchor_labels(rows, 0.7, 0.3, rule))
    assert anchor_labels(torch.zeros(2, 0, 5)).tolist() == [[BACKGROUND] * 5] * 2


def test_anchor_coverage_against_a_loop_and_its_checks():
    from course_lib.detection import anchor_coverage
    boxes, anchors = random_boxes(30, seed=5), make_anchors((8, 8), 8, [10, 16, 24], [1, 2])
    got = anchor_coverage(boxes, anchors, thresholds=(0.3, 0.5, 0.7))
    iou = iou_loop(boxes, anchors)
    for t in (0.3, 0.5, 0.7):
        slow = sum(max(row) >= t for row in iou.tolist()) / len(boxes)
        assert got[t] == pytest.approx(slow)
    assert anchor_coverage(anchors[:3], anchors) == {0.5: 1.0, 0.7: 1.0}          # an anchor covers itself
    with pytest.raises(ValueError, match="no gt boxes"):
        anchor_coverage(torch.zeros(0, 4), anchors)


def own_anchors_loop(boxes, labels, anchors, **matching):
    """For each real box k: is some OBJECT anchor matched to it (match_anchors' own matched index)?"""
    out = torch.zeros(labels.shape, dtype=torch.bool)
    for b in range(len(boxes)):
        slots = [k for k in range(labels.shape[1]) if labels[b, k] >= 0]
        anchor_label, matched = match_anchors(anchors, boxes[b, slots], **matching)
        for a in range(len(anchors)):
            if anchor_label[a] == OBJECT:
                out[b, slots[int(matched[a])]] = True
    return out


@pytest.mark.parametrize("low_quality", [True, False])
def test_own_object_anchors_against_a_loop(low_quality):
    from course_lib.detection import anchor_labels, own_object_anchors
    g = torch.Generator().manual_seed(2)
    boxes = torch.stack([random_boxes(5, seed=s, size=48.0) for s in range(12)])      # (12, 5, 4)
    labels = torch.randint(-1, 10, (12, 5), generator=g)                              # -1: padding slots
    labels[0] = -1                                                                    # a canvas without digits
    boxes[1, 1] = boxes[1, 0]                                                         # two equal boxes
    anchors = make_anchors((8, 8), 8, [10, 16, 24], [1, 2])
    rule = lambda iou: anchor_labels(iou, 0.7, 0.3, allow_low_quality=low_quality)
    got = own_object_anchors(boxes, labels, anchors, match=rule)
    assert torch.equal(got, own_anchors_loop(boxes, labels, anchors, allow_low_quality=low_quality))
    assert not got[labels < 0].any() and not got[1, 1] and got[1, 0] == (labels[1, 0] >= 0)
    strict = own_object_anchors(boxes, labels, anchors, match=lambda iou: anchor_labels(iou, allow_low_quality=False))
    assert (got | strict).equal(got)                                                  # the rule only adds anchors
    mine = own_object_anchors(boxes, labels, anchors, match=rule, iou=lambda a, b: iou_loop(a, b))
    assert torch.equal(mine, got)
    with pytest.raises(ValueError, match=r"\(B, K, 4\)"):
        own_object_anchors(boxes[0], labels[0], anchors)
