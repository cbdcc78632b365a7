import pytest
import torch

from course_lib.similarity import contrastive_loss


def naive_contrastive(x1, x2, same, margin):
    total = 0.0
    for a, b, s in zip(x1.tolist(), x2.tolist(), same.tolist()):
        d = sum((p - q) ** 2 for p, q in zip(a, b)) ** 0.5
        total += 0.5 * d ** 2 if s else 0.5 * max(0.0, margin - d) ** 2
    return total / len(same)


@pytest.mark.parametrize("margin", [0.5, 1.0, 3.0])
def test_contrastive_matches_naive(margin):
    g = torch.Generator().manual_seed(1)
    x1, x2 = torch.randn(32, 5, generator=g), torch.randn(32, 5, generator=g)
    same = torch.rand(32, generator=g) > 0.5
    got = contrastive_loss(x1, x2, same, margin)
    assert got.item() == pytest.approx(naive_contrastive(x1, x2, same, margin), rel=1e-5)


def test_contrastive_accepts_float_flags_and_reduction_none():
    x1, x2 = torch.randn(4, 2), torch.randn(4, 2)
    flags = torch.tensor([1.0, 0.0, 1.0, 0.0])
    per_pair = contrastive_loss(x1, x2, flags, reduction="none")
    assert per_pair.shape == (4,)
    torch.testing.assert_close(per_pair.mean(), contrastive_loss(x1, x2, flags.bool()))


def test_contrastive_no_positive_pair_and_far_negatives_is_zero():
    x1 = torch.zeros(3, 2)
    x2 = torch.tensor([[5.0, 0.0], [0.0, 5.0], [3.0, 4.0]])
    assert contrastive_loss(x1, x2, torch.zeros(3, dtype=torch.bool), margin=1.0).item() == 0.0


def test_contrastive_identical_embeddings_finite():
    x = torch.ones(4, 3, requires_grad=True)
    y = torch.ones(4, 3, requires_grad=True)
    same = torch.tensor([True, False, True, False])
    loss = contrastive_loss(x, y, same, margin=1.0)
    assert loss.item() == pytest.approx(0.25)  # the two negative pairs at d = 0 cost 0.5 * m^2 each
    loss.backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()


def test_contrastive_gradient_pulls_positives_and_pushes_close_negatives():
    x1 = torch.zeros(2, 1)
    x2 = torch.tensor([[0.5], [0.5]], requires_grad=True)
    contrastive_loss(x1, x2, torch.tensor([True, False]), margin=1.0).backward()
    assert x2.grad[0, 0] > 0   # moving x2 towards 0 lowers the positive-pair loss
    assert x2.grad[1, 0] < 0   # moving x2 away from 0 lowers the negative-pair loss


@pytest.mark.parametrize("x1, x2, same, match", [
    (torch.randn(3, 2), torch.randn(4, 2), torch.ones(3, dtype=torch.bool), "same shape"),
    (torch.randn(3), torch.randn(3), torch.ones(3, dtype=torch.bool), r"\(B, D\)"),
    (torch.randn(3, 2), torch.randn(3, 2), torch.ones(4, dtype=torch.bool), "one flag per pair"),
    (torch.randn(3, 2), torch.randn(3, 2), torch.tensor([0.5, 1.0, 0.0]), "0/1"),
    (torch.randn(0, 2), torch.randn(0, 2), torch.ones(0, dtype=torch.bool), "no pairs"),
])
def test_contrastive_rejects_bad_input(x1, x2, same, match):
    with pytest.raises(ValueError, match=match):
        contrastive_loss(x1, x2, same)


def test_contrastive_rejects_bad_margin_and_reduction():
    x = torch.randn(2, 2)
    with pytest.raises(ValueError, match="margin"):
        contrastive_loss(x, x, torch.ones(2, dtype=torch.bool), margin=0)
    with pytest.raises(ValueError, match="reduction"):
        contrastive_loss(x, x, torch.ones(2, dtype=torch.bool), reduction="sum")


# ----------------------------------------------------------------------------- triplet losses
import itertools
import math

