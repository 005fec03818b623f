"""The claims' checks (part of :func:`introspect.config.validate.config_problems`): claims name a table or
accuracy figure, one of its groups and two of its methods. Each problem starts with its key path. (The other
checks of views that read other views read the typed model: :mod:`introspect.config.model_checks`.)"""
from __future__ import annotations

from typing import Any


def similarity_panel(config: dict[str, Any], claim: dict[str, Any]) -> dict[str, Any] | None:
    """The panel of a class-similarity figure a similar_pairs claim reads: the one of model ``group`` (any
    case) and method ``a``."""
    figure = config.get("figures", {}).get(claim["table"])
    if not figure or figure.get("kind") != "class_similarity":
        return None
    return next((p for p in figure.get("panels", []) if p["model"].lower() == claim["group"].lower()
                 and p["method"] == claim["a"]), None)


def _similarity_problems(config: dict[str, Any], claim: dict[str, Any], where: str) -> list[str]:
    figure = config.get("figures", {}).get(claim["table"])
    if not figure or figure.get("kind") != "class_similarity":
        return [f"{where}.table: {claim['table']!r} is not a class_similarity figure of this config"]
    if similarity_panel(config, claim) is None:
        return [f"{where}.group: {claim['table']} has no panel of model {claim['group']!r} and method {claim['a']!r}"]
    return [f"{where}.pairs: {pair} is not a pair of two different classes" for pair in claim["pairs"]
            if pair[0] == pair[1]]


def claim_problems(config: dict[str, Any]) -> list[str]:
    views = {**{n: f for n, f in config["figures"].items() if f["kind"] == "accuracy"}, **config["tables"]}
    problems, names, own = [], set(), 0
    for claim in config["claims"]:
        if "from_catalogue" in claim:  # introspect.claims.catalogue.FROM_CATALOGUE
            where = f"claim_settings.catalogue ({claim['name']} in {claim['from_catalogue']})"
        else:
            where, own = f"claims[{own}]", own + 1
        if claim["name"] in names:
            problems.append(f"{where}.name: {claim['name']!r} is used by another claim")
        names.add(claim["name"])
        if (claim["direction"] == "equivalent") != ("margin" in claim):
            problems.append(f"{where}.margin: an equivalent claim needs a margin, other claims have none")
        if "part_of" in claim and claim["direction"] != "greater":
            problems.append(f"{where}.part_of: only a greater claim can be a member of a majority claim")
        if claim.get("part_of") in names or claim.get("part_of") == claim["name"]:
            problems.append(f"{where}.part_of: {claim['part_of']!r} is the name of a claim, not of a majority")
        if (claim["direction"] == "similar_pairs") != bool(claim.get("pairs")):
            problems.append(f"{where}.pairs: a similar_pairs claim needs pairs, other claims have none")
        if claim["direction"] == "similar_pairs":
            problems += _similarity_problems(config, claim, where)
            continue
        if claim["a"] == claim["b"]:
            problems.append(f"{where}.b: a claim compares two different methods")
        view = views.get(claim["table"])
        if view is None:
            problems.append(f"{where}.table: {claim['table']!r} is neither a table nor an accuracy figure of this "
                            f"config (known: {', '.join(sorted(views))})")
            continue
        group = next((g for g in view.get("groups", []) if g["label"] == claim["group"]), None)
        if group is None:
            labels = ", ".join(g["label"] for g in view.get("groups", []))
            problems.append(f"{where}.group: {claim['group']!r} is not a group of {claim['table']} "
                            f"(its groups: {labels})")
            continue
        methods = [m for m in view.get("methods", []) if m not in group.get("exclude", [])]
        problems += [f"{where}.{key}: {claim[key]!r} is not a method of {claim['table']} group {claim['group']!r}"
                     for key in ("a", "b") if claim[key] not in methods]
    members: dict[str, set[tuple[str, str, str, str]]] = {}
    for claim in (c for c in config["claims"] if c.get("part_of")):
        members.setdefault(claim["part_of"], set()).add((claim["table"], claim["group"], claim["a"], claim["family"]))
    problems += [f"claims: the members of majority claim {name!r} must share table, group, a and family"
                 for name, keys in members.items() if len(keys) > 1]
    return problems
