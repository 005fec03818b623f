"""Config text is inert in every format it is rendered in (checked by the renderers' own parsers)."""
import csv
import io

import pytest

from introspect.analysis import escape

HOSTILE = [
    "<script>alert(1)</script>",
    "a | b | c",
    "=HYPERLINK(\"http://x\", \"y\")",
    ".. raw:: html\n\n   <b>x</b>",
    ".. include:: /etc/hostname",
    "`javascript:alert(1) <javascript:alert(1)>`_",
    "javascript:alert(1)",
    "**bold** _it_ [link](javascript:alert(1)) ![img](x)",
    "line one\nline two\r\n# heading",
    "-5 minus =1+2 @SUM(A1)",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_rst_renders_as_the_literal_text(text):
    from docutils.core import publish_parts

    settings = {"raw_enabled": True, "file_insertion_enabled": True, "report_level": 5}
    body = publish_parts(escape.rst(text), writer_name="html", settings_overrides=settings)["body"]
    assert "<script" not in body and "<b>" not in body and "<a " not in body
    assert "system-message" not in body
    import re
    from html import unescape

    shown = unescape(re.sub(r"<[^>]+>", "", body)).strip()
    assert shown == escape.one_line(text)


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_cell_adds_no_column_and_no_markup(text):
    from markdown_it import MarkdownIt

    row = f"| {escape.markdown(text)} | x |"
    rendered = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(f"| a | b |\n|---|---|\n{row}\n")
    assert rendered.count("<td>") == 2
    assert "<script" not in rendered and "<a " not in rendered and "<img" not in rendered
    assert "<strong>" not in rendered and "<em>" not in rendered


@pytest.mark.parametrize("text", HOSTILE)
def test_csv_cell_never_starts_a_formula(text):
    buffer = io.StringIO()
    csv.writer(buffer).writerow([escape.csv_cell(text), escape.csv_cell(-1.5), escape.csv_cell("-2.5")])
    cell, number, negative = next(csv.reader(io.StringIO(buffer.getvalue())))
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert number == "-1.5" and negative == "-2.5"


def test_html_and_latex_escape_markup():
    assert escape.html("<a href='x'>") == "&lt;a href=&#x27;x&#x27;&gt;"
    assert escape.latex("50% & $x_1$ \\input{/etc/passwd}") .count("\\input{") == 0
