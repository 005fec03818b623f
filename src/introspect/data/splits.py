"""Stratified, seeded splits and normalisation: what turns a source's images into a :class:`Dataset`.

The validation split is carved, stratified and with a fixed seed, from the training data, so every
run of every method selects on the same images, and the test set is never used to select anything.
A source without a test set of its own gets a stratified one drawn, either fixed (``split_seed``) or
per run seed (``test_seed``, the config's ``split: per_seed``), see :func:`three_way_split`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from .base import Dataset, DatasetError, Split


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held_out) with ``fraction`` of every class held out, reproducibly."""
    rng = np.random.default_rng(seed)
    held_out = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        held_out.append(members[: int(round(fraction * len(members)))])
    held = np.sort(np.concatenate(held_out))
    kept = np.setdiff1d(np.arange(len(labels)), held)
    return kept, held


def three_way_split(
    labels: np.ndarray, val_fraction: float, test_fraction: float, split_seed: int, test_seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, val, test), each stratified by class.

    ``test_seed=None``: one fixed split, test drawn first with ``split_seed``, validation from the rest.
    Otherwise the validation split is still fixed by ``split_seed`` and the test split is drawn from
    the rest with ``test_seed`` (the run's seed): each seed is tested on other images, so test-set
    noise averages out over seeds, while hyper-parameters selected on the validation split (of any
    sweep seed) were never selected on a test image of any seed.
    """
    if test_seed is None:
        rest, test = stratified_split(labels, test_fraction, split_seed)
        train_rel, val_rel = stratified_split(labels[rest], val_fraction / (1 - test_fraction), split_seed + 1)
        return rest[train_rel], rest[val_rel], test
    rest, val = stratified_split(labels, val_fraction, split_seed)
    train_rel, test_rel = stratified_split(labels[rest], test_fraction / (1 - val_fraction), test_seed)
    return rest[train_rel], val, rest[test_rel]


def normalise(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (images - mean_t) / std_t


def black_pixel(mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """The per-channel value of a black pixel after normalisation (the crop's padding)."""
    return normalise(torch.zeros(1, len(mean), 1, 1), mean, std).flatten()


def drawn_test_dataset(
    name: str, images: Tensor, labels: np.ndarray, classes: Sequence[str], *, val_fraction: float,
    test_fraction: float, split_seed: int, test_seed: int | None,
    mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
) -> Dataset:
    """A dataset from one pool of ``images`` (float, ``(n, c, h, w)`` in [0, 1]) with a drawn test split.
    Without ``mean``/``std`` the images are standardised with the training split's own mean and
    standard deviation over all pixels."""
    train_idx, val_idx, test_idx = three_way_split(labels, val_fraction, test_fraction, split_seed, test_seed)
    if mean is None or std is None:
        mean, std = (images[train_idx].mean().item(),), (images[train_idx].std().item(),)
    x, y = normalise(images, mean, std), torch.tensor(labels, dtype=torch.int64)
    return Dataset(name, *(Split(x[i], y[i]) for i in (train_idx, val_idx, test_idx)), num_classes=len(classes),
                   class_names=list(classes), augment="none", pad_fill=black_pixel(mean, std))


def with_validation(
    name: str, train_x: Tensor, train_y: np.ndarray, test_x: Tensor, test_y: np.ndarray,
    mean: Sequence[float], std: Sequence[float], classes: Sequence[str], augment: str, val_fraction: float, seed: int,
) -> Dataset:
    """A dataset with a test set of its own: validation carved, stratified, from the training images."""
    if len(train_x) == 0 or len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise DatasetError(f"{name}: images and labels disagree in number; the copy looks corrupt")
    train_idx, val_idx = stratified_split(train_y, val_fraction, seed)
    x, y = normalise(train_x, mean, std), torch.tensor(train_y, dtype=torch.int64)
    test = Split(normalise(test_x, mean, std), torch.tensor(test_y, dtype=torch.int64))
    return Dataset(name, Split(x[train_idx], y[train_idx]), Split(x[val_idx], y[val_idx]), test,
                   num_classes=len(classes), class_names=list(classes), augment=augment,
                   pad_fill=black_pixel(mean, std))
