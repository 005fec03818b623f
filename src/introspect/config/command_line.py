"""What Snakemake passes on to every cluster job's command line: the ``--config`` values and ``--configfile`` paths.

A job of a cluster executor runs Snakemake again with the head's ``--config`` values and config file paths on its
command line, and the SLURM plugin wraps that command in ``sbatch --wrap="..."``: inside those double quotes the
head's own shell expands ``$(...)``, backquotes and ``$VAR`` before SLURM sees the job, whatever quoting Snakemake
applied inside. So a value that reaches that line may not hold a character a shell treats specially within double
quotes (``$``, a backquote, ``"``, ``\\``), a quote that ends Snakemake's own quoting (``'``), or a control
character (a newline ends the command). Everything else (paths, numbers, lists such as ``seeds=[0,1]``) passes.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

UNSAFE = re.compile(r"[$`\"'\\\x00-\x1f\x7f]")


def unsafe_arguments(overrides: Mapping[str, Any] | None, configfiles: Iterable[object] | None) -> list[str]:
    """One line per ``--config`` value (``overrides``: Snakemake's parsed ``--config``; every key and text in it)
    or ``--configfile`` path that a shell would not take literally."""
    problems = []
    for key, text in [*_texts(overrides or {}, ""), *(("--configfile", str(path)) for path in configfiles or ())]:
        if match := UNSAFE.search(text):
            what = "--configfile" if key == "--configfile" else f"--config {key}"
            problems.append(f"{what} {text[:40]!r}: holds {match.group()!r}, which a shell expands or ends a quote "
                            "with when Snakemake passes it to a cluster job (sbatch --wrap); write it without $, "
                            "backquotes, quotes, backslashes or control characters")
    return problems


def _texts(value: Any, at: str) -> Iterator[tuple[str, str]]:
    """(key path, text) of every key and string in a parsed ``--config`` value."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{at}.{key}" if at else str(key)
            yield path, str(key)
            yield from _texts(item, path)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _texts(item, f"{at}[{i}]")
    elif isinstance(value, str):
        yield at, value
