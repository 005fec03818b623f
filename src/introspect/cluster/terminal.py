"""What a workflow run shows on the terminal: one line per finished job with the training time left, instead
of Snakemake's block per job (its rule, every input and output, the reason, the resources), which made a smoke
run of 76 jobs print over a thousand lines.

Only the terminal is made quieter. Snakemake's log file (.snakemake/log/) keeps every block: the run summary
and the failure report read it (:mod:`.snakemake_log`), and Snakemake's ``quiet`` settings are not used because
they filter the log file as well. A failed job's error block and its log (``show-failed-logs``) are printed
in full, as are warnings and every message this view does not know. A dry run, ``--verbose`` and
``INTROSPECT_OUTPUT=full`` keep Snakemake's own output.

The view is a filter and a formatter on Snakemake's stream handler, reading the fields Snakemake 9 gives its
log records (the same ones its logger plugins receive); it imports nothing from Snakemake.
"""
from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping

from ..analysis.escape import terminal_text
from ..plan.build import Plan
from . import EPOCH_LINES_ENV
from .resources import duration, outlook, run_estimates, run_slots

STREAM_HANDLER = "DefaultStreamHandler"  # the name Snakemake 9 gives the handler that writes the terminal
SNAKEMAKE_LOGGER = "snakemake.logging"
OUTPUT_ENV = "INTROSPECT_OUTPUT"  # "full": Snakemake's own terminal output
# Scheduler lines repeated for every job; the log file keeps them.
_CHATTER = re.compile(r"^(Select jobs to execute\.\.\.|Execute \d+ jobs\.\.\.|Updating checkpoint dependencies\."
                      r"|DAG of jobs will be updated after completion\.)$")
# Shell commands are Snakemake's to show or not (-p): they pass.
_HIDDEN = ("job_info", "group_info", "job_started", "job_finished", "workflow_started", "run_info")


