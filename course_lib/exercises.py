"""Checkers for the coded exercises of the notebooks.

You write the few lines of an idea, then check them against course_lib:

    passed = check_contrastive_loss(my_contrastive_loss)
    loss_fn = use_if_correct(my_contrastive_loss, passed, contrastive_loss)

A checker runs your function on small cases worked by hand, on seeded random inputs (B = 1, one
class, all labels distinct, ...) and, for losses, on gradients. It prints one line when all checks
pass, or the first failing case with a hint naming the likely mistake (it also runs a few common
wrong versions and tells you when yours behaves like one of them). It returns True or False and
never raises because of your function; a stub that raises NotImplementedError is "not done yet".
"""
from __future__ import annotations

import math
import operator as op
import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from .distances import paired_distances, pairwise_distances
from .losses import batch_all_triplet_loss, batch_hard_triplet_loss, contrastive_loss, triplet_loss
from .metrics import precision_at_1
from .mining import semi_hard_triplets

__all__ = ["check_pairwise_distances", "check_contrastive_loss", "check_precision_at_1", "check_triplet_loss",
           "check_average_precision_at_r", "check_batch_hard_loss", "check_semi_hard_mask", "check_batch_all_loss",
           "check_dynamic_margin", "check_nearest_classes", "check_affine_theta", "check_bilinear_weights",
           "check_box_iou", "check_encode_boxes", "check_anchor_labels", "check_soft_argmax", "check_pck",
           "use_if_correct", "expect_at_least"]

# A rule tells whether a known mistake explains your output: rule(your output, expected output, inputs) -> bool.
Rule = Callable[[Any, Any, tuple], bool]


@dataclass(frozen=True)
class _Case:
    name: str
    args: tuple                 # the inputs, cloned before every call
    expected: Any = None        # worked out by hand; None: ask the reference function
    grad: str | None = None     # "finite": gradients must be finite; "match": and equal the reference's


# ---------------------------------------------------------------------------------------------- the machinery
_SQRT_HINT = ("sqrt has an infinite slope at 0, so a zero distance (a point with itself, a collapsed pair) gives "
              "NaN gradients. Take the root of a clamped value, e.g. sq.clamp_min(1e-12).sqrt(), or use "
              "course_lib.distances, which returns 0 with a zero gradient there.")
_DETACHED_HINT = ("Build the result from the inputs with torch operations only: no .item(), .detach(), .numpy() or "
                  "torch.tensor(...) on the way. With nothing to learn, return embeddings.sum() * 0 rather than "
                  "torch.tensor(0.0), so that loss.backward() still works.")
_GRAD_HINT = ("The values are right but the gradient is not: look for .detach(), .data or values computed "
              "outside autograd.")
_SQUARED_HINT = "Use plain distances ||a − b||, not squared ones."
_SELF_HINT = "An anchor is not its own positive (a ≠ p; leave out the diagonal, where d = 0)."


def _clone(args: tuple, grad: bool = False) -> tuple:
    """Fresh copies, so that your function cannot change the cases; float tensors get requires_grad if asked."""
    return tuple(a.detach().clone().requires_grad_(grad and a.is_floating_point()) if isinstance(a, Tensor) else a
                 for a in args)


def _first(out: Any) -> Any:
    """Library losses may return (loss, stats): keep the loss."""
    return out[0] if isinstance(out, tuple) else out


def _fmt(x: Any) -> str:
    if isinstance(x, Tensor) and x.numel() > 6:
        return f"a tensor of shape {tuple(x.shape)}"
    if isinstance(x, Tensor):
        x = x.detach().double().round(decimals=4).tolist() if x.is_floating_point() else x.tolist()
    return f"{x:.4g}" if isinstance(x, float) else repr(x)


def _compare(got: Any, expected: Any, rtol: float = 1e-4, atol: float = 1e-5) -> str | None:
    """None when got matches expected, else what differs ("expected ..., got ...")."""
    if not isinstance(expected, Tensor):                               # one number, e.g. precision@1
        try:
            value = float(got)
        except (TypeError, ValueError, RuntimeError):
            return f"expected one number like {expected:.4g}, got {_fmt(got)}"
        ok = math.isclose(value, expected, rel_tol=rtol, abs_tol=atol)
        return None if ok else f"expected {expected:.4g}, got {value:.4g}"
    if not isinstance(got, Tensor):
        return f"expected a tensor of shape {tuple(expected.shape)}, got {type(got).__name__} {_fmt(got)}"
    if got.shape != expected.shape:
        return f"expected shape {tuple(expected.shape)}, got shape {tuple(got.shape)}"
    if got.dtype != expected.dtype or got.device != expected.device:
        return f"expected dtype {expected.dtype} on {expected.device}, got {got.dtype} on {got.device}"
    got = got.detach()
    same = torch.isclose(got, expected, rtol, atol, equal_nan=True) if got.is_floating_point() else got == expected
    if same.all():
        return None
    if got.numel() == 1:
        return f"expected {_fmt(expected)}, got {_fmt(got)}"
    bad = ~same
    if got.is_floating_point() and (bad & got.isnan()).any():
        bad = bad & got.isnan()                                        # show a NaN first: the loudest symptom
    i = tuple(bad.nonzero()[0].tolist())
    return (f"at index {list(i)} expected {_fmt(expected[i])}, got {_fmt(got[i])} "
            f"({int((~same).sum())} of {same.numel()} entries differ)")


def _like(variant: Callable) -> Rule:
    """A rule that holds when your output equals that of a known wrong version."""
    return lambda got, expected, args: _compare(got, variant(*args)) is None


def _has_nan(got, expected, args) -> bool:
    return bool(got.isnan().any()) and not bool(torch.as_tensor(expected).isnan().any())


def _wrong_dtype(got, expected, args) -> bool:
    return got.shape == expected.shape and (got.dtype, got.device) != (expected.dtype, expected.device)


_COMMON_RULES: list[tuple[str, Rule]] = [
    ("Keep the dtype and device of the inputs: masks come from comparisons and & (bool); losses and distances "
     "keep the inputs' float dtype (no .double(), .long(), .int(), .cuda()); labels and indices are integers "
     "(torch.long).", _wrong_dtype),
    ("Return one number (the mean), not one value per item.",
     lambda got, expected, args: got.ndim == 1 and (not isinstance(expected, Tensor) or expected.ndim == 0)),
]


def _diagnose(fn: Callable, cases: list[_Case], expected: list, rules: list, generic: str) -> str:
    """The hint of the known mistake that explains the most failing cases (the first listed on a tie)."""
    def holds(rule: Rule, case: _Case, got: Any, want: Any) -> bool:
        try:
            return bool(rule(got, want, _clone(case.args)))
        except Exception:                                              # a rule that does not apply here
            return False

    wrong = []
    for case, want in zip(cases, expected):
        try:
            got = fn(*_clone(case.args))
        except Exception:
            continue
        if _compare(got, want) is not None:
            wrong.append((case, got, want))
    scores = [sum(holds(rule, *w) for w in wrong) for _, rule in rules]
    best = max(range(len(rules)), key=scores.__getitem__)
    return rules[best][0] if scores[best] > 0 else generic


def _grad_problem(fn: Callable, reference: Callable | None, case: _Case) -> tuple[str, str] | None:
    """None if the gradients of fn(...).sum() are finite (and equal the reference's if asked), else (problem, hint)."""
    args = _clone(case.args, grad=True)
    out = fn(*args)
    if not isinstance(out, Tensor) or not out.requires_grad:
        return "the result does not depend on the inputs, so backward() cannot reach them", _DETACHED_HINT
    out.sum().backward()
    grads = [a.grad for a in args if isinstance(a, Tensor) and a.requires_grad]
    if any(g is None for g in grads):
        return "no gradient reaches one of the inputs", _DETACHED_HINT
    if not all(bool(g.isfinite().all()) for g in grads):
        return "the gradient contains NaN or inf", _SQRT_HINT
    if case.grad == "match":
        ref_args = _clone(case.args, grad=True)
        _first(reference(*ref_args)).sum().backward()
        for g, r in zip(grads, [a.grad for a in ref_args if isinstance(a, Tensor) and a.requires_grad]):
            problem = _compare(g, r, rtol=1e-3, atol=1e-4)
            if problem:
                return f"the gradient differs from course_lib's: {problem}", _GRAD_HINT
    return None


