"""Choose a swept hyper-parameter on the validation split (never the test set).

Each grid point is scored by the mean of ``metric`` (e.g. ``val_acc_final``) over its sweep seeds;
the best point wins and ties go to the earlier grid point, so the choice is deterministic.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..io import FileMissing, FileRefused, atomic_write_json, read_json
from ..plan.views import Selection
from ..runs.loading import read_run
from ..runs.record import ResultsLayout, RunFileError


def select_hyperparameters(selection: Selection) -> dict[str, Any]:
    """Score every grid point of the sweep on its runs' ``selection.metric``; returns the selection record."""
    layout = ResultsLayout(selection.results_dir)
    scores = []
    for point, run_ids in zip(selection.grid, selection.candidates):
        failed = [f"{run_id}: {layout.run(run_id).failure()}" for run_id in run_ids if layout.run(run_id).failure()]
        if failed:  # a sweep point that failed after its retries is scored as failed, not a blocker
            scores.append({"point": point, "score": None, "values": [], "runs": run_ids, "failed": failed})
            continue
        values = [read_run(layout, run_id).value(selection.metric) for run_id in run_ids]
        scores.append({"point": point, "score": sum(values) / len(values), "values": values, "runs": run_ids})
    scored = [i for i, s in enumerate(scores) if s["score"] is not None]
    if not scored:
        raise RunFileError(f"every point of sweep {selection.selection_id} failed: "
                           + "; ".join(f for s in scores for f in s["failed"]))
    best = max(scored, key=lambda i: (scores[i]["score"], -i))
    return {"label": selection.label, "group": selection.group, "metric": selection.metric,
            "chosen": scores[best]["point"], "score": scores[best]["score"], "scores": scores}


def write_selection(selection: Selection) -> dict[str, Any]:
    record = select_hyperparameters(selection)
    atomic_write_json(selection.path, record)
    return record


def read_selection(path: str | Path) -> dict[str, Any]:
    """A selection file written by :func:`write_selection`."""
    redo = "delete it and run the same snakemake command again to redo the selection"
    try:
        record = read_json(path, "selection")
    except FileMissing:
        raise RunFileError(f"{path} does not exist: its sweep has not been selected yet") from None
    except FileRefused as error:
        raise RunFileError(f"{error}; {redo}") from None
    if problem := _selection_problem(record):
        raise RunFileError(f"{path} is corrupt ({problem}); {redo}")
    return record


def _selection_problem(record: Any) -> str | None:
    """What :func:`describe` would trip over (the run's reader checks 'chosen' against its method)."""
    if not isinstance(record, dict) or not isinstance(record.get("chosen"), dict) or not record["chosen"]:
        return "'chosen' is not a non-empty object"
    if not all(isinstance(record.get(k), str) for k in ("label", "group", "metric")):
        return "its label, group or metric is not text"
    scores = record.get("scores")
    if not isinstance(scores, list) or not all(
            isinstance(s, dict) and isinstance(s.get("point"), dict)
            and (s.get("score") is None or (isinstance(s["score"], (int, float)) and not isinstance(s["score"], bool)
                                             and math.isfinite(s["score"]))) for s in scores):
        return "'scores' is not a list of grid points with finite or failed scores"
    if record["chosen"] not in [s["point"] for s in scores]:
        return "'chosen' is not one of the grid points it scored"
    return None


def describe(record: dict[str, Any]) -> str:
    """One line for a table's notes: what was chosen, from what, on which score."""
    chosen = ", ".join(f"{k}={v}" for k, v in record["chosen"].items())
    tried = "; ".join(f"{', '.join(f'{k}={v}' for k, v in s['point'].items())}: "
                      + (f"{s['score']:.2f}" if s["score"] is not None else "failed") for s in record["scores"])
    return f"{record['label']} ({record['group']}): {chosen} selected by {record['metric']} ({tried})."
