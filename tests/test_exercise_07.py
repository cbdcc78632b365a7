"""Lesson 07's exercise, the Gaussian heatmap target: a written-out solution passes, each named mistake fails
with its own hint, a wrapper of course_lib's version fails, and the student edition's stub falls back."""
import pytest
import torch

from course_lib import exercises as ex
from course_lib.pose import render_heatmaps


def heatmaps_ok(keypoints, size, sigma):
    """A student's solution, written out: broadcast the column and row indices against x and y."""
    h, w = size
    cols = torch.arange(w, dtype=keypoints.dtype, device=keypoints.device)          # (W,)
    rows = torch.arange(h, dtype=keypoints.dtype, device=keypoints.device)[:, None]  # (H, 1)
    dx2 = (cols - keypoints[..., 0, None, None]) ** 2                                # (B, K, 1, W)
    dy2 = (rows - keypoints[..., 1, None, None]) ** 2                                # (B, K, H, 1)
    return torch.exp(-(dx2 + dy2) / (2 * sigma ** 2))


def heatmaps_loop(keypoints, size, sigma):
    """The same as a loop over keypoints with a meshgrid (indexing='xy': x varies along the columns)."""
    h, w = size
    xs, ys = torch.meshgrid(torch.arange(w, dtype=keypoints.dtype), torch.arange(h, dtype=keypoints.dtype),
                            indexing="xy")                                            # (H, W) each
    b, k, _ = keypoints.shape
    out = torch.zeros(b, k, h, w, dtype=keypoints.dtype)
    for i in range(b):
        for j in range(k):
            x, y = keypoints[i, j]
            out = out.index_put((torch.tensor(i), torch.tensor(j)),
                                torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2)))
    return out


def heatmaps_meshgrid_ij(keypoints, size, sigma):                 # meshgrid's default: rows first, read as x
    h, w = size
    xs, ys = torch.meshgrid(torch.arange(h, dtype=keypoints.dtype), torch.arange(w, dtype=keypoints.dtype),
                            indexing="ij")
    return torch.exp(-((ys - keypoints[..., 1, None, None]) ** 2 + (xs - keypoints[..., 0, None, None]) ** 2)
                     / (2 * sigma ** 2))


def heatmaps_sigma_squared(keypoints, size, sigma):
    return heatmaps_ok(keypoints, size, sigma / 2 ** 0.5)        # exp(-d² / sigma²)


def heatmaps_sigma_not_squared(keypoints, size, sigma):
    return heatmaps_ok(keypoints, size, sigma ** 0.5)            # exp(-d² / (2 sigma))


def heatmaps_half_pixel(keypoints, size, sigma):
    return heatmaps_ok(keypoints - 0.5, size, sigma)             # pixel centres at j + 0.5


def heatmaps_sum_one(keypoints, size, sigma):
    maps = heatmaps_ok(keypoints, size, sigma)
    return maps / maps.sum(dim=(-2, -1), keepdim=True)


def heatmaps_rounded(keypoints, size, sigma):
    return heatmaps_ok(keypoints.round(), size, sigma)


def heatmaps_plain_distance(keypoints, size, sigma):
    h, w = size
    cols, rows = torch.arange(w, dtype=keypoints.dtype), torch.arange(h, dtype=keypoints.dtype)[:, None]
    d2 = (cols - keypoints[..., 0, None, None]) ** 2 + (rows - keypoints[..., 1, None, None]) ** 2
    return torch.exp(-d2.sqrt() / (2 * sigma ** 2))


@pytest.mark.parametrize("solution", [heatmaps_ok, heatmaps_loop])
def test_a_written_out_solution_passes(solution, capsys):
    assert ex.check_render_heatmaps(solution) is True
    assert "✓ Gaussian heatmaps" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (heatmaps_meshgrid_ij, "x is the COLUMN"),
    (heatmaps_sigma_squared, "not by sigma²"),
    (heatmaps_sigma_not_squared, "Square sigma"),
    (heatmaps_half_pixel, "not shifted by half a pixel"),
    (heatmaps_sum_one, "peak 1"),
    (heatmaps_rounded, "sub-pixel"),
    (heatmaps_plain_distance, "SQUARED distance"),
], ids=lambda v: getattr(v, "__name__", "hint"))
def test_each_named_mistake_fails_with_its_own_hint(wrong, hint, capsys):
    assert ex.check_render_heatmaps(wrong) is False
    out = capsys.readouterr().out
    assert out.startswith("✗") and hint in out, out


def test_a_function_that_calls_course_lib_fails(capsys):
    assert ex.check_render_heatmaps(lambda k, s, sg: render_heatmaps(k, s, sg)) is False
    assert "calls course_lib's own" in capsys.readouterr().out


def test_the_stub_of_the_student_edition_falls_back_to_course_lib(capsys):
    def stub(keypoints, size, sigma):
        raise NotImplementedError

    assert ex.use_if_correct(stub, ex.check_render_heatmaps) is render_heatmaps
    out = capsys.readouterr().out
    assert "not done yet" in out and "Using course_lib.pose.keypoints.render_heatmaps instead" in out


def test_a_function_that_raises_is_reported_not_raised(capsys):
    assert ex.check_render_heatmaps(lambda k, s, sg: k.view(-1, 3)) is False
    assert "your function raised" in capsys.readouterr().out
