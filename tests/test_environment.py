"""The conda environment and pyproject.toml pin the same versions."""
import tomllib
from pathlib import Path

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
