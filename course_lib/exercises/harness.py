"""The checking machinery behind every exercise: run a student's function on cases, compare with the
reference, and diagnose the usual mistakes in words.
"""
from __future__ import annotations

import inspect
import math
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

__all__ = ["Case", "SQUARED_HINT", "SELF_HINT", "compare", "like", "has_nan", "wrong_dtype", "run_checks",
           "line_points", "random_labels", "fallback", "use_if_correct", "expect_at_least"]


# A rule tells whether a known mistake explains your output: rule(your output, expected output, inputs) -> bool.
Rule = Callable[[Any, Any, tuple], bool]


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple                 # the inputs, cloned before every call
    expected: Any = None        # worked out by hand; None: ask the reference function
    grad: str | None = None     # "finite": gradients must be finite; "match": and equal the reference's


# ---------------------------------------------------------------------------------------------- the machinery
_SQRT_HINT = ("sqrt has an infinite slope at 0, so a zero distance (a point with itself, a collapsed pair) gives "
              "NaN gradients. Take the root of a clamped value, e.g. sq.clamp_min(1e-12).sqrt(), or use "
              "course_lib.similarity.distances, which returns 0 with a zero gradient there.")


_DETACHED_HINT = ("Build the result from the inputs with torch operations only: no .item(), .detach(), .numpy() or "
                  "torch.tensor(...) on the way. With nothing to learn, return embeddings.sum() * 0 rather than "
                  "torch.tensor(0.0), so that loss.backward() still works.")


_GRAD_HINT = ("The values are right but the gradient is not: look for .detach(), .data or values computed "
              "outside autograd.")


SQUARED_HINT = "Use plain distances ||a − b||, not squared ones."


SELF_HINT = "An anchor is not its own positive (a ≠ p; leave out the diagonal, where d = 0)."


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


def compare(got: Any, expected: Any, rtol: float = 1e-4, atol: float = 1e-5) -> str | None:
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


def like(variant: Callable) -> Rule:
    """A rule that holds when your output equals that of a known wrong version."""
    return lambda got, expected, args: compare(got, variant(*args)) is None


def has_nan(got, expected, args) -> bool:
    return bool(got.isnan().any()) and not bool(torch.as_tensor(expected).isnan().any())


def wrong_dtype(got, expected, args) -> bool:
    return got.shape == expected.shape and (got.dtype, got.device) != (expected.dtype, expected.device)


_COMMON_RULES: list[tuple[str, Rule]] = [
    ("Keep the dtype and device of the inputs: masks come from comparisons and & (bool); losses and distances "
     "keep the inputs' float dtype (no .double(), .long(), .int(), .cuda()); labels and indices are integers "
     "(torch.long).", wrong_dtype),
    ("Return one number (the mean), not one value per item.",
     lambda got, expected, args: got.ndim == 1 and (not isinstance(expected, Tensor) or expected.ndim == 0)),
]


def _diagnose(fn: Callable, cases: list[Case], expected: list, rules: list, generic: str) -> str:
    """The hint of the known mistake that explains the most failing cases (the first listed on a tie)."""
    def holds(rule: Rule, case: Case, got: Any, want: Any) -> bool:
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
        if compare(got, want) is not None:
            wrong.append((case, got, want))
    scores = [sum(holds(rule, *w) for w in wrong) for _, rule in rules]
    best = max(range(len(rules)), key=scores.__getitem__)
    return rules[best][0] if scores[best] > 0 else generic


def _grad_problem(fn: Callable, reference: Callable | None, case: Case) -> tuple[str, str] | None:
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
            problem = compare(g, r, rtol=1e-3, atol=1e-4)
            if problem:
                return f"the gradient differs from course_lib's: {problem}", _GRAD_HINT
    return None


