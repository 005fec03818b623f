"""The config as a typed model, and reading a config file.

:func:`load_config` reads the YAML with limits (:mod:`introspect.config.yaml_input`) and never evaluates it;
:func:`introspect.config.validate.validate_config` checks it once (the schema with its defaults, the
cross-references, the hyper-parameter ranges and the combinations a job would refuse: every problem at
once, each with its key path) and builds these frozen dataclasses (:mod:`introspect.config.build`).
Planning reads only these.

Defaults are written once: in the schema (``introspect/config/schemas/config.schema.yaml``, package data), or,
for the types a run spec shares with the config (:class:`~introspect.runs.spec.DatasetSpec`,
:class:`~introspect.runs.spec.Budget`, :class:`~introspect.runs.spec.Performance`,
:class:`~introspect.runs.spec.RunOptions`) and :class:`ClaimSettings`, on the type, from which the schema gets
them (:func:`introspect.config.validate.load_schema`). The other dataclasses below repeat none of them.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from ..errors import InputError
from ..runs.spec import Budget, DatasetSpec, Performance
from .claim import Claim, MetricKind
from .overlays import read_config_file

# The config's closed sets, written once: the schema gets its enums from these (load_schema), the view specs
# (introspect.plan.views) and the claims engine use them. A claim's own are in introspect.config.claim.
SweepUse = Literal["validation", "paper"]  # sweep and select on the validation split, or the configured values
SWEEP_USES: tuple[str, ...] = get_args(SweepUse)
SweepMetric = Literal["val_acc_final", "val_acc_best"]  # what a sweep point is scored by
TableMetric = Literal["test_acc_final", "test_acc_best_val", "test_acc_max"]  # the run metric a table shows
TableLayout = Literal["models_as_rows", "methods_as_rows"]
FigureKind = Literal["explanations", "class_similarity", "accuracy"]
GpuRequest = Literal["gpus", "gres"]  # --gpus=[model:]N or --gres=gpu[:model]:N


class ConfigError(InputError):
    """A config value is wrong; the message names the key (every problem found, one per line)."""


@dataclass(frozen=True)
class MethodVariant:
    label: str  # display text, e.g. "LE(Grad-CAM)"
    method: str  # registered method name
    hyperparameters: Mapping[str, Any]  # as configured (warmup_fraction not yet turned into epochs)
    sweep: Mapping[str, tuple[Any, ...]]

    def with_overrides(self, overrides: Mapping[str, Any]) -> MethodVariant:
        return MethodVariant(self.label, self.method, {**self.hyperparameters, **overrides}, self.sweep)

    @property
    def warmup_fraction(self) -> float | None:
        """LE's warm-up as a fraction of each budget (planning turns it into the method's warmup_epochs)."""
        return self.hyperparameters.get("warmup_fraction")


@dataclass(frozen=True)
class Teacher:
    name: str
    model: str
    budget: str
    method: str  # a method label
    shared: bool
    seed_shift: int
    teacher: str | None  # its own teacher (TAKD assistants)


@dataclass(frozen=True)
class Group:
    """A model group of a table or figure (or an explanation panel), with its dataset resolved."""

    label: str
    model: str
    budget: str
    dataset: str  # the group's own, else its table's or figure's
    paper_dataset: str | None  # likewise
    teacher: str | None
    teacher_overrides: Mapping[str, str]
    exclude: tuple[str, ...]
    method_overrides: Mapping[str, Mapping[str, Any]]
    method: str | None = None  # panels: the method label of the run shown
    explainer: str | None = None  # panels

    def teacher_of(self, label: str) -> str | None:
        return self.teacher_overrides.get(label, self.teacher)

    def variant(self, label: str, methods: Mapping[str, MethodVariant]) -> MethodVariant:
        """The method variant ``label`` as this group trains it (its ``method_overrides`` applied)."""
        return methods[label].with_overrides(self.method_overrides.get(label, {}))

    def trained_labels(self, methods: Sequence[str]) -> list[str]:
        """The method labels this group has runs of: a panel's one method, else ``methods`` (its view's) but
        those it excludes."""
        return [self.method] if self.method else [m for m in methods if m not in self.exclude]


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    dataset: str
    paper_table: int | None
    paper_dataset: str | None
    metric: MetricKind
    layout: TableLayout
    methods: tuple[str, ...]
    compare_to: tuple[str, ...]
    other_implementations: bool
    baseline: str  # the method label the sanity flags compare teachers and collapses with
    groups: tuple[Group, ...]


@dataclass(frozen=True)
class Figure:
    name: str
    kind: FigureKind
    title: str
    dataset: str
    images: int
    paper_figure: int | None
    note: str | None
    paper_dataset: str | None
    panels: tuple[Group, ...]
    groups: tuple[Group, ...]
    methods: tuple[str, ...]


@dataclass(frozen=True)
class Analysis:
    name: str
    title: str
    tables: tuple[str, ...]
    methods: tuple[str, ...] | None  # None: every method of its tables
    fractions: tuple[float, ...]
    images: int
    figure_table: str  # resolved: the first table unless given


@dataclass(frozen=True)
class ClaimSettings:
    """How claims are judged and planned: config ``claim_settings`` (the defaults here are the schema's too) with
    the config's seeds; the claims spec carries it to the claims job. (``catalogue`` and ``only`` choose the
    claims when the config is read; ``cost_config`` is :attr:`Config.cost_config`.)"""

    alpha: float = 0.05  # family-wise level of each Holm family
    power: float = 0.8  # the power seeds_needed plans for
    smallest_effect_pp: float = 0.5  # the target of claims without a positive paper effect (Figure 3's order)
    max_seeds: int = 20  # claims_next.yaml never plans a cell beyond this many seeds
    # "smaller than reported" for A > B claims: off for result sets whose effects are not meant to be the paper's
    compare_magnitudes: bool = True
    seeds: tuple[int, ...] = ()  # the config's own seeds: seeds of a cell beyond them are extra seeds


@dataclass(frozen=True)
class Sweeps:
    use: SweepUse
    seeds: tuple[int, ...]
    metric: SweepMetric


@dataclass(frozen=True)
class Cluster:
    gpus_per_run: int | None  # None: 1 with device cuda, 0 on the CPU (introspect.cluster.resources.gpus_per_run)
    gpu_request: GpuRequest
    runs_per_gpu: int  # k > 1: k training runs packed into one SLURM job asking for one GPU
    gpu_partition: str | None
    cpu_partition: str | None
    fake_gpus: bool  # test clusters only: GPU requests while training on the CPU
    gpu_shards_per_run: int
    gpu_model: str | None
    mem_mb_per_run: int
    epoch_seconds: Mapping[str, float]
    explainer_cost: Mapping[str, float]
    method_cost: Mapping[str, float]
    runtime_margin: float
    min_runtime_minutes: int


@dataclass(frozen=True)
class Config:
    name: str
    results_dir: str
    data_root: str
    reported_results: str
    seeds: tuple[int, ...]
    threads_per_run: int
    device: str
    eval_batch_size: int
    table_metric: TableMetric
    allow_missing_seeds: bool
    local_worker: bool
    fail_runs: Mapping[str, int]
    performance: Performance
    sweeps: Sweeps
    cluster: Cluster
    datasets: Mapping[str, DatasetSpec]  # by key; DatasetSpec.name is the entry's source
    budgets: Mapping[str, Budget]
    methods: Mapping[str, MethodVariant]
    teachers: Mapping[str, Teacher]
    tables: Mapping[str, Table]
    figures: Mapping[str, Figure]
    analyses: Mapping[str, Analysis]
    claims: tuple[Claim, ...]  # the catalogue's that apply (claim_settings.catalogue), then the config's own
    claim_settings: ClaimSettings
    cost_config: str | None  # claim_settings.cost_config: the config whose costs price seeds_needed (None: this)
    # seeds beyond `seeds` for single cells: view -> group label -> method label -> seeds (claims_next.yaml)
    extra_seeds: Mapping[str, Mapping[str, Mapping[str, tuple[int, ...]]]]
    document: Mapping[str, Any] = field(compare=False, repr=False)  # as validated, defaults filled (JSON)
    # key paths of parts the schema refused and the model could not hold (``datasets.x``, or a whole section, then
    # None or empty here): only a model built to check such a document has any (build_model's lenient mode), and
    # it is never planned
    unbuilt: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def has(self, section: str, name: str) -> bool:
        """Whether the config defines ``name`` under ``section`` (one the model could not hold counts: its own
        problems are the schema's, and the names it holds exist)."""
        return name in getattr(self, section) or f"{section}.{name}" in self.unbuilt or section in self.unbuilt

    @property
    def claim_views(self) -> dict[str, Table | Figure]:
        """The views whose cells claims and ``extra_seeds`` name: the tables and the accuracy figures."""
        return {**{n: f for n, f in self.figures.items() if f.kind == "accuracy"}, **self.tables}

    def located_groups(self) -> Iterator[tuple[str, Table | Figure, Group]]:
        """Every group and panel of the tables and figures with its key path (``tables.t.groups[0]``) and view."""
        for section, views in (("tables", self.tables), ("figures", self.figures)):
            for name, view in views.items():
                for key in ("groups", "panels"):
                    for i, group in enumerate(getattr(view, key, ())):
                        yield f"{section}.{name}.{key}[{i}]", view, group

    def claim_cells(self) -> set[tuple[str, str, str]]:
        """(view, group label, method label) of every cell of :attr:`claim_views`."""
        return {(name, group.label, label) for name, view in self.claim_views.items() for group in view.groups
                for label in group.trained_labels(view.methods)}


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """A config file's data with its ``extends`` resolved (:mod:`introspect.config.overlays`), not yet
    validated. Never evaluates anything: a YTE-templated config is refused."""
    try:
        config = read_config_file(path)
    except InputError as error:
        raise ConfigError(str(error)) from None
    if overrides:
        config = _deep_merge(config, overrides)
    return config


def _deep_merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def reject(problems: list[str], limit: int = 50) -> None:
    """One ConfigError listing the problems found (up to ``limit``), each naming its key."""
    if problems:
        more = [f"  ... and {len(problems) - limit} more"] if len(problems) > limit else []
        raise ConfigError("invalid config:\n" + "\n".join([f"  {p}" for p in problems[:limit]] + more))
