"""``cifar10``: read through torchvision's dataset class from ``data_root`` (never downloaded at
training time; ``python -m introspect download cifar10`` fetches it on a machine with internet)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..base import Dataset, DatasetSource, register_dataset
from ..splits import with_validation

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


@register_dataset
class Cifar10(DatasetSource):
    name = "cifar10"
    channels = 3
    image_size = 32
    files = tuple(f"cifar-10-batches-py/{name}" for name in
                  ("batches.meta", *(f"data_batch_{i}" for i in range(1, 6)), "test_batch"))
    obtain = ("Fetch it on a machine with internet with `python -m introspect download cifar10 --root DATA_ROOT` "
              "and copy the folder here, or point `data_root` in the config at an existing copy.")
    downloadable = True

    def load(self, root: Path, *, val_fraction: float, test_fraction: float, image_size: int | None,
             split_seed: int, test_seed: int | None) -> Dataset:
        from torchvision.datasets import CIFAR10

        try:
            train_set = CIFAR10(str(root), train=True, download=False)
            test_set = CIFAR10(str(root), train=False, download=False)
        except Exception as error:  # torchvision raises RuntimeError/OSError/UnpicklingError here
            raise self.unreadable(root, error) from error

        def to_tensor(images) -> torch.Tensor:  # uint8 NHWC -> float NCHW in [0, 1]
            return torch.tensor(np.asarray(images), dtype=torch.float32).permute(0, 3, 1, 2) / 255.0

        return with_validation(
            self.name, to_tensor(train_set.data), np.asarray(train_set.targets),
            to_tensor(test_set.data), np.asarray(test_set.targets),
            CIFAR10_MEAN, CIFAR10_STD, CIFAR10_CLASSES, "crop_flip", val_fraction, split_seed,
        )

    def download(self, root: Path) -> None:
        from torchvision.datasets import CIFAR10

        for train in (True, False):
            CIFAR10(str(root), train=train, download=True)
