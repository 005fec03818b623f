"""Spec and record files: each job's spec (or run record) as JSON under ``results_dir``, written by the
workflow's one ``job_files`` step only when its content changes (:func:`job_files`, :func:`write_job_files`;
never while planning), and read back by the job's command (``--spec FILE``, ``--record FILE``).

A file, not the command line: a config's claims spec grows with its claims, and Linux caps one
argument at 128 KiB. The rule names the file as an input (``ancient``: its time stamp is no trigger)
and keeps :func:`digest` of its content as a param, so Snakemake reruns exactly the jobs whose
definition changed. Reading checks every key, type and id that becomes a path: a spec file is data,
possibly tampered with, and every problem is one :class:`~introspect.errors.InputError` naming the file.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import InputError
from ..io import FileMissing, FileRefused, atomic_write_text, read_json
from ..io import write_if_changed as write_file_if_changed
from ..runs.paths import check_id
from ..runs.record import DEFAULT_CONFIG_NAME, ResultsLayout, RunRecord
from ..runs.typed import decode, encode
from .views import AnalysisSpec, ClaimsSpec, FigureSpec, Spec, TableSpec


def spec_text(spec: Any) -> str:
    """A spec or run record as the canonical JSON text of its file."""
    data = spec.to_dict() if isinstance(spec, RunRecord) else encode(spec)
    return json.dumps(data, sort_keys=True, indent=1, allow_nan=False) + "\n"


def digest(data: Any) -> str:
    """A short digest of JSON-able data (a spec file's text, a record's identity): the params trigger."""
    text = data if isinstance(data, str) else json.dumps(data, sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` atomically unless it already holds exactly that (no time stamp moves);
    True if it wrote."""
    return write_file_if_changed(path, text, "spec")


def from_data(cls: type[Spec], data: Any) -> Spec:
    """A spec from JSON data, its keys, types and path ids checked (an :class:`InputError` otherwise): every
    id lexically, and every file the command writes or run directory it reads on its resolved path."""
    spec = decode(cls, data, "")
    layout = ResultsLayout(spec.results_dir, getattr(spec, "config_name", DEFAULT_CONFIG_NAME))  # the root's check
    for at, value in spec.paths():
        check_id(at, value)
    for path in _written_files(spec, layout):
        layout.inside(path, "output")
    for run_id in spec.run_ids():
        layout.inside(layout.run(run_id).directory, "run")
    if problems := bound_problems(spec):
        raise InputError("not a spec a config could plan: " + "; ".join(problems[:3]))
    return spec


def bound_problems(spec: Any) -> list[str]:
    """A spec's numbers within the config's bounds (the schema's own sections), as a record's are: a figure of
    10^6 images, a claims spec at level 0 or planning 10^9 seeds per cell is a tampered file."""
    import jsonschema

    from ..config.registry_facts import registry_catalog
    from ..config.validate import load_schema, strict_integers

    props = load_schema(registry_catalog())["properties"]
    checks: list[tuple[str, dict[str, Any], Any]] = []
    if isinstance(spec, FigureSpec):
        checks.append(("images", props["figures"]["additionalProperties"]["properties"]["images"], spec.images))
    elif isinstance(spec, AnalysisSpec):
        checks.append(("images", props["analyses"]["additionalProperties"]["properties"]["images"], spec.images))
    elif isinstance(spec, ClaimsSpec):
        settings = {k: v for k, v in encode(spec.settings).items() if k != "seeds"}
        section = {**props["claim_settings"], "required": [], "additionalProperties": True}
        checks.append(("settings", section, settings))
        checks.append(("settings.seeds", props["seeds"] | {"minItems": 0}, list(spec.settings.seeds)))
    problems = []
    for at, schema, value in checks:
        validator = strict_integers(jsonschema.validators.validator_for(schema))(schema)
        for error in validator.iter_errors(value):
            where = ".".join([at, *map(str, error.absolute_path)])
            problems.append(f"{where}: {' '.join(error.message.split())[:120]}")
    return problems


def _written_files(spec: Any, layout: ResultsLayout) -> list[Path]:
    if isinstance(spec, TableSpec):
        return layout.table_files(spec.name)
    if isinstance(spec, FigureSpec):
        return layout.figure_files(spec.name)
    if isinstance(spec, AnalysisSpec):
        return layout.analysis_files(spec.name)
    if isinstance(spec, ClaimsSpec):
        return layout.claims_files()
    return [layout.selection(spec.selection_id)]


def read_spec(cls: type[Spec], path: str | Path) -> Spec:
    """A spec file handed to a command."""
    return _prefixed(path, lambda: from_data(cls, _read_json(path, "spec")))


def read_record(path: str | Path) -> RunRecord:
    """A run record file handed to ``introspect train --record``, its ids checked on the resolved paths."""
    def load() -> RunRecord:
        data = _read_json(path, "run record")
        record = RunRecord.from_dict(data)
        record.check_paths()
        reject_run_problems(data["spec"], data["method"], data["model"], data["seed"])
        return record

    return _prefixed(path, load)


