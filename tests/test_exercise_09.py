"""Lesson 09's exercises, the 1-D correlation layer and the NCC cost: written-out solutions pass, each named
mistake fails with its own hint, a wrapper of course_lib's version fails, and the student edition's stub falls
back."""
import pytest
import torch
import torch.nn.functional as F

from course_lib import exercises as ex
from course_lib.stereo import correlation_1d, correlation_2d, ncc_cost, ncc_cost_volume


# ---------------------------------------------------------------------------------------------- correlation
def corr_ok(f1, f2, max_disparity):
    """A student's solution: pad f2 on the left, slice once per disparity, average over channels."""
    w = f1.shape[-1]
    padded = F.pad(f2, (max_disparity - 1, 0))
    return torch.stack([(f1 * padded[..., max_disparity - 1 - d: max_disparity - 1 - d + w]).mean(1)
                        for d in range(max_disparity)], 1)


def corr_loop(f1, f2, max_disparity):
    """The same with a zeroed output filled column range by column range."""
    b, c, h, w = f1.shape
    out = f1.new_zeros(b, max_disparity, h, w)
    for d in range(min(max_disparity, w)):
        out[:, d, :, d:] = (f1[..., d:] * f2[..., :w - d]).mean(1)
    return out


def corr_plus_d(f1, f2, max_disparity):                       # reads f2 at x + d
    w = f1.shape[-1]
    padded = F.pad(f2, (0, max_disparity - 1))
    return torch.stack([(f1 * padded[..., d: d + w]).mean(1) for d in range(max_disparity)], 1)


def corr_roll(f1, f2, max_disparity):
    return torch.stack([(f1 * torch.roll(f2, d, dims=-1)).mean(1) for d in range(max_disparity)], 1)


def corr_late(f1, f2, max_disparity):                         # zeroes x <= d instead of x < d
    out = corr_ok(f1, f2, max_disparity)
    x = torch.arange(f1.shape[-1])
    d = torch.arange(max_disparity)[:, None, None]
    return out * ((x > d) | (d == 0))


def corr_sum(f1, f2, max_disparity):
    return corr_ok(f1, f2, max_disparity) * f1.shape[1]


def corr_reversed(f1, f2, max_disparity):
    return corr_ok(f1, f2, max_disparity).flip(1)


def corr_replicate(f1, f2, max_disparity):                    # the border column repeated where x < d
    w = f1.shape[-1]
    padded = torch.cat([f2[..., :1].expand(*f2.shape[:-1], max_disparity - 1), f2], -1)
    return torch.stack([(f1 * padded[..., max_disparity - 1 - d: max_disparity - 1 - d + w]).mean(1)
                        for d in range(max_disparity)], 1)


def corr_from_one(f1, f2, max_disparity):
    return corr_ok(f1, f2, max_disparity + 1)[:, 1:]


def corr_channels_last(f1, f2, max_disparity):
    return corr_ok(f1, f2, max_disparity).permute(0, 2, 3, 1)


@pytest.mark.parametrize("solution", [corr_ok, corr_loop])
def test_a_written_out_correlation_passes(solution, capsys):
    assert ex.check_correlation_1d(solution) is True
    assert "✓ 1-D correlation" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (corr_plus_d, "shifted the wrong way"),
    (corr_roll, "torch.roll wraps around"),
    (corr_late, "Off by one at the border"),
    (corr_from_one, "Off by one in the disparities"),
    (corr_sum, "Average over the channels"),
    (corr_replicate, "fill them with 0"),
    (corr_reversed, "disparity axis is reversed"),
    (corr_channels_last, "disparity axis second"),
], ids=lambda v: getattr(v, "__name__", "hint"))
def test_each_correlation_mistake_fails_with_its_own_hint(wrong, hint, capsys):
    assert ex.check_correlation_1d(wrong) is False
    out = capsys.readouterr().out
    assert out.startswith("✗") and hint in out, out


# ---------------------------------------------------------------------------------------------- NCC
def ncc_ok(a, b, eps):
    a0, b0 = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
    return 1 - (a0 * b0).mean(-1) / ((a0 ** 2).mean(-1) * (b0 ** 2).mean(-1) + eps).sqrt()


