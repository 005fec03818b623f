"""The failure report of a workflow run (the Snakefile's ``onerror``): the jobs that failed in this
invocation and their log files, read from Snakemake's own log, and SLURM jobs that were pre-empted or
cancelled rather than requeued. Not every unfinished run: after a failed pre-flight, that is all of them.

The log is read by :mod:`.snakemake_log`. No torch, no Snakemake import: it only reads text.
"""
from __future__ import annotations

from pathlib import Path

from ..analysis.escape import terminal_text
from .snakemake_log import Job, parse_log, read_logs

_CANCELLED = ("PREEMPTED", "CANCELLED", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "TIMEOUT")


def failed_jobs(log_text: str) -> list[Job]:
    """Each failed job of a Snakemake log once (a job retried and failing again counts once), in order."""
    return parse_log(log_text).failed


def failure_report(log_path: str | Path | list | None, unfinished: int = 0) -> str:
    """The lines ``onerror`` prints: each failed job with its logs, how SLURM ended it, what to do."""
    parsed = parse_log(read_logs(log_path))  # Snakemake passes a list of paths
    jobs, states = parsed.failed, parsed.slurm
    if not jobs:
        return terminal_text("\nThe workflow stopped before any job failed (see the error above)."
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
    return terminal_text("\n".join(lines))
