"""Workarounds for snakemake-executor-plugin-slurm 2.8.0, installed once in the workflow's head process
(``workflow/rules/preflight.smk`` calls :func:`install_plugin_fixes`), so that SLURM's faults and limits
fail or delay a job instead of stalling the campaign:

- sacct writes a cancelled job's state as ``CANCELLED by <uid>`` (pre-emption that cancels instead of
  requeueing, an admin's or a user's scancel); the plugin compares with "CANCELLED" and never sees the
  job end. Read as "CANCELLED", the job fails like any other: retried, and named by the failure report.
- A job that ended PREEMPTED or NODE_FAIL and that SLURM does not requeue is waited on forever (the
  plugin leaves it "to SLURM to requeue"). Once squeue no longer lists the job at all (SLURM keeps an
  ended job listed for MinJobAge, and a requeued one is listed again as pending), it is read as FAILED:
  Snakemake retries it, and the run resumes from its checkpoint. A requeued job is never touched.
- sbatch refusing a job because of a per-user submit limit (MaxSubmitJobs: ``QOSMaxSubmitJobPerUserLimit``,
  ``AssocMaxSubmitJobLimit``) or a busy controller makes the plugin fail the job at once; Snakemake's
  retries come within seconds and fail too. Such a refusal is waited out instead: the submission is
  repeated every ``INTROSPECT_SUBMIT_WAIT`` seconds (60) for up to ``INTROSPECT_SUBMIT_PATIENCE`` seconds
  (24 h), in the plugin's submission thread, so status checks of running jobs go on meanwhile.
- A request larger than any node of its partition (a retry's grown memory, a pack's CPUs) pends forever:
  each sbatch call is capped at the largest node (:mod:`.node_limits`).
- The plugin waits 10 s longer before each status check that saw no job end (up to 180 s). With
  ``INTROSPECT_STATUS_CHECK_MAX`` set, no wait is longer than that many seconds (the tests' small jobs are then
  seen to end within seconds); unset, the plugin's own back-off is kept.
- After a checkpoint, Snakemake's group job of a pack could hold the jobs from before it: it named every run
  twice, asked twice the CPUs and memory, and could start before the pre-flight ended (:mod:`.group_jobs`).

Each fix wraps one name of the plugin; a plugin without that name is left alone (the profile pins 2.8.0).
"""
from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable

from .group_jobs import install_group_fix
from .node_limits import install_request_caps

# squeue states of a job SLURM still handles (pending, running, requeued, held, finishing)
LIVE_STATES = frozenset({"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING",
                         "COMPLETING", "SUSPENDED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED",
                         "RESV_DEL_HOLD", "SPECIAL_EXIT"})
# ends the plugin waits on ("leaving it to SLURM to requeue"); failed once SLURM no longer lists the job
REQUEUE_ENDS = ("PREEMPTED", "NODE_FAIL")
# sbatch's words for a refusal that passes (per-user or per-account submit limits, a busy controller)
SUBMIT_REFUSALS = ("QOSMaxSubmitJobPerUserLimit", "AssocMaxSubmitJobLimit", "QOSMaxSubmitJobPerAccountLimit",
                   "AssocGrpSubmitJobsLimit", "QOSGrpSubmitJobsLimit", "job submit limit",
                   "Slurm temporarily unable to accept job", "Socket timed out on send/recv")
ABSENT, LISTED, UNKNOWN = "absent", "listed", "unknown"


def normalise_state(state: str) -> str:
    """``CANCELLED by 1234`` -> ``CANCELLED``; every other state unchanged."""
    return "CANCELLED" if state.startswith("CANCELLED") else state


