import pytest
import torch

from course_lib.losses import contrastive_loss


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
