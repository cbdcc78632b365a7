import pytest
import torch
from torch import nn

from course_lib.similarity import (
    batch_hard_triplet_loss,
    batch_hard_triplets,
    mask_miner,
    miner_loss,
    pairwise_distances,
    pk_step,
    semi_hard_triplets,
    triplet_loss,
)


def problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(30, 1, 2, 3, generator=g)          # (N, 1, H, W)
    labels = torch.arange(5).repeat(6)                       # 5 classes x 6
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4))
    idx = torch.tensor([0, 5, 10, 1, 6, 11, 2, 7, 12])       # 3 classes x 3
    return images, labels, model, idx


def test_pk_step_embeds_the_batch_and_passes_extras_through():
    images, labels, model, idx = problem()
    step = pk_step(images, labels, batch_hard_triplet_loss)
    loss, extras = step(model, idx)
    e = model(images[idx])
    expected_loss, expected_extras = batch_hard_triplet_loss(e, labels[idx])
    assert torch.allclose(loss, expected_loss) and loss.requires_grad
    assert set(extras) == {"active", "mean distance"}
    assert torch.allclose(extras["active"], expected_extras["active"])
    assert torch.allclose(extras["mean distance"], pairwise_distances(e).mean())
    assert not extras["mean distance"].requires_grad          # a record, not part of the loss


def test_pk_step_with_a_bare_tensor_loss():
    images, labels, model, idx = problem(1)
    step = pk_step(images, labels, lambda e, y: e.pow(2).mean())
    loss, extras = step(model, idx)
    e = model(images[idx])
    assert torch.allclose(loss, e.pow(2).mean())
    assert list(extras) == ["mean distance"]
    assert torch.allclose(extras["mean distance"], pairwise_distances(e).mean())
    loss.backward()
    assert model[1].weight.grad is not None and model[1].weight.grad.abs().sum() > 0


def test_pk_step_gives_the_loss_the_labels_of_the_batch():
    images, labels, model, idx = problem(2)
    seen = {}

    def spy(e, y):
        seen["shape"], seen["y"] = tuple(e.shape), y
        return e.sum()

    pk_step(images, labels, spy)(model, idx)
    assert seen["shape"] == (9, 4) and torch.equal(seen["y"], labels[idx])


@pytest.mark.parametrize("miner, margin", [(batch_hard_triplets, 0.2), (semi_hard_triplets, 0.5),
                                           (batch_hard_triplets, 1.0)])
def test_miner_loss_is_the_triplet_loss_of_the_mined_triplets(miner, margin):
    g = torch.Generator().manual_seed(3)
    e = torch.randn(12, 3, generator=g, requires_grad=True)
    y = torch.arange(4).repeat(3)
    loss, extras = miner_loss(miner, margin=margin)(e, y)
    a, p, n = miner(e, y)
    assert torch.allclose(loss, triplet_loss(e[a], e[p], e[n], margin=margin))
    assert extras == {"triplets": float(len(a))} and isinstance(extras["triplets"], float)
    loss.backward()
    assert e.grad is not None


def test_miner_loss_without_triplets_is_zero_with_a_gradient():
    def no_triplets(e, y):
        empty = torch.empty(0, dtype=torch.long)
        return empty, empty, empty

    e = torch.randn(6, 3, requires_grad=True)
    loss, extras = miner_loss(no_triplets)(e, torch.arange(6) % 2)
    assert loss.item() == 0.0 and extras == {"triplets": 0.0}
    loss.backward()
    assert torch.equal(e.grad, torch.zeros_like(e))


def test_miner_loss_inside_pk_step():
    images, labels, model, idx = problem(4)
    loss, extras = pk_step(images, labels, miner_loss(batch_hard_triplets))(model, idx)
    e = model(images[idx])
    a, p, n = batch_hard_triplets(e, labels[idx])
    assert torch.allclose(loss, triplet_loss(e[a], e[p], e[n]))
    assert extras["triplets"] == 9.0 and set(extras) == {"triplets", "mean distance"}


def naive_semi_hard_mask(d, labels, margin):
    b = len(labels)
    mask = torch.zeros(b, b, b, dtype=torch.bool)
    for a in range(b):
        for p in range(b):
            for n in range(b):
                if a != p and labels[p] == labels[a] and labels[n] != labels[a]:
                    mask[a, p, n] = bool(d[a, p] < d[a, n] < d[a, p] + margin)
    return mask


@pytest.mark.parametrize("margin", [0.3, 0.5, 2.0])
def test_mask_miner_finds_the_triplets_of_the_mask(margin):
    g = torch.Generator().manual_seed(5)
    e = torch.randn(10, 3, generator=g, requires_grad=True)
    y = torch.arange(3).repeat(4)[:10]
    a, p, n = mask_miner(naive_semi_hard_mask, margin)(e, y)
    expected = set(zip(*(t.tolist() for t in semi_hard_triplets(e, y, margin))))
    assert set(zip(a.tolist(), p.tolist(), n.tolist())) == expected and len(a) == len(expected) > 0
    assert a.dtype == torch.long and not a.requires_grad
    loss, _ = miner_loss(mask_miner(naive_semi_hard_mask, margin), margin)(e, y)
    loss.backward()                                                    # the loss, not the mining, has a gradient
    assert e.grad is not None and e.grad.abs().sum() > 0


def test_mask_miner_with_an_empty_mask_gives_no_triplets():
    e = torch.randn(4, 2)
    a, p, n = mask_miner(lambda d, y, m: torch.zeros(4, 4, 4, dtype=torch.bool))(e, torch.arange(4) % 2)
    assert len(a) == len(p) == len(n) == 0

