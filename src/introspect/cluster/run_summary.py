"""The end of a workflow run (the Snakefile's ``onsuccess``): what this call built, read from Snakemake's
own log (:mod:`.snakemake_log`), which requested files were already up to date, and the claims' verdicts
only when this call produced the claims.

Read from the log, not from the files on disk: a file that exists may be from an earlier call, and a
summary of old results after a call that built nothing is what made a no-op look like a success. The text
is for a terminal: plain, with every control character of a path or a claim's name shown as U+FFFD.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..analysis.escape import terminal_text
from ..analysis.headline import claims_summary
from ..io import is_file
from ..runs.record import RunFileError
from .snakemake_log import Job, parse_log

TRAINING_RULES = ("train", "teacher", "distill", "le_warmup", "le_stage2", "sweep_point")
INTERNAL_RULES = ("job_files", "config_file", "preflight", "pack_anchor", "select_hyperparameters")
SHOWN = 12  # outputs written listed before "... and N more"
SHOWN_UP_TO_DATE = 4  # requested outputs that were up to date: a few, as examples


def built_jobs(log_text: str) -> list[Job]:
    """Every job the log says finished in this call, in the order they finished."""
    return parse_log(log_text).finished


def grouped(paths: list[str]) -> list[str]:
    """Paths with one stem in one folder as one entry, ``folder/stem.{md,csv}``, in first-seen order (a table
    is four files, a figure three)."""
    suffixes: dict[tuple[str, str], list[str]] = {}
    for path in paths:
        parent, name = path.rpartition("/")[::2]
        stem, dot, suffix = name.rpartition(".")
        key = (parent, stem) if dot and stem else (parent, name)
        suffixes.setdefault(key, []).append(suffix if dot and stem else "")
    entries = []
    for (parent, stem), ends in suffixes.items():
        tail = "" if ends == [""] else f".{ends[0]}" if len(ends) == 1 else ".{" + ",".join(ends) + "}"
        entries.append(f"{parent}/{stem}{tail}" if parent else f"{stem}{tail}")
    return entries


def _shown(entries: list[str], shown: int = SHOWN) -> list[str]:
    more = [f"... and {len(entries) - shown} more"] if len(entries) > shown else []
    return [f"  {e}" for e in entries[:shown] + more]


def run_summary(log_text: str, requested: list[str], claims_csv: Path | None = None) -> str:
    """The lines ``onsuccess`` prints: the jobs this call built by rule, the files they made (training runs
    counted, not listed), the requested files it did not build because they were up to date, and the claims'
    verdicts if this call wrote ``claims_csv``."""
    jobs = [job for job in built_jobs(log_text) if job.rule != "all"]
    if not jobs:
        return terminal_text(f"\nNothing was built in this call: every requested file was already up to date "
                             f"({len(requested)} file(s)). Nothing was trained.")
    by_rule = Counter(job.rule for job in jobs)
    runs = sum(by_rule[rule] for rule in TRAINING_RULES)
    lines = [f"\nBuilt in this call: {len(jobs)} job(s), {runs} of them training runs ("
             + ", ".join(f"{rule} {n}" for rule, n in by_rule.items()) + ")."]
    views = grouped([p for job in jobs if job.rule not in TRAINING_RULES + INTERNAL_RULES for p in job.outputs])
    if views:
        lines += ["Outputs written:", *_shown(views)]
    built = {p for job in jobs for p in job.outputs}
    up_to_date = grouped([p for p in requested if p not in built])
    if up_to_date:
        lines += [f"Not built in this call (already up to date): {len(up_to_date)} requested output(s)",
                  *_shown(up_to_date, SHOWN_UP_TO_DATE)]
    if claims_csv is not None:
        lines += _claims_lines(claims_csv, built, requested)
    return terminal_text("\n".join(lines))


def _claims_lines(claims_csv: Path, built: set[str], requested: list[str]) -> list[str]:
    """The claims' verdicts from the claims.csv this call wrote; none from an earlier call's."""
    if str(claims_csv) not in built:
        return [f"\nThe claims were not tested again in this call: {claims_csv} is an earlier call's, up to date "
                "(its verdicts are not repeated here)."] if str(claims_csv) in requested else []
    if not is_file(claims_csv):
        return []
    try:
        text = claims_summary(claims_csv)
    except RunFileError as error:
        return [f"\nClaims: {error}"]
    views = claims_csv.with_suffix("")
    return [f"\nClaims ({claims_csv}; each claim with its reasons: {views}.md, {views}.html):", text]
