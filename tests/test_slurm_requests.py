"""A pack's group job names each run once after a checkpoint (introspect.cluster.group_jobs)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from introspect.cluster.group_jobs import install_group_fix


class FakeJob:
    """What GroupJob reads of a job: its DAG's attempt (and a name for the repr)."""

    dag = SimpleNamespace(workflow=SimpleNamespace(execution_settings=SimpleNamespace(attempt=1)))

    def __init__(self, name: str):
        self.name = name

    def __repr__(self):
        return self.name


def test_after_a_checkpoint_a_pack_holds_only_the_current_jobs():
    """DAG.update_groups as Snakemake runs it twice: before a checkpoint (anchor A, runs a0 and b0) and after
    it replaced the runs by new objects a1 and b1. The second grouping must not bring back a0 and b0."""
    pytest.importorskip("snakemake")
    from snakemake.jobs import GroupJobFactory

    assert install_group_fix()
    factory, anchor = GroupJobFactory(), FakeJob("A")

    def group(runs):  # one update_groups: each job's group, merged into the first that shares a job
        groups = {}
        for members in [[anchor]] + [[run, anchor] for run in runs]:
            new = factory.new("pack", members, None)
            for job in new.jobs:
                if job in groups:
                    groups[job].merge(new)
                    new = groups[job]
            for job in new.jobs:
                groups[job] = new
        found = groups[anchor]
        found._toposorted = [[anchor], [j for j in found.jobs if j is not anchor]]  # finalize()
        return found

    before = group([FakeJob("a0"), FakeJob("b0")])
    assert len(before.jobs) == 3
    after = group(runs := [FakeJob("a1"), FakeJob("b1")])
    assert set(after.jobs) == {anchor, *runs}
