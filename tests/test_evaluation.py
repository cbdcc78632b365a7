import math
import statistics

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.core import cosine_schedule
from course_lib.experiments import mean_sd, over_seeds, train_over_seeds, train_run
from course_lib.similarity import (
    chance_levels,
    collapse_report,
    effective_rank,
    genuine_impostor_distances,
    identification_accuracy,
    identification_from_pairs,
    paired_distances,
    registration_report,
    relative_spread,
    retrieval_scores,
    sample_pair_distances,
    verification_accuracy,
)


def naive_effective_rank(x: np.ndarray) -> float:
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def naive_relative_spread(x: np.ndarray) -> float:
    n = len(x)
    total = sum(np.linalg.norm(x[i] - x[j]) for i in range(n) for j in range(n) if i != j)
    return total / (n * (n - 1)) / np.mean([np.linalg.norm(row) for row in x])


def clusters(n_classes=4, per_class=6, dim=2, spread=0.05, seed=0):
    """Points of class c around a centre 10 units from every other centre: retrieval is perfect."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n_classes).repeat_interleave(per_class)
    centres = torch.zeros(n_classes, dim)
    centres[:, 0] = 10.0 * torch.arange(n_classes)
    return centres[y] + spread * torch.randn(len(y), dim, generator=g), y


class Constant(nn.Module):
    """Maps every input to the same embedding: a collapsed network."""

    def __init__(self, dim=4):
        super().__init__()
        self.value = nn.Parameter(torch.tensor([0.3, -1.7, 2.9, 0.05][:dim]))

    def forward(self, x):
        return self.value.expand(len(x), -1)


# ----------------------------------------------------------------------------- effective rank

def test_effective_rank_of_a_line_is_one():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(200, 1, generator=g)
    direction = torch.randn(1, 8, generator=g)
    x = 3.0 + t * direction                                 # offset, then one direction only
    assert effective_rank(x) == pytest.approx(1.0, abs=1e-3)


def test_effective_rank_of_isotropic_gaussian_is_close_to_d():
    g = torch.Generator().manual_seed(0)
    r = effective_rank(torch.randn(2000, 8, generator=g))
    assert 7.0 < r <= 8.0
    assert effective_rank(torch.randn(2000, 8, generator=g) * 1e-3) == pytest.approx(r, abs=0.05)  # scale-free


@pytest.mark.parametrize("n", [2, 5, 7, 50])
def test_effective_rank_of_identical_rows_is_zero(n):
    g = torch.Generator().manual_seed(n)
    row = torch.randn(1, 16, generator=g)
    assert effective_rank(row.repeat(n, 1)) == 0.0
    assert effective_rank(torch.full((n, 5), 0.1)) == 0.0
    assert effective_rank(torch.zeros(n, 3)) == 0.0


@pytest.mark.parametrize("shape", [(30, 5), (5, 30), (64, 64)])
def test_effective_rank_matches_numpy_svd(shape):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, generator=g) * torch.linspace(0.1, 3.0, shape[1])   # uneven directions
    assert effective_rank(x) == pytest.approx(naive_effective_rank(x.double().numpy()), rel=1e-4)


def test_effective_rank_rejects_non_matrices():
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        effective_rank(torch.randn(10))


# ----------------------------------------------------------------------------- relative spread

def test_relative_spread_matches_naive_double_loop():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(9, 3, generator=g) + 1.0
    assert relative_spread(x) == pytest.approx(naive_relative_spread(x.double().numpy()), rel=1e-5)


def test_relative_spread_is_scale_invariant():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 6, generator=g)
    assert relative_spread(10 * x) == pytest.approx(relative_spread(x), rel=1e-5)
    assert relative_spread(0.01 * x) == pytest.approx(relative_spread(x), rel=1e-5)


@pytest.mark.parametrize("n", [2, 5, 50])
def test_relative_spread_of_identical_rows_is_zero(n):
    g = torch.Generator().manual_seed(n)
    row = torch.randn(1, 16, generator=g)
    assert relative_spread(row.repeat(n, 1)) == 0.0
    assert relative_spread(torch.full((n, 4), 0.3)) == 0.0


def test_relative_spread_needs_two_rows():
    with pytest.raises(ValueError, match="at least two"):
        relative_spread(torch.randn(1, 4))
    with pytest.raises(ValueError, match="at least two"):
        relative_spread(torch.randn(0, 4))


# ----------------------------------------------------------------------------- chance levels

def naive_chance_p_at_1(labels: list[int]) -> float:
    n = len(labels)
    shares = [sum(labels[j] == labels[i] for j in range(n) if j != i) / (n - 1) for i in range(n)]
    return sum(shares) / n


def naive_random_map_at_r(labels: list[int], trials: int, seed: int) -> float:
    """Every query ranks the others in a uniformly random order; AP@R by hand, averaged."""
    rng = np.random.default_rng(seed)
    n, aps = len(labels), []
    for _ in range(trials):
        for i in range(n):
            others = [j for j in range(n) if j != i]
            big_r = sum(labels[j] == labels[i] for j in others)
            if big_r == 0:
                continue
            ranking = rng.permutation(others)[:big_r]
            hits, ap = 0, 0.0
            for rank, j in enumerate(ranking, start=1):
                if labels[j] == labels[i]:
                    hits += 1
                    ap += hits / rank
            aps.append(ap / big_r)
    return sum(aps) / len(aps)


def test_chance_p_at_1_is_exact():
    labels = torch.tensor([0] * 3 + [1] * 7 + [2] * 2 + [5] * 12 + [9] * 6)
    levels = chance_levels(labels[torch.randperm(len(labels))], trials=2)
    assert levels["P@1"] == pytest.approx(naive_chance_p_at_1(labels.tolist()), rel=1e-6)


def test_chance_map_at_r_agrees_with_monte_carlo_and_is_low():
    labels = torch.arange(10).repeat_interleave(6)
    levels = chance_levels(labels, trials=40, seed=0)
    estimate = naive_random_map_at_r(labels.tolist(), trials=40, seed=1)
    assert levels["MAP@R"] == pytest.approx(estimate, abs=0.02)
    assert levels["P@1"] == pytest.approx(5 / 59)
    assert levels["P@1"] < 0.2 and levels["MAP@R"] < 0.2


def test_chance_levels_are_deterministic_for_a_seed():
    labels = torch.arange(8).repeat_interleave(5)
    assert chance_levels(labels, trials=3, seed=4) == chance_levels(labels, trials=3, seed=4)
    assert chance_levels(labels, trials=3, seed=4)["MAP@R"] != chance_levels(labels, trials=3, seed=5)["MAP@R"]


# ----------------------------------------------------------------------------- seeds

def test_over_seeds_collects_lists_and_passes_each_seed():
    calls = []

    def train(seed):
        calls.append(seed)
        return {"MAP@R": torch.tensor(0.5 + seed), "P@1": seed / 10}

    out = over_seeds(train, 3)
    assert calls == [0, 1, 2]
    assert out == {"MAP@R": [0.5, 1.5, 2.5], "P@1": [0.0, 0.1, 0.2]}
    assert all(isinstance(v, float) for vs in out.values() for v in vs)
    calls.clear()
    assert over_seeds(train, [7, 3])["P@1"] == [0.7, 0.3] and calls == [7, 3]
    with pytest.raises(ValueError, match="at least one seed"):
        over_seeds(train, [])
    with pytest.raises(ValueError, match="at least one seed"):
        over_seeds(train, 0)


def test_train_over_seeds_is_reproducible_and_build_reseeds_the_step_generator():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=g)
    y = torch.arange(40) % 4
    x = x + y[:, None].float() * 2                                     # learnable: classes are shifted
    miner = torch.Generator()
    draws = []

    def step(model, batch):
        noise = torch.rand(1, generator=miner)                         # a draw from the reseeded generator
        draws.append(noise.item())
        e = model(x[batch])
        return ((e[:, None] - e[None]).pow(2).sum(-1) * (y[batch, None] == y[None, batch])).mean() * noise.item()

    def build(seed):
        miner.manual_seed(seed)
        gb = torch.Generator().manual_seed(seed)
        return nn.Linear(6, 3), [torch.randperm(40, generator=gb)[:16] for _ in range(3)], step

    run = lambda seeds: train_over_seeds(build, seeds, epochs=2, test=(x, y), lr=1e-2)   # noqa: E731
    first = run([0, 1])
    first_draws, draws[:] = list(draws), []
    second = run([0, 1])
    assert set(first) == {"P@1", "MAP@R", "seconds"} and len(first["MAP@R"]) == 2
    assert first["MAP@R"] == second["MAP@R"] and first["P@1"] == second["P@1"]   # same seeds, same numbers
    assert draws == first_draws and draws[:6] != draws[6:]            # generator reseeded per seed
    assert first["MAP@R"][0] != first["MAP@R"][1]                     # different seeds, different nets
    assert all(s >= 0 for s in first["seconds"])


def test_train_run_seeds_before_build_and_decays_along_a_cosine():
    x = torch.randn(24, 5, generator=torch.Generator().manual_seed(1))
    y = torch.arange(24) % 3
    seen = []

    def build(seed):
        seen.append((seed, torch.rand(1).item()))                      # after seed_everything(seed)
        step = lambda m, b: (m(x[b]) - y[b, None].float()).pow(2).mean()   # noqa: E731
        return nn.Linear(5, 2), [torch.arange(12), torch.arange(12, 24)], step

    model, history = train_run(build, 3, epochs=2, lr=0.1, cosine=True, evaluate=lambda m: {"one": 1.0})
    model2, _ = train_run(build, 3, epochs=2, lr=0.1, cosine=True)
    assert seen[0] == seen[1] and seen[0][0] == 3                     # the same seed draws the same numbers
    assert torch.equal(model.weight, model2.weight)
    assert [e["one"] for e in history.epochs] == [1.0, 1.0] and len(history.steps) == 4
    assert history._optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * cosine_schedule(4)(3))


@pytest.mark.parametrize("values", [[0.61, 0.58, 0.66], [1, 2, 3, 4, 10], [0.5, 0.5]])
def test_mean_sd_matches_statistics(values):
    m, sd = mean_sd(values)
    assert m == pytest.approx(statistics.mean(values))
    assert sd == pytest.approx(statistics.stdev(values))


def test_mean_sd_single_value_and_empty():
    assert mean_sd([0.42]) == (0.42, 0.0)
    with pytest.raises(ValueError, match="no values"):
        mean_sd([])


# ----------------------------------------------------------------------------- models

def fixed_linear(dim=2):
    """A model with parameters that maps 2-D points to themselves (a fixed identity nn.Linear)."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(dim, dim, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(dim))
    return model


