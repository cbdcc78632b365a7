"""The classification losses of lesson 08 against slow loops written from the papers' formulas, and against
pytorch-metric-learning where the conventions agree."""
import math
import re

import pytest
import torch

from course_lib.similarity import (ClassProxies, EmbedderWithProxies, arcface_loss, cosine_logits,
                                   normalized_softmax_loss, proxy_nca_loss, proxy_snapshot)


def unit(v):
    return v / v.norm() if v.norm() > 0 else v


def slow_normalized_softmax(e, y, w, s):
    total = 0.0
    for i in range(len(e)):
        logits = [s * float(unit(e[i]) @ unit(w[c])) for c in range(len(w))]
        total += -logits[y[i]] + math.log(sum(math.exp(z) for z in logits))
    return total / len(e)


def slow_arcface(e, y, w, m, s):
    total = 0.0
    for i in range(len(e)):
        logits = []
        for c in range(len(w)):
            cos = min(max(float(unit(e[i]) @ unit(w[c])), -1 + 1e-6), 1 - 1e-6)
            if c == y[i]:
                theta = math.acos(cos)
                cos = math.cos(theta + m) if theta + m <= math.pi else cos - m * math.sin(m)
            logits.append(s * cos)
        total += -logits[y[i]] + math.log(sum(math.exp(z) for z in logits))
    return total / len(e)


def slow_proxy_nca(e, y, p, s):
    total = 0.0
    for i in range(len(e)):
        d = [float((unit(e[i]) - unit(p[c])).pow(2).sum()) for c in range(len(p))]
        total += -math.log(math.exp(-s * d[y[i]]) / sum(math.exp(-s * d[c]) for c in range(len(p)) if c != y[i]))
    return total / len(e)


def batch(seed, b=12, c=5, d=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g), torch.randint(0, c, (b,), generator=g), torch.randn(c, d, generator=g)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_losses_match_slow_loops(seed):
    e, y, w = batch(seed)
    assert normalized_softmax_loss(e, y, w, 7.0).item() == pytest.approx(slow_normalized_softmax(e, y, w, 7.0), abs=1e-5)
    assert arcface_loss(e, y, w, 0.4, 5.0).item() == pytest.approx(slow_arcface(e, y, w, 0.4, 5.0), abs=1e-5)
    assert proxy_nca_loss(e, y, w, 3.0).item() == pytest.approx(slow_proxy_nca(e, y, w, 3.0), abs=1e-5)


def test_arcface_past_pi_uses_the_monotone_fallback():
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    e = torch.tensor([[-1.0, 0.1]])                         # almost opposite its class: θ + m > π
    y = torch.tensor([0])
    assert arcface_loss(e, y, w, 0.5, 4.0).item() == pytest.approx(slow_arcface(e, y, w, 0.5, 4.0), abs=1e-5)


def test_arcface_with_no_margin_is_normalized_softmax():
    e, y, w = batch(3)
    assert arcface_loss(e, y, w, 0.0, 6.0).item() == pytest.approx(normalized_softmax_loss(e, y, w, 6.0).item(), abs=1e-4)


def test_agree_with_pytorch_metric_learning():
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    e, y, w = batch(4, c=6, d=8)
    ns = pml.NormalizedSoftmaxLoss(6, 8, temperature=0.1)
    ns.W.data = w.T.clone()                                    # PML stores W as (D, C)
    assert normalized_softmax_loss(e, y, w, 10.0).item() == pytest.approx(ns(e, y).item(), abs=1e-5)
    arc = pml.ArcFaceLoss(6, 8, margin=math.degrees(0.3), scale=8.0)   # PML's margin is in degrees
    arc.W.data = w.T.clone()
    assert arcface_loss(e, y, w, 0.3, 8.0).item() == pytest.approx(arc(e, y).item(), abs=1e-4)


@pytest.mark.parametrize("loss", [normalized_softmax_loss, arcface_loss, proxy_nca_loss])
def test_finite_gradients_at_cos_plus_minus_one_and_at_zero_embeddings(loss):
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], requires_grad=True)
    e = torch.tensor([[2.0, 0.0], [-3.0, 0.0], [0.0, 0.0]], requires_grad=True)   # cos = 1, cos = -1, zero
    y = torch.tensor([0, 0, 1])
    out = loss(e, y, w)
    out.backward()
    assert out.isfinite() and e.grad.isfinite().all() and w.grad.isfinite().all()


def test_proxy_nca_leaves_the_positive_out_of_the_denominator():
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    e = torch.tensor([[1.0, 0.0]])                         # on its proxy: d_y = 0, d_other = 2
    assert proxy_nca_loss(e, torch.tensor([0]), w, 1.0).item() == pytest.approx(-2.0, abs=1e-5)


