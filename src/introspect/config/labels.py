"""Labels compared as a reader sees them: two method or group labels that render alike are one label.

A table's columns, a figure's legend and a claim's cells are found by label, and a reader tells them apart by
eye. ``CE`` beside a Cyrillic ``СЕ``, or a label beside its NFKC twin (a fullwidth ``ＣＥ``, a ligature, a
composed and a decomposed accent), would be two columns that render identically. :func:`skeleton` folds a label
to what it looks like (Unicode NFKC, then the Latin look-alikes of Cyrillic and Greek letters, default-ignorable
characters such as zero-width joiners removed, case kept: ``ce`` and ``CE`` look different), and
:func:`lookalike_problems` refuses two labels of one namespace with the same skeleton (the config's method labels,
each view's group labels: :func:`introspect.config.model_checks.label_problems`).
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable

# Cyrillic and Greek letters drawn like Latin ones in common fonts (a subset of Unicode's confusables.txt:
# the letters, not the symbols, since labels are words).
_LOOKALIKES = str.maketrans({
    **dict(zip("АВЕКМНОРСТХУЅІЈаеорсухѕіјԁԛԝ", "ABEKMHOPCTXYSIJaeopcyxsijdqw")),
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧοινρχ", "ABEZHIKMNOPTYXoivpx")),
})


def skeleton(label: str) -> str:
    """What ``label`` looks like: NFKC, look-alike letters as their Latin twins, invisible characters removed."""
    text = unicodedata.normalize("NFKC", label).translate(_LOOKALIKES)
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def lookalike_problems(labels: Iterable[str], where: str) -> list[str]:
    """One line per label that looks like an earlier one of ``labels`` (e.g. a config's method labels)."""
    seen: dict[str, str] = {}
    problems = []
    for label in labels:
        if not isinstance(label, str):
            continue
        key = skeleton(label)
        if key in seen and seen[key] != label:
            problems.append(f"{where}: {label!r} looks like {seen[key]!r} ({_difference(label, seen[key])}); "
                            "two labels that render alike would be two columns no reader can tell apart")
        seen.setdefault(key, label)
    return problems


def _difference(a: str, b: str) -> str:
    """The first differing characters, named (so the message says what cannot be seen)."""
    for x, y in zip(a, b):
        if x != y:
            return f"{unicodedata.name(x, hex(ord(x)))} where the other has {unicodedata.name(y, hex(ord(y)))}"
    return "the same characters once normalised"