def test_retrieval_scores_of_separated_clusters_are_perfect():
    x, y = clusters()
    model = fixed_linear()
    model.train()
    scores = retrieval_scores(model, x, y)
    assert scores == {"P@1": 1.0, "MAP@R": pytest.approx(1.0)}
    assert model.training                                  # embed puts the model back as it was


def test_retrieval_scores_of_images_through_flatten_and_linear():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(3).repeat_interleave(5)
    x = torch.zeros(15, 1, 2, 2)
    x.view(15, 4)[torch.arange(15), y] = 1.0                 # class c lights pixel c
    x += 0.01 * torch.rand(15, 1, 2, 2, generator=g)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight.copy_(5 * torch.eye(3, 4))
    assert retrieval_scores(model, x, y) == {"P@1": 1.0, "MAP@R": pytest.approx(1.0)}


def test_collapse_report_healthy_and_collapsed():
    x, y = clusters(dim=3)
    healthy = collapse_report(fixed_linear(3), x, y)
    assert healthy["MAP@R"] == pytest.approx(1.0)
    assert healthy["effective rank"] == pytest.approx(naive_effective_rank(x.double().numpy()), rel=1e-4)
    assert healthy["relative spread"] == pytest.approx(naive_relative_spread(x.double().numpy()), rel=1e-4)


