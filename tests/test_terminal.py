"""The run's terminal (introspect.cluster.terminal): one line per finished job with the training time left, on
Snakemake's own terminal handler, whose error blocks and warnings pass unchanged; the time left is the
estimates of the runs still to do, scaled by how long the finished ones took against theirs."""
from __future__ import annotations

import io
import logging
import os

import pytest
from snakemake.logging import ColorizingTextHandler, DefaultFilter, DefaultFormatter

from introspect.cluster import EPOCH_LINES_ENV
from introspect.cluster.terminal import (
    OUTPUT_ENV,
    TerminalView,
    TrainingClock,
    install,
    quiet_job_output,
    quiet_terminal,
)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_the_time_left_is_unknown_until_measured_then_scaled_by_the_finished_runs():
    now = Clock()
    clock = TrainingClock({"a": 10.0, "b": 20.0, "c": 30.0}, measured=False, slots=2, now=now)
    assert clock.seconds_left() is None  # the config's hand constants: no time shown
    clock.reestimate({"a": 10.0, "b": 30.0, "c": 40.0}, measured=True)
    assert clock.seconds_left() == 40.0  # (10 + 30 + 40) s over 2 runs at a time
    clock.start("a")
    now.t = 25.0
    clock.finish("a")
    assert clock.seconds_left() == 35.0  # one finished run is not yet a pace: (30 + 40) / 2
    clock.start("b")
    now.t = 80.0
    clock.finish("b")  # 80 s of wall time for 40 estimated seconds: 2 s per estimated second
    assert clock.seconds_left() == 80.0  # c's 40 estimated seconds
    clock.finish("c")
    assert clock.seconds_left() == 0.0


def snakemake_terminal(printshellcmds: bool = False) -> tuple[logging.Logger, io.StringIO]:
    """A logger with Snakemake 9's own terminal handler, as its LoggerManager sets it up."""
    stream = io.StringIO()
    handler = ColorizingTextHandler(nocolor=True, stream=stream, formatter=DefaultFormatter(show_failed_logs=True),
                                    filter=DefaultFilter(None, False, False, False, printshellcmds))
    handler.name = "DefaultStreamHandler"
    logger = logging.getLogger(f"test_terminal.{id(stream)}")
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    return logger, stream


def job_info(logger: logging.Logger, jobid: int, rule: str, **wildcards: str) -> None:
    """The record Snakemake logs when it starts a job (snakemake.jobs.Job.log_info)."""
    logger.info(f" Rule: {rule}, Jobid: {jobid}", extra=dict(
        event="job_info", jobid=jobid, rule_msg=None, rule_name=rule, local=True, input=["in.json"],
        output=[f"out/{jobid}.json"], log=[], benchmark=None, wildcards=wildcards, reason="Missing output files",
        resources={}, priority=0, threads=1, indent=False, is_checkpoint=False, printshellcmd=True,
        is_handover=False, shellcmd="python -m introspect train"))


def finished(logger: logging.Logger, jobid: int, rule: str, done: int, total: int) -> None:
    logger.info(f"Finished jobid: {jobid} (Rule: {rule})", extra=dict(event="job_finished", job_id=jobid))
    logger.info(None, extra=dict(event="progress", done=done, total=total))


def test_jobs_are_one_line_each_and_failures_and_warnings_are_shown_in_full(tmp_path):
    now = Clock()
    clock = TrainingClock({"r1": 10.0, "r2": 10.0, "r3": 20.0}, measured=True, slots=1, now=now)
    view = TerminalView(clock, lambda rule, wildcards: wildcards.get("run", ""),
                        lambda: ({"r1": 10.0, "r2": 10.0, "r3": 20.0}, True, "Measured by the pre-flight: 3 runs"),
                        now=now)
    logger, stream = snakemake_terminal()
    assert install(view, logger) and not install(view, logger)  # once
    logger.info("Select jobs to execute...")
    logger.info("Execute 1 jobs...", extra=dict(event="job_started", jobs=[1]))
    job_info(logger, 1, "preflight")
    now.t = 4.0
    finished(logger, 1, "preflight", 1, 5)
    job_info(logger, 2, "train", run="r1")
    job_info(logger, 3, "train", run="r2")
    now.t = 14.0
    finished(logger, 2, "train", 2, 5)
    now.t = 24.0
    finished(logger, 3, "train", 3, 5)  # 20 s for 20 estimated seconds
    job_info(logger, 4, "train", run="r3")
    log = tmp_path / "train.log"
    log.write_text("Traceback (most recent call last):\nValueError: loss term 'x' is not a scalar\n")
    logger.error("Error in rule train, jobid: 4", extra=dict(
        event="job_error", rule_name="train", rule_msg=None, jobid=4, input=["in.json"],
        output=["out/4.json"], log=[str(log)], conda_env=None, container_img=None, aux={}, indent=False,
        shellcmd="python -m introspect train"))
    logger.warning("Warning: the disk is nearly full")
    lines = stream.getvalue().splitlines()
    assert lines[:3] == ["[" + lines[0][1:9] + "] 1/5 preflight (4 s)",
                         "Measured by the pre-flight: 3 runs",
                         "[" + lines[2][1:9] + "] 2/5 train r1 (10 s); training left: about 30 s"]
    assert lines[3].endswith("] 3/5 train r2 (20 s); training left: about 20 s")  # r3's 20 s at 1 s per second
    error = "\n".join(lines[4:])
    assert "Error in rule train:\n    message: None\n    jobid: 4\n" in error
    assert "ValueError: loss term 'x' is not a scalar" in error  # the job's log, shown in full
    assert lines[-1] == "Warning: the disk is nearly full"
    assert "Select jobs" not in stream.getvalue() and "Execute 1 jobs" not in stream.getvalue()
    assert "reason:" not in stream.getvalue() and "localrule" not in stream.getvalue()


