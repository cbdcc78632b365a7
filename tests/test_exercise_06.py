"""Lesson 06's two core exercises, decoding box deltas and greedy NMS: a hand-written solution passes, each
named wrong version fails with its own hint, calling the library fails, and the stub falls back."""

import pytest
import torch
import torchvision

from course_lib import exercises as ex
from course_lib.detection import decode_boxes, encode_boxes, nms


# ---------------------------------------------------------------------------------------------- decode
def decode_ok(deltas, anchors):
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    cx = anchors[:, 0] + aw / 2 + deltas[:, 0] * aw
    cy = anchors[:, 1] + ah / 2 + deltas[:, 1] * ah
    w, h = aw * torch.exp(deltas[:, 2]), ah * torch.exp(deltas[:, 3])
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)


def decode_variant(exp=True, corner=False, swap=False, centre_out=False, half=0.5, sign=1.0):
    def decode(deltas, anchors):
        deltas = sign * deltas
        aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
        ax, ay = (anchors[:, 0], anchors[:, 1]) if corner else (anchors[:, 0] + aw / 2, anchors[:, 1] + ah / 2)
        sx, sy = (ah, aw) if swap else (aw, ah)
        cx, cy = ax + deltas[:, 0] * sx, ay + deltas[:, 1] * sy
        w = aw * (torch.exp(deltas[:, 2]) if exp else deltas[:, 2])
        h = ah * (torch.exp(deltas[:, 3]) if exp else deltas[:, 3])
        if centre_out:
            return torch.stack([cx, cy, w, h], dim=1)
        return torch.stack([cx - half * w, cy - half * h, cx + half * w, cy + half * h], dim=1)
    return decode


DECODE_MISTAKES = [
    (decode_variant(exp=False), "LOG-ratios"),
    (decode_variant(corner=True), "CENTRE"),
    (decode_variant(swap=True), "anchor WIDTHS"),
    (decode_variant(centre_out=True), "not (cx, cy, w, h)"),
    (decode_variant(half=1.0), "Half the width"),
    (decode_variant(sign=-1.0), "Sign"),
]


def test_a_hand_written_decode_passes_and_inverts_encode(capsys):
    assert ex.check_decode_boxes(decode_ok)
    assert "✓ decode boxes" in capsys.readouterr().out
    g = torch.Generator().manual_seed(0)
    anchors = torch.tensor([[0.0, 0, 10, 20], [5, 5, 9, 30]])
    gt = anchors + torch.rand(2, 4, generator=g)
    torch.testing.assert_close(decode_ok(encode_boxes(gt, anchors), anchors), gt)
    torch.testing.assert_close(decode_ok(torch.zeros(2, 4), anchors), decode_boxes(torch.zeros(2, 4), anchors))


@pytest.mark.parametrize("wrong, hint", DECODE_MISTAKES, ids=[h for _, h in DECODE_MISTAKES])
def test_each_wrong_decode_fails_with_its_own_hint(wrong, hint, capsys):
    assert not ex.check_decode_boxes(wrong)
    out = capsys.readouterr().out
    assert out.startswith("✗") and hint in out


def test_a_decode_without_gradients_fails(capsys):
    assert not ex.check_decode_boxes(lambda d, a: decode_ok(d.detach(), a))
    assert "gradient" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- NMS
def nms_ok(boxes, scores, iou_threshold):
    """Greedy NMS written out: a stable descending sort, then a loop over the kept boxes."""
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))       # Python's sort is stable
    area = lambda b: float((b[2] - b[0]) * (b[3] - b[1]))
    keep = []
    for i in order:
        ok = True
        for j in keep:
            w = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0])
            h = min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1])
            inter = float(max(w, 0) * max(h, 0))
            union = area(boxes[i]) + area(boxes[j]) - inter
            if union > 0 and inter / union > iou_threshold:
                ok = False
                break
        if ok:
            keep.append(i)
    return torch.tensor(keep, dtype=torch.long)


def nms_variant(ge=False, sort=True, ties_reversed=False, every_box=False, self_first=False, output="indices"):
    def run(boxes, scores, threshold):
        if not sort:
            order = list(range(len(scores)))
        elif ties_reversed:
            order = torch.sort(scores, stable=True).indices.flip(0).tolist()
        else:
            order = torch.sort(scores, descending=True, stable=True).indices.tolist()
        iou = torchvision.ops.box_iou(boxes, boxes) if len(boxes) else torch.zeros(0, 0)
        over = iou >= threshold if ge else iou > threshold
        suppressed = torch.zeros(len(boxes), dtype=torch.bool)
        keep = []
        for i in order:
            if self_first:
                suppressed |= over[i]
            was = bool(suppressed[i])
            if not was:
                keep.append(i)
            if every_box or not was:
                suppressed |= over[i]
        if output == "mask":
            mask = torch.zeros(len(boxes), dtype=torch.bool)
            mask[keep] = True
            return mask
        return torch.tensor(sorted(keep) if output == "sorted" else keep, dtype=torch.long)
    return run


