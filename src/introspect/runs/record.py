"""The run record: what a run is and where its files are. The one module that knows the layout of a
results folder.

The plan produces :class:`RunRecord` objects; the workflow rules, the training command, tables,
selection, figures and the student analysis consume them (by run id) and never build a path or parse
an id themselves. Reading a finished run's metrics and loading its model live beside it
(:mod:`introspect.runs.loading`), so analysis code does not depend on the trainer.

Importing this module costs no torch: planning uses it on every ``snakemake`` call.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, get_args

from ..errors import InputError, UnsafePathError
from .metrics import RunFileError, RunMetrics, redo  # noqa: F401 - RunFileError: readers import it here
from .paths import check_id, check_results_dir, inside
from .spec import RunOptions, RunSettings, RunSpec

RunKind = Literal["train", "teacher", "student", "warmup", "stage2"]  # which rule trains a run
RUN_KINDS: tuple[str, ...] = get_args(RunKind)

# A run directory's files. Nothing else in the package or the workflow spells these names.
CHECKPOINT, MODEL, METRICS, EPOCHS, LOG = "checkpoint.pt", "model.pt", "metrics.json", "epochs.csv", "train.log"
# A finished run's outputs are also kept (hard links) in this folder of its directory, so a fault that makes
# Snakemake delete them does not cost a retraining (introspect.train.finished); it is not a run of its own.
FINISHED_DIR = ".finished"
RECORD = "record.json"  # the run's RunRecord, written by the plan, read by its training job
DEFAULT_CONFIG_NAME = "default"
# Folders of results_dir shared by every config; a config's name (its views' folder) may not be one.
SHARED_FOLDERS = ("runs", "selection")
OUTCOME = "outcome.json"  # a sweep point's job result: finished, or failed after its retries (never blocks a selection)
RUN_OUTPUTS = (METRICS, EPOCHS, MODEL)  # what a finished training job leaves (its rule's outputs)
WRITER_LOCK = "writer.lock"  # held by the one process training a run (introspect.train.lock)


@dataclass(frozen=True)
class RunFiles:
    """The files of one run directory."""

    directory: Path

    @property
    def checkpoint(self) -> Path:
        return self.directory / CHECKPOINT

    @property
    def model(self) -> Path:
        return self.directory / MODEL

    @property
    def metrics(self) -> Path:
        return self.directory / METRICS

    @property
    def epochs(self) -> Path:
        return self.directory / EPOCHS

    @property
    def log(self) -> Path:
        return self.directory / LOG

    @property
    def writer_lock(self) -> Path:
        return self.directory / WRITER_LOCK

    @property
    def record(self) -> Path:
        return self.directory / RECORD

    @property
    def outcome(self) -> Path:
        return self.directory / OUTCOME

    def failure(self) -> str | None:
        """Why a sweep point failed for good (its outcome file), or None."""
        from ..io import FileRefused, read_json

        try:
            failed = read_json(self.outcome, "outcome").get("failed")
        except (FileRefused, AttributeError):
            return None
        return failed if isinstance(failed, str) else None

    @property
    def outputs(self) -> list[Path]:
        return [self.directory / name for name in RUN_OUTPUTS]

    def is_finished(self) -> bool:
        """``metrics.json`` is written last, so its presence means the run completed."""
        return self.metrics.exists()

    def was_tried(self) -> bool:
        return self.log.exists()


class ResultsLayout:
    """Every path under ``results_dir``. Runs (``runs/<run id>``) and selections (``selection/<id>.json``)
    are shared by every config, under their content-addressed ids; a config's views (tables, stats,
    figures, claims, job logs and spec files) go under ``<results_dir>/<config name>/``, so two configs
    sharing a results folder never overwrite each other's tables."""

    def __init__(self, results_dir: str | Path, config_name: str = DEFAULT_CONFIG_NAME):
        check_results_dir(results_dir)
        self.root = Path(results_dir)
        self.config_name = check_config_name(config_name)

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def run(self, run_id: str) -> RunFiles:
        return RunFiles(self.runs_dir / check_id("run id", run_id))

    def finished_run_ids(self) -> list[str]:
        """The id of every run with a metrics.json under ``runs/`` (sorted; kept copies under a run's
        ``.finished/`` are not runs)."""
        found = (path.parent.relative_to(self.runs_dir) for path in self.runs_dir.glob(f"**/{METRICS}"))
        return sorted(run.as_posix() for run in found if FINISHED_DIR not in run.parts)

    def selection(self, selection_id: str) -> Path:
        return self.root / "selection" / f"{check_id('selection id', selection_id)}.json"

    def inside(self, path: Path, what: str) -> Path:
        """``path`` (under this root) after checking that, resolved, it stays inside the root."""
        return inside(self.root, Path(path).relative_to(self.root), what)

    @property
    def views_dir(self) -> Path:
        return self.root / self.config_name

    @property
    def tables_dir(self) -> Path:
        return self.views_dir / "tables"

    @property
    def figures_dir(self) -> Path:
        return self.views_dir / "figures"

    @property
    def stats_dir(self) -> Path:
        return self.views_dir / "stats"

    def spec_file(self, kind: str, name: str | None = None) -> Path:
        """The JSON file of one job's spec (``specs/<kind>/<name>.json``; ``specs/<kind>.json`` for one of a kind)."""
        base = self.views_dir / "specs"
        return base / kind / f"{check_id(f'{kind} name', name)}.json" if name else base / f"{kind}.json"

    def table(self, name: str, ext: str) -> Path:
        return self.tables_dir / f"{name}.{ext}"

    def table_tests(self, name: str) -> Path:
        return self.stats_dir / f"{name}.tests.csv"

    @property
    def tests(self) -> Path:
        return self.stats_dir / "tests.csv"

    def figure(self, name: str, ext: str) -> Path:
        return self.figures_dir / f"{name}.{ext}"

    def claims(self, ext: str) -> Path:
        return self.views_dir / f"claims.{ext}"

    @property
    def claims_next(self) -> Path:
        """The config overlay that adds seeds to the cells whose claims need them (``--configfile``)."""
        return self.views_dir / "claims_next.yaml"

    # every file a view's rule writes (the all-target and the planner's inside-results_dir check use these)
    def table_files(self, name: str) -> list[Path]:
        return [self.table(name, ext) for ext in ("md", "tex", "csv", "html")] + [self.table_tests(name)]

    def figure_files(self, name: str) -> list[Path]:
        return [self.figure(name, ext) for ext in ("png", "pdf", "csv")]

    def analysis_files(self, name: str) -> list[Path]:
        return ([self.table(name, ext) for ext in ("md", "csv", "html")] + [self.analysis_runs(name)]
                + [self.analysis_figure(name, ext) for ext in ("png", "pdf", "csv")])

    def claims_files(self) -> list[Path]:
        return [self.claims(ext) for ext in ("md", "csv", "html")] + [self.claims_next]

    def analysis_runs(self, name: str) -> Path:
        return self.tables_dir / f"{name}_runs.csv"

    def analysis_figure(self, name: str, ext: str) -> Path:
        return self.figures_dir / f"{name}_pairs.{ext}"

    @property
    def logs_dir(self) -> Path:
        return self.views_dir / "logs"

    def job_log(self, step: str, name: str | None = None) -> Path:
        """The log of one job of a step that is not a training run (a run logs into its own directory):
        ``logs/<step>/<name>.log``, or ``logs/<step>.log`` for a step with a single job."""
        return self.logs_dir / step / f"{name}.log" if name else self.logs_dir / f"{step}.log"


