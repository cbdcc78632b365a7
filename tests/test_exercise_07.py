"""Lesson 07's exercise, the Gaussian heatmap target from keypoints in image pixels: a written-out solution
passes, each named mistake (the image -> map mapping first) fails with its own hint, a wrapper of course_lib's
version fails, and the student edition's stub falls back."""
import pytest
import torch

from course_lib import exercises as ex
from course_lib.pose import heatmap_target, image_to_heatmap, render_heatmaps


def gaussians(kp, size, sigma):
    """Gaussians on the map's grid at kp (B, K, 2) in map pixels, written out."""
    h, w = size
    cols = torch.arange(w, dtype=kp.dtype, device=kp.device)                       # (W,)
    rows = torch.arange(h, dtype=kp.dtype, device=kp.device)[:, None]              # (H, 1)
    dx2 = (cols - kp[..., 0, None, None]) ** 2                                      # (B, K, 1, W)
    dy2 = (rows - kp[..., 1, None, None]) ** 2                                      # (B, K, H, 1)
    return torch.exp(-(dx2 + dy2) / (2 * sigma ** 2))


def target_ok(keypoints, stride, size, sigma):
    """A student's solution: image pixels -> map pixels (centre of map pixel j: j * stride + (stride - 1) / 2)."""
    return gaussians((keypoints - (stride - 1) / 2) / stride, size, sigma)


def target_loop(keypoints, stride, size, sigma):
    """The same as a loop over keypoints with a meshgrid (indexing='xy': x varies along the columns)."""
    h, w = size
    xs, ys = torch.meshgrid(torch.arange(w, dtype=keypoints.dtype), torch.arange(h, dtype=keypoints.dtype),
                            indexing="xy")                                            # (H, W) each
    b, k, _ = keypoints.shape
    out = torch.zeros(b, k, h, w, dtype=keypoints.dtype)
    for i in range(b):
        for j in range(k):
            x = (keypoints[i, j, 0] - (stride - 1) / 2) / stride
            y = (keypoints[i, j, 1] - (stride - 1) / 2) / stride
            out = out.index_put((torch.tensor(i), torch.tensor(j)),
                                torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2)))
    return out


def target_no_offset(keypoints, stride, size, sigma):
    return gaussians(keypoints / stride, size, sigma)


def target_half_stride(keypoints, stride, size, sigma):        # map pixel j centred on j * stride + stride / 2
    return gaussians((keypoints - stride / 2) / stride, size, sigma)


def target_plus_offset(keypoints, stride, size, sigma):
    return gaussians((keypoints + (stride - 1) / 2) / stride, size, sigma)


def target_half_pixel(keypoints, stride, size, sigma):
    return gaussians((keypoints - 0.5) / stride, size, sigma)


def target_not_divided(keypoints, stride, size, sigma):
    return gaussians(keypoints - (stride - 1) / 2, size, sigma)


def target_sigma_in_image(keypoints, stride, size, sigma):
    return target_ok(keypoints, stride, size, sigma / stride)


def target_meshgrid_ij(keypoints, stride, size, sigma):         # meshgrid's default: rows first, read as x
    h, w = size
    kp = (keypoints - (stride - 1) / 2) / stride
    xs, ys = torch.meshgrid(torch.arange(h, dtype=kp.dtype), torch.arange(w, dtype=kp.dtype), indexing="ij")
    return torch.exp(-((ys - kp[..., 1, None, None]) ** 2 + (xs - kp[..., 0, None, None]) ** 2) / (2 * sigma ** 2))


def target_sigma_squared(keypoints, stride, size, sigma):
    return target_ok(keypoints, stride, size, sigma / 2 ** 0.5)         # exp(-d² / sigma²)


def target_sum_one(keypoints, stride, size, sigma):
    maps = target_ok(keypoints, stride, size, sigma)
    return maps / maps.sum(dim=(-2, -1), keepdim=True)


def target_rounded(keypoints, stride, size, sigma):
    return gaussians(((keypoints - (stride - 1) / 2) / stride).round(), size, sigma)


@pytest.mark.parametrize("solution", [target_ok, target_loop])
def test_a_written_out_solution_passes(solution, capsys):
    assert ex.check_heatmap_target(solution) is True
    assert "✓ Gaussian heatmap targets" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (target_no_offset, "not on j * stride"),
    (target_half_stride, "not stride / 2"),
    (target_plus_offset, "The offset goes the other way"),
    (target_half_pixel, "not half a pixel"),
    (target_not_divided, "Divide by the stride"),
    (target_sigma_in_image, "MAP pixels"),
    (target_meshgrid_ij, "x is the COLUMN"),
    (target_sigma_squared, "not by sigma²"),
    (target_sum_one, "peak 1"),
    (target_rounded, "sub-pixel"),
], ids=lambda v: getattr(v, "__name__", "hint"))
def test_each_named_mistake_fails_with_its_own_hint(wrong, hint, capsys):
    assert ex.check_heatmap_target(wrong) is False
    out = capsys.readouterr().out
    assert out.startswith("✗") and hint in out, out


@pytest.mark.parametrize("wrapper", [
    lambda k, st, sz, sg: heatmap_target(k, st, sz, sg),
    lambda k, st, sz, sg: render_heatmaps((k - (st - 1) / 2) / st, sz, sg),        # the Gaussian part ready-made
    lambda k, st, sz, sg: gaussians(image_to_heatmap(k, st), sz, sg),               # the mapping ready-made
], ids=["heatmap_target", "render_heatmaps", "image_to_heatmap"])
def test_a_function_that_calls_course_lib_fails(wrapper, capsys):
    assert ex.check_heatmap_target(wrapper) is False
    assert "calls course_lib's own" in capsys.readouterr().out


def test_the_stub_of_the_student_edition_falls_back_to_course_lib(capsys):
    def stub(keypoints, stride, size, sigma):
        raise NotImplementedError

    assert ex.use_if_correct(stub, ex.check_heatmap_target) is heatmap_target
    out = capsys.readouterr().out
    assert "not done yet" in out and "Using course_lib.pose.keypoints.heatmap_target instead" in out


def test_a_function_that_raises_is_reported_not_raised(capsys):
    assert ex.check_heatmap_target(lambda k, st, sz, sg: k.view(-1, 3)) is False
    assert "your function raised" in capsys.readouterr().out
