"""Heatmaps, argmax, soft-argmax and PCK against hand computations and slow loops; the stick figures."""
import math

import pytest
import torch

from course_lib.pose import (BONES, heatmap_argmax, heatmap_target, image_to_heatmap, limb_fields, limb_scores,
                             mean_error, pair_two, paf_score, pck, render_heatmaps, render_paf, rescale, soft_argmax2d)


def test_render_heatmaps_by_hand_and_against_a_loop():
    kp = torch.tensor([[[2.0, 1.0], [0.5, 3.25]]])                      # (1, 2, 2)
    maps = render_heatmaps(kp, (5, 4), sigma=1.5)
    assert maps.shape == (1, 2, 5, 4)
    assert maps[0, 0, 1, 2] == pytest.approx(1.0)                        # the peak sits on pixel (row 1, col 2)
    for k, (x, y) in enumerate(kp[0].tolist()):
        for i in range(5):
            for j in range(4):
                expected = math.exp(-((j - x) ** 2 + (i - y) ** 2) / (2 * 1.5 ** 2))
                assert maps[0, k, i, j].item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="sigma"):
        render_heatmaps(kp, (5, 4), sigma=0)
    with pytest.raises(ValueError, match=r"\(B, K, 2\)"):
        render_heatmaps(kp[0], (5, 4), sigma=1)


def test_argmax_and_soft_argmax_round_trip_away_from_borders():
    g = torch.Generator().manual_seed(0)
    kp = 8 + torch.rand(4, 6, 2, generator=g) * 16                      # inside a 32 x 32 map, 8 px from borders
    maps = render_heatmaps(kp, (32, 32), sigma=1.5)
    assert (heatmap_argmax(maps) - kp).abs().max() <= 0.5               # the nearest pixel centre
    # a softmax of the Gaussian's log (beta large on log-maps) is the Gaussian itself: its mean is the keypoint
    log_maps = -((torch.arange(32.0)[None, None, None, :] - kp[..., 0, None, None]) ** 2 +
                 (torch.arange(32.0)[None, None, :, None] - kp[..., 1, None, None]) ** 2) / (2 * 1.5 ** 2)
    assert (soft_argmax2d(log_maps, beta=1.0) - kp).abs().max() < 0.05


def test_soft_argmax_on_a_3x3_map_by_hand():
    heat = torch.tensor([[0.0, 0.0, 0.0], [0.0, math.log(2.0), math.log(4.0)], [0.0, 0.0, 0.0]])[None, None]
    # softmax weights: 1 everywhere, 2 at (row 1, col 1), 4 at (row 1, col 2); total 13
    weights = torch.tensor([[1.0, 1, 1], [1, 2, 4], [1, 1, 1]]) / 13
    x = float((weights.sum(0) * torch.arange(3.0)).sum())
    y = float((weights.sum(1) * torch.arange(3.0)).sum())
    got = soft_argmax2d(heat)[0, 0]
    assert got.tolist() == pytest.approx([x, y], abs=1e-6)
    assert got.tolist() == pytest.approx([(3 * 0 + 4 * 1 + 6 * 2) / 13, 1.0], abs=1e-6)   # column sums 3, 4, 6
    flat = soft_argmax2d(torch.zeros(1, 1, 4, 6))                        # a flat map: the centre
    assert flat[0, 0].tolist() == pytest.approx([2.5, 1.5])
    sharp = soft_argmax2d(heat, beta=50.0)[0, 0]                        # beta large: close to the argmax
    assert sharp.tolist() == pytest.approx([2.0, 1.0], abs=1e-3)


def test_soft_argmax_gradients_are_finite_and_match_finite_differences():
    g = torch.Generator().manual_seed(1)
    heat = torch.randn(2, 3, 5, 7, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h: soft_argmax2d(h, beta=2.0), (heat,))
    big = (torch.randn(1, 1, 8, 8, generator=g) * 1e3).requires_grad_()
    soft_argmax2d(big).sum().backward()
    assert torch.isfinite(big.grad).all()                               # softmax of huge logits stays finite


def test_pck_and_mean_error_fixture():
    gt = torch.zeros(1, 4, 2)
    pred = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 4.0]]])   # distances 0, 1, 2, 5
    assert pck(pred, gt, 1.0).item() == pytest.approx(0.5)              # <= threshold counts
    assert pck(pred, gt, 2.0).item() == pytest.approx(0.75)
    assert pck(pred, gt, 0.0).item() == pytest.approx(0.25)
    assert mean_error(pred, gt).item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="same shape"):
        pck(pred, gt[:, :3], 1.0)
    with pytest.raises(ValueError, match=">= 0"):
        pck(pred, gt, -1.0)


def test_rescale_keeps_pixel_centres():
    # map pixel 0 of stride 4 covers image pixels 0..3: centre 1.5; map pixel 2 covers 8..11: centre 9.5
    assert rescale(torch.tensor([[[0.0, 2.0]]]), 4).tolist() == [[[1.5, 9.5]]]


