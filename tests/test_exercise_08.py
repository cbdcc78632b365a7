"""The checkers of lesson 08's losses: hand-written solutions pass, each named mistake fails with its hint, a
function that calls course_lib's loss fails, and the stub falls back."""
import math

import pytest
import torch
import torch.nn.functional as F

import course_lib.exercises as ex
from course_lib.similarity import arcface_loss, normalized_softmax_loss, proxy_nca_loss


def unit(x):
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def ns_ok(e, y, w, s):
    return F.cross_entropy(s * unit(e) @ unit(w).T, y)


def arc_ok(e, y, w, m, s):
    cos = (unit(e) @ unit(w).T).clamp(-1 + 1e-6, 1 - 1e-6)
    theta = torch.acos(cos)
    target = torch.where(theta + m <= math.pi, torch.cos(theta + m), cos - m * math.sin(m))
    one_hot = F.one_hot(y, w.shape[0]).bool()
    return F.cross_entropy(s * torch.where(one_hot, target, cos), y)


def nca_ok(e, y, p, s):
    d = 2 - 2 * unit(e) @ unit(p).T
    others = torch.stack([torch.logsumexp(-s * torch.cat([d[i, :y[i]], d[i, y[i] + 1:]]), 0) for i in range(len(y))])
    return (s * d[torch.arange(len(y)), y] + others).mean()


@pytest.mark.parametrize("check, solution", [(ex.check_normalized_softmax_loss, ns_ok),
                                             (ex.check_arcface_loss, arc_ok), (ex.check_proxy_nca_loss, nca_ok)])
def test_hand_written_solutions_pass(check, solution, capsys):
    assert check(solution) is True, capsys.readouterr().out


NS_WRONG = {
    "nothing normalized": (lambda e, y, w, s: F.cross_entropy(s * e @ w.T, y), "Normalize BOTH"),
    "class vectors not normalized": (lambda e, y, w, s: F.cross_entropy(s * unit(e) @ w.T, y), "class vectors are not"),
    "no scale": (lambda e, y, w, s: F.cross_entropy(unit(e) @ unit(w).T, y), "scale before the softmax"),
    "sum, not mean": (lambda e, y, w, s: F.cross_entropy(s * unit(e) @ unit(w).T, y, reduction="sum"), "mean over the batch"),
}
ARC_WRONG = {
    "margin on the cosine": (lambda e, y, w, m, s: F.cross_entropy(
        s * torch.where(F.one_hot(y, w.shape[0]).bool(), unit(e) @ unit(w).T - m, unit(e) @ unit(w).T), y), "on the ANGLE"),
    "margin on every class": (lambda e, y, w, m, s: F.cross_entropy(
        s * torch.cos(torch.acos((unit(e) @ unit(w).T).clamp(-1 + 1e-6, 1 - 1e-6)) + m), y), "Only the TRUE class"),
    "no scale": (lambda e, y, w, m, s: arc_ok(e, y, w, m, 1.0), "by the scale"),
    "no fallback past pi": (lambda e, y, w, m, s: F.cross_entropy(s * torch.where(
        F.one_hot(y, w.shape[0]).bool(), torch.cos(torch.acos((unit(e) @ unit(w).T).clamp(-1 + 1e-6, 1 - 1e-6)) + m),
        unit(e) @ unit(w).T), y), "rises again"),
}
NCA_WRONG = {
    "positive in the denominator": (lambda e, y, p, s: F.cross_entropy(-s * (2 - 2 * unit(e) @ unit(p).T), y),
                                    "OUT of the denominator"),
    "not normalized": (lambda e, y, p, s: (s * torch.cdist(e, p)[torch.arange(len(y)), y] ** 2 + torch.logsumexp(
        (-s * torch.cdist(e, p) ** 2).masked_fill(F.one_hot(y, len(p)).bool(), -math.inf), 1)).mean(), "Normalize BOTH"),
    "plain distances": (lambda e, y, p, s: (
        s * torch.cdist(unit(e), unit(p))[torch.arange(len(y)), y]
        + torch.logsumexp((-s * torch.cdist(unit(e), unit(p))).masked_fill(F.one_hot(y, len(p)).bool(), -math.inf), 1)).mean(),
        "SQUARED distance"),
    "no scale": (lambda e, y, p, s: nca_ok(e, y, p, 1.0), "scale inside"),
}


@pytest.mark.parametrize("name", sorted(NS_WRONG))
def test_normalized_softmax_mistakes(name, capsys):
    fn, hint = NS_WRONG[name]
    assert ex.check_normalized_softmax_loss(fn) is False
    assert hint in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(ARC_WRONG))
def test_arcface_mistakes(name, capsys):
    fn, hint = ARC_WRONG[name]
    assert ex.check_arcface_loss(fn) is False
    assert hint in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(NCA_WRONG))
def test_proxy_nca_mistakes(name, capsys):
    fn, hint = NCA_WRONG[name]
    assert ex.check_proxy_nca_loss(fn) is False
    assert hint in capsys.readouterr().out


@pytest.mark.parametrize("check, library", [
    (ex.check_normalized_softmax_loss, lambda e, y, w, s: normalized_softmax_loss(e, y, w, s)),
    (ex.check_arcface_loss, lambda e, y, w, m, s: arcface_loss(e, y, w, m, s)),
    (ex.check_proxy_nca_loss, lambda e, y, p, s: proxy_nca_loss(e, y, p, s))])
def test_calling_course_lib_fails_and_the_stub_falls_back(check, library, capsys):
    assert check(library) is False
    assert "calls course_lib's own" in capsys.readouterr().out

    def stub(*args):
        raise NotImplementedError

    assert ex.use_if_correct(stub, check) is check.fallback
