import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.core import embed
from course_lib.experiments import Recipe, best_recipe, candidate_recipes, choose_settings, recipe_name, recipe_setup
from course_lib.similarity import (
    AnchorNeighbourSampler,
    ClassTree,
    LiveTree,
    PKSampler,
    RebuildEachEpoch,
    batch_all_triplet_loss,
    build_tree,
    class_distances,
    class_margin_triplet_loss,
    dynamic_margin,
    hierarchical_triplet_loss,
    nearest_classes,
    tree_merges,
    tree_thresholds,
    within_class_distance,
)

HAND = torch.tensor([[0, 1, 3, 3], [1, 0, 3, 3], [3, 3, 0, .5], [3, 3, .5, 0]])


def unit(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)


def naive_class_distances(e, y):
    classes = sorted(set(y.tolist()))
    out = torch.zeros(len(classes), len(classes), dtype=torch.float64)
    for i, p in enumerate(classes):
        for j, q in enumerate(classes):
            a, b = e[y == p], e[y == q]
            pairs = [(u, v) for u in range(len(a)) for v in range(len(b)) if p != q or u != v]
            out[i, j] = sum(float((a[u] - b[v]).pow(2).sum()) for u, v in pairs) / max(len(pairs), 1)
    return out


def test_hand_worked_tree():
    assert torch.allclose(tree_thresholds(0.4, 4), torch.tensor([1.3, 2.2, 3.1, 4.0], dtype=torch.float64))
    d_h = build_tree(HAND, d0=0.4, levels=4)
    expected = torch.tensor([[0, 1.3, 3.1, 3.1], [1.3, 0, 3.1, 3.1], [3.1, 3.1, 0, 1.3], [3.1, 3.1, 1.3, 0]])
    assert torch.allclose(d_h, expected)
    merges = tree_merges(HAND, 0.4, 4)
    assert [round(t, 6) for t, _, _ in merges] == [1.3, 1.3, 3.1]
    assert sorted(merges[-1][1] + merges[-1][2]) == [0, 1, 2, 3]


def test_average_linkage_uses_the_mean_of_class_distances():
    # {0, 1} merge at level 1; node {0,1} to 2: mean(1.0, 2.6) = 1.8 -> level 2 (threshold 2.0), not the
    # single-linkage 1.0 (level 1) nor the complete-linkage 2.6 (level 3).
    d = torch.tensor([[0, 0.5, 1.0], [0.5, 0, 2.6], [1.0, 2.6, 0]])
    d_h = build_tree(d, d0=0.0, levels=4)                              # thresholds 1, 2, 3, 4
    # level 1 merges the closest pair first (0.5), then {0,1}-2 is 1.8 > 1: waits for level 2
    assert d_h[0, 1] == 1.0 and d_h[0, 2] == 2.0 and d_h[1, 2] == 2.0


def test_tree_is_symmetric_ultrametric_and_complete():
    e, y = unit(60, 5), torch.arange(12).repeat(5)
    d = class_distances(e, y)
    d0, _ = within_class_distance(e, y)
    d_h = build_tree(d, d0, levels=8)
    levels = set(tree_thresholds(d0, 8).float().tolist())
    assert torch.equal(d_h, d_h.T) and torch.all(d_h.diagonal() == 0)
    assert all(v in levels for v in d_h[~torch.eye(12, dtype=torch.bool)].tolist())
    for i, j, k in itertools.permutations(range(12), 3):              # ultrametric: d(i,k) <= max(d(i,j), d(j,k))
        assert d_h[i, k] <= max(d_h[i, j], d_h[j, k]) + 1e-6


def test_class_distances_match_the_pairwise_definition():
    e = unit(23, 4, seed=1)
    y = torch.tensor([3, 7, 7, 9, 3, 3, 9, 7, 9, 9, 3, 7, 7, 3, 9, 3, 7, 9, 3, 7, 9, 11, 7])   # class 11: one image
    got = class_distances(e, y).double()
    assert torch.allclose(got, naive_class_distances(e, y), atol=1e-5)
    d0, s = within_class_distance(e, y)
    assert torch.allclose(s.double(), naive_class_distances(e, y).diagonal(), atol=1e-5)
    assert s[-1] == 0                                                  # a single image: no pair, s = 0
    assert d0 == pytest.approx(s[:-1].double().mean().item(), abs=1e-6)   # ... and left out of d0


