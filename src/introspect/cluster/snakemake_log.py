"""Snakemake's own log, read once for the end of a run: the jobs it started and finished, the jobs that
failed, and the SLURM plugin's lines about jobs it saw end. Both the run summary (:mod:`.run_summary`) and
the failure report (:mod:`.failures`) read it through :func:`parse_log`.

The blocks are those of Snakemake 9's default formatter: a job block (``rule NAME:`` or ``localrule``,
``checkpoint``), an error block (``Error in rule NAME:``) and a group job's members, written as the same
blocks indented by four spaces. A failed job's log that ``--show-failed-logs`` printed sits between two
lines of ``=``; its text (a SLURM job's log holds a whole Snakemake of its own) is never read as blocks.

No torch, no Snakemake import: it only reads text (through :mod:`introspect.io`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..io import FileRefused, read_bytes

_JOB = re.compile(r"^((?: {4})?)(?:local)?(?:rule|checkpoint) (\S+):\s*$")
_ERROR = re.compile(r"^((?: {4})?)Error in rule (\S+?):?\s*$")
_FIELD = re.compile(r"^( *)([\w-]+): ?(.*)$")
_FINISHED = re.compile(r"^\s*Finished jobid: (\d+) \(Rule: (\S+)\)")
_SHOWN_LOG = re.compile(r"^( *)Logfile .+:$")
_FENCE = re.compile(r"^ *=+$")
_SLURM = re.compile(r"SLURM-job '(\d+)' failed, SLURM status is: '(\w+)'.*?(?:log: (\S+))?")
# introspect.cluster.slurm_status fails a PREEMPTED / NODE_FAIL job that SLURM forgot as "FAILED" (the plugin
# knows no other failure state for it) and logs this line, which restores its real end here
_NOT_REQUEUED = re.compile(r"SLURM job (\d+) ended (\w+) and SLURM no longer lists it")


@dataclass
class Job:
    """One job block of the log: a job started (``failed`` False) or an error block (``failed`` True)."""

    rule: str
    failed: bool = False
    jobid: str = ""
    wildcards: str = ""
    outputs: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    slurm_job: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """A failed job is its rule and its own log (SLURM's error blocks name no wildcards; the log is per run)."""
        return self.rule, self.logs[0] if self.logs else self.outputs[0] if self.outputs else ""


@dataclass
class SnakemakeLog:
    """What one Snakemake call's log says: ``finished`` in the order the jobs finished, ``failed`` once per
    job (a job retried and failing again counts once, its logs joined), ``slurm`` the SLURM job id -> (final
    state, SLURM log) of every job the plugin saw fail."""

    finished: list[Job] = field(default_factory=list)
    failed: list[Job] = field(default_factory=list)
    slurm: dict[str, tuple[str, str | None]] = field(default_factory=dict)


def read_logs(log: str | Path | list | None) -> str:
    """The text of Snakemake's log file(s) as ``onsuccess``/``onerror`` receive them (a path or a list);
    a file that cannot be read is left out, bytes that are not UTF-8 are shown as U+FFFD."""
    text = ""
    for path in [log] if isinstance(log, (str, Path)) else list(log or []):
        try:
            text += read_bytes(path, "log").decode(errors="replace")
        except FileRefused:
            pass
    return text


def _without_shown_logs(lines: list[str]) -> list[str]:
    """The lines with each log that --show-failed-logs printed (between two equal fences of "=") as one blank
    line, which ends the block it follows."""
    kept, i = [], 0
    while i < len(lines):
        if _SHOWN_LOG.match(lines[i]) and i + 1 < len(lines) and _FENCE.match(lines[i + 1]):
            fence = lines[i + 1]
            i = next((j for j in range(i + 2, len(lines)) if lines[j] == fence), len(lines)) + 1
            kept.append("")
            continue
        kept.append(lines[i])
        i += 1
    return kept


class _Reader:
    """The block being read: its job and the indentation of its fields."""

    def __init__(self) -> None:
        self.job: Job | None = None
        self.indent = 0
        self.in_message = False  # the plugin's messages run over unindented lines ("For further error details")

    def start(self, job: Job, indent: int) -> None:
        self.job, self.indent, self.in_message = job, indent + 4, False

    def read(self, line: str) -> bool:
        """Read ``line`` into the block; False when it ends the block."""
        match = _FIELD.match(line)
        if match and len(match.group(1)) == self.indent:
            self._field(match.group(2), match.group(3).strip())
            return True
        depth = len(line) - len(line.lstrip())
        return bool(line.strip()) and (depth > self.indent or self.in_message)

    def _field(self, name: str, value: str) -> None:
        job = self.job
        self.in_message = name == "message"
        if name == "jobid":
            job.jobid = value
        elif name == "wildcards":
            job.wildcards = value
        elif name == "output":
            job.outputs = [p.strip() for p in value.split(", ") if p.strip()]
        elif name == "log":
            job.logs += [p.strip() for p in value.split(" (check log")[0].split(", ") if p.strip()]
        elif name == "external_jobid":
            job.slurm_job = value


def job_blocks(text: str) -> list[Job | str]:
    """Every job and error block of the log in order, and each "Finished jobid" line's job id as a string."""
    out: list[Job | str] = []
    reader = _Reader()
    for line in _without_shown_logs(text.splitlines()):
        if reader.job is not None and reader.read(line):
            continue
        reader.job = None
        start = _JOB.match(line) or _ERROR.match(line)
        if start:
            job = Job(start.group(2), failed=start.re is _ERROR)
            reader.start(job, len(start.group(1)))
            out.append(job)
            continue
        finished = _FINISHED.match(line)
        if finished:
            out.append(finished.group(1))
    return out


def parse_log(text: str) -> SnakemakeLog:
    """The finished and failed jobs of a Snakemake log's text, and the SLURM states it names."""
    started: dict[str, Job] = {}
    parsed = SnakemakeLog(slurm=slurm_states(text))
    failed: dict[tuple[str, str], Job] = {}
    for block in job_blocks(text):
        if isinstance(block, str):
            if block in started:
                parsed.finished.append(started.pop(block))
        elif not block.failed:
            started[block.jobid] = block
        else:
            known = failed.setdefault(block.key, block)
            if known is not block:
                known.logs = list(dict.fromkeys(known.logs + block.logs))
                known.slurm_job = block.slurm_job or known.slurm_job
    parsed.failed = list(failed.values())
    return parsed


def slurm_states(text: str) -> dict[str, tuple[str, str | None]]:
    """SLURM job id -> (its final state, its SLURM log) for every job the plugin saw fail."""
    states = {m.group(1): (m.group(2), m.group(3)) for m in _SLURM.finditer(text)}
    for m in _NOT_REQUEUED.finditer(text):
        if m.group(1) in states:
            states[m.group(1)] = (m.group(2), states[m.group(1)][1])
    return states