def test_a_group_jobs_members_finishing_together_get_their_own_counts():
    view = TerminalView(TrainingClock({}, measured=False, slots=None), lambda rule, wildcards: "")
    logger, stream = snakemake_terminal()
    install(view, logger)
    for jobid in (5, 6):
        job_info(logger, jobid, "train", run=f"r{jobid}")
    for jobid in (5, 6):
        logger.info(f"Finished jobid: {jobid} (Rule: train)", extra=dict(event="job_finished", job_id=jobid))
    logger.info(None, extra=dict(event="progress", done=7, total=9))
    lines = stream.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == ["6/9 train (0 s)", "7/9 train (0 s)"]


@pytest.mark.parametrize("printshellcmds", [False, True])
def test_shell_commands_are_shown_as_snakemake_decides(printshellcmds):
    logger, stream = snakemake_terminal(printshellcmds)
    install(TerminalView(TrainingClock({}, measured=False, slots=None), lambda rule, wildcards: ""), logger)
    job_info(logger, 1, "table")
    logger.info("Shell command: python -m introspect table", extra=dict(
        event="shellcmd", shellcmd="python -m introspect table", indent=False))
    assert stream.getvalue() == ("Shell command: python -m introspect table\n" if printshellcmds else "")


@pytest.mark.parametrize("setting", ["dryrun", "verbose", "full"])
def test_a_dry_run_verbose_or_full_output_keeps_snakemakes_own(setting, monkeypatch):
    monkeypatch.setenv(OUTPUT_ENV, "full" if setting == "full" else "")
    installed = []
    monkeypatch.setattr("introspect.cluster.terminal.install", lambda view, logger=None: installed.append(view))
    monkeypatch.setattr("introspect.cluster.terminal.plan_view", lambda plan, cores: "view")
    assert not quiet_terminal(None, 2, dryrun=setting == "dryrun", verbose=setting == "verbose")
    assert installed == []
    monkeypatch.setenv(OUTPUT_ENV, "")
    monkeypatch.setattr("introspect.cluster.terminal.install", lambda view, logger=None: installed.append(view) or 1)
    assert quiet_terminal(None, 2, dryrun=False, verbose=False) and installed == ["view"]


@pytest.mark.parametrize("local, viewed", [(True, True), (False, True), (True, False)])
def test_epoch_lines_go_to_the_logs_only_for_local_jobs_under_the_view(local, viewed, monkeypatch):
    monkeypatch.setenv(EPOCH_LINES_ENV, "")  # restored after the test: quiet_job_output sets it
    monkeypatch.delenv(EPOCH_LINES_ENV)
    logger, _ = snakemake_terminal()
    if viewed:
        install(TerminalView(TrainingClock({}, measured=False, slots=None), lambda rule, wildcards: ""), logger)
    assert quiet_job_output(local, logger) == (local and viewed)
    assert os.environ.get(EPOCH_LINES_ENV) == ("log" if local and viewed else None)


def test_with_a_quiet_terminal_a_jobs_epoch_lines_go_to_its_log_only(monkeypatch, capsys, caplog):
    from introspect.train.progress import report_progress

    caplog.set_level(logging.INFO, logger="introspect.train")
    monkeypatch.setenv(EPOCH_LINES_ENV, "")
    report_progress("run-a epoch 1/2")
    monkeypatch.setenv(EPOCH_LINES_ENV, "log")
    report_progress("run-a epoch 2/2")
    assert capsys.readouterr().out == "run-a epoch 1/2\n"  # the second only in the log (the job's stderr)
    assert [record.getMessage() for record in caplog.records] == ["run-a epoch 1/2", "run-a epoch 2/2"]