def queue_presence(job_id: str, timeout: float = 60.0) -> str:
    """Whether squeue still lists a job: LISTED (in any state), ABSENT (SLURM has forgotten it, or lists
    it in no state), or UNKNOWN (squeue did not answer: nothing is concluded from that)."""
    try:
        result = subprocess.run(["squeue", "--noheader", "--states=all", "--jobs", job_id, "--format=%T"],
                                capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    if result.returncode != 0:
        return ABSENT if "Invalid job id" in result.stderr else UNKNOWN
    return LISTED if result.stdout.strip() else ABSENT


class EndedJobs:
    """The head's memory of jobs seen PREEMPTED / NODE_FAIL, for :meth:`settle`."""

    def __init__(self, presence: Callable[[str], str] = queue_presence):
        self.presence = presence
        self.waiting: dict[str, str] = {}  # job -> the end state it was last seen in
        self.failed: dict[str, str] = {}   # job -> that state, once SLURM no longer listed it

    def settle(self, statuses: dict[str, str], warn: Callable[[str], None] = print) -> dict[str, str]:
        """The plugin's job states with cancellations normalised and a PREEMPTED / NODE_FAIL job that
        SLURM no longer lists read as FAILED (also when the status query, squeue, dropped it)."""
        settled = {job: normalise_state(state) for job, state in statuses.items()}
        for job, state in self.waiting.items():
            settled.setdefault(job, state)  # squeue as status command stops listing it
        for job, state in settled.items():
            if job in self.failed:
                settled[job] = "FAILED"
            elif state in REQUEUE_ENDS:
                if self.presence(job) != ABSENT:
                    self.waiting[job] = state  # listed (SLURM may still requeue it) or squeue unsure
                    continue
                self.waiting.pop(job, None)
                self.failed[job] = state
                settled[job] = "FAILED"
                warn(f"SLURM job {job} ended {state} and SLURM no longer lists it (it was not requeued): "
                     "failing it, so Snakemake retries it (the run resumes from its checkpoint)")
            else:
                self.waiting.pop(job, None)
        return settled


def is_submit_refusal(message: str) -> bool:
    return any(words in message for words in SUBMIT_REFUSALS)


def submit_wait_seconds() -> tuple[float, float]:
    """(seconds between two submissions of a refused job, seconds before giving up), from the
    environment: INTROSPECT_SUBMIT_WAIT (60), INTROSPECT_SUBMIT_PATIENCE (86400)."""
    return (float(os.environ.get("INTROSPECT_SUBMIT_WAIT", 60)),
            float(os.environ.get("INTROSPECT_SUBMIT_PATIENCE", 86400)))


def install_plugin_fixes() -> bool:
    """Wrap the plugin's status query and job submission (once); False where the plugin is not installed."""
    try:
        import snakemake_executor_plugin_slurm as plugin
    except ImportError:
        return False
    if getattr(plugin, "introspect_fixes", False):
        return True
    plugin.introspect_fixes = True
    _fix_status_query(plugin)
    _fix_submission(plugin.Executor)
    cap_status_checks(plugin.Executor)
    install_request_caps(plugin)
    install_group_fix()
    return True


def _fix_status_query(plugin) -> None:
    original, ended = plugin.query_job_status, EndedJobs()

    async def query_job_status(command: str, logger):
        statuses, duration = await original(command, logger)
        if statuses is not None:
            statuses = ended.settle(statuses, logger.warning)
        return statuses, duration

    plugin.query_job_status = query_job_status


def cap_status_checks(executor) -> None:
    """The wait before the next status check, at most INTROSPECT_STATUS_CHECK_MAX seconds (when set)."""
    cap = os.environ.get("INTROSPECT_STATUS_CHECK_MAX")
    interval = getattr(executor, "next_seconds_between_status_checks", None)
    if not cap or not isinstance(interval, property):
        return
    executor.next_seconds_between_status_checks = property(
        lambda self: min(interval.fget(self), float(cap)), interval.fset)


def _fix_submission(executor) -> None:
    """run_job reports a refused sbatch through _report_job_error_threadsafe; a refusal that passes is
    caught there (per submission thread) and run_job is repeated after a wait."""
    run_job, report_error, shutdown = executor.run_job, executor._report_job_error_threadsafe, executor.shutdown
    local = threading.local()

    def caught_report(self, job_info, msg):
        if getattr(local, "catching", False) and is_submit_refusal(msg):
            local.refusal = msg
            return
        report_error(self, job_info, msg)

    def waiting_run_job(self, job):
        stop = self.__dict__.setdefault("introspect_stop", threading.Event())
        wait, patience = submit_wait_seconds()
        waited = 0.0
        while True:
            local.catching, local.refusal = True, None
            try:
                run_job(self, job)
            finally:
                local.catching = False
            if local.refusal is None:
                return
            if waited >= patience or stop.is_set():
                report_error(self, _job_info(job), local.refusal)
                return
            if waited == 0:
                reason = next(words for words in SUBMIT_REFUSALS if words in local.refusal)
                self.logger.warning(f"sbatch refused {job} ({reason}): submitting it again every {wait:g} s "
                                    f"for up to {patience / 3600:g} h")
            stop.wait(wait)
            waited += wait

    def stopping_shutdown(self):
        self.__dict__.setdefault("introspect_stop", threading.Event()).set()  # waiting submissions give up
        shutdown(self)

    executor._report_job_error_threadsafe = caught_report
    executor.run_job = waiting_run_job
    executor.shutdown = stopping_shutdown


def _job_info(job):
    from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo

    return SubmittedJobInfo(job)
