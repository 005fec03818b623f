"""Measured step costs: what the pre-flight job writes and what the plan's time limits read.

A *step kind* is what decides the cost of one training step: the dataset, the model, the method
with its explainer, the teacher's architecture and the batch size. The pre-flight job
(:mod:`introspect.cluster.preflight`) times one step of every kind the plan contains, and an evaluation
pass, on the campaign's device, and writes the epoch seconds per kind to the calibration file
(``results_dir/preflight/<device>/<digest of the step kind>.json``). :mod:`introspect.cluster.resources` prefers those
figures over the hand constants of config ``cluster``.

No torch here: planning reads this on every ``snakemake`` call.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ResultFileError
from ..io import FileMissing, FileRefused, read_json

if TYPE_CHECKING:  # pragma: no cover
    from ..plan.build import Plan
    from ..runs.record import RunRecord

CALIBRATION_VERSION = 1
MAX_EPOCH_SECONDS = 7 * 24 * 3600  # a measured epoch longer than a week is a tampered file, not a measurement


@dataclass(frozen=True)
class StepKind:
    """What one training step costs is decided by these (not by seeds or hyper-parameter values)."""

    dataset: str  # the config's dataset key
    model: str
    method: str
    explainer: str | None
    teacher_model: str | None
    batch_size: int

    @property
    def key(self) -> str:
        return "/".join([self.dataset, self.model, self.method, self.explainer or "-",
                         self.teacher_model or "-", f"b{self.batch_size}"])


def step_kind(plan: Plan, run: RunRecord) -> StepKind:
    teacher = plan.runs[run.teacher].model if run.teacher else None
    return StepKind(run.dataset, run.model, run.method["name"], run.method.get("explainer"), teacher,
                    run.spec.budget.batch_size)


def step_kinds(plan: Plan) -> dict[str, tuple[StepKind, RunRecord]]:
    """Every step kind of the plan with one run of that kind (the first by run id)."""
    kinds: dict[str, tuple[StepKind, RunRecord]] = {}
    for run_id in sorted(plan.runs):
        kind = step_kind(plan, plan.runs[run_id])
        kinds.setdefault(kind.key, (kind, plan.runs[run_id]))
    return kinds


def device_label(device: str) -> str:
    """A device as a file name: ``cuda:1`` -> ``cuda1``."""
    return re.sub(r"[^A-Za-z0-9]+", "", device)


def calibration_paths(plan: Plan) -> dict[str, Path]:
    """The pre-flight's output, one file per step kind of the plan on its device (its checks and the measured
    cost): ``results_dir/preflight/<device>/<digest of the kind>.json``. Keyed by what it measures, so
    another budget, seed list or config name reuses them (no pre-flight that hides the runs a change
    needs), and a step kind never probed on this device is missing, so the pre-flight runs before its jobs."""
    return {key: kind_file(plan.config.results_dir, plan.config.device, key) for key in step_kinds(plan)}


def kind_file(results_dir: str | Path, device: str, key: str) -> Path:
    """The calibration file of one step kind on one device."""
    name = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(results_dir) / "preflight" / device_label(device) / f"{name}.json"


@dataclass(frozen=True)
class Calibration:
    path: Path  # the folder of the device's calibration files
    device: dict[str, Any]
    epoch_seconds: dict[str, float]  # step kind key -> seconds of one epoch (steps + evaluation)

    def seconds_per_epoch(self, key: str) -> float | None:
        return self.epoch_seconds.get(key)


def read_calibration(path: str | Path) -> Calibration | None:
    """The calibration file, or None before any pre-flight. A corrupt one is a ResultFileError naming it."""
    path = Path(path)
    try:
        data = read_json(path, "calibration")
    except FileMissing:
        return None
    except FileRefused as error:
        raise ResultFileError(f"{error}; delete it and the pre-flight job measures again") from None
    try:
        if data["version"] != CALIBRATION_VERSION:
            raise ValueError(f"version {data['version']!r}")
        seconds = {str(k): float(v["epoch_seconds"]) for k, v in data["kinds"].items()}
        if not all(0 < s <= MAX_EPOCH_SECONDS for s in seconds.values()):  # they become SLURM time limits
            raise ValueError(f"an epoch time outside (0, {MAX_EPOCH_SECONDS}] seconds")
        return Calibration(path.parent, dict(data["device"]), seconds)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ResultFileError(f"{path} is not a calibration file of this version ({error}); delete it and the "
                              "pre-flight job measures again") from None


def merged(calibrations: list[Calibration | None]) -> Calibration | None:
    """One calibration of several kinds' files (None if there is none yet)."""
    present = [c for c in calibrations if c is not None]
    if not present:
        return None
    seconds = {k: v for c in present for k, v in c.epoch_seconds.items()}
    return Calibration(present[0].path, present[-1].device, seconds)
