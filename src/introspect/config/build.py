"""A schema-valid config document (its defaults filled) as the typed model of
:mod:`introspect.config.model`. The one place a group's dataset and paper dataset are resolved against its
table's or figure's."""
from __future__ import annotations

from typing import Any

from .model import (
    Analysis,
    Budget,
    Claim,
    ClaimSettings,
    Cluster,
    Config,
    DatasetSpec,
    Figure,
    Group,
    MethodVariant,
    Performance,
    Sweeps,
    Table,
    Teacher,
)


def build_model(doc: dict[str, Any], claims: list[dict[str, Any]]) -> Config:
    """``doc`` must have passed :func:`introspect.config.validate.config_problems` without a problem."""
    return Config(
        name=doc["name"], results_dir=doc["results_dir"], data_root=doc["data_root"],
        reported_results=doc["reported_results"], seeds=tuple(doc["seeds"]), threads_per_run=doc["threads_per_run"],
        device=doc["device"], eval_batch_size=doc["eval_batch_size"], table_metric=doc["table_metric"],
        allow_missing_seeds=doc["allow_missing_seeds"], local_worker=doc["local_worker"],
        fail_runs=dict(doc["fail_runs"]), performance=Performance(**doc["performance"]),
        sweeps=Sweeps(doc["sweeps"]["use"], tuple(doc["sweeps"]["seeds"]), doc["sweeps"]["metric"]),
        cluster=Cluster(**doc["cluster"]),
        datasets={key: _dataset(d) for key, d in doc["datasets"].items()},
        budgets={key: Budget.from_dict(b) for key, b in doc["budgets"].items()},
        methods={label: method_variant(label, v) for label, v in doc["methods"].items()},
        teachers={name: Teacher(name, t["model"], t["budget"], t["method"], t["shared"], t["seed_shift"],
                                t.get("teacher")) for name, t in doc["teachers"].items()},
        tables={name: _table(name, t) for name, t in doc["tables"].items()},
        figures={name: _figure(name, f) for name, f in doc["figures"].items()},
        analyses={name: _analysis(name, a) for name, a in doc["analyses"].items()},
        claims=tuple(_claim(c) for c in claims),
        claim_settings=_claim_settings(doc), cost_config=doc["claim_settings"].get("cost_config"),
        extra_seeds={view: {group: {label: tuple(seeds) for label, seeds in methods.items()}
                            for group, methods in groups.items()} for view, groups in doc["extra_seeds"].items()},
        document=doc,
    )


def method_variant(label: str, variant: dict[str, Any]) -> MethodVariant:
    hyper = {k: v for k, v in variant.items() if k not in ("method", "sweep")}
    sweep = {k: tuple(values) for k, values in variant.get("sweep", {}).items()}
    return MethodVariant(label, variant["method"], hyper, sweep)


def resolved_dataset(group: dict[str, Any], container: dict[str, Any]) -> str:
    """A group's dataset: its own, else its table's or figure's (the one spelling of this rule)."""
    return group.get("dataset", container["dataset"])


def groups_of(container: dict[str, Any], key: str) -> list[Group]:
    return [_group(g, container) for g in container.get(key, [])]


def _group(g: dict[str, Any], container: dict[str, Any]) -> Group:
    return Group(
        label=g["label"], model=g["model"], budget=g["budget"], dataset=resolved_dataset(g, container),
        paper_dataset=g.get("paper_dataset", container.get("paper_dataset")), teacher=g.get("teacher"),
        teacher_overrides=dict(g.get("teacher_overrides", {})), exclude=tuple(g.get("exclude", [])),
        method_overrides={k: dict(v) for k, v in g.get("method_overrides", {}).items()},
        method=g.get("method"), explainer=g.get("explainer"))


def _dataset(d: dict[str, Any]) -> DatasetSpec:
    """A dataset entry: its ``source`` is the spec's ``name``."""
    return DatasetSpec(**{("name" if k == "source" else k): v for k, v in d.items()})


def _table(name: str, t: dict[str, Any]) -> Table:
    return Table(name, t["title"], t["dataset"], t.get("paper_table"), t.get("paper_dataset"), t["metric"],
                 t["layout"], tuple(t["methods"]), tuple(t["compare_to"]), t["other_implementations"],
                 t["baseline"], tuple(groups_of(t, "groups")))


def _figure(name: str, f: dict[str, Any]) -> Figure:
    return Figure(name, f["kind"], f["title"], f["dataset"], f["images"], f.get("paper_figure"), f.get("note"),
                  f.get("paper_dataset"), tuple(groups_of(f, "panels")), tuple(groups_of(f, "groups")),
                  tuple(f.get("methods", [])))


def _analysis(name: str, a: dict[str, Any]) -> Analysis:
    methods = tuple(a["methods"]) if a.get("methods") else None
    return Analysis(name, a["title"], tuple(a["tables"]), methods, tuple(a["fractions"]), a["images"],
                    a.get("figure_table", a["tables"][0]))


def _claim_settings(doc: dict[str, Any]) -> ClaimSettings:
    judged = {k: v for k, v in doc["claim_settings"].items() if k in ClaimSettings.__dataclass_fields__}
    return ClaimSettings(**judged, seeds=tuple(doc["seeds"]))


def _claim(c: dict[str, Any]) -> Claim:
    """A claim as the config states it (the plan adds its view's facts: :class:`~introspect.config.claim.Claim`)."""
    return Claim(c["name"], c["table"], c["group"], c["a"], c["b"], c["direction"], c.get("margin"), c["family"],
                 c["text"], c.get("part_of"), tuple((p[0], p[1]) for p in c.get("pairs", ())))
