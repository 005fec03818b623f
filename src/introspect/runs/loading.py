"""Reading a finished run (its validated ``metrics.json``) and loading saved models and checkpoints.

Every file read here may have been planted in a shared results directory: checkpoints and models are
loaded with ``torch.load(..., weights_only=True)`` and checked against the architecture their run
names, so a file never runs code and a model of another architecture is refused naming the file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..io import FileMissing, FileRefused, read_json, read_torch
from .metrics import RunFileError, RunMetrics, redo
from .record import ResultsLayout, RunFiles

if TYPE_CHECKING:  # pragma: no cover
    from ..data import Dataset
    from ..models import IntrospectModel
    from .spec import RunSpec


@dataclass
class FinishedRun:
    """A completed run as analysis sees it: its validated ``metrics.json`` and its files."""

    run_id: str
    files: RunFiles
    record: RunMetrics = field(repr=False)

    @property
    def metrics(self) -> dict[str, Any]:
        """The metrics as the JSON object on disk (validated when read)."""
        return self.record.to_dict()

    @property
    def seed(self) -> int:
        return self.record.seed

    def value(self, metric: str) -> float:
        value = getattr(self.record, metric, None) if metric in RunMetrics.__dataclass_fields__ else None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise RunFileError(f"{self.files.metrics} has no numeric {metric!r}; {redo(self.files.metrics)}")
        return float(value)

    def load_model(self, device: str = "cpu") -> IntrospectModel:
        return load_model(self.files.model, device, architecture=self.record.model)

    def load_data(self) -> Dataset:
        from .spec import RunSpec

        return load_run_dataset(RunSpec.from_dict(self.record.spec))


def read_run(layout: ResultsLayout, run_id: str) -> FinishedRun:
    """A finished run's metrics, validated (types, ranges, its seed and run id); a missing, corrupt
    or tampered ``metrics.json`` is a :class:`RunFileError` naming it and the fix."""
    files = layout.run(run_id)
    try:
        data = read_json(files.metrics, "metrics")
    except FileMissing:
        raise RunFileError(f"{files.metrics} does not exist: run {run_id} has not finished; "
                           "train it first (snakemake reruns only what is missing)") from None
    except FileRefused as error:
        reason = str(error).removeprefix(f"{files.metrics}: ")
        raise RunFileError(f"{files.metrics} is corrupt or unsafe ({reason}); {redo(files.metrics)}") from None
    return FinishedRun(run_id, files, RunMetrics.from_dict(data, files.metrics, run_id))


def load_checkpoint(path: str | Path, device: str = "cpu", max_epoch: int | None = None) -> dict[str, Any]:
    """A run's ``model.pt`` or ``checkpoint.pt`` (tensors and plain metadata, see
    :mod:`introspect.train.checkpoint`), loaded with ``weights_only=True``: a file in a results
    directory never runs code. A missing, truncated, foreign or pickled-object file is a
    :class:`RunFileError` naming it and how to redo it; so is one whose epoch exceeds ``max_epoch`` (the
    run's budget) or whose history is not that many epochs of finite values and accuracies in [0, 100]."""
    import pickle

    try:
        saved = read_torch(path, "checkpoint", device)
    except FileMissing:
        raise RunFileError(f"{path} does not exist; train that run first") from None
    except FileRefused as error:
        raise RunFileError(f"{error}; {redo(path)}") from None
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RunFileError(f"{path} holds Python objects, not only tensors and plain data (an old pickled "
                           f"file, or a tampered one: {first}); it was not loaded, as loading it could run "
                           f"code. Retrain it: {redo(path)}") from None
    except Exception as error:  # torch raises many types for a truncated or foreign file
        raise RunFileError(f"{path} is corrupt or not a run's checkpoint ({type(error).__name__}: "
                           f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}); "
                           f"{redo(path)}") from None
    if problem := _checkpoint_problem(saved) or _history_problem(saved, max_epoch):
        raise RunFileError(f"{path} is not a run's checkpoint ({problem}); {redo(path)}")
    return saved


