"""Dataclasses from untrusted JSON: every key known, every value of its annotated type.

Records and specs handed to the CLI are data (a colleague's file, a tampered results folder), so
they are decoded field by field against the dataclass annotations, and any mismatch is one
:class:`~introspect.errors.InputError` naming the key path (``cells[3].run_ids[0]: expected a string``).
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, TypeVar, Union

from ..errors import InputError

T = TypeVar("T")
# Bounds of any list, text and integer in a record or spec: far above what a plan writes (a few thousand runs,
# a paragraph of text), low enough that a tampered file cannot make a job allocate or loop without end.
MAX_ITEMS = 100_000
MAX_TEXT = 100_000
MAX_INT = 2**63 - 1
# The metadata of a dataclass field that is computed where it is used and never written to or read from a file
# (it has a default): encode leaves it out, decode refuses it as an unknown key.
NOT_IN_FILES = {"in_files": False}


def decode(cls: type[T], data: Any, where: str) -> T:
    """An instance of the dataclass ``cls`` from JSON ``data``."""
    if not isinstance(data, dict):
        raise InputError(f"{where or '(top level)'}: expected an object, got {_kind(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.metadata.get("in_files", True)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InputError(f"{where or '(top level)'}: unknown key(s) {', '.join(map(repr, unknown))}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, field in fields.items():
        at = f"{where}.{name}" if where else name
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise InputError(f"{at}: missing")
            continue
        values[name] = _value(hints[name], data[name], at)
    return cls(**values)


def encode(obj: Any) -> Any:
    """A dataclass (and what it holds) as JSON-able data; tuples become lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.metadata.get("in_files", True)}
    if isinstance(obj, (list, tuple)):
        return [encode(v) for v in obj]
    if isinstance(obj, dict):
        return {k: encode(v) for k, v in obj.items()}
    return obj


def _value(hint: Any, value: Any, at: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _value(options[0], value, at)
        # JSON scalars: the narrowest type that fits (an integer stays an int where float is allowed too)
        for option in sorted(options, key=lambda o: {bool: 0, int: 1}.get(o, 2)):
            try:
                return _value(option, value, at)
            except InputError:
                continue
        raise InputError(f"{at}: expected {' or '.join(_name(o) for o in options)}, got {_kind(value)}")
    if origin is Literal:
        if value not in args or isinstance(value, bool) != any(isinstance(a, bool) for a in args):
            raise InputError(f"{at}: expected one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise InputError(f"{at}: expected a list, got {_kind(value)}")
        if len(value) > MAX_ITEMS:
            raise InputError(f"{at}: more than {MAX_ITEMS:,} items")
        item = args[0]
        decoded = [_value(item, v, f"{at}[{i}]") for i, v in enumerate(value)]
        return tuple(decoded) if origin is tuple else decoded
    if origin is dict:
        if not isinstance(value, dict):
            raise InputError(f"{at}: expected an object, got {_kind(value)}")
        if len(value) > MAX_ITEMS:
            raise InputError(f"{at}: more than {MAX_ITEMS:,} keys")
        return {k: _value(args[1], v, f"{at}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return decode(hint, value, at)
    return _scalar(hint, value, at)


def _scalar(hint: Any, value: Any, at: str) -> Any:
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_INT
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str) and len(value) <= MAX_TEXT
    else:  # pragma: no cover - a spec field of a type this decoder does not know is a programming error
        raise TypeError(f"{at}: cannot decode {hint!r}")
    if not ok:
        raise InputError(f"{at}: expected {_name(hint)}, got {_kind(value)}")
    return value


def _name(hint: Any) -> str:
    return {bool: "true or false", int: f"an integer of at most {MAX_INT:,} in size", float: "a finite number",
            str: f"a string of at most {MAX_TEXT:,} characters"}.get(
        hint, getattr(hint, "__name__", str(hint)))


def _kind(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"
