import math

import pytest
import torch

from course_lib.similarity import best_threshold, map_at_r, precision_at_1, recall_at_k, roc_auc, verification_roc


def ranked_labels(q, labels, ref, ref_labels, skip_self):
    """Neighbours of every query, nearest first, by sorting plain Python lists."""
    out = []
    for i in range(len(q)):
        cands = [(float((q[i] - ref[j]).norm()), j) for j in range(len(ref)) if not (skip_self and i == j)]
        out.append([int(ref_labels[j]) for _, j in sorted(cands)])
    return out


def naive_metrics(q, labels, ref=None, ref_labels=None, k=3):
    skip = ref is None
    ref, ref_labels = (q, labels) if skip else (ref, ref_labels)
    ranks = ranked_labels(q, labels, ref, ref_labels, skip)
    p1 = sum(r[0] == int(l) for r, l in zip(ranks, labels)) / len(q)
    rk = sum(int(l) in r[:k] for r, l in zip(ranks, labels)) / len(q)
    aps = []
    for r, l in zip(ranks, labels):
        big_r = sum(x == int(l) for x in r)
        if big_r == 0:
            continue
        hits, ap = 0, 0.0
        for i, x in enumerate(r[:big_r], start=1):
            if x == int(l):
                hits += 1
                ap += hits / i
        aps.append(ap / big_r)
    return p1, rk, sum(aps) / len(aps)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_retrieval_metrics_match_naive_self_search(seed):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(40, 3, generator=g), torch.randint(0, 4, (40,), generator=g)
    p1, rk, mapr = naive_metrics(x, y, k=3)
    assert precision_at_1(x, y) == pytest.approx(p1)
    assert recall_at_k(x, y, 3) == pytest.approx(rk)
    assert map_at_r(x, y) == pytest.approx(mapr, rel=1e-5)


def test_retrieval_metrics_match_naive_with_reference():
    g = torch.Generator().manual_seed(3)
    q, yq = torch.randn(25, 2, generator=g), torch.randint(0, 3, (25,), generator=g)
    r, yr = torch.randn(30, 2, generator=g), torch.randint(0, 4, (30,), generator=g)
    p1, rk, mapr = naive_metrics(q, yq, r, yr, k=5)
    assert precision_at_1(q, yq, r, yr) == pytest.approx(p1)
    assert recall_at_k(q, yq, 5, r, yr) == pytest.approx(rk)
    assert map_at_r(q, yq, r, yr) == pytest.approx(mapr, rel=1e-5)


def test_map_at_r_hand_computed():
    # 1-D points: class 0 at 0, 1, 5; class 1 at 2, 3. Query at 0 (class 0, R = 2):
    # neighbours 1 (hit), 2 (miss) -> AP = (1/1) / 2 = 0.5.
    x = torch.tensor([[0.0], [1.0], [5.0], [2.0], [3.0]])
    y = torch.tensor([0, 0, 0, 1, 1])
    q = x[:1]
    assert map_at_r(q, y[:1], x[1:], y[1:]) == pytest.approx(0.5)
    assert precision_at_1(q, y[:1], x[1:], y[1:]) == 1.0


def test_perfect_clusters_score_one_and_chunks_agree(monkeypatch):
    y = torch.arange(10).repeat_interleave(30)
    x = torch.nn.functional.one_hot(y).float() * 10 + 0.01 * torch.randn(300, 10)
    expected = (precision_at_1(x, y), recall_at_k(x, y, 1), map_at_r(x, y))
    assert expected == (1.0, 1.0, pytest.approx(1.0))
    monkeypatch.setattr("course_lib.similarity.metrics._CHUNK", 7)   # many small blocks give the same answer
    assert (precision_at_1(x, y), recall_at_k(x, y, 1), map_at_r(x, y)) == (1.0, 1.0, pytest.approx(1.0))


def test_one_class_only():
    x, y = torch.randn(6, 2), torch.zeros(6, dtype=torch.long)
    assert precision_at_1(x, y) == 1.0 and map_at_r(x, y) == pytest.approx(1.0)


