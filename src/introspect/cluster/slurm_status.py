"""A workaround for snakemake-executor-plugin-slurm 2.8.0, applied in the workflow's head process.

The plugin compares each job's ``sacct`` State with "CANCELLED", but sacct writes a cancelled job's
state as ``CANCELLED by <uid>`` (pre-emption that cancels instead of requeueing, an admin's or a
user's scancel): the plugin never sees the job end and waits forever. Reading such a state as
"CANCELLED" makes the job a failure like any other: retried (it resumes from its checkpoint) and,
after its retries, named by the failure report with its SLURM state.
"""
from __future__ import annotations


def read_cancelled_as_cancelled() -> bool:
    """Wrap the plugin's status query (once); False where the plugin is not installed."""
    try:
        import snakemake_executor_plugin_slurm as plugin
    except ImportError:
        return False
    original = plugin.query_job_status
    if getattr(original, "reads_cancelled_by", False):
        return True

    async def query_job_status(command: str, logger):
        statuses, duration = await original(command, logger)
        if statuses:
            statuses = {job: normalise_state(state) for job, state in statuses.items()}
        return statuses, duration

    query_job_status.reads_cancelled_by = True
    plugin.query_job_status = query_job_status
    return True


def normalise_state(state: str) -> str:
    """``CANCELLED by 1234`` -> ``CANCELLED``; every other state unchanged."""
    return "CANCELLED" if state.startswith("CANCELLED") else state
