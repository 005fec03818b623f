"""The CPU kernel set and thread count a process computes with, fixed so that the ISA and the reductions'
split are the same on every x86-64 CPU with AVX2 (the bits still differ across CPU vendors: docs/determinism.md).

Training is chaotic: a difference in the last bit of one step grows into a different model within a few
epochs. PyTorch picks its CPU kernels by the CPU it finds (ATen's AVX-512 or AVX2 paths, oneDNN's ISA,
MKL's code path), and the kernels differ in summation order, so an AVX-512 machine and an AVX2 machine
train different models from one seed. The thread count changes how reductions are split, so it
changes the bits too. :func:`pin_kernels` therefore sets, before torch is imported (the libraries read
them once, when they load):

- ``ATEN_CPU_CAPABILITY=avx2``: ATen's vectorised kernels at AVX2 on every CPU that has it;
- ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN's convolutions and matrix products at most AVX2;
- ``MKL_CBWR=AVX2``: MKL's conditional numerical reproducibility mode for the AVX2 code path;

and every run uses a fixed thread count (the config's ``threads_per_run``; :data:`DEFAULT_THREADS` where
none is given). ``INTROSPECT_NATIVE_KERNELS=1`` opts out (the CPU's own kernels and torch's thread
default: faster on AVX-512 machines, numbers no longer portable); ``bench/kernel_pin.py`` measures the
cost. Not covered: CPUs without AVX2 (ATen falls back to its scalar kernels), other architectures (ARM
uses its own kernels; nothing is pinned there) and GPUs (see ``docs/determinism.md``).

This module imports no torch at module level: it must run before torch loads.
"""
from __future__ import annotations

import os
import platform
import sys
import warnings
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

PINNED_ENVIRONMENT = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
OPT_OUT = "INTROSPECT_NATIVE_KERNELS"
DEFAULT_THREADS = 1  # a run's threads where nothing sets them (the config's threads_per_run default)
X86 = ("x86_64", "amd64", "i386", "i686")


def native_requested(environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether the user opted out of pinning (``INTROSPECT_NATIVE_KERNELS`` set to anything but 0)."""
    environ = os.environ if environ is None else environ
    return environ.get(OPT_OUT, "").strip() not in ("", "0")


def applies(machine: str | None = None) -> bool:
    """Pinning applies on x86 only: the variables name x86 instruction sets."""
    return (machine or platform.machine()).lower() in X86


def pin_kernels(environ: MutableMapping[str, str] | None = None, machine: str | None = None) -> str:
    """Set the pinned kernel variables (where the environment does not set them already) before torch
    loads. Returns ``"pinned"``, ``"native"`` (opted out, or not x86) or ``"unpinned"``: torch was imported
    before with other settings, so its kernels are already chosen (a warning says so)."""
    environ = os.environ if environ is None else environ
    if native_requested(environ) or not applies(machine):
        return "native"
    if "torch" in sys.modules:
        if environment_pinned(environ):
            return "pinned"
        warnings.warn("torch was imported before introspect pinned the CPU kernels: this process uses the "
                      "CPU's own kernels and its numbers may differ from another machine's", stacklevel=2)
        return "unpinned"
    for key, value in PINNED_ENVIRONMENT.items():
        environ.setdefault(key, value)
    return "pinned" if environment_pinned(environ) else "unpinned"


def environment_pinned(environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether the environment holds exactly the pinned kernel settings."""
    environ = os.environ if environ is None else environ
    return all(environ.get(key, "").lower() == value.lower() for key, value in PINNED_ENVIRONMENT.items())


def run_threads(threads: int | None, environ: MutableMapping[str, str] | None = None) -> int | None:
    """The intra-op thread count a run uses: ``threads`` if given, else :data:`DEFAULT_THREADS`, or None
    (torch's own default, the machine's cores) when the user opted out of pinning."""
    if threads:
        return threads
    return None if native_requested(environ) else DEFAULT_THREADS


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere what ``platform`` knows)."""
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def kernel_facts() -> dict[str, Any]:
    """What the numbers of this process were computed with, for ``metrics.json``: the CPU model, the kernel
    set ATen uses (``torch.backends.cpu.get_cpu_capability()``), whether the kernel set is the pinned one
    (the pinned environment, and ATen at AVX2: a CPU without AVX2 runs other kernels) and the intra-op
    threads."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    return {"cpu": cpu_model(), "cpu_kernels": capability,
            "kernels_pinned": applies() and environment_pinned() and capability == "AVX2",
            "threads": torch.get_num_threads()}
