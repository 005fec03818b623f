"""The one HTML page builder (tables, the student analysis, claims): a page shell with a style sheet
for the tables in Snakemake's report.

Every piece of text is escaped here (:func:`.escape.html`); callers pass plain text, never markup.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .escape import html as _text

STYLE = """
body { font-family: "DejaVu Sans", system-ui, sans-serif; color: #222; margin: 1.2em; max-width: 80em; }
h2 { font-size: 1.15em; margin: 0 0 .6em; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: .9em; }
caption { caption-side: top; text-align: left; font-weight: bold; padding: 0 0 .4em; }
th, td { border: 1px solid #c4c9d4; padding: .3em .65em; vertical-align: top; }
thead th { background: #2f4b7c; color: #fff; text-align: center; }
tbody tr:nth-child(even) { background: #eef2f8; }
tbody th { text-align: left; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.text { text-align: left; white-space: normal; min-width: 14em; max-width: 30em; }
td.best { font-weight: bold; }
td small { display: block; color: #666; font-weight: normal; }
p, ul { font-size: .88em; max-width: 60em; }
"""


PROSE = re.compile(r"[^\W\d_]{3,}")  # a word of three letters or more
PROSE_WORDS = 5  # a cell with this many words is prose (a claim's reason), not a number with its marks


@dataclass
class HtmlCell:
    """A table entry: its text, bold when it is the best of its row group, an optional second line."""

    text: str
    best: bool = False
    note: str = ""


def html_table(header: list[str], rows: list[list[str | HtmlCell]], *, caption: str = "",
               label_columns: int = 1) -> str:
    """A table whose first ``label_columns`` columns are row labels (left) and the rest numbers (right)."""
    head = "".join(f"<th scope='col'>{_text(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_entry(value, i < label_columns) for i, value in enumerate(row)) + "</tr>\n"
                   for row in rows)
    title = f"<caption>{_text(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>"


def html_page(title: str, *, tables: list[str], paragraphs: Sequence[str] = (),
              notes: Sequence[str] = ()) -> str:
    """A standalone page: the title, paragraphs, the ``tables`` (from :func:`html_table`), a notes list."""
    text = "".join(f"<p>{_text(p)}</p>" for p in paragraphs if p)
    items = "".join(f"<li>{_text(n)}</li>" for n in notes)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{_text(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body><h2>{_text(title)}</h2>{text}\n{''.join(tables)}\n"
            f"<ul>{items}</ul></body></html>\n")


def _entry(value: str | HtmlCell, is_label: bool) -> str:
    if is_label:
        return f"<th scope='row'>{_text(str(value))}</th>"
    cell = value if isinstance(value, HtmlCell) else HtmlCell(str(value))
    note = f"<small>{_text(cell.note)}</small>" if cell.note else ""
    # a number (with its interval, marks and flags) stays on one line; a sentence (a claim's reason) wraps, so
    # one long cell cannot push the table's other columns (the verdicts) off a 1400-pixel screen
    kind = "text" if len(PROSE.findall(cell.text)) >= PROSE_WORDS else "num"
    classes = f"{kind} best" if cell.best else kind
    return f"<td class='{classes}'>{_text(cell.text)}{note}</td>"
