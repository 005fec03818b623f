"""The claims' checks, read on the typed model (part of the one pass of
:func:`introspect.config.model_checks.model_checks`): claims name a table or accuracy figure, one of its groups
and two of its methods; a similar_pairs claim a class-similarity figure's panel. Each problem starts with its key
path: ``claims[i]`` for the config's own claims, the claim's name and catalogue for a catalogue's."""
from __future__ import annotations

from .claim import Claim
from .model import Config


def claim_problems(config: Config) -> list[str]:
    views = config.claim_views
    problems, names, own = [], set(), 0
    for claim in config.claims:
        if claim.catalogue is not None:
            where = f"claim_settings.catalogue ({claim.name} in {claim.catalogue})"
        else:
            where, own = f"claims[{own}]", own + 1
        if claim.name in names:
            problems.append(f"{where}.name: {claim.name!r} is used by another claim")
        names.add(claim.name)
        problems += _shape_problems(claim, where, names)
        if claim.direction == "similar_pairs":
            problems += _similarity_problems(config, claim, where)
            continue
        if claim.method_a == claim.method_b:
            problems.append(f"{where}.b: a claim compares two different methods")
        view = views.get(claim.view)
        if view is None and (config.has("tables", claim.view) or config.has("figures", claim.view)) \
                and claim.view not in config.figures:
            continue  # a view the model could not hold: the schema named its problem
        if view is None:
            problems.append(f"{where}.table: {claim.view!r} is neither a table nor an accuracy figure of this "
                            f"config (known: {', '.join(sorted(views))})")
            continue
        group = next((g for g in view.groups if g.label == claim.group), None)
        if group is None:
            labels = ", ".join(g.label for g in view.groups)
            problems.append(f"{where}.group: {claim.group!r} is not a group of {claim.view} (its groups: {labels})")
            continue
        methods = [m for m in view.methods if m not in group.exclude]
        problems += [f"{where}.{key}: {label!r} is not a method of {claim.view} group {claim.group!r}"
                     for key, label in (("a", claim.method_a), ("b", claim.method_b)) if label not in methods]
    members: dict[str, set[tuple[str, str, str, str]]] = {}
    for claim in (c for c in config.claims if c.part_of):
        members.setdefault(claim.part_of, set()).add((claim.view, claim.group, claim.method_a, claim.family))
    problems += [f"claims: the members of majority claim {name!r} must share table, group, a and family"
                 for name, keys in members.items() if len(keys) > 1]
    return problems


def _shape_problems(claim: Claim, where: str, names: set[str]) -> list[str]:
    """What a claim's direction needs: a margin, pairs, membership of a majority only for a greater claim."""
    problems = []
    if (claim.direction == "equivalent") != (claim.margin is not None):
        problems.append(f"{where}.margin: an equivalent claim needs a margin, other claims have none")
    if claim.part_of is not None and claim.direction != "greater":
        problems.append(f"{where}.part_of: only a greater claim can be a member of a majority claim")
    if claim.part_of is not None and (claim.part_of in names or claim.part_of == claim.name):
        problems.append(f"{where}.part_of: {claim.part_of!r} is the name of a claim, not of a majority")
    if (claim.direction == "similar_pairs") != bool(claim.pairs):
        problems.append(f"{where}.pairs: a similar_pairs claim needs pairs, other claims have none")
    return problems


def _similarity_problems(config: Config, claim: Claim, where: str) -> list[str]:
    figure = config.figures.get(claim.view)
    if figure is None and config.has("figures", claim.view):
        return []  # a figure the model could not hold: the schema named its problem
    if figure is None or figure.kind != "class_similarity":
        return [f"{where}.table: {claim.view!r} is not a class_similarity figure of this config"]
    if not any(p.model.lower() == claim.group.lower() and p.method == claim.method_a for p in figure.panels):
        return [f"{where}.group: {claim.view} has no panel of model {claim.group!r} and method {claim.method_a!r}"]
    return [f"{where}.pairs: {list(pair)} is not a pair of two different classes" for pair in claim.pairs
            if pair[0] == pair[1]]
