"""``digits``: scikit-learn's bundled 1,797 8x8 handwritten digits (offline), upsampled to ``image_size``."""
from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..base import Dataset, DatasetError, DatasetSource, register_dataset
from ..splits import drawn_test_dataset


@functools.lru_cache(maxsize=1)
def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 8x8 digits (values 0..16) and labels shipped inside scikit-learn (cached: callers
    must not modify the arrays).

    Read straight from the package's data file: importing scikit-learn costs seconds per job.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(f"the digits dataset ships with scikit-learn, which is not installed: {Digits.obtain}")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    try:
        with gzip.open(path, "rt") as handle:  # np.loadtxt is several times slower on this file
            table = np.array(handle.read().replace("\n", ",").strip(",").split(","), dtype=np.float32)
        table = table.reshape(-1, 65) if table.size % 65 == 0 else table
    except (OSError, ValueError) as error:
        raise DatasetError(f"cannot read {path} ({error}); reinstall scikit-learn") from error
    if table.shape != (1797, 65):
        raise DatasetError(f"{path} has shape {table.shape}, expected (1797, 65); reinstall scikit-learn")
    return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int64)


@register_dataset
class Digits(DatasetSource):
    name = "digits"
    image_size = 16
    resizable = True
    own_test_split = False
    requires = "sklearn"
    obtain = "pip install scikit-learn"

    def preload(self) -> None:
        read_digits()  # the small embedded file: its parse is shared by every job a worker forks

    def load(self, root: Path, *, val_fraction: float, test_fraction: float, image_size: int | None,
             split_seed: int, test_seed: int | None) -> Dataset:
        pixels, labels = read_digits()
        images = torch.from_numpy(pixels)[:, None] / 16.0
        size = image_size or self.image_size
        if size != 8:
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        return drawn_test_dataset(self.name, images, labels, [str(d) for d in range(10)], val_fraction=val_fraction,
                                  test_fraction=test_fraction, split_seed=split_seed, test_seed=test_seed)
