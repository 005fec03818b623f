"""What a SLURM job asks for can always be granted: sbatch calls capped at the largest node of their partition
(introspect.cluster.node_limits), and a pack's group job naming each run once after a checkpoint
(introspect.cluster.group_jobs)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from introspect.cluster.group_jobs import install_group_fix
from introspect.cluster.node_limits import NodeLimits, capped, configured_limits, parse_sinfo, partition_of, tightest

CALL = ("sbatch --parsable --job-name x --output log --export=ALL --comment 'rule_pack' -A acct -p gpu -t 15 "
        "--mem 13000 --cpus-per-task=9 -D /work")


def test_sinfo_output_gives_the_largest_node():
    assert parse_sinfo("4 12000\n8+ 64000\n2 4000\n") == NodeLimits(8, 64000)
    assert parse_sinfo("PARTITION\ndebug*\n") == NodeLimits()  # not the asked format: no limit


def test_a_request_above_the_node_is_lowered_to_it_and_said():
    call, lowered = capped(CALL, NodeLimits(cpus=4, mem_mb=12000))
    assert "--cpus-per-task=4 " in call and "--mem 12000 " in call
    assert call.replace("--mem 12000", "--mem 13000").replace("=4 ", "=9 ") == CALL  # nothing else changed
    assert lowered == ["CPUs 9 -> 4", "memory (MB) 13000 -> 12000"]


def test_a_request_within_the_node_is_left_alone():
    assert capped(CALL, NodeLimits(cpus=16, mem_mb=64000)) == (CALL, [])
    assert capped(CALL, NodeLimits()) == (CALL, [])


def test_memory_per_cpu_is_capped_by_the_node_memory_over_the_cpus_asked():
    call = "sbatch -p debug --mem-per-cpu 5000 --cpus-per-task=4"
    # 4 CPUs x 5000 MB = 20000 MB > 12000: each CPU may have 3000
    assert capped(call, NodeLimits(cpus=4, mem_mb=12000))[0] == "sbatch -p debug --mem-per-cpu 3000 --cpus-per-task=4"


def test_the_partition_is_read_from_the_call():
    assert partition_of(CALL) == "gpu"
    assert partition_of("sbatch -p 'my part' --mem 1") == "my"  # quoted names with spaces are not SLURM's
    assert partition_of("sbatch --mem 1") == ""


def test_configured_maxima_are_the_tighter_of_the_two(monkeypatch):
    monkeypatch.setenv("INTROSPECT_MAX_MEM_MB", "8000")
    monkeypatch.delenv("INTROSPECT_MAX_CPUS", raising=False)
    assert tightest(NodeLimits(4, 12000), configured_limits()) == NodeLimits(4, 8000)
    assert tightest(NodeLimits(), configured_limits()) == NodeLimits(None, 8000)


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
