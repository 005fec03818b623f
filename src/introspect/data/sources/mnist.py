"""``mnist``: the full MNIST, read through torchvision's dataset class from ``data_root`` (never
downloaded at training time; ``python -m introspect download mnist`` fetches it)."""
from __future__ import annotations

from pathlib import Path

import torch

from ..base import Dataset, DatasetSource, register_dataset
from ..splits import with_validation
from .mnist5k import MNIST_MEAN, MNIST_STD


@register_dataset
class Mnist(DatasetSource):
    name = "mnist"
    files = tuple(f"MNIST/raw/{prefix}-{kind}" for prefix in ("train", "t10k")
                  for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"))
    obtain = ("Fetch it on a machine with internet with `python -m introspect download mnist --root DATA_ROOT` "
              "and copy the folder here, or point `data_root` in the config at an existing copy.")
    downloadable = True

    def fix(self, root: Path) -> str:
        if sorted((root / "MNIST" / "raw").glob("*.gz")):  # as torchvision's mirrors serve them
            return f"the MNIST files are still compressed: run `gunzip -k {root}/MNIST/raw/*.gz`"
        return super().fix(root)

    def load(self, root: Path, *, val_fraction: float, test_fraction: float, image_size: int | None,
             split_seed: int, test_seed: int | None) -> Dataset:
        from torchvision.datasets import MNIST

        try:
            train_set = MNIST(str(root), train=True, download=False)
            test_set = MNIST(str(root), train=False, download=False)
        except Exception as error:
            raise self.unreadable(root, error) from error

        def to_tensor(images: torch.Tensor) -> torch.Tensor:  # uint8 NHW -> float N1HW in [0, 1]
            return images.to(torch.float32)[:, None] / 255.0

        return with_validation(
            self.name, to_tensor(train_set.data), train_set.targets.numpy(),
            to_tensor(test_set.data), test_set.targets.numpy(),
            MNIST_MEAN, MNIST_STD, [str(d) for d in range(10)], "none", val_fraction, split_seed,
        )

    def download(self, root: Path) -> None:
        from torchvision.datasets import MNIST

        for train in (True, False):
            MNIST(str(root), train=train, download=True)
