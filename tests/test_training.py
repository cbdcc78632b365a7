import pytest
import torch
from torch import nn

from course_lib.core import TensorBatches, embed, fit, load_checkpoint


def toy_problem(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    return x, y


def mse_step(model, batch):
    x, y = batch
    loss = ((model(x) - y) ** 2).mean()
    return loss, {"abs_error": (model(x) - y).abs().mean()}


def make_model(seed=0):
    torch.manual_seed(seed)
    return nn.Linear(3, 1)


def test_fit_learns_and_records_history():
    x, y = toy_problem()
    model = make_model()
    history = fit(model, TensorBatches(x, y, batch_size=16), mse_step, epochs=30, lr=0.05,
                  evaluate=lambda m: {"mse": ((m(x) - y) ** 2).mean()}, snapshot_inputs=x[:10], progress=False)
    assert len(history.epochs) == 30 and len(history.steps) == 30 * 4
    assert history.epochs[-1]["mse"] < 0.01 < history.epochs[0]["mse"]
    assert all(isinstance(s["loss"], float) and isinstance(s["abs_error"], float) for s in history.steps)
    assert history.snapshot_epochs == list(range(31)) and history.snapshots[0].shape == (10, 1)
    assert history.step_values("loss")[0] > history.step_values("loss")[-1]
    assert not model.training and not history.interrupted
    assert "30 epochs" in repr(history)


def test_fit_is_reproducible():
    x, y = toy_problem()
    runs = []
    for _ in range(2):
        model = make_model()
        fit(model, TensorBatches(x, y, batch_size=16, seed=5), mse_step, epochs=3, progress=False)
        runs.append(model.weight.detach().clone())
    torch.testing.assert_close(runs[0], runs[1])


def test_interrupt_keeps_weights_and_history_and_continues_exactly():
    """Interrupt in the middle of epoch 2, continue: the same weights and records as a run that was
    never interrupted (Adam keeps its moments, the interrupted epoch resumes at the next batch)."""
    x, y = toy_problem()
    straight = make_model()
    expected = fit(straight, TensorBatches(x, y, batch_size=16), mse_step, epochs=5, lr=0.05, progress=False)

    model = make_model()
    calls = {"n": 0}

    def interrupted_step(model, batch):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return mse_step(model, batch)

    before = model.weight.detach().clone()
    history = fit(model, TensorBatches(x, y, batch_size=16), interrupted_step, epochs=5, lr=0.05, progress=False)
    assert history.interrupted and len(history.epochs) == 1 and len(history.steps) == 6
    assert isinstance(history.steps[-1]["loss"], float)
    assert not torch.equal(model.weight, before)       # the six steps taken are kept
    adam = history._optimizer
    assert adam.state[model.weight]["step"].item() == 6   # Adam's state is kept with the history
    history = fit(model, TensorBatches(x, y, batch_size=16), mse_step, epochs=5, lr=0.05, history=history,
                  progress=False)
    assert history._optimizer is adam
    assert not history.interrupted and [e["epoch"] for e in history.epochs] == [1, 2, 3, 4, 5]
    assert [s["step"] for s in history.steps] == list(range(1, 21))   # no step recorded twice
    torch.testing.assert_close(model.weight, straight.weight)
    assert [round(s["loss"], 6) for s in history.steps] == [round(s["loss"], 6) for s in expected.steps]


def test_continuing_with_another_model_gets_a_fresh_optimizer():
    x, y = toy_problem()
    history = fit(make_model(), TensorBatches(x, y, batch_size=16), mse_step, epochs=1, progress=False)
    other = make_model(seed=1)
    history = fit(other, TensorBatches(x, y, batch_size=16), mse_step, epochs=2, history=history, progress=False)
    assert {id(p) for g in history._optimizer.param_groups for p in g["params"]} == {id(p) for p in other.parameters()}


def test_fit_with_mixed_precision_on_the_cpu():
    x, y = toy_problem()
    model = make_model()
    history = fit(model, TensorBatches(x, y, batch_size=16), mse_step, epochs=20, lr=0.05, amp=True, progress=False)
    assert model.weight.dtype == torch.float32                       # autocast computes in bf16, keeps fp32 weights
    assert history.epochs[-1]["loss"] < 0.1 * history.epochs[0]["loss"]


def test_snapshot_callable_vector_extras_and_clipping():
    x, y = toy_problem()
    model = make_model()

    def step(model, batch):
        loss, extra = mse_step(model, batch)
        return loss, {**extra, "per_output": (model(batch[0]) - batch[1]).abs().mean(0).repeat(3)}   # a (3,) vector

    history = fit(model, TensorBatches(x, y, batch_size=16), step, epochs=2, progress=False,
                  snapshot=lambda m: m.weight.detach().clone())
    assert history.snapshot_epochs == [0, 1, 2] and history.snapshots[0].shape == (1, 3)
    assert isinstance(history.steps[0]["per_output"], list) and len(history.steps[0]["per_output"]) == 3
    with pytest.raises(ValueError, match="not both"):
        fit(model, TensorBatches(x, y, batch_size=16), step, epochs=1, snapshot=lambda m: m.weight, snapshot_inputs=x)

    model = make_model()
    before = model.weight.detach().clone()
    sgd = torch.optim.SGD(model.parameters(), lr=1.0)
    fit(model, TensorBatches(x * 100, y * 100, batch_size=64), mse_step, epochs=1, optimizer=sgd,
        clip_grad_norm=0.01, progress=False)
    assert (model.weight - before).norm() <= 0.01 + 1e-6           # one SGD step of a clipped gradient
    with pytest.raises(ValueError, match="clip_grad_norm"):
        fit(model, TensorBatches(x, y, batch_size=16), mse_step, epochs=1, clip_grad_norm=0.0)


def test_checkpoint_resume_equals_uninterrupted_run(tmp_path):
    x, y = toy_problem()
    straight = make_model()
    fit(straight, TensorBatches(x, y, batch_size=16), mse_step, epochs=4, progress=False)

    ckpt = tmp_path / "run.pt"
    first = make_model()
    fit(first, TensorBatches(x, y, batch_size=16), mse_step, epochs=2, checkpoint=ckpt, progress=False)
    resumed = make_model(seed=123)                      # fresh process: other weights, same architecture
    history = fit(resumed, TensorBatches(x, y, batch_size=16), mse_step, epochs=4, checkpoint=ckpt, resume=True,
                  progress=False)
    assert len(history.epochs) == 4
    torch.testing.assert_close(resumed.weight, straight.weight)
    assert len(load_checkpoint(ckpt, make_model()).epochs) == 4


def test_checkpoint_for_another_model_is_a_clear_error(tmp_path):
    x, y = toy_problem()
    ckpt = tmp_path / "run.pt"
    fit(make_model(), TensorBatches(x, y, batch_size=16), mse_step, epochs=1, checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match="does not fit this model"):
        load_checkpoint(ckpt, nn.Linear(5, 1))


def test_lr_schedule_and_bad_evaluate():
    x, y = toy_problem()
    model = make_model()
    frozen = model.weight.detach().clone()
    fit(model, TensorBatches(x, y, batch_size=16), mse_step, epochs=1, lr=0.1, lr_schedule=lambda step: 0.0,
        progress=False)
    torch.testing.assert_close(model.weight, frozen)
    with pytest.raises(ValueError, match="must return a dict"):
        fit(model, TensorBatches(x, y, batch_size=16), mse_step, epochs=1, evaluate=lambda m: 0.5, progress=False)


def test_embed_batches_and_restores_mode():
    model = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5))
    model.train()
    x = torch.randn(10, 3)
    out = embed(model, x, batch_size=3)
    assert out.shape == (10, 2) and model.training
    torch.testing.assert_close(out, model.eval()(x))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fit_on_cuda_syncs_per_epoch_not_per_step():
    import warnings
    x, y = (t.cuda() for t in toy_problem())
    batches = TensorBatches(x, y, batch_size=4)                       # 16 steps per epoch
    fit(make_model().cuda(), batches, mse_step, epochs=1, lr=0.05, progress=False)   # warm-up
    model = make_model().cuda()
    torch.cuda.set_sync_debug_mode("warn")                            # every host sync warns
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = fit(model, batches, mse_step, epochs=3, lr=0.05, progress=False)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    assert len(history.steps) == 48 and len(syncs) <= 4 * 3, [str(w.message)[:80] for w in syncs]
    assert history.epochs[-1]["loss"] < history.epochs[0]["loss"]
    for amp in (True, False):
        h = fit(make_model().cuda(), batches, mse_step, epochs=2, lr=0.05, progress=False, amp=amp)
        assert all(isinstance(s["loss"], float) for s in h.steps)


