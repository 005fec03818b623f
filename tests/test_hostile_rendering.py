"""Config and result text is inert wherever it is rendered (issue 19, items 2 and 11): Markdown and CSV
of every table and analysis, matplotlib text, the reStructuredText captions and Snakemake's HTML report.
Every check reads the output back with the format's own parser (markdown-it, csv, docutils, html.parser,
matplotlib), never by looking for the escaping characters."""
from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from introspect.analysis import escape
from introspect.analysis.tables import write_table
from introspect.runs.record import ResultsLayout

ROOT = Path(__file__).resolve().parents[1]
REPORTED = ROOT / "config" / "reported_results.csv"

METHOD = "=HYPERLINK(\"http://evil.example\",\"x\") <script>alert('m')</script> | $\\alpha$ [l](javascript:alert(1))"
GROUP = "@SUM(1) G <script>alert('g')</script> | .. include:: /etc/hostname"
SOURCE = "=HYPERLINK(\"http://evil.example\") | <script>alert('s')</script> [l](javascript:alert(1))"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Every ASCII punctuation character, a letter, a digit, a space, a newline, a non-ASCII letter and
# three characters a terminal or viewer would act on (ESC, a bidi override, NUL): what any markup of
# these formats is made of.
TEXT = st.text(st.sampled_from([chr(c) for c in range(33, 127) if not chr(c).isalnum()]
                               + list("aZ1 \né\x1b\u202e\x00")), max_size=30)


def markdown_html(md: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(md)


def shown(html: str) -> str:
    """The text a browser shows of ``html`` (tags removed, entities decoded)."""
    return unescape(re.sub(r"<[^>]+>", "", html))


def tags(html: str) -> set[str]:
    return set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", html))


# ---------------------------------------------------------------- the escaping functions, any text

@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_markdown_text_shows_literally_in_a_paragraph_a_list_a_heading_and_a_table_cell(text):
    expected = escape.one_line(text)
    text_md = escape.markdown(text)
    assert text_md.isprintable()  # no terminal escape or bidi override reaches a .md file
    for md, allowed in ((text_md, {"p"}), (f"- {text_md}", {"ul", "li"}), (f"# {text_md}", {"h1"})):
        html = markdown_html(md)
        if expected:
            assert tags(html) <= allowed, (md, html)
            assert shown(html).strip() == expected, (md, html)
    html = markdown_html(f"| a | b |\n|---|---|\n| {text_md} | x |\n")
    assert html.count("<td>") == 2 and tags(html) <= {"table", "thead", "tbody", "tr", "th", "td"}, html
    assert shown(re.search(r"<td>(.*?)</td>", html, re.S)[1]).strip() == expected


class Snakemake:
    """What a report caption template sees (snakemake.params), as Snakemake's report passes it."""

    def __init__(self, **params):
        self.params = SimpleNamespace(**params)


def render_caption(template: str, **params) -> str:
    """A caption file of workflow/report rendered as `snakemake --report` does: Jinja (Snakemake's
    settings), then docutils to HTML with raw and include directives on (their defaults)."""
    from docutils.core import publish_parts
    from jinja2 import Environment

    text = (ROOT / "workflow" / "report" / template).read_text()
    rst = Environment(trim_blocks=True, lstrip_blocks=True).from_string(text).render(snakemake=Snakemake(**params))
    return publish_parts(rst, writer="html", settings_overrides={"report_level": 5})["body"]


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_a_caption_param_shows_literally_in_the_report_template_and_carries_no_less_than(text):
    caption = escape.rst_param(text)
    assert "<" not in caption and caption.isprintable()  # params go into a <script> element of report.html
    body = render_caption("table.rst", caption=caption)
    first = re.match(r"\s*<p>(.*?)</p>", body, re.S)
    expected = escape.one_line(text)
    if expected:
        assert first and shown(first[1]) == expected, (caption, body)
        assert tags(first[1]) == set(), body


@pytest.mark.parametrize("template", ["analysis.rst", "analysis_pairs.rst"])
def test_the_analysis_captions_show_the_title_literally(template, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-MARKER")
    title = f".. include:: {secret}\n\n.. raw:: html\n\n   <script>alert(1)</script>"
    body = render_caption(template, title=escape.rst_param(title))
    assert "SECRET-MARKER" not in body and "<script" not in body
    assert shown(body).startswith(escape.one_line(title))


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | TEXT,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                    max_leaves=10))
def test_json_params_are_the_same_data_without_a_less_than(value):
    text = escape.json_param(value)
    assert "<" not in text and json.loads(text) == value


