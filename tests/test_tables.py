"""Aggregation of run directories into a table, checked on synthetic runs with known numbers."""
import json
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from introspect.analysis.cells import MissingRunsError
from introspect.analysis.tables import write_table
from introspect.plan.views import Cell, SweepSettings, TableNotes, TableSpec
from introspect.runs.record import ResultsLayout, label_slug

ROOT = Path(__file__).resolve().parents[1]
REPORTED = ROOT / "config" / "reported_results.csv"
# what the config schema fills in for a table that names none of them
TABLE_DEFAULTS = {"metric": "accuracy", "layout": "models_as_rows", "baseline": "CE", "other_implementations": False}

VALUES = {  # (group, method) -> per-seed accuracy
    ("ResNet14", "CE"): [90.0, 90.5, 90.2],
    ("ResNet14", "LS"): [90.3, 90.4, 90.6],
    ("ResNet14", "LE(Grad-CAM)"): [91.0, 91.6, 91.2],
    ("ResNet8", "CE"): [88.0, 88.1, 87.9],
    ("ResNet8", "LS"): [88.2, 88.0, 88.3],
    ("ResNet8", "LE(Grad-CAM)"): [88.1, 88.2, 88.0],
}


def make_runs(results_dir: Path, skip=(), name="table2"):
    layout = ResultsLayout(results_dir)
    cells = []
    for (group, method), values in VALUES.items():
        ids = []
        for seed, value in enumerate(values):
            run_id = f"{group}/{label_slug(method)}/seed{seed}"
            ids.append(run_id)
            if run_id in skip:
                continue
            files = layout.run(run_id)
            files.directory.mkdir(parents=True)
            files.metrics.write_text(json.dumps({"seed": seed, "test_acc_final": value, "test_acc_max": value + 0.5,
                                                 "n_test": 359, "run_id": run_id, "spec": {"run_id": run_id}}))
        cells.append(Cell(group, method, group.lower(), "cifar10", ids, [0, 1, 2]))
    notes = TableNotes("digits", [0, 1, 2], [], [], SweepSettings("validation", "val_acc_final", [0]))
    return TableSpec(name, "Regularisers", ["CE", "LS", "LE(Grad-CAM)"], cells, str(results_dir), paper_table=2,
                     compare_to=["LE(Grad-CAM)"], notes=notes, **TABLE_DEFAULTS)


def markdown_text(md: str) -> str:
    """The text a reader sees of the Markdown ``md`` (rendered, tags removed, entities decoded)."""
    from html import unescape

    from markdown_it import MarkdownIt

    return unescape(re.sub(r"<[^>]+>", "", MarkdownIt("commonmark").enable("table").render(md)))


def test_table_contents(tmp_path):
    spec = make_runs(tmp_path)
    layout = ResultsLayout(tmp_path)
    write_table(spec, REPORTED)
    table = pd.read_csv(layout.table("table2", "csv"))
    row = table[(table.group == "ResNet14") & (table.method == "LE(Grad-CAM)")].iloc[0]
    assert row["mean"] == pytest.approx(91.2667, abs=1e-3) and row["std"] == pytest.approx(0.3055, abs=1e-3)
    assert row["n"] == 3 and row["best"] and row["paper_mean"] == 91.21
    assert row["diff_vs_paper"] == pytest.approx(91.2667 - 91.21, abs=1e-3)
    ce8 = table[(table.group == "ResNet8") & (table.method == "CE")].iloc[0]
    assert ce8["paper_mean"] == 87.95 and ce8["paper_std"] == 0.32
    best8 = table[(table.group == "ResNet8") & table.best]
    assert list(best8.method) == ["LS"]

    tests = pd.read_csv(layout.table_tests("table2"))
    assert set(tests.test) == {"paired_t", "welch_t"} and len(tests) == 8
    paired = tests[tests.test == "paired_t"]
    tested = paired.dropna(subset=["p"])
    assert (tested.p_holm >= tested.p).all() and set(paired.method_a) == {"LE(Grad-CAM)"}
    # ResNet8: LE(Grad-CAM) - CE is +0.1 on every seed, which has no spread to test against
    untested = paired[paired.p.isna()]
    assert list(untested.method_b) == ["CE"] and "identical" in untested.reason.iloc[0]

    md = layout.table("table2", "md").read_text()
    assert "**91.27 ± 0.31** (n=3)" in md
    assert "Paper, Table 2" in md and "90.26 ± 0.33" in md and "+1.01" not in md.split("Difference")[0]
    assert "Holm" in md
    # the paper's (optimistic) statistic beside ours: best test epoch, 0.5 above the final epoch here
    assert "`test_acc_max`, optimistic" in md and "91.77 (+0.56)" in md
    assert row["optimistic_mean"] == pytest.approx(91.7667, abs=1e-3)
    # three seeds: every cell carries the low-n flag (the paper has five), shown and not dropped
    assert "⚑low_n" in md and "Sanity flag ⚑low_n: all 6 cells" in markdown_text(md)
    tex = layout.table("table2", "tex").read_text()
    assert "\\toprule" in tex and "\\textbf{91.27 $\\pm$ 0.31}" in tex and "LE(Grad-CAM)" in tex


