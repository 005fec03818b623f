"""What every dataset yields (:class:`Dataset` of three :class:`Split` tensors) and the registry
that finds a dataset's source by the config's ``source`` name.

A source is one module under :mod:`introspect.data.sources` with a registered subclass of
:class:`DatasetSource`; its class attributes are the facts planning needs without torch
(:class:`introspect.config.registry_facts.DatasetFacts` reads them), its :meth:`~DatasetSource.load` builds the
splits. Nothing else names a dataset.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor

from ..registry import Registry

AUGMENTATIONS = ("none", "crop", "crop_flip")


class DatasetError(RuntimeError):
    """A dataset is missing or unreadable; the message says what to do."""


@dataclass
class Split:
    x: Tensor  # float, normalised, (n, channels, height, width)
    y: Tensor  # int64 labels

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    class_names: list[str]
    augment: str = "none"
    pad_fill: Tensor | None = None  # a black pixel after normalisation, per channel

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]

    def to(self, device: torch.device | str) -> Dataset:
        for split in (self.train, self.val, self.test):
            split.x, split.y = split.x.to(device), split.y.to(device)
        if self.pad_fill is not None:  # augment_batch uses it at every step
            self.pad_fill = self.pad_fill.to(device)
        return self


class DatasetSource:
    """Base class of a registered dataset. The class attributes below are its catalog facts."""

    name: ClassVar[str] = ""
    channels: ClassVar[int] = 1
    num_classes: ClassVar[int] = 10
    image_size: ClassVar[int] = 28  # the side of its images (the default side where resizable)
    resizable: ClassVar[bool] = False  # the config's image_size applies
    # False: no test set of its own, so one is drawn (fixed, or per run seed: the config's split: per_seed)
    own_test_split: ClassVar[bool] = True
    files: ClassVar[tuple[str, ...]] = ()  # what must exist under the config's data_root
    requires: ClassVar[str | None] = None  # the Python package that carries the data, if any
    # one sentence: how to get the files or the package; DATA_ROOT stands for the config's data_root
    obtain: ClassVar[str] = ""
    downloadable: ClassVar[bool] = False  # `python -m introspect download NAME` fetches it

    def load(self, root: Path, *, val_fraction: float, test_fraction: float, image_size: int | None,
             split_seed: int, test_seed: int | None) -> Dataset:  # pragma: no cover - abstract
        """The three splits. ``test_fraction`` and ``test_seed`` apply where ``own_test_split`` is False."""
        raise NotImplementedError

    def preload(self) -> None:
        """Read what can be read once for every job (a warm worker calls it before forking): nothing by default."""

    def download(self, root: Path) -> None:
        raise DatasetError(f"{self.name} cannot be downloaded: {self.obtain}")

    def fix(self, root: Path) -> str:
        """What to do when this dataset cannot be read under ``root`` (the pre-flight's one-line fix)."""
        if self.downloadable:
            return (f"run `python -m introspect download {self.name} --root {root}` on a machine with internet and "
                    f"copy {root} here, or set data_root to an existing copy (e.g. --config data_root=/scratch/data)")
        return self.obtain.replace("DATA_ROOT", str(root))

    def unreadable(self, root: Path, error: Exception) -> DatasetError:
        """The error for files under ``root`` that could not be read."""
        obtain = self.obtain.replace("DATA_ROOT", str(root))
        return DatasetError(f"{self.name} could not be read under {root.resolve()} ({error}). {obtain} "
                            "A corrupt copy must be deleted and fetched again.")


_SOURCES: Registry[DatasetSource] = Registry("dataset")
register_dataset = _SOURCES.register


def available_datasets() -> list[str]:
    return sorted(_SOURCES.names())


def dataset_source(name: str) -> DatasetSource:
    return _SOURCES.get(name)


def load_dataset(
    name: str,
    root: str | Path = "data",
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    image_size: int | None = None,
    augment: str | None = None,
    split_seed: int = 0,
    test_seed: int | None = None,
) -> Dataset:
    """Load a registered dataset by name.

    ``test_fraction`` and ``test_seed`` apply to the datasets without a test set of their own. ``test_seed=None``
    gives the one fixed split of ``split_seed``; an integer (a run's seed) redraws the test split, see
    :func:`introspect.data.splits.three_way_split`.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    source = dataset_source(name)
    if test_seed is not None and source.own_test_split:
        drawn = [n for n in available_datasets() if not _SOURCES.get(n).own_test_split]
        raise ValueError(f"{name} ships its own test set; a per-seed split (test_seed) applies only to "
                         f"{', '.join(drawn)}")
    data = source.load(Path(root), val_fraction=val_fraction, test_fraction=test_fraction, image_size=image_size,
                       split_seed=split_seed, test_seed=test_seed)
    if augment is not None:
        if augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got {augment!r}")
        data.augment = augment
    return data
