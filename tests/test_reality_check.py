"""Lesson 08's reality check: the batch contrastive loss and per-query AP@R against slow loops, and the
experiment pieces (Method, method_setup, train_with_curves, compare, first_reach) on tiny fake data."""
import dataclasses
import doctest
import math
import statistics

import pytest
import torch
from torch import nn

from course_lib.experiments import Method, compare, first_reach, method_setup, train_with_curves
from course_lib.similarity import EmbedderWithProxies, arcface_loss, batch_contrastive_loss, losses, map_at_r

# --- batch_contrastive_loss -------------------------------------------------------------------------------


def slow_batch_contrastive(e, y, margin):
    """½ mean over positive pairs of d² + ½ mean over active negative pairs (d < margin) of (margin − d)²."""
    pulled, pushed, negatives = [], [], 0
    for i in range(len(e)):
        for j in range(i + 1, len(e)):
            d = math.sqrt(sum((a - b) ** 2 for a, b in zip(e[i].tolist(), e[j].tolist())))
            if y[i] == y[j]:
                pulled.append(d * d)
            else:
                negatives += 1
                if d < margin:
                    pushed.append((margin - d) ** 2)
    mean = lambda v: sum(v) / len(v) if v else 0.0   # noqa: E731
    return 0.5 * mean(pulled) + 0.5 * mean(pushed), (len(pushed) / negatives if negatives else 0.0)


@pytest.mark.parametrize("seed, margin", [(0, 1.0), (1, 2.0), (2, 0.8), (3, 3.0), (4, 1.5)])
def test_batch_contrastive_loss_matches_a_double_loop(seed, margin):
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(12, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (12,), generator=g)
    loss, stats = batch_contrastive_loss(e, y, margin)
    slow_loss, slow_active = slow_batch_contrastive(e, y, margin)
    assert loss.item() == pytest.approx(slow_loss, abs=1e-9)
    assert stats["active"].item() == pytest.approx(slow_active, abs=1e-6)     # a float32 share
    assert 0 < slow_active < 1                # each case mixes active and inactive negatives


def test_batch_contrastive_loss_doctest_runs_and_its_numbers_match_the_loop():
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(verbose=False)
    tests = finder.find(batch_contrastive_loss, "batch_contrastive_loss", globs=vars(losses))
    assert tests and tests[0].examples
    for t in tests:
        runner.run(t)
    assert runner.summarize(verbose=False).failed == 0
    e, y = torch.tensor([[0.0], [1.0], [1.5], [3.0]]), torch.tensor([0, 0, 1, 1])
    assert slow_batch_contrastive(e, y, 1.0) == pytest.approx((0.9375, 0.25))


@pytest.mark.parametrize("case", ["no positive pair", "no active negative", "one class", "one embedding",
                                  "identical embeddings", "empty batch"])
def test_batch_contrastive_loss_edge_cases_are_finite_with_a_gradient(case):
    g = torch.Generator().manual_seed(7)
    e, y, margin = {
        "no positive pair": (torch.randn(5, 2, generator=g), torch.arange(5), 1.0),
        "no active negative": (torch.tensor([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [10.0, 0.1]]),
                               torch.tensor([0, 0, 1, 1]), 1.0),
        "one class": (torch.randn(4, 2, generator=g), torch.zeros(4, dtype=torch.long), 1.0),
        "one embedding": (torch.randn(1, 2, generator=g), torch.tensor([3]), 1.0),
        "identical embeddings": (torch.ones(4, 3), torch.tensor([0, 0, 1, 1]), 1.0),
        "empty batch": (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), 1.0),
    }[case]
    e = e.clone().requires_grad_(True)
    loss, stats = batch_contrastive_loss(e, y, margin)
    loss.backward()
    assert loss.isfinite() and e.grad is not None and e.grad.isfinite().all()
    slow_loss, slow_active = slow_batch_contrastive(e.detach(), y, margin)
    assert loss.item() == pytest.approx(slow_loss, abs=1e-5)
    assert stats["active"].item() == pytest.approx(slow_active)


