"""The package works installed: a normal (not editable) ``pip install`` into a fresh target, imported
from outside the checkout, plans the paper config (its schemas are package data)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.system
def test_a_non_editable_install_plans_from_outside_the_checkout(tmp_path):
    source = tmp_path / "source"  # a copy, so the build writes nothing into the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, capture_output=True, text=True, timeout=300)
    shutil.rmtree(source)  # nothing may be read from the source tree any more
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "INTROSPECT_CACHE_DIR": str(tmp_path / "cache")}
    where = subprocess.run([sys.executable, "-c", "import introspect; print(introspect.__file__)"], cwd=outside,
                           env=env, check=True, capture_output=True, text=True).stdout.strip()
    assert Path(where).is_relative_to(target)
    paper = str(ROOT / "config" / "paper.yaml")
    result = subprocess.run([sys.executable, "-m", "introspect", "plan", "--config", paper], cwd=outside, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "training runs" in result.stdout.splitlines()[0]
    bad = outside / "bad.yaml"
    bad.write_text("seeds: [0]\ncolour: red\n")
    refused = subprocess.run([sys.executable, "-m", "introspect", "plan", "--config", str(bad)], cwd=outside, env=env,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "colour" in refused.stderr and "Traceback" not in refused.stderr