def test_map_at_r_skips_queries_without_positive_and_errors_when_none_has_one():
    x = torch.tensor([[0.0], [0.1], [9.0]])
    y = torch.tensor([0, 0, 1])   # the class-1 query has R = 0 and is left out
    assert map_at_r(x, y) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="MAP@R is undefined"):
        map_at_r(x, torch.tensor([0, 1, 2]))


@pytest.mark.parametrize("call, match", [
    (lambda: precision_at_1(torch.randn(4, 2), torch.zeros(5, dtype=torch.long)), "one label per embedding"),
    (lambda: precision_at_1(torch.randn(4, 2, 2), torch.zeros(4, dtype=torch.long)), r"\(B, D\)"),
    (lambda: recall_at_k(torch.randn(4, 2), torch.zeros(4, dtype=torch.long), 4), "k=4"),
    (lambda: precision_at_1(torch.randn(4, 2), torch.zeros(4)), "integer class ids"),
    (lambda: precision_at_1(torch.randn(4, 2), torch.zeros(4, dtype=torch.long), torch.randn(3, 2)), "or neither"),
    (lambda: precision_at_1(torch.randn(4, 2), torch.zeros(4, dtype=torch.long), torch.randn(3, 5),
                            torch.zeros(3, dtype=torch.long)), "D=5"),
])
def test_retrieval_rejects_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def naive_roc_point(d, same, t):
    acc = [dd <= t for dd in d.tolist()]
    pos = [a for a, s in zip(acc, same.tolist()) if s]
    neg = [a for a, s in zip(acc, same.tolist()) if not s]
    return sum(neg) / len(neg), sum(pos) / len(pos)


