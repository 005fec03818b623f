"""How claim results are shown: ``claims.csv`` (every column), ``claims.md`` and ``claims.html`` (a table of
counts and the resolved claims first, then the open ones, what resolving them would take, the paper's
sentences, the sanity flags and the rules), and the end-of-run summary. Every piece of config or result text
is escaped for its format (:mod:`.escape`); numbers go through :func:`.numbers.format_number`."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from pathlib import Path

import pandas as pd

from ..analysis import escape
from ..analysis.html_page import HtmlCell, html_page, html_table
from ..analysis.numbers import format_number
from ..analysis.sanity import Flag
from ..io import atomic_write_text
from .engine import ClaimResult
from .majority import MAJORITY, counted
from .repeat import OPEN_OUTCOME, expected_counts
from .rules import CONTRADICTED, INCONCLUSIVE, OPEN, REPLICATED, RESOLVED, SMALLER, UNDERPOWERED, WITHHELD

FLIP_NOTE = ("Verdicts near a threshold can flip across machines whose arithmetic differs: the same commit and seed "
             "give bit-identical numbers on one machine; pinned to AVX2 (the default) they still differ in the last "
             "digits between CPU vendors (measured: Intel vs AMD, 278 of 305 runs); the fingerprint says whether "
             "a result set matches the committed one (docs/determinism.md).")
COLUMNS = [f.name for f in fields(ClaimResult)] + ["flag_codes"]  # flag_codes: the rules, space-separated
RULES = [
    "Effects are mean paired differences A − B over seeds, in accuracy points (pp); p is the two-sided paired "
    "t-test against zero; each claim's own test (A > B: that t-test; A ≈ B: TOST within the margin; A not better "
    "than B: one-sided non-superiority at the smallest effect of interest) is Holm-adjusted within its family.",
    "The corrected level of a claim is alpha / m for the m testable claims of its family (Holm's first-step "
    "threshold, the level at which a claim is significant whatever the others' p-values). The corrected "
    "interval, the MDE (80% power; for A ≈ B the narrowest margin a TOST establishes) and seeds needed are "
    "computed at it, from the noncentral t (TOST: exact integration); tools/verify_claims.py checks them by "
    "simulation.",
    "A > B: replicated when Holm p < 0.05 with A ahead; contradicted when B is significantly ahead; smaller than "
    "reported when the corrected interval lies below the paper's effect, only where the dataset, model and "
    "budget are the paper's (elsewhere the verdict is about the direction only and says so).",
    "A ≈ B: replicated when the TOST's Holm p < 0.05; contradicted only when the corrected interval lies entirely "
    "outside ±margin. A not better than B: contradicted when the corrected interval lies above 0; replicated when "
    "the one-sided test puts A − B below the smallest effect of interest.",
    "Anything else is inconclusive, 'underpowered' when the MDE exceeds the target: the paper's effect, the "
    "margin, or the config's smallest effect of interest where the paper gives no positive effect. A resolved "
    "verdict on two cells within one test image of each other on every seed is withheld (test-set resolution).",
    "Seeds needed: paired seeds for 80% power at the corrected level against the target, at our spread (this "
    "config) and at the spread of the paper's reported standard deviations (the paper config); GPU-hours: the "
    "seeds of the config they are priced in (introspect.cluster.resources).",
    "Headline numbers are final-epoch test accuracies; the optimistic column repeats the comparison on each "
    "run's best test epoch (test_acc_max), likely the paper's statistic, chosen on the test data.",
    FLIP_NOTE,
]


def flag_text(flag: Flag) -> str:
    cell = flag.method + (f" vs {flag.other}" if flag.other else "")
    return f"{cell} [{flag.code}]: {flag.text}"


def claims_frame(results: Sequence[ClaimResult]) -> pd.DataFrame:
    rows = []
    for r in results:
        row = asdict(r)
        row["flags"] = "; ".join(flag_text(f) for f in r.flags)
        row["flag_codes"] = " ".join(dict.fromkeys(f.code for f in r.flags))
        rows.append({k: escape.csv_cell(v) for k, v in row.items()})
    return pd.DataFrame(rows, columns=COLUMNS).astype({"seeds_needed": "Int64", "paper_seeds_needed": "Int64"})


OUTCOMES = [(REPLICATED, (REPLICATED,)), (CONTRADICTED, (CONTRADICTED,)), (SMALLER, (SMALLER,)),
            (WITHHELD, (WITHHELD,)), (OPEN_OUTCOME, (INCONCLUSIVE, UNDERPOWERED))]
COUNTS_HEADER = ["Verdict", "Claims", "Expected in a rerun"]


def counts(results: Sequence[ClaimResult]) -> list[tuple[str, int, float]]:
    """Per outcome: the claims this result set gives it, and the number a rerun with new seeds is expected to
    give it (the sum of the claims' rerun shares, :mod:`.repeat`; NaN when not computed). The open outcome
    (inconclusive, underpowered or not) is one row: reruns do not re-plan power."""
    expected = expected_counts(results)
    results = counted(results)  # a majority claim's members count through it
    computed = any(math.isfinite(r.repeat_probability) for r in results)
    rows = [(label, sum(r.verdict in verdicts for r in results), expected[label] if computed else math.nan)
            for label, verdicts in OUTCOMES]
    # a claim without a repeat probability (a similar_pairs claim: one model, no seeds) adds to no expected count
    return rows + [("total", len(results), math.fsum(expected.values()) if computed else math.nan)]


def _count_rows(results: Sequence[ClaimResult]) -> list[list[str]]:
    return [[v, str(n), format_number(e, ".1f")] for v, n, e in counts(results)]


def _repeat(r: ClaimResult) -> str:
    return format_number(r.repeat_probability, ".2f")


SAYS = {"greater": "A > B", "not_better": "A not better than B", "less_variable": "A less variable than B",
        "cheaper": "A costs less than B", MAJORITY: "A > most of the B"}


def _says(r: ClaimResult) -> str:
    says = f"A ≈ B (±{r.margin:g} pp)" if r.direction == "equivalent" else SAYS.get(r.direction, r.direction)
    return says + (" (its own table disagrees)" if r.table_disagrees else "")


def _target(r: ClaimResult) -> str:
    return f"{format_number(r.target)} ({r.target_source})" if r.target_source else format_number(None)


def _ours(r: ClaimResult) -> str:
    return (f"{format_number(r.effect, '+.2f')} [{format_number(r.corrected_ci_low, '+.2f')}, "
            f"{format_number(r.corrected_ci_high, '+.2f')}]")


def _optimistic(r: ClaimResult) -> str:
    if not r.optimistic_verdict:
        return format_number(None)
    return (f"{format_number(r.optimistic_effect, '+.2f')} [{format_number(r.optimistic_ci_low, '+.2f')}, "
            f"{format_number(r.optimistic_ci_high, '+.2f')}]: {r.optimistic_verdict}")


def _needed(r: ClaimResult) -> str:
    if r.verdict not in OPEN:
        return ""
    return format_number(None) if r.seeds_needed is None else str(r.seeds_needed)


def _paper_needed(r: ClaimResult) -> str:
    if r.verdict not in OPEN:
        return ""
    return format_number(None) if r.paper_seeds_needed is None else str(r.paper_seeds_needed)


RESOLVED_HEADER = ["Claim", "A vs B", "Model", "Paper says", "Paper A−B", "Ours A−B [corrected CI]", "Verdict",
                   "P(rerun repeats it)", "Why"]
OPEN_HEADER = ["Claim", "A vs B", "Model", "Paper says", "Paper A−B", "Ours A−B [corrected CI]", "n (unpaired)",
               "Holm p", "MDE", "Target", "Verdict", "P(rerun repeats it)", "Why", "Seeds needed (ours)",
               "Seeds needed (paper's spread)", "GPU-hours", "Flags", "Best test epoch A−B (optimistic)"]


def _resolved_row(r: ClaimResult) -> list[str]:
    return [r.name, f"{r.method_a} vs {r.method_b}", r.model, _says(r), format_number(r.paper_effect, "+.2f"),
            _ours(r), r.verdict, _repeat(r), r.reason]


def _open_row(r: ClaimResult) -> list[str]:
    return [r.name, f"{r.method_a} vs {r.method_b}", r.model, _says(r), format_number(r.paper_effect, "+.2f"),
            _ours(r), f"{r.n_pairs} ({r.n_unpaired})", format_number(r.p_holm, ".3g"), format_number(r.mde),
            _target(r), r.verdict, _repeat(r), r.reason, _needed(r),
            _paper_needed(r), format_number(r.gpu_hours_needed, ".1f"), "; ".join(flag_text(f) for f in r.flags),
            _optimistic(r)]


def what_it_would_take(results: Sequence[ClaimResult], cell_hours: Mapping[str, float] | None = None,
                       paper: bool = False) -> str:
    """One line: how many open claims a known number of seeds would resolve, and at what cost, each cell
    counted once (``cell_hours``: "view · group · method" -> one seed's GPU-hours; ``paper``: priced in the
    paper config, at the seeds the paper's spread needs)."""
    open_claims = [r for r in results if r.verdict in OPEN and r.direction != MAJORITY]  # members are planned
    if not open_claims:
        return "Every claim is resolved (or withheld) by this result set."
    known = [r for r in open_claims if r.seeds_needed is not None]
    most = max((r.seeds_needed for r in known), default=None)
    text = (f"What it would take: {len(known)} of {len(open_claims)} open claims have a seed count for 80% power "
            f"at their corrected level at our spread (at most {most if most is not None else '–'} seeds).")
    seeds: dict[str, int] = {}
    for r in open_claims:
        n = r.paper_seeds_needed if paper else r.seeds_needed
        for method in (r.method_a, r.method_b) if n is not None else ():
            key = f"{r.model} · {method}"
            seeds[key] = max(seeds.get(key, 0), n)
    priced = {k: n for k, n in seeds.items() if k in (cell_hours or {})}
    if priced:
        where = "the paper config, at the seeds the paper's reported spread needs" if paper else "this config"
        total = sum(n * cell_hours[k] for k, n in priced.items())
        text += (f" Trained in {where}, the {len(priced)} cells they name would cost {total:.1f} GPU-hours in all "
                 "(each cell once, at the most seeds any of its claims needs).")
    if len(known) < len(open_claims):
        text += " The others have no spread to plan with."
    return text + " claims_next.yaml adds the seeds (up to max_seeds) to the cells that need them, by value."


def flag_list(results: Sequence[ClaimResult]) -> list[tuple[Flag, list[str]]]:
    """Every flag under some claim, once, with the claims it touches."""
    touched: dict[Flag, list[str]] = {}
    for r in results:
        for f in r.flags:
            touched.setdefault(f, []).append(r.name)
    return list(touched.items())


def _flag_line(flag: Flag, names: Sequence[str], shown: int = 6) -> str:
    listed = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
    return (f"⚑{flag.code} ({flag.rule}) on {flag.model} · {flag_text(flag)}; touches {len(names)} "
            f"claim{'s' if len(names) != 1 else ''}: {listed}")


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(escape.markdown(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(escape.markdown(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def claims_summary_block(results: Sequence[ClaimResult]) -> str:
    """The opening of claims.md and of the end-of-run summary: the counts and the resolved claims."""
    resolved = [r for r in results if r.verdict in RESOLVED]
    block = _md_table(COUNTS_HEADER, _count_rows(results))
    if resolved:
        block += "\n\n" + _md_table(RESOLVED_HEADER, [_resolved_row(r) for r in resolved])
    else:
        block += "\n\nNo claim is resolved by this result set."
    return block


Costs = tuple[Mapping[str, float], bool]  # what_it_would_take's cell_hours and paper
NO_COSTS: Costs = ({}, False)


def claims_markdown(results: Sequence[ClaimResult], title: str = "Claims", costs: Costs = NO_COSTS) -> str:
    open_claims = [r for r in results if r.verdict not in RESOLVED]
    parts = [f"# {escape.markdown(title)}", claims_summary_block(results)]
    if open_claims:
        parts += ["## Open claims", _md_table(OPEN_HEADER, [_open_row(r) for r in open_claims])]
    parts += ["## What it would take", escape.markdown(what_it_would_take(results, *costs))]
    parts += ["## The paper's sentences",
              "\n".join(f"- {escape.markdown(r.name)}: {escape.markdown(r.text)}" for r in results if r.text)
              or "No claim quotes the paper."]
    flags = flag_list(results)
    if flags:
        parts += ["## Sanity flags under claims", "\n".join(f"- {escape.markdown(_flag_line(f, n))}" for f, n in flags)]
    parts += ["## How to read it", "\n".join(f"- {escape.markdown(rule)}" for rule in RULES)]
    return "\n\n".join(parts) + "\n"


def _verdict_second(header: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """The HTML tables' columns with the verdict right after the claim: the report shows a result beside a
    side panel half the window wide, and at 1400 pixels the verdict is in view without scrolling."""
    i = header.index("Verdict")
    order = [0, i] + [k for k in range(1, len(header)) if k != i]
    return [header[k] for k in order], [[row[k] for k in order] for row in rows]


def claims_html(results: Sequence[ClaimResult], title: str = "Claims", costs: Costs = NO_COSTS) -> str:
    resolved = [r for r in results if r.verdict in RESOLVED]
    open_claims = [r for r in results if r.verdict not in RESOLVED]
    tables = [html_table(COUNTS_HEADER, [[v, HtmlCell(n), HtmlCell(e)] for v, n, e in _count_rows(results)],
                         caption="Counts (expected: in a rerun with new seeds, claims.repeat)")]
    if resolved:
        tables.append(html_table(*_verdict_second(RESOLVED_HEADER, [_resolved_row(r) for r in resolved]),
                                 caption="Resolved claims", label_columns=3))
    if open_claims:
        tables.append(html_table(*_verdict_second(OPEN_HEADER, [_open_row(r) for r in open_claims]),
                                 caption="Open claims", label_columns=3))
    tables.append(html_table(["Claim", "The paper says"], [[r.name, r.text] for r in results if r.text],
                             caption="The paper's sentences", label_columns=2))
    notes = [_flag_line(f, n) for f, n in flag_list(results)] + RULES
    return html_page(title, tables=tables, paragraphs=[what_it_would_take(results, *costs)], notes=notes)


def summary(results: Sequence[ClaimResult], costs: Costs = NO_COSTS) -> str:
    """The end-of-run summary: the counts and resolved claims (plain text), what the rest would take, and the
    smaller-than-reported ones named."""
    if not results:
        return "No claims were evaluated."
    lines = [f"{'verdict':<31} {'claims':>6}  expected in a rerun"]
    lines += [f"{verdict:<31} {n:>6}  {format_number(e, '.1f')}" for verdict, n, e in counts(results)]
    resolved = [r for r in results if r.verdict in RESOLVED]
    lines += ["", "Resolved:" if resolved else "Resolved: none"]
    lines += [f"  {r.name}: {r.verdict} ({_ours(r)} pp vs paper {format_number(r.paper_effect, '+.2f')}; "
              f"a rerun repeats it with probability {_repeat(r)})" for r in resolved]
    smaller = [r.name for r in resolved if r.verdict == SMALLER]
    if smaller:
        more = f" and {len(smaller) - 8} more" if len(smaller) > 8 else ""
        lines.append(f"Smaller than reported: {', '.join(smaller[:8])}{more}")
    lines += ["", what_it_would_take(results, *costs)]
    flagged = flag_list(results)
    if flagged:
        lines += ["", "Sanity flags under claims:"] + [f"  {_flag_line(f, n)}" for f, n in flagged[:20]]
        if len(flagged) > 20:
            lines.append(f"  ... and {len(flagged) - 20} more (claims.md)")
    return "\n".join(lines)


def write_claims(results: Sequence[ClaimResult], out_prefix: Path, title: str = "Claims",
                 costs: Costs = NO_COSTS) -> None:
    """``<out_prefix>.md``, ``.csv`` (every column of ClaimResult) and ``.html``."""
    atomic_write_text(out_prefix.with_suffix(".csv"), claims_frame(results).to_csv(index=False))
    atomic_write_text(out_prefix.with_suffix(".md"), claims_markdown(results, title, costs))
    atomic_write_text(out_prefix.with_suffix(".html"), claims_html(results, title, costs))