def _run(name: str, fn: Callable, cases: list[_Case], reference: Callable | None,
         rules: list[tuple[str, Rule]], generic: str) -> bool:
    """Run fn on every case (values first, then gradients), print a one-line verdict, return True if all pass."""
    expected = [c.expected if c.expected is not None else _first(reference(*_clone(c.args))) for c in cases]
    checks, where, problem = 0, cases[0].name, None
    try:
        for case, want in zip(cases, expected):
            where = case.name
            problem = _compare(fn(*_clone(case.args)), want)
            if problem:
                hint = _diagnose(fn, cases, expected, [*_COMMON_RULES, *rules], generic)
                break
            checks += 1
        for case in [c for c in cases if c.grad and not problem]:
            where = f"{case.name} (gradient)"
            problem, hint = _grad_problem(fn, reference, case) or (None, "")
            if problem:
                break
            checks += 1
    except NotImplementedError:
        print(f"… not done yet: {name}. The notebook will use course_lib's version.")
        return False
    except Exception as error:                                         # report, never raise: Run All goes on
        print(f"✗ {where}: your function raised {type(error).__name__}: {error}")
        return False
    print(f"✗ {where}: {problem}\n  hint: {hint}" if problem else f"✓ {name}: all {checks} checks passed")
    return problem is None


def _line(*xs: float) -> Tensor:
    """Points on a line, (B, 1): their distances are exact, so ties are real ties."""
    return torch.tensor(xs, dtype=torch.float32)[:, None]


def _labels(g: torch.Generator, classes: int, per_class: int) -> Tensor:
    """(classes * per_class,) labels in a shuffled order."""
    y = torch.arange(classes).repeat_interleave(per_class)
    return y[torch.randperm(len(y), generator=g)]


# ---------------------------------------------------------------------------------------------- the exercises
def check_pairwise_distances(fn: Callable[[Tensor], Tensor]) -> bool:
    """Check ``fn(x) -> d``: x (B, D) float -> d (B, B), d[i, j] = ||x[i] - x[j]|| (plain Euclidean, not squared).

    d keeps the dtype of x, its diagonal is exactly 0, and gradients stay finite when two points coincide.
    """
    g = torch.Generator().manual_seed(0)
    cases = [
        _Case("3-4-5 triangle", (torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]]),),
              torch.tensor([[0.0, 3.0, 4.0], [3.0, 0.0, 5.0], [4.0, 5.0, 0.0]])),
        _Case("one point (B=1)", (torch.randn(1, 5, generator=g),), torch.zeros(1, 1), grad="finite"),
        _Case("random (B=6, D=4)", (torch.randn(6, 4, generator=g),), grad="match"),
        _Case("random float64 (B=5, D=3)", (torch.randn(5, 3, generator=g, dtype=torch.float64),)),
        _Case("points far from the origin (B=16, D=8)", (torch.randn(16, 8, generator=g) * 3 + 30,)),
        _Case("two identical points", (torch.tensor([[1.0, 2.0], [1.0, 2.0], [4.0, 6.0]]),), grad="match"),
    ]
    off = lambda m: m[~torch.eye(len(m), dtype=torch.bool)]           # noqa: E731  the off-diagonal entries
    rules = [
        ("These are squared distances: take the square root at the end.",
         _like(lambda x: pairwise_distances(x, squared=True))),
        ("NaN: rounding can make ||a||² + ||b||² − 2a·b slightly negative, and the sqrt of a negative number is "
         "NaN. Clamp first: sq.clamp_min(0).sqrt().", _has_nan),
        ("The diagonal must be exactly 0 (each point to itself), but rounding in ||a||² + ||b||² − 2a·b leaves "
         "small values there. Zero it, e.g. multiply by (1 − torch.eye(B)).",
         lambda got, want, args: _compare(off(got), off(want)) is None
         and _compare(got.diagonal(), want.diagonal()) is not None),
        ("This looks like the (B, B, D) differences: sum their squares over the last dim, then take the root.",
         lambda got, want, args: got.ndim == 3),
    ]
    return _run("pairwise distances", fn, cases, pairwise_distances, rules,
                "d[i, j] = sqrt(sum over k of (x[i, k] − x[j, k])²), for every pair of rows i, j.")


def _contrastive_terms(x1, x2, same, margin, pos=lambda d: d ** 2, neg=lambda d, m: (m - d).clamp_min(0) ** 2,
                       half=0.5) -> Tensor:
    """(B,) per-pair contrastive losses, with replaceable terms to rebuild the common wrong versions."""
    d, s = paired_distances(x1, x2), same.float()
    return half * (s * pos(d) + (1 - s) * neg(d, margin))


