"""Stick figures and the three pose heads: shapes, seeding, ground truth on the ink, losses that train."""
import pytest
import torch

from course_lib.pose import (
    BONES,
    HEADS,
    JOINTS,
    SIDES,
    FigureBatches,
    PafNet,
    PairBatches,
    PoseNet,
    draw_segments,
    equivariance_error,
    figures,
    heatmap_argmax,
    limb_fields,
    paf_step,
    pose_loss,
    pose_step,
    predict_keypoints,
    rescale,
    soft_argmax2d,
    two_figures,
)


def test_figures_are_seeded_inside_the_image_and_drawn_where_the_joints_are():
    a = figures(16, torch.Generator().manual_seed(3), size=64)
    b = figures(16, torch.Generator().manual_seed(3), size=64)
    assert torch.equal(a.images, b.images) and torch.equal(a.keypoints, b.keypoints)
    assert a.images.shape == (16, 1, 64, 64) and a.keypoints.shape == (16, len(JOINTS), 2)
    assert len(JOINTS) == len(SIDES) == 11 and len(BONES) == 10
    assert (a.keypoints >= 0).all() and (a.keypoints <= 63).all()
    # every joint but the head (the centre of a ring) lies on ink in the clean setting
    xy = a.keypoints.round().long()
    ink = a.images[torch.arange(16)[:, None], 0, xy[..., 1], xy[..., 0]]          # (16, 11)
    assert (ink[:, 1:] > 0.5).all()
    hard = figures(16, torch.Generator().manual_seed(3), size=64, hard=True)
    assert torch.equal(hard.keypoints, figures(16, torch.Generator().manual_seed(3), hard=True).keypoints)
    assert hard.images.std() > 0 and (hard.images[:, 0, :4, :4] > 0).float().mean() > 0.3   # noise, background
    with pytest.raises(ValueError, match="n >= 1"):
        figures(0, torch.Generator())
    # the figure faces us: its left hand and foot lie to the image's right of its right ones
    many = figures(200, torch.Generator().manual_seed(4)).keypoints
    left, right = JOINTS.index("left hand"), JOINTS.index("right hand")
    assert (many[:, left, 0] > many[:, right, 0]).float().mean() > 0.9
    assert (many[:, JOINTS.index("left foot"), 0] > many[:, JOINTS.index("right foot"), 0]).float().mean() > 0.9


def test_draw_segments_by_hand():
    img = draw_segments(torch.tensor([[[2.0, 5.0]]]), torch.tensor([[[8.0, 5.0]]]), size=11, width=1.0)[0]
    assert img[5, 2:9].tolist() == [1.0] * 7                             # on the stroke: full ink
    assert img[4, 5].item() == pytest.approx(0.0) and img[0, 0] == 0   # 1 px away with width 1: 1/2 + 1/2 - 1 = 0
    assert img[5, 9].item() == pytest.approx(0.0)
    wide = draw_segments(torch.tensor([[[2.0, 5.0]]]), torch.tensor([[[8.0, 5.0]]]), size=11, width=2.0)[0]
    assert wide[4, 5].item() == pytest.approx(0.5)                     # the anti-aliased edge


def test_figure_batches_repeat_per_epoch():
    batches = FigureBatches(4, 2, seed=1)
    batches.set_epoch(3)
    first = [k for _, k in batches]
    batches.set_epoch(3)
    assert all(torch.equal(x, y) for x, y in zip(first, [k for _, k in batches]))
    assert not torch.equal(first[0], first[1])


@pytest.mark.parametrize("head", HEADS)
def test_heads_shapes_losses_and_a_few_steps_of_training(head):
    torch.manual_seed(0)
    model = PoseNet(head, joints=11, width=8)
    f = figures(8, torch.Generator().manual_seed(0))
    out = model(f.images)
    assert out.shape == ((8, 11, 2) if head in ("pool", "flat") else (8, 11, 16, 16))
    assert predict_keypoints(model, f.images).shape == (8, 11, 2)
    step = pose_step()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    losses = []
    for _ in range(20):
        loss, extra = step(model, (f.images, f.keypoints))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        assert torch.isfinite(loss) and extra["pixel error"] >= 0
    assert min(losses[-5:]) < losses[0]                                 # it learns the batch


def test_losses_are_zero_at_the_truth():
    kp = torch.tensor([[[9.5, 21.5], [33.5, 41.5]]])                   # centres of map pixels (2, 5) and (8, 10)
    target = (kp - 1.5) / 4
    heat = PoseNet("heatmap", 2)
    from course_lib.pose import render_heatmaps
    maps = render_heatmaps(target, (16, 16), 1.0)
    assert pose_loss(heat, maps, kp).item() == pytest.approx(0.0)
    assert rescale(heatmap_argmax(maps), 4).tolist() == kp.tolist()
    integral = PoseNet("integral", 2)
    sharp = -((torch.arange(16.0)[None, None, None] - target[..., 0, None, None]) ** 2 +
              (torch.arange(16.0)[None, None, :, None] - target[..., 1, None, None]) ** 2) * 5
    assert pose_loss(integral, sharp, kp).item() == pytest.approx(0.0, abs=1e-4)
    assert soft_argmax2d(sharp).sub(target).abs().max() < 1e-4
    direct = PoseNet("pool", 2)
    assert pose_loss(direct, kp.clone(), kp).item() == pytest.approx(0.0)
    off = kp + torch.tensor([4.0, 0.0])                                  # one map pixel off in x for both joints
    assert pose_loss(direct, off, kp).item() == pytest.approx(0.5)         # L2: mean of (1², 0²) over x and y
    assert pose_loss(direct, off, kp, coord_loss="l1").item() == pytest.approx(0.5)
    off2 = kp + torch.tensor([8.0, 0.0])
    assert pose_loss(direct, off2, kp).item() == pytest.approx(2.0)        # (2² + 0) / 2
    assert pose_loss(direct, off2, kp, coord_loss="l1").item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="coord_loss"):
        pose_loss(direct, kp, kp, coord_loss="huber")
    with pytest.raises(ValueError, match="unknown head"):
        PoseNet("dense", 2)


