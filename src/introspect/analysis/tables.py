"""Paper tables from run directories: mean ± std over seeds, the paper's value, our difference,
best entry per model in bold, Holm-corrected paired tests against the reference method (LE)."""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pylatexenc.latexencode import unicode_to_latex
from tabulate import tabulate

from ..io import atomic_write_text
from .html_page import Cell, html_page, html_table
from .stats import TestResult, holm, paired_t, welch_t

PAPER_SOURCE = "LE paper"


class MissingRunsError(RuntimeError):
    pass


@dataclass
class CellResult:
    group: str
    method: str
    model: str
    paper_dataset: str | None
    values: dict[int, float]  # seed -> metric value
    run_ids: list[str]
    missing: list[str] = field(default_factory=list)
    paper_mean: float = float("nan")
    paper_std: float = float("nan")
    best: bool = False
    mark: str = ""

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(pd.Series(list(self.values.values()), dtype=float).mean()) if self.values else float("nan")

    @property
    def std(self) -> float:
        return float(pd.Series(list(self.values.values()), dtype=float).std(ddof=1)) if self.n > 1 else float("nan")


def load_cells(spec: dict[str, Any], runs_dir: Path, metric: str, allow_missing: bool) -> list[CellResult]:
    error_metric = spec["config"].get("metric", "accuracy") == "error"
    cells, missing = [], []
    for cell in spec["cells"]:
        values, absent = {}, []
        for run_id in cell["run_ids"]:
            path = runs_dir / run_id / "metrics.json"
            if not path.exists():
                absent.append(run_id)
                continue
            metrics = json.loads(path.read_text())
            value = float(metrics[metric])
            values[int(metrics["seed"])] = 100.0 - value if error_metric else value
        missing += absent
        cells.append(CellResult(cell["group"], cell["method"], cell["model"], cell.get("paper_dataset"),
                                values, cell["run_ids"], absent))
    if missing and not allow_missing:
        listed = "\n  ".join(missing)
        raise MissingRunsError(
            f"table {spec['name']}: {len(missing)} run(s) have no metrics.json:\n  {listed}\n"
            "Rerun them (snakemake reruns only what is missing), or set allow_missing_seeds: true "
            "to produce the table with the actual n per cell."
        )
    if any(c.n == 0 for c in cells):
        empty = [f"{c.group}/{c.method}" for c in cells if c.n == 0]
        raise MissingRunsError(f"table {spec['name']}: no seed at all for {', '.join(empty)}")
    return cells


def attach_reported(cells: list[CellResult], spec: dict[str, Any], reported: pd.DataFrame) -> None:
    table_no = spec["config"].get("paper_table")
    if table_no is None:
        return
    metric = "test_err" if spec["config"].get("metric") == "error" else "test_acc"
    rows = reported[(reported["table"] == table_no) & (reported["metric"] == metric)
                    & reported["source"].str.startswith(PAPER_SOURCE)]
    for cell in cells:
        match = rows[(rows["model"] == cell.model) & (rows["method"] == cell.method)
                     & (rows["dataset"] == cell.paper_dataset)]
        if len(match):
            cell.paper_mean = float(match["mean"].iloc[0])
            cell.paper_std = float(match["std"].iloc[0]) if not pd.isna(match["std"].iloc[0]) else float("nan")


