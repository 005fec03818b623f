"""A schema-valid config document (its defaults filled) as the typed model of
:mod:`introspect.config.model`. The one place a group's dataset and paper dataset are resolved against its
table's or figure's."""
from __future__ import annotations

from collections.abc import Callable
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


def build_model(doc: dict[str, Any], claims: list[dict[str, Any]], *, lenient: bool = False) -> Config:
    """``doc``: schema-checked by :func:`introspect.config.validate.config_problems` (its defaults filled). The
    model may name what does not exist (the checks of :mod:`introspect.config.model_checks` say so).

    ``lenient``: for checking a document the schema refused. A part the model cannot hold (an entry of a named
    section, a claim, a whole section) is left out (a section: None, an entry: absent) and its key path kept in
    :attr:`Config.unbuilt`, so only that part's checks wait for the schema's fix. Such a model is never planned."""
    unbuilt: list[str] = []

    def part(section: str, make: Callable[[Any], Any]) -> Any:
        try:
            return make(doc[section])
        except (KeyError, TypeError, AttributeError, IndexError, ValueError):
            if not lenient:
                raise
            unbuilt.append(section)
            return None

    def each(section: str, make: Callable[[str, Any], Any]) -> dict[str, Any]:
        entries = doc.get(section) if lenient else doc[section]
        if lenient and not isinstance(entries, dict):
            unbuilt.append(section)
            return {}
        out = {}
        for key, value in entries.items():
            try:
                out[key] = make(key, value)
            except (KeyError, TypeError, AttributeError, IndexError, ValueError):
                if not lenient:
                    raise
                unbuilt.append(f"{section}.{key}")
        return out

    return Config(
        name=doc["name"], results_dir=doc["results_dir"], data_root=doc["data_root"],
        reported_results=doc["reported_results"], seeds=part("seeds", listed) or (),
        threads_per_run=doc["threads_per_run"], device=doc["device"], eval_batch_size=doc["eval_batch_size"],
        table_metric=doc["table_metric"], allow_missing_seeds=doc["allow_missing_seeds"],
        local_worker=doc["local_worker"], fail_runs=part("fail_runs", dict) or {},
        performance=part("performance", lambda p: Performance(**p)),
        sweeps=part("sweeps", lambda s: Sweeps(s["use"], listed(s["seeds"]), s["metric"])),
        cluster=part("cluster", lambda c: Cluster(**c)),
        datasets=each("datasets", lambda _, d: _dataset(d)),
        budgets=each("budgets", lambda _, b: Budget.from_dict(b)),
        methods=each("methods", method_variant),
        teachers=each("teachers", lambda name, t: Teacher(name, t["model"], t["budget"], t["method"], t["shared"],
                                                          t["seed_shift"], t.get("teacher"))),
        tables=each("tables", _table), figures=each("figures", _figure), analyses=each("analyses", _analysis),
        claims=_claims(claims, lenient), claim_settings=part("claim_settings", lambda _: _claim_settings(doc)),
        cost_config=part("claim_settings", lambda c: c.get("cost_config")), extra_seeds=_extra_seeds(doc, lenient),
        document=doc, unbuilt=frozenset(unbuilt),
    )


def _claims(claims: list[dict[str, Any]], lenient: bool) -> tuple[Claim, ...]:
    out = []
    for claim in claims:
        try:
            out.append(_claim(claim))
        except (KeyError, TypeError, IndexError):
            if not lenient:
                raise
    return tuple(out)


def _extra_seeds(doc: dict[str, Any], lenient: bool) -> dict[str, dict[str, dict[str, tuple[int, ...]]]]:
    try:
        return {view: {group: {label: listed(seeds) for label, seeds in methods.items()}
                       for group, methods in groups.items()} for view, groups in doc["extra_seeds"].items()}
    except (TypeError, AttributeError):
        if not lenient:
            raise
        return {}


def listed(values: Any) -> tuple[Any, ...]:
    """A list of the document as a tuple; anything else (a value the schema refused) is a TypeError, so that a
    string is never read as its characters."""
    if not isinstance(values, list):
        raise TypeError(f"expected a list, got {type(values).__name__}")
    return tuple(values)


def method_variant(label: str, variant: dict[str, Any]) -> MethodVariant:
    hyper = {k: v for k, v in variant.items() if k not in ("method", "sweep")}
    sweep = variant.get("sweep", {})
    if isinstance(sweep, dict):  # else a value the schema refused, kept as given for the checks to name
        sweep = {k: tuple(values) if isinstance(values, list) and values else values for k, values in sweep.items()}
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
        teacher_overrides=dict(g.get("teacher_overrides", {})), exclude=listed(g.get("exclude", [])),
        method_overrides={k: dict(v) for k, v in g.get("method_overrides", {}).items()},
        method=g.get("method"), explainer=g.get("explainer"))


def _dataset(d: dict[str, Any]) -> DatasetSpec:
    """A dataset entry: its ``source`` is the spec's ``name``."""
    return DatasetSpec(**{("name" if k == "source" else k): v for k, v in d.items()})


def _table(name: str, t: dict[str, Any]) -> Table:
    return Table(name, t["title"], t["dataset"], t.get("paper_table"), t.get("paper_dataset"), t["metric"],
                 t["layout"], listed(t["methods"]), listed(t["compare_to"]), t["other_implementations"],
                 t["baseline"], tuple(groups_of(t, "groups")))


def _figure(name: str, f: dict[str, Any]) -> Figure:
    return Figure(name, f["kind"], f["title"], f["dataset"], f["images"], f.get("paper_figure"), f.get("note"),
                  f.get("paper_dataset"), tuple(groups_of(f, "panels")), tuple(groups_of(f, "groups")),
                  listed(f.get("methods", [])))


def _analysis(name: str, a: dict[str, Any]) -> Analysis:
    methods = listed(a["methods"]) if a.get("methods") else None
    return Analysis(name, a["title"], listed(a["tables"]), methods, listed(a["fractions"]), a["images"],
                    a.get("figure_table", a["tables"][0]))


def _claim_settings(doc: dict[str, Any]) -> ClaimSettings:
    judged = {k: v for k, v in doc["claim_settings"].items() if k in ClaimSettings.__dataclass_fields__}
    return ClaimSettings(**judged, seeds=listed(doc["seeds"]))


def _claim(c: dict[str, Any]) -> Claim:
    """A claim as the config states it (the plan adds its view's facts: :class:`~introspect.config.claim.Claim`)."""
    return Claim(c["name"], c["table"], c["group"], c["a"], c["b"], c["direction"], c.get("margin"), c["family"],
                 c["text"], c.get("part_of"), tuple((p[0], p[1]) for p in listed(c.get("pairs", []))),
                 c.get("from_catalogue"))  # introspect.claims.catalogue.FROM_CATALOGUE