@pytest.mark.parametrize("text", ["$x$", "costs $5 and $6", "\\$ $\\undefinedcommand{$", "a $$ b", METHOD])
def test_matplotlib_shows_escaped_text_literally(text):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure()
    try:
        escaped = figure.text(0.1, 0.5, escape.mathtext(text))
        literal = figure.text(0.1, 0.2, text, parse_math=False)  # matplotlib's own "no mathtext"
        figure.canvas.draw()  # an unescaped "$\undefinedcommand{$" raises here
        renderer = figure.canvas.get_renderer()
        assert escaped.get_window_extent(renderer).width == literal.get_window_extent(renderer).width
    finally:
        plt.close(figure)


def formula_cells(text: str) -> list[str]:
    """The cells of a CSV that a spreadsheet would evaluate (text starting a formula; numbers are fine)."""
    def is_number(cell: str) -> bool:
        try:
            float(cell)
        except ValueError:
            return False
        return True

    return [cell for row in csv.reader(io.StringIO(text)) for cell in row
            if cell.startswith(FORMULA_START) and not is_number(cell)]


def test_csv_frames_start_no_formula_and_keep_numbers_and_text():
    frame = pd.DataFrame({"label": [METHOD, GROUP, "-1.5", "plain"], "value": [-1.25, 2.0, math.nan, 4.5],
                          "n": [1, 2, 3, 4], "best": [True, False, True, False]})
    text = escape.csv_frame(frame).to_csv(index=False, float_format="%.4f")
    assert formula_cells(text) == []
    back = pd.read_csv(io.StringIO(text), keep_default_na=False)
    assert [cell.removeprefix("'") for cell in back["label"].astype(str)] == [METHOD, GROUP, "-1.5", "plain"]
    numbers = frame.drop(columns="label")  # written exactly as pandas writes them
    assert escape.csv_frame(numbers).to_csv(index=False, float_format="%.4f") == numbers.to_csv(
        index=False, float_format="%.4f")


# ---------------------------------------------------------------- tables, analyses and figures

def markdown_tables(md: str) -> list[tuple[int, list[int]]]:
    """Per Markdown table of ``md``: the header's cell count and each body row's."""
    html = markdown_html(md)
    out = []
    for table in re.findall(r"<table>(.*?)</table>", html, re.S):
        head, _, body = table.partition("</thead>")
        cells = [len(re.findall(r"<td[\s>]", row)) for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]
        out.append((len(re.findall(r"<th[\s>]", head)), cells))
    return out


def assert_inert_markdown(md: str, *visible: str) -> None:
    """Every table of ``md`` keeps its columns, nothing is a script, link or image, and each of
    ``visible`` reads as written."""
    tables = markdown_tables(md)
    assert tables, md
    for header, rows in tables:
        assert rows and all(n == header for n in rows), (header, rows)
    html = markdown_html(md)
    assert not tags(html) & {"script", "a", "img", "iframe", "del", "s"}, tags(html)
    text = shown(html)
    for piece in visible:
        assert escape.one_line(piece) in text, piece


def hostile_table(results_dir: Path):
    """Table 2's synthetic runs (test_tables.make_runs), its ResNet8 group and LS method relabelled
    with hostile text, the title too, and Table 3's other implementations shown."""
    from dataclasses import replace

    from test_tables import make_runs

    spec = make_runs(results_dir)
    cells = [replace(c, group=c.group.replace("ResNet8", GROUP), method=c.method.replace("LS", METHOD))
             for c in spec.cells]
    return replace(spec, title=f"T {METHOD}", other_implementations=True, paper_table=3, cells=cells,
                   methods=[m.replace("LS", METHOD) for m in spec.methods])


def hostile_reported(path: Path) -> Path:
    """reported_results.csv with one more Table 3 row quoted from another implementation, whose
    source is hostile."""
    text = REPORTED.read_text()
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([3, "mnist", "mlp1024", METHOD, "test_err", 1.5, "", SOURCE])
    path.write_text(text + ("" if text.endswith("\n") else "\n") + buffer.getvalue())
    return path