def test_fit_reads_no_loss_inside_an_epoch_without_a_progress_bar(monkeypatch):
    """Reading a value on the host (``.item()``) waits for the GPU: fit reads the losses once per epoch."""
    x, y = toy_problem()
    reads = []
    real_item = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda t: reads.append(1) or real_item(t))
    model = make_model()                              # SGD: Adam on the CPU reads its step count with .item()
    history = fit(model, TensorBatches(x, y, batch_size=16), mse_step, epochs=2, progress=False,
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.05))
    assert len(history.steps) == 8 and reads == []
    assert all(isinstance(s["loss"], float) and isinstance(s["abs_error"], float) for s in history.steps)


def test_fit_reads_the_loss_only_when_the_progress_bar_redraws(monkeypatch):
    x, y = toy_problem(n=640)
    reads = []
    real_item = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda t: reads.append(1) or real_item(t))
    model = make_model()
    fit(model, TensorBatches(x, y, batch_size=16), mse_step, epochs=2, progress=True,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05))
    assert 1 <= len(reads) < 80 / 4                                  # 80 steps in far less than a second


def test_nondeterminism_warnings_become_one_line_once(capsys):
    """On a GPU some ops (grid_sample's backward) warn at every step under deterministic mode: fit says
    once what it means; other warnings are passed on unchanged."""
    import warnings

    from course_lib.core import training

    training._noted.discard("fake_op_cuda")
    x, y = toy_problem()

    def warning_step(model, batch):
        warnings.warn("fake_op_cuda does not have a deterministic implementation, but you set "
                      "'torch.use_deterministic_algorithms(True, warn_only=True)'.", UserWarning)
        return mse_step(model, batch)

    def other_step(model, batch):
        warnings.warn("something else", RuntimeWarning)
        return mse_step(model, batch)

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        fit(make_model(), TensorBatches(x, y, batch_size=16), warning_step, epochs=2, progress=False)
        fit(make_model(), TensorBatches(x, y, batch_size=16), warning_step, epochs=1, progress=False)
        assert not shown
        fit(make_model(), TensorBatches(x, y, batch_size=16), other_step, epochs=1, progress=False)
    assert [str(w.message) for w in shown] and all(str(w.message) == "something else" for w in shown)
    out = capsys.readouterr().out
    assert out.count("no deterministic version of fake_op_cuda") == 1


