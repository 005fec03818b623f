"""Datasets: the embedded digits split, batched augmentation, and the real torchvision loaders on
small files written in CIFAR-10's and MNIST's on-disk formats."""
import hashlib
import pickle
import struct

import numpy as np
import pytest
import torch

from introspect.data import DatasetError, augment_batch, load_dataset, stratified_split


def test_digits_split_is_stratified_disjoint_and_fixed():
    a = load_dataset("digits", val_fraction=0.15, test_fraction=0.2, image_size=16)
    b = load_dataset("digits", val_fraction=0.15, test_fraction=0.2, image_size=16)
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    assert a.input_shape == (1, 16, 16) and a.num_classes == 10
    assert abs(len(a.test) - 0.2 * 1797) < 10 and abs(len(a.val) - 0.15 * 1797) < 10
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(a, split).x, getattr(b, split).x)
        counts = torch.bincount(getattr(a, split).y, minlength=10).float()
        assert counts.min() / counts.max() > 0.9  # every class in proportion
    rows = {tuple(r.tolist()) for r in a.train.x.flatten(1)[:, ::7]}
    assert not any(tuple(r.tolist()) in rows for r in a.test.x.flatten(1)[:, ::7])
    assert abs(a.train.x.mean().item()) < 1e-4 and abs(a.train.x.std().item() - 1) < 1e-3


def test_stratified_split_holds_out_the_fraction_of_every_class():
    labels = np.repeat(np.arange(4), 50)
    kept, held = stratified_split(labels, 0.2, seed=3)
    assert len(held) == 40 and set(np.bincount(labels[held])) == {10}
    assert not set(kept) & set(held)


def test_crop_flip_augmentation_statistics(seeded):
    # a one-hot image tells where each crop came from
    n, size, pad = 4000, 8, 4
    x = torch.zeros(n, 1, size, size)
    x[:, 0, 0, 0] = 1.0
    out = augment_batch(x, "crop_flip", seeded, padding=pad, fill=torch.tensor([-5.0]))
    assert out.shape == x.shape
    assert set(out.unique().tolist()) <= {-5.0, 0.0, 1.0}  # border takes the fill value
    hot = (out == 1).flatten(1)
    present = hot.any(1)
    pos = hot.float().argmax(1)
    rows, cols = pos // size, pos % size
    # the pixel is visible iff the crop offset keeps it in view: row offset <= pad, P = 5/9
    assert abs(present.float().mean().item() - (5 / 9) ** 2) < 0.03
    # flips put the pixel in the right half as often as not (given that it is visible)
    visible_cols = cols[present]
    assert abs((visible_cols >= size // 2).float().mean().item() - 0.5) < 0.05
    assert rows[present].max() <= pad
    assert torch.equal(augment_batch(x, "none"), x)


def write_cifar10(root, n_train=20, n_test=10):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    files = {}

    def dump(name, obj):
        path = folder / name
        with open(path, "wb") as handle:
            pickle.dump(obj, handle, protocol=2)
        files[name] = hashlib.md5(path.read_bytes()).hexdigest()

    for i in range(1, 6):
        dump(f"data_batch_{i}", {"batch_label": "x", "labels": [int(v) for v in rng.integers(0, 10, n_train)],
                                  "data": rng.integers(0, 256, (n_train, 3072), dtype=np.uint8),
                                  "filenames": ["f"] * n_train})
    dump("test_batch", {"batch_label": "t", "labels": [int(v) for v in rng.integers(0, 10, n_test)],
                        "data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8), "filenames": ["f"] * n_test})
    # keys and strings as Python 2 wrote them, i.e. as torchvision's latin1 unpickling returns them
    dump("batches.meta", {"label_names": ["airplane"] + ["other"] * 9, "num_vis": 3072, "num_cases_per_batch": n_train})
    return files


@pytest.fixture
def cifar_checksums(monkeypatch):
    """torchvision verifies the real files' MD5s; point it at the generated files' sums instead."""
    from torchvision.datasets import CIFAR10

    def apply(files):
        monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{i}", files[f"data_batch_{i}"]] for i in range(1, 6)])
        monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", files["test_batch"]]])
        monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": files["batches.meta"]})

    return apply


def test_cifar10_through_torchvision_on_generated_pickle_batches(tmp_path, cifar_checksums):
    cifar_checksums(write_cifar10(tmp_path))
    data = load_dataset("cifar10", tmp_path, val_fraction=0.1)
    assert len(data.train) + len(data.val) == 100 and len(data.test) == 10
    assert data.input_shape == (3, 32, 32) and data.augment == "crop_flip"
    assert data.class_names[0] == "airplane"
    # black pixels normalise to the fill value the augmentation pads with
    assert torch.allclose(data.pad_fill, torch.tensor([-0.4914 / 0.2470, -0.4822 / 0.2435, -0.4465 / 0.2616]), atol=1e-4)


def test_corrupt_cifar10_fails_with_what_to_do(tmp_path, cifar_checksums):
    files = write_cifar10(tmp_path)
    cifar_checksums(files)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(DatasetError, match="introspect download cifar10"):
        load_dataset("cifar10", tmp_path)


def test_missing_datasets_fail_with_what_to_do(tmp_path):
    for name in ("cifar10", "mnist"):
        with pytest.raises(DatasetError, match=f"introspect download {name} --root"):
            load_dataset(name, tmp_path / "nowhere")


def write_idx(path, array, magic):
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root, n_train=50, n_test=12):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), 0x0803)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, 0x0801)
    return raw


def test_mnist_through_torchvision_on_generated_idx_files(tmp_path):
    write_mnist(tmp_path)
    data = load_dataset("mnist", tmp_path, val_fraction=0.2)
    assert len(data.train) == 40 and len(data.val) == 10 and len(data.test) == 12
    assert data.input_shape == (1, 28, 28) and data.augment == "none"
    assert torch.equal(data.test.y, torch.arange(12) % 10)


def test_corrupt_mnist_fails_with_what_to_do(tmp_path):
    raw = write_mnist(tmp_path)
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    with pytest.raises(DatasetError, match="corrupt copy must be deleted"):
        load_dataset("mnist", tmp_path)