def test_unnormalised_embeddings_and_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="L2-normalised"):
        class_distances(torch.randn(6, 3) * 3, torch.arange(6) % 2)
    with pytest.raises(ValueError, match="single image"):
        within_class_distance(unit(3, 2), torch.arange(3))
    with pytest.raises(ValueError, match="levels"):
        tree_thresholds(0.5, 0)
    with pytest.raises(ValueError, match="d0"):
        tree_thresholds(4.5)


def test_dynamic_margin_on_a_fixture():
    d_h = torch.tensor([[0.0, 1.3, 3.1], [1.3, 0.0, 3.1], [3.1, 3.1, 0.0]])
    s = torch.tensor([0.2, 0.4, 0.1])
    alpha = dynamic_margin(d_h, s, beta=0.1)
    assert torch.allclose(alpha[0, 1], torch.tensor(0.1 + 1.3 - 0.2))   # the anchor's s, not the negative's
    assert torch.allclose(alpha[1, 0], torch.tensor(0.1 + 1.3 - 0.4))
    assert torch.allclose(alpha[2, 0], torch.tensor(0.1 + 3.1 - 0.1))


def test_nearest_classes_excludes_the_anchor_and_sorts():
    d = torch.tensor([[0.1, 0.9, 0.5, 0.7], [0.9, 0.0, 0.3, 0.2], [0.5, 0.3, 0.0, 0.8], [0.7, 0.2, 0.8, 0.0]])
    assert nearest_classes(d, torch.tensor([0, 1]), 3).tolist() == [[0, 2, 3], [1, 3, 2]]
    assert nearest_classes(d, torch.tensor([2]), 1).tolist() == [[2]]
    with pytest.raises(ValueError, match="m = 5"):
        nearest_classes(d, torch.tensor([0]), 5)


def small_problem():
    e = unit(80, 6, seed=3).float()
    y = torch.arange(10).repeat_interleave(8) * 3 + 1                 # labels 1, 4, ..., 28: not 0..C-1
    return e, y, ClassTree.from_embeddings(e, y, levels=8)


def test_sampler_batches_have_the_promised_structure():
    e, y, tree = small_problem()
    sampler = AnchorNeighbourSampler(y, tree, anchors=2, m=3, t=4, steps=5, seed=0)
    for batch in sampler:
        labels = y[batch].view(6, 4)                                   # class by class, t images each
        assert torch.all(labels == labels[:, :1]) and labels[:, 0].unique().numel() == 6
        assert all(len(set(batch[4 * c: 4 * c + 4].tolist())) == 4 for c in range(6))   # no repeated image
    g = torch.Generator().manual_seed(1)
    groups = sampler.choose_classes(g)                                 # (anchors, m) rows
    assert groups.shape == (2, 3) and groups.flatten().unique().numel() == 6
    first, second = groups
    d = tree.distances[second[0]].clone()
    d[second[0]] = float("inf")
    d[first] = float("inf")                                            # taken by the first group
    assert second[1:].tolist() == d.topk(2, largest=False).indices.tolist()
    d = tree.distances[first[0]].clone()
    d[first[0]] = float("inf")
    assert first[1:].tolist() == d.topk(2, largest=False).indices.tolist()
    assert [b.tolist() for b in sampler] != [b.tolist() for b in sampler]   # epochs differ ...
    sampler.set_epoch(0)
    again = AnchorNeighbourSampler(y, tree, anchors=2, m=3, t=4, steps=5, seed=0)
    assert [b.tolist() for b in sampler] == [b.tolist() for b in again]     # ... and are reproducible


def test_sampler_refuses_impossible_settings():
    e, y, tree = small_problem()
    with pytest.raises(ValueError, match="distinct classes"):
        AnchorNeighbourSampler(y, tree, anchors=4, m=3, t=2)
    other = ClassTree.from_embeddings(e[:40], y[:40], levels=4)
    with pytest.raises(ValueError, match="other classes"):
        AnchorNeighbourSampler(y, other, anchors=1, m=2, t=2)


