"""The hyper-parameters a sweep's selection file chose for a run: read through the one door and checked
against the run's method before they complete it (a selection file is data in a shared results directory)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..io import FileMissing, FileRefused, read_json
from .metrics import RunFileError
from .spec import RunSpec


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
    points = [s.get("point") for s in record.get("scores", []) if isinstance(s, dict)]
    if chosen not in points:
        raise refuse("'chosen' is not one of the grid points it scored")
    return chosen

