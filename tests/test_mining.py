import itertools
import math

import pytest
import torch

from course_lib.similarity import (
    all_triplets,
    batch_hard_triplets,
    distance_weighted_triplets,
    label_masks,
    semi_hard_triplets,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def dist(e, i, j):
    return math.sqrt(sum((float(e[i, k]) - float(e[j, k])) ** 2 for k in range(e.shape[1])))


def naive_triplets(labels):
    y = labels.tolist()
    return {(a, p, n) for a, p, n in itertools.product(range(len(y)), repeat=3)
            if a != p and y[a] == y[p] and y[n] != y[a]}


def as_set(triplets):
    return set(zip(*(t.tolist() for t in triplets)))


def random_batch(seed, b=18, d=3, classes=4, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g).to(device), torch.randint(0, classes, (b,), generator=g).to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_all_triplets_match_triple_loop(device, seed):
    _, labels = random_batch(seed, device=device)
    triplets = all_triplets(labels)
    assert as_set(triplets) == naive_triplets(labels.cpu())
    assert len(triplets[0]) == len(naive_triplets(labels.cpu()))          # no duplicates
    assert all(t.device.type == device for t in triplets)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_hard_matches_loop(device, seed):
    e, labels = random_batch(seed, device=device)
    a, p, n = batch_hard_triplets(e, labels)
    e, y = e.cpu(), labels.cpu().tolist()
    expected = []
    for i in range(len(y)):
        pos = [j for j in range(len(y)) if j != i and y[j] == y[i]]
        neg = [j for j in range(len(y)) if y[j] != y[i]]
        if pos and neg:
            expected.append((i, max(pos, key=lambda j: dist(e, i, j)), min(neg, key=lambda j: dist(e, i, j))))
    assert list(zip(a.tolist(), p.tolist(), n.tolist())) == expected


def test_batch_hard_known_fixture():
    labels = torch.tensor([0, 0, 1, 1, 0, 2, 1, 1, 1])
    e = torch.arange(9.0)[:, None]
    a, p, n = batch_hard_triplets(e, labels)
    assert a.tolist() == [0, 1, 2, 3, 4, 6, 7, 8]
    assert p.tolist() == [4, 4, 8, 8, 0, 2, 2, 2]
    assert n.tolist() == [2, 2, 1, 4, 3, 5, 5, 5]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_semi_hard_matches_triple_loop(device, margin):
    e, labels = random_batch(3, device=device)
    got = as_set(semi_hard_triplets(e, labels, margin))
    e = e.cpu()
    expected = {(a, p, n) for a, p, n in naive_triplets(labels.cpu())
                if dist(e, a, p) < dist(e, a, n) < dist(e, a, p) + margin}
    assert got == expected and expected


def test_miners_on_batches_without_valid_triplets():
    e = torch.randn(4, 2)
    for labels in (torch.zeros(4, dtype=torch.long), torch.arange(4)):   # one class / all different
        for triplets in (all_triplets(labels), batch_hard_triplets(e, labels), semi_hard_triplets(e, labels),
                         distance_weighted_triplets(e, labels)):
            assert all(len(t) == 0 and t.dtype == torch.long for t in triplets)


def test_miners_reject_wrong_labels():
    e = torch.randn(5, 3)
    for miner in (batch_hard_triplets, semi_hard_triplets, distance_weighted_triplets):
        with pytest.raises(ValueError, match="one label per embedding"):
            miner(e, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B,\)"):
        all_triplets(torch.zeros(2, 2, dtype=torch.long))


def test_label_masks():
    pos, neg = label_masks(torch.tensor([1, 1, 2]))
    assert pos.tolist() == [[False, True, False], [True, False, False], [False, False, False]]
    assert neg.tolist() == [[False, False, True], [False, False, True], [True, True, False]]


def naive_distance_weights(e, labels, a, cutoff, nonzero_cutoff):
    """The sampling distribution over negatives of anchor a, term by term (Manmatha et al. 2017)."""
    x = torch.nn.functional.normalize(e.double(), dim=1)
    dim = x.shape[1]
    w = []
    for n in range(len(labels)):
        d = max(float((x[a] - x[n]).norm()), cutoff)
        if labels[n] == labels[a] or d >= nonzero_cutoff:
            w.append(0.0)
        else:
            q = d ** (dim - 2) * (1 - d * d / 4) ** ((dim - 3) / 2)
            w.append(1 / q)
    total = sum(w)
    return [v / total for v in w]


@pytest.mark.parametrize("device", DEVICES)
def test_distance_weighted_sampling_follows_inverse_density(device):
    g = torch.Generator().manual_seed(0)
    e = torch.randn(12, 4, generator=g)
    labels = torch.tensor([0, 0] + [1] * 10)
    expected = naive_distance_weights(e, labels, 0, 0.5, 1.4)
    gen = torch.Generator(device=device).manual_seed(1)
    counts = torch.zeros(12)
    for _ in range(400):                         # anchor 0 has one positive: one draw per call
        a, p, n = distance_weighted_triplets(e.to(device), labels.to(device), generator=gen)
        counts[n[a == 0].cpu()] += 1
    freq = (counts / counts.sum()).tolist()
    for f, w in zip(freq, expected):
        assert f == pytest.approx(w, abs=0.08)
        if w == 0:
            assert f == 0


def test_distance_weighted_spreads_negative_distances():
    """On a 32-D sphere random pairs crowd around d = sqrt(2). Batch-hard always takes the closest
    negative; distance-weighted sampling should pick negatives across a wide range of distances."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(8).repeat_interleave(16)                           # P=8 classes x K=16
    centres = torch.randn(8, 32, generator=g)
    e = torch.nn.functional.normalize(centres[labels] + 0.9 * torch.randn(128, 32, generator=g), dim=1)
    d = torch.cdist(e, e)
    a, p, n = distance_weighted_triplets(e, labels, generator=torch.Generator().manual_seed(1))
    chosen = d[a, n]
    _, _, hardest_neg = batch_hard_triplets(e, labels)                       # every anchor has one here
    uniform = d[labels[:, None] != labels[None, :]]
    uniform = uniform[uniform < 1.4]                                         # the same candidates, unweighted
    assert chosen.std() > 1.25 * uniform.std()                               # spread wider than uniform picks
    assert chosen.mean() < uniform.mean()                                    # 1/q favours the rarer close ones
    assert (n == hardest_neg[a]).float().mean() < 0.3                        # ... but not only the closest
    assert (chosen < 1.4).all() and (chosen >= 0).all()
    assert len(a) == len(torch.nonzero(label_masks(labels)[0]))              # one negative per positive pair


def test_count_triplets_matches_listing():
    from course_lib.similarity import count_triplets
    for seed in range(3):
        _, labels = random_batch(seed, b=25, classes=5)
        assert count_triplets(labels.bincount()) == len(all_triplets(labels)[0]) == len(naive_triplets(labels))
    assert count_triplets([1, 1]) == 0 and count_triplets([3]) == 0


def test_triplet_difficulty_boundaries():
    from course_lib.similarity import DIFFICULTY, triplet_difficulty
    d_ap = torch.full((5,), 1.0)
    d_an = torch.tensor([0.5, 1.0, 1.1, 1.2, 2.0])
    kinds = triplet_difficulty(d_ap, d_an, margin=0.2)
    assert [DIFFICULTY[k] for k in kinds.tolist()] == ["hard", "hard", "semi-hard", "easy", "easy"]   # a tie is hard
    # semi-hard miner agrees with the labels (strictly farther than the positive)
    e = torch.tensor([[0.0], [1.0], [1.1], [3.0], [0.5]])
    y = torch.tensor([0, 0, 1, 1, 1])
    a, p, n = semi_hard_triplets(e, y, margin=0.2)
    assert set(zip(a.tolist(), p.tolist(), n.tolist())) == {(0, 1, 2), (3, 2, 1)}
