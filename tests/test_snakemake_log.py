"""One reader of Snakemake's log (introspect.cluster.snakemake_log), checked on logs that Snakemake 9.27 wrote
(tests/data/snakemake9/): the start of the smoke run, a local failure whose shown log holds text that looks like
Snakemake's own blocks, and a SLURM head's log where a group job failed (its members' error blocks indented, the
group's SLURM log, a whole Snakemake of its own, shown inside)."""
from __future__ import annotations

from introspect.cluster.failures import failure_report
from introspect.cluster.run_summary import run_summary
from introspect.cluster.snakemake_log import parse_log, read_logs
from workflow_helpers import ROOT

LOGS = ROOT / "tests" / "data" / "snakemake9"


def test_the_smoke_runs_first_jobs_are_read_with_their_outputs_and_runs():
    parsed = parse_log((LOGS / "smoke_start.log").read_text())
    assert [(job.rule, job.jobid) for job in parsed.finished] == [
        ("job_files", "2"), ("preflight", "4"), ("le_warmup", "27"), ("le_warmup", "39")]
    job_files, preflight, warmup, _ = parsed.finished  # job_files: 57 runs' records and 16 specs
    assert len(job_files.outputs) == 73 and all(p.endswith(".json") for p in job_files.outputs)
    assert job_files.logs == ["results/smoke/logs/job_files.log"] and not job_files.failed
    assert preflight.outputs[0] == "results/preflight/cpu/384fc8ef8856273b.json"
    assert warmup.wildcards == "run=digits/resnet8/resnet-e3/warmup-w1/seed1"
    assert warmup.outputs == [f"results/runs/digits/resnet8/resnet-e3/warmup-w1/seed1/{name}"
                              for name in ("metrics.json", "epochs.csv", "model.pt")]
    assert parsed.failed == [] and parsed.slurm == {}


def test_a_shown_log_is_not_read_as_snakemakes_blocks():
    """The failed job's log (between the fences of "=") says "Error in rule decoy" and "Finished jobid: 98"."""
    parsed = parse_log((LOGS / "local_failure.log").read_text())
    assert [(job.rule, job.jobid, job.logs, job.outputs) for job in parsed.failed] == [
        ("packed", "3", ["out/logs/p2.log"], ["out/p2.txt"])]
    assert [(job.rule, job.wildcards) for job in parsed.finished] == [("a", "name=c"), ("packed", "i=1")]


def test_a_failed_group_job_is_read_from_its_members_indented_error_blocks():
    parsed = parse_log((LOGS / "slurm_group_failure.log").read_text())
    # the member that failed, once (its error block is in the group's report and again, indented, after it);
    # the blocks of the Snakemake inside the shown SLURM log (job id 0) are not this call's
    assert [(job.rule, job.jobid, job.logs) for job in parsed.failed] == [("packed", "3", ["out/logs/p2.log"])]
    assert [(job.rule, job.jobid, job.outputs) for job in parsed.finished] == [
        ("a", "1", ["out/c.txt"]), ("packed", "2", ["out/p1.txt"])]


def test_the_run_summary_and_the_failure_report_read_the_same_log(tmp_path):
    log = tmp_path / "run.log"
    log.write_bytes((LOGS / "local_failure.log").read_bytes() + b"\xff\n")  # not UTF-8 at the end: still read
    text = read_logs([str(log)])
    assert text.endswith("\ufffd\n")
    summary = run_summary(text, ["out/c.txt", "out/p1.txt", "out/p2.txt"])
    assert "Built in this call: 2 job(s), 0 of them training runs (a 1, packed 1)." in summary
    assert "\n  out/c.txt\n  out/p1.txt" in summary
    report = failure_report([str(log)])
    assert "1 job(s) failed:\n  packed: out/logs/p2.log\n" in report and "decoy" not in report


def test_the_reports_are_terminal_text(tmp_path):
    """A path or wildcard from the log reaches the terminal with its control characters shown as U+FFFD."""
    log = tmp_path / "run.log"
    log.write_text("Error in rule train:\n    jobid: 7\n    wildcards: run=a\x1b]52;c;evil\x07\n"
                   "    log: runs/a/train.log (check log file(s) for error details)\n\n")
    report = failure_report(str(log))
    assert "train (run=a\ufffd]52;c;evil\ufffd): runs/a/train.log" in report and "\x1b" not in report