def test_fit_compiled_matches_eager(monkeypatch):
    """compile=True (torch.compile; CUDA graphs on a GPU) trains the same weights as the plain model.

    The compiler's back end is AOTAutograd without code generation ("aot_eager"): it traces the forward and
    the backward as the real one does, in about a second instead of 20 s of C++ compiling on 2 cores."""
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: real_compile(model, **{**kw, "backend": "aot_eager"}))
    x, y = toy_problem()
    eager, compiled = make_model(), make_model()
    h1 = fit(eager, TensorBatches(x, y, batch_size=16, drop_last=True), mse_step, epochs=2, lr=0.05, progress=False)
    h2 = fit(compiled, TensorBatches(x, y, batch_size=16, drop_last=True), mse_step, epochs=2, lr=0.05,
             progress=False, compile=True)
    torch.testing.assert_close(h1.step_values(), h2.step_values(), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(eager.weight, compiled.weight, rtol=1e-4, atol=1e-6)


def test_eval_mode_restores_the_mode_even_after_an_error():
    from course_lib.core import eval_mode
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    with pytest.raises(RuntimeError, match="boom"):
        with eval_mode(net):
            assert not net.training and not torch.is_grad_enabled()
            raise RuntimeError("boom")
    assert net.training and torch.is_grad_enabled()
    net.eval()
    with eval_mode(net):
        pass
    assert not net.training                                          # an eval-mode model stays in eval mode


def test_cosine_schedule_and_resume_point():
    from course_lib.core import History, cosine_schedule, resume_point
    f = cosine_schedule(10)
    assert f(0) == 1.0 and abs(f(10)) < 1e-12 and f(5) == pytest.approx(0.5)
    assert all(f(s) > f(s + 1) for s in range(10))
    with pytest.raises(ValueError, match="at least 1"):
        cosine_schedule(0)
    assert resume_point(History()) == (0, 0)
    h = History(epochs=[{"epoch": 1}, {"epoch": 2}], steps=[{"epoch": 1}] * 4 + [{"epoch": 2}] * 4)
    assert resume_point(h) == (2, 0)                                   # two whole epochs: start the third


def test_every_batch_source_follows_the_epoch_seeding_rule():
    from course_lib.core import EpochSeeded, TensorBatches
    from course_lib.detection import CanvasBatches
    from course_lib.pose import FigureBatches
    from course_lib.similarity import PKSampler, PairSampler, TripletSampler
    from course_lib.stn import DistortedBatches
    for source in (TensorBatches, CanvasBatches, FigureBatches, PKSampler, PairSampler, TripletSampler,
                   DistortedBatches):
        assert issubclass(source, EpochSeeded), source
    figures = FigureBatches(batch_size=2, steps=1, seed=3, size=32)
    figures.set_epoch(4)
    g = figures.epoch_generator()
    assert figures.epoch == 5
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=torch.Generator().manual_seed(3 * 100_003 + 4)))
