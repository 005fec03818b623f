"""Config and result text made inert for each format it is rendered in.

Titles, notes, method and group labels, reported-results sources and claim quotations come from
configs and files that may have been written by someone else (a shared results directory, a config
copied from a colleague). Every renderer passes such text through the function of its format here;
none of them builds markup from it. Each function takes any value and returns a one-line string
(``mathtext`` keeps line breaks, ``csv_frame`` maps a whole table).
"""
from __future__ import annotations

import html as _html
import json
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

_WHITESPACE = re.compile(r"\s+")
# CommonMark lets a backslash escape any ASCII punctuation; these are the ones that start inline
# markup anywhere in a line (emphasis, code, links and images, raw HTML and autolinks, table columns,
# headings' closing #s, strikethrough, entities). Parentheses, braces and "!" only act after an
# unescaped "]" or "[", so they are left as they are and labels such as LE(Grad-CAM) stay readable.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&])")
# At the start of a line (a list item's or a heading's text) these start a block: a list, a
# blockquote, a setext underline or an ordered list ("1." / "1)").
_MARKDOWN_BLOCK_START = re.compile(r"^([-+=])|^(\d+)([.)])")
# reStructuredText: a backslash makes any character literal, so every non-alphanumeric ASCII
# character is escaped; directives (``.. raw::``), roles, references and standalone URIs
# (``javascript:...``) then never form.
_RST_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")
# A line of four or more equal punctuation characters is a transition even when escaped; after
# escaping only a text of backslashes gives one, so it gets a leading escaped space (docutils drops it).
_RST_TRANSITION = re.compile(r"\\{4,}")
# A spreadsheet evaluates a cell beginning with one of these as a formula (=HYPERLINK(...)).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?|[+-]?(inf|nan)", re.IGNORECASE)
# Snakemake writes every params value of a job whose output is in the report, unescaped, into a
# <script> element of report.html, where "</script>" would end the element. So no "<" may travel in
# those params: a caption carries its escaped "\<" as this marker (rst() never outputs it, as it
# escapes every "&" and ";"), which the caption templates turn back with
# ``{{ snakemake.params.caption|replace("&lt;", "\\<") }}``.
RST_PARAM_LT = "&lt;"


def one_line(value: object) -> str:
    """The text of ``value`` with every run of whitespace (newlines included) as one space, and any
    other character that is not printable (a terminal escape, a bidi override, NUL) as U+FFFD, so that
    no terminal or viewer acts on it and the reader sees that something was there. The CLI prints every
    error line through it."""
    text = _WHITESPACE.sub(" ", str(value)).strip()
    return text if text.isprintable() else "".join(c if c.isprintable() else "\ufffd" for c in text)


def terminal_text(value: object) -> str:
    """Text for a terminal, shown as written: its line breaks and spaces kept (aligned columns stay aligned),
    a tab as a space, and every other character that is not printable (an escape sequence's ESC, a carriage
    return, a bidi override, NUL) as U+FFFD, so that the terminal acts on none of it."""
    lines = str(value).replace("\t", " ").split("\n")
    return "\n".join(line if line.isprintable() else "".join(c if c.isprintable() else "\ufffd" for c in line)
                     for line in lines)


def markdown(value: object) -> str:
    """Text for a Markdown paragraph or table cell: shown literally, never as markup or a column break."""
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", one_line(value))
    return _MARKDOWN_BLOCK_START.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", text)


def rst(value: object) -> str:
    """Text for a reStructuredText paragraph (Snakemake's report captions, rendered by docutils)."""
    text = _RST_SPECIAL.sub(r"\\\1", one_line(value))
    return "\\ " + text if _RST_TRANSITION.fullmatch(text) else text


def rst_param(value: object) -> str:
    """:func:`rst` for a caption passed to a report template through a rule's params (see RST_PARAM_LT)."""
    return rst(value).replace("\\<", RST_PARAM_LT)


def json_param(value: object) -> str:
    """JSON text for a rule's params: the same data, with "<" written as the JSON escape \\u003c so
    that it can sit in report.html's <script> element (see RST_PARAM_LT)."""
    return json.dumps(value).replace("<", "\\u003c")


def html(value: object) -> str:
    """Text for an HTML element or attribute value, on one line, control and bidi characters shown as U+FFFD
    (a right-to-left override would reorder what follows it on the page)."""
    return _html.escape(one_line(value), quote=True)


def latex(value: object) -> str:
    """Text for LaTeX: special characters as commands, non-ASCII as LaTeX macros."""
    from pylatexenc.latexencode import unicode_to_latex

    return unicode_to_latex(one_line(value))


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: on one line without control or bidi characters (:func:`one_line`),
    and a string that would start a formula gets a leading apostrophe (numbers, including negative ones, are
    left as they are). Non-strings pass unchanged."""
    if not isinstance(value, str):
        return value
    value = one_line(value)
    if value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value.strip()):
        return "'" + value
    return value


def csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names (a header is a cell to a spreadsheet) are
    :func:`csv_cell`, for ``to_csv``: every CSV the analysis writes goes through this."""
    out = frame.copy()
    for column in out.columns:  # text may sit in object or string columns; numbers map to themselves
        out[column] = out[column].map(csv_cell)
    out.columns = [csv_cell(column) for column in out.columns]
    return out


def mathtext(value: object) -> str:
    """Text for matplotlib (titles, labels, tick labels): a ``$`` would start mathtext, so each is
    escaped; matplotlib shows ``\\$`` as a literal dollar and never parses text without an unescaped one.
    Line breaks stay (a long title wraps); other control and bidi characters are shown as U+FFFD."""
    lines = [one_line(line) for line in str(value).split("\n")]
    return "\n".join(lines).replace("$", r"\$")
