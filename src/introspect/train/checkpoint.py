"""The checkpoint format: what ``checkpoint.pt`` (after each epoch) and ``model.pt`` (at the end) hold.

Tensors and plain data only (dicts, lists, strings, numbers), so every reader loads them with
``torch.load(..., weights_only=True)`` (:func:`introspect.runs.loading.load_checkpoint`) and a file in a
results directory never runs code. A checkpoint resumes a run only if its identity (the settings that
determine the numbers) is the run's.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ..io import atomic_torch_save, is_file, rename_in_directory
from ..models import IntrospectModel
from ..runs.loading import load_checkpoint
from ..runs.record import RunFileError, RunFiles
from ..runs.spec import RunSpec
from .errors import TrainingError
from .sgd import SGD

log = logging.getLogger("introspect.train")

FORMAT = "introspect-run-state/1"  # plain tensors and data; readers check nothing else is in it
@dataclass
class TrainState:
    model: IntrospectModel
    aux: nn.Module | None  # the method's own trainable modules (e.g. a FitNets regressor)
    optimizer: SGD
    next_epoch: int
    history: list[dict[str, Any]]
    seconds: float  # training wall time accumulated before this process


def snapshot(spec: RunSpec, state: TrainState) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "model": state.model.state_dict(),
        "method_modules": state.aux.state_dict() if state.aux is not None else None,
        "optimizer": state.optimizer.state_dict(),
        "epoch": state.next_epoch,
        "history": state.history,
        "seconds": state.seconds,
        "identity": spec.training_identity(),
        "arch": {"name": spec.model, "num_classes": state.model.num_classes,
                 "input_shape": list(state.model.input_shape)},
    }


def save(path: Path, spec: RunSpec, state: TrainState) -> None:
    atomic_torch_save(path, snapshot(spec, state))


def restore(state: TrainState, saved: dict[str, Any], path: str | Path) -> None:
    """Load a saved state into ``state``; weights that do not fit the run's model name the file."""
    try:
        state.model.load_state_dict(saved["model"])
        if state.aux is not None and saved.get("method_modules") is not None:
            state.aux.load_state_dict(saved["method_modules"])
        state.optimizer.load_state_dict(saved["optimizer"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise RunFileError(f"{path}: its weights do not fit this run's {saved['arch']['name']} ({first}); "
                           f"delete {Path(path).parent} and run the same snakemake command again") from None
    state.next_epoch = saved["epoch"]
    state.history = list(saved["history"])
    state.seconds = float(saved.get("seconds", 0.0))


def resumable(spec: RunSpec, files: RunFiles, device: str) -> dict[str, Any] | None:
    """The run's own checkpoint, if it has a readable one. A corrupt, truncated or unsafe checkpoint
    (a disk filled up, a copy cut short, a planted pickle) is moved aside with a warning and the run
    starts from scratch, rather than failing forever; same seed, same numbers."""
    if not is_file(files.checkpoint):  # a link or a FIFO is not resumed from (load_checkpoint names it)
        if not os.path.lexists(files.checkpoint):
            return None
    try:
        saved = load_checkpoint(files.checkpoint, device, max_epoch=spec.budget.epochs)
    except RunFileError as error:
        aside = files.checkpoint.with_name(f"{files.checkpoint.name}.corrupt")
        rename_in_directory(files.checkpoint, aside.name)
        log.warning("%s: %s. Moved it to %s; training from scratch.", spec.run_id,
                    str(error).split("; delete")[0], aside)
        return None
    if saved.get("identity") != spec.training_identity() or saved["arch"]["name"] != spec.model:
        raise TrainingError(f"{files.checkpoint} belongs to a different run configuration; delete it (or the "
                            f"run directory) to start {spec.run_id} afresh")
    return saved