@pytest.mark.parametrize("seed", [0, 1])
def test_roc_matches_naive_threshold_sweep(seed):
    g = torch.Generator().manual_seed(seed)
    d = torch.randint(0, 8, (40,), generator=g).float() / 4   # many ties on purpose
    same = torch.rand(40, generator=g) > 0.5
    fpr, tpr, th = verification_roc(d, same)
    assert th[0] == -math.inf and fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
    assert len(th) == len(d.unique()) + 1
    for f, t, thr in zip(fpr[1:], tpr[1:], th[1:]):
        assert (f.item(), t.item()) == pytest.approx(naive_roc_point(d, same, thr.item()))
    # AUC equals the probability that a random positive is closer than a random negative (ties: 1/2).
    pos, neg = d[same].tolist(), d[~same].tolist()
    wins = sum((p < n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
    assert roc_auc(fpr, tpr) == pytest.approx(wins)


def test_best_threshold_matches_brute_force():
    g = torch.Generator().manual_seed(4)
    d = torch.rand(50, generator=g)
    same = (d + 0.3 * torch.randn(50, generator=g)) < 0.5
    t, acc = best_threshold(d, same)
    brute = max(sum((dd <= c) == s for dd, s in zip(d.tolist(), same.tolist())) / 50 for c in d.tolist() + [-1.0])
    assert acc == pytest.approx(brute)
    assert ((d <= t) == same).float().mean().item() == pytest.approx(acc)


def test_perfect_separation_auc_one_and_threshold_between():
    d = torch.tensor([0.1, 0.2, 0.8, 0.9])
    same = torch.tensor([True, True, False, False])
    fpr, tpr, _ = verification_roc(d, same)
    assert roc_auc(fpr, tpr) == pytest.approx(1.0)
    assert best_threshold(d, same) == (pytest.approx(0.5), 1.0)


def test_roc_needs_both_kinds_of_pairs():
    with pytest.raises(ValueError, match="both same and different"):
        verification_roc(torch.rand(4), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(B,\)"):
        verification_roc(torch.rand(4), torch.ones(3, dtype=torch.bool))


def test_nearest_neighbours_match_sorting():
    from course_lib.similarity import nearest_neighbours
    g = torch.Generator().manual_seed(5)
    q, r = torch.randn(7, 3, generator=g), torch.randn(12, 3, generator=g)
    got = nearest_neighbours(q, 4, r)
    expected = [sorted(range(12), key=lambda j: float((q[i] - r[j]).norm()))[:4] for i in range(7)]
    assert got.tolist() == expected
    own = nearest_neighbours(q, 6)
    assert all(i not in row for i, row in enumerate(own.tolist()))
    with pytest.raises(ValueError, match="k=7"):
        nearest_neighbours(q, 7)


def naive_ap_at_r(row):
    """(1/R) sum over ranks i of P(i) rel(i), by hand."""
    hits, total = 0, 0.0
    for i, hit in enumerate(row, start=1):
        if hit:
            hits += 1
            total += hits / i
    return total / len(row)


@pytest.mark.parametrize("q, r", [(1, 1), (7, 3), (20, 10)])
def test_average_precision_at_r_matches_naive_loop(q, r):
    from course_lib.similarity import average_precision_at_r
    g = torch.Generator().manual_seed(q * r)
    hits = torch.rand(q, r, generator=g) > 0.5
    got = average_precision_at_r(hits)
    assert got.shape == (q,)
    assert got.tolist() == pytest.approx([naive_ap_at_r(row) for row in hits.tolist()])


def test_average_precision_at_r_fixed_cases():
    from course_lib.similarity import average_precision_at_r
    ap = average_precision_at_r(torch.tensor([[True, False, True], [True, True, True], [False, False, False],
                                              [False, False, True]]))
    assert ap.tolist() == pytest.approx([(1 + 2 / 3) / 3, 1.0, 0.0, (1 / 3) / 3])
    assert ap[0].item() == pytest.approx(0.5556, abs=1e-4)
    assert average_precision_at_r(torch.ones(4, 6, dtype=torch.bool)).tolist() == [1.0] * 4
    assert average_precision_at_r(torch.tensor([[1, 0, 1]])).item() == pytest.approx(5 / 9)   # 0/1 ints work too


@pytest.mark.parametrize("shape", [(3,), (3, 0), (2, 3, 4)])
def test_average_precision_at_r_rejects_bad_shapes(shape):
    from course_lib.similarity import average_precision_at_r
    with pytest.raises(ValueError, match=r"\(Q, R\)"):
        average_precision_at_r(torch.ones(shape, dtype=torch.bool))


def test_map_at_r_is_the_mean_of_average_precision_at_r_of_the_hits():
    """Classes of equal size give every query the same R, so the hits of all queries form one (Q, R) tensor."""
    from course_lib.similarity import average_precision_at_r
    # 1-D points with a ranking we control: labels interleave along the line.
    x = torch.tensor([0.0, 1.0, 2.5, 4.0, 7.0, 8.0, 11.0, 15.0, 16.5])[:, None]
    y = torch.tensor([0, 1, 0, 2, 1, 2, 0, 1, 2])                                # 3 classes x 3: R = 2
    g = torch.Generator().manual_seed(0)
    for emb, lab in ((x, y), (torch.randn(40, 3, generator=g), torch.arange(8).repeat(5))):
        ranks = ranked_labels(emb, lab, emb, lab, skip_self=True)
        big_r = int((lab == lab[0]).sum()) - 1
        hits = torch.tensor([[n == int(l) for n in r[:big_r]] for r, l in zip(ranks, lab)])   # (Q, R)
        assert map_at_r(emb, lab) == pytest.approx(average_precision_at_r(hits).mean().item(), rel=1e-6)
    # the hand-checked rows of the 1-D case: the query at 0 finds 1.0 (class 1) then 2.5 (class 0)
    hits = torch.tensor([[n == int(l) for n in r[:2]] for r, l in zip(ranked_labels(x, y, x, y, True), y)])
    assert hits[0].tolist() == [False, True] and average_precision_at_r(hits[:1]).item() == pytest.approx(0.25)


# ----------------------------------------------------------------------------------------------- detection
def _img(boxes, labels, scores=None):
    d = {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), "labels": torch.tensor(labels, dtype=torch.long)}
    if scores is not None:
        d["scores"] = torch.tensor(scores, dtype=torch.float32)
    return d


def test_detection_ap_by_hand():
    from course_lib.detection import detection_map, detection_pr
    gt = [_img([[0, 0, 10, 10], [20, 20, 30, 30]], [1, 1]), _img([[0, 0, 10, 10]], [1])]
    perfect = [_img([[0, 0, 10, 10], [20, 20, 30, 30]], [1, 1], [0.9, 0.8]), _img([[0, 0, 10, 10]], [1], [0.7])]
    assert detection_pr(perfect, gt, 1)[2] == pytest.approx(1.0)
    # ranked: FP (0.95), TP, TP, duplicate of an already found box (FP), and one gt never found
    preds = [_img([[50, 50, 60, 60], [0, 0, 10, 10], [20, 20, 30, 30], [1, 0, 10, 10]], [1, 1, 1, 1],
                  [0.95, 0.9, 0.8, 0.7]), _img([], [], [])]
    precision, recall, ap = detection_pr(preds, gt, 1)
    assert precision.tolist() == pytest.approx([0, 1 / 2, 2 / 3, 2 / 4])
    assert recall.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 2 / 3])
    assert ap == pytest.approx(2 / 3 * 1 / 3 + 2 / 3 * 1 / 3)          # envelope 2/3 at recall 1/3 and 2/3
    wrong_class = [_img([[0, 0, 10, 10]], [2], [0.9]), _img([], [], [])]
    assert detection_pr(wrong_class, gt, 1)[2] == 0.0
    result = detection_map(perfect, gt, num_classes=3)
    assert result["mAP"] == pytest.approx(1.0) and set(result["AP"]) == {1}   # classes 0 and 2 have no gt
    loose = [_img([[0, 0, 10, 14]], [1], [0.9]), _img([], [], [])]        # IoU 0.71 with the first box
    assert detection_pr(loose, gt, 1, iou_threshold=0.5)[2] == pytest.approx(1 / 3)
    assert detection_pr(loose, gt, 1, iou_threshold=0.75)[2] == 0.0
    with pytest.raises(ValueError, match="undefined"):
        detection_map(perfect, [_img([], []), _img([], [])], num_classes=2)


