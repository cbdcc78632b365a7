"""SAD, NCC and census cost volumes against slow loops over pixels, windows and disparities; winner-takes-all,
the error rate and chance."""
import math

import pytest
import torch

from course_lib.stereo import (census_cost_volume, census_transform, chance_error, error_rate, make_stereo_pairs,
                               ncc_cost, ncc_cost_volume, sad_cost_volume, winner_takes_all)


def window_pairs(left, right, b, d, y, x, r):
    """The (left, right) pixel values of the window around left (y, x) and right (y, x - d), both inside."""
    _, c, h, w = left.shape
    a, bb = [], []
    for i in range(-r, r + 1):
        for j in range(-r, r + 1):
            if 0 <= y + i < h and d <= x + j < w:
                a += left[b, :, y + i, x + j].tolist()
                bb += right[b, :, y + i, x + j - d].tolist()
    return torch.tensor(a, dtype=torch.float64), torch.tensor(bb, dtype=torch.float64)


def slow_volume(left, right, d_max, window, cost):
    n, _, h, w = left.shape
    out = torch.full((n, d_max, h, w), math.inf, dtype=torch.float64)
    for b in range(n):
        for d in range(d_max):
            for y in range(h):
                for x in range(d, w):
                    out[b, d, y, x] = cost(*window_pairs(left, right, b, d, y, x, window // 2))
    return out


def slow_ncc(a, b, eps=1e-6):
    a0, b0 = a - a.mean(), b - b.mean()
    return 1 - (a0 * b0).mean() / ((a0 * a0).mean() * (b0 * b0).mean() + eps).sqrt()


def tiny_views(c=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, c, 5, 7, generator=g), torch.rand(2, c, 5, 7, generator=g)


@pytest.mark.parametrize("c, window", [(1, 3), (2, 3), (1, 5), (1, 1)])
def test_sad_and_ncc_match_loops_over_the_windows_inside_both_images(c, window):
    left, right = tiny_views(c)
    sad = sad_cost_volume(left, right, 4, window)
    assert sad.shape == (2, 4, 5, 7)
    torch.testing.assert_close(sad.double(), slow_volume(left, right, 4, window, lambda a, b: (a - b).abs().mean()))
    if window > 1:                                                          # one pixel has no variance
        torch.testing.assert_close(ncc_cost_volume(left, right, 4, window).double(),
                                   slow_volume(left, right, 4, window, slow_ncc), atol=1e-4, rtol=1e-4)


def slow_census(image, window):
    n, c, h, w = image.shape
    r = window // 2
    bits = []
    for i in range(-r, r + 1):
        for j in range(-r, r + 1):
            if (i, j) == (0, 0):
                continue
            plane = torch.zeros(n, c, h, w, dtype=torch.bool)
            for y in range(h):
                for x in range(w):
                    if 0 <= y + i < h and 0 <= x + j < w:
                        plane[:, :, y, x] = image[:, :, y + i, x + j] < image[:, :, y, x]
            bits.append(plane)
    return torch.stack(bits, 2).reshape(n, -1, h, w)


def test_census_matches_a_loop():
    left, right = tiny_views(2)
    assert torch.equal(census_transform(left, 3), slow_census(left, 3))
    bl, br = slow_census(left, 3), slow_census(right, 3)
    cost = census_cost_volume(left, right, 4, 3)
    for d in range(4):
        assert torch.isinf(cost[:, d, :, :d]).all()
        assert torch.equal(cost[:, d, :, d:], (bl[..., d:] ^ br[..., :7 - d]).sum(1).float())


def test_ncc_and_census_ignore_a_gain_and_a_bias_that_fool_sad():
    p = make_stereo_pairs(2, (32, 48), 8, seed=0, noise=0.0)
    q = make_stereo_pairs(2, (32, 48), 8, seed=0, noise=0.0, radiometric=False)
    assert torch.equal(p.left, q.left)
    census = [census_cost_volume(v.left, v.right, 8) for v in (q, p)]
    assert (census[0] != census[1]).float().mean() < 0.01      # the order of brightness is kept (up to rounding)
    errors = {volume: [float(error_rate(winner_takes_all(volume(v.left, v.right, 8)), v.disparity, v.visible))
                       for v in (q, p)] for volume in (ncc_cost_volume, sad_cost_volume)}
    assert errors[ncc_cost_volume][1] == pytest.approx(errors[ncc_cost_volume][0], abs=0.01)   # ties in flat areas
    assert errors[sad_cost_volume][1] > errors[sad_cost_volume][0] + 0.05


def test_ncc_cost_by_hand_and_on_flat_windows():
    a = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    b = torch.tensor([[2.0, 4.0, 6.0], [-1.0, -2.0, -3.0], [4.0, 4.0, 4.0]])
    torch.testing.assert_close(ncc_cost(a, b), torch.tensor([0.0, 2.0, 1.0]), atol=1e-5, rtol=0)
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(6, 10, generator=g, dtype=torch.float64), torch.randn(6, 10, generator=g, dtype=torch.float64)
    torch.testing.assert_close(ncc_cost(x, y, 0.1), torch.stack([slow_ncc(u, v, 0.1) for u, v in zip(x, y)]))
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        ncc_cost(x, y[:, :3])


def test_winner_takes_all_finds_a_shift_and_never_picks_an_outside_match():
    g = torch.Generator().manual_seed(6)
    right = torch.rand(1, 1, 12, 30, generator=g)
    left = torch.roll(right, 5, -1)                                         # left x = right x - 5
    for volume in (sad_cost_volume, ncc_cost_volume, census_cost_volume):
        d = winner_takes_all(volume(left, right, 9, 5))
        inner = d[0, 2:-2, 5 + 2:-2] == 5                                    # windows inside both images
        # census can tie: a local maximum of its window has all bits False wherever it is (1 / 25 of the pixels)
        assert d.dtype == torch.int64 and inner.float().mean() >= (0.9 if volume is census_cost_volume else 1)
        assert (d <= torch.arange(30)).all()                               # x - d >= 0 everywhere


def test_error_rate_and_its_mask_and_threshold():
    pred = torch.tensor([[[0, 2, 5, 9]]])
    true = torch.tensor([[[0.0, 3.0, 3.0, 3.0]]])
    assert error_rate(pred, true).item() == 0.5
    assert error_rate(pred, true, threshold=3).item() == 0.25
    assert error_rate(pred, true, torch.tensor([[[True, True, False, False]]])).item() == 0.0
    assert math.isnan(error_rate(pred, true, torch.zeros(1, 1, 4, dtype=torch.bool)).item())
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        error_rate(pred[0], true[0])
    with pytest.raises(ValueError, match="bool"):
        error_rate(pred, true, torch.ones(1, 1, 4))


def test_chance_error_is_the_error_of_a_random_disparity():
    assert chance_error(16) == 1 - 3 / 16 and chance_error(16, 3) == 1 - 7 / 16 and chance_error(2, 3) == 0.0
    true = torch.tensor([0.0, 1.0, 7.5, 15.0])
    guesses = torch.arange(16.0)
    exact = ((guesses[:, None] - true).abs() > 1).double().mean().item()
    assert chance_error(16, 1, true) == pytest.approx(exact)
    g = torch.Generator().manual_seed(7)
    draws = torch.randint(0, 16, (200_000, 4), generator=g)
    assert float(error_rate(draws[None], true.expand(200_000, 4)[None])) == pytest.approx(exact, abs=0.005)
    with pytest.raises(ValueError, match="positive int"):
        chance_error(0)


def test_bad_views_are_explained():
    left, right = tiny_views()
    with pytest.raises(ValueError, match="same shape"):
        sad_cost_volume(left, right[..., :5], 3)
    with pytest.raises(ValueError, match="odd"):
        ncc_cost_volume(left, right, 3, window=4)
    with pytest.raises(ValueError, match="positive int"):
        census_cost_volume(left, right, 0)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        sad_cost_volume(left[0], right[0], 3)
    with pytest.raises(ValueError, match=r"\(B, D, H, W\)"):
        winner_takes_all(left[0])