class TrainingClock:
    """The training time left: the runs' estimated seconds still to do, scaled by the wall time per estimated
    second that the finished runs took (which takes in the runs trained at once, job start-up and a machine
    slower or faster than the estimate); before two runs have finished, the estimate over the parallel runs
    if it is this machine's measured one, else unknown."""

    def __init__(self, estimates: Mapping[str, float], measured: bool, slots: int | None,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.left = dict(estimates)
        self.measured, self.slots, self.now = measured, slots, now
        self.done, self.done_seconds, self.first_start = 0, 0.0, None

    def reestimate(self, estimates: Mapping[str, float], measured: bool) -> None:
        """New estimates (the pre-flight has measured this machine) for the runs still to do."""
        self.left = {r: estimates.get(r, seconds) for r, seconds in self.left.items()}
        self.measured = measured

    def start(self, run_id: str) -> None:
        if run_id in self.left and self.first_start is None:
            self.first_start = self.now()

    def finish(self, run_id: str) -> None:
        if run_id in self.left:
            self.done_seconds += self.left.pop(run_id)
            self.done += 1

    def seconds_left(self) -> float | None:
        if not self.left:
            return 0.0
        rest = sum(self.left.values())
        if self.done >= 2 and self.done_seconds > 0 and self.first_start is not None:
            return rest * (self.now() - self.first_start) / self.done_seconds
        return rest / self.slots if self.measured and self.slots else None


class TerminalView(logging.Filter):
    """Filters Snakemake's terminal records and words the progress: ``describe(rule, wildcards)`` names a job,
    ``after_preflight()`` gives new run estimates and a line once the pre-flight job has finished."""

    def __init__(self, clock: TrainingClock, describe: Callable[[str, Mapping[str, str]], str],
                 after_preflight: Callable[[], tuple[dict[str, float], bool, str]] | None = None,
                 now: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock, self.describe, self.after_preflight, self.now = clock, describe, after_preflight, now
        self.jobs: dict[str, tuple[str, dict[str, str], float]] = {}
        self.finished: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        event = getattr(record, "event", None)
        if event == "job_info":
            self._started(record)
        elif event == "job_finished":
            self.finished.append(str(getattr(record, "job_id", "")))
        if event in _HIDDEN:
            return False
        if event is None and record.levelno == logging.INFO and _CHATTER.match(str(record.msg)):
            return False
        return True

    def _started(self, record: logging.LogRecord) -> None:
        wildcards = {str(k): str(v) for k, v in dict(getattr(record, "wildcards", None) or {}).items()}
        self.jobs[str(record.jobid)] = (str(getattr(record, "rule_name", "")), wildcards, self.now())
        if "run" in wildcards:
            self.clock.start(wildcards["run"])

    def progress_lines(self, done: int, total: int) -> str:
        """The lines of the jobs finished since the last progress record: ``[time] done/total rule what (took)``,
        the training time left on the last one, and after the pre-flight its estimate."""
        lines, notes, finished, self.finished = [], [], self.finished, []
        for i, jobid in enumerate(finished):
            rule, wildcards, started = self.jobs.pop(jobid, ("job", {}, self.now()))
            if "run" in wildcards:
                self.clock.finish(wildcards["run"])
            what = self.describe(rule, wildcards)
            count = done - len(finished) + 1 + i
            lines.append(f"[{time.strftime('%H:%M:%S')}] {count}/{total} {rule}{' ' + what if what else ''} "
                         f"({duration(self.now() - started)})")
            if rule == "preflight" and self.after_preflight is not None:
                estimates, measured, line = self.after_preflight()
                self.clock.reestimate(estimates, measured)
                notes.append(line)
        left = self.clock.seconds_left()
        if lines and left and self.clock.first_start is not None:  # once training has begun
            lines[-1] += f"; training left: about {duration(left)}"
        return terminal_text("\n".join(lines + notes))


class _ProgressFormatter(logging.Formatter):
    """Snakemake's formatter, with the progress record worded by the view."""

    def __init__(self, view: TerminalView, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.view, self.inner = view, inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "event", None) == "progress":
            return self.view.progress_lines(int(getattr(record, "done", 0)), int(getattr(record, "total", 0)))
        return self.inner.format(record)


def install(view: TerminalView, logger: logging.Logger | None = None) -> bool:
    """Put ``view`` on Snakemake's terminal handler; False (Snakemake's output unchanged) if there is none."""
    logger = logger or logging.getLogger(SNAKEMAKE_LOGGER)
    for handler in logger.handlers:
        if handler.name == STREAM_HANDLER and not any(isinstance(f, TerminalView) for f in handler.filters):
            handler.addFilter(view)
            handler.setFormatter(_ProgressFormatter(view, handler.formatter))
            return True
    return False


def plan_view(plan: Plan, cores: int | None) -> TerminalView:
    """The view of a run of ``plan`` on ``cores`` local cores (None: a cluster): its jobs named by their runs."""
    left = plan.unfinished_runs()
    clock = TrainingClock(*run_estimates(plan, left), run_slots(plan, cores))

    def describe(rule: str, wildcards: Mapping[str, str]) -> str:
        run = plan.runs.get(wildcards.get("run", ""))
        if run is None:
            return " ".join(wildcards.values())
        explainer = run.method.get("explainer")
        return f"{run.method['name']}{f'({explainer})' if explainer else ''} {run.model} seed {run.seed}"

    def after_preflight() -> tuple[dict[str, float], bool, str]:
        estimates, measured = run_estimates(plan, list(clock.left))
        return estimates, measured, "Measured by the pre-flight: " + outlook(plan, cores)

    return TerminalView(clock, describe, after_preflight)


def quiet_terminal(plan: Plan, cores: int | None, *, dryrun: bool, verbose: bool) -> bool:
    """Show this run's progress through :func:`plan_view`, unless it is a dry run (its listing is the point),
    ``--verbose`` or ``INTROSPECT_OUTPUT=full``. True when the view is on."""
    if dryrun or verbose or os.environ.get(OUTPUT_ENV) == "full":
        return False
    return install(plan_view(plan, cores))


def quiet_job_output(local: bool, logger: logging.Logger | None = None) -> bool:
    """With the view on and the jobs run on this machine (``local``, known once Snakemake has its executor), the
    jobs write their epoch lines to their logs only, not to the terminal. True when they do."""
    logger = logger or logging.getLogger(SNAKEMAKE_LOGGER)
    if not local or not any(isinstance(f, TerminalView) for h in logger.handlers for f in h.filters):
        return False
    os.environ[EPOCH_LINES_ENV] = "log"
    return True
