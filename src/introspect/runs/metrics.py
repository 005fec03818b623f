"""``metrics.json``, the record a finished run leaves: one dataclass that the training loop writes and
the analysis reads, validated when read.

A results directory is data handed to us (it may be shared, copied or tampered with), so a value of
the wrong type, out of range or not finite, or a seed or run id that is not the run's own, is a
:class:`~introspect.errors.ResultFileError` naming the file and the fix, never a silently used number.

Only ``seed`` and ``spec`` are required when reading (with the run id they identify the run); the
trainer writes every field, and every field present is checked.

Importing this module costs no torch (planning reads runs on every ``snakemake`` call).
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ResultFileError

ACCURACY_FIELDS = ("test_acc_final", "val_acc_final", "test_acc_best_val", "val_acc_best", "test_acc_max",
                   "train_acc_final")
COUNT_FIELDS = ("epochs", "best_val_epoch", "n_train", "n_val", "n_test", "n_classes")
TEXT_FIELDS = ("run_id", "dataset", "model", "method", "git_commit", "host", "platform", "command")
DICT_FIELDS = ("hyperparameters", "budget", "versions", "device")
MAX_COUNT = 2**32 - 1  # seeds, epochs and sample counts: beyond it a value is tampered, not measured
_SEED_IN_RUN_ID = re.compile(r"(?:^|/)seed(\d+)$")  # the last component of runs.make_run_id


class RunFileError(ResultFileError):
    """A run's file is missing, unreadable or invalid; the message names the file and how to redo it."""


@dataclass(frozen=True)
class RunMetrics:
    """What a finished run reports. Accuracies are in percent; ``spec`` is the RunSpec it trained."""

    seed: int
    spec: dict[str, Any]
    run_id: str | None = None
    dataset: str | None = None
    model: str | None = None
    method: str | None = None
    hyperparameters: dict[str, Any] | None = None
    budget: dict[str, Any] | None = None
    epochs: int | None = None
    test_acc_final: float | None = None
    val_acc_final: float | None = None
    test_acc_best_val: float | None = None
    val_acc_best: float | None = None
    best_val_epoch: int | None = None
    test_acc_max: float | None = None  # optimistic: selected on test data
    train_acc_final: float | None = None
    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    n_classes: int | None = None  # chance is 100 / n_classes (the near-chance flag)
    wall_time_seconds: float | None = None
    # provenance: what produced the numbers (never part of a run's identity)
    versions: dict[str, Any] | None = None
    git_commit: str | None = None
    host: str | None = None
    platform: str | None = None
    command: str | None = None
    device: dict[str, Any] | None = None  # name, capability, driver, CUDA and cuDNN versions

    def to_dict(self) -> dict[str, Any]:
        """The JSON object on disk (fields never set are left out, as older files lack them)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Any, path: str | Path, run_id: str | None = None) -> RunMetrics:
        """Validate ``data`` read from ``path``: types, ranges, and (with ``run_id``) that it is that run's."""
        problems = metrics_problems(data, run_id)
        if problems:
            raise RunFileError(f"{path} is not a valid run's metrics ({'; '.join(problems[:3])}); {redo(path)}")
        return cls(**data)


def metrics_problems(data: Any, run_id: str | None = None) -> list[str]:
    """Every problem of a metrics object, each naming its key (empty: valid)."""
    if not isinstance(data, dict):
        return [f"a JSON object was expected, not {type(data).__name__}"]
    known = {f.name for f in dataclasses.fields(RunMetrics)}
    problems = [f"unknown key {key!r}" for key in sorted(set(data) - known)]
    problems += [f"no {key!r}" for key in ("seed", "spec") if key not in data]
    for key, value in data.items():
        if key in known and (problem := _value_problem(key, value)):
            problems.append(f"{key} {problem}")
    return problems or _identity_problems(data, run_id)


def _value_problem(key: str, value: Any) -> str | None:
    if value is None and key != "spec":
        return None
    if key == "seed" or key in COUNT_FIELDS:
        if not _is_int(value) or not 0 <= value <= MAX_COUNT:
            return f"must be a non-negative integer (at most {MAX_COUNT:,}), not {value!r}"
    elif key in ACCURACY_FIELDS:
        if not _is_number(value) or not 0.0 <= value <= 100.0:
            return f"must be a finite accuracy in [0, 100], not {value!r}"
    elif key == "wall_time_seconds":
        if not _is_number(value) or value < 0:
            return f"must be a finite non-negative number, not {value!r}"
    elif key in TEXT_FIELDS:
        if not isinstance(value, str):
            return f"must be text, not {value!r}"
    elif key in DICT_FIELDS or key == "spec":
        if not isinstance(value, dict):
            return f"must be an object, not {value!r}"
    return None


def _identity_problems(data: dict[str, Any], run_id: str | None) -> list[str]:
    """The seed and run id it names must be the run's own (a copied file must not be re-keyed)."""
    problems = []
    spec = data["spec"]
    if "seed" in spec and spec["seed"] != data["seed"]:
        problems.append(f"seed {data['seed']} differs from its spec's seed {spec['seed']!r}")
    if run_id is not None:  # both ids are required: a copied file with its ids removed is not this run's
        for where, named in (("run_id", data.get("run_id")), ("spec.run_id", spec.get("run_id"))):
            if named != run_id:
                problems.append(f"{where} {named!r} is not this run's id {run_id!r}")
        parts = run_id.split("/")
        if len(parts) == 5 and data.get("model", parts[1]) != parts[1]:  # make_run_id: dataset/model/budget/method
            problems.append(f"model {data['model']!r} is not the model of run {run_id!r}")
        name = (spec.get("method") or {}).get("name") if isinstance(spec.get("method"), dict) else None
        warmup = name == "ce" and len(parts) == 5 and parts[3].startswith("warmup-")  # an LE warm-up's CE epochs
        if len(parts) == 5 and name is not None and not parts[3].startswith(str(name)) and not warmup:
            problems.append(f"spec.method {name!r} is not the method of run {run_id!r}")
    for key in ("model", "method", "dataset"):  # the top-level copies of the spec's own
        own = spec.get(key)
        own = own.get("name") if isinstance(own, dict) else own
        if key in data and own is not None and data[key] != own:
            problems.append(f"{key} {data[key]!r} differs from its spec's {own!r}")
        if run_id is not None and (match := _SEED_IN_RUN_ID.search(run_id)) and int(match.group(1)) != data["seed"]:
            problems.append(f"seed {data['seed']} is not the seed of run {run_id!r}")
    return problems


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def redo(path: str | Path) -> str:
    """How to redo a run whose file at ``path`` is bad."""
    return (f"delete {Path(path).parent} and run the same snakemake command again to retrain it "
            f"(or: snakemake --forcerun {path})")
