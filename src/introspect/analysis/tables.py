"""Paper tables from run directories: mean ± std over seeds, the paper's value, our difference,
best entry per model in bold, Holm-corrected paired tests against the reference method (LE)."""
from __future__ import annotations

import math
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from ..io import atomic_write_text
from ..plan.views import TableSpec
from ..runs.loading import read_run
from . import escape
from .cells import (
    OPTIMISTIC_METRIC,
    CellResult,
    baseline_of,
    collect_cells,
    flag_cells,
    flag_notes,
    reference_accuracies,
)
from .html_page import HtmlCell, html_page, html_table
from .numbers import MISSING, format_number, summarise
from .reported import PAPER_SOURCE, Reported, paper_value, read_reported
from .stats import holm, paired_t, welch_t


def load_cells(spec: TableSpec, metric: str, allow_missing: bool) -> list[CellResult]:
    return collect_cells(f"table {spec.name}", spec.cells, spec.view_layout, spec.value, metric,
                         allow_missing=allow_missing)


def attach_reported(cells: list[CellResult], spec: TableSpec, reported: list[Reported]) -> None:
    table_no = spec.paper_table
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
    layout = spec.view_layout
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
    atomic_write_text(tests_out, escape.csv_frame(pd.DataFrame(tests, columns=columns)).to_csv(index=False))
    return cells


# ---------------------------------------------------------------- rendering

def _ordered(items) -> list[str]:
    return list(dict.fromkeys(items))


def _cell_text(cell: CellResult | None, bold: tuple[str, str]) -> str:
    if cell is None:
        return MISSING
    text = f"{format_number(cell.mean)} ± {format_number(cell.std)}"
    if cell.best:
        text = f"{bold[0]}{text}{bold[1]}"
    return f"{text} (n={cell.n}){cell.mark}" + (f" {cell.flags}" if cell.flags else "")


def _grid(cells: list[CellResult], spec: TableSpec, render) -> tuple[list[str], list[list[str]]]:
    """Rows and columns as the paper prints them; ``render(cell_or_None)`` gives each entry."""
    groups = _ordered(c.group for c in cells)
    methods = spec.methods
    lookup = {(c.group, c.method): c for c in cells}
    if spec.layout == "methods_as_rows":
        header = ["Method"] + groups
        rows = [[m] + [render(lookup.get((g, m))) for g in groups] for m in methods]
    else:
        header = ["Model"] + methods
        rows = [[g] + [render(lookup.get((g, m))) for m in methods] for g in groups]
    return header, rows


def _footer(cells: list[CellResult], spec: TableSpec, metric: str) -> list[str]:
    settings = spec.notes
    reference = ", ".join(spec.reference_methods) or "none"
    notes = [
        f"Metric: {spec.metric_label} from `{metric}` of each run; mean ± sample std over seeds, n seeds per cell.",
        f"Significance: paired t-test over shared seeds of the reference method ({reference}) against each other "
        "method of the same model, Holm-corrected within the table; † p<0.05, ‡ p<0.01 (marked on the "
        "compared method). Welch's t-tests are in the tests CSV. Bold: best mean per model.",
    ]
    if settings:
        notes.append(f"Dataset: {settings.dataset}; seeds: {settings.seeds}.")
        for budget in settings.budgets:
            notes.append(f"Budget `{budget.name}`: " + ", ".join(f"{s.key}={s.value}" for s in budget.values) + ".")
        for variant in settings.methods:
            notes.append(f"{variant.name}: " + ", ".join(f"{s.key}={s.value}" for s in variant.values) + ".")
    notes += _selection_notes(spec)
    missing = [r for c in cells for r in c.missing]
    if missing:
        notes.append(f"Missing runs ({len(missing)}), cells use the seeds that finished: " + ", ".join(missing))
    return notes + flag_notes(cells)


def _selection_notes(spec: TableSpec) -> list[str]:
    """Which swept values the final runs used, and the validation scores they were chosen by."""
    from .selection import describe, read_selection

    selection = spec.notes.sweeps if spec.notes else None
    layout = spec.view_layout
    paths = [layout.selection(s) for s in _ordered(c.selection for c in spec.cells if c.selection)]
    if selection is not None and selection.use == "paper":
        return ["Hyper-parameters: the configured (paper's) values; sweeps were skipped (sweeps.use: paper)."]
    notes = []
    if paths:
        notes.append(f"Swept hyper-parameters were chosen on the validation split (mean over sweep seeds "
                     f"{selection.seeds if selection else None}); the test set played no part:")
    for path in paths:
        notes.append(describe(read_selection(path)))
    return notes


def _html(cells: list[CellResult], spec: TableSpec, metric: str) -> str:
    """The table for Snakemake's HTML report: our numbers with the paper's, and the notes."""
    def render(cell: CellResult | None) -> HtmlCell | str:
        if cell is None:
            return MISSING
        paper = "" if math.isnan(cell.paper_mean) else f"paper {format_number(cell.paper_mean)}"
        return HtmlCell(_cell_text(cell, ("", "")), best=cell.best, note=paper)

    header, rows = _grid(cells, spec, render)
    caption = f"{spec.metric_label}, mean ± std over seeds (n); bold: best per model; the paper's value below"
    return html_page(f"{spec.name}: {spec.title}", paragraphs=_teacher_lines(spec),
                     tables=[html_table(header, rows, caption=caption)], notes=_footer(cells, spec, metric))


