"""A claim of the paper: one frozen type from the validated config to the claims engine.

The config states it (``claims:`` or the catalogue: its view, group, two methods, direction, margin, family and
text; :func:`introspect.config.build.build_model`); the plan adds what the view says of its group (its model,
dataset, the paper's table and metric, the budget's epochs; :mod:`introspect.plan.build`), and the claims spec
file carries exactly that (:meth:`Claim.to_dict`, :meth:`Claim.from_dict`); the claims job adds what it reads
(the paper's effect and spread, the price of a seed, whether the setting is the paper's;
:mod:`introspect.claims.report`) before the engine (:mod:`introspect.claims.engine`) judges it. Each stage is
``dataclasses.replace`` of the one before: no second class, no dict in between.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from ..runs.typed import NOT_IN_FILES, decode, encode

# The config's closed sets of a claim, written once: the schema gets its enum from it (load_schema).
Direction = Literal["greater", "equivalent", "not_better", "less_variable", "cheaper", "similar_pairs"]
DIRECTIONS: tuple[str, ...] = get_args(Direction)
MetricKind = Literal["accuracy", "error"]  # how a table reports it (the paper's Table 3 reports error)
COST_SUFFIX = " · cost"  # a cost claim's values key: its costs never mix with the cells' accuracies


@dataclass(frozen=True)
class Claim:
    """Method ``method_a`` against ``method_b`` on one group of a view (config keys ``table``, ``a``, ``b``)."""

    # as the config states it (the schema fills family and text)
    name: str  # unique id, e.g. "le_gradcam_beats_dropout_resnet14"
    view: str  # the table (or accuracy figure) whose cells it compares; similar_pairs: a class_similarity figure
    group: str  # a group label of the view (similar_pairs: the config names the panel's model, the plan its label)
    method_a: str
    method_b: str
    direction: Direction  # "greater" (A > B) | "equivalent" (|A − B| <= margin) | "not_better" (A ≤ B) | ...
    margin: float | None  # pp; equivalent claims only
    family: str  # Holm family
    text: str  # the paper's wording or where it says so
    part_of: str | None = None  # the majority claim ("A beats most of ...") this greater claim is a member of
    pairs: tuple[tuple[str, str], ...] = ()  # similar_pairs: the class pairs the paper calls similar
    # the catalogue it comes from (claim_settings.catalogue), None for the config's own: where its problems point
    # (the validation's concern only: not part of what the claim is, nor of its spec file)
    catalogue: str | None = field(default=None, compare=False, metadata=NOT_IN_FILES)
    # what the plan adds from the view (None: not planned yet)
    model: str | None = None  # the group's network
    dataset: str | None = None  # the config's dataset source the cells ran on
    paper_dataset: str | None = None
    paper_table: int | None = None
    metric_kind: MetricKind | None = None  # how the paper's table reports it
    epochs: int | None = None  # the group's budget: with the dataset, whether the paper's magnitudes compare
    # what the claims job adds before judging (never in a spec file)
    paper_effect: float | None = field(default=None, metadata=NOT_IN_FILES)  # A − B in pp from the paper's tables
    paper_sd: float | None = field(default=None, metadata=NOT_IN_FILES)  # spread of A − B from the paper's stds
    seed_gpu_hours: float | None = field(default=None, metadata=NOT_IN_FILES)  # one seed of both cells
    paper_setting: bool = field(default=True, metadata=NOT_IN_FILES)  # the paper's magnitudes are comparable
    setting_note: str = field(default="", metadata=NOT_IN_FILES)  # why they are not, when not

    @property
    def values_key(self) -> str:
        """The key of its cells' values in the engine's input: view and group ("table2 · ResNet8"), so values
        never mix views; a cost claim's its own."""
        key = f"{self.view} · {self.group}"
        return key + COST_SUFFIX if self.direction == "cheaper" else key

    @property
    def shown_dataset(self) -> str:
        """The dataset a reader is told: the paper's, else the one the cells ran on."""
        return self.paper_dataset or self.dataset or ""

    @property
    def table_disagrees(self) -> bool:
        """The paper's own table has the opposite of what its text (this claim's direction) says."""
        if self.paper_effect is None:
            return False
        if self.direction == "greater":
            return self.paper_effect <= 0
        if self.direction != "equivalent" or self.margin is None:
            return False  # no table effect to disagree with: "not better" holds for a small gap; spreads differ
        return abs(self.paper_effect) > self.margin

    def to_dict(self) -> dict[str, Any]:
        """The claims spec file's form: what the config and the plan say (the claims job adds the rest)."""
        return encode(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> Claim:
        """A claim from a spec file's data, every key and type checked (an InputError naming the key)."""
        return decode(cls, data, where)