def run_checks(name: str, fn: Callable, cases: list[Case], reference: Callable | None,
               rules: list[tuple[str, Rule]], generic: str, library: Callable | tuple[Callable, ...] = ()) -> bool:
    """Run fn on every case (values first, then gradients), print a one-line verdict, return True if all pass.

    ``library``: course_lib's own version(s) of the idea, which the student's function must not call (the
    reference too, when it is a course_lib function): calling it passes every case without writing anything.
    """
    expected = [c.expected if c.expected is not None else _first(reference(*_clone(c.args))) for c in cases]
    calls: list[str] = []
    fn = _watched(fn, _library_code(reference, library), calls)
    checks, where, problem = 0, cases[0].name, None
    try:
        for case, want in zip(cases, expected):
            where = case.name
            problem = compare(fn(*_clone(case.args)), want)
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
        if calls:
            return _called_the_library(name, calls)
        print(f"✗ {where}: your function raised {type(error).__name__}: {error}")
        return False
    if calls:
        return _called_the_library(name, calls)
    print(f"✗ {where}: {problem}\n  hint: {hint}" if problem else f"✓ {name}: all {checks} checks passed")
    return problem is None


def _library_code(reference: Callable | None, library: Callable | tuple[Callable, ...]) -> dict:
    """{code object: name} of the course_lib functions a solution must not call."""
    functions = list(library) if isinstance(library, tuple) else [library]
    if reference is not None and getattr(reference, "__module__", "").startswith("course_lib.") \
            and not reference.__module__.startswith("course_lib.exercises"):
        functions.append(reference)
    codes = {}
    for f in functions:
        f = inspect.unwrap(f)                                          # decorated (torch.no_grad): the inner function
        if hasattr(f, "__code__"):
            codes[f.__code__] = f"{f.__module__}.{f.__qualname__}"
    return codes


def _watched(fn: Callable, codes: dict, calls: list[str]) -> Callable:
    """fn, recording in ``calls`` the watched functions that run while it runs (Python's profiler hook sees
    every call of a Python function, however it was imported or renamed)."""
    if not codes:
        return fn

    def hook(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            calls.append(codes[frame.f_code])

    def run(*args):
        previous = sys.getprofile()
        sys.setprofile(hook)
        try:
            return fn(*args)
        finally:
            sys.setprofile(previous)
    return run


def _called_the_library(name: str, calls: list[str]) -> bool:
    whose = "course_lib's own" if calls[0].startswith("course_lib.") else "the ready-made"
    print(f"✗ {name}: your function calls {whose} {calls[0]}, which passes every check without "
          "showing anything.\n  hint: write it yourself with torch operations (the notebook goes on with "
          "course_lib's version until you do).")
    return False


def line_points(*xs: float) -> Tensor:
    """Points on a line, (B, 1): their distances are exact, so ties are real ties."""
    return torch.tensor(xs, dtype=torch.float32)[:, None]


def random_labels(g: torch.Generator, classes: int, per_class: int) -> Tensor:
    """(classes * per_class,) labels in a shuffled order."""
    y = torch.arange(classes).repeat_interleave(per_class)
    return y[torch.randperm(len(y), generator=g)]


# ---------------------------------------------------------------------------------------------- notebook helpers
def fallback(function: Callable, name: str | None = None) -> Callable[[Callable], Callable]:
    """Decorator of a checker: ``function`` is course_lib's version of the exercise (same arguments, same
    result), which the notebook goes on with until the student's passes (see :func:`use_if_correct`)."""
    def attach(check: Callable) -> Callable:
        check.fallback = function
        check.fallback_name = name or f"{function.__module__}.{function.__qualname__}"
        return check
    return attach


def use_if_correct(student_fn: Callable, check: Callable) -> Callable:
    """Check ``student_fn`` with ``check`` and return it if it passed, else course_lib's version of the same
    function (the checker's fallback), saying which one the notebook goes on with.

        loss_fn = use_if_correct(my_triplet_loss, check_triplet_loss)
    """
    if check(student_fn):
        print("Using your function.")
        return student_fn
    print(f"Using {check.fallback_name} instead; come back to the exercise later.")
    return check.fallback


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