def test_hierarchical_loss_is_batch_all_with_the_dynamic_margin():
    e, y, tree = small_problem()
    batch = torch.arange(0, 80, 3)
    emb = e[batch].clone().requires_grad_(True)
    loss, stats = hierarchical_triplet_loss(emb, y[batch], tree, beta=0.1)
    alpha = dynamic_margin(tree.d_h, tree.s, 0.1)
    rows = (y[batch] - 1) // 3
    # slow reference: every valid triplet, plain distances, mean over the active ones
    total, active, valid = 0.0, 0, 0
    for a, p, n in itertools.product(range(len(batch)), repeat=3):
        ya, yp, yn = y[batch][a], y[batch][p], y[batch][n]
        if a == p or ya != yp or ya == yn:
            continue
        valid += 1
        x = emb.detach()
        v = float((x[a] - x[p]).norm() - (x[a] - x[n]).norm() + alpha[rows[a], rows[n]])
        if v > 0:
            total, active = total + v, active + 1
    assert loss.item() == pytest.approx(total / active, rel=1e-4)
    assert stats["active"].item() == pytest.approx(active / valid)
    loss.backward()
    assert torch.isfinite(emb.grad).all()
    fixed, _ = batch_all_triplet_loss(emb, y[batch], 0.3)
    constant = torch.full((len(batch), len(batch)), 0.3)
    assert torch.allclose(batch_all_triplet_loss(emb, y[batch], constant)[0], fixed)   # tensor margin = float
    with pytest.raises(ValueError, match="margin tensor"):
        batch_all_triplet_loss(emb, y[batch], torch.zeros(3, 3))
    with pytest.raises(ValueError, match="not in the tree"):
        hierarchical_triplet_loss(emb, torch.full((len(batch),), 2), tree)


def test_class_margin_loss_matches_a_loop_and_refuses_bad_tables():
    e, y, tree = small_problem()
    batch = torch.arange(0, 80, 3)
    rows = tree.rows(y[batch])
    alpha = tree.class_margins(0.1, 0.5)                              # (C, C), not symmetric
    assert torch.allclose(alpha, 0.1 + 0.5 * (tree.d_h - tree.s[:, None]))
    emb = e[batch].clone().requires_grad_(True)
    loss, stats = class_margin_triplet_loss(emb, rows, alpha)
    total, active, valid = 0.0, 0, 0
    x = emb.detach()
    for a, p, n in itertools.product(range(len(batch)), repeat=3):
        if a == p or rows[a] != rows[p] or rows[a] == rows[n]:
            continue
        valid += 1
        v = float((x[a] - x[p]).pow(2).sum() - (x[a] - x[n]).pow(2).sum() + alpha[rows[a], rows[n]])
        total, active = (total + v, active + 1) if v > 0 else (total, active)
    assert loss.item() == pytest.approx(total / active, rel=1e-4) and stats["active"].item() == pytest.approx(active / valid)
    loss.backward()
    assert torch.isfinite(emb.grad).all()
    same, _ = hierarchical_triplet_loss(e[batch], y[batch], tree, 0.1, squared=True, scale=0.5)
    assert torch.allclose(same, class_margin_triplet_loss(e[batch], rows, alpha)[0])
    with pytest.raises(ValueError, match="square"):
        class_margin_triplet_loss(e[batch], rows, alpha[:, :3])
    with pytest.raises(ValueError, match="class rows"):
        class_margin_triplet_loss(e[batch], y[batch], alpha)          # labels, not rows
    with pytest.raises(ValueError, match="integer"):
        class_margin_triplet_loss(e[batch], rows.float(), alpha)


def test_recipes_train_with_the_htl_loss_they_are_given():
    x, y, _ = small_problem()
    torch.manual_seed(0)
    model = UnitLinear()
    tree = ClassTree.from_embeddings(embed(model, x), y, levels=4)
    sizes = dict(classes_per_batch=4, per_class=2, steps=3, anchors=2, m=2)
    seen = []

    def mine(e, rows, margins):
        seen.append((rows.clone(), margins.clone()))
        return class_margin_triplet_loss(e, rows, margins)[0]

    _, batches, step = recipe_setup(Recipe("neighbours", "dynamic", gamma=0.5, squared=True), lambda: model, x, y,
                                    tree, **sizes, htl=mine)(0)
    idx = next(iter(batches))
    loss, _ = step(model, idx)
    rows, margins = seen[0]
    assert torch.equal(rows, tree.rows(y[idx])) and torch.allclose(margins, tree.class_margins(0.1, 0.5))
    with torch.no_grad():
        expected = hierarchical_triplet_loss(model(x[idx]), y[idx], tree, 0.1, squared=True, scale=0.5)[0]
    assert torch.allclose(loss, expected)
    with pytest.raises(ValueError, match="squared=True"):
        recipe_setup(Recipe("P×K", "dynamic"), lambda: model, x, y, tree, **sizes, htl=mine)(0)


