"""The correlation layer against slow loops: 1-D over disparities, 2-D over displacements (FlowNet), the borders,
gradients, and errors for bad shapes."""
import pytest
import torch

from course_lib.stereo import correlation_1d, correlation_2d


def slow_1d(f1, f2, d_max):
    b, c, h, w = f1.shape
    out = torch.zeros(b, d_max, h, w, dtype=f1.dtype)
    for d in range(d_max):
        for x in range(w):
            if x - d >= 0:
                out[:, d, :, x] = (f1[:, :, :, x] * f2[:, :, :, x - d]).mean(1)
    return out


def slow_2d(f1, f2, k, s):
    b, c, h, w = f1.shape
    shifts = range(-k, k + 1, s)
    out = torch.zeros(b, len(shifts) ** 2, h, w, dtype=f1.dtype)
    for i, dy in enumerate(shifts):
        for j, dx in enumerate(shifts):
            for y in range(h):
                for x in range(w):
                    if 0 <= y + dy < h and 0 <= x + dx < w:
                        out[:, i * len(shifts) + j, y, x] = (f1[:, :, y, x] * f2[:, :, y + dy, x + dx]).mean(1)
    return out


@pytest.mark.parametrize("shape, d_max", [((2, 3, 4, 7), 3), ((1, 5, 2, 6), 6), ((1, 1, 1, 4), 9), ((2, 2, 3, 5), 1)])
def test_correlation_1d_matches_a_loop_at_every_border(shape, d_max):
    g = torch.Generator().manual_seed(0)
    f1, f2 = torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)
    out = correlation_1d(f1, f2, d_max)
    assert out.shape == (shape[0], d_max, shape[2], shape[3])
    torch.testing.assert_close(out, slow_1d(f1, f2, d_max))
    if d_max > shape[3]:                                                   # no column has a match that far
        assert (out[:, shape[3]:] == 0).all()


def test_correlation_1d_peaks_at_the_true_shift_of_normalized_features():
    g = torch.Generator().manual_seed(1)
    f2 = torch.nn.functional.normalize(torch.randn(1, 8, 3, 20, generator=g), dim=1)
    f1 = torch.zeros_like(f2)
    f1[..., 4:] = f2[..., :-4]                                             # left x sees right x - 4
    assert (correlation_1d(f1, f2, 8)[0, :, :, 4:].argmax(0) == 4).all()


@pytest.mark.parametrize("shape, k, s", [((2, 3, 5, 6), 2, 1), ((1, 4, 6, 5), 4, 2), ((1, 2, 3, 3), 0, 1),
                                         ((1, 1, 2, 2), 3, 1)])
def test_correlation_2d_matches_a_loop_in_row_major_order(shape, k, s):
    g = torch.Generator().manual_seed(2)
    f1, f2 = torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)
    out = correlation_2d(f1, f2, k, s)
    assert out.shape == (shape[0], (2 * k // s + 1) ** 2, shape[2], shape[3])
    torch.testing.assert_close(out, slow_2d(f1, f2, k, s))


def test_correlation_2d_holds_the_1d_one_in_its_middle_row():
    g = torch.Generator().manual_seed(3)
    f1, f2 = torch.randn(2, 3, 4, 9, generator=g), torch.randn(2, 3, 4, 9, generator=g)
    k = 3
    row = correlation_2d(f1, f2, k)[:, k * (2 * k + 1): (k + 1) * (2 * k + 1)]   # dy = 0, dx = -k ... k
    torch.testing.assert_close(row[:, :k + 1].flip(1), correlation_1d(f1, f2, k + 1))   # dx = -d


def test_gradients_are_right():
    g = torch.Generator().manual_seed(4)
    f1 = torch.randn(1, 2, 2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    f2 = torch.randn(1, 2, 2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: correlation_1d(a, b, 3), (f1, f2))
    assert torch.autograd.gradcheck(lambda a, b: correlation_2d(a, b, 2, 2), (f1, f2))


def test_dtype_and_device_follow_the_inputs():
    f = torch.randn(1, 2, 3, 4, dtype=torch.float64)
    assert correlation_1d(f, f, 2).dtype == torch.float64 and correlation_2d(f, f, 1).dtype == torch.float64


def test_bad_inputs_are_explained():
    f = torch.randn(1, 2, 3, 4)
    with pytest.raises(ValueError, match="same shape"):
        correlation_1d(f, torch.randn(1, 2, 3, 5), 2)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        correlation_1d(f[0], f[0], 2)
    with pytest.raises(ValueError, match="positive int"):
        correlation_1d(f, f, 0)
    with pytest.raises(ValueError, match="same shape"):
        correlation_2d(f, torch.randn(1, 3, 3, 4), 1)
    with pytest.raises(ValueError, match="divides"):
        correlation_2d(f, f, 3, 2)
    with pytest.raises(ValueError, match=">= 0"):
        correlation_2d(f, f, -1)