def check_contrastive_loss(fn: Callable[[Tensor, Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(x1, x2, same, margin) -> loss``: x1, x2 (B, D); same (B,) bool; margin float -> scalar tensor.

        loss = mean over pairs of ½·s·d² + ½·(1 − s)·max(0, margin − d)²,  d = ||x1 − x2||  (Hadsell et al. 2006)

    The gradient must stay finite (and match course_lib's) for a positive pair at distance 0.
    """
    g = torch.Generator().manual_seed(1)
    r = lambda *shape: torch.randn(*shape, generator=g) * 0.5         # noqa: E731  distances around the margin
    flags = lambda b: torch.rand(b, generator=g) < 0.5                # noqa: E731
    yes_no = torch.tensor([True, False])
    cases = [
        _Case("hand example: positive pair at d=1, negative pair at d=0.5, margin 1",
              (torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [0.0, 0.5]]), yes_no, 1.0), torch.tensor(0.3125)),
        _Case("negative pair beyond the margin", (torch.zeros(1, 2), torch.tensor([[3.0, 4.0]]), ~yes_no[:1], 1.0),
              torch.tensor(0.0)),
        _Case("one positive pair (B=1)", (r(1, 3), r(1, 3), yes_no[:1], 1.0)),
        _Case("random (B=8, D=3, margin 1)", (r(8, 3), r(8, 3), flags(8), 1.0), grad="match"),
        _Case("random (B=16, D=5, margin 2)", (r(16, 5), r(16, 5), flags(16), 2.0), grad="match"),
        _Case("positive pair at distance 0", (torch.tensor([[1.0, 2.0], [0.0, 0.0]]),
              torch.tensor([[1.0, 2.0], [0.3, 0.4]]), yes_no, 1.0), torch.tensor(0.0625), grad="match"),
    ]
    v = lambda reduce=Tensor.mean, flip=False, m=None, **kw: _like(   # noqa: E731
        lambda x1, x2, s, margin: reduce(_contrastive_terms(x1, x2, s ^ flip, m or margin, **kw)))
    rules = [
        ("The hinge uses the plain distance: max(0, m − d)², not max(0, m − d²)².",
         v(neg=lambda d, m: (m - d ** 2).clamp_min(0) ** 2)),
        ("Each term has a factor ½: ½·d² for positive pairs, ½·max(0, m − d)² for negative ones.", v(half=1.0)),
        ("Average over the pairs (.mean()) instead of summing: the loss should not grow with the batch.",
         v(Tensor.sum)),
        ("Clamp the negative term at 0: max(0, m − d)². A negative pair farther than the margin adds nothing.",
         v(neg=lambda d, m: (m - d) ** 2)),
        ("Same-class pairs (same=True) get d², the others the hinge: yours are swapped.", v(flip=True)),
        ("Square the hinge: max(0, m − d)², not max(0, m − d).", v(neg=lambda d, m: (m - d).clamp_min(0))),
        ("The positive term is ½·d², with the distance squared.", v(pos=lambda d: d)),
        ("Use the margin argument instead of a fixed value.", v(m=1.0)),
    ]
    return _run("contrastive loss", fn, cases, contrastive_loss, rules,
                "loss = mean over pairs of ½·s·d² + ½·(1 − s)·max(0, m − d)², d the plain Euclidean distance.")


def _hits_at_1(queries, query_labels, gallery, gallery_labels, pick=torch.argmin) -> Tensor:
    """(Q,) 1.0 where the nearest gallery item (or another pick) has the query's label."""
    return (gallery_labels[pick(torch.cdist(queries, gallery), dim=1)] == query_labels).float()


def check_precision_at_1(fn: Callable[[Tensor, Tensor, Tensor, Tensor], float]) -> bool:
    """Check ``fn(queries, query_labels, gallery, gallery_labels) -> p``: queries (Q, D), query_labels (Q,),
    gallery (N, D), gallery_labels (N,) -> a float in [0, 1], the share of queries whose nearest gallery item
    (smallest Euclidean distance) has the query's label.
    """
    g = torch.Generator().manual_seed(2)
    centres = torch.randn(5, 4, generator=g) * 2
    gl, ql = torch.randint(0, 5, (30,), generator=g), torch.randint(0, 5, (12,), generator=g)
    gallery, queries = centres[gl] + torch.randn(30, 4, generator=g), centres[ql] + torch.randn(12, 4, generator=g)
    own, zeros = torch.randn(6, 3, generator=g), torch.zeros(30, dtype=torch.long)
    cases = [
        _Case("hand example: gallery 0, 1 (label 0), 10 (label 1); queries 0.2 (label 0), 9 (1), 0.9 (1)",
              (_line(0.2, 9, 0.9), torch.tensor([0, 1, 1]), _line(0, 1, 10), torch.tensor([0, 0, 1])), 2 / 3),
        _Case("one query (Q=1)", (queries[:1], ql[:1], gallery, gl)),
        _Case("random clusters (Q=12, N=30)", (queries, ql, gallery, gl)),
        _Case("one class", (queries, zeros[:12], gallery, zeros), 1.0),
        _Case("all labels distinct, each query next to its own gallery item",
              (own.flip(0) + 0.01, torch.arange(6).flip(0), own, torch.arange(6)), 1.0),
    ]
    rules = [
        ("You took the farthest gallery item: the nearest one has the smallest distance (argmin).",
         _like(lambda *a: _hits_at_1(*a, pick=torch.argmax).mean().item())),
        ("Return the share of queries (between 0 and 1): divide the number of hits by Q.",
         _like(lambda *a: _hits_at_1(*a).sum().item())),
        ("Return a fraction between 0 and 1, not a percentage.", _like(lambda *a: _hits_at_1(*a).mean().item() * 100)),
    ]
    return _run("precision@1", fn, cases, precision_at_1, rules,
                "For each query take the gallery item with the smallest distance, compare its label with the "
                "query's label, and average these hits over the queries.")


def check_triplet_loss(fn: Callable[[Tensor, Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(anchor, positive, negative, margin) -> loss``: (T, D) each, margin float -> scalar tensor.

        loss = mean over triplets of max(0, d(a, p) − d(a, n) + margin), d plain Euclidean

    (FaceNet, Schroff et al. 2015).
    """
    g = torch.Generator().manual_seed(3)
    r = lambda *shape: torch.randn(*shape, generator=g) * 0.3         # noqa: E731  about half the triplets active
    a = r(4, 3)
    cases = [
        _Case("hand example: d(a,p)=1, d(a,n)=1.1, margin 0.2",
              (torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.1]]), 0.2), torch.tensor(0.1)),
        _Case("hand example: one active triplet (0.1) and one easy one (0)",
              (torch.zeros(2, 2), torch.tensor([[1.0, 0.0]] * 2), torch.tensor([[0.0, 1.1], [0.0, 3.0]]), 0.2),
              torch.tensor(0.05)),
        _Case("one triplet (T=1)", (r(1, 4), r(1, 4), r(1, 4), 0.2)),
        _Case("random (T=8, D=3, margin 0.2)", (r(8, 3), r(8, 3), r(8, 3), 0.2), grad="match"),
        _Case("random (T=20, D=16, margin 1)", (r(20, 16), r(20, 16), r(20, 16), 1.0), grad="match"),
        _Case("anchor == positive", (a, a.clone(), r(4, 3), 0.5), grad="finite"),   # no unique gradient at d = 0
    ]
    raw = lambda a, p, n, m: paired_distances(a, p) - paired_distances(a, n) + m   # noqa: E731  (T,) before the hinge
    rules = [
        (_SQUARED_HINT, _like(lambda *args: triplet_loss(*args, squared=True))),
        ("Clamp each triplet at 0: max(0, d(a,p) − d(a,n) + m). An easy triplet adds 0, not a negative number.",
         _like(lambda *args: raw(*args).mean())),
        ("Average over all T triplets: averaging over the active ones only is what batch-all does, not this loss.",
         _like(lambda *args: raw(*args)[raw(*args) > 0].mean())),
        ("Average over the triplets (.mean()) instead of summing.", _like(lambda *args: raw(*args).clamp_min(0).sum())),
        ("The margin is added: d(a,p) − d(a,n) + m. The positive must be closer than the negative by at least m.",
         _like(lambda a, p, n, m: raw(a, p, n, -m).clamp_min(0).mean())),
        ("It is d(a,p) − d(a,n) + m, the positive's distance first: yours are swapped.",
         _like(lambda a, p, n, m: triplet_loss(a, n, p, m))),
    ]
    return _run("triplet loss", fn, cases, triplet_loss, rules,
                "loss = mean over triplets of max(0, ||a − p|| − ||a − n|| + margin).")


def _ap_terms(hits: Tensor) -> tuple[Tensor, Tensor]:
    """hits (Q, R) bool -> rel(i) and P(i) = (hits among the first i) / i, both (Q, R)."""
    rel = hits.float()
    return rel, rel.cumsum(1) / torch.arange(1, hits.shape[1] + 1)


def _ap_at_r(hits: Tensor) -> Tensor:
    rel, precision = _ap_terms(hits)
    return (precision * rel).sum(1) / hits.shape[1]                    # (Q,)


def check_average_precision_at_r(fn: Callable[[Tensor], Tensor]) -> bool:
    """Check ``fn(hits) -> ap``: hits (Q, R) bool -> (Q,) float. hits[q, i] says whether the (i+1)-th nearest
    neighbour of query q is relevant; R is the number of relevant items of each query.

        AP@R = (1/R) Σ_i P(i)·rel(i),   P(i) = (hits among the first i) / i      (Musgrave, Belongie & Lim 2020)
    """
    g = torch.Generator().manual_seed(4)
    t = lambda *rows: torch.tensor(rows, dtype=torch.bool)           # noqa: E731
    cases = [
        _Case("hand example ✓✗✓ (R=3)", (t([1, 0, 1]),), torch.tensor([5 / 9])),
        _Case("hand example ✗✓ (R=2)", (t([0, 1]),), torch.tensor([0.25])),
        _Case("all hits and no hit (R=4)", (t([1, 1, 1, 1], [0, 0, 0, 0]),), torch.tensor([1.0, 0.0])),
        _Case("R=1", (t([1], [0]),), torch.tensor([1.0, 0.0])),
        _Case("random (Q=6, R=5)", (torch.rand(6, 5, generator=g) < 0.5,)),
        _Case("random (Q=4, R=12)", (torch.rand(4, 12, generator=g) < 0.6,)),
    ]
    v = lambda ap: _like(lambda h: ap(*_ap_terms(h), h.shape[1]))     # noqa: E731  ap(rel, P, R)
    rules = [
        ("Divide by R, not by the number of hits: a miss counts 0 (✓✗✓ gives (1 + 0 + 2/3)/3 = 0.556, not 0.833).",
         v(lambda rel, p, r: (p * rel).sum(1) / rel.sum(1))),
        ("Add P(i) only at the ranks where the neighbour is relevant: multiply by rel(i) before summing.",
         v(lambda rel, p, r: p.mean(1))),
        ("That is precision@R. AP@R weights each hit by the precision at its rank, P(i) = (hits in the first i) / i.",
         v(lambda rel, p, r: rel.mean(1))),
        ("P(i) divides the hits so far by the rank i, not by R.",
         v(lambda rel, p, r: (rel.cumsum(1) / r * rel).sum(1) / r)),
        ("Ranks start at 1: P(1) = rel(1) / 1. Use torch.arange(1, R + 1).",
         v(lambda rel, p, r: (rel.cumsum(1) / torch.arange(r) * rel).sum(1) / r)),
        ("Return one AP per query, shape (Q,), not their mean.", _like(lambda h: _ap_at_r(h).mean())),
    ]
    return _run("average precision at R", fn, cases, _ap_at_r, rules,
                "AP@R = (1/R) Σ_i P(i)·rel(i), with P(i) = hits.cumsum / rank. By hand, ✓✗✓ gives (1 + 0 + 2/3)/3.")


def _batch_hard(e, labels, margin, far_pos=True, near_neg=True, hinge=True, over_all=False, reduce=torch.mean,
                squared=False, self_pos=False, other_neg=True) -> Tensor:
    """Batch-hard loss with switches that rebuild the common wrong versions (the defaults are right)."""
    d = pairwise_distances(e, squared=squared)                          # (B, B)
    same, eye = labels[:, None] == labels[None, :], torch.eye(len(labels), dtype=torch.bool)
    pos, neg = (same if self_pos else same & ~eye), (~same if other_neg else ~eye)
    hp = torch.where(pos, d, 0.0).amax(1) if far_pos else torch.where(pos, d, math.inf).amin(1)     # (B,)
    hn = torch.where(neg, d, math.inf).amin(1) if near_neg else torch.where(neg, d, 0.0).amax(1)    # (B,)
    x, keep = hp - hn + margin, pos.any(1) & neg.any(1)
    x = x.clamp_min(0) if hinge else x
    return reduce(torch.where(keep, x, 0.0)) if over_all else reduce(x[keep])


def check_batch_hard_loss(fn: Callable[[Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(embeddings, labels, margin) -> loss``: embeddings (B, D), labels (B,) int -> scalar tensor.

    Each anchor takes its farthest positive and its closest negative (plain distances):
    max(0, d(a, p*) − d(a, n*) + margin), averaged over the anchors that have at least one positive and one
    negative; 0 (still connected to the embeddings) when there are none. (Hermans, Beyer & Leibe 2017)
    """
    g = torch.Generator().manual_seed(5)
    r = lambda b, d=3: torch.randn(b, d, generator=g)                 # noqa: E731
    zero = torch.tensor(0.0)
    cases = [
        _Case("hand example: points 0, 1 (label 0), 2, 4 (label 1), margin 0.5",
              (_line(0, 1, 2, 4), torch.tensor([0, 0, 1, 1]), 0.5), torch.tensor(0.5)),
        _Case("a class with a single sample: points 0, 2 (label 0), 3 (label 1), 5 (label 2), margin 1.5",
              (_line(0, 2, 3, 5), torch.tensor([0, 0, 1, 2]), 1.5), torch.tensor(1.5)),
        _Case("random (B=12, 3 classes, margin 0.5)", (r(12, 4), _labels(g, 3, 4), 0.5), grad="match"),
        _Case("random (B=16, 4 classes, margin 1)", (r(16, 8), _labels(g, 4, 4), 1.0), grad="match"),
        _Case("one class: no negatives", (r(5), torch.zeros(5, dtype=torch.long), 0.5), zero, grad="match"),
        _Case("all labels distinct: no positives", (r(5), torch.arange(5), 0.5), zero),
        _Case("one sample (B=1)", (r(1), torch.tensor([0]), 0.5), zero),
        _Case("identical embeddings", (torch.ones(6, 3), torch.tensor([0, 0, 1, 1, 2, 2]), 0.3), torch.tensor(0.3),
              grad="finite"),
    ]
    v = lambda **kw: _like(lambda e, y, m: _batch_hard(e, y, m, **kw))  # noqa: E731
    rules = [
        ("No anchor has both a positive and a negative here: return 0 connected to the graph "
         "(embeddings.sum() * 0), not the mean of an empty tensor (NaN).", _has_nan),
        ("Batch-hard takes the farthest positive (max over the same label), not the closest.", v(far_pos=False)),
        ("Batch-hard takes the closest negative (min over the other labels), not the farthest.", v(near_neg=False)),
        ("Take the hardest pairs, the farthest positive and the closest negative; yours takes the easiest ones.",
         v(far_pos=False, near_neg=False)),
        (_SELF_HINT + " An anchor alone in its class has no positive and is left out.", v(self_pos=True)),
        ("Average only over the anchors that have a positive and a negative; the others have no triplet.",
         v(over_all=True)),
        ("The closest negative must have another label: mask out same-label samples before the min.",
         v(other_neg=False)),
        ("Clamp each anchor's loss at 0 (the hinge max(0, ...)).", v(hinge=False)),
        (_SQUARED_HINT, v(squared=True)),
        ("Average over the anchors instead of summing.", v(reduce=torch.sum)),
    ]
    return _run("batch-hard triplet loss", fn, cases, batch_hard_triplet_loss, rules,
                "Per anchor: farthest positive, closest negative, max(0, d_ap − d_an + margin); mean over the "
                "anchors that have both.")


def _triplet_mask(d, labels, margin, lower=op.lt, upper=op.lt, distinct=True, other=True) -> Tensor:
    """(B, B, B) mask[a, p, n] of valid triplets with lower(d_ap, d_an) and upper(d_an, d_ap + margin).

    None drops a bound; the switches rebuild the common wrong versions (the defaults are right).
    """
    same = labels[:, None] == labels[None, :]                           # (B, B)
    pos = same & ~torch.eye(len(labels), dtype=torch.bool) if distinct else same
    neg = ~same if other else torch.ones_like(same)
    d_ap, d_an = d[:, :, None], d[:, None, :]                           # (B, B, 1), (B, 1, B)
    mask = pos[:, :, None] & neg[:, None, :]
    mask = mask & lower(d_ap, d_an) if lower else mask
    return mask & upper(d_an, d_ap + margin) if upper else mask


def check_semi_hard_mask(fn: Callable[[Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(d, labels, margin) -> mask``: d (B, B) distances, labels (B,) -> (B, B, B) bool, mask[a, p, n]
    True exactly when a ≠ p, labels[p] == labels[a], labels[n] != labels[a] and

        d[a, p] < d[a, n] < d[a, p] + margin        (semi-hard negatives, FaceNet, Schroff et al. 2015)

    The reference is course_lib.mining.semi_hard_triplets.
    """
    g = torch.Generator().manual_seed(6)

    def case(name, e, labels, margin, expected=None):
        if expected is None:                                            # course_lib's miner, as a mask
            expected = torch.zeros(len(labels), len(labels), len(labels), dtype=torch.bool)
            expected[semi_hard_triplets(e, labels, margin)] = True
        return _Case(name, (pairwise_distances(e), labels, margin), expected)

    only_014 = torch.zeros(6, 6, 6, dtype=torch.bool)
    only_014[0, 1, 4] = True
    # The hand example: a = 0, p = 1 (d = 1); negatives at -1 (d = 1, a tie), 1.5 (d = 1 + margin), -1.25, 0.25.
    cases = [
        case("hand example with ties d(a,n) = d(a,p) and d(a,n) = d(a,p) + margin", _line(0, 1, -1, 1.5, -1.25, 0.25),
             torch.tensor([0, 0, 1, 2, 3, 4]), 0.5, only_014),
        case("random (B=10, 3 classes, margin 0.5)", torch.randn(10, 2, generator=g),
             torch.randint(0, 3, (10,), generator=g), 0.5),
        case("random (B=12, 4 classes, margin 1)", torch.randn(12, 3, generator=g), _labels(g, 4, 3), 1.0),
        case("one class", torch.randn(4, 2, generator=g), torch.zeros(4, dtype=torch.long), 1.0),
        case("all labels distinct", torch.randn(4, 2, generator=g), torch.arange(4), 1.0),
        case("one sample (B=1)", torch.randn(1, 2, generator=g), torch.tensor([0]), 1.0),
    ]
    v = lambda **kw: _like(lambda d, y, m: _triplet_mask(d, y, m, **kw))  # noqa: E731
    rules = [
        ("FaceNet's semi-hard is strict: d(a,p) < d(a,n). A negative exactly as far as the positive is not "
         "semi-hard (use <, not ≤).", v(lower=op.le)),
        ("The upper bound is strict too: d(a,n) < d(a,p) + margin; at equality the loss is exactly 0.",
         v(upper=op.le)),
        ("Both bounds are strict: d(a,p) < d(a,n) < d(a,p) + margin (use <, not ≤).", v(lower=op.le, upper=op.le)),
        (_SELF_HINT + " E.g. & ~torch.eye(B, dtype=torch.bool).", v(distinct=False)),
        ("Add the upper bound d(a,n) < d(a,p) + margin: without it you include easy negatives (loss 0).",
         v(upper=None)),
        ("Add the lower bound d(a,p) < d(a,n): without it you include hard negatives, closer than the positive.",
         v(lower=None)),
        ("The negative must have another label than the anchor.", v(other=False)),
        ("Index the mask as mask[a, p, n]: d[:, :, None] is d(a,p), d[:, None, :] is d(a,n).",
         _like(lambda d, y, m: _triplet_mask(d, y, m).transpose(1, 2))),
    ]
    return _run("semi-hard mask", fn, cases, None, rules,
                "mask[a, p, n] = (a ≠ p) & same label(a, p) & other label(a, n) & (d(a,p) < d(a,n)) & "
                "(d(a,n) < d(a,p) + margin), with d(a,p) = d[:, :, None] and d(a,n) = d[:, None, :].")


def _batch_all(e, labels, margin, over="active", valid_only=True, hinge=True, squared=False,
               distinct=True) -> Tensor:
    """Batch-all loss with switches that rebuild the common wrong versions (the defaults are right)."""
    d = pairwise_distances(e, squared=squared)                          # (B, B)
    loss = d[:, :, None] - d[:, None, :] + margin                       # (B, B, B) [a, p, n]
    loss = loss.clamp_min(0) if hinge else loss
    valid = _triplet_mask(d, labels, margin, None, None, distinct) if valid_only else torch.ones_like(loss).bool()
    keep = valid & (loss > 0) if over == "active" else valid
    return (loss * valid).sum() if over == "sum" else (loss * keep).sum() / keep.sum()


def check_batch_all_loss(fn: Callable[[Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(embeddings, labels, margin) -> loss``: embeddings (B, D), labels (B,) int -> scalar tensor.

    Every valid triplet (a ≠ p with the same label, n with another label) has the loss
    max(0, d(a,p) − d(a,n) + margin) (plain distances); average over the ACTIVE ones (loss > 0), and return
    0 (still connected to the embeddings) when none is active. (Hermans, Beyer & Leibe 2017)
    """
    g = torch.Generator().manual_seed(7)
    zero = torch.tensor(0.0)
    cases = [
        _Case("hand example: points 0, 1 (label 0), 2, 4 (label 1), margin 0.5: 3 active of 8 valid",
              (_line(0, 1, 2, 4), torch.tensor([0, 0, 1, 1]), 0.5), torch.tensor(2.5 / 3)),
        _Case("a class with a single sample: points 0, 2 (label 0), 3 (label 1), 5 (label 2), margin 1.5",
              (_line(0, 2, 3, 5), torch.tensor([0, 0, 1, 2]), 1.5), torch.tensor(3.5 / 3)),
        _Case("random (B=9, 3 classes, margin 0.5)", (torch.randn(9, 4, generator=g), _labels(g, 3, 3), 0.5),
              grad="match"),
        _Case("random (B=12, 4 classes, margin 1)", (torch.randn(12, 8, generator=g), _labels(g, 4, 3), 1.0),
              grad="match"),
        _Case("well-separated classes: no active triplet",
              (torch.tensor([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [10.0, 0.1]]), torch.tensor([0, 0, 1, 1]), 0.5),
              zero, grad="match"),
        _Case("one class", (torch.randn(4, 3, generator=g), torch.zeros(4, dtype=torch.long), 0.5), zero),
        _Case("all labels distinct", (torch.randn(4, 3, generator=g), torch.arange(4), 0.5), zero),
    ]
    v = lambda **kw: _like(lambda e, y, m: _batch_all(e, y, m, **kw))   # noqa: E731
    rules = [
        ("No triplet is active here: return 0 connected to the graph (e.g. divide by n_active.clamp_min(1)), "
         "not 0 / 0 = NaN.", _has_nan),
        ("Average over the ACTIVE triplets (loss > 0) only: averaging over all valid triplets lets the many easy "
         "ones (loss 0) dilute the few that still teach.", v(over="valid")),
        ("Only valid triplets count (a ≠ p with the same label, n with another label): mask the (B, B, B) cube.",
         v(valid_only=False)),
        (_SELF_HINT, v(distinct=False)),
        (_SQUARED_HINT, v(squared=True)),
        ("Clamp each triplet's loss at 0 (the hinge max(0, ...)).", v(hinge=False, over="valid")),
        ("Divide the sum by the number of active triplets instead of returning the sum.", v(over="sum")),
    ]
    return _run("batch-all triplet loss", fn, cases, batch_all_triplet_loss, rules,
                "Build the (B, B, B) cube d(a,p) − d(a,n) + margin, clamp it at 0, keep the valid triplets, and "
                "average over those with a loss > 0.")


def check_dynamic_margin(fn: Callable[[Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(d_h, s, beta) -> alpha``: d_h (C, C) merge thresholds of the class tree, s (C,) within-class
    distances, beta float -> (C, C), alpha[a, n] = beta + d_h[a, n] - s[a] (Ge et al. 2018: the margin of an
    anchor of class a against a negative of class n; s is the *anchor's* class spread).
    """
    from .hierarchy import dynamic_margin
    g = torch.Generator().manual_seed(8)
    hand_h = torch.tensor([[0.0, 1.3, 3.1], [1.3, 0.0, 3.1], [3.1, 3.1, 0.0]])
    hand_s = torch.tensor([0.2, 0.4, 0.1])
    rand_h = torch.rand(5, 5, generator=g) * 4
    rand_h = (rand_h + rand_h.T).fill_diagonal_(0) / 2
    cases = [
        _Case("hand example: d_H of classes {0, 1} and {2}, s = 0.2, 0.4, 0.1, beta 0.1", (hand_h, hand_s, 0.1),
              torch.tensor([[-0.1, 1.2, 3.0], [1.0, -0.3, 2.8], [3.1, 3.1, 0.0]])),
        _Case("same, beta 0.5", (hand_h, hand_s, 0.5)),
        _Case("random (C=5)", (rand_h, torch.rand(5, generator=g), 0.1)),
        _Case("a single class (C=1)", (torch.zeros(1, 1), torch.tensor([0.3]), 0.1), torch.tensor([[-0.2]])),
    ]
    rules = [
        ("Subtract the ANCHOR's spread: s belongs to the row (anchor class a), s[:, None], not s[None, :].",
         _like(lambda h, s, b: b + h - s[None, :])),
        ("Add beta: alpha = beta + d_H − s.", _like(lambda h, s, b: h - s[:, None])),
        ("Subtract s (a spread-out anchor class gets a smaller margin), do not add it.",
         _like(lambda h, s, b: b + h + s[:, None])),
        ("Use d_H itself, not its square root: the tree's thresholds are squared distances, like s.",
         _like(lambda h, s, b: b + h.sqrt() - s[:, None])),
    ]
    return _run("dynamic margin", fn, cases, dynamic_margin, rules,
                "alpha is a (C, C) matrix: beta + d_h − s[:, None], the anchor's class along the rows.")


def check_affine_theta(fn: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]) -> bool:
    """Check ``fn(angle, scale, tx, ty) -> theta``: (B,) tensors each, angle in degrees -> (B, 2, 3),
    theta = [[s cos a, s sin a, tx], [-s sin a, s cos a, ty]]: the sampling grid turned counter-clockwise on
    screen by a (y points down), scaled by s and shifted by (tx, ty) in normalized units.
    """
    from .geometry import affine_theta
    g = torch.Generator().manual_seed(10)
    t = lambda *v: torch.tensor(v, dtype=torch.float32)
    cases = [
        _Case("identity: angle 0, scale 1, no shift", (t(0.0), t(1.0), t(0.0), t(0.0)), t([[1, 0, 0], [0, 1, 0]])),
        _Case("90° counter-clockwise", (t(90.0), t(1.0), t(0.0), t(0.0)), t([[0, 1, 0], [-1, 0, 0]])),
        _Case("scale 0.5 and a shift (0.1, -0.2)", (t(0.0), t(0.5), t(0.1), t(-0.2)),
              t([[0.5, 0, 0.1], [0, 0.5, -0.2]])),
        _Case("a batch of 4 random grids", (torch.rand(4, generator=g) * 360 - 180, torch.rand(4, generator=g) + 0.5,
                                            torch.rand(4, generator=g) - 0.5, torch.rand(4, generator=g) - 0.5)),
    ]
    rules = [
        ("The angle is in degrees: convert with torch.deg2rad(angle) before cos and sin.",
         _like(lambda a, s, x, y: affine_theta(torch.rad2deg(a), s, x, y))),
        ("The grid turns the other way: with y pointing down, counter-clockwise on screen is "
         "[[cos, sin], [-sin, cos]] (sin in the top right).", _like(lambda a, s, x, y: affine_theta(-a, s, x, y))),
        ("The shift is not scaled: scale multiplies the 2 x 2 part only, tx and ty go in the last column as they are.",
         _like(lambda a, s, x, y: affine_theta(a, s, s * x, s * y))),
        ("The shift goes in the last column (column 2), x in row 0 and y in row 1.",
         _like(lambda a, s, x, y: affine_theta(a, s, y, x))),
    ]
    return _run("affine theta", fn, cases, lambda *args: affine_theta(*args), rules,
                "theta is (B, 2, 3): stack [s cos, s sin, tx] and [-s sin, s cos, ty] along dim 1.")


def _bilinear_from(x: Tensor, y: Tensor, x0: Tensor, y0: Tensor, product: bool = True) -> Tensor:
    """Bilinear weights from given corners (the right ones are the floors); product=False adds instead."""
    dx, dy = x - x0, y - y0
    combine = (lambda a, b: a * b) if product else (lambda a, b: (a + b) / 2)
    return torch.stack([combine(1 - dx, 1 - dy), combine(dx, 1 - dy), combine(1 - dx, dy), combine(dx, dy)], 1)


def check_bilinear_weights(fn: Callable[[Tensor, Tensor], Tensor]) -> bool:
    """Check ``fn(x, y) -> weights``: sample points (N,) in pixel coordinates -> (N, 4), the weights of the
    pixels (floor x, floor y), (floor x + 1, floor y), (floor x, floor y + 1), (floor x + 1, floor y + 1):
    max(0, 1 - |x - col|) * max(0, 1 - |y - row|) for each.
    """
    from .geometry import bilinear_weights
    g = torch.Generator().manual_seed(11)
    t = lambda *v: torch.tensor(v, dtype=torch.float32)
    cases = [
        _Case("on a pixel centre (2, 3): all weight on the top-left pixel", (t(2.0), t(3.0)), t([1, 0, 0, 0])),
        _Case("half-way between four pixels (2.5, 3.5)", (t(2.5), t(3.5)), t([0.25, 0.25, 0.25, 0.25])),
        _Case("a quarter to the right (2.25, 3.0)", (t(2.25), t(3.0)), t([0.75, 0.25, 0, 0])),
        _Case("10 random points", (torch.rand(10, generator=g) * 27, torch.rand(10, generator=g) * 27)),
        _Case("negative coordinates (-0.5, -1.25)", (t(-0.5), t(-1.25))),
    ]
    reference = lambda x, y: bilinear_weights(x, y)[2]
    rules = [
        ("Each weight belongs to the pixel it is NEAR: the top-left pixel gets (1 − dx)(1 − dy), not dx·dy.",
         _like(lambda x, y: reference(x, y).flip(1))),
        ("Round down with torch.floor (int() and .long() round negative numbers towards zero).",
         _like(lambda x, y: _bilinear_from(x, y, x.trunc(), y.trunc()))),
        ("Multiply the x and y weights (the kernel is a product), do not add them.",
         _like(lambda x, y: _bilinear_from(x, y, x.floor(), y.floor(), product=False))),
    ]
    return _run("bilinear weights", fn, cases, reference, rules,
                "with dx = x − floor(x), dy = y − floor(y): weights [(1−dx)(1−dy), dx(1−dy), (1−dx)dy, dx·dy].")


def check_nearest_classes(fn: Callable[[Tensor, Tensor, int], Tensor]) -> bool:
    """Check ``fn(distances, anchors, m) -> groups``: distances (C, C) class distances, anchors (A,) class rows,
    m int -> (A, m) long: each anchor first, then its m − 1 nearest OTHER classes, nearest first.
    The diagonal (a class's own spread) is not a neighbour, even when it is the smallest entry of its row.
    """
    from .hierarchy import nearest_classes
    g = torch.Generator().manual_seed(9)
    hand = torch.tensor([[0.1, 0.9, 0.5, 0.7], [0.9, 0.0, 0.3, 0.2], [0.5, 0.3, 0.0, 0.8], [0.7, 0.2, 0.8, 0.0]])
    rand = torch.rand(8, 8, generator=g) * 4
    rand = (rand + rand.T) / 2
    with_inf = rand.clone()
    with_inf[:, [2, 5]] = float("inf")                                 # classes taken by an earlier group
    cases = [
        _Case("hand example: anchors 0 and 1, m = 3", (hand, torch.tensor([0, 1]), 3), torch.tensor([[0, 2, 3], [1, 3, 2]])),
        _Case("m = 1: the anchor alone", (hand, torch.tensor([2]), 1), torch.tensor([[2]])),
        _Case("random (C=8), anchors 3, 0, 7, m = 4", (rand, torch.tensor([3, 0, 7]), 4)),
        _Case("classes already taken have distance inf (C=8), anchor 4, m = 3", (with_inf, torch.tensor([4]), 3)),
    ]
    def no_self(d, a, m):
        return torch.cat([a[:, None], d[a].topk(m - 1, dim=1, largest=False).indices], 1)

    def farthest(d, a, m):
        rows = d[a].clone()
        rows[torch.arange(len(a)), a] = -float("inf")
        return torch.cat([a[:, None], rows.topk(m - 1, dim=1).indices], 1)
    rules = [
        ("A class is not its own neighbour: set the anchor's own entry to inf before taking the nearest.",
         _like(no_self)),
        ("Nearest means SMALLEST distance: topk(..., largest=False) or argsort ascending.", _like(farthest)),
        ("Put the anchor itself in the first column, then its m − 1 neighbours: the result is (A, m).",
         lambda got, expected, args: got.shape == (expected.shape[0], expected.shape[1] - 1)),
        ("Return integer class rows (long), e.g. the .indices of topk.", _wrong_dtype),
    ]
    return _run("nearest classes", fn, cases, nearest_classes, rules,
                "For each anchor row: copy it, set its own column to inf, take the m − 1 smallest with "
                "topk(largest=False), and put the anchor in front.")


def _iou_variant(a: Tensor, b: Tensor, plus_one: float = 0.0, clamp: bool = True, denominator: str = "union") -> Tensor:
    """IoU and its usual mistakes: +1 in widths, no clamp of negative overlaps, another denominator."""
    tl = torch.maximum(a[:, None, :2], b[None, :, :2])
    br = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = br - tl + plus_one
    wh = wh.clamp_min(0) if clamp else wh
    inter = wh[..., 0] * wh[..., 1]
    area_a = ((a[:, 2] - a[:, 0] + plus_one) * (a[:, 3] - a[:, 1] + plus_one))[:, None]
    area_b = ((b[:, 2] - b[:, 0] + plus_one) * (b[:, 3] - b[:, 1] + plus_one))[None, :]
    denom = {"union": area_a + area_b - inter, "sum": area_a + area_b, "min": torch.minimum(area_a, area_b),
             "a": area_a.expand_as(inter)}[denominator]
    return torch.where(denom > 0, inter / denom.clamp_min(1e-12), torch.zeros_like(inter))


def check_box_iou(fn: Callable[[Tensor, Tensor], Tensor]) -> bool:
    """Check ``fn(a, b) -> iou``: boxes a (N, 4) and b (M, 4) as (x1, y1, x2, y2) -> (N, M),
    area(a ∩ b) / area(a ∪ b), widths x2 − x1 (no + 1), and 0 (not NaN) where the union has area 0.
    """
    from .boxes import box_iou
    g = torch.Generator().manual_seed(12)
    t = lambda *rows: torch.tensor(rows, dtype=torch.float32)
    xy = torch.rand(6, 2, generator=g) * 20
    rand = torch.cat([xy, xy + 1 + torch.rand(6, 2, generator=g) * 10], 1)
    cases = [
        _Case("the same box twice", (t([0, 0, 4, 2]), t([0, 0, 4, 2])), t([1.0])),
        _Case("half overlap: [0, 0, 2, 2] and [1, 0, 3, 2] (overlap 2, union 6)", (t([0, 0, 2, 2]), t([1, 0, 3, 2])),
              t([1 / 3])),
        _Case("a box inside another: [0, 0, 4, 4] and [1, 1, 3, 3]", (t([0, 0, 4, 4]), t([1, 1, 3, 3])), t([0.25])),
        _Case("boxes far apart: [0, 0, 2, 2] and [5, 5, 7, 7]", (t([0, 0, 2, 2]), t([5, 5, 7, 7])), t([0.0])),
        _Case("boxes that touch at an edge: [0, 0, 2, 2] and [2, 0, 4, 2]", (t([0, 0, 2, 2]), t([2, 0, 4, 2])),
              t([0.0])),
        _Case("two boxes of area 0", (t([1, 1, 1, 3]), t([1, 1, 1, 3])), t([0.0])),
        _Case("4 random boxes against 2 (N != M)", (rand[:4], rand[4:])),
    ]
    rules = [
        ("Widths are x2 − x1 here, with no + 1: coordinates are continuous (the convention of torchvision).",
         _like(lambda a, b: _iou_variant(a, b, plus_one=1.0))),
        ("Boxes that do not overlap have a NEGATIVE width or height of overlap: clamp each at 0 "
         "(.clamp_min(0)) before multiplying, or two negatives make a positive area.",
         _like(lambda a, b: _iou_variant(a, b, clamp=False))),
        ("The union counts the overlap once: area(a) + area(b) − intersection.",
         _like(lambda a, b: _iou_variant(a, b, denominator="sum"))),
        ("Divide by the UNION, not by the smaller box's area.", _like(lambda a, b: _iou_variant(a, b, denominator="min"))),
        ("Divide by the union of both boxes, not by the area of a alone.",
         _like(lambda a, b: _iou_variant(a, b, denominator="a"))),
        ("0 / 0 is NaN: where the union is 0 return 0, e.g. torch.where(union > 0, inter / union.clamp_min(1e-12), 0).",
         _has_nan),
        ("Compare every box of a with every box of b: a[:, None, :2] against b[None, :, :2] gives (N, M, 2).",
         lambda got, expected, args: got.shape != expected.shape),
    ]
    return _run("box IoU", fn, cases, box_iou, rules,
                "overlap: max of the top-left corners, min of the bottom-right ones, width and height clamped at 0; "
                "IoU = overlap / (area a + area b − overlap).")


def check_encode_boxes(fn: Callable[[Tensor, Tensor], Tensor]) -> bool:
    """Check ``fn(gt, anchors) -> deltas``: gt (N, 4) and anchors (N, 4), one gt per anchor -> (N, 4) =
    (dx, dy, dw, dh) = ((gx − ax) / aw, (gy − ay) / ah, log(gw / aw), log(gh / ah)) with centres and sizes.
    """
    from .boxes import _centre_size, encode_boxes
    g = torch.Generator().manual_seed(13)
    t = lambda *rows: torch.tensor(rows, dtype=torch.float32)
    xy = torch.rand(5, 2, generator=g) * 40
    gt = torch.cat([xy, xy + 4 + torch.rand(5, 2, generator=g) * 20], 1)
    anchors = gt + torch.randn(5, 4, generator=g) * 2
    anchors[:, 2:] = torch.maximum(anchors[:, 2:], anchors[:, :2] + 2)

    def variant(gt, a, size="anchor", log=True, corners=False, swap=False):
        gx, gy, gw, gh = _centre_size(gt)
        ax, ay, aw, ah = _centre_size(a)
        if corners:
            gx, gy, ax, ay = gt[:, 0], gt[:, 1], a[:, 0], a[:, 1]
        sw, sh = (aw, ah) if size == "anchor" else (gw, gh)
        if swap:
            sw, sh = sh, sw
        f = torch.log if log else (lambda r: r)
        return torch.stack([(gx - ax) / sw, (gy - ay) / sh, f(gw / aw), f(gh / ah)], 1)
    cases = [
        _Case("gt equal to its anchor: nothing to change", (t([10, 10, 20, 30]), t([10, 10, 20, 30])), t([0, 0, 0, 0])),
        _Case("gt moved right by half the anchor's width", (t([15, 10, 25, 30]), t([10, 10, 20, 30])),
              t([0.5, 0, 0, 0])),
        _Case("gt twice as wide and half as tall, same centre", (t([5, 15, 25, 25]), t([10, 10, 20, 30])),
              t([0, 0, math.log(2), math.log(0.5)])),
        _Case("5 random pairs", (gt, anchors)),
    ]
    rules = [
        ("Measure the shift in ANCHOR widths and heights: (gx − ax) / aw, not / gw.",
         _like(lambda gt, a: variant(gt, a, size="gt"))),
        ("dw and dh are log-ratios: torch.log(gw / aw). A plain ratio would make 'no change' 1 instead of 0.",
         _like(lambda gt, a: variant(gt, a, log=False))),
        ("Use the box CENTRES, (x1 + x2) / 2, for dx and dy, not the top-left corners.",
         _like(lambda gt, a: variant(gt, a, corners=True))),
        ("dx is divided by the anchor's width and dy by its height, not the other way round.",
         _like(lambda gt, a: variant(gt, a, swap=True))),
        ("Sign: gt minus anchor, (gx − ax), and log(gw / aw), so that a positive dx moves the anchor right.",
         _like(lambda gt, a: -encode_boxes(gt, a))),
    ]
    return _run("encode boxes", fn, cases, encode_boxes, rules,
                "centres and sizes first (cx = (x1 + x2) / 2, w = x2 − x1), then "
                "[(gx − ax) / aw, (gy − ay) / ah, log(gw / aw), log(gh / ah)] stacked along dim 1.")


def check_anchor_labels(fn: Callable[[Tensor, float, float], Tensor]) -> bool:
    """Check ``fn(iou, high, low) -> labels``: iou (G, A) between G gt boxes and A anchors -> (A,) long:
    1 (object) where the anchor's best IoU >= high, 0 (background) where < low, -1 (ignored) in between, and
    1 for the best anchor(s) of every gt box (ties included) whose best IoU is above 0. No gt: all 0.
    """
    from .boxes import anchor_labels
    g = torch.Generator().manual_seed(14)
    t = lambda *rows: torch.tensor(rows, dtype=torch.float32)
    rand = torch.rand(3, 12, generator=g) * 0.8
    cases = [
        _Case("one gt, anchors at IoU 0.8, 0.5, 0.1", (t([0.8, 0.5, 0.1]), 0.7, 0.3), torch.tensor([1, -1, 0])),
        _Case("exactly on the thresholds: 0.7 is an object, 0.3 is ignored", (t([0.7, 0.3, 0.29, 0.9]), 0.7, 0.3),
              torch.tensor([1, -1, 0, 1])),
        _Case("a small gt whose best anchor has IoU 0.4: that anchor is its object",
              (t([0.9, 0.2, 0.0, 0.0], [0.0, 0.1, 0.4, 0.25]), 0.7, 0.3), torch.tensor([1, 0, 1, 0])),
        _Case("two anchors tie as a gt's best (0.5): both are objects", (t([0.5, 0.5, 0.2]), 0.7, 0.3),
              torch.tensor([1, 1, 0])),
        _Case("a gt that overlaps no anchor (best IoU 0) makes no anchor an object",
              (t([0.8, 0.1, 0.0], [0.0, 0.0, 0.0]), 0.7, 0.3), torch.tensor([1, 0, 0])),
        _Case("no gt boxes at all (G = 0): every anchor is background", (torch.zeros(0, 4), 0.7, 0.3),
              torch.tensor([0, 0, 0, 0])),
        _Case("3 gt boxes and 12 anchors, thresholds 0.6 / 0.4", (rand, 0.6, 0.4)),
    ]
    rules = [
        ("Each gt box must get its best anchor, even below `high`: find the largest IoU of each ROW "
         "(iou.max(dim=1)) and label the anchors that reach it 1.",
         _like(lambda iou, h, l: anchor_labels(iou, h, l, allow_low_quality=False))),
        ("IoU equal to `high` is an object (>= high); equal to `low` is ignored (background is < low).",
         lambda got, expected, args: (got != expected).any() and bool(((args[0] == args[1]) | (args[0] == args[2])).any())),
        ("The best anchor of a gt box is the largest IoU along its ROW (dim=1, over anchors), not along a column.",
         _like(lambda iou, h, l: _labels_best_per_anchor(iou, h, l))),
        ("A gt box with best IoU 0 overlaps no anchor: every anchor 'ties' at 0, so require best > 0 "
         "before making its best anchors objects.",
         _like(lambda iou, h, l: _labels_zero_best(iou, h, l))),
    ]
    return _run("anchor labels", fn, cases, anchor_labels, rules,
                "best = iou.max(dim=0).values per anchor; labels -1 everywhere, 0 where best < low, 1 where "
                "best >= high; then 1 where iou equals its row's maximum (and that maximum > 0). G = 0: all 0.")


def _labels_best_per_anchor(iou: Tensor, high: float, low: float) -> Tensor:
    from .boxes import anchor_labels
    labels = anchor_labels(iou, high, low, allow_low_quality=False)
    if len(iou):
        best = iou.max(dim=0, keepdim=True).values
        labels[((iou == best) & (best > 0)).any(dim=0)] = 1
    return labels


def _labels_zero_best(iou: Tensor, high: float, low: float) -> Tensor:
    from .boxes import anchor_labels
    labels = anchor_labels(iou, high, low, allow_low_quality=False)
    if len(iou):
        labels[(iou == iou.max(dim=1, keepdim=True).values).any(dim=0)] = 1
    return labels


def _soft_argmax_variant(h: Tensor, flip: bool = False, per_axis: bool = False, plain: bool = False,
                         from_one: bool = False) -> Tensor:
    """soft-argmax and its usual mistakes: x and y swapped, a softmax per row/column, no softmax, 1-based."""
    b, k, rows, cols = h.shape
    if plain:
        p = h / h.sum(dim=(2, 3), keepdim=True)
        px, py = p.sum(2), p.sum(3)
    elif per_axis:
        px, py = torch.softmax(h.sum(2), -1), torch.softmax(h.sum(3), -1)
    else:
        p = torch.softmax(h.reshape(b, k, -1), -1).reshape(b, k, rows, cols)
        px, py = p.sum(2), p.sum(3)
    start = 1.0 if from_one else 0.0
    x = (px * (torch.arange(cols, dtype=h.dtype) + start)).sum(-1)
    y = (py * (torch.arange(rows, dtype=h.dtype) + start)).sum(-1)
    return torch.stack([y, x] if flip else [x, y], dim=-1)


def check_soft_argmax(fn: Callable[[Tensor], Tensor]) -> bool:
    """Check ``fn(heatmaps) -> xy``: heatmaps (B, K, H, W) -> (B, K, 2), the expected (x, y) pixel position under a
    softmax over each whole map: x = sum p[i, j] * j, y = sum p[i, j] * i, with x the column (0 ... W - 1).
    """
    import math as _m
    from .keypoints import soft_argmax2d
    g = torch.Generator().manual_seed(15)
    t = lambda rows: torch.tensor(rows, dtype=torch.float32)[None, None]
    cases = [
        _Case("a flat 3 x 5 map: its centre", (torch.zeros(1, 1, 3, 5),), torch.tensor([[[2.0, 1.0]]])),
        _Case("3 x 3: weights 1 everywhere, 2 at (row 1, col 1), 4 at (row 1, col 2)",
              (t([[0.0, 0, 0], [0, _m.log(2), _m.log(4)], [0, 0, 0]]),), torch.tensor([[[16 / 13, 1.0]]])),
        _Case("a peak of 20 at row 0, column 3 of a 4 x 6 map", (t([[0.0] * 3 + [20.0] + [0.0] * 2] + [[0.0] * 6] * 3),)),
        _Case("random maps, B = 2, K = 3, 5 x 7", (torch.randn(2, 3, 5, 7, generator=g) * 3,), grad="match"),
        _Case("random maps stored channels-last, as the course's networks return them (use reshape, not view)",
              ((torch.randn(2, 3, 5, 7, generator=g) * 3).contiguous(memory_format=torch.channels_last),)),
    ]
    rules = [
        ("x is the COLUMN (the last dimension, 0 ... W - 1) and y the row: return (x, y), not (y, x).",
         _like(lambda h: _soft_argmax_variant(h, flip=True))),
        ("Take ONE softmax over the whole map (reshape to (B, K, H * W)), not one per row or column.",
         _like(lambda h: _soft_argmax_variant(h, per_axis=True))),
        ("Apply a softmax (exp, then normalise) before the weighted mean: the raw map can be negative.",
         _like(lambda h: _soft_argmax_variant(h, plain=True))),
        ("Pixel coordinates start at 0: use torch.arange(W), not 1 ... W.",
         _like(lambda h: _soft_argmax_variant(h, from_one=True))),
    ]
    return _run("soft-argmax", fn, cases, soft_argmax2d, rules,
                "p = softmax over the H * W pixels of each map; x = sum of p times the column index, y = sum of p "
                "times the row index; stack (x, y) in the last dimension.")


def check_pck(fn: Callable[[Tensor, Tensor, float], float]) -> bool:
    """Check ``fn(pred, gt, threshold) -> share``: keypoints (B, K, 2) -> the fraction (0 to 1) of keypoints whose
    Euclidean distance to the ground truth is <= threshold pixels."""
    from .keypoints import pck
    g = torch.Generator().manual_seed(16)
    gt = torch.zeros(1, 4, 2)
    pred = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 4.0]]])          # distances 0, 1, 2, 5
    rand_gt = torch.rand(3, 5, 2, generator=g) * 20
    rand_pred = rand_gt + torch.randn(3, 5, 2, generator=g) * 2
    cases = [
        _Case("distances 0, 1, 2, 5 at threshold 2", (pred, gt, 2.0), 0.75),
        _Case("distances 0, 1, 2, 5 at threshold 1 (1 counts: <=)", (pred, gt, 1.0), 0.5),
        _Case("distances 0, 1, 2, 5 at threshold 4 (the distance of (3, 4) is 5, not 3 or 4)", (pred, gt, 4.0), 0.75),
        _Case("random keypoints, B = 3, K = 5, threshold 2.5", (rand_pred, rand_gt, 2.5)),
    ]
    rules = [
        ("A keypoint exactly at the threshold counts as correct: distance <= threshold.",
         lambda got, expected, args: abs(float(got) - float(((args[0] - args[1]).norm(dim=-1) < args[2]).float().mean())) < 1e-6),
        ("Use the Euclidean distance of the (x, y) difference, .norm(dim=-1), not each coordinate on its own.",
         lambda got, expected, args: abs(float(got) - float(((args[0] - args[1]).abs() <= args[2]).all(-1).float().mean())) < 1e-6),
        ("Return a fraction between 0 and 1 (the mean), not a count or a percentage.",
         lambda got, expected, args: abs(float(got) - 100 * expected) < 1e-4 or abs(float(got) - expected * args[0].shape[0] * args[0].shape[1]) < 1e-4),
    ]
    return _run("PCK", fn, cases, lambda p, g_, th: float(pck(p, g_, th)), rules,
                "distances = (pred - gt).norm(dim=-1), shape (B, K); return (distances <= threshold).float().mean().")


# ---------------------------------------------------------------------------------------------- notebook helpers
def use_if_correct(student_fn: Callable, passed: bool, reference_fn: Callable, name: str | None = None) -> Callable:
    """Return ``student_fn`` if its checker passed, else ``reference_fn``, saying which one the notebook goes on with.

        loss_fn = use_if_correct(my_triplet_loss, check_triplet_loss(my_triplet_loss), triplet_loss)
    """
    if passed:
        print("Using your function.")
        return student_fn
    name = name or f"{reference_fn.__module__}.{getattr(reference_fn, '__qualname__', reference_fn)}"
    print(f"Using {name} instead; come back to the exercise later.")
    return reference_fn


def expect_at_least(value: float, threshold: float, what: str, fix: str | None = None) -> bool:
    """Sanity check of a notebook result: prints ✓ if value ≥ threshold, else a ⚠ warning; returns whether it passed.

        expect_at_least(p1, 0.75, "precision@1")   # ✓ precision@1 = 0.93 (expected ≥ 0.75)

    It raises AssertionError only when the environment variable COURSE_STRICT is "1" (the test suite sets it):
    a student who changes a constant for an exercise gets a warning, not a Run All stopped by an assert.
    ``fix`` replaces the usual advice in that warning, where rerunning would not help.
    """
    value = float(value)
    if value >= threshold:                                              # False for NaN too
        print(f"✓ {what} = {value:.3g} (expected ≥ {threshold:.3g})")
        return True
    message = f"⚠ {what} = {value:.3g} is below the expected {threshold:.3g}. " + (
        fix or "If you changed a setting for an exercise this can happen; otherwise run the notebook again from the top.")
    if os.environ.get("COURSE_STRICT") == "1":
        raise AssertionError(message)
    print(message)
    return False
