"""What a SLURM job asks for can always be granted: sbatch calls capped at the largest node of their partition
(introspect.cluster.node_limits), and a pack's group job naming each run once after a checkpoint
(introspect.cluster.group_jobs)."""
from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from introspect.cluster.group_jobs import install_group_fix
from introspect.cluster.node_limits import (
    NodeLimits,
    capped,
    configured_limits,
    parse_sinfo,
    partition_of,
    slurm_minutes,
    tightest,
)

CALL = ("sbatch --parsable --job-name x --output log --export=ALL --comment 'rule_pack' -A acct -p gpu -t 15 "
        "--mem 13000 --cpus-per-task=9 -D /work")


def test_sinfo_output_gives_the_largest_node():
    assert parse_sinfo("4 12000 2-00:00:00\n8+ 64000 2-00:00:00\n2 4000 2-00:00:00\n") == NodeLimits(8, 64000, 2880)
    assert parse_sinfo("4 12000 infinite\n") == NodeLimits(4, 12000, None)
    assert parse_sinfo("4 12000\n") == NodeLimits(4, 12000, None)  # an older stand-in: no time column
    assert parse_sinfo("PARTITION\ndebug*\n") == NodeLimits()  # not the asked format: no limit


def test_slurm_time_limits_in_minutes():
    cases = {"infinite": None, "UNLIMITED": None, "30": 30, "30:01": 31, "1:00:00": 60, "2-00:00:00": 2880,
             "1-12": 2160, "1-12:30": 2190, "0:00:30": 1, "x-1": None, "1:2:3:4": None}
    assert {text: slurm_minutes(text) for text in cases} == cases


def test_a_time_limit_above_the_partitions_is_lowered_to_it():
    call, lowered = capped(CALL, NodeLimits(minutes=10))
    assert " -t 10 " in call and lowered == ["time limit (min) 15 -> 10"]
    assert capped(CALL, NodeLimits(minutes=None)) == (CALL, [])


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


# The workflow's shape around a pack, in miniature (no torch, seconds per job): two checkpoints upstream of a
# group job of an anchor and two runs, the second checkpoint (the pre-flight) slow. The head installs the
# fixes as preflight.smk does.
TOY = """
import sys
sys.path.insert(0, {src!r})
from introspect.cluster.slurm_status import install_plugin_fixes
install_plugin_fixes()

rule all:
    input: "done/a.txt", "done/b.txt"

checkpoint files:
    output: "rec/a.json", "rec/b.json", "spec/p.json"
    localrule: True
    shell: "touch {{output}}"

checkpoint preflight:
    input: "spec/p.json"
    output: "pre/p.json"
    shell: "sleep 15; touch {{output}}"

rule anchor:
    output: temp("packs/g.anchor")
    group: "g"
    shell: "touch {{output}}"

rule train:
    input: rec="rec/{{x}}.json", pre=ancient("pre/p.json"), anchor=ancient("packs/g.anchor")
    output: "done/{{x}}.txt"
    group: "g"
    shell: "test -e {{input.pre}} && touch {{output}}"
"""


@pytest.mark.workflow
def test_a_pack_behind_two_checkpoints_starts_after_them_and_names_each_job_once(tmp_path):
    """Without the fix (introspect.cluster.group_jobs) this failed 4 times in 4 (Snakemake 9.27.1): the group job
    was submitted before the pre-flight ended, named 5 jobs of which 3 distinct, and its runs found no
    pre-flight output."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    from standin import STANDIN_BIN, jobs
    from workflow_helpers import BIN, ROOT

    (tmp_path / "Snakefile").write_text(TOY.format(src=str(ROOT / "src")))
    env = {**os.environ, "STANDIN_SLURM": str(tmp_path / "slurm"), "INTROSPECT_STATUS_CHECK_MAX": "3",
           "PATH": os.pathsep.join([str(STANDIN_BIN), str(BIN), os.environ["PATH"]])}
    result = subprocess.run([str(BIN / "snakemake"), "--executor", "slurm", "--jobs", "5", "--latency-wait", "3",
                             "--slurm-init-seconds-before-status-checks", "1", "--default-resources", "mem_mb=100",
                             "runtime=5", "slurm_partition=gpu"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (preflight,) = [job for job in jobs(tmp_path / "slurm") if "preflight" in job["comment"]]
    (pack,) = [job for job in jobs(tmp_path / "slurm") if "anchor" in job["comment"]]
    script = Path(tmp_path / "slurm" / "jobs" / f"{pack['id']}.sh").read_text()
    words = shlex.split(script.split("--target-jobs", 1)[1])
    targets = words[:next(i for i, word in enumerate(words) if word.startswith("--"))]
    assert sorted(targets) == ["anchor:", "train:x=a", "train:x=b"], targets
    assert pack["submitted"] >= preflight["ended"]


class _Backoff:
    """The plugin's base class in miniature: the wait before the next status check is a property it sets."""

    def __init__(self):
        self.wait = None

    next_seconds_between_status_checks = property(lambda self: 10 if self.wait is None else self.wait,
                                                  lambda self, value: setattr(self, "wait", value))


def test_status_check_waits_are_capped_only_when_asked(monkeypatch):
    from introspect.cluster.slurm_status import cap_status_checks

    monkeypatch.delenv("INTROSPECT_STATUS_CHECK_MAX", raising=False)
    plain = type("Plain", (_Backoff,), {})
    cap_status_checks(plain)
    job = plain()
    job.next_seconds_between_status_checks = 41  # the plugin's 1 + 10 * 4 after four checks saw no job end
    assert job.next_seconds_between_status_checks == 41
    monkeypatch.setenv("INTROSPECT_STATUS_CHECK_MAX", "3")
    capped = type("Capped", (_Backoff,), {})
    cap_status_checks(capped)
    job = capped()
    assert job.next_seconds_between_status_checks == 3  # snakemake's default before the first check (10)
    job.next_seconds_between_status_checks = 41
    assert job.next_seconds_between_status_checks == 3 and job.wait == 41
    job.next_seconds_between_status_checks = 1
    assert job.next_seconds_between_status_checks == 1
