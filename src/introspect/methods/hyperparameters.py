"""How a method declares its hyper-parameters, and the one check of a value against a declaration.

A leaf module (it imports nothing of ours and no torch): the method dataclasses declare each field's
range with :func:`hp`, and planning checks config values against the same declarations (through the
registries' catalog) without importing the methods.
"""
from __future__ import annotations

import math
import re
from typing import Any

HP_KEY = "hyperparameter"
# Free-text hyper-parameters reach run ids (paths, shell commands), so they must be plain names.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# No '+': table, figure and analysis names are joined unescaped into Snakemake wildcard regexes.
NAME_RULE = ("letters, digits, '_', '.' and '-', starting with a letter or digit, without '..', "
             "at most 64 characters")
_TYPES = {"float": "number", "int": "integer", "bool": "boolean", "str": "string"}
BOUND_SYMBOLS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}

# Upper bounds of the hyper-parameters that scale a loss or size work: far above any useful value, low
# enough that a typo (1e308) is refused at planning instead of overflowing a loss or a path after hours.
MAX_WEIGHT = 1e6
MAX_TEMPERATURE = 1e3
MAX_EPOCHS = 100_000
MAX_STEPS = 1_000_000
MAX_SIDE = 4096
MAX_STAGE = 8


def hp(*, gt: float | None = None, ge: float | None = None, lt: float | None = None,
       le: float | None = None, choices: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Field metadata declaring a hyper-parameter's range or choices, e.g.
    ``temperature: float = field(default=4.0, metadata=hp(gt=0, le=100))``. The type comes from the
    annotation."""
    bounds: dict[str, Any] = {k: v for k, v in {"gt": gt, "ge": ge, "lt": lt, "le": le}.items() if v is not None}
    if choices is not None:
        bounds["choices"] = list(choices)
    return {HP_KEY: bounds}


def field_spec(annotation: Any, metadata: dict[str, Any]) -> dict[str, Any]:
    """The JSON-able spec of one dataclass field: ``{"type": "number", "gt": 0}``."""
    name = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", repr(annotation))
    if name not in _TYPES:
        raise TypeError(f"hyper-parameters must be float, int, bool or str, not {name}")
    return {"type": _TYPES[name], **metadata.get(HP_KEY, {})}


def is_name(name: Any) -> bool:
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None and ".." not in name


def value_problem(value: Any, spec: dict[str, Any]) -> str | None:
    """Why ``value`` does not fit ``spec`` (None if it does). Booleans are not numbers; ints are."""
    kind = spec["type"]
    if kind == "boolean":
        fits = isinstance(value, bool)
    elif kind == "integer":
        fits = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        fits = isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value)
    else:
        fits = isinstance(value, str) and (value in spec["choices"] if "choices" in spec else is_name(value))
    if fits and kind in ("integer", "number"):
        fits = all(_within(value, bound, limit) for bound, limit in spec.items() if bound in BOUND_SYMBOLS)
    return None if fits else f"expected {describe(spec)}, got {shown(value)}"


def describe(spec: dict[str, Any]) -> str:
    """``a number in (0, 1]``, ``an integer >= 1``, ``one of 'grad', 'grad_cam'``..."""
    kind = spec["type"]
    if kind == "boolean":
        return "true or false"
    if kind == "string":
        return ("one of " + ", ".join(map(repr, spec["choices"]))) if "choices" in spec else f"a name ({NAME_RULE})"
    noun = "an integer" if kind == "integer" else "a number"
    low = next(((b, spec[b]) for b in ("gt", "ge") if b in spec), None)
    high = next(((b, spec[b]) for b in ("lt", "le") if b in spec), None)
    if low and high:
        opening, closing = "(" if low[0] == "gt" else "[", ")" if high[0] == "lt" else "]"
        return f"{noun} in {opening}{_limit(low[1])}, {_limit(high[1])}{closing}"
    if low or high:
        bound, limit = low or high
        return f"{noun} {BOUND_SYMBOLS[bound]} {_limit(limit)}"
    return noun


def _limit(limit: float) -> str:
    return str(int(limit)) if float(limit).is_integer() and abs(limit) < 1e16 else f"{limit:g}"


def shown(value: Any) -> str:
    """A value as an error message quotes it (long values cut)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _finite(value: int | float) -> bool:
    try:  # an integer beyond float range (10**400) is not a usable number either
        return math.isfinite(value)
    except OverflowError:
        return False


def _within(value: float, bound: str, limit: float) -> bool:
    return {"gt": value > limit, "ge": value >= limit, "lt": value < limit, "le": value <= limit}[bound]
