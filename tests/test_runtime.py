import dataclasses

import numpy as np
import pytest
import torch

from course_lib.core import PROFILES, data_dir, pick_device, profile, seed_everything


def test_profile_from_env_and_argument(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "standard")
    assert profile().name == "standard"
    assert profile("full").name == "full"
    monkeypatch.setenv("COURSE_PROFILE", " Quick ")
    assert profile().name == "quick"


def test_profile_default_depends_on_device(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert profile().name == "standard"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert profile().name == "full"


def test_profile_unknown_name_says_which_exist():
    with pytest.raises(ValueError, match=r"\['full', 'quick', 'standard'\]"):
        profile("huge")


def test_profiles_are_frozen_and_grow():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROFILES["quick"].epochs = 100
    q, s = PROFILES["quick"], PROFILES["standard"]
    assert q.train_size < s.train_size and q.epochs <= s.epochs and PROFILES["full"].train_size is None
    assert {p.projection for p in PROFILES.values()} <= {"umap", "pca"} and s.projection == "umap"


def test_seed_everything_reproduces():
    seed_everything(3)
    a = (torch.rand(3), np.random.rand(3))
    seed_everything(3)
    b = (torch.rand(3), np.random.rand(3))
    torch.testing.assert_close(a[0], b[0])
    assert np.array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="non-negative int"):
        seed_everything(-1)


def test_seed_everything_turns_on_deterministic_kernels_with_warnings_only():
    torch.use_deterministic_algorithms(False)
    try:
        seed_everything(0)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(True, warn_only=True)


def test_pick_device(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    assert pick_device().type in ("cpu", "cuda", "mps")
    assert pick_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        pick_device("cuda")


def test_data_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "d"))
    assert data_dir() == tmp_path / "d" and (tmp_path / "d").is_dir()
    monkeypatch.delenv("COURSE_DATA")
    assert data_dir().name == "data"


def test_significant_and_format_seconds():
    from course_lib.core import format_seconds, significant
    assert [significant(v) for v in (1_120_368, 0.004217, 99.96, -3.14159, 0.0)] == \
        ["1,100,000", "0.0042", "100", "-3.1", "0"]
    assert significant(2.0, 3) == "2.00" and significant(9.96) == "10" and significant(0.0996) == "0.10"
    assert [format_seconds(v) for v in (0, 8.9e-7, 4.2e-4, 0.0009997, 2.53, 59.99, 200)] == \
        ["0 s", "0.89 µs", "420 µs", "1.0 ms", "2.5 s", "1.0 min", "3.3 min"]
    with pytest.raises(ValueError, match="finite number of seconds"):
        format_seconds(-1)
    with pytest.raises(ValueError, match="at least 1"):
        significant(3.0, 0)


def test_timings_warm_up_then_time_each_call():
    from course_lib.core import timings
    calls = []
    times = timings(lambda: calls.append(1), repeats=4)
    assert len(calls) == 5 and len(times) == 4 and all(t >= 0 for t in times)