def test_a_table_with_hostile_labels_title_and_source_is_inert_in_markdown_and_csv(tmp_path):
    spec = hostile_table(tmp_path / "results")
    write_table(spec, hostile_reported(tmp_path / "reported.csv"))
    layout = ResultsLayout(tmp_path / "results")
    md = layout.table("table2", "md").read_text()
    assert_inert_markdown(md, GROUP, METHOD, SOURCE, f"table2: T {METHOD}")
    assert len(markdown_tables(md)) == 5  # ours, the paper's, the difference, the optimistic, other sources
    for path in (layout.table("table2", "csv"), layout.table_tests("table2")):
        text = path.read_text()
        assert formula_cells(text) == [], path
    table = pd.read_csv(layout.table("table2", "csv"))
    assert set(table.method) == {"CE", "'" + METHOD, "LE(Grad-CAM)"} and set(table.group) == {"ResNet14", "'" + GROUP}


def test_the_student_analysis_markdown_is_inert_for_hostile_labels():
    from introspect.analysis.students import _markdown
    from introspect.plan.views import AnalysisSpec

    summary = pd.DataFrame([{"table": "table5", "group": GROUP, "method": METHOD, "n": 2,
                             **{f"{k}_{s}": 0.5 for k in ("agreement", "explanation_similarity", "relevance",
                                                           "accuracy") for s in ("mean", "std")}}])
    spec = AnalysisSpec("students", f"T {METHOD}", "results", [0, 1], [], [], fractions=[0.1], images=4)
    md = _markdown(spec, summary, [0.5])
    assert_inert_markdown(md, GROUP, METHOD, f"students: T {METHOD}")
    assert markdown_tables(md) == [(8, [8])]


def test_an_accuracy_figure_with_hostile_labels_draws_them_as_text_and_writes_an_inert_csv(tmp_path):
    from introspect.analysis.figures import draw_figure
    from introspect.plan.job_files import from_data
    from introspect.plan.views import FigureSpec
    from test_figures import accuracy_runs

    spec, _ = accuracy_runs(tmp_path)
    spec.update(title="$\\undefinedcommand{$ " + METHOD, note="N $\\alpha$ " + SOURCE)
    for cell in spec["cells"]:
        cell["group"], cell["method"] = GROUP, cell["method"].replace("LE(Grad)", METHOD)
    draw_figure(from_data(FigureSpec, spec), reported=REPORTED)  # unescaped, matplotlib's mathtext raises
    text = ResultsLayout(tmp_path).figure("figure3", "csv").read_text()
    assert formula_cells(text) == []
    assert {"'" + METHOD, "LE(Grad-CAM)"} == set(pd.read_csv(io.StringIO(text)).method)


# ---------------------------------------------------------------- Snakemake's report of a hostile config

def hostile_config(workdir: Path, secret: Path) -> dict:
    """A tiny config (a CNN teacher, CE and KD students, 2 epochs, 2 seeds) whose titles, notes, group
    and method labels, claim text and a quoted source are hostile: RST directives (raw HTML, include of
    /etc/hostname and of ``secret``), a javascript: link, <script>, a spreadsheet formula, a column bar."""
    from workflow_helpers import write_config

    directives = (f"\n\n.. raw:: html\n\n   <script>alert('raw')</script>\n\n.. include:: /etc/hostname\n\n"
                  f".. include:: {secret}\n\n`click <javascript:alert('link')>`_ $x$ | =HYPERLINK(\"http://e\")")
    group = {"label": GROUP, "model": "cnn6", "budget": "cnn", "teacher": "t"}
    return write_config(
        workdir, seeds=[0, 1], reported_results=str(hostile_reported(workdir / "reported.csv")),
        budgets={"cnn": {"epochs": 2, "batch_size": 128, "lr": 0.01, "momentum": 0.9, "weight_decay": 1.0e-4}},
        methods={"CE": {"method": "ce"}, METHOD: {"method": "kd", "temperature": 4, "ce_weight": 0.1}},
        teachers={"t": {"model": "cnn8", "budget": "cnn", "method": "CE", "shared": True}},
        tables={"table1": {"title": "Evil" + directives, "paper_table": 3, "other_implementations": True,
                           "dataset": "digits", "groups": [group], "methods": ["CE", METHOD], "compare_to": ["CE"]}},
        figures={"figure1": {"kind": "explanations", "title": "F" + directives, "dataset": "digits", "images": 2,
                             "panels": [{"label": GROUP, "model": "cnn6", "budget": "cnn", "method": "CE",
                                         "explainer": "grad_cam"}]},
                 "figure3": {"kind": "accuracy", "title": "F3" + directives, "note": "N" + directives,
                             "dataset": "digits", "groups": [group], "methods": ["CE", METHOD]}},
        analyses={"students": {"title": "A" + directives, "tables": ["table1"], "figure_table": "table1",
                               "fractions": [0.5], "images": 2}},
        claims=[{"name": "kd_gt_ce", "table": "table1", "group": GROUP, "a": METHOD, "b": "CE",
                 "direction": "greater", "text": "C" + directives}])


