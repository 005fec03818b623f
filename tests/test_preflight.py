"""The pre-flight job (introspect.cluster.preflight): its checks fail with one line naming what, where and the fix;
it measures every step kind of a plan; in the workflow it is the one job that fails when the data is
missing, and every training job waits for it."""
from __future__ import annotations

import json

import pytest

from introspect.cluster.calibration import calibration_paths, read_calibration, step_kinds
from introspect.cluster.failures import failed_jobs, failure_report
from introspect.cluster.preflight import PreflightError, preflight_spec, run_preflight
from introspect.config.model import load_config
from introspect.errors import EXIT_DATA_ERROR, EXIT_INPUT_ERROR
from introspect.plan.build import build_plan
from workflow_helpers import ROOT, snakemake, views_dir, write_config


def small_config(tmp_path) -> dict:
    """Smoke Table 2 (CE, LE(Grad-CAM)) and Table 5 (KD, XDistillation from a ResNet14 teacher)."""
    config = load_config(ROOT / "config" / "smoke.yaml")
    table5 = {**config["tables"]["table5"], "methods": ["KD", "XDistillation"], "compare_to": ["KD"],
              "groups": [{"label": "ResNet8", "model": "resnet8", "budget": "resnet", "teacher": "resnet14"}]}
    tables = {"table2": {**config["tables"]["table2"], "methods": ["CE", "LE(Grad-CAM)"]}, "table5": table5}
    config.update(tables=tables, figures={}, analyses={}, claims=[], results_dir=str(tmp_path / "results"))
    return config


def test_preflight_measures_every_step_kind_and_the_plan_reads_it(tmp_path):
    plan = build_plan(small_config(tmp_path))
    spec = preflight_spec(plan)
    kinds = step_kinds(plan)
    # CE, LE(Grad-CAM) Stage 2 (its warm-up is a CE step), the ResNet14 teacher, KD and XDistillation students
    assert {k.method for k, _ in kinds.values()} == {"ce", "le", "kd", "xdistill"}
    assert {kind["key"] for kind in spec["kinds"]} == set(kinds)
    report = run_preflight(json.loads(json.dumps(spec)), threads=1)  # as the job receives it
    assert set(report["kinds"]) == set(kinds)
    for measured in report["kinds"].values():
        assert measured["step_seconds"] > 0 and measured["eval_seconds"] > 0
        assert measured["epoch_seconds"] == pytest.approx(
            measured["batches_per_epoch"] * measured["step_seconds"] + measured["eval_seconds"])
    for key, path in calibration_paths(plan).items():  # one file per step kind, the plan's runs read theirs
        calibration = read_calibration(path)
        assert set(calibration.epoch_seconds) == {key} and calibration.device["device"] == "cpu"
        assert calibration.epoch_seconds[key] == report["kinds"][key]["epoch_seconds"]


def test_missing_data_names_the_data_root_and_the_fix(tmp_path):
    config = small_config(tmp_path)
    config["datasets"]["digits"] = {"source": "mnist", "val_fraction": 0.1, "augment": "none"}
    config["data_root"] = str(tmp_path / "data")
    spec = preflight_spec(build_plan(config))
    with pytest.raises(PreflightError) as caught:
        run_preflight(spec)
    message = str(caught.value)
    assert caught.value.exit_code == EXIT_DATA_ERROR and "\n" not in message
    assert f"data_root {tmp_path / 'data'} does not exist" in message
    assert f"python -m introspect download mnist --root {tmp_path / 'data'}" in message
    raw = tmp_path / "data" / "MNIST" / "raw"  # MNIST as users download it: compressed
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (raw / name).write_bytes(b"")
    with pytest.raises(PreflightError, match=r"gunzip -k .*/MNIST/raw/\*\.gz"):
        run_preflight(spec)
    assert not any(path.exists() for path in calibration_paths(build_plan(config)).values())