class UnitLinear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(6, 4)

    def forward(self, x):
        return F.normalize(self.linear(x), dim=1)


def test_live_tree_rebuilds_at_its_interval():
    e, y, _ = small_problem()
    torch.manual_seed(0)
    model = UnitLinear()
    live = LiveTree(model, e, y, levels=4, every=2)
    first = live.tree
    sampler = AnchorNeighbourSampler(y, live, anchors=2, m=2, t=2, steps=1)
    for epoch in range(4):                                             # rebuilt at the start of epoch 2 only
        sampler.set_epoch(epoch)
        list(sampler)
    assert len(live.seconds) == 2 and live.tree is not first
    assert torch.allclose(live.tree.distances, first.distances)       # same model, same tree
    with torch.no_grad():
        model.linear.weight.mul_(-1).add_(0.5)
    live.refresh(4)
    assert not torch.allclose(live.tree.distances, first.distances)   # the tree follows the model
    with pytest.raises(ValueError, match="every"):
        LiveTree(model, e, y, every=0)


def test_recipes_build_the_promised_batches_and_losses():
    x, y, _ = small_problem()
    torch.manual_seed(0)
    model = UnitLinear()
    tree = ClassTree.from_embeddings(embed(model, x), y, levels=4)
    sizes = dict(classes_per_batch=4, per_class=2, steps=3, anchors=2, m=2)

    def first(recipe):
        built, batches, step = recipe_setup(recipe, lambda: model, x, y, tree, **sizes)(0)
        assert built is model
        idx = next(iter(batches))
        return batches, idx, step(model, idx)[0]

    batches, idx, loss = first(Recipe("P×K", 0.3, squared=True))
    assert isinstance(batches, PKSampler) and len(idx) == 8
    with torch.no_grad():
        assert torch.allclose(loss, batch_all_triplet_loss(model(x[idx]), y[idx], 0.3, squared=True)[0])
    batches, idx, loss = first(Recipe("neighbours", "dynamic", gamma=0.5))
    assert isinstance(batches, AnchorNeighbourSampler) and batches.tree.tree is tree and len(idx) == 8
    with torch.no_grad():
        expected = hierarchical_triplet_loss(model(x[idx]), y[idx], tree, 0.1, scale=0.5)[0]
    assert torch.allclose(loss, expected)
    batches, idx, _ = first(Recipe("P×K", "dynamic"))
    assert isinstance(batches, RebuildEachEpoch) and len(idx) == 8
    batches, idx, _ = first(Recipe("neighbours", 0.2))               # neighbour batches, fixed margin
    assert isinstance(batches, AnchorNeighbourSampler) and y[idx].unique().numel() == 4
    with pytest.raises(ValueError, match="budgets match"):
        recipe_setup(Recipe("neighbours", 0.2), lambda: model, x, y, tree, **{**sizes, "m": 3})
    with pytest.raises(ValueError, match="sampling"):
        Recipe("random", 0.2)
    with pytest.raises(ValueError, match="margin"):
        Recipe("P×K", "large")


def test_the_validation_grid_and_the_choice_of_settings():
    grid = candidate_recipes({False: (0.2, 1.0), True: (0.5,)}, (0.25, 1.0))
    expected = []                                                      # the grid written out by hand
    for squared, margins in ((False, (0.2, 1.0)), (True, (0.5,))):
        for m in margins:
            expected.append(Recipe("P×K", m, squared=squared))
    expected += [Recipe("neighbours", "dynamic", gamma=0.25, squared=True),
                 Recipe("neighbours", "dynamic", gamma=1.0, squared=True)]
    assert grid == expected
    assert [recipe_name(r) for r in grid] == ["batch-all, plain, margin 0.2", "batch-all, plain, margin 1.0",
                                              "batch-all, squared, margin 0.5", "HTL, γ 0.25", "HTL, γ 1.0"]
    assert recipe_name(Recipe("neighbours", 0.2)) == "neighbours, plain, margin 0.2"
    assert recipe_name(Recipe("P×K", "dynamic", gamma=0.5, squared=True)) == "dyn. margin γ 0.5, P×K"
    scores = dict(zip(grid, [0.30, 0.41, 0.41, 0.52, 0.50]))           # a tie between two baselines
    baseline, htl = choose_settings(scores)
    assert baseline == grid[1] and htl == grid[3]                      # the first of equal scores wins
    assert best_recipe(scores, lambda r: r.squared and not r.dynamic) == grid[2]   # the only squared baseline
    assert best_recipe(scores) == grid[3]
    with pytest.raises(ValueError, match="no recipe"):
        choose_settings({grid[0]: 0.3})


