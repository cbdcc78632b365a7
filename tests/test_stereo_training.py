"""Training the patch networks: the triples' seeding, the scores and losses of each network, and the learned cost
volume of every network against its patch-by-patch scores (the slow, obvious way)."""
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.stereo import (FastTower, PatchTriples, PseudoSiameseNet, SiameseDecisionNet, TwoChannelNet,
                               disparity_errors, disparity_errors_per_pair, error_rate, learned_cost_volume,
                               make_stereo_pairs, patch_scores, patch_step, winner_takes_all)


@pytest.fixture(scope="module")
def pairs():
    return make_stereo_pairs(3, (24, 40), 8, seed=0)


def test_patch_triples_repeat_by_seed_and_epoch(pairs):
    a, b = PatchTriples(pairs, 16, 3, seed=5), PatchTriples(pairs, 16, 3, seed=5)
    first, again = list(a), list(b)
    assert len(first) == 3 and all(t.shape == (16, 1, 9, 9) for t in first[0])
    assert all(torch.equal(x, y) for bx, by in zip(first, again) for x, y in zip(bx, by))
    second_epoch = list(a)                                                 # the next epoch draws other patches
    assert not torch.equal(second_epoch[0][0], first[0][0])
    b.set_epoch(1)
    assert torch.equal(list(b)[0][0], second_epoch[0][0])                  # ... the same ones after set_epoch
    with pytest.raises(ValueError, match="positive"):
        PatchTriples(pairs, 0, 3)


@pytest.mark.parametrize("make", [lambda: FastTower(8), lambda: TwoChannelNet(8, hidden=16),
                                  lambda: SiameseDecisionNet(8, hidden=16), lambda: PseudoSiameseNet(8, hidden=16)])
def test_the_learned_cost_volume_equals_patch_by_patch_scores(make, pairs):
    torch.manual_seed(0)
    model = make()
    left, right = pairs.left[:2], pairs.right[:2]
    volume = learned_cost_volume(model, left, right, 8, batch_size=1)     # batches of one: the pieces join
    assert volume.shape == (2, 8, 24, 40) and model.training               # the model's mode is given back
    pl, pr = F.pad(left, (4, 4, 4, 4)), F.pad(right, (4, 4, 4, 4))
    with torch.no_grad():
        for b, d, y, x in [(0, 0, 0, 0), (1, 7, 23, 39), (0, 3, 10, 5), (1, 1, 4, 1)]:
            score = patch_scores(model, pl[b:b + 1, :, y:y + 9, x:x + 9], pr[b:b + 1, :, y:y + 9, x - d:x - d + 9])
            assert volume[b, d, y, x].item() == pytest.approx(-score.item(), abs=1e-5)
    assert math.isinf(volume[0, 5, 3, 4].item()) and volume[0, 4, 3, 4].isfinite()


def test_patch_step_losses(pairs):
    torch.manual_seed(0)
    batch = next(iter(PatchTriples(pairs, 32, 1, seed=0)))
    tower = FastTower(8)
    loss, extras = patch_step(margin=0.2)(tower, batch)
    s_pos, s_neg = patch_scores(tower, batch[0], batch[1]), patch_scores(tower, batch[0], batch[2])
    assert loss.item() == pytest.approx((0.2 + s_neg - s_pos).clamp_min(0).mean().item(), abs=1e-6)
    assert extras["accuracy"].item() == pytest.approx((s_pos > s_neg).float().mean().item())
    assert s_pos.abs().max() <= 1 + 1e-5                                   # cosines
    net = TwoChannelNet(8, hidden=16)
    loss, _ = patch_step()(net, batch)
    p, n = patch_scores(net, batch[0], batch[1]), patch_scores(net, batch[0], batch[2])
    want = (F.softplus(-p).sum() + F.softplus(n).sum()) / (2 * len(p))    # BCE: positives 1, negatives 0
    assert loss.item() == pytest.approx(want.item(), abs=1e-5)
    for net in (SiameseDecisionNet(8, hidden=16), PseudoSiameseNet(8, hidden=16)):   # the left tower runs once
        loss, extras = patch_step()(net, batch)
        p, n = patch_scores(net, batch[0], batch[1]), patch_scores(net, batch[0], batch[2])
        want = (F.softplus(-p).sum() + F.softplus(n).sum()) / (2 * len(p))
        assert loss.item() == pytest.approx(want.item(), abs=1e-5)
        assert extras["accuracy"].item() == pytest.approx((p > n).float().mean().item())
    loss.backward()
    with pytest.raises(TypeError, match="FastTower"):
        patch_scores(torch.nn.Linear(2, 2), batch[0], batch[1])


