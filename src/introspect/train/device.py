"""The device a run trains on: its set-up (threads, fp32 or TF32, deterministic CUDA), provenance for
``metrics.json``, and CUDA or driver failures turned into one line that names the device and the versions.

What is bit-identical where (docs/determinism.md says it for users):
- CPU: the same config, seed and thread count give the same numbers on one machine, and a run killed and
  resumed equals the uninterrupted run (checked by the tests). Pinning the kernels to AVX2 before torch loads
  (:mod:`introspect.kernels`) removes the ISA as a difference, not every one: runs differ in their last digits
  between CPU vendors (docs/determinism.md).
- CUDA (untested on a GPU): ``use_deterministic_algorithms`` with ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (set
  here, before CUDA initialises), cuDNN's deterministic kernels and fp32 arithmetic should make a run repeat
  bit for bit on the same GPU model, driver and torch build, resume included, except where torch warns that
  an operation has no deterministic CUDA kernel (``warn_only``: the run trains and its log names it). Which
  step kinds call such an operation is traced, not listed here (:mod:`.nondeterminism`).
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from ..kernels import applies, environment_pinned, kernel_facts, native_requested, run_threads
from .errors import DeviceError, TrainingError

log = logging.getLogger("introspect.train")

CUBLAS_WORKSPACE = ":4096:8"
# A tensor on the wrong device is our bug, not the node's: the message names CUDA, but no driver is at fault.
_DEVICE_MISMATCH = re.compile(r"on the same device|same device|expected device|Expected all tensors to be on|"
                              r"but got device|should be the same|device type .* but got|"
                              r"is on (CPU|CUDA|cuda|cpu).*(but|while)", re.IGNORECASE)
_DEVICE_FAILURE = re.compile(r"CUDA|cuDNN|CUDNN|cuBLAS|CUBLAS|NVIDIA|driver|device-side assert|"
                             r"not compiled with CUDA", re.IGNORECASE)


def configure(device: str, threads: int | None = None, *, tf32: bool = False, native_kernels: bool = False) -> None:
    """The run's fixed thread count (:func:`introspect.kernels.run_threads`: the thread count changes the
    bits), fp32 or TF32 arithmetic for CUDA's convolutions and matrix products (:func:`set_tf32`), and on
    CUDA the deterministic mode (before any CUDA call of the run). The training loop, the pre-flight and the
    benches all set a device up through this one function. A run whose spec asks for the CPU's own kernels
    (``native_kernels``) in a process that pinned them is a TrainingError: its numbers would not be the ones its
    identity names."""
    if native_kernels and applies() and environment_pinned() and not native_requested():
        raise TrainingError("performance.native_kernels: this process pinned the CPU kernels before torch loaded; "
                            "run it with INTROSPECT_NATIVE_KERNELS=1 in the environment (the workflow sets it)")
    threads = run_threads(threads)
    if threads:
        torch.set_num_threads(threads)
    set_tf32(tf32)
    if not str(device).startswith("cuda"):
        return  # CPU kernels are deterministic already
    if torch.cuda.is_initialized() and os.environ.get("CUBLAS_WORKSPACE_CONFIG") not in (":4096:8", ":16:8"):
        log.warning("CUDA was initialised before CUBLAS_WORKSPACE_CONFIG was set: cuBLAS may not be "
                    "deterministic in this process")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def set_tf32(enabled: bool) -> None:
    """cuDNN convolutions and CUDA matrix products in TF32 (``enabled``) or in IEEE fp32. cuDNN's default
    on Ampere and later is TF32, whose 10-bit mantissa changes maps, targets and accuracies by more than
    the last bits, so a run asks for it explicitly (``performance.tf32``). Only the fp32_precision API is
    used: mixing it with the older ``allow_tf32`` flags is an error in torch."""
    precision = "tf32" if enabled else "ieee"
    torch.backends.cudnn.conv.fp32_precision = precision
    torch.backends.cuda.matmul.fp32_precision = precision


def synchronize(device: str) -> None:
    """Wait for the device's queued work (nothing to wait for on the CPU): before and after a timed step."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


@contextmanager
def sync_debug_errors(device: str) -> Iterator[None]:
    """On CUDA, any host-device synchronisation inside the block raises (a training step must have none)."""
    if not str(device).startswith("cuda"):
        yield
        return
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def provenance(device: str) -> dict[str, Any]:
    """What ran the numbers: device name and capability, driver, CUDA and cuDNN versions, and the CPU's
    model, kernel set and threads (:func:`introspect.kernels.kernel_facts`; CPU ops run on a GPU run too)."""
    info: dict[str, Any] = {"device": str(device), "torch": torch.__version__, "cuda": torch.version.cuda,
                            "cudnn": _cudnn_version(), **kernel_facts()}
    if str(device).startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        major, minor = torch.cuda.get_device_capability(index)
        info.update(name=torch.cuda.get_device_name(index), capability=f"{major}.{minor}", driver=_driver_version(),
                    cublas_workspace_config=os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
                    deterministic=torch.are_deterministic_algorithms_enabled(),
                    conv_fp32_precision=torch.backends.cudnn.conv.fp32_precision,
                    matmul_fp32_precision=torch.backends.cuda.matmul.fp32_precision)
    else:
        info.update(name=info["cpu"])
    return info


def as_device_error(error: BaseException, device: str) -> DeviceError | None:
    """A CUDA, cuDNN or driver failure as one line with the device and versions (None: not one). A
    device-mismatch error (tensors on different devices) is None too: it is a bug in the code, which the
    caller reports as such (a traceback, exit 1), not a failure of the node (exit 5)."""
    message = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if is_device_mismatch(error):
        return None
    accelerator = getattr(torch, "AcceleratorError", ())
    if not (isinstance(error, accelerator) or isinstance(error, (RuntimeError, AssertionError))
            and _DEVICE_FAILURE.search(message)):
        return None
    try:
        details = provenance(device)
    except Exception:  # noqa: BLE001 - a broken device may fail its queries too
        details = {"device": device, "torch": torch.__version__, "cuda": torch.version.cuda}
    versions = ", ".join(f"{k} {v}" for k, v in details.items() if k in (
        "device", "name", "capability", "driver", "cuda", "cudnn", "torch") and v is not None)
    return DeviceError(f"device failure on {device}: {message} ({versions}); check the node's GPU and driver "
                       "with nvidia-smi, or train with --device cpu")


def is_device_mismatch(error: BaseException) -> bool:
    """Whether ``error`` says tensors were on different devices (a bug), e.g. "Expected all tensors to be on
    the same device, but found at least two devices, cuda:0 and cpu!"."""
    return bool(_DEVICE_MISMATCH.search(str(error)))


def _cudnn_version() -> int | None:
    try:
        return torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    except RuntimeError:
        return None


def _driver_version() -> str | None:
    """The NVIDIA driver's version (nvidia-smi), else the CUDA version the driver supports."""
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout.split()
        if out:
            return out[0]
    except (OSError, subprocess.SubprocessError):
        pass
    getter = getattr(torch._C, "_cuda_getDriverVersion", None)  # private; absent from some builds
    if getter is None:
        return None
    version = getter()  # e.g. 12040
    return f"CUDA {version // 1000}.{version % 1000 // 10}"
