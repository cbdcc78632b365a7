import pytest
import torch

from course_lib.core import DigitClassifier, textbook_layout
from course_lib.detection import TinyDetector
from course_lib.pose import PoseNet
from course_lib.similarity import EmbeddingNet, contrastive_loss
from course_lib.stn import STN


def n_params(net):
    return sum(p.numel() for p in net.parameters())


def test_embedding_net_shapes():
    net = EmbeddingNet(embedding_dim=2)
    assert net(torch.rand(4, 1, 28, 28)).shape == (4, 2)
    net = EmbeddingNet(embedding_dim=16, width=8)
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 16)


def test_embedding_net_for_two_digit_images():
    net = EmbeddingNet(embedding_dim=8, width=8, input_size=(28, 56))
    assert net(torch.rand(3, 1, 28, 56)).shape == (3, 8)
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 56\).*input_size"):
        net(torch.rand(3, 1, 28, 28))
    with pytest.raises(ValueError, match="input_size"):
        EmbeddingNet()(torch.rand(3, 1, 28, 56))            # the default expects 28 x 28
    with pytest.raises(ValueError, match=r"at least \(16, 16\)"):
        EmbeddingNet(input_size=(12, 28))


def test_embedding_net_rejects_wrong_images():
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        EmbeddingNet()(torch.rand(4, 28, 28))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        EmbeddingNet()(torch.rand(4, 3, 28, 28))
    with pytest.raises(ValueError, match="embedding_dim"):
        EmbeddingNet(embedding_dim=0)


def test_siamese_twins_are_one_network_in_eval_mode():
    """Embedding A and B in one call or in two calls gives the same embeddings: one f, no state per input."""
    torch.manual_seed(0)
    net = EmbeddingNet(embedding_dim=4, width=8).eval()
    a, b = torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28)
    both = net(torch.cat([a, b]))
    assert torch.allclose(both[:4], net(a), atol=1e-6) and torch.allclose(both[4:], net(b), atol=1e-6)


def test_siamese_gradient_step_updates_the_single_set_of_weights():
    torch.manual_seed(0)
    net = EmbeddingNet(embedding_dim=4, width=8)
    # There is one set of parameters: a "Siamese pair" has exactly as many as a single network.
    assert n_params(net) == n_params(EmbeddingNet(embedding_dim=4, width=8))
    x1, x2 = torch.rand(6, 1, 28, 28), torch.rand(6, 1, 28, 28)
    same = torch.tensor([True, False] * 3)

    # The gradient of the pair's loss is the sum of what flows back through each branch.
    contrastive_loss(net(x1), net(x2), same).backward()
    total = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    contrastive_loss(net(x1), net(x2).detach(), same).backward()
    through_a = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    contrastive_loss(net(x1).detach(), net(x2), same).backward()
    through_b = [p.grad.clone() for p in net.parameters()]
    for t, ga, gb in zip(total, through_a, through_b):
        assert torch.allclose(t, ga + gb, atol=1e-6)
    assert any(g.abs().sum() > 0 for g in through_a) and any(g.abs().sum() > 0 for g in through_b)

    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    net.zero_grad()
    contrastive_loss(net(x1), net(x2), same).backward()
    with torch.no_grad():                                  # one plain SGD step
        for p in net.parameters():
            p -= 0.1 * p.grad
    # Every layer of the one network moved (a conv bias right before BatchNorm gets no gradient: BN removes it).
    moved = {name for name, p in net.named_parameters() if not torch.equal(before[name], p)}
    assert {name for name in before if name.endswith("weight")} <= moved


def test_embedding_net_normalize_puts_embeddings_on_the_unit_sphere():
    net = EmbeddingNet(embedding_dim=16, normalize=True)
    e = net(torch.rand(5, 1, 28, 28))
    assert torch.allclose(e.norm(dim=1), torch.ones(5))


@pytest.mark.parametrize("make, shape", [
    (lambda: EmbeddingNet(embedding_dim=3, width=8), (5, 1, 28, 28)),
    (lambda: DigitClassifier(size=(28, 28), width=8), (5, 1, 28, 28)),
    (lambda: torch.nn.Sequential(STN(width=4), DigitClassifier(width=4)), (5, 1, 42, 42)),
    (lambda: PoseNet("flat", joints=3, image_size=32, width=8), (5, 1, 32, 32)),
    (lambda: PoseNet("integral", joints=3, image_size=32, width=8), (5, 1, 32, 32)),
    (lambda: TinyDetector(2, classes=3, width=8), (5, 1, 32, 32)),
], ids=["EmbeddingNet", "DigitClassifier", "STN+DigitClassifier", "PoseNet-flat", "PoseNet-integral", "TinyDetector"])
def test_fast_layout_networks_compute_the_textbook_function(make, shape):
    # channels-last weights and max-pool before ReLU: same outputs and gradients as the textbook network
    torch.manual_seed(0)
    net = make()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert not all(c.weight.is_contiguous() for c in convs if c.in_channels > 1)   # really channels-last
    ref = textbook_layout(net)
    assert any(isinstance(a, torch.nn.ReLU) and isinstance(b, torch.nn.MaxPool2d)
               for m in ref.modules() if isinstance(m, torch.nn.Sequential) for a, b in zip(m, list(m)[1:]))
    x = torch.rand(shape)
    out, out_ref = net(x), ref(x)
    torch.testing.assert_close(out, out_ref, rtol=1e-4, atol=1e-5)
    out.square().sum().backward()
    out_ref.square().sum().backward()
    scale = max(q.grad.abs().max().item() for q in ref.parameters())
    for (name, p), q in zip(net.named_parameters(), ref.parameters()):
        # a conv bias before BatchNorm has a gradient of 0 up to rounding: compare on the network's scale
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-3, atol=1e-5 * scale, msg=lambda m: f"{name}: {m}")
