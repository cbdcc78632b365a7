"""Sampling grids, distorted MNIST and the STN against hand-computed matrices and slow, obvious references."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.core import DigitClassifier, error_rate
from course_lib.stn import (
    CANVAS,
    STN,
    DistortedBatches,
    ProjectiveTransformer,
    SpatialTransformer,
    affine_theta,
    bilinear_weights,
    compose,
    distort,
    distorted_test_set,
    homography_grid,
    localization_net,
    moved,
    normalized_to_pixels,
    pixels_to_normalized,
    predicted_theta,
    sampling_points,
    theta_parts,
    warp,
)


def rand_images(n, h, w, seed=0):
    return torch.rand(n, 1, h, w, generator=torch.Generator().manual_seed(seed))


def test_affine_theta_against_hand_computed_matrices():
    assert torch.allclose(affine_theta(), torch.tensor([[[1.0, 0, 0], [0, 1, 0]]]))
    assert torch.allclose(affine_theta(90), torch.tensor([[[0.0, 1, 0], [-1, 0, 0]]]), atol=1e-7)
    assert torch.allclose(affine_theta(0, 0.5, 0.1, -0.2), torch.tensor([[[0.5, 0, 0.1], [0, 0.5, -0.2]]]))
    assert torch.allclose(affine_theta(shear=0.3), torch.tensor([[[1.0, 0.3, 0], [0, 1, 0]]]))
    a = math.radians(30)
    expected = 2 * torch.tensor([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]) @ torch.tensor([[1, 0.5], [0, 1]])
    assert torch.allclose(affine_theta(30, 2.0, shear=0.5)[0, :, :2], expected, atol=1e-6)


def test_affine_theta_broadcasts_and_refuses_bad_input():
    theta = affine_theta(torch.tensor([0.0, 90.0, 180.0]), 1.0, 0.2)
    assert theta.shape == (3, 2, 3) and torch.allclose(theta[:, 0, 2], torch.full((3,), 0.2))
    assert affine_theta(10.0).shape == (1, 2, 3)
    with pytest.raises(ValueError, match="one length B"):
        affine_theta(torch.zeros(3), torch.ones(2))
    with pytest.raises(ValueError, match="scale must be positive"):
        affine_theta(0, 0.0)
    with pytest.raises(ValueError, match=r"\(B, 2, 3\)"):
        warp(rand_images(1, 4, 4), torch.eye(2, 3))


@pytest.mark.parametrize("align_corners", [False, True])
def test_one_pixel_shift_is_a_roll_on_the_interior(align_corners):
    x = rand_images(2, 8, 10)
    theta = affine_theta(0, 1, pixels_to_normalized(1, 10, align_corners), pixels_to_normalized(-2, 8, align_corners))
    out = warp(x, theta, align_corners=align_corners)
    rolled = torch.roll(x, shifts=(2, -1), dims=(2, 3))                # the grid moves right, so the image moves left
    assert torch.allclose(out[..., 2:, :-1], rolled[..., 2:, :-1], atol=1e-5)
    assert torch.all(out[..., :2, :] == 0) and torch.all(out[..., -1] == 0)   # read outside: zeros


def test_half_pixel_shift_averages_neighbours_and_the_wrong_unit_does_not():
    x = rand_images(1, 6, 6)
    half = warp(x, affine_theta(0, 1, pixels_to_normalized(0.5, 6)))
    assert torch.allclose(half[..., :-1], (x[..., :-1] + x[..., 1:]) / 2, atol=1e-5)
    wrong = warp(x, affine_theta(0, 1, pixels_to_normalized(1, 6, align_corners=True)))   # 2/(W-1) != 2/W
    assert not torch.allclose(wrong[..., :-1], x[..., 1:], atol=1e-3)


def test_rotation_by_90_degrees_is_rot90_and_parts_read_back():
    x = rand_images(1, 7, 7)
    assert torch.allclose(warp(x, affine_theta(90)), torch.rot90(x, k=-1, dims=(2, 3)), atol=1e-5)
    theta = affine_theta(torch.tensor([-120.0, 35.0]), torch.tensor([0.6, 1.3]), torch.tensor([0.1, -0.4]), 0.25)
    parts = theta_parts(theta)
    assert torch.allclose(parts["angle"], torch.tensor([-120.0, 35.0]), atol=1e-4)
    assert torch.allclose(parts["scale"], torch.tensor([0.6, 1.3]), atol=1e-6)
    assert torch.allclose(parts["tx"], torch.tensor([0.1, -0.4])) and torch.allclose(parts["ty"], torch.tensor([0.25] * 2))


def test_compose_reads_through_inner_then_outer():
    outer = affine_theta(torch.tensor([20.0, -50.0]), torch.tensor([0.8, 1.1]), 0.1, torch.tensor([0.0, 0.3]))
    inner = affine_theta(torch.tensor([-5.0, 70.0]), 1.2, torch.tensor([0.2, -0.1]), 0.05, shear=0.2)
    grid = F.affine_grid(inner, (2, 1, 5, 6), align_corners=False)                         # (2, 5, 6, 2)
    through = torch.einsum("bij,bhwj->bhwi", outer[:, :, :2], grid) + outer[:, None, None, :, 2]
    assert torch.allclose(F.affine_grid(compose(outer, inner), (2, 1, 5, 6), align_corners=False), through, atol=1e-6)


def test_sampling_points_are_pixel_coordinates():
    pts = sampling_points(affine_theta(), (3, 4))
    assert torch.allclose(pts[0, :, :, 0], torch.arange(4.0).expand(3, 4), atol=1e-6)
    assert torch.allclose(pts[0, :, :, 1], torch.arange(3.0)[:, None].expand(3, 4), atol=1e-6)
    assert torch.allclose(normalized_to_pixels(torch.tensor([-1.0, 1.0]), 5, align_corners=True), torch.tensor([0.0, 4]))
    with pytest.raises(ValueError, match="at least 2 pixels"):
        pixels_to_normalized(1, 1)


def test_bilinear_weights_match_grid_sample():
    g = torch.Generator().manual_seed(1)
    image = torch.rand(9, 11, generator=g)
    x, y = torch.rand(50, generator=g) * 9.5 + 0.2, torch.rand(50, generator=g) * 7.5 + 0.2
    cols, rows, w = bilinear_weights(x, y)
    assert torch.allclose(w.sum(1), torch.ones(50))
    by_hand = (w * image[rows.clamp(max=8), cols.clamp(max=10)]).sum(1)
    grid = torch.stack([pixels_to_normalized(x + 0.5, 11) - 1, pixels_to_normalized(y + 0.5, 9) - 1], -1)
    sampled = F.grid_sample(image[None, None], grid[None, None], align_corners=False)[0, 0, 0]
    assert torch.allclose(by_hand, sampled, atol=1e-5)


def test_bilinear_sampling_has_a_gradient_towards_the_grid():
    x = rand_images(1, 8, 8)
    theta = affine_theta(0, 1, 0.05).requires_grad_()
    warp(x, theta).sum().backward()
    assert theta.grad is not None and theta.grad.abs().sum() > 0


def test_affine_homography_grid_equals_affine_grid():
    theta = affine_theta(torch.tensor([15.0, -40.0]), 0.9, 0.1, -0.2)
    h = torch.cat([theta, torch.tensor([[[0.0, 0, 1]]]).expand(2, 1, 3)], dim=1)
    assert torch.allclose(homography_grid(h, (6, 7)), F.affine_grid(theta, (2, 1, 6, 7), align_corners=False), atol=1e-6)


def digits_with_a_dot():
    """A blank 28 x 28 'digit' with one bright 2 x 2 dot right of centre (rows 13-14, cols 20-21)."""
    d = torch.zeros(1, 1, 28, 28)
    d[..., 13:15, 20:22] = 1.0
    return d


def centre_of_mass(images):
    h, w = images.shape[-2:]
    mass = images.sum((-1, -2))
    ys, xs = torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32)
    return (images.sum(-2) * xs).sum(-1) / mass, (images.sum(-1) * ys).sum(-1) / mass


@pytest.mark.parametrize("kind", ["R", "RTS", "P"])
def test_distortions_are_seeded_sized_and_keep_the_background(kind):
    digits = rand_images(5, 28, 28) * (rand_images(5, 28, 28, seed=1) > 0.7)
    a, truth = distort(digits, kind, torch.Generator().manual_seed(3))
    b, _ = distort(digits, kind, torch.Generator().manual_seed(3))
    c, _ = distort(digits, kind, torch.Generator().manual_seed(4))
    assert a.shape == (5, 1, CANVAS[kind], CANVAS[kind]) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    blank, _ = distort(torch.zeros(5, 1, 28, 28), kind, torch.Generator().manual_seed(3))
    assert torch.all(blank == 0)                                        # padding reads the background, 0
    if kind != "P":
        assert torch.allclose(warp(digits, truth["theta"], size=(CANVAS[kind],) * 2), a, atol=1e-6)


def test_distortion_angle_and_position_mean_what_they_say():
    digits = digits_with_a_dot().expand(400, 1, 28, 28)
    images, truth = distort(digits, "RTS", torch.Generator().manual_seed(0))
    cx, cy = centre_of_mass(images[:, 0])
    # where the dot should land: digit centre + scale * rotated offset (7 px right of the centre, 28 px frame)
    a = torch.deg2rad(truth["angle"])
    offset = 7.0 * truth["scale"]
    centre_x, centre_y = (truth["cx"] + 1) * 21 - 0.5, (truth["cy"] + 1) * 21 - 0.5
    assert torch.allclose(cx, centre_x + offset * torch.cos(a), atol=0.6)   # counter-clockwise on screen:
    assert torch.allclose(cy, centre_y - offset * torch.sin(a), atol=0.6)   # a positive angle moves it up


def test_distorted_test_set_is_fixed_and_batches_are_fresh_each_epoch():
    digits, labels = rand_images(10, 28, 28), torch.arange(10)
    x1, y1, t1 = distorted_test_set(digits, labels, "RTS", seed=5)
    x2, _, t2 = distorted_test_set(digits, labels, "RTS", seed=5)
    assert torch.equal(x1, x2) and torch.equal(t1["angle"], t2["angle"]) and torch.equal(y1, labels)
    batches = DistortedBatches(digits, labels, "RTS", batch_size=4, seed=1)
    assert len(batches) == 3
    epoch0 = [b for b in batches]
    epoch1 = [b for b in batches]
    batches.set_epoch(0)
    again = [b for b in batches]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(epoch0, again))
    assert not torch.equal(epoch0[0][0], epoch1[0][0])
    assert sorted(torch.cat([y for _, y in epoch0]).tolist()) == list(range(10))
    with pytest.raises(ValueError, match="unknown distortion"):
        distort(digits, "E", torch.Generator())
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        distort(rand_images(2, 42, 42), "R", torch.Generator())


def test_stn_starts_as_the_identity_and_learns():
    torch.manual_seed(0)
    stn = STN(size=(42, 42))
    x = rand_images(3, 42, 42)
    out, theta = stn(x, return_theta=True)
    assert torch.allclose(out, x, atol=1e-5)
    assert torch.allclose(theta, affine_theta().expand(3, 2, 3))
    model = torch.nn.Sequential(stn, DigitClassifier((42, 42)))
    F.cross_entropy(model(x), torch.tensor([1, 2, 3])).backward()
    assert stn.regressor.weight.grad.abs().sum() > 0                   # the loss reaches the localization net
    assert STN(size=(28, 28), out_size=(20, 20))(rand_images(2, 28, 28)).shape == (2, 1, 20, 20)
    with pytest.raises(ValueError, match=r"\(B, 1, 42, 42\)"):
        stn(rand_images(1, 28, 28))


def test_transformers_start_as_the_identity_and_read_their_grid():
    torch.manual_seed(0)
    x = rand_images(3, 28, 28)
    for cls in (SpatialTransformer, ProjectiveTransformer):
        t = cls(localization_net((28, 28)), 32, (28, 28))
        torch.testing.assert_close(t(x), x, atol=1e-5, rtol=0)
        assert cls(localization_net((28, 28)), 32, (20, 24))(x).shape == (3, 1, 20, 24)
    affine = SpatialTransformer(localization_net((28, 28)), 32, (28, 28))
    with torch.no_grad():
        affine.regressor.weight.normal_(0, 0.05)
    theta = predicted_theta(affine, x)                                  # (3, 2, 3)
    torch.testing.assert_close(affine(x), F.grid_sample(x, F.affine_grid(theta, x.shape, align_corners=False),
                                                        align_corners=False))
    proj = ProjectiveTransformer(localization_net((28, 28)), 32, (28, 28))
    with torch.no_grad():                                                # an affine homography: the affine grid
        proj.regressor.bias.copy_(torch.tensor([0.9, 0.1, 0.05, -0.1, 1.1, 0.0, 0.0, 0.0]))
    theta = torch.tensor([[0.9, 0.1, 0.05], [-0.1, 1.1, 0.0]]).expand(3, 2, 3)
    torch.testing.assert_close(proj(x), warp(x, theta), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match=r"at least \(28, 28\)"):
        localization_net((20, 20))


def test_moved_shifts_by_the_pixels_asked_and_turns_about_the_centre():
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    blob = torch.exp(-((xx - 13.5) ** 2 + (yy - 13.5) ** 2) / 8)[None, None].repeat(5, 1, 1, 1)

    def centre(images):                                                  # (B, 2): centre of mass, pixels
        m = images[:, 0]
        return torch.stack([(m * xx).sum((1, 2)), (m * yy).sum((1, 2))], 1) / m.sum((1, 2))[:, None]

    torch.testing.assert_close(moved(blob), blob, atol=1e-5, rtol=0)
    for shift in (1.0, 3.0):
        distance = (centre(moved(blob, shift=shift, seed=3)) - 13.5).norm(dim=1)
        torch.testing.assert_close(distance, torch.full((5,), shift), atol=1e-3, rtol=0)
    turned = moved(blob, angle=40.0)                                     # a round blob: the same after a turn
    torch.testing.assert_close(centre(turned), centre(blob), atol=1e-3, rtol=0)
    assert torch.equal(moved(blob, shift=2.0, seed=1), moved(blob, shift=2.0, seed=1))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        moved(blob[0])


def test_error_rate_against_a_loop():
    torch.manual_seed(0)
    model = DigitClassifier((28, 28))
    x, y = rand_images(30, 28, 28), torch.randint(0, 10, (30,))
    with torch.no_grad():
        model.eval()
        wrong = sum(int(model(x[i:i + 1]).argmax() != y[i]) for i in range(30))
    assert error_rate(model, x, y, batch_size=7) == pytest.approx(wrong / 30)


def test_grid_views_follow_their_sliders():
    import matplotlib.pyplot as plt

    from course_lib.viz import (
        grid_lines,
        plot_sampling_grid_static,
        plot_stn_examples_static,
        sampling_grid_explorer,
        stn_browser,
    )
    image = rand_images(1, 28, 28)[0]
    lines, border, corner = grid_lines(affine_theta(), (28, 28))
    assert corner == pytest.approx((0.0, 0.0), abs=1e-5) and border.shape == (5, 2)
    assert len(lines) == 2 * (len(range(0, 28, 4)) + 1)
    box, fig = sampling_grid_explorer(image).children
    controls = box.children
    angle, scale, shift_x = controls[0], controls[1], controls[2]
    before = np.array(fig.data[1].z)
    assert np.allclose(before, image[0].numpy(), atol=1e-5)              # identity: output = input
    shift_x.value = 1.0                                                  # one pixel: the output moves left
    assert np.allclose(np.array(fig.data[1].z)[:, :-1], image[0, :, 1:].numpy(), atol=1e-5)
    assert "+0.071" in controls[-1].value                                # 2 / 28 in theta's last column
    scale.value = 0.5
    assert np.ptp(np.array(fig.data[3].x)) == pytest.approx(13.5)        # half of the 27 pixels between centres
    thetas = affine_theta(torch.tensor([0.0, 30.0, -20.0]), 0.8)
    pick, browser = stn_browser(rand_images(3, 42, 42), thetas, ["a", "b", "c"]).children
    first = np.array(browser.data[3].x)
    pick.value = 1
    assert browser.layout.title.text == "b" and not np.allclose(np.array(browser.data[3].x), first)
    for f in (plot_sampling_grid_static(image, thetas[1:2]), plot_stn_examples_static(rand_images(3, 42, 42), thetas)):
        assert len(f.axes) >= 2
        plt.close(f)
