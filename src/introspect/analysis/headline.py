"""The README's headline results, generated from a results directory instead of typed: where they came from
(commit, machine, library versions, as the runs recorded them), the claim verdicts with the resolved claims,
the spread of the MDEs against the paper's effects, and the sanity flags by rule (``introspect summary``)."""
from __future__ import annotations

import io
import statistics
from collections import Counter
from pathlib import Path

import pandas as pd

from ..claims.engine import RESOLVED
from ..claims.render import COUNTS_HEADER, FLIP_NOTE, OUTCOMES
from ..claims.repeat import RERUN_FIELDS
from ..io import FileRefused, read_json, read_text
from ..runs.record import DEFAULT_CONFIG_NAME, ResultsLayout, RunFileError
from . import escape
from .numbers import format_number


def provenance(layout: ResultsLayout) -> dict[str, list[str]]:
    """The distinct commits, hosts, platforms, torch versions and CPU kernel sets the finished runs recorded."""
    seen: dict[str, Counter] = {key: Counter() for key in ("git_commit", "host", "platform", "torch", "cpu")}
    for run_id in layout.finished_run_ids():
        try:
            metrics = read_json(layout.run(run_id).metrics, "metrics")
        except FileRefused:
            continue
        if not isinstance(metrics, dict):
            continue
        for key in ("git_commit", "host", "platform"):
            seen[key][str(metrics.get(key) or "unknown")] += 1
        versions = metrics.get("versions") if isinstance(metrics.get("versions"), dict) else {}
        seen["torch"][str(versions.get("torch", "unknown"))] += 1
        device = metrics.get("device") if isinstance(metrics.get("device"), dict) else {}
        if "cpu_kernels" in device:  # the CPU, the kernel set and the threads (introspect.kernels)
            pinned = "pinned" if device.get("kernels_pinned") else "native"
            seen["cpu"][f"{device.get('cpu')}, {device['cpu_kernels']} kernels ({pinned}), "
                        f"{device.get('threads')} thread(s)"] += 1
    return {key: [f"{value} ({n} runs)" for value, n in counts.most_common()] for key, counts in seen.items()}


def read_claims(path: Path) -> pd.DataFrame:
    """A claims.csv as written by the claims job; a missing or unreadable file is a RunFileError naming it."""
    try:
        return pd.read_csv(io.StringIO(read_text(path, "csv")))
    except FileRefused as error:
        raise RunFileError(f"{error}; build it with `snakemake claims` first") from None
    except (ValueError, pd.errors.ParserError) as error:
        raise RunFileError(f"{path}: cannot read it ({' '.join(str(error).split())}); build it with "
                           "`snakemake claims` first") from None


RESOLVED_HEADER = ["Resolved claim", "Ours A−B [corrected CI]", "Paper A−B", "Verdict", "P(rerun repeats it)"]


def verdict_rows(claims: pd.DataFrame) -> list[list[str]]:
    """Claims and expected claims in a rerun per outcome, then the total (a majority claim's members are counted
    through it, not again)."""
    part_of = claims.get("part_of", pd.Series(None, index=claims.index, dtype=object))
    counted = claims[part_of.isna() | (part_of.astype(str) == "")]
    rows = [[label, str(int(counted.verdict.isin(verdicts).sum())), _expected(counted, label)]
            for label, verdicts in OUTCOMES]
    expected = [counted[RERUN_FIELDS[label]].sum() for label, _ in OUTCOMES if RERUN_FIELDS[label] in counted]
    return rows + [["total", str(len(counted)), format_number(sum(expected) if expected else None, ".1f")]]


def resolved_rows(claims: pd.DataFrame) -> list[list[str]]:
    """One row per resolved claim: its name, our effect with its corrected interval, the paper's, the verdict."""
    return [[str(r.name), f"{format_number(r.effect, '+.2f')} [{format_number(r.corrected_ci_low, '+.2f')}, "
             f"{format_number(r.corrected_ci_high, '+.2f')}]", format_number(r.paper_effect, "+.2f"), str(r.verdict),
             format_number(getattr(r, "repeat_probability", None), ".2f")]
            for r in claims[claims.verdict.isin(RESOLVED)].itertuples()]


