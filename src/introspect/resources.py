"""What a plan costs: per-run GPU seconds, the SLURM time limit of each job, and the plan's summary
(runs per kind, table and sweep; epochs; GPU-hours), all from config ``cluster``."""
from __future__ import annotations

import math
from typing import Any

from .plan import Plan
from .runs import RUN_KINDS, RunRecord


def run_epochs(run: RunRecord) -> int:
    """Epochs a run trains itself (a Stage-2 run starts after its warm-up's epochs)."""
    end = run.stop_epoch or run.spec["budget"]["epochs"]
    start = run.method.get("warmup_epochs", 0) if run.init_from else 0
    return end - start


def run_seconds(plan: Plan, run_id: str) -> float:
    """Estimated GPU seconds of a run: per-model epoch cost times the method's and explainer's factors."""
    cluster = plan.config.cluster
    run = plan.runs[run_id]
    per_epoch = cluster.epoch_seconds.get(run.model, cluster.epoch_seconds.get("default", 30))
    factor = cluster.explainer_cost.get(run.method.get("explainer"), 1.0)
    factor *= cluster.method_cost.get(run.method["name"], 1.0)
    return run_epochs(run) * per_epoch * factor


def runtime_minutes(plan: Plan, run_id: str) -> int:
    """The SLURM time limit to request: the estimate times a safety margin, never below a floor."""
    cluster = plan.config.cluster
    minutes = run_seconds(plan, run_id) * cluster.runtime_margin / 60
    return max(cluster.min_runtime_minutes, int(math.ceil(minutes)))


def summary(plan: Plan) -> dict[str, Any]:
    per_table = {name: len(t.run_ids()) for name, t in plan.tables.items()}
    per_table.update({name: len(f.run_ids()) for name, f in plan.figures.items()})
    per_table.update({name: len(a.run_ids()) for name, a in plan.analyses.items()})
    kinds = {kind: len(plan.ids(kind)) for kind in RUN_KINDS}
    sweep_runs = {r for sel in plan.selections.values() for r in sel.run_ids()}
    return {"runs": len(plan.runs), "by_kind": kinds, "runs_per_table": per_table,
            "epochs": sum(run_epochs(run) for run in plan.runs.values()),
            "sweep_runs": len(sweep_runs), "selections": len(plan.selections),
            "gpu_hours": sum(run_seconds(plan, r) for r in plan.runs) / 3600}