def check_config_name(name: object) -> str:
    """A config's ``name``: one plain path component, not a folder every config shares."""
    if not isinstance(name, str) or "/" in name or name in SHARED_FOLDERS:
        raise UnsafePathError(f"name: {name!r} must be a plain name (one folder under results_dir, not "
                              f"{' or '.join(SHARED_FOLDERS)})")
    return check_id("name", name)


def make_run_id(dataset: str, model: str, budget: str, epochs: int, method_slug: str, seed: int) -> str:
    """A run is identified by what it computes; the id is also its directory under ``runs/``."""
    return f"{dataset}/{model}/{budget}-e{epochs}/{method_slug}/seed{seed}"


# Path components stay far below the 255-byte limit of file names: the plan appends a selection and a
# teacher suffix (about 40 bytes) to a method slug, and a sweep's keys and digest to a label slug.
MAX_SLUG_BYTES = 160


def method_slug(method: str, hyperparameters: dict[str, Any]) -> str:
    """A method with its hyper-parameters as a path component; a long one is cut and ends with a digest
    of the whole (so distinct settings keep distinct ids)."""
    return _bounded("-".join([method] + [f"{k}{_format_value(v)}" for k, v in sorted(hyperparameters.items())]))


def label_slug(label: str) -> str:
    """A display label (e.g. ``LE(Grad-CAM)``) as a path component (a long one shortened with a digest)."""
    return _bounded(re.sub(r"[^A-Za-z0-9.+-]+", "_", label).strip("_"), label)


def _bounded(slug: str, identity: str | None = None) -> str:
    if len(slug.encode()) <= MAX_SLUG_BYTES:
        return slug
    digest = hashlib.sha1((identity if identity is not None else slug).encode()).hexdigest()[:12]
    return slug.encode()[:MAX_SLUG_BYTES - 13].decode(errors="ignore") + "-" + digest


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


DEFAULT_OPTIONS = RunOptions()