def test_batch_contrastive_loss_values_of_the_edge_cases():
    far = torch.tensor([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [10.0, 0.1]])
    loss, stats = batch_contrastive_loss(far, torch.tensor([0, 0, 1, 1]), 1.0)
    assert loss.item() == pytest.approx(0.5 * 0.01, abs=1e-4) and stats["active"].item() == 0   # pulls only
    same = torch.ones(4, 3)
    loss, stats = batch_contrastive_loss(same, torch.tensor([0, 0, 1, 1]), 2.0)
    assert loss.item() == pytest.approx(0.5 * 4.0) and stats["active"].item() == 1            # ½ m² per negative


def test_batch_contrastive_loss_gradient_pulls_positives_and_pushes_active_negatives():
    e = torch.tensor([[0.0], [1.0], [1.5]], requires_grad=True)   # 0, 1 same class; 1.5 is 0.5 from point 1
    loss, _ = batch_contrastive_loss(e, torch.tensor([0, 0, 1]), 1.0)
    loss.backward()
    # descent (-grad) moves 0 up towards 1, 1.5 up away from 1, and 1 down (towards 0, away from 1.5)
    assert e.grad[0, 0] < 0 and e.grad[2, 0] < 0 < e.grad[1, 0]


@pytest.mark.parametrize("margin", [0.0, -1.0])
def test_batch_contrastive_loss_rejects_a_margin_that_is_not_positive(margin):
    with pytest.raises(ValueError, match="margin must be positive"):
        batch_contrastive_loss(torch.randn(4, 2), torch.tensor([0, 0, 1, 1]), margin)


def test_batch_contrastive_loss_rejects_labels_of_the_wrong_length():
    with pytest.raises(ValueError, match="one label per embedding"):
        batch_contrastive_loss(torch.randn(4, 2), torch.tensor([0, 0, 1]))


# --- map_at_r(reduction="none") ---------------------------------------------------------------------------


def slow_ap_at_r(e, y):
    """AP@R of each query with R > 0, in query order: rank the others by distance (stable), look at the first R."""
    out = []
    for q in range(len(e)):
        others = [j for j in range(len(e)) if j != q]
        others.sort(key=lambda j: float((e[q] - e[j]).norm()))
        r = sum(int(y[j] == y[q]) for j in others)
        if r == 0:
            continue
        hits, total = 0, 0.0
        for i, j in enumerate(others[:r], start=1):
            if y[j] == y[q]:
                hits += 1
                total += hits / i
        out.append(total / r)
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_map_at_r_per_query_matches_a_loop_and_its_mean_is_the_default(seed):
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(25, 3, generator=g, dtype=torch.float64)
    y = torch.cat([torch.randint(0, 4, (24,), generator=g), torch.tensor([9])])   # class 9 alone: R = 0, left out
    per_query = map_at_r(e, y, reduction="none")
    slow = slow_ap_at_r(e, y)
    assert per_query.shape == (len(slow),) == (24,)
    torch.testing.assert_close(per_query.double(), torch.tensor(slow, dtype=torch.float64))
    assert per_query.double().mean().item() == pytest.approx(map_at_r(e, y), abs=1e-12)
    assert map_at_r(e, y, reduction="mean") == map_at_r(e, y)


