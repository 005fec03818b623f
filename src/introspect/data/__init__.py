"""Datasets held as whole tensors, split into train / validation / test, with batched augmentation.

Every dataset is a registered source, one module under :mod:`introspect.data.sources` (all imported
here, so a new dataset is one new module there): some ship inside Python packages (offline) and have
no test set of their own, others are read from the config's ``data_root``. ``load_dataset(name, root,
...)`` builds one; :mod:`introspect.config.registry_facts` carries the sources' facts (channels, classes, files
under data_root, how to obtain them) to planning without torch.
"""
from __future__ import annotations

import importlib
import pkgutil

from . import sources
from .augment import PerSampleAugmented, augment_batch
from .base import (
    AUGMENTATIONS,
    Dataset,
    DatasetError,
    DatasetSource,
    Split,
    available_datasets,
    dataset_source,
    load_dataset,
    register_dataset,
)
from .splits import stratified_split, three_way_split

for _module in sorted(info.name for info in pkgutil.iter_modules(sources.__path__)):
    importlib.import_module(f"{sources.__name__}.{_module}")


def preload_datasets() -> None:
    """Every source's :meth:`~DatasetSource.preload` (a warm worker's, before it forks jobs); a
    source that cannot be read now is left to fail, with its message, in the job that needs it."""
    for name in available_datasets():
        try:
            dataset_source(name).preload()
        except DatasetError:
            pass


__all__ = [
    "AUGMENTATIONS", "Dataset", "DatasetError", "DatasetSource", "PerSampleAugmented", "Split", "augment_batch",
    "available_datasets", "dataset_source", "load_dataset", "preload_datasets", "register_dataset",
    "stratified_split", "three_way_split",
]