def test_a_short_training_beats_chance(pairs):
    from course_lib.experiments import train_run
    build = lambda s: (FastTower(16), PatchTriples(pairs, 64, 30, seed=s), patch_step())
    model, _ = train_run(build, 0, epochs=1, lr=3e-3)
    pred = winner_takes_all(learned_cost_volume(model, pairs.left, pairs.right, 8))
    assert disparity_errors(pred, pairs)["visible"] < 0.5                 # chance: 1 - 3 / 8 = 0.625


def test_disparity_errors_by_region():
    p = make_stereo_pairs(2, (32, 48), 8, seed=3)
    errors = disparity_errors(p.disparity.long(), p)                      # the truth itself: no error anywhere
    assert set(errors) == {"visible", "visible, 3 px", "textured", "textureless", "occluded"}
    assert all(v == 0 or math.isnan(v) for v in errors.values())
    off = disparity_errors(p.disparity.long() + 2, p)                     # 2 px off: wrong at 1 px, right at 3 px
    assert off["visible"] == 1.0 and off["visible, 3 px"] == 0.0


def test_disparity_errors_per_pair_equal_the_error_rate_of_each_pair_alone():
    p = make_stereo_pairs(3, (32, 48), 8, seed=3)
    pred = torch.randint(0, 8, p.disparity.shape, generator=torch.Generator().manual_seed(0))
    per_pair = disparity_errors_per_pair(pred, p)
    assert set(per_pair) == set(disparity_errors(pred, p))
    masks = {"visible": p.visible, "textured": p.visible & ~p.textureless, "occluded": p.occluded}
    for region, mask in masks.items():
        for i in range(3):
            want = error_rate(pred[i:i + 1], p.disparity[i:i + 1], mask[i:i + 1])
            assert torch.allclose(per_pair[region][i], want, equal_nan=True)
    none = make_stereo_pairs(1, (16, 24), 6, seed=0)
    no_occlusion = dataclasses.replace(none, occluded=torch.zeros_like(none.occluded))
    empty = disparity_errors_per_pair(none.disparity.long(), no_occlusion)
    assert torch.isnan(empty["occluded"]).all()                           # no pixel in the region: NaN


def test_pair_batches_and_the_correspondence_contrastive_loss_against_a_loop(pairs):
    from course_lib.stereo import PairBatches, correspondence_contrastive_step
    batches = list(PairBatches(pairs, 2, 2, seed=3))
    assert len(batches) == 2 and batches[0][0].shape == (2, 1, 24, 40) and batches[0][2].shape == (2, 24, 40)
    assert all(torch.equal(a, b) for a, b in zip(batches[0], list(PairBatches(pairs, 2, 2, seed=3))[0]))
    with pytest.raises(ValueError, match="batch_size"):
        PairBatches(pairs, 4, 1)
    torch.manual_seed(0)
    tower, batch = FastTower(8), batches[0]
    loss, extras = correspondence_contrastive_step(8, margin=1.0, neg_low=3)(tower, batch)
    left, right, disparity, visible = batch
    f1, f2 = tower(F.pad(left, (4, 4, 4, 4))), tower(F.pad(right, (4, 4, 4, 4)))
    terms, wins = [], []
    for b, y, x in visible.nonzero().tolist():                            # the definition, one pixel at a time
        d = int(disparity[b, y, x])
        negs = [e for e in range(8) if abs(e - d) >= 3 and x - e >= 0]
        if not negs:
            continue
        a, pos = f1[b, :, y, x], f2[b, :, y, x - d]
        hard = max(negs, key=lambda e: (a @ f2[b, :, y, x - e]).item())
        dist_neg = (a - f2[b, :, y, x - hard]).norm()
        terms.append(0.5 * (a - pos).norm() ** 2 + 0.5 * (1.0 - dist_neg).clamp_min(0) ** 2)
        wins.append(float((a @ pos) > (a @ f2[b, :, y, x - hard])))
    assert loss.item() == pytest.approx(torch.stack(terms).mean().item(), abs=1e-4)
    assert extras["accuracy"].item() == pytest.approx(sum(wins) / len(wins), abs=1e-6)
    loss.backward()
    assert all(p.grad is not None for p in tower.parameters())