def reject_run_problems(spec: Any, method: Any, model: Any, seed: Any) -> None:
    """A record's or run spec's settings within the config's bounds (:mod:`introspect.config.record_checks`),
    or one InputError naming the first problems."""
    from ..config.record_checks import run_problems

    if problems := run_problems(spec, method, model, seed):
        raise InputError("not a run a config could plan: " + "; ".join(problems[:3]))


def read_json_file(path: str | Path, what: str) -> Any:
    """JSON data from a file handed to a command (one-line InputError naming it)."""
    return _prefixed(path, lambda: _read_json(path, what))


def _read_json(path: str | Path, what: str) -> Any:
    try:
        return read_json(path, "record" if what == "run record" else "spec")
    except FileMissing:
        raise FileMissing(f"{path}: no such {what} file (the workflow's job_files step writes it "
                          "before the job: run the snakemake command again)") from None


def _prefixed(path: str | Path, load):
    try:
        return load()
    except FileRefused as error:  # names the path already
        raise InputError(str(error)) from None
    except InputError as error:
        raise type(error)(f"{path}: {error}") from None


# ---------------------------------------------------------------- the plan's files (the workflow's inputs)

class PlannedJobs(Protocol):
    """What these functions need of an :class:`introspect.plan.build.Plan` (named here, not imported: the planner
    imports this module)."""

    config: Any  # the validated config (its ``document`` is written for ``introspect plan``)
    runs: dict[str, RunRecord]
    tables: dict[str, Any]
    figures: dict[str, Any]
    analyses: dict[str, Any]
    selections: dict[str, Any]
    claims: Any

    @property
    def layout(self) -> ResultsLayout: ...

    def spec(self, kind: str, name: str) -> Any: ...


def spec_digest(plan: PlannedJobs, kind: str, name: str) -> str:
    return digest(spec_text(plan.spec(kind, name)))


def record_digest(plan: PlannedJobs, run_id: str) -> str:
    """The digest of what the run trains (not where its data or results live): its params trigger."""
    return digest(plan.runs[run_id].identity())


def addressed(path: Path, identity: Any) -> Path:
    """``path`` with a digest in its name (``table3.json`` -> ``table3.<digest>.json``)."""
    return path.with_name(f"{path.stem}.{digest(identity)}{path.suffix}")


@dataclass(frozen=True)
class JobFiles:
    """Every file a job of the plan reads its definition from, with its text: each run's record, each
    table's, figure's, analysis's and selection's spec, the claims spec, the validated config
    (``introspect plan``) and any others named (the pre-flight's spec).

    Planning only computes them: the workflow writes them in one local step (:meth:`write`) that the jobs
    name as their inputs, so building the DAG (a dry run, ``--summary``) writes nothing. Each file's name
    holds the digest of its content: a changed definition is a new, missing file, so Snakemake sees the
    step and exactly the jobs whose definition changed as out of date, and an unchanged one is never
    rewritten. A file given with an identity of its own is named by that instead (the pre-flight's spec:
    by the step kinds it measures, so other epochs do not make it a new pre-flight)."""

    files: dict[Path, str]  # path -> text
    paths: dict[tuple[str, str], Path]  # (kind, name) -> path; kind "record" for a run (name: its id)

    def path(self, kind: str, name: str) -> Path:
        return self.paths[kind, name]

    def write(self, paths: Iterable[Path] | None = None, log: str | Path | None = None) -> list[Path]:
        """Write each file (of ``paths``, default all) whose content changed; returns those written. ``log``: a
        file that says how many were written."""
        chosen = list(self.files if paths is None else paths)
        written = [path for path in chosen if write_if_changed(path, self.files[path])]
        if log is not None:
            atomic_write_text(log, f"{len(written)} of {len(chosen)} job files written\n")
        return written


def job_files(plan: PlannedJobs, others: dict[str, tuple[str, Any]] | None = None) -> JobFiles:
    """The plan's job files (:class:`JobFiles`); ``others``: name -> (text, identity) of more spec files of
    the config, named by the identity's digest (by the text's if the identity is None)."""
    named: dict[tuple[str, str], tuple[Path, str]] = {
        ("record", run_id): (run.files.record, spec_text(run)) for run_id, run in plan.runs.items()}
    identities = {name: identity for name, (_, identity) in (others or {}).items() if identity is not None}
    views = {"table": plan.tables, "figure": plan.figures, "analysis": plan.analyses, "selection": plan.selections}
    for kind, names in views.items():
        for name in names:
            named[kind, name] = (plan.layout.spec_file(kind, name), spec_text(plan.spec(kind, name)))
    if plan.claims is not None:
        named["claims", "claims"] = (plan.layout.spec_file("claims"), spec_text(plan.claims))
    config = json.dumps(plan.config.document, sort_keys=True, indent=1, allow_nan=False) + "\n"
    for name, text in {"config": config, **{n: text for n, (text, _) in (others or {}).items()}}.items():
        named[name, name] = (plan.layout.spec_file(name), text)
    paths = {key: addressed(path, identities.get(key[1], text) if key[0] != "record" else text)
             for key, (path, text) in named.items()}
    return JobFiles({paths[key]: text for key, (_, text) in named.items()}, paths)