NMS_MISTAKES = [
    (nms_variant(ge=True), "strictly ABOVE"),
    (nms_variant(sort=False), "highest score down"),
    (nms_variant(every_box=True), "Only a KEPT box"),
    (nms_variant(output="mask"), "not a mask"),
    (nms_variant(output="sorted"), "not sorted by index"),
    (nms_variant(self_first=True), "suppresses itself"),
    (nms_variant(ties_reversed=True), "LOWER index"),
]


def test_a_hand_written_nms_passes_and_equals_torchvision_ties_included(capsys):
    assert ex.check_nms(nms_ok)
    assert "✓ NMS" in capsys.readouterr().out
    g = torch.Generator().manual_seed(3)
    for n, threshold in ((1, 0.5), (25, 0.0), (80, 0.3), (80, 0.7)):
        xy = torch.rand(n, 2, generator=g) * 30
        boxes = torch.cat([xy, xy + 2 + torch.rand(n, 2, generator=g) * 12], 1)
        scores = (torch.rand(n, generator=g) * 3).round() / 3                    # many equal scores
        expected = torchvision.ops.nms(boxes, scores, threshold)
        assert torch.equal(nms_ok(boxes, scores, threshold), expected)
        assert torch.equal(nms(boxes, scores, threshold), expected)


@pytest.mark.parametrize("wrong, hint", NMS_MISTAKES, ids=[h for _, h in NMS_MISTAKES])
def test_each_wrong_nms_fails_with_its_own_hint(wrong, hint, capsys):
    assert not ex.check_nms(wrong)
    out = capsys.readouterr().out
    assert out.startswith("✗") and hint in out


def test_the_checkers_hand_worked_nms_cases_are_torchvisions_answers():
    """Every case with an expected answer written in the checker is what torchvision.ops.nms returns."""
    t = lambda *rows: torch.tensor(rows, dtype=torch.float32)
    cases = [
        ((t([0, 0, 4, 2], [0, 0, 2, 2]), t(0.9, 0.8), 0.5), [0, 1]),                   # IoU exactly 0.5
        ((t([0, 0, 2, 2], [2, 0, 4, 2], [1, 1, 3, 3]), t(0.9, 0.8, 0.7), 0.0), [0, 1]),  # touching, threshold 0
        ((t([0, 0, 10, 10], [30, 30, 40, 40], [1, 0, 11, 10], [60, 60, 70, 70]), t(0.5, 0.5, 0.5, 0.7), 0.5),
         [3, 0, 1]),                                                                     # ties: lower index first
        ((t([0, 0, 10, 10], [0, 0, 10, 10]), t(0.5, 0.5), 0.5), [0]),
        ((t([0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10]), t(0.9, 0.8, 0.7), 0.3), [0, 2]),
    ]
    for args, expected in cases:
        assert torchvision.ops.nms(*args).tolist() == expected


@pytest.mark.parametrize("library", [nms, torchvision.ops.nms,
                                     lambda b, s, t: torchvision.ops.batched_nms(b, s, torch.zeros_like(s, dtype=torch.long), t)])
def test_calling_torchvisions_or_course_libs_nms_fails(library, capsys):
    assert ex.check_nms(lambda boxes, scores, threshold: library(boxes, scores, threshold)) is False
    out = capsys.readouterr().out
    expected = "calls course_lib's own course_lib." if library is nms else "calls the ready-made torchvision."
    assert expected in out and "write it yourself" in out


def test_calling_course_libs_decode_fails(capsys):
    assert ex.check_decode_boxes(lambda d, a: decode_boxes(d, a)) is False
    assert "calls course_lib's own course_lib.detection.boxes.decode_boxes" in capsys.readouterr().out


@pytest.mark.parametrize("checker, fallback", [(ex.check_nms, nms), (ex.check_decode_boxes, decode_boxes)])
def test_the_stub_falls_back_to_course_lib(checker, fallback, capsys):
    def stub(*args):                                                  # what the student edition holds
        raise NotImplementedError

    assert ex.use_if_correct(stub, checker) is fallback
    out = capsys.readouterr().out
    assert "not done yet" in out and "instead" in out
