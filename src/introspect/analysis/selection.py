"""Choose a swept hyper-parameter on the validation split (never the test set).

Each grid point is scored by the mean of ``metric`` (e.g. ``val_acc_final``) over its sweep seeds;
the best point wins and ties go to the earlier grid point, so the choice is deterministic.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..io import atomic_write_json


class SelectionError(RuntimeError):
    pass


def select_hyperparameters(selection: dict[str, Any], runs_dir: Path) -> dict[str, Any]:
    """``selection`` is a :class:`introspect.plan.Selection` as a dict; returns the selection record."""
    metric = selection["metric"]
    scores = []
    for point, run_ids in zip(selection["grid"], selection["candidates"]):
        values = [_metric(runs_dir / run_id / "metrics.json", metric) for run_id in run_ids]
        scores.append({"point": point, "score": sum(values) / len(values), "values": values, "runs": run_ids})
    best = max(range(len(scores)), key=lambda i: (scores[i]["score"], -i))
    return {"label": selection["label"], "group": selection["group"], "metric": metric,
            "chosen": scores[best]["point"], "score": scores[best]["score"], "scores": scores}


def _metric(path: Path, metric: str) -> float:
    try:
        return float(json.loads(path.read_text())[metric])
    except FileNotFoundError:
        raise SelectionError(f"sweep run without metrics: {path}; train it first") from None
    except KeyError:
        raise SelectionError(f"{path} has no {metric!r}") from None


def write_selection(selection: dict[str, Any], runs_dir: Path, out: Path) -> dict[str, Any]:
    record = select_hyperparameters(selection, runs_dir)
    atomic_write_json(out, record)
    return record


def describe(record: dict[str, Any]) -> str:
    """One line for a table's notes: what was chosen, from what, on which score."""
    chosen = ", ".join(f"{k}={v}" for k, v in record["chosen"].items())
    tried = "; ".join(f"{', '.join(f'{k}={v}' for k, v in s['point'].items())}: {s['score']:.2f}"
                      for s in record["scores"])
    return f"{record['label']} ({record['group']}): {chosen} selected by {record['metric']} ({tried})."
