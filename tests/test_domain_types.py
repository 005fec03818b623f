"""One family of domain types: each class name is defined once in the package, and the types a run spec shares
with the config are the same objects on both sides (no second definition, no dict handoff between them)."""
from __future__ import annotations

import ast
import dataclasses
from collections import defaultdict
from pathlib import Path

import introspect
from introspect.config import model
from introspect.config.registry_facts import registry_catalog
from introspect.config.validate import load_schema
from introspect.runs import spec

SRC = Path(introspect.__file__).parent

# Names still defined twice, each with why; the test fails when one is resolved (drop it here) or a new one
# appears (define it once and import it).
KNOWN_DUPLICATES = {
    "Dataset": "config.model.Dataset (a config's dataset section) vs data.base.Dataset (loaded tensors)",
    "Group": "config.model.Group vs plan.views.Group (a planned table's group)",
    "Claim": "config.model.Claim vs claims.engine.Claim (the engine's input)",
    "Teacher": "config.model.Teacher vs analysis.sanity.Teacher (a teacher's accuracies)",
    "Plan": "plan.outputs.Plan is a Protocol of plan.build.Plan (outputs may not import build: a cycle)",
    "Cell": "plan.views.Cell (a view's runs) vs analysis.html_page.Cell (an HTML table entry)",
}


def _class_definitions() -> dict[str, list[str]]:
    defined: dict[str, list[str]] = defaultdict(list)
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                defined[node.name].append(str(path.relative_to(SRC)))
    return defined


def test_each_class_name_is_defined_once():
    twice = {name: paths for name, paths in _class_definitions().items() if len(paths) > 1}
    assert set(twice) - set(KNOWN_DUPLICATES) == set(), f"defined more than once: {twice}"
    assert set(KNOWN_DUPLICATES) - set(twice) == set(), "resolved: drop from KNOWN_DUPLICATES"


def test_budget_and_performance_are_the_run_specs_types():
    assert model.Budget is spec.Budget and model.Performance is spec.Performance
    hints = {f.name: f.type for f in dataclasses.fields(model.Config)}
    assert hints["performance"] == "Performance" and hints["budgets"] == "Mapping[str, Budget]"


def test_shared_types_are_frozen():
    for cls in (spec.Budget, spec.Performance):
        assert cls.__dataclass_params__.frozen, cls


def test_schema_defaults_come_from_the_types():
    """Each default of a shared type is written on the type only; the schema the validator uses carries it."""
    schema = load_schema(registry_catalog())["properties"]
    budget = schema["budgets"]["additionalProperties"]["properties"]
    assert {k: v.get("default") for k, v in budget.items()} == {
        "epochs": None, "batch_size": None, "lr": None,
        "lr_milestones": [], "lr_gamma": 0.1, "momentum": 0.9, "weight_decay": 1e-4}
    performance = schema["performance"]["properties"]
    assert {k: v["default"] for k, v in performance.items()} == {"channels_last": True, "amp": "none",
                                                                 "compile": None}
    raw = (SRC / "config" / "schemas" / "config.schema.yaml").read_text(encoding="utf-8")
    budgets_text = raw[raw.index("  budgets:"):raw.index("  methods:")]
    assert "default" not in budgets_text.replace("# defaults:", "")


def test_a_budget_round_trips_through_its_json_form():
    budget = spec.Budget(epochs=160, batch_size=128, lr=0.1, lr_milestones=(0.5, 0.75))
    data = budget.to_dict()
    assert data == {"epochs": 160, "batch_size": 128, "lr": 0.1, "lr_milestones": [0.5, 0.75], "lr_gamma": 0.1,
                    "momentum": 0.9, "weight_decay": 1e-4}
    assert spec.Budget.from_dict(data) == budget
    assert budget.milestone_epochs() == [80, 120]