def test_match_detections_agrees_with_detection_pr():
    """One image: the hits of match_detections are the true positives that detection_pr counts, class by class."""
    from course_lib.detection import detection_pr, match_detections
    g = torch.Generator().manual_seed(3)
    xy = torch.rand(6, 2, generator=g) * 40
    gt = _img(torch.cat([xy, xy + 12], 1).tolist(), [0, 1, 0, 2, 1, 0])
    noisy = gt["boxes"].repeat(2, 1) + torch.randn(12, 4, generator=g) * 2
    pred = {"boxes": noisy, "scores": torch.rand(12, generator=g), "labels": torch.tensor([0, 1, 0, 2, 1, 0] * 2)}
    pred["labels"][[1, 7]] = 2                                          # two detections of the wrong class
    hit, found = match_detections(pred, gt)
    for c in range(3):
        precision, recall, _ = detection_pr([pred], [gt], c)
        n_gt = int((gt["labels"] == c).sum())
        assert int(hit[pred["labels"] == c].sum()) == round(float(recall[-1]) * n_gt)
        assert int(found[gt["labels"] == c].sum()) == round(float(recall[-1]) * n_gt)
    assert hit.sum() == found.sum()
    # by hand: an exact box, a duplicate of it (lower score), a box of the wrong class
    gt = _img([[0, 0, 10, 10]], [4])
    pred = _img([[0, 0, 10, 10], [0, 0, 10, 11], [0, 0, 10, 10]], [4, 4, 3], [0.5, 0.9, 0.95])
    hit, found = match_detections(pred, gt)
    assert hit.tolist() == [False, True, False] and found.tolist() == [True]   # the 0.9 one came first
    hit, found = match_detections(_img([], [], []), gt)
    assert hit.shape == (0,) and found.tolist() == [False]
