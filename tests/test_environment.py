"""The conda environment and pyproject.toml pin the same versions."""
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def pins(requirements):
    return dict(r.split("==") for r in requirements)


def test_conda_environment_matches_pyproject():
    project = pins(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    env = yaml.safe_load((ROOT / "envs" / "introspect.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = pins(pip_section)
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert python == "python=3.11"
    # the runtime packages the rules need (with the data extras); snakemake itself runs outside the rule environment
    runtime = {k: v for k, v in project.items() if not k.startswith("snakemake")}
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    runtime.update(pins(extras["mnist5k"]))
    assert conda_pins == runtime


def load_workflow(workdir: Path, deployment_methods=frozenset()):
    """The parsed workflow (rules and Snakefile globals) on the smoke config, without running it."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DeploymentSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api:
        workflow_api = api.workflow(ResourceSettings(), ConfigSettings(configfiles=[ROOT / "config" / "smoke.yaml"]),
                                    deployment_settings=DeploymentSettings(deployment_method=deployment_methods),
                                    snakefile=ROOT / "Snakefile", workdir=workdir)
        return workflow_api._workflow


@pytest.mark.workflow
def test_every_job_rule_runs_in_the_conda_environment_or_the_interpreter_of_snakemake(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # restored after the test: loading the workflow prepends to it
    workflow = load_workflow(tmp_path)
    results_dir = workflow.globals["LAYOUT"].root
    # every rule but the target, the pack anchor (a `touch` that only ties a pack of runs into one job) and the
    # local writers of the job files (run inside Snakemake's own process: they call introspect.plan.job_files)
    local_writers = {"job_files", "config_file"}
    assert all(r.shellcmd is None for r in workflow.rules if r.name in local_writers)
    job_rules = [rule for rule in workflow.rules if rule.name not in ("all", "pack_anchor", *local_writers)]
    assert {rule.name for rule in job_rules} >= {"train", "teacher", "distill", "le_warmup", "le_stage2", "figure",
                                                  "analyse_students", "table", "select_hyperparameters"}
    for rule in job_rules:
        assert rule.conda_env is not None, rule.name
        assert (Path(rule.snakefile).parent / rule.conda_env).resolve() == ROOT / "envs" / "introspect.yaml"
        # the interpreter is `python` on PATH when the job runs: no absolute path in the command text
        assert rule.shellcmd.startswith("python -m introspect ") and str(ROOT) not in rule.shellcmd, rule.name
        # and its stderr goes to a log under the results folder
        assert rule.log and all(Path(log).is_relative_to(results_dir) for log in rule.log), rule.name
        assert "2> {log:q}" in rule.shellcmd, rule.name
    # without conda, a job's shell finds the interpreter running Snakemake first (under --sdm conda, the
    # environment's activation in the job's shell puts its own first)
    found = subprocess.run(["bash", "-c", "command -v python"], capture_output=True, text=True, env=os.environ)
    assert Path(found.stdout.strip()).parent == Path(sys.executable).parent
