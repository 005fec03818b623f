"""The pinned CPU kernel set (introspect.kernels): set before torch loads by the CLI and the tests,
opted out by INTROSPECT_NATIVE_KERNELS, recorded in metrics.json."""
import json
import os
import subprocess
import sys

import pytest
import torch

from introspect import kernels
from introspect.train import RunSpec, train
from workflow_helpers import ROOT

PINNED_KEYS = tuple(kernels.PINNED_ENVIRONMENT)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the pinned variables (as a fresh shell has it)."""
    env = {k: v for k, v in os.environ.items() if k not in PINNED_KEYS and k != kernels.OPT_OUT}
    return {**env, "PYTHONPATH": str(ROOT / "src"), **extra}


def capability_in_subprocess(code: str, env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                          timeout=120).stdout.strip()


def test_pin_sets_the_three_variables_unless_set_or_opted_out(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch")  # as before torch loads (the module object stays alive)
    environ = {"MKL_CBWR": "AVX2"}
    assert kernels.pin_kernels(environ, machine="x86_64") == "pinned"
    assert environ == {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
    chosen = {"ATEN_CPU_CAPABILITY": "avx512"}  # the user's own choice is kept, and reported as not pinned
    assert kernels.pin_kernels(chosen, machine="x86_64") == "unpinned"
    assert chosen["ATEN_CPU_CAPABILITY"] == "avx512"
    opted_out = {kernels.OPT_OUT: "1"}
    assert kernels.pin_kernels(opted_out, machine="x86_64") == "native" and opted_out == {kernels.OPT_OUT: "1"}
    assert kernels.pin_kernels({}, machine="aarch64") == "native"  # the variables name x86 instruction sets
    assert kernels.pin_kernels({kernels.OPT_OUT: "0"}, machine="AMD64") == "pinned"


def test_pin_after_torch_loaded_warns_unless_the_environment_was_pinned():
    assert "torch" in sys.modules
    with pytest.warns(UserWarning, match="torch was imported before"):
        assert kernels.pin_kernels({}, machine="x86_64") == "unpinned"
    assert kernels.pin_kernels(dict(kernels.PINNED_ENVIRONMENT), machine="x86_64") == "pinned"


def test_run_threads_fixed_unless_opted_out():
    assert kernels.run_threads(3, {}) == 3
    assert kernels.run_threads(None, {}) == kernels.DEFAULT_THREADS == 1
    assert kernels.run_threads(None, {kernels.OPT_OUT: "yes"}) is None


def test_cpu_model_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6338\n")
    assert kernels.cpu_model(info) == "Intel(R) Xeon(R) Gold 6338"
    assert kernels.cpu_model(tmp_path / "absent")  # falls back to platform's answer


@pytest.mark.system
@pytest.mark.skipif(not kernels.applies(), reason="kernel pinning applies to x86 CPUs")
def test_the_cli_pins_aten_before_torch_loads_and_the_opt_out_keeps_the_native_set():
    capability = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    native = capability_in_subprocess(capability, clean_env())
    if native == "DEFAULT":
        pytest.skip("this CPU has no AVX2")
    via_main = "from introspect import cli; cli.main(['download', 'no-such-dataset']); " + capability
    assert capability_in_subprocess(via_main, clean_env()) == "AVX2"  # main pinned before torch was imported
    assert capability_in_subprocess(via_main, clean_env(**{kernels.OPT_OUT: "1"})) == native


@pytest.mark.slow
def test_metrics_name_the_cpu_kernels_and_threads(tmp_path):
    spec = RunSpec.from_dict({"run_id": "k", "dataset": {"name": "digits", "image_size": 8}, "model": "mlp1024",
                              "method": {"name": "ce"}, "budget": {"epochs": 1, "batch_size": 128, "lr": 0.05},
                              "seed": 0})
    train(spec, tmp_path / "run", threads=None)
    device = json.loads((tmp_path / "run" / "metrics.json").read_text())["device"]
    assert device["cpu"] == device["name"] == kernels.cpu_model()
    assert device["threads"] == 1 == torch.get_num_threads()  # no --threads: the fixed default
    assert device["cpu_kernels"] == torch.backends.cpu.get_cpu_capability()
    assert device["kernels_pinned"] is (kernels.applies() and device["cpu_kernels"] == "AVX2")
