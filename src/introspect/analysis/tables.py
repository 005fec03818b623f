"""Paper tables from run directories: mean ± std over seeds, the paper's value, our difference,
best entry per model in bold, Holm-corrected paired tests against the reference method (LE)."""
from __future__ import annotations

import math
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
from pylatexenc.latexencode import unicode_to_latex
from tabulate import tabulate

from ..io import atomic_write_text
from ..runs import ResultsLayout, read_run
from ..specs import TableSpec
from .cells import (
    OPTIMISTIC_METRIC,
    CellResult,
    baseline_of,
    collect_cells,
    flag_cells,
    flag_notes,
    reference_accuracies,
)
from .html_page import Cell, html_page, html_table
from .reported import PAPER_SOURCE, Reported, paper_value, read_reported
from .stats import holm, paired_t, welch_t


def load_cells(spec: TableSpec, metric: str, allow_missing: bool) -> list[CellResult]:
    return collect_cells(f"table {spec.name}", spec.cells, ResultsLayout(spec.results_dir), spec.value, metric,
                         allow_missing=allow_missing)


def attach_reported(cells: list[CellResult], spec: TableSpec, reported: list[Reported]) -> None:
    table_no = spec.config.get("paper_table")
    if table_no is None:
        return
    for cell in cells:
        cell.paper_mean, cell.paper_std = paper_value(reported, table_no, spec.metric_kind, cell.model, cell.method,
                                                      cell.paper_dataset)


def compare(cells: list[CellResult], spec: TableSpec) -> list[dict[str, Any]]:
    """Tests of every group's reference method against each other method of the group."""
    candidates = spec.reference_methods
    tests: list[dict[str, Any]] = []
    for group in _ordered(c.group for c in cells):
        members = {c.method: c for c in cells if c.group == group}
        reference = next((m for m in candidates if m in members), None)
        if reference is None:
            continue
        for method, cell in members.items():
            if method == reference:
                continue
            ref = members[reference]
            for result in (paired_t(ref.values, cell.values),
                           welch_t(list(ref.values.values()), list(cell.values.values()))):
                tests.append({"table": spec.name, "group": group, "model": cell.model,
                              "method_a": reference, "method_b": method, **asdict(result)})
    for kind in ("paired_t", "welch_t"):
        family = [t for t in tests if t["test"] == kind]
        for t, p in zip(family, holm([t["p"] for t in family])):
            t["p_holm"] = p
    return tests


def mark_cells(cells: list[CellResult], tests: list[dict[str, Any]], lower_is_better: bool) -> None:
    for test in tests:
        if test["test"] != "paired_t" or math.isnan(test["p_holm"]):
            continue
        cell = next(c for c in cells if c.group == test["group"] and c.method == test["method_b"])
        cell.mark = "‡" if test["p_holm"] < 0.01 else "†" if test["p_holm"] < 0.05 else ""
    for group in _ordered(c.group for c in cells):
        members = [c for c in cells if c.group == group and not math.isnan(c.mean)]
        best = (min if lower_is_better else max)(c.mean for c in members)
        for c in members:
            c.best = abs(c.mean - best) < 1e-9


def write_table(spec: TableSpec, reported_csv: Path, *, metric: str = "test_acc_final",
                allow_missing: bool = False) -> list[CellResult]:
    """Write the table's md, tex, csv and html and its tests CSV where :class:`ResultsLayout` puts them."""
    layout = ResultsLayout(spec.results_dir)
    cells = load_cells(spec, metric, allow_missing)
    paper = read_reported(reported_csv)
    attach_reported(cells, spec, paper)
    reported = pd.DataFrame([asdict(row) for row in paper])
    tests = compare(cells, spec)
    mark_cells(cells, tests, spec.lower_is_better)
    flag_cells(cells, references=reference_accuracies(spec.references, layout), baseline=baseline_of(spec))
    atomic_write_text(layout.table(spec.name, "csv"), _csv(cells, spec, metric))
    atomic_write_text(layout.table(spec.name, "md"), _markdown(cells, spec, reported, metric))
    atomic_write_text(layout.table(spec.name, "tex"), _latex(cells, spec, metric))
    atomic_write_text(layout.table(spec.name, "html"), _html(cells, spec, metric))
    tests_out = layout.table_tests(spec.name)
    columns = ["table", "group", "model", "method_a", "method_b", "test", "n_a", "n_b", "mean_diff",
               "statistic", "df", "p", "p_holm", "effect_size", "ci_low", "ci_high", "reason"]
    atomic_write_text(tests_out, pd.DataFrame(tests, columns=columns).to_csv(index=False))
    return cells


# ---------------------------------------------------------------- rendering

def _ordered(items) -> list[str]:
    return list(dict.fromkeys(items))


def _fmt(value: float, digits: int = 2) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _cell_text(cell: CellResult | None, bold: tuple[str, str]) -> str:
    if cell is None:
        return "–"
    text = f"{_fmt(cell.mean)} ± {_fmt(cell.std)}"
    if cell.best:
        text = f"{bold[0]}{text}{bold[1]}"
    return f"{text} (n={cell.n}){cell.mark}" + (f" {cell.flags}" if cell.flags else "")


