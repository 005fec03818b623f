"""The hyper-parameters a sweep's selection file chose for a run: read through the one door and checked
against the run's method before they complete it (a selection file is data in a shared results directory)."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..io import FileMissing, FileRefused, read_json
from .metrics import RunFileError
from .record import method_slug
from .spec import RunSpec

_DIGEST = re.compile(r"-([0-9a-f]{8})\.json$")  # plan.build: a selection id ends with its sweep's digest


def with_selected_hyperparameters(spec: RunSpec) -> RunSpec:
    """``spec`` with the values chosen by its sweep (``hyperparameters_from``) merged into ``method``. Here, not a
    method of the spec: reading them imports the methods, which import the spec's module (no cycle)."""
    if not spec.hyperparameters_from:
        return spec
    return replace(spec, method={**spec.method, **read_chosen(spec.hyperparameters_from, spec.method)})


def read_chosen(path: str | Path, method: dict[str, Any]) -> dict[str, Any]:
    """The hyper-parameters a sweep's selection file chose, as they complete ``method`` (a run's method with
    its sweep keys missing): a non-empty object of the method's own hyper-parameters that ``method`` does not
    already set (never its name), each within its declared range, and one of the grid points the file scored.
    Anything else is a :class:`RunFileError` naming the file."""
    from ..methods import method_class  # registers the methods
    from ..methods.base import hyperparameter_specs
    from ..methods.hyperparameters import value_problem

    def refuse(problem: str) -> RunFileError:
        return RunFileError(f"{path}: {problem}; delete it and run the same snakemake command again to redo "
                            "the selection")

    try:
        record = read_json(path, "selection")
    except FileMissing:
        raise RunFileError(f"{path} does not exist: run its sweep and selection first") from None
    except FileRefused as error:
        raise refuse(str(error).removeprefix(f"{path}: ")) from None
    chosen = record.get("chosen") if isinstance(record, dict) else None
    if not isinstance(chosen, dict) or not chosen:
        raise refuse("'chosen' is not a non-empty object of hyper-parameters")
    if overridden := sorted(set(chosen) & {*method, "name"}):
        raise refuse(f"'chosen' sets {', '.join(map(repr, overridden))}, which the run itself fixes")
    try:
        declared = hyperparameter_specs(method_class(method["name"]))
    except KeyError:
        raise refuse(f"its run's method {method['name']!r} is not a registered method") from None
    for key, value in chosen.items():
        if key not in declared:
            raise refuse(f"'chosen' names {key!r}, not a hyper-parameter of {method['name']}")
        if problem := value_problem(value, declared[key]):
            raise refuse(f"chosen {key}: {problem}")
    scores = [s for s in record.get("scores", []) if isinstance(s, dict)]
    points = [s.get("point") for s in scores]
    if chosen not in points:
        raise refuse("'chosen' is not one of the grid points it scored")
    if problem := _grid_problem(Path(path), record.get("metric"), scores, chosen, method):
        raise refuse(problem)
    return chosen


def _grid_problem(path: Path, metric: Any, scores: list[dict[str, Any]], chosen: dict[str, Any],
                  method: dict[str, Any]) -> str | None:
    """The sweep's own grid, not the file's word for it: a planned selection id ends with a digest of its
    candidate runs and metric (``plan.build``), and each candidate's run id names the grid point it trained
    (its method slug). So the file's runs must hash to the digest its name carries, and the chosen point's runs
    must have trained the chosen values."""
    match = _DIGEST.search(path.name)
    if match is None:  # not a planned selection file (a hand-made spec): its points were checked above
        return None
    runs = [s.get("runs") for s in scores]
    if hashlib.sha1(json.dumps([runs, metric], sort_keys=True).encode()).hexdigest()[:8] != match.group(1):
        return "its runs or metric are not those of the sweep its name is the digest of"
    if "warmup_fraction" in chosen:  # the plan turns it into warmup_epochs before it names the runs
        return None
    expected = method_slug(method["name"], {**{k: v for k, v in method.items() if k != "name"}, **chosen})
    trained = [str(r).split("/")[3] for s in scores if s.get("point") == chosen for r in s.get("runs") or []
               if len(str(r).split("/")) == 5]
    if not trained or any(slug != expected and not slug.startswith(expected + "-") for slug in trained):
        return "'chosen' is not the grid point its runs trained"
    return _score_problem(path, metric, scores, chosen)


def _score_problem(path: Path, metric: Any, scores: list[dict[str, Any]], chosen: dict[str, Any]) -> str | None:
    """The scores re-derived from the runs' own metrics (read through the door and validated): each scored point's
    score is the mean of its runs' ``metric``, and ``chosen`` is the best (ties: the earlier point), as
    :func:`introspect.analysis.selection.select_hyperparameters` computes them."""
    from .loading import read_run
    from .record import ResultsLayout

    if path.parents[3].name != "selection" or not isinstance(metric, str):
        return None  # not under a results directory's selection/ (a hand-made file)
    layout = ResultsLayout(path.parents[4])
    best = None
    for index, score in enumerate(scores):
        if score.get("score") is None:  # a point that failed after its retries
            continue
        try:
            values = [read_run(layout, run_id).value(metric) for run_id in score.get("runs") or []]
        except (RunFileError, TypeError):
            return f"point {index + 1}'s runs cannot be read to check its score"
        mean = sum(values) / len(values) if values else None
        if mean is None or abs(mean - score["score"]) > 1e-9 * max(1.0, abs(mean)):
            return f"point {index + 1}'s score is not the mean {metric} of its runs"
        if best is None or mean > best[0]:
            best = (mean, score.get("point"))
    if best is None or best[1] != chosen:
        return "'chosen' is not the best-scored point of its runs"
    return None