def test_collapse_report_of_a_constant_model_is_zero():
    x, y = clusters(dim=3)
    collapsed = collapse_report(Constant(), x, y)
    assert collapsed["effective rank"] == 0.0
    assert collapsed["relative spread"] == 0.0


def test_sample_pair_distances():
    x, y = clusters(n_classes=5, per_class=8, dim=3, spread=1.0)
    model = fixed_linear(3)
    d, same, (i, j) = sample_pair_distances(model, x, y, n_pairs=40, seed=2)
    assert d.shape == same.shape == i.shape == j.shape == (40,)
    assert int(same.sum()) == 20 and same.dtype == torch.bool
    assert torch.equal(same, y[i] == y[j]) and not torch.any(i[same] == j[same])
    assert torch.allclose(d, paired_distances(x[i], x[j]))
    again = sample_pair_distances(model, x, y, n_pairs=40, seed=2)
    assert torch.equal(again[0], d) and torch.equal(again[2][0], i)


def test_registration_report_of_separated_clusters_is_perfect():
    x, y = clusters(n_classes=6, per_class=10, spread=0.1, seed=1)
    known = (x[y < 3], y[y < 3])
    new = y >= 3
    first = torch.zeros_like(y, dtype=torch.bool)
    for c in (3, 4, 5):
        first[torch.nonzero(y == c)[:2]] = True               # two registered images per new class
    registered = (x[first], y[first])
    newcomers = (x[new & ~first], y[new & ~first])
    report = registration_report(fixed_linear(), known, registered, newcomers, threshold=2.0)
    assert report == {"verification of newcomer pairs": 1.0, "which newcomer?": 1.0, "which of all classes?": 1.0}
    # A threshold below every distance rejects all pairs: only the different half is right.
    low = registration_report(fixed_linear(), known, registered, newcomers, threshold=-1.0)
    assert low["verification of newcomer pairs"] == pytest.approx(0.5)
    assert math.isfinite(low["which newcomer?"])