def test_cosine_logits_shape_and_values():
    c = cosine_logits(torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    assert c.shape == (1, 2) and torch.allclose(c, torch.tensor([[0.6, 0.8]]))


def test_errors_say_what_to_fix():
    e, y, w = batch(5)
    with pytest.raises(ValueError, match="same D"):
        normalized_softmax_loss(e, y, w[:, :3])
    with pytest.raises(ValueError, match="labels must be 0"):
        arcface_loss(e, y + 10, w)
    with pytest.raises(ValueError, match="at least two proxies"):
        proxy_nca_loss(e, torch.zeros_like(y), w[:1])
    with pytest.raises(ValueError, match="loss must be one of"):
        ClassProxies(5, 4, "softmax")


def test_class_proxies_learn_with_the_network_and_lower_the_loss():
    torch.manual_seed(0)
    e, y, _ = batch(6, b=40, c=4, d=3)
    for name in ClassProxies.LOSSES:
        head = ClassProxies(4, 3, name)
        net = torch.nn.Linear(3, 3)
        opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=0.05)
        first = head(net(e), y).item()
        for _ in range(60):
            opt.zero_grad()
            loss = head(net(e), y)
            loss.backward()
            opt.step()
        assert loss.item() < first, name


# --- ClassProxies with class labels, EmbedderWithProxies, proxy_snapshot ----------------------------------


def test_class_proxies_with_labels_look_up_their_rows():
    head = ClassProxies([3, 17, 42], 4)
    assert head.weight.shape == (3, 4)
    y = torch.tensor([42, 3, 17, 42])
    assert head.rows(y).tolist() == [[3, 17, 42].index(int(c)) for c in y]
    e = torch.randn(4, 4)
    assert head(e, y).item() == pytest.approx(normalized_softmax_loss(e, head.rows(y), head.weight).item())
    assert ClassProxies(5, 2).rows(torch.arange(5)).tolist() == [0, 1, 2, 3, 4]     # a count: labels are rows
    assert "lookup" not in head.state_dict()                     # rebuilt from the classes, not saved


@pytest.mark.parametrize("labels, unknown", [([3, 5], "[5]"), ([100, 3], "[100]"), ([-1, 17], "[-1]"),
                                             ([0, 50, 4, 0], "[0, 4, 50]")])
def test_class_proxies_name_the_labels_they_do_not_know(labels, unknown):
    head = ClassProxies([3, 17, 42], 2)
    with pytest.raises(ValueError, match=rf"labels {re.escape(unknown)} have no class vector"):
        head(torch.randn(len(labels), 2), torch.tensor(labels))


@pytest.mark.parametrize("classes", [[], [1, 1], [-1, 2], 0])
def test_class_proxies_reject_bad_classes(classes):
    with pytest.raises(ValueError, match="classes must be a positive count or distinct labels"):
        ClassProxies(classes, 2)


def test_class_proxies_call_your_loss_with_rows_and_options():
    calls = []

    def my_loss(e, rows, w, **options):
        calls.append((rows, w, options))
        return arcface_loss(e, rows, w, **options)

    head = ClassProxies([10, 20, 30, 40], 3, my_loss, margin=0.3, scale=4.0)
    e, y = torch.randn(6, 3), torch.tensor([40, 10, 10, 30, 20, 40])
    out = head(e, y)
    (rows, w, options), = calls
    assert rows.tolist() == [3, 0, 0, 2, 1, 3] and w is head.weight and options == {"margin": 0.3, "scale": 4.0}
    assert out.item() == pytest.approx(arcface_loss(e, rows, head.weight, 0.3, 4.0).item())
    assert head.loss_name == "my_loss"


def test_embedder_with_proxies_trains_network_and_proxies_with_one_optimizer():
    torch.manual_seed(0)
    net = torch.nn.Linear(5, 3)
    model = EmbedderWithProxies(net, ClassProxies([2, 7], 3, "proxy-nca"))
    x, y = torch.randn(8, 5), torch.tensor([2, 7] * 4)
    assert torch.equal(model(x), net(x))
    e = model(x)
    assert model.loss(e, y).item() == pytest.approx(model.proxies(e, y).item())
    assert model.loss(e, y).item() == pytest.approx(proxy_nca_loss(e, (y == 7).long(), model.proxies.weight).item())
    params = list(model.parameters())
    assert any(p is model.proxies.weight for p in params) and any(p is net.weight for p in params)
    before = [p.detach().clone() for p in (net.weight, model.proxies.weight)]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.loss(model(x), y).backward()
    opt.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, (net.weight, model.proxies.weight)))


def test_proxy_snapshot_is_the_embeddings_then_the_class_vectors_at_the_90th_percentile_norm():
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    model = EmbedderWithProxies(net, ClassProxies([1, 5, 9, 11], 3))
    x = torch.randn(1100, 4)                                     # more than one block of 1024
    with torch.no_grad():
        snap = proxy_snapshot(x)(model)
        e = net(x)
    assert snap.shape == (1100 + 4, 3)
    torch.testing.assert_close(snap[:1100], e)
    norms = sorted(e.norm(dim=1).tolist())
    position = 0.9 * (len(norms) - 1)                            # linear interpolation between order statistics
    low = math.floor(position)
    radius = norms[low] + (position - low) * (norms[low + 1] - norms[low])
    for row, w in zip(snap[1100:], model.proxies.weight):
        assert row.norm().item() == pytest.approx(radius, rel=1e-5)
        assert torch.nn.functional.cosine_similarity(row, w, dim=0).item() == pytest.approx(1.0, abs=1e-6)
