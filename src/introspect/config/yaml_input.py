"""YAML text from someone else, read as data with limits: a config (or any YAML the package reads)
never runs code, never hangs the parser or exhausts memory, and every problem is one line.

- size: at most :data:`MAX_BYTES` bytes;
- encoding: UTF-8 only (a UTF-16 file or stray bytes are named, with the fix);
- only YAML's plain types (``safe_load``'s constructors: no Python objects);
- aliases: the document as expanded (every alias counted as the copy a reader would make) has at most
  :data:`MAX_NODES` nodes, so an alias bomb ("billion laughs") is refused before it is expanded; a
  recursive alias is refused;
- nesting at most :data:`MAX_DEPTH` levels; a key given twice in one mapping is refused (YAML keeps
  the last one silently).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError

MAX_BYTES = 1_000_000
MAX_NODES = 200_000
MAX_DEPTH = 64


class YamlInputError(InputError):
    """A YAML text cannot be read as data within the limits; the message is one line."""


def read_yaml_file(path: str | Path) -> Any:
    """The data of a YAML file, within the limits above, read through the one door (a regular file: a FIFO
    or device is refused instead of hanging the reader; no symlink on its path below the working directory)."""
    from ..io import FileMissing, FileRefused, read_bytes

    try:
        raw = read_bytes(path, "config")
    except FileMissing:
        raise YamlInputError("does not exist: cannot read it") from None
    except FileRefused as error:
        raise YamlInputError(f"cannot read it: {str(error).removeprefix(f'{path}: ')}") from None
    return read_yaml_bytes(raw)


def read_yaml_bytes(raw: bytes) -> Any:
    if len(raw) > MAX_BYTES:
        raise YamlInputError(f"larger than {MAX_BYTES:,} bytes: a config is a few kilobytes of text")
    return read_yaml_text(_decoded(raw))


def read_yaml_text(text: str) -> Any:
    if len(text) > MAX_BYTES:
        raise YamlInputError(f"larger than {MAX_BYTES:,} characters: a config is a few kilobytes of text")
    if _not_text(text):
        line = text[:min(i for i, c in enumerate(text) if _not_text(c))].count("\n") + 1
        raise YamlInputError(f"line {line}: a NUL or lone surrogate character is not text")
    try:
        loader = _LimitedLoader(text)
    except yaml.YAMLError as error:
        raise YamlInputError(f"not valid YAML: {' '.join(str(error).split())}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        raise YamlInputError(f"not valid YAML: {_one_line(error)}") from None
    except yaml.YAMLError as error:
        raise YamlInputError(f"not valid YAML: {' '.join(str(error).split())}") from None
    except RecursionError:  # the parser recurses per level: a flow sequence hundreds deep in a few bytes
        raise YamlInputError(f"nested deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()


def check_data_size(data: Any) -> None:
    """The same limits for data that did not come through :func:`read_yaml_text` (e.g. a config that
    Snakemake parsed): shared sub-objects are counted once per reference, without expanding them."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any, depth: int) -> int:
        if not isinstance(node, (dict, list)):
            if isinstance(node, str) and _not_text(node):
                raise YamlInputError("a NUL or lone surrogate character is not text")
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if depth > MAX_DEPTH or key in active:
            raise YamlInputError(f"nested deeper than {MAX_DEPTH} levels, or recursive")
        active.add(key)
        total = 1
        if isinstance(node, dict) and any(isinstance(k, str) and _not_text(k) for k in node):
            raise YamlInputError("a key holds a NUL or lone surrogate character, which is not text")
        for child in (node.values() if isinstance(node, dict) else node):
            total += size(child, depth + 1)
            if total > MAX_NODES:
                raise YamlInputError(f"more than {MAX_NODES:,} values once shared parts are expanded: "
                                     "an alias bomb, or not a config")
        active.discard(key)
        sizes[key] = total
        return total

    size(data, 0)


def _decoded(raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(raw) > 1 and b"\x00" in raw[:2]):
        raise YamlInputError("UTF-16 text; save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise YamlInputError(f"not UTF-8 text (byte 0x{raw[error.start]:02x} on line {line}); "
                             "save it as UTF-8") from None


def _not_text(text: str) -> bool:
    """NUL, or a lone surrogate (which no output format can encode)."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _one_line(error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    what = " ".join(filter(None, [error.context, error.problem]))
    return where + " ".join(what.split())


def _check_size(root: yaml.Node) -> None:
    """Count the nodes of the expanded document (an alias counts as its whole target), without
    expanding it: each node's expanded size is computed once."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if depth > MAX_DEPTH:
            raise YamlInputError(f"nested deeper than {MAX_DEPTH} levels (line {node.start_mark.line + 1})")
        if key in active:
            raise YamlInputError(f"a recursive alias (line {node.start_mark.line + 1})")
        active.add(key)
        if isinstance(node, yaml.ScalarNode) and _not_text(node.value):  # an escape such as "\\ud800" or "\\0"
            raise YamlInputError(f"line {node.start_mark.line + 1}: a NUL or lone surrogate character is not text")
        children = node.value if isinstance(node, yaml.SequenceNode) else (
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else [])
        total = 1
        for child in children:
            total += size(child, depth + 1)
            if total > MAX_NODES:
                raise YamlInputError(f"more than {MAX_NODES:,} values once its aliases are expanded "
                                     f"(line {node.start_mark.line + 1}): an alias bomb, or not a config")
        active.discard(key)
        sizes[key] = total
        return total

    size(root, 0)


class _LimitedLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):  # its own keys: merged ones ('<<') may be overridden
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: the base constructor names it
                    continue
                if duplicate:
                    raise YamlInputError(f"line {key_node.start_mark.line + 1}: key {key!r} is given twice "
                                         "in one mapping")
        return super().construct_mapping(node, deep)


_LimitedLoader.add_constructor("tag:yaml.org,2002:map", _LimitedLoader.construct_yaml_map)
