"""The end of a workflow run (the Snakefile's ``onsuccess``): what this call built, read from Snakemake's
own log, which requested files were already up to date, and the claims' summary only when this call
produced the claims.

Read from the log, not from the files on disk: a file that exists may be from an earlier call, and a
summary of old results after a call that built nothing is what made a no-op look like a success.

No torch, no Snakemake import: it only reads text (through :mod:`introspect.io`).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..io import FileRefused, is_file, read_text

_START = re.compile(r"^(?:local)?(?:rule|checkpoint) (\S+):\s*$")
_FIELD = re.compile(r"^    (\w+): (.*)$")
_FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\S+)\)")
TRAINING_RULES = ("train", "teacher", "distill", "le_warmup", "le_stage2", "sweep_point")
INTERNAL_RULES = ("job_files", "config_file", "preflight", "pack_anchor", "select_hyperparameters")
SHOWN = 12  # files listed per group before "... and N more"


@dataclass
class Job:
    rule: str
    jobid: str = ""
    outputs: list[str] = field(default_factory=list)
    wildcards: str = ""


def built_jobs(log_text: str) -> list[Job]:
    """Every job the log says finished in this call, in the order they finished."""
    started: dict[str, Job] = {}
    current: Job | None = None
    done: list[Job] = []
    for line in log_text.splitlines():
        start = _START.match(line)
        if start:
            current = Job(start.group(1))
            continue
        match = _FIELD.match(line) if current is not None else None
        if match:
            name, value = match.groups()
            if name == "output":
                current.outputs = [p.strip() for p in value.split(", ") if p.strip()]
            elif name == "wildcards":
                current.wildcards = value.strip()
            elif name == "jobid":
                current.jobid = value.strip()
                started[current.jobid] = current
            continue
        current = None
        finished = _FINISHED.match(line)
        if finished and finished.group(1) in started:
            done.append(started.pop(finished.group(1)))
    return done


def _shown(paths: list[str]) -> list[str]:
    more = [f"... and {len(paths) - SHOWN} more"] if len(paths) > SHOWN else []
    return [f"  {p}" for p in paths[:SHOWN]] + [f"  {m}" for m in more]


def read_logs(log: str | Path | list | None) -> str:
    """The text of Snakemake's log file(s) as ``onsuccess``/``onerror`` receive them (a path or a list)."""
    text = ""
    for path in [log] if isinstance(log, (str, Path)) else list(log or []):
        try:
            text += read_text(path, "log")
        except FileRefused:
            pass
    return text


def run_summary(log_text: str, requested: list[str], claims_md: Path | None = None) -> str:
    """The lines ``onsuccess`` prints: the jobs this call built by rule, the files they made (training runs
    counted, not listed), the requested files that were up to date already, and the claims' summary if
    this call wrote ``claims_md``."""
    jobs = [job for job in built_jobs(log_text) if job.rule != "all"]
    if not jobs:
        lines = ["\nNothing was built in this call: every requested file was already up to date "
                 f"({len(requested)} file(s)). Nothing was trained."]
    else:
        by_rule = Counter(job.rule for job in jobs)
        runs = sum(by_rule[rule] for rule in TRAINING_RULES)
        lines = [f"\nBuilt in this call: {len(jobs)} job(s), {runs} of them training runs ("
                 + ", ".join(f"{rule} {n}" for rule, n in by_rule.items()) + ")."]
        views = [p for job in jobs if job.rule not in TRAINING_RULES + INTERNAL_RULES for p in job.outputs]
        if views:
            lines += ["Outputs written:", *_shown(views)]
    built = {p for job in jobs for p in job.outputs}
    up_to_date = [p for p in requested if p not in built]
    if jobs and up_to_date:
        lines += [f"Requested but not rebuilt (already up to date): {len(up_to_date)} file(s)", *_shown(up_to_date)]
    if claims_md is not None and str(claims_md) in built and is_file(claims_md):
        lines += [f"\nClaims ({claims_md}):", claims_summary(read_text(claims_md, "text"))]
    return "\n".join(lines)


def claims_summary(text: str) -> str:
    """The opening of claims.md (counts and resolved claims) and its flags under claims: the markdown up to
    its open-claims table, then its flag list (at most 20 lines)."""
    opening = text.split("\n## ", 1)[0].split("\n", 1)[-1].strip()
    marker = "## Sanity flags under claims\n\n"
    flags = text.split(marker, 1)[1].split("\n\n", 1)[0] if marker in text else ""
    lines = flags.splitlines()
    more = f"\n  ... and {len(lines) - 20} more (claims.md)" if len(lines) > 20 else ""
    return opening + ("\n\nSanity flags under claims:\n" + "\n".join(lines[:20]) + more if lines else "")