def test_map_at_r_rejects_an_unknown_reduction():
    e, y = torch.randn(6, 2), torch.tensor([0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'none'"):
        map_at_r(e, y, reduction="sum")


# --- Method -----------------------------------------------------------------------------------------------


def test_method_names_options_and_proxies():
    assert str(Method("contrastive", 1.0)) == "contrastive, margin 1"
    assert str(Method("ArcFace", 0.5)) == "ArcFace, margin 0.5"
    assert str(Method("normalized softmax", 16)) == "normalized softmax, scale 16"
    assert Method("contrastive", 1).options() == {"margin": 1.0}
    assert Method("triplet", 0.2).options() == {"margin": 0.2}
    assert Method("Proxy-NCA", 8).options() == {"scale": 8.0}
    assert Method("ArcFace", 0.3).options() == {"margin": 0.3, "scale": Method.ARCFACE_SCALE}
    assert [Method(name, 1).uses_proxies for name in Method.SETTINGS] == [False, False, True, True, True]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Method("triplet", 0.2).value = 0.3
    with pytest.raises(ValueError, match="loss must be one of"):
        Method("arcface", 0.5)                 # the name is spelt "ArcFace"


# --- method_setup, train_with_curves ----------------------------------------------------------------------

CLASSES = [3, 17, 42, 77]


def fake_data(per_class=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor(CLASSES).repeat_interleave(per_class)
    x = torch.rand(len(y), 1, 28, 56, generator=g) + y[:, None, None, None] / 100   # a little class signal
    return x, y


def tiny_net():
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 56, 6))


@pytest.mark.parametrize("method", [Method("contrastive", 1.0), Method("triplet", 0.2),
                                    Method("normalized softmax", 16), Method("ArcFace", 0.5),
                                    Method("Proxy-NCA", 8)], ids=str)
def test_method_setup_builds_a_model_whose_step_gives_a_finite_loss(method):
    x, y = fake_data()
    build = method_setup(method, tiny_net, x, y, classes_per_batch=2, per_class=3, steps=2)
    torch.manual_seed(0)
    model, batches, step = build(0)
    assert isinstance(model, EmbedderWithProxies) == method.uses_proxies
    if method.uses_proxies:
        assert model.proxies.weight.shape == (len(CLASSES), 6)       # one row per training class
        assert model.proxies.options == method.options()
        assert {id(p) for p in model.proxies.parameters()} <= {id(p) for p in model.parameters()}
    batch_list = list(batches)
    assert len(batch_list) == 2 and all(len(idx) == 6 for idx in batch_list)
    for idx in batch_list:
        loss, stats = step(model, idx)
        loss.backward()
        assert loss.ndim == 0 and loss.isfinite(), str(method)
        assert all(p.grad is None or p.grad.isfinite().all() for p in model.parameters())
        assert "mean distance" in stats


def test_method_setup_calls_your_own_loss_with_rows_and_options():
    x, y = fake_data()
    calls = []

    def my_arcface(e, rows, w, **options):
        calls.append((rows.clone(), options))
        return arcface_loss(e, rows, w, **options)

    build = method_setup(Method("ArcFace", 0.3), tiny_net, x, y, classes_per_batch=2, per_class=3, steps=2,
                         losses={"ArcFace": my_arcface})
    model, batches, step = build(0)
    for idx in batches:
        loss, _ = step(model, idx)
        assert loss.isfinite()
        assert torch.equal(calls[-1][0], torch.tensor([CLASSES.index(int(c)) for c in y[idx]]))
    assert len(calls) == 2 and all(opts == {"margin": 0.3, "scale": Method.ARCFACE_SCALE} for _, opts in calls)


def test_train_with_curves_lists_one_entry_per_seed_and_is_reproducible():
    x, y = fake_data()
    test = fake_data(per_class=3, seed=1)
    build = method_setup(Method("normalized softmax", 16), tiny_net, x, y, classes_per_batch=2, per_class=3,
                         steps=2)
    out = train_with_curves(build, [0, 1], epochs=1, test=test)
    assert set(out) == {"P@1", "MAP@R", "seconds", "curve", "epoch seconds", "AP@R", "embeddings", "model"}
    assert all(len(v) == 2 for v in out.values())
    assert all(len(c) == 1 for c in out["curve"]) and all(len(s) == 1 for s in out["epoch seconds"])
    for k in range(2):
        assert out["AP@R"][k].shape == (len(test[1]),) and out["embeddings"][k].shape == (len(test[1]), 6)
        assert out["MAP@R"][k] == pytest.approx(out["AP@R"][k].double().mean().item())
        assert out["curve"][k][-1] == pytest.approx(out["MAP@R"][k], abs=1e-6)   # the last epoch's score
        assert out["seconds"][k] == pytest.approx(sum(out["epoch seconds"][k]))
        assert 0 <= out["P@1"][k] <= 1
    again = train_with_curves(build, 2, epochs=1, test=test)              # seeds=2 means 0, 1
    for key in ("P@1", "MAP@R", "curve"):
        assert again[key] == out[key], key
    assert all(torch.equal(a, b) for a, b in zip(again["embeddings"], out["embeddings"]))
    assert not torch.equal(out["embeddings"][0], out["embeddings"][1])   # two seeds, two networks


# --- compare, first_reach ---------------------------------------------------------------------------------


def slow_compare(a, b, floor):
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0   # noqa: E731
    gap, noise = statistics.mean(a) - statistics.mean(b), max(sd(a), sd(b), floor)
    return gap, noise, "ahead" if gap > 2 * noise else "behind" if gap < -2 * noise else "within the spread"


@pytest.mark.parametrize("a, b, floor, word", [
    ([1.0, 1.1, 0.9], [0.5, 0.6, 0.4], 0.0, "ahead"),
    ([0.5, 0.6, 0.4], [1.0, 1.1, 0.9], 0.0, "behind"),
    ([1.0, 1.1, 0.9], [0.9, 1.0, 0.8], 0.0, "within the spread"),
    ([1.0, 1.1, 0.9], [0.5, 0.6, 0.4], 0.3, "within the spread"),    # the floor is the larger noise
    ([0.7], [0.5], 0.0, "ahead"),                                   # one seed each: no spread at all
    ([0.7], [0.5], 0.1, "within the spread"),                       # gap exactly 2 noise is not ahead
    ([0.5, 0.5], [0.5, 0.5], 0.0, "within the spread"),
])
def test_compare_against_the_formula(a, b, floor, word):
    gap, noise, said = compare(a, b, floor)
    slow_gap, slow_noise, slow_word = slow_compare(a, b, floor)
    assert gap == pytest.approx(slow_gap) and noise == pytest.approx(slow_noise)
    assert said == slow_word == word


def test_compare_needs_values():
    with pytest.raises(ValueError, match="no values"):
        compare([], [1.0])


def test_first_reach_hand_cases():
    assert first_reach([0.1, 0.3, 0.5], [10, 20, 30], 0.3) == 20.0        # reaching counts (>=)
    assert first_reach([0.1, 0.3, 0.5], [10, 20, 30], 0.0) == 10.0
    assert first_reach([0.5, 0.2, 0.6], [1.5, 3.0, 4.5], 0.4) == 1.5      # the first, not the last
    assert first_reach([0.1, 0.3, 0.5], [10, 20, 30], 0.6) == math.inf
    assert first_reach([], [], 0.1) == math.inf
    assert isinstance(first_reach([1.0], [3], 0.5), float)
    with pytest.raises(ValueError, match="one value per epoch"):
        first_reach([0.1, 0.2], [1, 2, 3], 0.1)


def test_pooled_sd_weights_each_variance_by_its_degrees_of_freedom():
    from course_lib.experiments import pooled_sd
    groups = [[1.0, 2.0], [3.0, 3.0], [0.0, 1.0, 2.0]]
    by_hand = ((0.5 * 1 + 0.0 * 1 + 1.0 * 2) / 4) ** 0.5           # variances 0.5, 0, 1 with 1, 1, 2 dof
    assert pooled_sd(groups) == pytest.approx(by_hand)
    assert pooled_sd([[5.0], [1.0, 3.0]]) == pytest.approx(2 ** 0.5)  # a single value adds nothing
    with pytest.raises(ValueError, match="two or more"):
        pooled_sd([[1.0], [2.0]])