# --- lesson 08: verification against identification ------------------------------------------------------


def test_verification_accuracy_hand_case():
    d = torch.tensor([0.1, 0.5, 0.9, 0.3, 0.4])
    same = torch.tensor([True, True, False, False, True])
    # "same if d <= 0.4": T F F T T against T T F F T -> right, wrong, right, wrong, right (d = threshold is "same")
    assert verification_accuracy(d, same, 0.4) == pytest.approx(3 / 5)
    assert verification_accuracy(d, same.long(), 0.4) == pytest.approx(3 / 5)          # 0/1 labels work too
    assert verification_accuracy(d, same, 10.0) == pytest.approx(3 / 5)                 # all "same"
    assert verification_accuracy(d, same, -1.0) == pytest.approx(2 / 5)                 # all "different"


@pytest.mark.parametrize("d, same", [(torch.rand(4), torch.ones(3, dtype=torch.bool)),
                                     (torch.rand(2, 2), torch.ones(2, 2, dtype=torch.bool)),
                                     (torch.rand(0), torch.ones(0, dtype=torch.bool))])
def test_verification_accuracy_rejects_bad_shapes(d, same):
    with pytest.raises(ValueError, match=r"must both be \(B,\) with B > 0"):
        verification_accuracy(d, same, 0.5)


