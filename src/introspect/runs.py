"""The run record: what a run is and where its files are. The one module that knows the layout of a
results folder.

The plan produces :class:`RunRecord` objects; the workflow rules, the training command, tables,
selection, figures and the student analysis consume them (by run id) and never build a path or parse
an id themselves. Reading a finished run's metrics and loading its model live here too, so analysis
code does not depend on the trainer.

Importing this module costs no torch: planning uses it on every ``snakemake`` call.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .data import Dataset
    from .models import IntrospectModel
    from .spec import RunSpec

RUN_KINDS = ("train", "teacher", "student", "warmup", "stage2")  # which rule trains a run

# A run directory's files. Nothing else in the package or the workflow spells these names.
CHECKPOINT, MODEL, METRICS, EPOCHS, LOG = "checkpoint.pt", "model.pt", "metrics.json", "epochs.csv", "train.log"
OUTCOME = "outcome.json"  # a sweep point's job result: finished, or failed after its retries (never blocks a selection)
RUN_OUTPUTS = (METRICS, EPOCHS, MODEL)  # what a finished training job leaves (its rule's outputs)


class RunFileError(RuntimeError):
    """A run's file is missing or unreadable; the message names the file and how to redo it."""


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
    def outcome(self) -> Path:
        return self.directory / OUTCOME

    def failure(self) -> str | None:
        """Why a sweep point failed for good (its outcome file), or None."""
        try:
            return json.loads(self.outcome.read_text()).get("failed")
        except (OSError, ValueError, AttributeError):
            return None

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


def method_slug(method: str, hyperparameters: dict[str, Any]) -> str:
    return "-".join([method] + [f"{k}{_format_value(v)}" for k, v in sorted(hyperparameters.items())])


def label_slug(label: str) -> str:
    """A display label (e.g. ``LE(Grad-CAM)``) as a path component."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", label).strip("_")


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
    """A completed run as analysis sees it: its metrics (with the spec it ran) and its files."""

    run_id: str
    files: RunFiles
    metrics: dict[str, Any] = field(repr=False)

    @property
    def seed(self) -> int:
        return int(self.metrics["seed"])

    def value(self, metric: str) -> float:
        try:
            return float(self.metrics[metric])
        except (KeyError, TypeError, ValueError):
            raise RunFileError(f"{self.files.metrics} has no numeric {metric!r}; {_redo(self.files)}") from None

    def load_model(self, device: str = "cpu") -> IntrospectModel:
        return load_model(self.files.model, device)

    def load_data(self) -> Dataset:
        from .spec import RunSpec

        return load_run_dataset(RunSpec.from_dict(self.metrics["spec"]))


def read_run(layout: ResultsLayout, run_id: str) -> FinishedRun:
    """A finished run's metrics; a missing or corrupt ``metrics.json`` is a :class:`RunFileError`."""
    files = layout.run(run_id)
    try:
        metrics = json.loads(files.metrics.read_text())
    except FileNotFoundError:
        raise RunFileError(f"{files.metrics} does not exist: run {run_id} has not finished; "
                           "train it first (snakemake reruns only what is missing)") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise RunFileError(f"{files.metrics} is corrupt ({error}); {_redo(files)}") from None
    if not isinstance(metrics, dict) or "seed" not in metrics or "spec" not in metrics:
        raise RunFileError(f"{files.metrics} is not a run's metrics (no seed or spec); {_redo(files)}")
    return FinishedRun(run_id, files, metrics)


def _redo(files: RunFiles) -> str:
    return (f"delete {files.directory} and run the same snakemake command again to retrain it "
            f"(or: snakemake --forcerun {files.metrics})")


def load_checkpoint(path: str | Path, device: str = "cpu") -> dict[str, Any]:
    """A run's ``model.pt`` or ``checkpoint.pt`` as saved by the training loop. A missing, truncated or
    foreign file is a :class:`RunFileError` naming it and the command that redoes it."""
    import torch

    try:
        saved = torch.load(path, map_location=device, weights_only=False)
        saved["arch"], saved["model"], saved["history"]  # noqa: B018 - what every reader needs
    except FileNotFoundError:
        raise RunFileError(f"{path} does not exist; train that run first") from None
    except Exception as error:  # torch raises many types for a truncated or foreign file
        raise RunFileError(f"{path} is corrupt or not a run's checkpoint ({type(error).__name__}: {error}); "
                           f"delete {Path(path).parent} and run the same snakemake command again "
                           f"(or: snakemake --forcerun {path})") from None
    return saved


def load_model(path: str | Path, device: str = "cpu") -> IntrospectModel:
    """Rebuild a trained model (in eval mode) from a run's ``model.pt`` or checkpoint."""
    from .models import build_model

    saved = load_checkpoint(path, device)
    arch = saved["arch"]
    model = build_model(arch["name"], arch["num_classes"], tuple(arch["input_shape"]))
    model.load_state_dict(saved["model"])
    return model.to(device).eval()


def load_run_dataset(spec: RunSpec) -> Dataset:
    """The dataset (with its splits) a run trained and was evaluated on."""
    from .data import load_dataset

    d = spec.dataset
    return load_dataset(d.name, d.root, val_fraction=d.val_fraction, test_fraction=d.test_fraction,
                        image_size=d.image_size, augment=d.augment, split_seed=d.split_seed,
                        test_seed=d.test_seed(spec.seed))
