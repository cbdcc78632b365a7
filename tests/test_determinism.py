"""Two trainings from seed_everything(0) give bit-identical weights, losses and metrics, for every P x K strategy.

seed_everything also turns on torch.use_deterministic_algorithms(True, warn_only=True): on CUDA the
backward of e[idx] with repeated indices (a miner's triplets) otherwise adds in any order. The tests
set nothing else, so they check what a notebook gets from its first cell. Each strategy is trained
twice (on the CPU, and on CUDA when there is a GPU) and the pair of runs is shared by the tests below.
"""
import pytest
import torch

from course_lib.core import fit, seed_everything
from course_lib.similarity import (
    EmbeddingNet,
    PKSampler,
    batch_all_triplet_loss,
    batch_hard_triplet_loss,
    distance_weighted_triplets,
    miner_loss,
    pk_step,
    retrieval_scores,
    semi_hard_triplets,
)

STRATEGIES = ["batch-all", "batch-hard", "semi-hard", "distance-weighted"]
NO_GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
RUNS = [pytest.param((s, d), id=f"{s}-{d}", marks=[NO_GPU] if d == "cuda" else []) for d in ("cpu", "cuda")
        for s in STRATEGIES]


def two_digit_like_data(classes, per_class, device):
    g = torch.Generator().manual_seed(123 + classes)
    x = torch.rand(classes * per_class, 1, 28, 56, generator=g)
    return x.to(device), torch.arange(classes).repeat_interleave(per_class).to(device)


def batch_loss(strategy, device):
    """The batch loss of a strategy, built fresh for every run (distance-weighted: with its own generator)."""
    if strategy == "batch-all":
        return batch_all_triplet_loss
    if strategy == "batch-hard":
        return batch_hard_triplet_loss
    if strategy == "semi-hard":
        return miner_loss(semi_hard_triplets)
    g = torch.Generator(device=device).manual_seed(0)
    return miner_loss(lambda e, y: distance_weighted_triplets(e, y, generator=g))


def train(strategy, device):
    images, labels = two_digit_like_data(12, 10, device)
    held_out, held_labels = two_digit_like_data(4, 5, device)
    seed_everything(0)
    model = EmbeddingNet(16, width=8, normalize=True, input_size=(28, 56)).to(device)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    history = fit(model, PKSampler(labels, p=6, k=4, steps=4), pk_step(images, labels, batch_loss(strategy, device)),
                  epochs=2, evaluate=lambda m: {"MAP@R": retrieval_scores(m, held_out, held_labels)["MAP@R"]},
                  progress=False)
    return start, model.state_dict(), history


@pytest.fixture(scope="module", params=RUNS)
def two_runs(request):
    strategy, device = request.param
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    benchmark = torch.backends.cudnn.benchmark
    yield train(strategy, device), train(strategy, device)
    # seed_everything changes process-wide settings: give the other test files theirs back.
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    torch.backends.cudnn.benchmark = benchmark


def test_final_weights_are_identical(two_runs):
    (start, first, _), (_, second, _) = two_runs
    assert list(first) == list(second)
    for name in first:
        assert torch.equal(first[name], second[name]), f"{name} differs between two identical runs"
    assert not torch.equal(first["head.2.weight"], start["head.2.weight"])     # it did train


def test_step_losses_and_records_are_identical(two_runs):
    (_, _, first), (_, _, second) = two_runs
    assert len(first.steps) == 8
    assert first.step_values("loss") == second.step_values("loss")             # exact, not approximately
    assert first.steps == second.steps                                          # and every recorded extra


def test_evaluated_metrics_are_identical(two_runs):
    (_, _, first), (_, _, second) = two_runs
    epochs = [[{k: v for k, v in e.items() if k != "seconds"} for e in h.epochs] for h in (first, second)]
    assert [sorted(e) for e in epochs[0]] == [["MAP@R", "epoch", "loss"]] * 2
    assert epochs[0] == epochs[1]
