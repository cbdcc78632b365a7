import pytest
import torch

from course_lib.models import EmbeddingNet


def test_embedding_net_shapes_and_shared_weights():
    net = EmbeddingNet(embedding_dim=2)
    a, b = torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28)
    assert net(a).shape == (4, 2)
    net.eval()
    both = net(torch.cat([a, b]))            # one network, two inputs: the Siamese twins are the same weights
    torch.testing.assert_close(both[4:], net(b))


def test_embedding_net_rejects_wrong_images():
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        EmbeddingNet()(torch.rand(4, 28, 28))
    with pytest.raises(ValueError, match="embedding_dim"):
        EmbeddingNet(embedding_dim=0)


def test_embedding_net_normalize_puts_embeddings_on_the_unit_sphere():
    net = EmbeddingNet(embedding_dim=16, normalize=True)
    e = net(torch.rand(5, 1, 28, 28))
    torch.testing.assert_close(e.norm(dim=1), torch.ones(5))