class Page(HTMLParser):
    """The elements and text of an HTML document as a browser's parser sees them."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def report_results(raw: str) -> dict:
    """Snakemake 9's report keeps each result (caption as HTML, job params as text, the file as a
    base64 data URI) in ``var results = {...};`` inside ``<script id="results">``: the element's text
    as a browser's parser ends it (at the first ``</script``), parsed as JSON."""
    start = raw.index('<script id="results">') + len('<script id="results">')
    element = raw[start:raw.index("</script", start)].strip()
    assert element.startswith("var results = ") and element.endswith(";"), element[-200:]
    return json.loads(element[len("var results = "):-1])  # config text that ended the element fails here


@pytest.mark.workflow
def test_the_report_of_a_hostile_config_shows_its_text_inert_and_includes_no_file(tmp_path):
    from workflow_helpers import snakemake

    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-MARKER-7f3a\n")
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else ""
    hostname = hostname if len(hostname) >= 6 else ""  # a shorter one may occur in any text by chance
    hostile_config(tmp_path, secret)
    snakemake(tmp_path, "--cores", "2")
    snakemake(tmp_path, "--report", str(tmp_path / "report.html"))
    raw = (tmp_path / "report.html").read_text()

    assert "SECRET-MARKER" not in raw and not re.search(r"<script>\s*alert", raw, re.I)
    results = report_results(raw)
    names = {Path(path).name for path in results}
    assert {"table1.html", "figure1.png", "figure3.png", "students.html", "students_pairs.png",
            "claims.html"} <= names
    for path, result in results.items():
        caption = Page(result["caption"])
        assert not {tag for tag, _ in caption.elements} & {"script", "iframe", "img", "object", "embed"}, path
        hrefs = [attrs.get("href", "") for tag, attrs in caption.elements if tag == "a"]
        assert not [h for h in hrefs if "alert" in h], (path, hrefs)
        text = "".join(caption.text)
        assert "System Message" not in text and "SECRET-MARKER" not in text
        if Path(path).name != "claims.html":  # claims.rst has no config text
            assert ".. raw:: html <script>alert('raw')</script> .. include:: /etc/hostname" in text, (path, text)
            assert hostname == "" or hostname not in text
        content = base64.b64decode(result["data_uri"].split("base64,", 1)[1])
        assert b"SECRET-MARKER" not in content
        if result["mime_type"] == "text/html":
            page = Page(content.decode())
            assert "script" not in {tag for tag, _ in page.elements}, path
            assert "alert(" in "".join(page.text) or Path(path).name == "claims.html"

    results_dir = tmp_path / "results"
    for md in results_dir.rglob("*.md"):
        if md.name == "claims.md":  # rendered by analysis/claims.py (h-claims); its own tests check it
            continue
        assert_inert_markdown(md.read_text(), GROUP, METHOD)
    checked = 0
    for path in results_dir.rglob("*.csv"):
        if path.name == "claims.csv" or "runs" in path.relative_to(results_dir).parts[:1]:
            continue  # claims: h-claims'; runs/: per-epoch numbers, no text
        assert formula_cells(path.read_text()) == [], path
        checked += 1
    assert checked >= 6  # table, tests, all tests, figure 1 and 3, the analysis, its runs and pairs


def test_merging_planted_test_files_writes_no_formula(tmp_path):
    """results/stats/tests.csv concatenates the tables' test files, which are result files: one planted
    with a formula (not written by write_table) is escaped again on the way through."""
    from introspect.cli import main

    planted = tmp_path / "table1.tests.csv"
    planted.write_text('table,group,method_a,method_b,p\ntable1,"=HYPERLINK(""http://e"")",@SUM(1),-x,-0.5\n')
    assert main(["merge-tests", str(planted), "--out", str(tmp_path / "tests.csv")]) == 0
    text = (tmp_path / "tests.csv").read_text()
    assert formula_cells(text) == []
    row = pd.read_csv(io.StringIO(text)).iloc[0]
    assert row["group"] == "'=HYPERLINK(\"http://e\")" and row["method_a"] == "'@SUM(1)" and row["p"] == -0.5