def test_unwritable_results_dir_fails_before_any_step(tmp_path):
    config = small_config(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")
    config["results_dir"] = str(blocker / "results")  # a path under a regular file cannot be created
    spec = preflight_spec(build_plan(config))
    with pytest.raises(PreflightError, match="results_dir is not writable") as caught:
        run_preflight(spec)
    assert caught.value.exit_code == EXIT_INPUT_ERROR


@pytest.mark.workflow
def test_missing_cifar_data_fails_one_job_and_starts_no_training(tmp_path):
    data_root = tmp_path / "no-such-data"
    config = small_config(tmp_path)
    config.pop("reported_results")  # write_config points it at the repository's copy
    written = write_config(tmp_path, **{**config, "data_root": str(data_root),
                              "datasets": {"digits": {"source": "cifar10", "val_fraction": 0.1,
                                                      "augment": "crop_flip"}}})
    result = snakemake(tmp_path, "--cores", "2", "-k", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert output.count("Error in rule") == 1 and "Error in rule preflight" in output, output[-3000:]
    # no training job started: the job_files step wrote each run's record, and nothing else is in a run directory
    in_runs = {p.name for p in (tmp_path / "results" / "runs").rglob("*") if p.is_file()}
    assert in_runs and all(name.startswith("record.") for name in in_runs), in_runs
    line = next(line for line in output.splitlines() if line.startswith("pre-flight failed:"))
    assert str(data_root) in line and f"python -m introspect download cifar10 --root {data_root}" in line
    # onerror names the one failed job and its log, not the runs that never started
    report = result.stdout[result.stdout.index("1 job(s) failed:"):]  # onerror's lines (stdout)
    assert f"preflight: {views_dir(tmp_path, written) / 'logs' / 'preflight' / 'cpu.log'}" in report
    assert "/runs/" not in report
    log = sorted((tmp_path / ".snakemake" / "log").glob("*.snakemake.log"))[-1]
    assert [job.rule for job in failed_jobs(log.read_text())] == ["preflight"]


def test_failure_report_counts_a_retried_job_once_and_names_cancelled_slurm_jobs(tmp_path):
    """The blocks as Snakemake 9 and the SLURM plugin write them (no wildcards line; the shell command
    indented deeper; external_jobid after it)."""
    block = ("Error in rule train:\n    message: SLURM-job '{id}' failed, SLURM status is: '{state}'. Reason: "
             "Unknown.For further error details see the cluster/cloud log and the log files of the involved "
             "rule(s).\n    jobid: 7\n    input: results/preflight/cpu.json\n"
             "    output: results/runs/{run}/metrics.json, results/runs/{run}/model.pt\n"
             "    log: results/runs/{run}/train.log, "
             ".snakemake/slurm_logs/rule_train/{run}/{id}.log (check log file(s) for error details)\n    shell:\n"
             "        \"$INTROSPECT_PYTHON\" -m introspect train --record '{{\"log\": 1}}' "
             "2> results/runs/{run}/train.log\n"
             "        (command exited with non-zero exit code)\n    external_jobid: {id}\n\n")
    attempts = ((11, "FAILED", "a"), (12, "FAILED", "a"), (13, "PREEMPTED", "a"), (14, "FAILED", "b"))
    text = "[Sun Nov 29]\n" + "".join(block.format(id=i, state=s, run=r) for i, s, r in attempts)
    jobs = failed_jobs(text)
    assert [(job.rule, job.logs[0]) for job in jobs] == [("train", "results/runs/a/train.log"),
                                                           ("train", "results/runs/b/train.log")]
    assert jobs[0].slurm_job == "13" and jobs[1].slurm_job == "14"
    assert jobs[0].logs[1:] == [f".snakemake/slurm_logs/rule_train/a/{i}.log" for i in (11, 12, 13)]
    log = tmp_path / "snakemake.log"
    log.write_text(text)
    report = failure_report([str(log)], unfinished=5)
    assert "2 job(s) failed:" in report and "[SLURM PREEMPTED]" in report and "SLURM job 13: PREEMPTED" in report
    assert "[SLURM FAILED]" in report and "5 run(s) are not finished" in report


@pytest.mark.workflow
def test_paper_dry_run_on_slurm_lists_the_preflight_and_sends_cpu_jobs_to_the_cpu_partition(tmp_path):
    """`snakemake -n --profile slurm` on config/paper.yaml: one run's metrics.json needs the pre-flight; the
    accuracy figure (CPU only) asks cluster.cpu_partition and no GPU, the pre-flight the GPU partition."""
    config = load_config(ROOT / "config" / "paper.yaml")
    written = write_config(tmp_path, base="paper.yaml", cluster={**config["cluster"], "cpu_partition": "cpu",
                                                                 "gpu_partition": "gpu_a100"})
    metrics = tmp_path / "results" / "runs" / "cifar10" / "resnet8" / "resnet-e160" / "ce" / "seed0" / "metrics.json"
    figure3 = views_dir(tmp_path, written) / "figures" / "figure3.csv"
    result = snakemake(tmp_path, str(metrics), "-n", "--profile", "slurm", cwd=ROOT)
    preflight = job_block(result.stdout + result.stderr, "preflight")
    assert "slurm_partition=gpu_a100," in preflight and "gpu=1," in preflight
    assert job_block(result.stdout + result.stderr, "train")
    result = snakemake(tmp_path, str(figure3), "-n", "--profile", "slurm", "--until", "figure", cwd=ROOT)
    figure = job_block(result.stdout + result.stderr, "figure")
    assert "slurm_partition=cpu," in figure and "gpu=0," in figure and "gres=" in figure and "gres=gpu" not in figure
    # without cpu_partition, the CPU-only job does not follow SBATCH_PARTITION (a GPU partition) but leaves
    # the choice to the cluster's default partition
    write_config(tmp_path, base="paper.yaml", cluster={**config["cluster"], "cpu_partition": None})
    result = snakemake(tmp_path, str(figure3), "-n", "--profile", "slurm", "--until", "figure", cwd=ROOT,
                       env={"SBATCH_PARTITION": "gpu_a100"})
    figure = job_block(result.stdout + result.stderr, "figure")
    assert "slurm_partition=," in figure and "gpu=0," in figure, figure


def job_block(output: str, rule: str) -> str:
    """The lines of the first job of ``rule`` in Snakemake's dry-run listing."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line in (f"rule {rule}:", f"checkpoint {rule}:"))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return "\n".join(lines[start:end])


def test_failure_report_reads_a_block_whose_message_runs_over_lines(tmp_path):
    """The plugin's sbatch failure: its message spans an unindented line before the job's fields."""
    text = ("Error in rule preflight:\n    message: SLURM sbatch failed. The error message was 'sbatch: error: "
            "Unable to contact slurm controller'\n    sbatch call:\n        sbatch --parsable -p gpu\n"
            "For further error details see the cluster/cloud log and the log files of the involved rule(s).\n"
            "    jobid: 3\n    output: results/preflight/cpu.json\n"
            "    log: results/logs/preflight/cpu.log (check log file(s) for error details)\n"
            "Exiting because a job execution failed. Look above for error messages\n")
    (job,) = failed_jobs(text)
    assert job.rule == "preflight" and job.logs == ["results/logs/preflight/cpu.log"]
    log = tmp_path / "snakemake.log"
    log.write_text(text)
    assert "\n  preflight: results/logs/preflight/cpu.log\n" in failure_report(str(log))


def test_every_problem_is_reported_at_once(tmp_path, monkeypatch):
    """A CUDA device this machine lacks (torch here is CPU-only, or no GPU is visible), a missing data_root
    and a results_dir without file locks: three lines in one failure, none hidden behind the first."""
    import errno
    import fcntl

    import torch

    from introspect.cluster import preflight
    from introspect.errors import EXIT_DEVICE_ERROR

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is available here")
    config = small_config(tmp_path)
    config["datasets"]["digits"] = {"source": "mnist", "val_fraction": 0.1, "augment": "none"}
    config["data_root"] = str(tmp_path / "data")
    spec = {**preflight_spec(build_plan(config)), "device": "cuda"}
    spec["outputs"] = {key: path.replace("/preflight/cpu/", "/preflight/cuda/")  # its device's files
                       for key, path in spec["outputs"].items()}

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(preflight, "fcntl", type("NoFlock", (), {"flock": staticmethod(no_locks),
                                                                "LOCK_EX": fcntl.LOCK_EX, "LOCK_NB": fcntl.LOCK_NB,
                                                                "LOCK_UN": fcntl.LOCK_UN}))
    with pytest.raises(PreflightError) as caught:
        run_preflight(spec)
    lines = str(caught.value).splitlines()
    assert len(lines) == 3 and all(line.startswith("pre-flight failed: ") for line in lines), lines
    assert "device cuda is not available" in lines[0]
    assert "results_dir does not support file locks (flock: No locks available)" in lines[1]
    assert f"data_root {tmp_path / 'data'} does not exist" in lines[2]
    assert caught.value.exit_code == EXIT_DEVICE_ERROR and len(caught.value.problems) == 3
    assert not any(path.exists() for path in calibration_paths(build_plan(config)).values())


def test_failure_report_names_a_preempted_job_that_the_head_failed_as_preempted(tmp_path):
    """introspect.cluster.slurm_status reports a PREEMPTED job SLURM forgot to the plugin as FAILED, and logs
    why; the report shows its real end."""
    text = ("SLURM job 21 ended PREEMPTED and SLURM no longer lists it (it was not requeued): failing it, so "
            "Snakemake retries it (the run resumes from its checkpoint)\n"
            "Error in rule train:\n    message: SLURM-job '21' failed, SLURM status is: 'FAILED'. Reason: Unknown.\n"
            "    jobid: 7\n    log: results/runs/a/train.log (check log file(s) for error details)\n"
            "    external_jobid: 21\n\n")
    log = tmp_path / "snakemake.log"
    log.write_text(text)
    report = failure_report([str(log)])
    assert "  train: results/runs/a/train.log [SLURM PREEMPTED]" in report
    assert "train (SLURM job 21: PREEMPTED). Rerun the same command" in report