from course_lib.similarity import (
    all_triplets,
    batch_all_triplet_loss,
    batch_hard_triplet_loss,
    batch_hard_triplets,
    semi_hard_triplets,
    triplet_loss,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def d_(e, i, j, squared=False):
    s = sum((float(e[i, k]) - float(e[j, k])) ** 2 for k in range(e.shape[1]))
    return s if squared else math.sqrt(s)


def naive_valid(y):
    return [(a, p, n) for a, p, n in itertools.product(range(len(y)), repeat=3) if a != p and y[a] == y[p] and y[n] != y[a]]


def batch(seed, b=16, d=3, classes=4, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g).to(device), torch.randint(0, classes, (b,), generator=g).to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("squared", [False, True])
def test_triplet_loss_matches_loop(device, squared):
    g = torch.Generator().manual_seed(0)
    a, p, n = (torch.randn(20, 4, generator=g).to(device) for _ in range(3))
    expected = sum(max(0.0, d_(torch.stack([a[i], p[i]]), 0, 1, squared) - d_(torch.stack([a[i], n[i]]), 0, 1, squared)
                       + 0.3) for i in range(20)) / 20
    assert triplet_loss(a, p, n, margin=0.3, squared=squared).item() == pytest.approx(expected, rel=1e-5)


def test_triplet_loss_takes_miner_output_and_empty_triplets_keep_a_gradient():
    e, y = batch(1)
    e.requires_grad_(True)
    a, p, n = semi_hard_triplets(e, y, margin=0.5)
    assert triplet_loss(e[a], e[p], e[n], margin=0.5).item() > 0
    a, p, n = all_triplets(torch.zeros(16, dtype=torch.long))                 # one class: nothing valid
    loss = triplet_loss(e[a], e[p], e[n])
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(e.grad, torch.zeros_like(e))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", [0, 1])
def test_batch_all_matches_triple_loop(device, seed):
    e, y = batch(seed, device=device)
    loss, stats = batch_all_triplet_loss(e, y, margin=0.5)
    active = stats["active"]
    e, y = e.cpu(), y.cpu().tolist()
    values = [d_(e, a, p) - d_(e, a, n) + 0.5 for a, p, n in naive_valid(y)]
    positive = [v for v in values if v > 0]
    assert loss.item() == pytest.approx(sum(positive) / len(positive), rel=1e-5)
    assert active.item() == pytest.approx(len(positive) / len(values))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("soft", [False, True])
def test_batch_hard_loss_matches_loop_and_miner(device, soft):
    e, y = batch(2, device=device)
    loss, stats = batch_hard_triplet_loss(e, y, margin=0.3, soft=soft)
    e_cpu, labels = e.cpu(), y.cpu().tolist()
    terms = []
    for a in range(len(labels)):
        pos = [d_(e_cpu, a, j) for j in range(len(labels)) if j != a and labels[j] == labels[a]]
        neg = [d_(e_cpu, a, j) for j in range(len(labels)) if labels[j] != labels[a]]
        if pos and neg:
            x = max(pos) - min(neg)
            terms.append(math.log1p(math.exp(x)) if soft else max(0.0, x + 0.3))
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)
    assert stats["active"].item() == pytest.approx(sum(t > 0 for t in terms) / len(terms))
    if not soft:                                         # the loss and the miner agree
        a, p, n = batch_hard_triplets(e, y)
        assert loss.item() == pytest.approx(triplet_loss(e[a], e[p], e[n], margin=0.3).item(), rel=1e-5)


@pytest.mark.parametrize("labels", [torch.zeros(6, dtype=torch.long), torch.arange(6)])
def test_batch_losses_without_valid_triplets_are_zero_with_gradient(labels):
    e = torch.randn(6, 3, requires_grad=True)
    all_loss, stats = batch_all_triplet_loss(e, labels)
    hard, hard_stats = batch_hard_triplet_loss(e, labels)
    assert all_loss.item() == 0 and stats["active"].item() == 0 and hard.item() == 0
    assert hard_stats["active"].item() == 0 and torch.isfinite(hard)
    (all_loss + hard).backward()
    assert torch.equal(e.grad, torch.zeros_like(e))


def test_triplet_losses_identical_embeddings_finite_gradients():
    e = torch.ones(8, 4, requires_grad=True)
    y = torch.arange(8) % 2
    for soft in (False, True):
        loss, _ = batch_hard_triplet_loss(e, y, margin=0.2, soft=soft)
        assert loss.item() == pytest.approx(0.2 if not soft else math.log(2))   # collapse: loss = margin
        loss.backward()
    loss, stats = batch_all_triplet_loss(e, y)
    loss.backward()
    a, p, n = all_triplets(y)
    triplet_loss(e[a], e[p], e[n]).backward()
    assert torch.isfinite(e.grad).all() and stats["active"].item() == 1.0


@pytest.mark.parametrize("labels", [torch.arange(8) % 2, torch.zeros(8, dtype=torch.long)])
def test_batch_losses_never_read_a_tensor_value_in_python(monkeypatch, labels):
    """No `if` on a tensor and no .item(): on a GPU either would wait for the device every step."""
    e = torch.randn(8, 3)

    def refuse(*_):
        raise AssertionError("the loss read a tensor value on the host")

    monkeypatch.setattr(torch.Tensor, "__bool__", refuse)
    monkeypatch.setattr(torch.Tensor, "item", refuse)
    for loss_fn in (batch_all_triplet_loss, batch_hard_triplet_loss):
        loss, stats = loss_fn(e, labels)
        assert loss.shape == () and stats["active"].shape == ()


def test_triplet_losses_reject_bad_input():
    e = torch.randn(5, 3)
    with pytest.raises(ValueError, match="one label per embedding"):
        batch_all_triplet_loss(e, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="one label per embedding"):
        batch_hard_triplet_loss(e, torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match="same shape"):
        triplet_loss(e, e, e[:4])
    with pytest.raises(ValueError, match="margin"):
        triplet_loss(e, e, e, margin=-1)
