"""A config file that says only how it differs from another: ``extends: base.yaml``.

The paper's tables, methods, teachers, figures and claims are written once, in ``config/base.yaml``; each
shipped config (``config.yaml``, ``smoke.yaml``, ``mnist5k.yaml``, ``paper.yaml``) names it with
``extends:`` and gives only what it changes. The merge, applied before validation:

- a mapping merges key by key into the base's mapping (recursively);
- a list or a plain value replaces the base's (a table's ``groups`` or ``methods`` are given whole);
- ``null`` removes the key from the base (``table1: null``: this config has no Table 1).

``extends`` is a path relative to the directory of the file that names it; a base may extend another (at
most :data:`MAX_CHAIN` files, no cycle). Every file is read as data with the limits of
:mod:`introspect.config.yaml_input`; the merged document is then validated like any config.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import InputError
from .yaml_input import YamlInputError, read_yaml_file

EXTENDS = "extends"
MAX_CHAIN = 8
# YTE templating (Snakemake's): a config with these keys asks to be evaluated as code; we never do.
TEMPLATE_KEYS = ("__use_yte__", "__definitions__")


def template_problem(data: dict[str, Any]) -> str | None:
    """Why a config asking to be a YTE template is refused (None: it does not ask)."""
    templated = [key for key in TEMPLATE_KEYS if key in data]
    if not templated:
        return None
    return (f"{templated[0]}: a YTE template (Snakemake would evaluate its expressions as Python); "
            "a config is data: write the values out")


class OverlayError(InputError):
    """A config file or one it extends cannot be read or merged; the message names the file."""


def merge_overlay(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``overlay`` over ``base``: mappings merge, lists and values replace, ``None`` removes the key."""
    merged = dict(base)
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_overlay(merged[key], value)
        else:
            merged[key] = _without_nulls(value)
    return merged


def _without_nulls(value: Any) -> Any:
    """A mapping new to the base: its ``null`` values remove nothing, so they are dropped as well (a
    config reads the same whether or not its base had the key)."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    return value


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The data of a config file with every ``extends`` resolved (not yet validated). Never evaluates
    anything: a YTE-templated file is refused. Every error names the file it was asked for."""
    try:
        return _read(Path(path), chain=())
    except OverlayError as error:
        raise OverlayError(f"{path}: {error}") from None


def resolve_extends(config: dict[str, Any], directory: str | Path, *, chain: Iterable[Path] = ()) -> dict[str, Any]:
    """``config`` over the file its ``extends`` names (relative to ``directory``); ``config`` itself when it
    extends nothing. Used for a config that Snakemake already read (``--configfile``)."""
    if EXTENDS not in config:
        return config
    target = config[EXTENDS]
    if not isinstance(target, str) or not target.strip():
        raise OverlayError(f"{EXTENDS}: must name a config file (a path), not {target!r}")
    rest = {key: value for key, value in config.items() if key != EXTENDS}
    base_path = Path(directory) / target
    try:
        base = _read(base_path, chain=tuple(chain))
    except OverlayError as error:
        raise OverlayError(f"{EXTENDS}: {target}: {error}") from None
    return merge_overlay(base, rest)


def declaring_directory(config: dict[str, Any], files: Iterable[str | Path]) -> Path:
    """The directory of the last of ``files`` (Snakemake's config files, in the order it merged them) that
    names the ``extends`` that ``config`` holds: where that path is relative to. The working directory if
    none does (``--config extends=...``)."""
    target = config.get(EXTENDS)
    for file in reversed([Path(f) for f in files]):
        try:
            data = read_yaml_file(file)
        except YamlInputError:
            continue
        if isinstance(data, dict) and data.get(EXTENDS) == target:
            return file.parent
    return Path(".")


def _read(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    resolved = path.resolve()
    if resolved in chain:
        raise OverlayError("extends itself (a cycle of extends)")
    if len(chain) >= MAX_CHAIN:
        raise OverlayError(f"more than {MAX_CHAIN} config files extend each other")
    try:
        data = read_yaml_file(path)
    except YamlInputError as error:
        raise OverlayError(str(error)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise OverlayError(f"it must hold a mapping of config keys, not a {type(data).__name__}")
    refused = template_problem(data)
    if refused:
        raise OverlayError(refused)
    return resolve_extends(data, path.parent, chain=(*chain, resolved))
