"""Reading a finished run (its validated ``metrics.json``) and loading saved models and checkpoints.

Every file read here may have been planted in a shared results directory: checkpoints and models are
loaded with ``torch.load(..., weights_only=True)`` and checked against the architecture their run
names, so a file never runs code and a model of another architecture is refused naming the file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
        data = json.loads(files.metrics.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFileError(f"{files.metrics} does not exist: run {run_id} has not finished; "
                           "train it first (snakemake reruns only what is missing)") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise RunFileError(f"{files.metrics} is corrupt ({error}); {redo(files.metrics)}") from None
    return FinishedRun(run_id, files, RunMetrics.from_dict(data, files.metrics, run_id))


def load_checkpoint(path: str | Path, device: str = "cpu") -> dict[str, Any]:
    """A run's ``model.pt`` or ``checkpoint.pt`` (tensors and plain metadata, see
    :mod:`introspect.train.checkpoint`), loaded with ``weights_only=True``: a file in a results
    directory never runs code. A missing, truncated, foreign or pickled-object file is a
    :class:`RunFileError` naming it and how to redo it."""
    import pickle

    import torch

    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise RunFileError(f"{path} does not exist; train that run first") from None
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RunFileError(f"{path} holds Python objects, not only tensors and plain data (an old pickled "
                           f"file, or a tampered one: {first}); it was not loaded, as loading it could run "
                           f"code. Retrain it: {redo(path)}") from None
    except Exception as error:  # torch raises many types for a truncated or foreign file
        raise RunFileError(f"{path} is corrupt or not a run's checkpoint ({type(error).__name__}: "
                           f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}); "
                           f"{redo(path)}") from None
    if problem := _checkpoint_problem(saved):
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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_model(path: str | Path, device: str = "cpu", architecture: str | None = None) -> IntrospectModel:
    """Rebuild a trained model (in eval mode) from a run's ``model.pt`` or checkpoint. With
    ``architecture`` (the model the run record names), a file holding another one is an error; so is
    a state dict that does not fit the architecture the file names."""
    from ..models import build_model

    saved = load_checkpoint(path, device)
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
