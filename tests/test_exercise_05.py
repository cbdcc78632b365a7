"""Lesson 05's exercise, the spatial transformer: a written-out solution passes, each usual mistake fails with
its own hint, and calling course_lib's transformer or a stub falls back to course_lib's version."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import course_lib.exercises as ex
from course_lib.stn import STN, SpatialTransformer, warp


class Solution(nn.Module):
    """The exercise written out by hand."""

    def __init__(self, localization, features, out_size):
        super().__init__()
        self.localization, self.out_size = localization, tuple(out_size)
        self.regressor = nn.Linear(features, 6)
        nn.init.zeros_(self.regressor.weight)
        with torch.no_grad():
            self.regressor.bias.copy_(torch.tensor([1.0, 0, 0, 0, 1, 0]))

    def theta(self, images):
        return self.regressor(self.localization(images)).view(-1, 2, 3)

    def forward(self, images):
        grid = F.affine_grid(self.theta(images), (len(images), images.shape[1], *self.out_size), align_corners=False)
        return F.grid_sample(images, grid, align_corners=False)


class Columns(Solution):
    def theta(self, images):
        return self.regressor(self.localization(images)).view(-1, 3, 2).transpose(1, 2)


class BiasOrder(Solution):
    def __init__(self, *args):
        super().__init__(*args)
        with torch.no_grad():
            self.regressor.bias.copy_(torch.tensor([1.0, 0, 0, 1, 0, 0]))


class NotZeroed(Solution):
    def __init__(self, localization, features, out_size):
        nn.Module.__init__(self)
        self.localization, self.out_size = localization, tuple(out_size)
        self.regressor = nn.Linear(features, 6)
        with torch.no_grad():
            self.regressor.bias.copy_(torch.tensor([1.0, 0, 0, 0, 1, 0]))


class InputSize(Solution):
    def forward(self, images):
        grid = F.affine_grid(self.theta(images), images.shape, align_corners=False)
        return F.grid_sample(images, grid, align_corners=False)


class Corners(Solution):
    def forward(self, images):
        grid = F.affine_grid(self.theta(images), (len(images), images.shape[1], *self.out_size), align_corners=True)
        return F.grid_sample(images, grid, align_corners=True)


class Inverse(Solution):
    def theta(self, images):
        theta = super().theta(images)
        a = torch.linalg.inv(theta[:, :, :2])
        return torch.cat([a, -a @ theta[:, :, 2:]], dim=2)


class Border(Solution):
    def forward(self, images):
        grid = F.affine_grid(self.theta(images), (len(images), images.shape[1], *self.out_size), align_corners=False)
        return F.grid_sample(images, grid, padding_mode="border", align_corners=False)


class Detached(Solution):
    def theta(self, images):
        return super().theta(images).detach()


class CallsWarp(Solution):
    def forward(self, images):
        return warp(images, self.theta(images), size=self.out_size)


WRONG = [(Columns, "two ROWS"), (BiasOrder, "which six numbers"), (NotZeroed, "only the bias counts"),
         (InputSize, "grid for out_size"), (Corners, "align_corners=False"), (Inverse, "not its inverse"),
         (Border, "padding_mode='zeros'")]


def test_a_written_out_solution_passes(capsys):
    assert ex.check_spatial_transformer(Solution) is True
    assert capsys.readouterr().out.startswith("✓ spatial transformer: all")


@pytest.mark.parametrize("wrong, hint", WRONG, ids=[w.__name__ for w, _ in WRONG])
def test_each_usual_mistake_fails_with_its_hint(wrong, hint, capsys):
    assert ex.check_spatial_transformer(wrong) is False
    out = capsys.readouterr().out
    assert out.startswith("✗") and hint in out, out


def test_no_hint_gives_the_code_away(capsys):
    """Hints name the idea, not the answer: no identity bias written out, no init call, no forward pass."""
    for wrong, _ in WRONG + [(Detached, "")]:
        ex.check_spatial_transformer(wrong)
    out = capsys.readouterr().out
    for code in ("[1, 0, 0, 0, 1, 0]", "nn.init.zeros_", "F.affine_grid(theta", "return F.grid_sample"):
        assert code not in out, code


def test_a_detached_theta_fails_the_gradient_check(capsys):
    assert ex.check_spatial_transformer(Detached) is False
    out = capsys.readouterr().out
    assert "(gradient)" in out and ".detach()" in out, out


@pytest.mark.parametrize("library", [lambda loc, f, size: SpatialTransformer(loc, f, size), CallsWarp],
                         ids=["SpatialTransformer", "warp"])
def test_calling_course_libs_transformer_fails(library, capsys):
    assert ex.check_spatial_transformer(library) is False
    assert "calls course_lib's own" in capsys.readouterr().out


def test_a_stub_falls_back_to_course_libs_transformer(capsys):
    class Stub(nn.Module):
        def __init__(self, localization, features, out_size):
            super().__init__()
            raise NotImplementedError("exercise: write this function, then run the cell again")

    assert ex.use_if_correct(Stub, ex.check_spatial_transformer) is SpatialTransformer
    out = capsys.readouterr().out
    assert "not done yet" in out and "Using course_lib.stn.models.SpatialTransformer instead" in out


def test_the_checker_leaves_the_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    ex.check_spatial_transformer(Solution)
    assert torch.equal(torch.rand(3), expected)


def test_the_passing_solution_trains_like_course_libs_stn():
    """The class the notebook trains with: same numbers as STN for the same localization network."""
    torch.manual_seed(0)
    stn = STN((28, 28))
    mine = Solution(stn.localization, 32, (28, 28))
    mine.regressor.load_state_dict(stn.regressor.state_dict())
    x = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(mine(x), stn(x))
