"""The step loop never waits for the device: every way a tensor's value reaches Python (``.item()``,
``float()``, ``int()``, ``bool()``, ``.tolist()``, ``.cpu()``, ``.numpy()``, use as an index), and
every blocking ``.to(device)`` (a host-to-device copy without ``non_blocking`` waits for the queued
GPU work), is counted during a training epoch, and the count must not grow with the number of steps.
On a GPU each of those is a host-device synchronisation; on the CPU they are counted all the same."""
from collections import Counter
from pathlib import Path

import pytest
import torch

from introspect.train import RunSpec, loop, train

VALUE_READS = ("item", "__float__", "__int__", "__index__", "__bool__", "tolist", "cpu", "numpy")


def _spec(run_id: str, batch_size: int, model: str = "mlp1024", method=None, **extra) -> RunSpec:
    return RunSpec.from_dict({
        "run_id": run_id,
        "dataset": {"name": "digits", "image_size": 8, "val_fraction": 0.15, "test_fraction": 0.2,
                    "augment": "crop_flip"},
        "model": model,
        "method": method or {"name": "ce"},
        "budget": {"epochs": 1, "batch_size": batch_size, "lr": 0.05},
        "seed": 3,
        **extra,
    })


def _reads_per_epoch(monkeypatch, spec: RunSpec, out: Path) -> Counter:
    """Train one epoch; count the value reads made inside the epoch (not in setup or checkpointing)."""
    counts: Counter = Counter()
    counting = [False]
    for name in VALUE_READS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            if counting[0]:
                counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    move = torch.Tensor.to

    def counted_move(self, *args, **kwargs):
        names_a_device = "device" in kwargs or any(isinstance(a, (str, torch.device)) for a in args)
        if counting[0] and names_a_device and not kwargs.get("non_blocking", False):
            counts["blocking to(device)"] += 1
        return move(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", counted_move)
    train_epoch = loop._train_epoch

    def epoch_with_counting(*args, **kwargs):
        counting[0] = True
        try:
            return train_epoch(*args, **kwargs)
        finally:
            counting[0] = False

    monkeypatch.setattr(loop, "_train_epoch", epoch_with_counting)
    train(spec, out)
    monkeypatch.undo()
    return counts


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("teacher")
    train(_spec("teacher", 64, model="resnet8"), out)
    return str(out / "model.pt")


METHODS = [
    ("mlp1024", {"name": "ce"}, False),
    ("mlp1024", {"name": "cp"}, False),
    ("resnet8", {"name": "le", "explainer": "grad_cam"}, False),
    ("resnet8", {"name": "le_permut", "explainer": "grad"}, False),
    ("resnet8", {"name": "cwtm_random"}, False),
    ("resnet8", {"name": "dkpp"}, True),
    ("resnet8", {"name": "e2kd", "every": 2}, True),  # an extra loss term on every other batch
]


@pytest.mark.parametrize("model,method,needs_teacher", METHODS, ids=[m[1]["name"] for m in METHODS])
def test_value_reads_per_epoch_do_not_grow_with_the_number_of_steps(monkeypatch, tmp_path, request, model,
                                                                   method, needs_teacher):
    extra = {"teacher": request.getfixturevalue("teacher")} if needs_teacher else {}
    few = _reads_per_epoch(monkeypatch, _spec("few", 128, model, method, **extra), tmp_path / "few")
    many = _reads_per_epoch(monkeypatch, _spec("many", 64, model, method, **extra), tmp_path / "many")
    assert sum(few.values()) >= 1  # the counting is live: an epoch reads its numbers at least once
    assert many == few, f"batches of 128: {dict(few)}; of 64 (twice the steps): {dict(many)}"