def compare(cells: list[CellResult], spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Tests of every group's reference method against each other method of the group."""
    candidates = spec["config"].get("compare_to", [])
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
                tests.append({"table": spec["name"], "group": group, "model": cell.model,
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


def write_table(spec: dict[str, Any], runs_dir: Path, reported_csv: Path, out_prefix: Path, tests_out: Path,
                *, metric: str = "test_acc_final", allow_missing: bool = False) -> list[CellResult]:
    cells = load_cells(spec, runs_dir, metric, allow_missing)
    reported = pd.read_csv(reported_csv)
    attach_reported(cells, spec, reported)
    tests = compare(cells, spec)
    lower = spec["config"].get("metric") == "error"
    mark_cells(cells, tests, lower)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_prefix.with_suffix(".csv"), _csv(cells, spec, metric))
    atomic_write_text(out_prefix.with_suffix(".md"), _markdown(cells, spec, reported, metric, runs_dir))
    atomic_write_text(out_prefix.with_suffix(".tex"), _latex(cells, spec, metric))
    atomic_write_text(out_prefix.with_suffix(".html"), _html(cells, spec, metric, runs_dir))
    columns = ["table", "group", "model", "method_a", "method_b", "test", "n_a", "n_b", "mean_diff",
               "statistic", "df", "p", "p_holm", "effect_size", "ci_low", "ci_high"]
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
    return f"{text} (n={cell.n}){cell.mark}"


def _grid(cells: list[CellResult], spec: dict[str, Any], render) -> tuple[list[str], list[list[str]]]:
    """Rows and columns as the paper prints them; ``render(cell_or_None)`` gives each entry."""
    groups = _ordered(c.group for c in cells)
    methods = spec["config"]["methods"]
    lookup = {(c.group, c.method): c for c in cells}
    if spec["config"].get("layout", "models_as_rows") == "methods_as_rows":
        header = ["Method"] + groups
        rows = [[m] + [render(lookup.get((g, m))) for g in groups] for m in methods]
    else:
        header = ["Model"] + methods
        rows = [[g] + [render(lookup.get((g, m))) for m in methods] for g in groups]
    return header, rows


def _metric_name(spec) -> str:
    return "test error (%)" if spec["config"].get("metric") == "error" else "test accuracy (%)"


def _footer(cells: list[CellResult], spec: dict[str, Any], metric: str) -> list[str]:
    settings = spec.get("settings", {})
    reference = ", ".join(spec["config"].get("compare_to", [])) or "none"
    notes = [
        f"Metric: {_metric_name(spec)} from `{metric}` of each run; mean ± sample std over seeds, n seeds per cell.",
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
    return notes


def _selection_notes(spec: dict[str, Any]) -> list[str]:
    """Which swept values the final runs used, and the validation scores they were chosen by."""
    from .selection import describe

    selection = (spec.get("settings") or {}).get("selection", {})
    paths = _ordered(c["selection"] for c in spec["cells"] if c.get("selection"))
    if selection.get("use") == "paper":
        return ["Hyper-parameters: the configured (paper's) values; sweeps were skipped (sweeps.use: paper)."]
    notes = []
    if paths:
        notes.append(f"Swept hyper-parameters were chosen on the validation split (mean over sweep seeds "
                     f"{selection.get('seeds')}); the test set played no part:")
    for path in paths:
        notes.append(describe(json.loads(Path(path).read_text())))
    return notes


def _html(cells: list[CellResult], spec: dict[str, Any], metric: str, runs_dir: Path) -> str:
    """The table for Snakemake's HTML report: our numbers with the paper's, and the notes."""
    def render(cell: CellResult | None) -> Cell | str:
        if cell is None:
            return "–"
        paper = "" if math.isnan(cell.paper_mean) else f"paper {_fmt(cell.paper_mean)}"
        return Cell(_cell_text(cell, ("", "")), best=cell.best, note=paper)

    header, rows = _grid(cells, spec, render)
    caption = f"{_metric_name(spec)}, mean ± std over seeds (n); bold: best per model; the paper's value below"
    return html_page(f"{spec['name']}: {spec['config']['title']}", paragraphs=_teacher_lines(spec, runs_dir),
                     tables=[html_table(header, rows, caption=caption)], notes=_footer(cells, spec, metric))


def _teacher_lines(spec: dict[str, Any], runs_dir: Path) -> list[str]:
    """Teacher accuracies, as the paper gives them in its captions (final-epoch test accuracy)."""
    lines = []
    for label, run_ids in spec.get("teachers", {}).items():
        values = [json.loads((runs_dir / r / "metrics.json").read_text())["test_acc_final"] for r in run_ids]
        series = pd.Series(values, dtype=float)
        spread = f" ± {_fmt(series.std(ddof=1))}" if len(values) > 1 else ""
        lines.append(f"Teacher {label}: {_fmt(series.mean())}{spread}% test accuracy (n={len(values)}).")
    return lines + ([""] if lines else [])


def _markdown(cells: list[CellResult], spec: dict[str, Any], reported: pd.DataFrame, metric: str,
              runs_dir: Path) -> str:
    config = spec["config"]
    title = f"# {spec['name']}: {config['title']}"
    lines = [title, ""] + _teacher_lines(spec, runs_dir)
    lines += [f"Ours ({_metric_name(spec)}, dataset `{(spec.get('settings') or {}).get('dataset', '')}`):", ""]
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
        if config.get("other_implementations"):
            lines += _other_implementations(spec, reported)
    lines += [f"- {note}" for note in _footer(cells, spec, metric)]
    return "\n".join(lines) + "\n"


def _other_implementations(spec, reported: pd.DataFrame) -> list[str]:
    config = spec["config"]
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


def _latex(cells: list[CellResult], spec: dict[str, Any], metric: str) -> str:
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
    config = spec["config"]
    notes = " ".join(_latex_escape(n) for n in _footer(cells, spec, metric)[:2])
    caption = (f"{_latex_escape(config['title'])}: {_latex_escape(_metric_name(spec))}, mean $\\pm$ std over "
               f"seeds; the paper's value in brackets. {notes}")
    lines = [
        "% generated by introspect; requires \\usepackage{booktabs}",
        "\\begin{table}[t]", "\\centering", f"\\caption{{{caption}}}",
        f"\\label{{tab:{_latex_label(spec['name'])}}}",
        "\\begin{tabular}{l" + "c" * (len(header) - 1) + "}", "\\toprule",
        " & ".join(_latex_escape(h) for h in header) + " \\\\", "\\midrule",
    ]
    lines += [" & ".join([_latex_escape(r[0])] + r[1:]) + " \\\\" for r in rows]
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def _latex_label(name: str) -> str:
    """A \\label key: LaTeX reads labels verbatim, so anything beyond letters, digits and :._- becomes -."""
    return re.sub(r"[^A-Za-z0-9:._-]", "-", name)


def _csv(cells: list[CellResult], spec: dict[str, Any], metric: str) -> str:
    records = [{
        "table": spec["name"], "group": c.group, "model": c.model, "method": c.method,
        "metric": _metric_name(spec), "source_metric": metric, "n": c.n, "mean": c.mean, "std": c.std,
        "seeds": " ".join(str(s) for s in sorted(c.values)),
        "values": " ".join(f"{c.values[s]:.4f}" for s in sorted(c.values)),
        "paper_dataset": c.paper_dataset, "paper_mean": c.paper_mean, "paper_std": c.paper_std,
        "diff_vs_paper": c.mean - c.paper_mean, "best": c.best, "significance": c.mark,
        "missing_runs": " ".join(c.missing), "run_ids": " ".join(c.run_ids),
    } for c in cells]
    return pd.DataFrame(records).to_csv(index=False, float_format="%.4f")
