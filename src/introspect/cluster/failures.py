"""The failure report of a workflow run (the Snakefile's ``onerror``): the jobs that failed in this
invocation and their log files, read from Snakemake's own log, and SLURM jobs that were pre-empted or
cancelled rather than requeued. Not every unfinished run: after a failed pre-flight, that is all of them.

No torch, no Snakemake import: it only reads text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..io import FileRefused, read_bytes

_ERROR = re.compile(r"^Error in (rule|group) (\S+?):?\s*$")
_FIELD = re.compile(r"^\s+(\w+): (.*)$")
_SLURM = re.compile(r"SLURM-job '(\d+)' failed, SLURM status is: '(\w+)'.*?(?:log: (\S+))?")
_CANCELLED = ("PREEMPTED", "CANCELLED", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "TIMEOUT")
# introspect.cluster.slurm_status fails a PREEMPTED / NODE_FAIL job that SLURM forgot as "FAILED" (the plugin
# knows no other failure state for it) and logs this line, which restores its real end here
_NOT_REQUEUED = re.compile(r"SLURM job (\d+) ended (\w+) and SLURM no longer lists it")


@dataclass
class FailedJob:
    rule: str
    wildcards: str = ""
    logs: list[str] = field(default_factory=list)
    output: str = ""
    slurm_job: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """A job is its rule and its own log (SLURM's error blocks name no wildcards; the log is per run)."""
        return self.rule, self.logs[0] if self.logs else self.output


def failed_jobs(log_text: str) -> list[FailedJob]:
    """Each failed job of a Snakemake log once (a job retried and failing again counts once), in order."""
    jobs: dict[tuple[str, str], FailedJob] = {}
    current: FailedJob | None = None
    in_message = False  # the plugin's messages run over unindented lines ("For further error details ...")
    for line in [*log_text.splitlines(), ""]:
        start = _ERROR.match(line)
        indented = line.startswith((" ", "\t"))
        if current is not None and (start or not line or (not indented and not in_message)):  # the block ends
            known = jobs.setdefault(current.key, current)
            if known is not current:
                known.logs = list(dict.fromkeys(known.logs + current.logs))
                known.slurm_job = current.slurm_job or known.slurm_job
            current = None
        if start:
            current = FailedJob(start.group(2))
            continue
        match = _FIELD.match(line) if current is not None else None
        if not match or len(line) - len(line.lstrip()) > 4:  # a field, not a line of the shell command
            continue
        name, value = match.groups()
        in_message = name == "message"
        if name == "wildcards":
            current.wildcards = value.strip()
        elif name == "output":
            current.output = value.split(", ")[0].strip()
        elif name == "log":
            current.logs += [p.strip() for p in value.split(" (check log")[0].split(", ") if p.strip()]
        elif name == "external_jobid":
            current.slurm_job = value.strip()
    return list(jobs.values())


def slurm_states(log_text: str) -> dict[str, tuple[str, str | None]]:
    """SLURM job id -> (its final state, its SLURM log) for every job the plugin saw fail."""
    states = {m.group(1): (m.group(2), m.group(3)) for m in _SLURM.finditer(log_text)}
    for m in _NOT_REQUEUED.finditer(log_text):
        if m.group(1) in states:
            states[m.group(1)] = (m.group(2), states[m.group(1)][1])
    return states


def failure_report(log_path: str | Path | list | None, unfinished: int = 0) -> str:
    """The lines ``onerror`` prints: each failed job with its logs, how SLURM ended it, what to do."""
    paths = [log_path] if isinstance(log_path, (str, Path)) else list(log_path or [])  # Snakemake: a list
    text = ""
    for path in paths:
        try:
            text += read_bytes(path, "log").decode(errors="replace")
        except FileRefused:
            pass
    jobs, states = failed_jobs(text), slurm_states(text)
    if not jobs:
        return ("\nThe workflow stopped before any job failed (see the error above)."
                + (f" {unfinished} run(s) are not finished yet." if unfinished else ""))
    lines = [f"\n{len(jobs)} job(s) failed:"]
    cancelled = []
    for job in jobs:
        state, slurm_log = states.get(job.slurm_job or "", (None, None))
        where = ", ".join(job.logs + ([slurm_log] if slurm_log else [])) or "no log file"
        label = f"{job.rule}" + (f" ({job.wildcards})" if job.wildcards else "")
        lines.append(f"  {label}: {where}" + (f" [SLURM {state}]" if state else ""))
        if state in _CANCELLED:
            cancelled.append(f"{job.rule} (SLURM job {job.slurm_job}: {state})")
    if cancelled:
        lines.append("Ended by SLURM, not by an error of the run (pre-emption that cancels instead of requeueing, "
                     "or a time limit): " + "; ".join(cancelled) + ". Rerun the same command: each run resumes "
                     "from its last checkpoint.")
    lines.append("Each log says why. Rerun the same command: it redoes only these jobs and what depends on them "
                 "(add --rerun-incomplete after a kill)."
                 + (f" {unfinished} run(s) are not finished yet; with some seeds failed for good, build the tables "
                    "from the seeds that finished: --config allow_missing_seeds=True" if unfinished else ""))
    return "\n".join(lines)
