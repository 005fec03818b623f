"""What a plan costs and what its jobs ask SLURM for: per-run GPU seconds, the time limit of each job,
the GPU request of each kind of job, and the plan's summary (runs per kind, table and sweep; epochs;
GPU-hours), all from config ``cluster`` and, once the pre-flight job has measured them, from the
measured step costs (:mod:`introspect.cluster.calibration`)."""
from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import Any

from ..config.model import Config
from ..plan.build import Plan
from ..runs.record import RUN_KINDS, RunRecord
from .calibration import Calibration, calibration_paths, merged, read_calibration, step_kind


def run_epochs(run: RunRecord) -> int:
    """Epochs a run trains itself (a Stage-2 run starts after its warm-up's epochs)."""
    end = run.stop_epoch or run.spec.budget.epochs
    start = run.method.get("warmup_epochs", 0) if run.init_from else 0
    return end - start


def hand_epoch_seconds(plan: Plan, run: RunRecord) -> float:
    """The hand constants: per-model epoch seconds times the method's and the explainer's cost factors."""
    cluster = plan.config.cluster
    per_epoch = cluster.epoch_seconds.get(run.model, cluster.epoch_seconds.get("default", 30))
    factor = cluster.explainer_cost.get(run.method.get("explainer"), 1.0)
    return per_epoch * factor * cluster.method_cost.get(run.method["name"], 1.0)


@lru_cache(maxsize=256)
def _calibration_at(path: str, mtime_ns: int) -> Calibration | None:
    return read_calibration(path)


def plan_calibration(plan: Plan) -> Calibration | None:
    """The pre-flight's measurements of this plan's step kinds on its device, or None before the first
    pre-flight."""
    found = []
    for path in calibration_paths(plan).values():
        try:
            found.append(_calibration_at(str(path), path.stat().st_mtime_ns))
        except OSError:
            continue
    return merged(found)


def run_seconds(plan: Plan, run_id: str, calibration: Calibration | None = None) -> float:
    """Estimated device seconds of a run: measured epoch seconds of its step kind when the pre-flight
    measured them, the hand constants otherwise."""
    run = plan.runs[run_id]
    measured = calibration.seconds_per_epoch(step_kind(plan, run).key) if calibration else None
    return run_epochs(run) * (measured if measured is not None else hand_epoch_seconds(plan, run))


def runtime_minutes(plan: Plan, run_id: str) -> int:
    """The SLURM time limit to request: the estimate times a safety margin, never below a floor. Runs
    packed k to a GPU share it, so each may run up to k times slower."""
    cluster = plan.config.cluster
    seconds = run_seconds(plan, run_id, plan_calibration(plan)) * cluster.runs_per_gpu
    return max(cluster.min_runtime_minutes, int(math.ceil(seconds * cluster.runtime_margin / 60)))


# A retried job asks for more: SLURM ends a job that overran its time limit (TIMEOUT) or its memory
# (OUT_OF_MEMORY), and the same request would end the same way. Attempt 1, 2, 3+ ask 1x, 1.5x, 2x.
ATTEMPT_FACTORS = (1.0, 1.5, 2.0)
MAX_RUNTIME_MINUTES = 2 * 24 * 60  # the longest time limit asked (MaxTime of many GPU partitions)


def attempt_factor(attempt: int) -> float:
    return ATTEMPT_FACTORS[min(max(attempt, 1), len(ATTEMPT_FACTORS)) - 1]


def max_runtime_minutes() -> int:
    """The cap of any job's time limit: INTROSPECT_MAX_RUNTIME_MINUTES (your partition's MaxTime) or 2 days."""
    return int(os.environ.get("INTROSPECT_MAX_RUNTIME_MINUTES") or MAX_RUNTIME_MINUTES)


def attempt_runtime(minutes: int, attempt: int) -> int:
    """The time limit of a job's ``attempt``-th try (Snakemake's ``attempt``, from 1), capped."""
    return min(max_runtime_minutes(), int(math.ceil(minutes * attempt_factor(attempt))))


def attempt_mem_mb(mem_mb: int, attempt: int) -> int:
    """The memory of a job's ``attempt``-th try."""
    return int(math.ceil(mem_mb * attempt_factor(attempt)))