def ncc_with_std(a, b, eps):                                  # torch.std, unbiased=False: also right
    cov = ((a - a.mean(-1, keepdim=True)) * (b - b.mean(-1, keepdim=True))).mean(-1)
    return 1 - cov / (a.var(-1, unbiased=False) * b.var(-1, unbiased=False) + eps).sqrt()


def ncc_plain_correlation(a, b, eps):
    return 1 - ((a - a.mean(-1, keepdim=True)) * (b - b.mean(-1, keepdim=True))).mean(-1)


def ncc_not_centred(a, b, eps):
    return 1 - (a * b).mean(-1) / ((a * a).mean(-1) * (b * b).mean(-1) + eps).sqrt()


def ncc_similarity(a, b, eps):
    return 1 - ncc_ok(a, b, eps)


def ncc_no_eps(a, b, eps):
    return ncc_ok(a, b, 0.0)


def ncc_eps_outside(a, b, eps):
    a0, b0 = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
    return 1 - (a0 * b0).mean(-1) / (((a0 ** 2).mean(-1) * (b0 ** 2).mean(-1)).sqrt() + eps)


def ncc_unbiased_std(a, b, eps):
    cov = ((a - a.mean(-1, keepdim=True)) * (b - b.mean(-1, keepdim=True))).mean(-1)
    return 1 - cov / (a.var(-1) * b.var(-1) + eps).sqrt()


def ncc_sums(a, b, eps):
    a0, b0 = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
    return 1 - (a0 * b0).sum(-1) / ((a0 ** 2).sum(-1) * (b0 ** 2).sum(-1) + eps).sqrt()


@pytest.mark.parametrize("solution", [ncc_ok, ncc_with_std])
def test_a_written_out_ncc_passes(solution, capsys):
    assert ex.check_ncc_cost(solution) is True
    assert "✓ NCC cost" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (ncc_plain_correlation, "No normalization"),
    (ncc_not_centred, "Subtract each window's mean"),
    (ncc_similarity, "Return the COST"),
    (ncc_no_eps, "without eps you get 0 / 0"),
    (ncc_eps_outside, "not after it"),
    (ncc_unbiased_std, "divide by K - 1"),
    (ncc_sums, "not sums"),
], ids=lambda v: getattr(v, "__name__", "hint"))
def test_each_ncc_mistake_fails_with_its_own_hint(wrong, hint, capsys):
    assert ex.check_ncc_cost(wrong) is False
    out = capsys.readouterr().out
    assert out.startswith("✗") and hint in out, out


# ---------------------------------------------------------------------------------------------- both
@pytest.mark.parametrize("check, wrapper", [
    (ex.check_correlation_1d, lambda f1, f2, d: correlation_1d(f1, f2, d)),
    (ex.check_correlation_1d, lambda f1, f2, d: correlation_2d(f1, f2, d)),    # fails on values or on the call
    (ex.check_ncc_cost, lambda a, b, eps: ncc_cost(a, b, eps)),
    (ex.check_ncc_cost, lambda a, b, eps: ncc_cost_volume(a[:, None, None], b[:, None, None], 1,
                                                          window=1, eps=eps)[:, 0, 0, 0]),
], ids=["correlation_1d", "correlation_2d", "ncc_cost", "ncc_cost_volume"])
def test_a_function_that_calls_course_lib_fails(check, wrapper, capsys):
    assert check(wrapper) is False
    assert "calls course_lib's own" in capsys.readouterr().out


@pytest.mark.parametrize("check, reference", [(ex.check_correlation_1d, correlation_1d), (ex.check_ncc_cost, ncc_cost)])
def test_the_stub_of_the_student_edition_falls_back_to_course_lib(check, reference, capsys):
    def stub(*args):
        raise NotImplementedError

    assert ex.use_if_correct(stub, check) is reference
    out = capsys.readouterr().out
    assert "not done yet" in out and f"Using {reference.__module__}.{reference.__name__} instead" in out


def test_a_function_that_raises_is_reported_not_raised(capsys):
    assert ex.check_correlation_1d(lambda f1, f2, d: f1.view(-1, 7)) is False
    assert "your function raised" in capsys.readouterr().out
