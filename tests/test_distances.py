import itertools

import pytest
import torch

from course_lib.similarity import paired_distances, pairwise_distances


def naive_pairwise(x, squared=False):
    b = len(x)
    out = torch.zeros(b, b, dtype=torch.float64)
    for i, j in itertools.product(range(b), range(b)):
        s = sum((float(x[i, k]) - float(x[j, k])) ** 2 for k in range(x.shape[1]))
        out[i, j] = s if squared else s ** 0.5
    return out


@pytest.mark.parametrize("squared", [False, True])
def test_pairwise_matches_naive(squared):
    x = torch.randn(9, 4, generator=torch.Generator().manual_seed(0))
    got = pairwise_distances(x, squared=squared).double()
    torch.testing.assert_close(got, naive_pairwise(x, squared), atol=1e-5, rtol=1e-5)
    assert torch.all(got.diagonal() == 0)


def test_pairwise_gradient_finite_for_identical_points():
    x = torch.ones(5, 3, requires_grad=True)
    pairwise_distances(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    torch.testing.assert_close(x.grad, torch.zeros_like(x))


def test_pairwise_gradient_matches_autograd_of_naive_away_from_zero():
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    pairwise_distances(x).sum().backward()
    ours = x.grad.clone()
    x.grad = None
    torch.cdist(x, x).sum().backward()
    torch.testing.assert_close(ours, x.grad)


def test_paired_distances():
    a, b = torch.randn(7, 3), torch.randn(7, 3)
    torch.testing.assert_close(paired_distances(a, b), torch.stack([(a[i] - b[i]).norm() for i in range(7)]))
    torch.testing.assert_close(paired_distances(a, b, squared=True), ((a - b) ** 2).sum(1))


@pytest.mark.parametrize("bad", [torch.randn(3), torch.randn(2, 3, 4), torch.zeros(3, 2, dtype=torch.long)])
def test_pairwise_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="embeddings"):
        pairwise_distances(bad)


def test_paired_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        paired_distances(torch.randn(3, 2), torch.randn(4, 2))


def test_distances_stay_float32_under_mixed_precision():
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(64, 32, generator=g), dim=1)
    x[1] = x[0] + 1e-3                                             # a near-duplicate: the hard case
    exact = torch.cdist(x.double(), x.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d = pairwise_distances(x)
        pd = paired_distances(x.bfloat16(), x.flip(0).bfloat16())
    assert d.dtype == torch.float32 and pd.dtype == torch.float32
    torch.testing.assert_close(d.double(), exact, atol=1e-4, rtol=1e-4)
