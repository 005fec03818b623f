"""The seeds overlay: a file the project wrote for a later run (``results/<name>/claims_next.yaml``), read as data.

A results directory is shared, so a file in it must never become a config: given to ``snakemake --configfile``,
Snakemake would evaluate a planted ``__use_yte__`` template as Python and take a planted ``results_dir`` or
``data_root``. Instead the config names the file, ``snakemake --config seeds_from=results/<name>/claims_next.yaml``,
and this reader (through the one door: a regular file, no link on its path, bounded YAML of plain types) takes
from it the one thing it may say, ``extra_seeds``: seeds added to cells the config already has (the config's
own checks then refuse a cell it does not have). Any other key, a value of another shape, a seed outside
``0..2**32-1`` or too many seeds is one line naming the file; nothing in it is evaluated.
"""
from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..io import FileRefused
from .yaml_input import YamlInputError, read_yaml_file

SEEDS_FROM = "seeds_from"  # the config key naming the overlay file
ONLY_KEY = "extra_seeds"
MAX_SEED = 2**32 - 1
MAX_SEEDS_PER_CELL = 1000
MAX_CELLS = 10_000
MAX_NAME_CHARS = 200


class SeedsOverlayError(InputError):
    """The overlay file cannot be used; the message is one line naming it."""


def merge_seeds_overlay(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the seeds of the file its ``seeds_from`` names added to its ``extra_seeds`` (and without
    ``seeds_from``, which is no setting of the plan); ``config`` itself when it names none."""
    if SEEDS_FROM not in config:
        return config
    path = config[SEEDS_FROM]
    if not isinstance(path, str) or not path or path.startswith("-"):
        raise SeedsOverlayError(f"{SEEDS_FROM}: expected the path of a claims_next.yaml, got {path!r:.60}")
    seeds = read_seeds_overlay(path)
    merged = {key: value for key, value in config.items() if key != SEEDS_FROM}
    extra = merged.get(ONLY_KEY) or {}
    if not isinstance(extra, dict):
        return merged  # the schema names the config's own malformed extra_seeds
    combined: dict[str, Any] = {view: {group: dict(methods) for group, methods in groups.items()}
                                if isinstance(groups, dict) else groups for view, groups in extra.items()}
    for view, groups in seeds.items():
        for group, methods in groups.items():
            cell_map = combined.setdefault(view, {})
            if not isinstance(cell_map, dict) or not isinstance(cell_map.setdefault(group, {}), dict):
                continue
            for method, values in methods.items():
                have = cell_map[group].get(method) or []
                cell_map[group][method] = list(dict.fromkeys([*have, *values])) if isinstance(have, list) else have
    merged[ONLY_KEY] = combined
    return merged


def read_seeds_overlay(path: str) -> dict[str, dict[str, dict[str, list[int]]]]:
    """view -> group -> method -> seeds, from the overlay file at ``path`` (checked as the module says)."""
    try:
        data = read_yaml_file(path)
    except (YamlInputError, FileRefused) as error:
        raise SeedsOverlayError(f"{SEEDS_FROM} {path}: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or set(data) - {ONLY_KEY}:
        other = sorted(map(str, set(data) - {ONLY_KEY})) if isinstance(data, dict) else [type(data).__name__]
        raise SeedsOverlayError(f"{SEEDS_FROM} {path}: an overlay holds only {ONLY_KEY} (the seeds to add), not "
                                f"{', '.join(repr(k[:40]) for k in other[:3])}: it can change nothing else")
    seeds = data.get(ONLY_KEY) or {}
    cells = 0
    for at, value in _walk(seeds, f"{SEEDS_FROM} {path}: {ONLY_KEY}", depth=0):
        if isinstance(value, list):
            cells += 1
            if cells > MAX_CELLS or len(value) > MAX_SEEDS_PER_CELL:
                raise SeedsOverlayError(f"{at}: more than {MAX_SEEDS_PER_CELL} seeds in a cell "
                                        f"or {MAX_CELLS} cells")
            bad = [s for s in value if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED]
            if bad or len(set(value)) != len(value):
                raise SeedsOverlayError(f"{at}: seeds are distinct integers in 0..{MAX_SEED}"
                                        + (f", not {bad[0]!r:.40}" if bad else ""))
        else:
            raise SeedsOverlayError(f"{at}: expected a list of seeds, got {value!r:.60}")
    return seeds


def _walk(node: Any, at: str, depth: int):
    """(key path, leaf) of view -> group -> method -> seeds; a level of another shape is named."""
    if depth == 3:
        yield at, node
        return
    if not isinstance(node, dict):
        raise SeedsOverlayError(f"{at}: expected a mapping (view -> group -> method -> seeds), got {node!r:.60}")
    for key, child in node.items():
        if not isinstance(key, str) or not key or len(key) > MAX_NAME_CHARS:
            raise SeedsOverlayError(f"{at}: {key!r:.60} is not a name of at most {MAX_NAME_CHARS} characters")
        yield from _walk(child, f"{at}.{key}", depth + 1)