def _grid(cells: list[CellResult], spec: TableSpec, render) -> tuple[list[str], list[list[str]]]:
    """Rows and columns as the paper prints them; ``render(cell_or_None)`` gives each entry."""
    groups = _ordered(c.group for c in cells)
    methods = spec.methods
    lookup = {(c.group, c.method): c for c in cells}
    if spec.config.get("layout", "models_as_rows") == "methods_as_rows":
        header = ["Method"] + groups
        rows = [[m] + [render(lookup.get((g, m))) for g in groups] for m in methods]
    else:
        header = ["Model"] + methods
        rows = [[g] + [render(lookup.get((g, m))) for m in methods] for g in groups]
    return header, rows


def _footer(cells: list[CellResult], spec: TableSpec, metric: str) -> list[str]:
    settings = spec.settings
    reference = ", ".join(spec.reference_methods) or "none"
    notes = [
        f"Metric: {spec.metric_label} from `{metric}` of each run; mean ± sample std over seeds, n seeds per cell.",
        f"Significance: paired t-test over shared seeds of the reference method ({reference}) against each other "
        "method of the same model, Holm-corrected within the table; † p<0.05, ‡ p<0.01 (marked on the "
        "compared method). Welch's t-tests are in the tests CSV. Bold: best mean per model.",
    ]
    if settings:
        notes.append(f"Dataset: {settings.get('dataset')}; seeds: {settings.get('seeds')}.")
        for name, budget in settings.get("budgets", {}).items():
            notes.append(f"Budget `{name}`: " + ", ".join(f"{k}={v}" for k, v in budget.items()) + ".")
        for label, variant in settings.get("methods", {}).items():
            notes.append(f"{label}: " + ", ".join(f"{k}={v}" for k, v in variant.items()) + ".")
    notes += _selection_notes(spec)
    missing = [r for c in cells for r in c.missing]
    if missing:
        notes.append(f"Missing runs ({len(missing)}), cells use the seeds that finished: " + ", ".join(missing))
    return notes + flag_notes(cells)


def _selection_notes(spec: TableSpec) -> list[str]:
    """Which swept values the final runs used, and the validation scores they were chosen by."""
    from .selection import describe, read_selection

    selection = spec.settings.get("selection", {})
    layout = ResultsLayout(spec.results_dir)
    paths = [layout.selection(s) for s in _ordered(c.selection for c in spec.cells if c.selection)]
    if selection.get("use") == "paper":
        return ["Hyper-parameters: the configured (paper's) values; sweeps were skipped (sweeps.use: paper)."]
    notes = []
    if paths:
        notes.append(f"Swept hyper-parameters were chosen on the validation split (mean over sweep seeds "
                     f"{selection.get('seeds')}); the test set played no part:")
    for path in paths:
        notes.append(describe(read_selection(path)))
    return notes


def _html(cells: list[CellResult], spec: TableSpec, metric: str) -> str:
    """The table for Snakemake's HTML report: our numbers with the paper's, and the notes."""
    def render(cell: CellResult | None) -> Cell | str:
        if cell is None:
            return "–"
        paper = "" if math.isnan(cell.paper_mean) else f"paper {_fmt(cell.paper_mean)}"
        return Cell(_cell_text(cell, ("", "")), best=cell.best, note=paper)

    header, rows = _grid(cells, spec, render)
    caption = f"{spec.metric_label}, mean ± std over seeds (n); bold: best per model; the paper's value below"
    return html_page(f"{spec.name}: {spec.config['title']}", paragraphs=_teacher_lines(spec),
                     tables=[html_table(header, rows, caption=caption)], notes=_footer(cells, spec, metric))


def _teacher_lines(spec: TableSpec) -> list[str]:
    """Teacher accuracies, as the paper gives them in its captions (final-epoch test accuracy)."""
    layout = ResultsLayout(spec.results_dir)
    lines = []
    for label, run_ids in spec.teachers.items():
        values = [read_run(layout, r).value("test_acc_final") for r in run_ids]
        series = pd.Series(values, dtype=float)
        spread = f" ± {_fmt(series.std(ddof=1))}" if len(values) > 1 else ""
        lines.append(f"Teacher {label}: {_fmt(series.mean())}{spread}% test accuracy (n={len(values)}).")
    return lines + ([""] if lines else [])


