"""Every bench/ script runs in its quick mode, so none of them rots unnoticed (bench/planning.py once
crashed on synthetic runs without test_acc_max). gpu_check.py also keeps its CPU promise: under 2 minutes."""
from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time

import pytest

from workflow_helpers import BIN, ROOT

pytestmark = pytest.mark.workflow
SCRIPTS = sorted(p.name for p in (ROOT / "bench").glob("*.py") if p.name != "common.py")


def run_quick(script: str, tmp_path, *extra: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick", "--out",
                             str(tmp_path / "out.csv"), *extra], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=600)
    return result, time.perf_counter() - start


def test_every_bench_script_is_covered():
    """Every script in bench/ is parametrised below; these are the ones the README quotes figures of."""
    assert {"dead_explanations.py", "epoch_time.py", "gpu_check.py", "kernel_pin.py", "planning.py", "step_time.py",
            "workflow_time.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s not in ("gpu_check.py", "kernel_pin.py", "step_time.py")])
def test_bench_script_runs_in_quick_mode(script, tmp_path):
    result, _ = run_quick(script, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert rows and all(value not in ("", "nan", "inf") for r in rows for value in r.values()), rows


def test_step_time_times_both_batched_backwards_and_their_ratio(tmp_path):
    result, _ = run_quick("step_time.py", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {r["variant"]: r for r in csv.DictReader((tmp_path / "out.csv").open())}
    assert float(rows["CE"]["ratio_to_ce"]) == 1.0
    for explainer in ("grad", "grad_input", "guided_bp", "grad_cam"):
        loop, vmap = rows[f"LE({explainer})"], rows[f"LE({explainer}) vmap"]
        assert float(loop["median_ms"]) > 0 and float(vmap["median_ms"]) > 0
        ratio = float(result.stdout.split(f"LE({explainer})")[-1].split("vmap/loop ")[1].split()[0])
        assert ratio == pytest.approx(float(vmap["median_ms"]) / float(loop["median_ms"]), abs=0.01)


def test_gpu_check_on_the_cpu_checks_every_method_of_the_paper_plan(tmp_path):
    # Its speed (minutes, for a user before a campaign) is a figure it prints, not an assertion here: a timed
    # test fails on a busy machine and says nothing about the code.
    from introspect.cluster.calibration import step_kinds
    from introspect.plan.build import build_plan, load_config

    result, _ = run_quick("gpu_check.py", tmp_path, "--device", "cpu")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"^\d+ step kinds, \d+ findings in \d+ s; 0 failed$", result.stdout, re.M)
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    by_check = {}
    for r in rows:
        by_check.setdefault(r["check"], {})[r["item"]] = r
    assert set(by_check) == {"step", "determinism", "nondeterministic", "tf32", "batched_backward", "resume",
                             "packing"}
    assert all(r["ok"] == "True" for r in rows)
    plan = build_plan(load_config(ROOT / "config" / "paper.yaml"))
    methods = {(kind.method, kind.explainer or "-") for kind, _ in step_kinds(plan).values()}
    checked = {(key.split("/")[2], key.split("/")[3]) for key in by_check["step"]}
    assert checked == methods  # --quick: every method and explainer of the paper plan, once
    assert set(by_check["determinism"]) == set(by_check["step"])
    assert all(r["value"] == "identical" for r in by_check["determinism"].values())
    flagged = {key.split("/")[2]: r["value"] for key, r in by_check["nondeterministic"].items()}
    assert flagged == {"fsp_kd": "torch.nn.AdaptiveAvgPool2d",  # FSP's pooling backward; e2KD's and
                       "e2kd": "torch.nn.functional.interpolate (bilinear)",  # XDistillation's upsampling
                       "xdistill": "torch.nn.functional.interpolate (bilinear)"}
    assert [r["value"] for r in by_check["tf32"].values()] == ["0"]  # TF32 does not exist on a CPU
    (backward,) = by_check["batched_backward"].values()
    assert backward["unit"] == "the same weights" and "vmap/loop" in backward["value"]
    assert sorted(by_check["packing"]) == ["1 run(s) per device", "2 run(s) per device"]
    assert "resume            ok  resnet8 CE, stopped after epoch 1: identical" in result.stdout


def test_kernel_pin_shows_pinned_equals_forced_avx2_and_the_cost():
    """Pinned and hand-forced AVX2 processes train the same weights; the ratio line is printed."""
    import tempfile
    from pathlib import Path

    from introspect.kernels import applies

    with tempfile.TemporaryDirectory() as tmp:
        result, _ = run_quick("kernel_pin.py", Path(tmp))
        assert result.returncode == 0, result.stderr[-3000:]
        rows = {r["mode"]: r for r in csv.DictReader((Path(tmp) / "out.csv").open())}
    assert set(rows) == {"pinned", "forced", "native"}
    assert rows["pinned"]["digest"] == rows["forced"]["digest"]
    if applies():
        assert rows["pinned"]["kernels"] == rows["forced"]["kernels"] == "AVX2"
    if rows["native"]["kernels"] != "AVX2":  # an AVX-512 machine: other kernels, other bits
        assert rows["native"]["digest"] != rows["pinned"]["digest"]
    assert "pinned == forced AVX2: identical" in result.stdout
    ratio = float(result.stdout.split("step time pinned / native: ")[1].split()[0])
    assert ratio == pytest.approx(float(rows["pinned"]["step_ms"]) / float(rows["native"]["step_ms"]), abs=0.01)


def test_gpu_check_lists_the_paper_plans_nondeterministic_ops_as_docs_gpu_md_does(tmp_path):
    """The list in docs/gpu.md is this output (traced on the CPU), not written by hand."""
    result, _ = run_quick("gpu_check.py", tmp_path, "--device", "cpu", "--list-nondeterministic")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {r["item"]: r for r in csv.DictReader((tmp_path / "out.csv").open())}
    assert set(rows) == {"torch.nn.AdaptiveAvgPool2d", "torch.nn.functional.interpolate (bilinear)"}
    pooling = {key.split("/")[2] for key in rows["torch.nn.AdaptiveAvgPool2d"]["value"].split(", ")}
    upsampling = {key.split("/")[2] for key in rows["torch.nn.functional.interpolate (bilinear)"]["value"].split(", ")}
    assert pooling == {"fsp_kd"} and upsampling == {"e2kd", "xdistill"}
    assert rows["torch.nn.AdaptiveAvgPool2d"]["unit"] == "(2 of 61 step kinds)"
    assert rows["torch.nn.functional.interpolate (bilinear)"]["unit"] == "(5 of 61 step kinds)"
    doc = (ROOT / "docs" / "gpu.md").read_text()
    assert "(2 of 61 kinds)" in doc and "(5 of 61)" in doc
