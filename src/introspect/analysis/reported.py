"""The paper's reported numbers (``reported_results.csv``): read, validated row by row against
``introspect/config/schemas/reported_results.schema.yaml`` (package data), and looked up by table cell."""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..config.schemas import schema_path
from ..errors import InputError
from ..io import FileRefused, read_text

REPORTED_SCHEMA = schema_path("reported_results")
PAPER_SOURCE = "LE paper"  # rows whose source starts with this are the paper's own numbers


class ReportedResultsError(InputError):
    """reported_results.csv is unreadable or has a bad row; the message names the line and column."""


@dataclass(frozen=True)
class Reported:
    table: int
    dataset: str
    model: str
    method: str
    metric: str  # "test_acc" | "test_err"
    mean: float
    std: float  # NaN where the paper gives none
    source: str

    @property
    def is_papers_own(self) -> bool:
        return self.source.startswith(PAPER_SOURCE)


def read_reported(path: str | Path) -> list[Reported]:
    import jsonschema

    schema = yaml.safe_load(REPORTED_SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    try:
        rows = list(csv.DictReader(io.StringIO(read_text(path, "reported"), newline="")))
    except FileRefused as error:
        raise ReportedResultsError(str(error)) from None
    except csv.Error as error:
        raise ReportedResultsError(f"{path}: cannot read it ({error})") from None
    missing = set(schema["required"]) - set(rows[0]) if rows else set()
    if missing:
        raise ReportedResultsError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    out = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        record = {key: _convert(path, line, key, value, schema["properties"].get(key, {}))
                  for key, value in row.items()}
        for error in validator.iter_errors(record):
            column = error.absolute_path[0] if error.absolute_path else "(row)"
            raise ReportedResultsError(f"{path} line {line}, column {column}: {error.message}")
        out.append(Reported(**{**record, "std": math.nan if record["std"] is None else record["std"]}))
    return out


def _convert(path, line: int, column: str | None, value: str | None, schema: dict):
    if column is None or value is None:
        raise ReportedResultsError(f"{path} line {line}: wrong number of fields")
    kinds = schema.get("type", "string")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if value.strip() == "" and "null" in kinds:
        return None
    try:
        if "integer" in kinds:
            return int(value)
        if "number" in kinds:
            number = float(value)
            if not math.isfinite(number):
                raise ValueError
            return number
    except ValueError:
        raise ReportedResultsError(f"{path} line {line}, column {column}: {value!r} is not a "
                                   f"{'whole number' if 'integer' in kinds else 'number'}") from None
    return value


def paper_row(reported: list[Reported], *, metric_kind: str, model: str, method: str, dataset: str | None,
              table: int | None = None) -> Reported | None:
    """The paper's own row of one cell (in ``table``, or in any table when None), if it prints one."""
    metric = "test_err" if metric_kind == "error" else "test_acc"
    for row in reported:
        if (row.is_papers_own and row.metric == metric and (row.model, row.method, row.dataset)
                == (model, method, dataset) and (table is None or row.table == table)):
            return row
    return None


def paper_value(reported: list[Reported], table: int | None, metric_kind: str, model: str, method: str,
                dataset: str | None) -> tuple[float, float]:
    """The paper's own (mean, std) of one cell of ``table``, NaN where it reports none."""
    if table is None:
        return math.nan, math.nan
    row = paper_row(reported, metric_kind=metric_kind, model=model, method=method, dataset=dataset, table=table)
    return (row.mean, row.std) if row else (math.nan, math.nan)