@dataclass(frozen=True)
class RunRecord:
    """One training run of the plan: what it computes and the runs it needs.

    ``spec`` holds the settings of :class:`introspect.runs.spec.RunSpec` that determine its numbers (dataset
    without its location, budget, performance: the config model's own objects); :meth:`run_spec` adds the
    paths, derived from the run ids ``teacher`` and ``init_from`` and the selection id, and the
    :class:`RunOptions`. The record becomes JSON only at its file (:meth:`to_dict`).
    """

    run_id: str
    kind: RunKind
    results_dir: str
    dataset: str  # the config's dataset key
    model: str
    budget: str  # the config's budget key
    method: dict[str, float | int | bool | str]  # {"name": ..., **hyper-parameters}
    seed: int
    spec: RunSettings
    teacher: str | None = None  # run id of the teacher (or BAN peer) it learns from
    init_from: str | None = None  # run id of the LE warm-up it starts from
    selection: str | None = None  # id of the sweep whose chosen hyper-parameters complete `method`
    stop_epoch: int | None = None

    @cached_property
    def layout(self) -> ResultsLayout:
        return ResultsLayout(self.results_dir)

    @property
    def files(self) -> RunFiles:
        return self.layout.run(self.run_id)

    @property
    def depends_on(self) -> list[str]:
        """Run ids whose checkpoints this run reads (warm-up first)."""
        return [r for r in (self.init_from, self.teacher) if r]

    def input_files(self) -> list[Path]:
        """The checkpoints and the selection file a job of this run needs before it starts."""
        files = [self.layout.run(r).model for r in self.depends_on]
        return files + ([self.layout.selection(self.selection)] if self.selection else [])

    def identity(self) -> dict[str, Any]:
        """What this run trains: everything of the record except where its results folder is. Its digest
        is the rule's params (the rerun trigger); :meth:`RunSpec.training_identity` is the checkpoint's."""
        data = self.to_dict()
        data.pop("results_dir")
        return data

    def check_paths(self) -> None:
        """Every id of the record as a path inside the results folder, resolved (symlinks followed)."""
        layout = self.layout
        for what, run_id in (("run_id", self.run_id), ("teacher", self.teacher), ("init_from", self.init_from)):
            if run_id is not None:
                layout.inside(layout.run(run_id).directory, what)
        if self.selection is not None:
            layout.inside(layout.selection(self.selection), "selection")

    def run_spec(self, options: RunOptions = DEFAULT_OPTIONS, fail_at_epoch: int | None = None) -> RunSpec:
        """The run spec its training job runs: the record's settings, the paths its ids name, the job options."""
        return RunSpec(
            run_id=self.run_id, dataset=self.spec.dataset, model=self.model, method=dict(self.method),
            budget=self.spec.budget, seed=self.seed, stop_epoch=self.stop_epoch,
            init_from=str(self.layout.run(self.init_from).model) if self.init_from else None,
            teacher=str(self.layout.run(self.teacher).model) if self.teacher else None,
            teacher_model=model_of_run(self.teacher) if self.teacher else None,
            hyperparameters_from=str(self.layout.selection(self.selection)) if self.selection else None,
            eval_batch_size=options.eval_batch_size, fail_at_epoch=fail_at_epoch, performance=self.spec.performance,
            data_root=options.data_root)

    def run_spec_dict(self, options: RunOptions = DEFAULT_OPTIONS) -> dict[str, Any]:
        """:meth:`run_spec` as JSON data with only the settings given (the pre-flight job's params)."""
        spec = {**self.spec.to_dict(), "run_id": self.run_id, "model": self.model, "seed": self.seed,
                "method": dict(self.method), "eval_batch_size": options.eval_batch_size}
        spec["dataset"] = {**spec["dataset"], "root": options.data_root}
        if self.stop_epoch is not None:
            spec["stop_epoch"] = self.stop_epoch
        if self.teacher:
            spec["teacher"] = str(self.layout.run(self.teacher).model)
            spec["teacher_model"] = model_of_run(self.teacher)
        if self.init_from:
            spec["init_from"] = str(self.layout.run(self.init_from).model)
        if self.selection:
            spec["hyperparameters_from"] = str(self.layout.selection(self.selection))
        return spec

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**data, "method": dict(self.method), "spec": self.spec.to_dict()}

    @classmethod
    def from_dict(cls, data: Any) -> RunRecord:
        """A record from JSON data: keys, types and every id that becomes a path checked (InputError)."""
        from .typed import decode

        spec = data.get("spec") if isinstance(data, dict) else None
        if isinstance(spec, dict) and isinstance(spec.get("dataset"), dict) and "root" in spec["dataset"]:
            raise InputError("spec.dataset: expected the dataset's settings without its root "
                             "(data_root is a job option: --data-root)")
        try:
            record = decode(cls, data, "")
        except InputError:
            raise
        except ValueError as error:  # a combination the types' own checks refuse
            raise InputError(f"spec: {error}") from None
        for what in ("run_id", "teacher", "init_from", "selection"):
            if getattr(record, what) is not None:
                check_id(what, getattr(record, what))
        ResultsLayout(record.results_dir)  # the root's own check
        return record


def model_of_run(run_id: str) -> str | None:
    """The architecture a run id made by :func:`make_run_id` names (None for another id)."""
    parts = run_id.split("/")
    return parts[1] if len(parts) == 5 else None
