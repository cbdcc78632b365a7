"""The patch networks: shapes, the fast network's cost volume equals its patch-by-patch scores, and MC-CNN's pairs."""
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.stereo import (FastTower, PseudoSiameseNet, SiameseDecisionNet, TwoChannelNet, fast_cost_volume,
                               make_stereo_pairs, sample_patch_pairs)


def test_the_fast_cost_volume_equals_patch_by_patch_cosines():
    torch.manual_seed(0)
    tower = FastTower(features=8)
    g = torch.Generator().manual_seed(1)
    left, right = torch.rand(2, 1, 6, 10, generator=g), torch.rand(2, 1, 6, 10, generator=g)
    volume = fast_cost_volume(tower, left, right, 4)
    assert volume.shape == (2, 4, 6, 10)
    pl, pr = F.pad(left, (4, 4, 4, 4)), F.pad(right, (4, 4, 4, 4))
    for b, d, y, x in [(0, 0, 0, 0), (1, 3, 5, 9), (0, 2, 3, 4), (1, 1, 2, 1)]:
        a = tower(pl[b:b + 1, :, y:y + 9, x:x + 9]).flatten()
        c = tower(pr[b:b + 1, :, y:y + 9, x - d:x - d + 9]).flatten()
        assert volume[b, d, y, x].item() == pytest.approx(-(a @ c).item(), abs=1e-5)
    assert math.isinf(volume[0, 3, 0, 2].item())


def test_two_channel_and_pseudo_siamese_shapes_and_full_images():
    torch.manual_seed(0)
    two, pseudo = TwoChannelNet(8, hidden=16), PseudoSiameseNet(8, hidden=16)
    patches = torch.rand(5, 2, 9, 9)
    assert two(patches).shape == (5,) and pseudo(patches[:, :1], patches[:, 1:]).shape == (5,)
    full = torch.rand(1, 2, 12, 15)
    maps = two.net(full)[:, 0]                                             # every pixel's pair at once
    assert maps.shape == (1, 4, 7)
    assert maps[0, 2, 3].item() == pytest.approx(two(full[:, :, 2:11, 3:12]).item(), abs=1e-5)


def test_siamese_decision_ties_its_towers_and_pseudo_siamese_does_not():
    torch.manual_seed(0)
    tied, untied = SiameseDecisionNet(8, hidden=16), PseudoSiameseNet(8, hidden=16)
    patch = torch.rand(3, 1, 9, 9)
    fl, fr = tied.features(patch, patch)
    assert torch.equal(fl, fr)                                             # one tower for both views
    fl, fr = untied.features(patch, patch)
    assert not torch.allclose(fl, fr)                                      # two towers, two sets of weights
    n_tower = sum(p.numel() for p in tied.tower.parameters())
    assert sum(p.numel() for p in untied.parameters()) == sum(p.numel() for p in tied.parameters()) + n_tower
    assert tied(patch, patch).shape == (3,)


def test_patch_pairs_sit_at_the_true_match_and_a_negative_offset():
    p = make_stereo_pairs(2, (32, 48), 8, seed=0, noise=0.0, radiometric=False)
    left, pos, neg = sample_patch_pairs(p.left, p.right, p.disparity, p.visible, 200, seed=1)
    assert left.shape == pos.shape == neg.shape == (200, 1, 9, 9)
    centre = (left[:, 0, 4, 4] - pos[:, 0, 4, 4]).abs()
    assert (centre < 1e-6).float().mean() > 0.99                            # the positive shows the same point
    assert (left - neg).abs().mean() > (left - pos).abs().mean() + 0.02
    with pytest.raises(ValueError, match="N_lo"):
        sample_patch_pairs(p.left, p.right, p.disparity, p.visible, 10, neg=(0, 3))
