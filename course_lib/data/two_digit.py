"""The two-digit MNIST benchmark of lessons 02-04: 100 classes "00" to "99", each image two MNIST digits
side by side, with classes, digit images and (optionally) validation classes kept apart.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from ..core.checks import check_labels
from .mnist import load_mnist

__all__ = ["class_disjoint_split", "TwoDigitMNIST", "load_two_digit_mnist"]


def class_disjoint_split(images: Tensor, labels: Tensor, held_out: Sequence[int]
                         ) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """Split into (seen classes) and (held-out classes), e.g. train on 0-7 and test on 8-9."""
    check_labels(labels, len(images))
    held = torch.as_tensor(list(held_out), dtype=labels.dtype, device=labels.device)
    present = set(labels.unique().tolist())
    missing = set(held.tolist()) - present
    if missing:
        raise ValueError(f"held_out classes {sorted(missing)} do not occur in labels {sorted(present)}")
    out = torch.isin(labels, held)
    if out.all():
        raise ValueError("every class is held out: keep at least one class to train on")
    return (images[~out], labels[~out]), (images[out], labels[out])


@dataclass(frozen=True)
class TwoDigitMNIST:
    """A 100-class retrieval benchmark: images of two MNIST digits side by side, classes "00"-"99".

    Train on ``train_classes`` (70), evaluate retrieval on ``test_classes`` (the other 30), never seen
    in training: the class-disjoint protocol of CUB-200, CARS-196 and SOP in metric learning.
    Labels are the class numbers themselves (38 is "38"), so they read the same in both splits.
    """

    train_x: Tensor          # (N, 1, 28, 56) float32 in [0, 1]
    train_y: Tensor          # (N,) int64 in train_classes
    test_x: Tensor           # (M, 1, 28, 56)
    test_y: Tensor           # (M,) int64 in test_classes
    train_classes: tuple[int, ...]
    test_classes: tuple[int, ...]
    val_x: Tensor | None = None    # (V, 1, 28, 56) images of val_classes from their own digit pool, or None
    val_y: Tensor | None = None    # (V,) int64 in val_classes
    val_classes: tuple[int, ...] = ()

    @staticmethod
    def name(label: int) -> str:
        return f"{int(label):02d}"

    def __repr__(self) -> str:
        val = (f"validation: {len(self.val_y):,} images of {len(self.val_classes)} held-out training classes, "
               if self.val_classes else "")
        return (f"TwoDigitMNIST(train: {len(self.train_y):,} images of {len(self.train_classes)} classes, {val}"
                f"test: {len(self.test_y):,} images of {len(self.test_classes)} unseen classes "
                f"{', '.join(map(self.name, self.test_classes[:6]))}, ...)")


def load_two_digit_mnist(per_class: int = 40, test_per_class: int | None = None, train_classes: int = 70,
                         seed: int = 0, verbose: bool = True, val_classes: int = 0) -> TwoDigitMNIST:
    """Build the two-digit benchmark from the MNIST digits ``load_mnist`` finds (full or offline subset).

    per_class:      images per training (and validation) class; test_per_class: per unseen class (default: the same).
    train_classes:  how many of the 100 classes to train on; the rest are the unseen test classes.
    val_classes:    how many of the training classes to hold out as validation classes, for choosing
                    settings (every k-th training class, k = train_classes // val_classes); they leave
                    ``train_*`` and get ``val_*`` images.
    The digit images are split into disjoint pools first: half of each digit's images for the test
    classes, the rest for training, and with ``val_classes`` a share of that rest (val_classes /
    train_classes) for the validation classes. So no single digit image appears in two of train,
    validation and test, and a validation score cannot rest on digit images the network trained on.
    Everything is drawn from a generator seeded by ``seed``; with ``val_classes=0`` the benchmark is
    the same as without the argument.
    """
    test_per_class = per_class if test_per_class is None else test_per_class
    if per_class < 2 or test_per_class < 2:
        raise ValueError(f"need at least 2 images per class to have positives, got per_class={per_class}, "
                         f"test_per_class={test_per_class}")
    if not 1 <= train_classes <= 99:
        raise ValueError(f"train_classes must be between 1 and 99 (the rest are unseen), got {train_classes}")
    if not 0 <= val_classes < train_classes:
        raise ValueError(f"val_classes must be between 0 and train_classes - 1 = {train_classes - 1} (some classes "
                         f"must stay for training), got {val_classes}")
    x = torch.cat([load_mnist("train", verbose=verbose)[0], load_mnist("test", verbose=False)[0]])
    y = torch.cat([load_mnist("train", verbose=False)[1], load_mnist("test", verbose=False)[1]])
    g = torch.Generator().manual_seed(seed)
    classes = torch.randperm(100, generator=g)
    seen, unseen = classes[:train_classes].sort().values, classes[train_classes:].sort().values
    held = seen[:: train_classes // val_classes][:val_classes] if val_classes else seen[:0]   # validation classes
    seen = seen[~torch.isin(seen, held)]
    pools = []                                        # pools[k][digit]: indices of that digit in pool k
    for digit in range(10):
        idx = torch.nonzero(y == digit).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        pools.append((idx[: len(idx) // 2], idx[len(idx) // 2:]))                # training (and validation), test
    val_x = val_y = None
    if val_classes:
        # draw the plain benchmark's training images first (and drop them): the test set is then its test set
        _two_digit_images(x, torch.cat([seen, held]).sort().values, [p[0] for p in pools], per_class, g)
    else:
        train_x, train_y = _two_digit_images(x, seen, [p[0] for p in pools], per_class, g)
    test_x, test_y = _two_digit_images(x, unseen, [p[1] for p in pools], test_per_class, g)
    if val_classes:                  # the validation pool: a share val_classes / train_classes of each training pool
        cut = [round(len(p[0]) * val_classes / train_classes) for p in pools]
        train_x, train_y = _two_digit_images(x, seen, [p[0][c:] for p, c in zip(pools, cut)], per_class, g)
        val_x, val_y = _two_digit_images(x, held, [p[0][:c] for p, c in zip(pools, cut)], per_class, g)
    if verbose:
        val = f", {len(held)} validation classes x {per_class} images" if val_classes else ""
        print(f"two-digit MNIST: {len(seen)} training classes x {per_class} images{val}, "
              f"{len(unseen)} unseen classes x {test_per_class} images")
    return TwoDigitMNIST(train_x, train_y, test_x, test_y, tuple(seen.tolist()), tuple(unseen.tolist()),
                         val_x, val_y, tuple(held.tolist()))


def _two_digit_images(x: Tensor, classes: Tensor, pool: list[Tensor], n: int, g: torch.Generator
                      ) -> tuple[Tensor, Tensor]:
    """n images of each class in ``classes``: tens digit on the left, units on the right. -> (C*n, 1, 28, 56)"""
    labels = classes.repeat_interleave(n)                                     # (C*n,)
    sides = []
    for digit_of in (labels // 10, labels % 10):                              # left, right
        pick = torch.empty_like(labels)
        for digit in range(10):
            where = torch.nonzero(digit_of == digit).flatten()
            choices = pool[digit]
            pick[where] = choices[torch.randint(len(choices), (len(where),), generator=g)]
        sides.append(x[pick])
    order = torch.randperm(len(labels), generator=g)                          # mixed, as MNIST is
    return torch.cat(sides, dim=-1)[order], labels[order]
