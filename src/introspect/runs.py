"""The run record: what a run is and where its files are. The one module that knows the layout of a
results folder.

The plan produces :class:`RunRecord` objects; the workflow rules, the training command, tables,
selection, figures and the student analysis consume them (by run id) and never build a path or parse
an id themselves. Reading a finished run's metrics and loading its model live here too, so analysis
code does not depend on the trainer.

Importing this module costs no torch: planning uses it on every ``snakemake`` call.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .run_metrics import RunFileError, RunMetrics, redo  # noqa: F401 - RunFileError: readers import it here

if TYPE_CHECKING:  # pragma: no cover
    from .data import Dataset
    from .models import IntrospectModel
    from .spec import RunSpec

RUN_KINDS = ("train", "teacher", "student", "warmup", "stage2")  # which rule trains a run

# A run directory's files. Nothing else in the package or the workflow spells these names.
CHECKPOINT, MODEL, METRICS, EPOCHS, LOG = "checkpoint.pt", "model.pt", "metrics.json", "epochs.csv", "train.log"
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
    def outputs(self) -> list[Path]:
        return [self.directory / name for name in RUN_OUTPUTS]

    def is_finished(self) -> bool:
        """``metrics.json`` is written last, so its presence means the run completed."""
        return self.metrics.exists()

    def was_tried(self) -> bool:
        return self.log.exists()


class ResultsLayout:
    """Every path under ``results_dir``: run directories, selections, tables, tests, figures."""

    def __init__(self, results_dir: str | Path):
        self.root = Path(results_dir)

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def run(self, run_id: str) -> RunFiles:
        return RunFiles(self.runs_dir / run_id)

    def selection(self, selection_id: str) -> Path:
        return self.root / "selection" / f"{selection_id}.json"

    @property
    def tables_dir(self) -> Path:
        return self.root / "tables"

    @property
    def figures_dir(self) -> Path:
        return self.root / "figures"

    @property
    def stats_dir(self) -> Path:
        return self.root / "stats"

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
        return self.root / f"claims.{ext}"

    # every file a view's rule writes (the all-target and the planner's inside-results_dir check use these)
    def table_files(self, name: str) -> list[Path]:
        return [self.table(name, ext) for ext in ("md", "tex", "csv", "html")] + [self.table_tests(name)]

    def figure_files(self, name: str) -> list[Path]:
        return [self.figure(name, ext) for ext in ("png", "pdf", "csv")]

    def analysis_files(self, name: str) -> list[Path]:
        return ([self.table(name, ext) for ext in ("md", "csv", "html")] + [self.analysis_runs(name)]
                + [self.analysis_figure(name, ext) for ext in ("png", "pdf", "csv")])

    def claims_files(self) -> list[Path]:
        return [self.claims(ext) for ext in ("md", "csv", "html")]

    def analysis_runs(self, name: str) -> Path:
        return self.tables_dir / f"{name}_runs.csv"

    def analysis_figure(self, name: str, ext: str) -> Path:
        return self.figures_dir / f"{name}_pairs.{ext}"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def job_log(self, step: str, name: str | None = None) -> Path:
        """The log of one job of a step that is not a training run (a run logs into its own directory):
        ``logs/<step>/<name>.log``, or ``logs/<step>.log`` for a step with a single job."""
        return self.logs_dir / step / f"{name}.log" if name else self.logs_dir / f"{step}.log"


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


@dataclass
class RunRecord:
    """One training run of the plan: what it computes and the runs it needs.

    ``spec`` holds the settings of :class:`introspect.spec.RunSpec` except the paths, which
    :meth:`run_spec` derives from the run ids ``teacher`` and ``init_from`` and the selection id.
    """

    run_id: str
    kind: str  # one of RUN_KINDS
    results_dir: str
    dataset: str  # the config's dataset key
    model: str
    budget: str  # the config's budget key
    method: dict[str, Any]  # {"name": ..., **hyper-parameters}
    seed: int
    spec: dict[str, Any]
    teacher: str | None = None  # run id of the teacher (or BAN peer) it learns from
    init_from: str | None = None  # run id of the LE warm-up it starts from
    selection: str | None = None  # id of the sweep whose chosen hyper-parameters complete `method`
    stop_epoch: int | None = None

    @property
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

    def run_spec_dict(self, fail_at_epoch: int | None = None) -> dict[str, Any]:
        spec = {**self.spec, "run_id": self.run_id, "model": self.model, "seed": self.seed,
                "method": dict(self.method)}
        if self.stop_epoch is not None:
            spec["stop_epoch"] = self.stop_epoch
        if self.teacher:
            spec["teacher"] = str(self.layout.run(self.teacher).model)
            spec["teacher_model"] = model_of_run(self.teacher)
        if self.init_from:
            spec["init_from"] = str(self.layout.run(self.init_from).model)
        if self.selection:
            spec["hyperparameters_from"] = str(self.layout.selection(self.selection))
        if fail_at_epoch is not None:
            spec["fail_at_epoch"] = fail_at_epoch
        return spec

    def run_spec(self) -> RunSpec:
        from .spec import RunSpec

        return RunSpec.from_dict(self.run_spec_dict())

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"run record has unknown key(s): {', '.join(unknown)}")
        return cls(**data)


# ---------------------------------------------------------------- reading finished runs

@dataclass
class FinishedRun:
    """A completed run as analysis sees it: its validated ``metrics.json`` and its files."""

    run_id: str
    files: RunFiles
    record: RunMetrics = field(repr=False)

    @property
    def metrics(self) -> dict[str, Any]:
        """The metrics as the JSON object on disk (validated when read)."""
        return self.record.to_dict()

    @property
    def seed(self) -> int:
        return self.record.seed

    def value(self, metric: str) -> float:
        value = getattr(self.record, metric, None) if metric in RunMetrics.__dataclass_fields__ else None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise RunFileError(f"{self.files.metrics} has no numeric {metric!r}; {redo(self.files.metrics)}")
        return float(value)

    def load_model(self, device: str = "cpu") -> IntrospectModel:
        return load_model(self.files.model, device, architecture=self.record.model)

    def load_data(self) -> Dataset:
        from .spec import RunSpec

        return load_run_dataset(RunSpec.from_dict(self.record.spec))


def read_run(layout: ResultsLayout, run_id: str) -> FinishedRun:
    """A finished run's metrics, validated (types, ranges, its seed and run id); a missing, corrupt
    or tampered ``metrics.json`` is a :class:`RunFileError` naming it and the fix."""
    files = layout.run(run_id)
    try:
        data = json.loads(files.metrics.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFileError(f"{files.metrics} does not exist: run {run_id} has not finished; "
                           "train it first (snakemake reruns only what is missing)") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise RunFileError(f"{files.metrics} is corrupt ({error}); {redo(files.metrics)}") from None
    return FinishedRun(run_id, files, RunMetrics.from_dict(data, files.metrics, run_id))


def model_of_run(run_id: str) -> str | None:
    """The architecture a run id made by :func:`make_run_id` names (None for another id)."""
    parts = run_id.split("/")
    return parts[1] if len(parts) == 5 else None


def load_checkpoint(path: str | Path, device: str = "cpu") -> dict[str, Any]:
    """A run's ``model.pt`` or ``checkpoint.pt`` (tensors and plain metadata, see
    :mod:`introspect.train.checkpoint`), loaded with ``weights_only=True``: a file in a results
    directory never runs code. A missing, truncated, foreign or pickled-object file is a
    :class:`RunFileError` naming it and how to redo it."""
    import pickle

    import torch

    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise RunFileError(f"{path} does not exist; train that run first") from None
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RunFileError(f"{path} holds Python objects, not only tensors and plain data (an old pickled "
                           f"file, or a tampered one: {first}); it was not loaded, as loading it could run "
                           f"code. Retrain it: {redo(path)}") from None
    except Exception as error:  # torch raises many types for a truncated or foreign file
        raise RunFileError(f"{path} is corrupt or not a run's checkpoint ({type(error).__name__}: "
                           f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}); "
                           f"{redo(path)}") from None
    if problem := _checkpoint_problem(saved):
        raise RunFileError(f"{path} is not a run's checkpoint ({problem}); {redo(path)}")
    return saved


def _checkpoint_problem(saved: Any) -> str | None:
    if not isinstance(saved, dict):
        return f"a dictionary was expected, not {type(saved).__name__}"
    missing = [k for k in ("arch", "model", "history", "epoch") if k not in saved]
    if missing:
        return f"no {', '.join(missing)}"
    arch = saved["arch"]
    if not (isinstance(arch, dict) and isinstance(arch.get("name"), str) and _is_int(arch.get("num_classes"))
            and isinstance(arch.get("input_shape"), (list, tuple)) and all(map(_is_int, arch["input_shape"]))):
        return "its 'arch' is not {name, num_classes, input_shape}"
    if not isinstance(saved["model"], dict) or not isinstance(saved["history"], list):
        return "its 'model' is not a state dict or its 'history' not a list"
    if not _is_int(saved["epoch"]) or saved["epoch"] < 0:
        return f"epoch {saved['epoch']!r} is not a non-negative integer"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_model(path: str | Path, device: str = "cpu", architecture: str | None = None) -> IntrospectModel:
    """Rebuild a trained model (in eval mode) from a run's ``model.pt`` or checkpoint. With
    ``architecture`` (the model the run record names), a file holding another one is an error; so is
    a state dict that does not fit the architecture the file names."""
    from .models import build_model

    saved = load_checkpoint(path, device)
    arch = saved["arch"]
    if architecture and arch["name"] != architecture:
        raise RunFileError(f"{path} holds a {arch['name']} model, but the run names {architecture}; "
                           f"{redo(path)}")
    try:
        model = build_model(arch["name"], arch["num_classes"], tuple(arch["input_shape"]))
        model.load_state_dict(saved["model"])
    except (KeyError, ValueError, RuntimeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RunFileError(f"{path}: its weights do not fit a {arch['name']} ({first}); {redo(path)}") from None
    return model.to(device).eval()


def load_run_dataset(spec: RunSpec) -> Dataset:
    """The dataset (with its splits) a run trained and was evaluated on."""
    from .data import load_dataset

    d = spec.dataset
    return load_dataset(d.name, d.root, val_fraction=d.val_fraction, test_fraction=d.test_fraction,
                        image_size=d.image_size, augment=d.augment, split_seed=d.split_seed,
                        test_seed=d.test_seed(spec.seed))