def test_significance_marks_follow_the_holm_corrected_paired_test(tmp_path):
    spec = make_runs(tmp_path)
    layout = ResultsLayout(tmp_path)
    write_table(spec, REPORTED)
    table = pd.read_csv(layout.table("table2", "csv"), dtype={"significance": str}, keep_default_na=False)
    tests = pd.read_csv(layout.table_tests("table2"))
    for row in table.itertuples():
        test = tests[(tests.test == "paired_t") & (tests.group == row.group) & (tests.method_b == row.method)]
        if row.method == "LE(Grad-CAM)":
            assert row.significance == "" and test.empty
            continue
        p = test.p_holm.iloc[0]
        assert row.significance == ("‡" if p < 0.01 else "†" if p < 0.05 else "")


def test_missing_runs_are_refused_or_reported(tmp_path):
    spec = make_runs(tmp_path, skip={"ResNet8/LS/seed1"})
    layout = ResultsLayout(tmp_path)
    with pytest.raises(MissingRunsError, match="ResNet8/LS/seed1"):
        write_table(spec, REPORTED)
    write_table(spec, REPORTED, allow_missing=True)
    table = pd.read_csv(layout.table("table2", "csv"))
    assert table[(table.group == "ResNet8") & (table.method == "LS")].n.iloc[0] == 2
    assert "Missing runs (1)" in layout.table("table2", "md").read_text()


def test_a_corrupt_metrics_file_is_an_error_naming_it(tmp_path):
    from introspect.runs.record import RunFileError

    spec = make_runs(tmp_path)
    ResultsLayout(tmp_path).run("ResNet8/LS/seed1").metrics.write_text("{not json")
    with pytest.raises(RunFileError, match=r"ResNet8/LS/seed1/metrics.json is corrupt .*snakemake"):
        write_table(spec, REPORTED)




NASTY = "A&B%C$D#E_F{G}H~I^J\\K<script>alert(1)</script>"
NASTY_TEX = (r"A\&B\%C\$D\#E\_F\{G\}H{\textasciitilde}I{\textasciicircum}J{\textbackslash}K"
             r"\ensuremath{<}script\ensuremath{>}alert(1)\ensuremath{<}/script\ensuremath{>}")


def nasty_spec(results_dir: Path) -> TableSpec:
    """Table 2's synthetic runs with LaTeX and HTML specials in the title, a group and a method label."""
    spec = make_runs(results_dir)
    cells = [replace(cell, group=cell.group.replace("ResNet8", f"Net {NASTY}"),
                     method=cell.method.replace("LS", f"LS {NASTY}")) for cell in spec.cells]
    return replace(spec, title=f"Title {NASTY}", cells=cells,
                   methods=[m.replace("LS", f"LS {NASTY}") for m in spec.methods])