def gpu_request(config: Config) -> dict[str, Any]:
    """The SLURM resources of a job that runs models: ``gpu``/``gpu_model`` (the plugin's ``--gpus``)
    or ``gres`` (``--gres=gpu[:model]:N``, or ``shard:N``). Packed runs (``runs_per_gpu`` > 1) ask
    through ``gres``: Snakemake sums a group's integer resources (k runs would ask k GPUs) but takes a
    string resource once, so k runs of one group job ask one GPU."""
    cluster = config.cluster
    gpus, model = gpus_per_run(config), cluster.gpu_model or ""
    if cluster.gpu_shards_per_run:
        return {"gpu": 0, "gpu_model": "", "gres": f"shard:{cluster.gpu_shards_per_run}"}
    if gpus == 0:
        return {"gpu": 0, "gpu_model": "", "gres": ""}
    if cluster.gpu_request == "gres" or cluster.runs_per_gpu > 1:
        return {"gpu": 0, "gpu_model": "", "gres": ":".join(filter(None, ["gpu", model, str(gpus)]))}
    return {"gpu": gpus, "gpu_model": model, "gres": ""}


def gpus_per_run(config: Config) -> int:
    """``cluster.gpus_per_run``, or by default one GPU where the config trains on CUDA (or asks for the
    fake GPUs of a test cluster) and none on the CPU."""
    cluster = config.cluster
    if cluster.gpus_per_run is not None:
        return cluster.gpus_per_run
    return int(config.device.startswith("cuda") or cluster.fake_gpus)


def partitions(config: Config) -> tuple[str, str]:
    """(partition of jobs that run models, partition of CPU-only jobs); '' leaves it to SBATCH_PARTITION."""
    cluster = config.cluster
    return cluster.gpu_partition or "", cluster.cpu_partition or ""


def summary(plan: Plan) -> dict[str, Any]:
    per_table = {name: len(t.run_ids()) for name, t in plan.tables.items()}
    per_table.update({name: len(f.run_ids()) for name, f in plan.figures.items()})
    per_table.update({name: len(a.run_ids()) for name, a in plan.analyses.items()})
    kinds = {kind: len(plan.ids(kind)) for kind in RUN_KINDS}
    sweep_runs = {r for sel in plan.selections.values() for r in sel.run_ids()}
    calibration = plan_calibration(plan)
    limits = sorted(runtime_minutes(plan, r) for r in plan.runs)
    return {"runs": len(plan.runs), "by_kind": kinds, "runs_per_table": per_table,
            "epochs": sum(run_epochs(run) for run in plan.runs.values()),
            "sweep_runs": len(sweep_runs), "selections": len(plan.selections),
            "gpu_hours": sum(run_seconds(plan, r, calibration) for r in plan.runs) / 3600,
            "calibration": str(calibration.path) if calibration else None,
            "uncalibrated_kinds": _uncalibrated(plan, calibration),
            "time_limits_minutes": {"min": limits[0], "median": limits[len(limits) // 2], "max": limits[-1]}
            if limits else {}}


def _uncalibrated(plan: Plan, calibration: Calibration | None) -> list[str]:
    if calibration is None:
        return []
    return sorted({step_kind(plan, run).key for run in plan.runs.values()} - set(calibration.epoch_seconds))


def duration(seconds: float) -> str:
    """A time span as a reader takes it in at a glance: seconds, minutes or hours."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"


def run_estimates(plan: Plan, run_ids: list[str]) -> tuple[dict[str, float], bool]:
    """Each run's estimated seconds, and whether they are this machine's measured costs (True, once the
    pre-flight measured every step kind of the plan) or the config's hand constants (False)."""
    calibration = plan_calibration(plan)
    measured = calibration is not None and not _uncalibrated(plan, calibration)
    return {r: run_seconds(plan, r, calibration if measured else None) for r in run_ids}, measured


def run_slots(plan: Plan, cores: int | None) -> int | None:
    """How many runs train at once on ``cores`` local cores; None on a cluster."""
    return None if cores is None else max(1, cores // max(1, plan.config.threads_per_run))


def outlook(plan: Plan, cores: int | None) -> str:
    """The line a run starts with: the training runs left and, once the pre-flight has measured this machine's
    step costs, about how long they take on ``cores`` cores (``None``: a cluster, where the time left is shown
    as runs finish)."""
    left = plan.unfinished_runs()
    if not left:
        return "Every training run is finished: only the tables, claims and figures are built."
    text = f"{len(left)} training runs to do ({sum(run_epochs(plan.runs[r]) for r in left)} epochs)"
    estimates, measured = run_estimates(plan, left)
    slots = run_slots(plan, cores)
    if slots is None:
        return text + "; the time left is shown as they finish."
    if not measured:
        return text + "; the time they take follows the pre-flight, which measures this machine first."
    return text + f": about {duration(sum(estimates.values()) / slots)} of training with {slots} at a time " \
        "(this machine's measured step costs; each job's start-up comes on top)."