def _checkpoint_problem(saved: Any) -> str | None:
    if not isinstance(saved, dict):
        return f"a dictionary was expected, not {type(saved).__name__}"
    missing = [k for k in ("arch", "model", "history", "epoch") if k not in saved]
    if missing:
        return f"no {', '.join(missing)}"
    arch = saved["arch"]
    if not (isinstance(arch, dict) and isinstance(arch.get("name"), str) and _is_int(arch.get("num_classes"))
            and isinstance(arch.get("input_shape"), (list, tuple)) and all(map(_is_int, arch["input_shape"]))):
        return "its 'arch' is not {name, num_classes, input_shape}"
    if not isinstance(saved["model"], dict) or not isinstance(saved["history"], list):
        return "its 'model' is not a state dict or its 'history' not a list"
    if not _is_int(saved["epoch"]) or saved["epoch"] < 0:
        return f"epoch {saved['epoch']!r} is not a non-negative integer"
    return None


def _history_problem(saved: dict[str, Any], max_epoch: int | None) -> str | None:
    """A checkpoint's epoch and history as the trainer writes them: one row per epoch, numbered from 1."""
    epoch, history = saved["epoch"], saved["history"]
    if max_epoch is not None and epoch > max_epoch:
        return f"epoch {epoch} is beyond the run's budget of {max_epoch} epochs"
    if len(history) != epoch:
        return f"its history has {len(history)} rows for {epoch} epochs"
    for number, row in enumerate(history, start=1):
        if not isinstance(row, dict) or row.get("epoch") != number:
            return f"history row {number} is not epoch {number}"
        for key, value in row.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if not math.isfinite(value) or (key.endswith("_acc") and not 0.0 <= value <= 100.0):
                return f"history row {number}: {key} {value!r} is out of range"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_model(path: str | Path, device: str = "cpu", architecture: str | None = None,
               max_epoch: int | None = None) -> IntrospectModel:
    """Rebuild a trained model (in eval mode) from a run's ``model.pt`` or checkpoint. With
    ``architecture`` (the model the run record names), a file holding another one is an error; so is
    a state dict that does not fit the architecture the file names."""
    from ..models import build_model

    saved = load_checkpoint(path, device, max_epoch)
    arch = saved["arch"]
    if architecture and arch["name"] != architecture:
        raise RunFileError(f"{path} holds a {arch['name']} model, but the run names {architecture}; "
                           f"{redo(path)}")
    try:
        model = build_model(arch["name"], arch["num_classes"], tuple(arch["input_shape"]))
        model.load_state_dict(saved["model"])
    except (KeyError, ValueError, RuntimeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RunFileError(f"{path}: its weights do not fit a {arch['name']} ({first}); {redo(path)}") from None
    return model.to(device).eval()


def load_run_dataset(spec: RunSpec) -> Dataset:
    """The dataset (with its splits) a run trained and was evaluated on."""
    from ..data import load_dataset

    d = spec.dataset
    return load_dataset(d.name, spec.data_root, val_fraction=d.val_fraction, test_fraction=d.test_fraction,
                        image_size=d.image_size, augment=d.augment, split_seed=d.split_seed,
                        test_seed=d.test_seed(spec.seed))


def warm_up_problem(saved: dict[str, Any], spec: RunSpec) -> str | None:
    """Why a warm-up checkpoint cannot start ``spec`` (None: it can): it must hold the run's architecture and
    have trained its seed, dataset and budget (LE's stage 1 is the same run up to ``stop_epoch``)."""
    if saved["arch"]["name"] != spec.model:
        return f"holds a {saved['arch']['name']} model, not this run's {spec.model}"
    identity = saved.get("identity")
    mine = spec.training_identity()
    if not isinstance(identity, dict):
        return "does not say which run it trained"
    for key in ("seed", "budget", "dataset", "model"):
        if identity.get(key) != mine.get(key):
            return f"was trained with another {key} than this run's"
    return None