def test_margin_scale_multiplies_the_tree_part_only():
    e, y, tree = small_problem()
    batch = torch.arange(0, 80, 5)
    rows = tree.rows(y[batch])
    full = dynamic_margin(tree.d_h, tree.s, 0.1)[rows[:, None], rows[None, :]]
    assert torch.allclose(tree.margins(y[batch], 0.1), full)
    scaled = tree.margins(y[batch], 0.1, scale=0.25)
    assert torch.allclose(scaled, 0.1 + 0.25 * (full - 0.1))
    loss_sq, _ = hierarchical_triplet_loss(e[batch], y[batch], tree, 0.1, squared=True, scale=0.25)
    assert torch.allclose(loss_sq, batch_all_triplet_loss(e[batch], y[batch], scaled, squared=True)[0])


def test_dendrogram_segments_of_the_hand_tree():
    from course_lib.viz import dendrogram_segments
    order, segments = dendrogram_segments(tree_merges(HAND, 0.4, 4), 4)
    assert sorted(order) == [0, 1, 2, 3]
    assert {frozenset(order[:2]), frozenset(order[2:])} == {frozenset({0, 1}), frozenset({2, 3})}   # pairs adjacent
    assert len(segments) == 9                                          # 3 merges x (2 legs + 1 bar)
    bars = sorted(round(y0, 6) for x0, y0, x1, y1 in segments if y0 == y1 and x0 != x1)
    assert bars == [1.3, 1.3, 3.1]
    top = [s for s in segments if s[1] == s[3] == pytest.approx(3.1)][0]
    assert (top[0], top[2]) == (0.5, 2.5)                              # joins the middles of the two pairs


def test_tree_views_draw_and_the_widget_follows_the_dropdown(monkeypatch):
    from course_lib.viz import (
        class_neighbours_explorer,
        neighbour_table,
        plot_class_tree,
        plot_margin_matrix,
    )
    e, y, tree = small_problem()
    names = [f"{c:02d}" for c in range(100)]
    fig = plot_class_tree(tree, names)
    assert len(fig.layout.xaxis.ticktext) == 10 and fig.data[0].mode == "lines"
    alpha = dynamic_margin(tree.d_h, tree.s, 0.1)
    heat = plot_margin_matrix(alpha, tree, names)
    z = np.array(heat.data[0].z, dtype=float)
    assert z.shape == (10, 10) and np.isnan(np.diag(z)).all()
    order = [names[int(c)] for c in tree.classes]
    assert sorted(heat.data[0].x) == sorted(order)
    assert list(heat.layout.xaxis.tickvals) == list(heat.data[0].x)   # 10 classes: every one labelled
    some = [int(tree.classes[k]) for k in (1, 4, 6)]
    part = plot_margin_matrix(alpha, tree, names, classes=torch.tensor(some))
    rows = [int(tree.rows(torch.tensor([int(n)]))[0]) for n in part.data[0].x]
    assert sorted(part.data[0].x) == sorted(names[c] for c in some)
    assert np.allclose(np.array(part.data[0].z, dtype=float)[0, 1:], alpha[rows[0], rows[1:]].numpy())
    big = torch.rand(30, 30)                                           # 30 classes: every 5th labelled
    many = ClassTree.from_embeddings(unit(90, 8, seed=3), torch.arange(30).repeat(3), levels=4)
    assert len(plot_margin_matrix(big, many, names).layout.xaxis.tickvals) == 6
    table = neighbour_table(tree, 4, k=3)
    row = int(tree.rows(torch.tensor([4]))[0])
    d = tree.distances[row].clone()
    d[row] = float("inf")
    assert [c for c, _, _ in table] == [int(tree.classes[j]) for j in d.topk(3, largest=False).indices]
    import matplotlib.pyplot as plt

    import course_lib.viz.hierarchy as views
    drawn, real = [], views.plot_class_neighbours_static
    monkeypatch.setattr(views, "plot_class_neighbours_static",
                        lambda *a, **kw: drawn.append(a[4]) or real(*a, **kw))
    images = torch.rand(80, 1, 28, 28)
    w = class_neighbours_explorer(tree, images, y, names, k=3, start=4)
    pick, out = w.children
    assert pick.value == 4 and drawn == [4]
    pick.value = 7
    assert drawn == [4, 7]
    plt.close("all")