def test_part_affinity_fields_and_their_line_integral():
    from course_lib.pose import paf_score, render_paf
    # two people side by side: limb A from (4, 4) to (4, 14), limb B from (14, 4) to (14, 14), both pointing down
    start = torch.tensor([[[4.0, 4.0], [14.0, 4.0]]])
    end = torch.tensor([[[4.0, 14.0], [14.0, 14.0]]])
    paf = render_paf(start, end, (20, 20), width=1.0)
    assert paf.shape == (1, 2, 20, 20)
    assert paf[0, :, 9, 4].tolist() == [0.0, 1.0] and paf[0, :, 9, 14].tolist() == [0.0, 1.0]
    assert paf[0, :, 9, 9].tolist() == [0.0, 0.0] and paf[0, :, 2, 4].tolist() == [0.0, 0.0]
    score = paf_score(paf[0], start[0], end[0])                        # (2 starts, 2 ends)
    assert score[0, 0] == pytest.approx(1.0) and score[1, 1] == pytest.approx(1.0)
    assert score[0, 1] < 0.3 and score[1, 0] < 0.3                     # crossing between the people: low


def test_empty_batches_and_dtypes_of_the_heatmaps():
    assert render_heatmaps(torch.zeros(0, 3, 2), (4, 5), 1.0).shape == (0, 3, 4, 5)
    assert render_heatmaps(torch.rand(1, 2, 2, dtype=torch.float64), (3, 3), 1.0).dtype == torch.float64


def test_limb_fields_stack_render_paf_per_bone_and_limb_scores_match_paf_score():
    g = torch.Generator().manual_seed(2)
    people = torch.rand(3, 2, 11, 2, generator=g) * 20 + 2                          # (B, P, K, 2)
    fields = limb_fields(people, BONES, (24, 24))
    assert fields.shape == (3, 2 * len(BONES), 24, 24)
    for l, (a, b) in enumerate(BONES):
        torch.testing.assert_close(fields[:, 2 * l:2 * l + 2], render_paf(people[:, :, a], people[:, :, b], (24, 24)))
    scores = limb_scores(fields, people, BONES)                                    # (B, L, P, P)
    assert scores.shape == (3, len(BONES), 2, 2)
    for i in range(3):
        for l, (a, b) in enumerate(BONES):
            torch.testing.assert_close(scores[i, l], paf_score(fields[i, 2 * l:2 * l + 2], people[i, :, a], people[i, :, b]))
    with pytest.raises(ValueError, match=r"\(B, P, K, 2\)"):
        limb_fields(people[0], BONES, (24, 24))
    with pytest.raises(ValueError, match="2L"):
        limb_scores(fields[:, :4], people, BONES)


def test_pair_two_picks_the_grouping_with_the_larger_sum_against_a_loop():
    g = torch.Generator().manual_seed(3)
    scores = torch.randn(50, 2, 2, generator=g)
    got = pair_two(scores)
    for s, partner in zip(scores.tolist(), got.tolist()):
        straight, crossed = s[0][0] + s[1][1], s[0][1] + s[1][0]
        assert partner == ([0, 1] if straight >= crossed else [1, 0])
    assert pair_two(torch.zeros(2, 2)).tolist() == [0, 1]                           # a tie: the straight grouping
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, 2\)"):
        pair_two(torch.zeros(3, 3))


def test_image_to_heatmap_by_hand_and_the_inverse_of_rescale():
    # stride 4: map pixel j covers image pixels 4j ... 4j + 3, centred on 4j + 1.5
    kp = torch.tensor([[[1.5, 5.5], [0.0, 3.0], [-0.5, 63.5]]])
    assert image_to_heatmap(kp, 4).tolist() == [[[0.0, 1.0], [-0.375, 0.375], [-0.5, 15.5]]]
    assert image_to_heatmap(kp, 1).tolist() == kp.tolist()                      # stride 1: the same grid
    assert image_to_heatmap(torch.tensor([[[1.0, 4.0]]]), 3).tolist() == [[[0.0, 1.0]]]   # odd stride: centre 3j + 1
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 5, 2, generator=g) * 64
    for stride in (1, 2, 3, 4):
        assert torch.allclose(rescale(image_to_heatmap(x, stride), stride), x, atol=1e-5)


def test_heatmap_target_is_a_gaussian_on_the_map_grid_at_the_mapped_keypoint():
    g = torch.Generator().manual_seed(3)
    kp = torch.rand(2, 3, 2, generator=g) * 30                                  # image pixels
    maps = heatmap_target(kp, 4, (8, 9), sigma=1.5)
    assert maps.shape == (2, 3, 8, 9)
    for b in range(2):
        for k in range(3):
            x, y = ((kp[b, k] - 1.5) / 4).tolist()
            for i in range(8):
                for j in range(9):
                    expected = math.exp(-((j - x) ** 2 + (i - y) ** 2) / (2 * 1.5 ** 2))
                    assert maps[b, k, i, j].item() == pytest.approx(expected, rel=1e-5, abs=1e-7)
    centre = heatmap_target(torch.tensor([[[9.5, 5.5]]]), 4, (4, 4), 1.0)     # map pixel (row 1, column 2)
    assert heatmap_argmax(centre).tolist() == [[[2.0, 1.0]]] and centre[0, 0, 1, 2] == 1.0
    assert heatmap_target(torch.zeros(0, 4, 2), 4, (3, 3), 1.0).shape == (0, 4, 3, 3)