def table_lines(header: list[str], rows: list[list[str]], *, markdown: bool) -> list[str]:
    """A Markdown table (the first column, the only one with config text, escaped) or, for a terminal, aligned
    plain columns (control characters shown as U+FFFD)."""
    if markdown:
        cells = [header] + [[escape.markdown(row[0]), *row[1:]] for row in rows]
        return [f"| {' | '.join(cells[0])} |", "|" + "---|" * len(header)] + [f"| {' | '.join(r)} |" for r in cells[1:]]
    cells = [[escape.one_line(value) for value in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in cells]


def claims_lines(claims: pd.DataFrame, *, markdown: bool) -> list[str]:
    """The verdict counts, the resolved claims, the power of the rest and the sanity flags by rule."""
    lines = table_lines(COUNTS_HEADER, verdict_rows(claims), markdown=markdown) + [""]
    resolved = resolved_rows(claims)
    if resolved:
        lines += table_lines(RESOLVED_HEADER, resolved, markdown=markdown) + [""]
    text = escape.markdown if markdown else escape.one_line
    return lines + [text(line) for line in _power_line(claims) + _flag_lines(claims)]


def headline(results_dir: str | Path, config_name: str = DEFAULT_CONFIG_NAME, *, markdown: bool = True) -> str:
    """The README's results section, from ``results_dir`` and the views of ``config_name``: Markdown, or with
    ``markdown=False`` the same content as plain text for a terminal (aligned columns, no escapes or code marks)."""
    text = escape.markdown if markdown else escape.one_line
    code = "`" if markdown else ""
    layout = ResultsLayout(results_dir, config_name)
    claims = read_claims(layout.claims("csv"))
    origin = provenance(layout)
    lines = [f"Generated by {code}python -m introspect summary --results {text(results_dir)}{code}.", ""]
    lines += [f"- {label}: {text('; '.join(origin[key]) or 'no finished runs')}"
              for label, key in (("Commit", "git_commit"), ("Machine", "host"), ("Platform", "platform"),
                                 ("torch", "torch"), ("CPU", "cpu"))]
    lines += [f"- {FLIP_NOTE}", ""] + claims_lines(claims, markdown=markdown)
    return "\n".join(lines) + "\n"


def _expected(claims: pd.DataFrame, label: str) -> str:
    """The expected count of an outcome in a rerun (the claims' rerun shares summed, claims.repeat; a majority
    claim's members count through it, so ``claims`` holds none)."""
    column = claims.get(RERUN_FIELDS[label])
    return format_number(None) if column is None or column.isna().all() else f"{column.sum():.1f}"


def _power_line(claims: pd.DataFrame) -> list[str]:
    mde, paper = claims.mde.dropna(), claims.paper_effect.dropna().abs()
    if mde.empty:
        return []
    needed = claims.seeds_needed.dropna()
    text = (f"- MDE at the corrected level: {mde.min():.2f}–{mde.max():.2f} pp (median "
            f"{statistics.median(mde):.2f}); the paper's effects: "
            + (f"{paper.min():.2f}–{paper.max():.2f} pp (median {statistics.median(paper):.2f})." if len(paper)
               else "none."))
    if len(needed):
        text += (f" Seeds needed by the {len(needed)} open rows of claims.csv with a spread (a majority claim's "
                 f"members included): median {int(needed.median())}, "
                 f"{int((needed <= 20).sum())} of them within 20.")
    paper_needed = claims.get("paper_seeds_needed", pd.Series(dtype=float)).dropna()
    if len(paper_needed):
        text += (f" At the paper's reported spread (the paper config): median {int(paper_needed.median())} seeds "
                 f"for {len(paper_needed)} claims.")
    return [text]


def _flag_lines(claims: pd.DataFrame) -> list[str]:
    codes = Counter(code for text in claims.get("flag_codes", pd.Series(dtype=str)).dropna()
                    for code in str(text).split())
    if not codes:
        return ["- Sanity flags under claims: none."]
    listed = ", ".join(f"{code} ({n} claims)" for code, n in codes.most_common())
    return [f"- Sanity flags under claims, by rule: {listed}."]


def claims_summary(path: Path) -> str:
    """The claims of a claims.csv as a terminal shows them (plain text, aligned columns): the end-of-run summary
    of a call that wrote it."""
    return "\n".join(claims_lines(read_claims(path), markdown=False))
