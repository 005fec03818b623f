"""The workflow as users move, edit and break it: a moved checkout reruns nothing, an edited
reported_results.csv rebuilds exactly what reads it, a corrupt file is an error naming it, and the
hostile configs of issue 13 are refused by `snakemake -n` itself, naming the key."""
import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from introspect.config.model import load_config
from test_validation import HOSTILE
from workflow_helpers import ROOT, snakemake, write_config

pytestmark = pytest.mark.workflow

SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def tiny_config() -> dict:
    """Table 3 of the smoke config alone (MLP, a sweep, an LE warm-up and Stage 2), paths relative."""
    config = load_config(ROOT / "config" / "smoke.yaml")
    config.update(tables={"table3": config["tables"]["table3"]}, figures={}, analyses={}, teachers={},
                  claims=[c for c in config["claims"] if c["table"] == "table3"],
                  results_dir="results", reported_results="config/reported_results.csv")
    return config


def checkout_copy(target: Path) -> Path:
    """What a clone holds: the Snakefile, the workflow, the package source and the configs."""
    target.mkdir()
    shutil.copy(ROOT / "Snakefile", target)
    for folder in ("workflow", "src", "config", "envs", "profiles"):
        shutil.copytree(ROOT / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (target / "config" / "tiny.yaml").write_text(yaml.safe_dump(tiny_config(), sort_keys=False))
    return target


def run(checkout: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(SNAKEMAKE), *args, "--configfile", "config/tiny.yaml"], cwd=checkout,
                            capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def finished_checkout(tmp_path_factory):
    checkout = checkout_copy(tmp_path_factory.mktemp("moved") / "checkout")
    run(checkout, "--cores", "2")
    return checkout


def planned_jobs(result: subprocess.CompletedProcess) -> set[str]:
    """Rule names of the jobs a dry run lists in its job-stats table."""
    if "Job stats:" not in result.stdout:
        return set()
    lines = result.stdout.split("Job stats:")[1].split("\n\n")[0].splitlines()[3:]
    return {line.split()[0] for line in lines if line.split() and line.split()[0] != "total"}


def test_a_moved_checkout_has_nothing_to_do(finished_checkout):
    moved = finished_checkout.parent / "elsewhere"
    shutil.move(finished_checkout, moved)
    try:
        result = run(moved, "-n")
        assert "Nothing to be done" in result.stdout + result.stderr, result.stdout
    finally:
        shutil.move(moved, finished_checkout)


def test_editing_reported_results_rebuilds_exactly_what_reads_it(finished_checkout):
    csv = finished_checkout / "config" / "reported_results.csv"
    original = csv.read_text()
    try:
        csv.write_text(original.replace("3,mnist,mlp1024,CE,test_err,1.39", "3,mnist,mlp1024,CE,test_err,1.40"))
        assert planned_jobs(run(finished_checkout, "-n")) == {"table", "claims", "significance_tests", "all"}
        csv.write_text(original.replace("3,mnist,mlp1024,CE,test_err,1.39", "3,mnist,mlp1024,CE,test_err,abc"))
        result = run(finished_checkout, "--cores", "1", check=False)
        output = result.stdout + result.stderr  # the failed job's log, shown by the workflow profile
        assert result.returncode != 0 and "Traceback" not in output
        rows = original.splitlines()
        line = rows.index(next(r for r in rows if r.startswith("3,mnist,mlp1024,CE,"))) + 1
        assert f"config/reported_results.csv line {line}, column mean: 'abc' is not a number" in output
    finally:
        csv.write_text(original)
        run(finished_checkout, "--cores", "1")


def test_a_corrupt_metrics_file_is_an_error_naming_it_and_the_fix(finished_checkout):
    metrics = next((finished_checkout / "results" / "runs").rglob("ce/seed0/metrics.json"))  # read by table3
    original = metrics.read_text()
    try:
        metrics.write_text(original[: len(original) // 2])
        result = run(finished_checkout, "--cores", "1", check=False)
        output = result.stdout + result.stderr  # the failed job's log, shown by the workflow profile
        assert result.returncode != 0
        assert f"{metrics.relative_to(finished_checkout)} is corrupt" in output
        assert "run the same snakemake command again" in output and "Traceback" not in output
    finally:
        metrics.write_text(original)
        run(finished_checkout, "--cores", "1", "--touch")


# Every hostile case of issue 13 is refused in-process by test_validation (the same validate_config the
# Snakefile calls); through `snakemake -n` two of them show the Snakefile turns the refusal into one
# message before any job or file exists (each case here is a Snakemake process: keep the list short).
ISSUE_13_CASES = ["dataset key running a command", "results_dir going up"]


@pytest.mark.parametrize("case", ISSUE_13_CASES)
def test_snakemake_refuses_a_hostile_config_naming_the_key(case, tmp_path):
    mutate, fragments = HOSTILE[case]
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = write_config(workdir)
    reported = str(ROOT / "config" / "reported_results.csv")
    config = copy.deepcopy(config) | {"results_dir": "results", "reported_results": reported}
    mutate(config)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    result = snakemake(workdir, "-n", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "config rejected before any job started" in output
    assert all(fragment in output for fragment in fragments), output[-2000:]
    assert "Traceback" not in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # nothing written beside the workdir
    assert not (workdir / "results").exists() and not (workdir / "pwned").exists()