def _teacher_lines(spec: TableSpec) -> list[str]:
    """Teacher accuracies, as the paper gives them in its captions (final-epoch test accuracy)."""
    layout = spec.view_layout
    lines = []
    for label, run_ids in spec.teachers.items():
        summary = summarise(read_run(layout, r).value("test_acc_final") for r in run_ids)
        spread = f" ± {format_number(summary.std)}" if summary.n > 1 else ""
        lines.append(f"Teacher {label}: {format_number(summary.mean)}{spread}% test accuracy (n={summary.n}).")
    return lines + ([""] if lines else [])


def _markdown(cells: list[CellResult], spec: TableSpec, reported: pd.DataFrame, metric: str) -> str:
    title = "# " + escape.markdown(f"{spec.name}: {spec.title}")
    lines = [title, ""] + [escape.markdown(line) for line in _teacher_lines(spec)]
    lines += [f"Ours ({spec.metric_label}, dataset `{spec.notes.dataset if spec.notes else ''}`):", ""]
    header, rows = _grid(cells, spec, lambda c: _cell_text(c, ("**", "**")))
    lines += [_markdown_table(header, rows), ""]
    if spec.paper_table:
        header, rows = _grid(cells, spec, lambda c: MISSING if c is None else
                             f"{format_number(c.paper_mean)} ± {format_number(c.paper_std)}"
                             if not math.isnan(c.paper_std) else format_number(c.paper_mean))
        datasets = ", ".join(sorted({str(c.paper_dataset) for c in cells}))
        lines += [f"Paper, Table {spec.paper_table} ({escape.markdown(datasets)}):",
                  "", _markdown_table(header, rows), ""]
        header, rows = _grid(cells, spec, lambda c: MISSING if c is None else _signed(c.mean - c.paper_mean))
        lines += ["Difference, ours − paper (different dataset and budget unless the config is the paper's):",
                  "", _markdown_table(header, rows), ""]
        header, rows = _grid(cells, spec, lambda c: MISSING if c is None else
                             f"{format_number(c.optimistic_mean)} ({_signed(c.optimistic_mean - c.paper_mean)})")
        lines += [f"Ours at the best test epoch (`{OPTIMISTIC_METRIC}`, optimistic: chosen on test data; most "
                  "likely the paper's statistic, as the TAKD code it follows reports it), and its difference to "
                  "the paper:", "", _markdown_table(header, rows), ""]
        if spec.other_implementations:
            lines += _other_implementations(spec, reported)
    lines += [f"- {escape.markdown(note)}" for note in _footer(cells, spec, metric)]
    return "\n".join(lines) + "\n"


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub table whose labels (the header and the first column: config text) are escaped; the
    other entries are numbers this module formatted, with their intended bold."""
    return tabulate([[escape.markdown(row[0]), *row[1:]] for row in rows], [escape.markdown(h) for h in header],
                    tablefmt="github", disable_numparse=True)


def _other_implementations(spec: TableSpec, reported: pd.DataFrame) -> list[str]:
    rows = reported[(reported["table"] == spec.paper_table)
                    & ~reported["source"].str.startswith(PAPER_SOURCE)]
    if rows.empty:
        return []
    out = []
    for source, group in rows.groupby("source", sort=False):
        entries = {r.method: (format_number(r.mean) if pd.isna(r.std)
                              else f"{format_number(r.mean)} ± {format_number(r.std)}") for r in group.itertuples()}
        out.append([source] + [entries.get(m, MISSING) for m in spec.methods])
    return ["Other implementations quoted by the paper:", "", _markdown_table(["Source"] + spec.methods, out), ""]


def _signed(value: float) -> str:
    return format_number(value, "+.2f")


def _latex(cells: list[CellResult], spec: TableSpec, metric: str) -> str:
    def render(cell: CellResult | None) -> str:
        if cell is None:
            return "--"
        text = f"{format_number(cell.mean)} $\\pm$ {format_number(cell.std)}"
        if cell.best:
            text = f"\\textbf{{{text}}}"
        mark = {"†": "$^{\\dagger}$", "‡": "$^{\\ddagger}$"}.get(cell.mark, "")
        paper = "" if math.isnan(cell.paper_mean) else f" [{format_number(cell.paper_mean)}]"
        return text + mark + paper

    header, rows = _grid(cells, spec, render)
    notes = " ".join(escape.latex(n) for n in _footer(cells, spec, metric)[:2])
    caption = (f"{escape.latex(spec.title)}: {escape.latex(spec.metric_label)}, mean $\\pm$ std over "
               f"seeds; the paper's value in brackets. {notes}")
    lines = [
        "% generated by introspect; requires \\usepackage{booktabs}",
        "\\begin{table}[t]", "\\centering", f"\\caption{{{caption}}}",
        f"\\label{{tab:{_latex_label(spec.name)}}}",
        "\\begin{tabular}{l" + "c" * (len(header) - 1) + "}", "\\toprule",
        " & ".join(escape.latex(h) for h in header) + " \\\\", "\\midrule",
    ]
    lines += [" & ".join([escape.latex(r[0])] + r[1:]) + " \\\\" for r in rows]
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
    return escape.csv_frame(pd.DataFrame(records)).to_csv(index=False, float_format="%.4f")