def _markdown(cells: list[CellResult], spec: TableSpec, reported: pd.DataFrame, metric: str) -> str:
    config = spec.config
    title = f"# {spec.name}: {config['title']}"
    lines = [title, ""] + _teacher_lines(spec)
    lines += [f"Ours ({spec.metric_label}, dataset `{spec.settings.get('dataset', '')}`):", ""]
    header, rows = _grid(cells, spec, lambda c: _cell_text(c, ("**", "**")))
    lines += [tabulate(rows, header, tablefmt="github", disable_numparse=True), ""]
    if config.get("paper_table"):
        header, rows = _grid(cells, spec, lambda c: "–" if c is None else
                             f"{_fmt(c.paper_mean)} ± {_fmt(c.paper_std)}" if not math.isnan(c.paper_std)
                             else _fmt(c.paper_mean))
        lines += [f"Paper, Table {config['paper_table']} ({', '.join(sorted({str(c.paper_dataset) for c in cells}))}):",
                  "", tabulate(rows, header, tablefmt="github", disable_numparse=True), ""]
        header, rows = _grid(cells, spec, lambda c: "–" if c is None else _signed(c.mean - c.paper_mean))
        lines += ["Difference, ours − paper (different dataset and budget unless the config is the paper's):",
                  "", tabulate(rows, header, tablefmt="github", disable_numparse=True), ""]
        header, rows = _grid(cells, spec, lambda c: "–" if c is None else
                             f"{_fmt(c.optimistic_mean)} ({_signed(c.optimistic_mean - c.paper_mean)})")
        lines += [f"Ours at the best test epoch (`{OPTIMISTIC_METRIC}`, optimistic: chosen on test data; most "
                  "likely the paper's statistic, as the TAKD code it follows reports it), and its difference to "
                  "the paper:", "", tabulate(rows, header, tablefmt="github", disable_numparse=True), ""]
        if config.get("other_implementations"):
            lines += _other_implementations(spec, reported)
    lines += [f"- {note}" for note in _footer(cells, spec, metric)]
    return "\n".join(lines) + "\n"


def _other_implementations(spec: TableSpec, reported: pd.DataFrame) -> list[str]:
    config = spec.config
    rows = reported[(reported["table"] == config["paper_table"])
                    & ~reported["source"].str.startswith(PAPER_SOURCE)]
    if rows.empty:
        return []
    out = []
    for source, group in rows.groupby("source", sort=False):
        entries = {r.method: (_fmt(r.mean) if pd.isna(r.std) else f"{_fmt(r.mean)} ± {_fmt(r.std)}")
                   for r in group.itertuples()}
        out.append([source] + [entries.get(m, "–") for m in config["methods"]])
    return ["Other implementations quoted by the paper:", "",
            tabulate(out, ["Source"] + config["methods"], tablefmt="github", disable_numparse=True), ""]


def _signed(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:+.2f}"


def _latex_escape(text: str) -> str:
    """Plain text as LaTeX: the specials (& % $ # _ { } ~ ^ \\) and non-ASCII characters as commands."""
    return unicode_to_latex(str(text))


def _latex(cells: list[CellResult], spec: TableSpec, metric: str) -> str:
    def render(cell: CellResult | None) -> str:
        if cell is None:
            return "--"
        text = f"{_fmt(cell.mean)} $\\pm$ {_fmt(cell.std)}"
        if cell.best:
            text = f"\\textbf{{{text}}}"
        mark = {"†": "$^{\\dagger}$", "‡": "$^{\\ddagger}$"}.get(cell.mark, "")
        paper = "" if math.isnan(cell.paper_mean) else f" [{_fmt(cell.paper_mean)}]"
        return text + mark + paper

    header, rows = _grid(cells, spec, render)
    config = spec.config
    notes = " ".join(_latex_escape(n) for n in _footer(cells, spec, metric)[:2])
    caption = (f"{_latex_escape(config['title'])}: {_latex_escape(spec.metric_label)}, mean $\\pm$ std over "
               f"seeds; the paper's value in brackets. {notes}")
    lines = [
        "% generated by introspect; requires \\usepackage{booktabs}",
        "\\begin{table}[t]", "\\centering", f"\\caption{{{caption}}}",
        f"\\label{{tab:{_latex_label(spec.name)}}}",
        "\\begin{tabular}{l" + "c" * (len(header) - 1) + "}", "\\toprule",
        " & ".join(_latex_escape(h) for h in header) + " \\\\", "\\midrule",
    ]
    lines += [" & ".join([_latex_escape(r[0])] + r[1:]) + " \\\\" for r in rows]
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def _latex_label(name: str) -> str:
    """A \\label key: LaTeX reads labels verbatim, so anything beyond letters, digits and :._- becomes -."""
    return re.sub(r"[^A-Za-z0-9:._-]", "-", name)


def _csv(cells: list[CellResult], spec: TableSpec, metric: str) -> str:
    records = [{
        "table": spec.name, "group": c.group, "model": c.model, "method": c.method,
        "metric": spec.metric_label, "source_metric": metric, "n": c.n, "mean": c.mean, "std": c.std,
        "seeds": " ".join(str(s) for s in sorted(c.values)),
        "values": " ".join(f"{c.values[s]:.4f}" for s in sorted(c.values)),
        "paper_dataset": c.paper_dataset, "paper_mean": c.paper_mean, "paper_std": c.paper_std,
        "diff_vs_paper": c.mean - c.paper_mean, "optimistic_mean": c.optimistic_mean,
        "optimistic_diff_vs_paper": c.optimistic_mean - c.paper_mean, "best": c.best, "significance": c.mark,
        "flags": " | ".join(c.flag_texts),
        "missing_runs": " ".join(c.missing), "run_ids": " ".join(c.run_ids),
    } for c in cells]
    return pd.DataFrame(records).to_csv(index=False, float_format="%.4f")