class PageText(HTMLParser):
    """The tags and the text of each table row, as a browser's parser sees them."""

    def __init__(self):
        super().__init__()
        self.tags, self.rows, self.text, self.in_cell = [], [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th") and self.rows:
            self.rows[-1].append("")
            self.in_cell = True

    def handle_endtag(self, tag):
        self.in_cell = self.in_cell and tag not in ("td", "th")

    def handle_data(self, data):
        self.text.append(data)
        if self.in_cell:
            self.rows[-1][-1] += data


def test_latex_escapes_every_special_character_of_labels(tmp_path):
    write_table(nasty_spec(tmp_path), REPORTED)
    tex = ResultsLayout(tmp_path).table("table2", "tex").read_text()
    assert f"\\caption{{Title {NASTY_TEX}:" in tex
    assert f"Net {NASTY_TEX} & " in tex and f" & LS {NASTY_TEX} & " in tex
    table_lines = tex.split("\\midrule")[1].split("\\bottomrule")[0].strip().splitlines()
    header_line = tex.split("\\toprule")[1].split("\\midrule")[0].strip()
    for line in [header_line] + table_lines:  # column separators are the only unescaped &
        assert len(re.findall(r"(?<!\\)&", line)) == 3, line
    body = tex.split("\\toprule")[1]
    for special in "#$%_~^":
        assert not re.search(rf"(?<!\\){re.escape(special)}", body.replace("$\\pm$", "").replace(
            "$^{\\dagger}$", "").replace("$^{\\ddagger}$", "")), special
    assert "<script>" not in tex


def test_html_table_shows_labels_as_text_and_is_styled(tmp_path):
    write_table(nasty_spec(tmp_path), REPORTED)
    page = PageText()
    page.feed(ResultsLayout(tmp_path).table("table2", "html").read_text())
    assert "script" not in [tag for tag, _ in page.tags]
    assert f"table2: Title {NASTY}" in page.text and "style" in [tag for tag, _ in page.tags]
    header, *rows = page.rows
    assert header == ["Model", "CE", f"LS {NASTY}", "LE(Grad-CAM)"]
    assert [row[0] for row in rows] == ["ResNet14", f"Net {NASTY}"]
    numbers = [attrs.get("class", "") for tag, attrs in page.tags if tag == "td"]
    assert len(numbers) == 6 and all("num" in c for c in numbers)
    assert sum("best" in c for c in numbers) == 2  # one best mean per model
    ce14 = pd.Series(VALUES[("ResNet14", "CE")])
    assert rows[0][1].startswith(f"{ce14.mean():.2f} ± {ce14.std():.2f} (n=3)") and rows[0][1].endswith("paper 90.26")


def test_student_analysis_html_escapes_and_uses_the_same_page(tmp_path):
    from introspect.analysis.students import _html
    from introspect.plan.views import AnalysisSpec

    summary = pd.DataFrame([{"table": "table5", "group": f"G {NASTY}", "method": "KD", "n": 2,
                             **{f"{k}_{s}": 0.5 for k in ("agreement", "explanation_similarity", "relevance",
                                                           "accuracy") for s in ("mean", "std")}}])
    page = PageText()
    spec = AnalysisSpec("students", f"T {NASTY}", "results", [0, 1], [], [], fractions=[0.1], images=4)
    page.feed(_html(spec, summary, [0.5]))
    assert "script" not in [tag for tag, _ in page.tags] and "style" in [tag for tag, _ in page.tags]
    assert page.rows[1][:4] == ["table5", f"G {NASTY}", "KD", "2"]
    assert page.rows[1][4:] == ["0.50 ± 0.50", "0.500 ± 0.500", "0.50 ± 0.50", "0.50 ± 0.50"]


def test_a_group_without_ce_is_checked_against_the_ce_runs_of_another_table(tmp_path):
    """Table 5 has no CE column: its students' teacher is compared with Table 2's CE runs of the model."""
    layout = ResultsLayout(tmp_path)

    def finished(run_id, seed, accuracy):
        files = layout.run(run_id)
        files.directory.mkdir(parents=True)
        files.metrics.write_text(json.dumps({"seed": seed, "test_acc_final": accuracy, "test_acc_max": accuracy,
                                             "n_test": 359, "run_id": run_id, "spec": {"run_id": run_id}}))

    for seed in range(5):
        finished(f"kd/seed{seed}", seed, 95.0)
        finished(f"ce/seed{seed}", seed, 96.0 + 0.1 * seed)  # the CE runs of another table
    finished("teacher/seed0", 0, 93.3)  # a teacher worse than its student's CE
    cell = Cell("ResNet8", "KD", "resnet8", None, [f"kd/seed{s}" for s in range(5)], list(range(5)),
                teacher_run_ids=["teacher/seed0"] * 5)
    spec = TableSpec("table5", "Students", ["KD"], [cell], str(tmp_path), **TABLE_DEFAULTS,
                     references={"ResNet8": [f"ce/seed{s}" for s in range(5)]})
    write_table(spec, REPORTED)
    row = pd.read_csv(layout.table("table5", "csv")).iloc[0]
    assert "[teacher_not_better] teacher of KD on ResNet8 (93.30%) is not better than CE on ResNet8 (96.20%)" \
        in row["flags"]
    spec = replace(spec, references={})
    write_table(spec, REPORTED)  # without the reference there is nothing to compare the teacher with ...
    flags = pd.read_csv(layout.table("table5", "csv")).iloc[0]["flags"]
    # ... but its student: 93.30% is below the 95.00% of a model distilled from it
    assert flags == "[teacher_worse_than_student] teacher of KD on ResNet8 (93.30%) is below its student KD (95.00%)"
    # a peer (BAN's: the student's own architecture, trained with CE) is no teacher to flag (the student, 1.2 pp
    # below CE, still is one; 95.00% is above the peer's 93.30%, so it is not worse than its own teacher)
    spec = replace(spec, references={"ResNet8": [f"ce/seed{s}" for s in range(5)]})
    peer = layout.run("teacher/seed0").metrics
    peer.write_text(json.dumps({**json.loads(peer.read_text()), "model": "resnet8"}))
    write_table(spec, REPORTED)
    flags = pd.read_csv(layout.table("table5", "csv")).iloc[0]["flags"]
    assert flags == "[below_baseline] student KD (95.00%) is 1.20 pp below CE on ResNet8 (96.20%)"