def test_genuine_impostor_distances_match_a_loop_over_pairs():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(11, 3, generator=g), torch.randint(0, 3, (11,), generator=g)
    genuine, impostor = genuine_impostor_distances(x, y)
    slow_g = [float((x[i] - x[j]).norm()) for i in range(11) for j in range(i + 1, 11) if y[i] == y[j]]
    slow_i = [float((x[i] - x[j]).norm()) for i in range(11) for j in range(i + 1, 11) if y[i] != y[j]]
    torch.testing.assert_close(genuine, torch.tensor(slow_g), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(impostor, torch.tensor(slow_i), atol=1e-5, rtol=1e-5)
    assert len(genuine) + len(impostor) == 11 * 10 // 2
    one_class = genuine_impostor_distances(x, torch.zeros(11, dtype=torch.long))
    assert len(one_class[0]) == 55 and len(one_class[1]) == 0
    with pytest.raises(ValueError, match="one label per embedding"):
        genuine_impostor_distances(x, y[:5])


def test_identification_of_separated_classes_is_perfect_for_every_gallery_size():
    x, y = clusters(n_classes=6, per_class=4, spread=0.1)
    y = torch.tensor([3, 17, 42, 77, 80, 99])[y]                     # labels with gaps
    assert [identification_accuracy(x, y, size, trials=20) for size in range(1, 7)] == [1.0] * 6


def test_identification_with_a_gallery_of_one_is_always_right():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 4, generator=g), torch.arange(10).repeat_interleave(3)
    assert identification_accuracy(x, y, 1, trials=30) == 1.0


@pytest.mark.parametrize("size, tolerance", [(2, 0.06), (5, 0.05), (10, 0.035)])
def test_identification_of_random_embeddings_is_near_chance(size, tolerance):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(100, 8, generator=g), torch.arange(20).repeat_interleave(5)
    assert identification_accuracy(x, y, size, trials=200) == pytest.approx(1 / size, abs=tolerance)


def test_identification_is_seeded():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(40, 4, generator=g), torch.arange(8).repeat_interleave(5)
    first = identification_accuracy(x, y, 4, trials=50, seed=3)
    assert identification_accuracy(x, y, 4, trials=50, seed=3) == first
    assert identification_accuracy(x, y, 4, trials=50, seed=4) != first


@pytest.mark.parametrize("size, labels", [(0, torch.arange(4).repeat_interleave(2)),
                                          (5, torch.arange(4).repeat_interleave(2)),
                                          (2, torch.tensor([0, 0, 1, 1, 2, 2, 3, 4]))])   # classes 3 and 4: one image
def test_identification_rejects_bad_gallery_sizes_and_lone_images(size, labels):
    with pytest.raises(ValueError, match="gallery_size must be 1"):
        identification_accuracy(torch.randn(8, 2), labels, size)


def slow_identification_from_pairs(genuine, impostor, sizes):
    out = []
    for size in sizes:
        probs = [(sum(1 for i in impostor if i > d) / len(impostor)) ** (size - 1) for d in genuine]
        out.append(sum(probs) / len(probs))
    return out


def test_identification_from_pairs_hand_case_and_loop():
    genuine, impostor = torch.tensor([0.1, 0.4, 0.9]), torch.tensor([0.2, 0.4, 0.6, 0.8])
    # P(impostor > d): 1 for 0.1, 2/4 for 0.4 (a tie does not beat), 0 for 0.9
    assert identification_from_pairs(genuine, impostor, [1, 2, 3]) == pytest.approx([1.0, 0.5, (1 + 0.25) / 3])
    g = torch.Generator().manual_seed(0)
    genuine, impostor = torch.rand(30, generator=g), torch.rand(50, generator=g) + 0.3
    sizes = [1, 2, 3, 5, 10, 40]
    predicted = identification_from_pairs(genuine, impostor, sizes)
    assert predicted == pytest.approx(slow_identification_from_pairs(genuine.tolist(), impostor.tolist(), sizes))
    assert predicted[0] == 1.0
    assert all(a >= b for a, b in zip(predicted, predicted[1:])) and predicted[-1] < predicted[0]


def test_identification_from_pairs_rejects_empty_or_2d_input():
    for genuine, impostor in ((torch.rand(0), torch.rand(3)), (torch.rand(3), torch.rand(0)),
                              (torch.rand(2, 2), torch.rand(3))):
        with pytest.raises(ValueError, match="non-empty 1-D"):
            identification_from_pairs(genuine, impostor, [1, 2])
