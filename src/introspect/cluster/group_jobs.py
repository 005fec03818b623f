"""A fix for Snakemake's group jobs after a checkpoint (Snakemake 9.x), installed in the head.

The workflow packs runs into group jobs (``cluster.runs_per_gpu``) and has two checkpoints upstream of every
pack (``job_files``, ``preflight``). When a checkpoint finishes, Snakemake replaces each job that depends on it
by a new job object and forms the groups again (``DAG.update_groups``). Its group factory caches each group
by the jobs it was created with, but merging two groups adds jobs to the cached object in place, and a
group already sorted keeps its sorted layers. So after a checkpoint the factory can hand back a group of
the *old* job objects, and the new ones are merged into it: the pack's SLURM job then names every run
twice (``--target-jobs``), asks for the CPUs and memory of twice the runs (a 4-run pack asked 9 CPUs on a
4-CPU node and pended forever), and, since the old objects no longer depend on anything, can be
submitted before the pre-flight's output exists.

The fix: a cached group is reused only while it still holds exactly the jobs it was created with, and a
merge forgets what was derived from the jobs before it (sorted layers, resources, inputs, outputs).
"""
from __future__ import annotations

DERIVED = ("_toposorted", "_resources", "_scheduler_resources", "_input", "_output", "_log", "_all_products")


def install_group_fix() -> bool:
    """Patch snakemake.jobs.GroupJobFactory.new and GroupJob.merge (once); False without Snakemake."""
    try:
        from snakemake import jobs
    except ImportError:
        return False
    if getattr(jobs, "introspect_group_fix", False):
        return True
    jobs.introspect_group_fix = True
    merge = jobs.GroupJob.merge

    def new(self, id, members, resources):
        members = frozenset(members)
        group = self.cache.get((id, members))
        if group is None or frozenset(group.jobs) != members:  # absent, or grown by a merge since
            group = jobs.GroupJob(id, members, resources)
            self.cache[(id, members)] = group
        return group

    def merging(self, other):
        merge(self, other)
        for name in DERIVED:
            setattr(self, name, None)

    jobs.GroupJobFactory.new = new
    jobs.GroupJob.merge = merging
    return True
