"""Synthetic stereo pairs: the warp identity (right warped by the true disparity is the left view wherever both
see the point), occlusions, textureless masks, seeds, and errors for bad arguments."""
import pytest
import torch

from course_lib.stereo import make_stereo_pairs, warp_right


def undone(p):
    """The right view without its gain and bias."""
    return (p.right - p.bias[:, None, None, None]) / p.gain[:, None, None, None]


def test_shapes_dtypes_and_ranges():
    p = make_stereo_pairs(3, (32, 48), 10, seed=1)
    assert len(p) == 3 and p.left.shape == p.right.shape == (3, 1, 32, 48)
    assert p.disparity.shape == p.visible.shape == p.occluded.shape == p.textureless.shape == (3, 32, 48)
    assert p.disparity.dtype == torch.float32 and p.visible.dtype == torch.bool and p.max_disparity == 10
    assert p.disparity.min() >= 0 and p.disparity.max() <= 9 and torch.equal(p.disparity, p.disparity.round())
    assert not (p.visible & p.occluded).any()
    x = torch.arange(48)
    assert torch.equal(~p.visible & ~p.occluded, x < p.disparity)          # the rest leaves the right image
    assert ((p.gain >= 0.5) & (p.gain <= 0.8)).all() and ((p.bias >= 0.1) & (p.bias <= 0.3)).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_warping_the_right_view_by_the_true_disparity_gives_the_left_view(seed):
    p = make_stereo_pairs(4, (40, 64), 12, seed=seed, noise=0.0)
    warped = warp_right(undone(p), p.disparity)[:, 0]
    torch.testing.assert_close(warped[p.visible], p.left[:, 0][p.visible], atol=1e-5, rtol=0)
    assert p.occluded.any()                                                 # and there it does not, mostly
    assert (warped - p.left[:, 0]).abs()[p.occluded].mean() > 0.02
    assert p.visible.float().mean() > 0.7


def test_warp_right_against_a_loop():
    g = torch.Generator().manual_seed(3)
    right = torch.rand(2, 2, 3, 6, generator=g)
    d = torch.rand(2, 3, 6, generator=g) * 4
    out = warp_right(right, d)
    for b in range(2):
        for y in range(3):
            for x in range(6):
                u = x - d[b, y, x].item()
                i = int(u // 1)
                f = u - i
                value = sum(wt * right[b, :, y, j] for j, wt in ((i, 1 - f), (i + 1, f)) if 0 <= j < 6)
                torch.testing.assert_close(out[b, :, y, x], torch.as_tensor(value).expand(2).float())


def test_subpixel_disparities_warp_back_closely():
    p = make_stereo_pairs(3, (40, 64), 12, seed=4, noise=0.0, subpixel=True, radiometric=False)
    assert not torch.equal(p.disparity, p.disparity.round()) and p.disparity.max() < 11
    visible = p.visible & (torch.arange(64) >= p.disparity + 1)
    error = (warp_right(p.right, p.disparity) - p.left)[:, 0][visible].abs()
    shifted = (warp_right(p.right, p.disparity + 1) - p.left)[:, 0][visible].abs()
    assert error.mean() < 0.02 < shifted.mean()


def test_the_radiometric_change_and_the_noise():
    p = make_stereo_pairs(2, (32, 48), 8, seed=5, noise=0.0, radiometric=False)
    assert (p.gain == 1).all() and (p.bias == 0).all()
    q = make_stereo_pairs(2, (32, 48), 8, seed=5, noise=0.0)
    torch.testing.assert_close(undone(q), p.right)
    r = make_stereo_pairs(2, (32, 48), 8, seed=5, noise=0.05, radiometric=False)
    assert (r.left - p.left).std().item() == pytest.approx(0.05, rel=0.1)


def test_textureless_pixels_are_flat_and_present():
    p = make_stereo_pairs(8, (48, 64), 12, seed=6, noise=0.0)
    assert 0.02 < p.textureless.float().mean() < 0.6
    patches = torch.nn.functional.unfold(p.left, 9, padding=4)             # (n, 81, H * W), zero padded
    inner = torch.zeros(48, 64, dtype=torch.bool)
    inner[4:-4, 4:-4] = True
    std = patches.std(1, unbiased=False).reshape(8, 48, 64)
    assert torch.equal(p.textureless[:, inner], (std < 0.02)[:, inner])


def test_seeds_reproduce_and_differ():
    a, b = make_stereo_pairs(2, seed=7), make_stereo_pairs(2, seed=7)
    c = make_stereo_pairs(2, seed=8)
    assert torch.equal(a.left, b.left) and torch.equal(a.right, b.right) and torch.equal(a.disparity, b.disparity)
    assert not torch.equal(a.left, c.left)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), "positive int"), (dict(size=(8, 48)), "at least 16"), (dict(max_disparity=4), "from 5"),
    (dict(max_disparity=40), "W / 2"), (dict(layers=(2, 1)), "fewest"), (dict(gain=(0.0, 1.0)), "gain"),
    (dict(noise=-1.0), "noise")])
def test_bad_arguments_are_explained(kwargs, match):
    args = dict(n=2, size=(32, 48), max_disparity=8) | kwargs
    with pytest.raises(ValueError, match=match):
        make_stereo_pairs(**args)