def test_draw_segments_is_differentiable_also_on_a_stroke():
    # pixels exactly on a stroke (distance 0) and a zero-length stroke: finite gradients, as with norm()
    starts = torch.tensor([[[2.0, 5.0], [3.0, 3.0]]], requires_grad=True)
    ends = torch.tensor([[[8.0, 5.0], [3.0, 3.0]]], requires_grad=True)
    draw_segments(starts, ends, size=11, width=torch.tensor([1.5])).sum().backward()
    assert torch.isfinite(starts.grad).all() and torch.isfinite(ends.grad).all()
    assert starts.grad.abs().sum() > 0


def test_two_figures_overlap_are_seeded_and_keep_figures_unchanged_without_place():
    images, people = two_figures(6, torch.Generator().manual_seed(5), size=48)
    again = two_figures(6, torch.Generator().manual_seed(5), size=48)
    assert images.shape == (6, 1, 48, 48) and people.shape == (6, 2, len(JOINTS), 2)
    assert torch.equal(images, again[0]) and torch.equal(people, again[1])
    assert (people >= 0).all() and (people <= 47).all()
    # the image is the brighter of the two figures: each figure's joints (but the head) lie on ink
    xy = people.round().long()
    ink = images[torch.arange(6)[:, None, None], 0, xy[..., 1], xy[..., 0]]        # (6, 2, K)
    assert (ink[..., 1:] > 0.5).all()
    # place puts the figure in the room the image leaves it: 0 at the left and top, 1 at the right and bottom
    corner = figures(4, torch.Generator().manual_seed(9), place=torch.zeros(4, 2)).keypoints
    far = figures(4, torch.Generator().manual_seed(9), place=torch.ones(4, 2)).keypoints
    assert (far - corner).amin() >= 0 and (corner.amin(1) < 12).all() and (far.amax(1) > 51).all()
    batches = PairBatches(3, 2, seed=1, size=32)
    first = [p for _, p in batches]
    batches.set_epoch(0)
    assert all(torch.equal(p, q) for p, q in zip(first, [p for _, p in batches])) and len(first) == 2


def test_paf_net_shapes_and_a_few_steps_lower_its_loss():
    torch.manual_seed(0)
    model = PafNet(len(BONES), width=8)
    images, people = two_figures(8, torch.Generator().manual_seed(1), size=32)
    assert model(images).shape == (8, 2 * len(BONES), 32, 32)
    step = paf_step(BONES)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss, _ = step(model, (images, people))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    # the loss is zero when the network outputs the fields drawn from the truth
    class Perfect(torch.nn.Module):
        def forward(self, x):
            return limb_fields(people, BONES, (32, 32))
    assert step(Perfect(), (images, people))[0].item() == 0


class _BrightestPixel(torch.nn.Module):
    """A 'pose model' that answers the brightest pixel of each image as its one joint: exactly equivariant."""
    head_name, stride = "pool", 4

    def forward(self, x):
        idx = x.flatten(1).argmax(1)                                                # (B,)
        return torch.stack([idx % x.shape[-1], idx // x.shape[-1]], -1).float()[:, None]   # (B, 1, 2)


def test_equivariance_error_is_zero_for_an_equivariant_model_and_matches_a_loop():
    g = torch.Generator().manual_seed(5)
    kp = 4 + torch.randint(0, 24, (6, 1, 2), generator=g).float()                 # (6, 1, 2), 4 ... 27 in a 32 image
    images = torch.rand(6, 1, 32, 32, generator=g) * 0.5
    images[torch.arange(6), 0, kp[:, 0, 1].long(), kp[:, 0, 0].long()] = 1.0       # the joint is the brightest pixel
    assert equivariance_error(_BrightestPixel(), images, kp, (3, -2)) == 0.0
    # a model that ignores the image misses by the whole shift, on the figures that stay inside
    net = PoseNet("pool", 1, 32).eval()
    with torch.no_grad():
        net.head[-1].weight.zero_()
    assert equivariance_error(net, images, kp, (3, -4)) == pytest.approx(5.0, abs=1e-4)
    # against a loop over the figures, with the margin written out
    net = PoseNet("flat", 1, 32)
    shift, errors = (5, 2), []
    for image, joints in zip(images, kp):
        moved = joints + torch.tensor([5.0, 2.0])
        if ((moved >= 4) & (moved <= 27)).all():
            before = predict_keypoints(net, image[None])[0]
            after = predict_keypoints(net, torch.roll(image, (2, 5), (1, 2))[None])[0]
            errors.append((after - before - torch.tensor([5.0, 2.0])).norm(dim=-1))
    assert 0 < len(errors) < 6
    assert equivariance_error(net, images, kp, shift) == pytest.approx(torch.cat(errors).mean().item(), rel=1e-4)
    with pytest.raises(ValueError, match="inside the image"):
        equivariance_error(net, images, kp, (40, 0))
