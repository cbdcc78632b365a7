"""Lesson 04's exercises: the HTL loss checker accepts hand-written solutions, names each usual mistake, refuses
course_lib's own loss and falls back on an unsolved stub; the nearest-classes checker's added mistake."""
import itertools

import pytest
import torch

from course_lib import exercises as ex
from course_lib.similarity import batch_all_triplet_loss, class_margin_triplet_loss


# ---------------------------------------------------------------------------------------------- solutions
def htl_cube(e, labels, class_margins):
    """The notebook's solution: 03's batch-all cube on squared distances, the margin looked up per (a, n)."""
    sq = (e[:, None, :] - e[None, :, :]).pow(2).sum(-1)               # (B, B) squared distances
    margin = class_margins[labels][:, labels]                          # (B, B) alpha[y_a, y_n]
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(labels), dtype=torch.bool)
    valid = pos[:, :, None] & ~same[:, None, :]                        # (B, B, B) [a, p, n]
    hinge = torch.where(valid, sq[:, :, None] - sq[:, None, :] + margin[:, None, :], 0).clamp_min(0)
    return hinge.sum() / (hinge > 0).sum().clamp_min(1)


def htl_loop(e, labels, class_margins):
    """A Python loop over the triplets: slow and obvious."""
    terms = []
    for a, p, n in itertools.product(range(len(labels)), repeat=3):
        if a != p and labels[a] == labels[p] and labels[a] != labels[n]:
            t = (e[a] - e[p]).pow(2).sum() - (e[a] - e[n]).pow(2).sum() + class_margins[labels[a], labels[n]]
            if t > 0:
                terms.append(t)
    return torch.stack(terms).mean() if terms else e.sum() * 0 + class_margins.sum() * 0


def htl_pairs(e, labels, class_margins):
    """The (pairs, negatives) layout of course_lib's batch-all, written out: no cube."""
    sq = torch.cdist(e, e).pow(2)
    a, p = torch.nonzero((labels[:, None] == labels[None, :]) & ~torch.eye(len(labels), dtype=torch.bool),
                         as_tuple=True)
    losses = (sq[a, p][:, None] - sq[a] + class_margins[labels[a]][:, labels]).clamp_min(0)   # (M, B)
    active = (labels[a][:, None] != labels[None, :]) & (losses > 0)
    return (losses * active).sum() / active.sum().clamp_min(1)


@pytest.mark.parametrize("solution", [htl_cube, htl_loop, htl_pairs])
def test_hand_written_htl_losses_pass(solution, capsys):
    assert ex.check_htl_loss(solution) is True
    assert "✓ HTL loss: all" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- the mistakes
def _cube(e, labels, margin_an, distinct=True, squared=True, hinge=True, over="active"):
    d = (e[:, None, :] - e[None, :, :]).pow(2).sum(-1)
    d = d.clamp_min(1e-12).sqrt() if not squared else d
    loss = d[:, :, None] - d[:, None, :] + margin_an
    loss = loss.clamp_min(0) if hinge else loss
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(labels), dtype=torch.bool) if distinct else same
    valid = pos[:, :, None] & ~same[:, None, :]
    keep = valid & (loss > 0) if over == "active" else valid
    return (loss * keep).sum() / keep.sum().clamp_min(1)


def htl_transposed(e, y, m):                                          # margin[y_n, y_a]
    return _cube(e, y, m[y][:, y].T[:, None, :])


def htl_margin_of_positive(e, y, m):                                  # the (B, B) table broadcast along [a, p]
    return _cube(e, y, m[y][:, y][:, :, None])


def htl_all_valid(e, y, m):
    return _cube(e, y, m[y][:, y][:, None, :], over="valid")


def htl_self_positive(e, y, m):
    return _cube(e, y, m[y][:, y][:, None, :], distinct=False)


def htl_plain(e, y, m):
    return _cube(e, y, m[y][:, y][:, None, :], squared=False)


def htl_no_hinge(e, y, m):
    return _cube(e, y, m[y][:, y][:, None, :], hinge=False, over="valid")


def htl_nan(e, y, m):
    sq = (e[:, None, :] - e[None, :, :]).pow(2).sum(-1)
    same = y[:, None] == y[None, :]
    valid = (same & ~torch.eye(len(y), dtype=torch.bool))[:, :, None] & ~same[:, None, :]
    loss = (sq[:, :, None] - sq[:, None, :] + m[y][:, y][:, None, :]).clamp_min(0)
    return loss[valid & (loss > 0)].mean()


WRONG = [(htl_transposed, "wrong way round"), (htl_margin_of_positive, "(anchor, NEGATIVE)"),
         (htl_all_valid, "ACTIVE"), (htl_self_positive, "not its own positive"), (htl_plain, "SQUARED"),
         (htl_no_hinge, "Clamp each triplet"), (htl_nan, "0 / 0")]


@pytest.mark.parametrize("wrong, hint", WRONG, ids=[f.__name__ for f, _ in WRONG])
def test_each_htl_mistake_fails_with_its_hint(wrong, hint, capsys):
    assert ex.check_htl_loss(wrong) is False
    out = capsys.readouterr().out
    assert out.startswith("✗") and hint in out, out


def test_the_nearest_classes_checker_names_a_sort_that_assumes_the_class_comes_first(capsys):
    def drop_first(d, anchors, m):
        return torch.cat([anchors[:, None], d[anchors].argsort(dim=1)[:, 1:m]], 1)

    assert ex.check_nearest_classes(drop_first) is False
    assert "sorts first" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- library and stub
@pytest.mark.parametrize("wrapper", [
    lambda e, y, m: class_margin_triplet_loss(e, y, m)[0],
    lambda e, y, m: batch_all_triplet_loss(e, y, m[y][:, y], squared=True)[0],
], ids=["class_margin_triplet_loss", "batch_all_triplet_loss"])
def test_a_function_that_calls_the_library_fails(wrapper, capsys):
    assert ex.check_htl_loss(wrapper) is False
    out = capsys.readouterr().out
    assert "calls course_lib's own" in out and "write it yourself" in out


def test_the_stub_falls_back_to_course_libs_loss(capsys):
    def my_htl_loss(embeddings, labels, class_margins):
        raise NotImplementedError

    loss_fn = ex.use_if_correct(my_htl_loss, ex.check_htl_loss)
    out = capsys.readouterr().out
    assert "not done yet" in out and "Using course_lib.similarity.class_margin_triplet_loss" in out
    e, y = torch.tensor([[0.0], [1.0], [1.5], [3.0]]), torch.tensor([0, 0, 1, 1])
    margins = torch.tensor([[-0.1, 1.5], [0.5, 0.2]])
    assert loss_fn(e, y, margins).item() == pytest.approx(1.375)
    assert ex.use_if_correct(htl_cube, ex.check_htl_loss) is htl_cube
