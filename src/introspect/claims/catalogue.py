"""The claims a config tests: its own ``claims:`` plus those of a shared catalogue of the paper's claims
(``claim_settings.catalogue``: ``paper``, the package's ``introspect/claims/catalogues/paper.yaml``, or a YAML file's
path), so that each of the paper's sentences is written
once for every config that tests it. A catalogue claim applies to a config when the config has its table (or
accuracy figure), its group and both of its methods in that group; ``claim_settings.only`` names a subset."""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..config.claim import DIRECTIONS, Claim
from ..config.model import Config, ConfigError
from ..config.schemas import schema_path
from ..config.yaml_input import YamlInputError, read_yaml_file

CATALOGUES = Path(__file__).resolve().parent / "catalogues"

DEFAULTS = {"family": "all", "text": ""}
FROM_CATALOGUE = "from_catalogue"


def config_claims(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The claims a config states: its catalogue's (every one, or those ``only`` names), each tagged with the
    catalogue it comes from, then its own. Which of the catalogue's apply is decided on the typed model
    (:func:`applicable_claims`), once the config is built."""
    settings = config.get("claim_settings", {})
    own = list(config.get("claims", []))
    if not settings.get("catalogue"):
        return own
    catalogue = load_catalogue(settings["catalogue"])
    only = settings.get("only")
    if only is not None:
        unknown = sorted(set(only) - {c["name"] for c in catalogue})
        if unknown:
            raise ConfigError(f"claim_settings.only: {', '.join(unknown)} not in {settings['catalogue']}")
        catalogue = [c for c in catalogue if c["name"] in only]
    # where a catalogue claim came from, for the key its problems name (Claim.catalogue)
    return [{**c, FROM_CATALOGUE: settings["catalogue"]} for c in catalogue] + own


def applicable_claims(config: Config) -> Config:
    """The config with the catalogue's claims it has the cells of (a config cut down from another keeps its
    list, ``only`` included), and all of its own."""
    return replace(config, claims=tuple(c for c in config.claims if c.catalogue is None or applies(config, c)))


def applies(config: Config, claim: Claim) -> bool:
    """Whether ``config`` has the claim's view, group and both methods (not excluded from the group); for a
    similar_pairs claim, the class-similarity figure's panel of its model and method."""
    if claim.direction == "similar_pairs":
        figure = config.figures.get(claim.view)
        return figure is not None and figure.kind == "class_similarity" and any(
            p.model.lower() == claim.group.lower() and p.method == claim.method_a for p in figure.panels)
    view = config.claim_views.get(claim.view)
    group = next((g for g in view.groups if g.label == claim.group), None) if view else None
    methods = [m for m in view.methods if m not in group.exclude] if group else []
    return claim.method_a in methods and claim.method_b in methods


@lru_cache(maxsize=8)
def _read(path: str, mtime: float) -> tuple[dict[str, Any], ...]:
    import jsonschema

    try:
        entries = read_yaml_file(path)
    except YamlInputError as error:
        raise ConfigError(f"claim_settings.catalogue: {error}") from None
    if not isinstance(entries, list):
        raise ConfigError(f"claim_settings.catalogue: {path} is not a YAML list of claims")
    validator = jsonschema.Draft202012Validator(claim_item_schema())
    names = set()
    for i, entry in enumerate(entries):
        for error in validator.iter_errors(entry):
            key = ".".join(map(str, error.absolute_path))
            raise ConfigError(f"{path}: claims[{i}]{'.' + key if key else ''}: {error.message}")
        if entry["name"] in names:
            raise ConfigError(f"{path}: claims[{i}].name: {entry['name']!r} is used by another claim")
        names.add(entry["name"])
    return tuple({**DEFAULTS, **entry} for entry in entries)


def claim_item_schema() -> dict[str, Any]:
    """The schema of one claim (an item of a config's ``claims:``, and of a catalogue)."""
    item = read_yaml_file(schema_path("config"))["properties"]["claims"]["items"]
    item["properties"]["direction"]["enum"] = list(DIRECTIONS)
    return item


def catalogue_path(catalogue: str) -> Path:
    """A packaged catalogue's file (a plain name such as ``paper``), or the path given."""
    if "/" not in catalogue and not catalogue.endswith((".yaml", ".yml")):
        return CATALOGUES / f"{catalogue}.yaml"
    return Path(catalogue)


def load_catalogue(catalogue: str | Path) -> list[dict[str, Any]]:
    """The catalogue's claims, each checked against the schema of a ``claims:`` item, defaults filled."""
    path = catalogue_path(str(catalogue))
    try:
        mtime = Path(path).stat().st_mtime
    except OSError as error:
        raise ConfigError(f"claim_settings.catalogue: cannot read {path} ({one_line(error)})") from None
    return [dict(entry) for entry in _read(str(path), mtime)]


def one_line(error: Exception) -> str:
    return " ".join(str(error).split())
