"""The pre-flight job: every training job of a campaign depends on it, so a broken node, wheel, data
copy or results folder fails ONE short job with one line (what, where, the fix) instead of every run
three times over.

It checks the interpreter and torch; the device (CUDA available, its name, capability, driver and
cuDNN, and that the wheel was built for it); that ``results_dir`` is writable and supports the file
locks of the runs' writer lock (:mod:`introspect.train.lock`); every dataset of the plan at ``data_root``
through the same loader the runs use; then one training step of every step kind of the plan
(:mod:`introspect.cluster.calibration`) whose device and data passed, on the device, under
``torch.cuda.set_sync_debug_mode("error")`` on CUDA (a host sync in the step is an error). It then
times a few more steps and an evaluation pass of each kind and writes the epoch seconds to the
calibration file, which the plan's time limits read from then on (:mod:`introspect.cluster.resources`).
A deterministic check, it runs once (no retries, preflight.smk) and reports every problem it found at
once, one line each (a missing data_root and a broken device together), so one fix round is enough.
"""
from __future__ import annotations

import fcntl
import platform
import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import (
    EXIT_DATA_ERROR,
    EXIT_DEVICE_ERROR,
    EXIT_INPUT_ERROR,
    EXIT_TRAINING_ERROR,
    LOCKING_UNSUPPORTED,
    InputError,
)
from ..methods.hyperparameters import MAX_EPOCHS
from .calibration import CALIBRATION_VERSION, calibration_paths, kind_file, step_kinds

if TYPE_CHECKING:  # pragma: no cover
    from ..plan.build import Plan

TIMED_STEPS = 3  # after the checked step; the median is the step's cost


class PreflightError(RuntimeError):
    """A check failed: one line saying what, where, and the fix; ``exit_code`` from introspect.errors."""

    def __init__(self, what: str, where: str, fix: str, exit_code: int):
        super().__init__(f"pre-flight failed: {what} ({where}). Fix: {fix}")
        self.exit_code = exit_code
        self.problems = [self]


class PreflightProblems(PreflightError):
    """Several failed checks: one line each; the exit code is the first one's."""

    def __init__(self, problems: list[PreflightError]):
        RuntimeError.__init__(self, "\n".join(str(problem) for problem in problems))
        self.exit_code = problems[0].exit_code
        self.problems = problems


def preflight_spec(plan: Plan) -> dict[str, Any]:
    """What the pre-flight job checks for a plan: its device, folders and one run of every step kind.
    It is the job's params, so a change of data_root or of the plan's kinds redoes the pre-flight."""
    kinds = []
    for key, (kind, run) in step_kinds(plan).items():
        spec = run.run_spec_dict()
        for path_key in ("teacher", "init_from", "hyperparameters_from"):  # checked by their own jobs
            spec.pop(path_key, None)
        kinds.append({"key": key, "spec": spec, "teacher_model": kind.teacher_model,
                      "stage2_epoch": run.method.get("warmup_epochs", 0) if run.init_from else 0})
    return {"device": plan.config.device, "data_root": plan.config.data_root,
            "results_dir": plan.config.results_dir,
            "outputs": {key: str(path) for key, path in calibration_paths(plan).items()}, "kinds": kinds}


MAX_KINDS = 10_000


def check_preflight_spec(spec: Any) -> None:
    """A pre-flight spec file is data like a record: its keys and types, ``results_dir`` as a config's, and
    ``outputs`` exactly the calibration files of its device's step kinds under it (an :class:`InputError` otherwise)."""
    from ..runs.paths import check_results_dir
    from ..runs.spec import RunSpec

    keys = {"device": str, "data_root": str, "results_dir": str, "outputs": dict, "kinds": list}
    if not isinstance(spec, dict) or set(spec) != set(keys):
        raise InputError(f"a pre-flight spec is an object with exactly the keys {', '.join(keys)}")
    if bad := [key for key, kind in keys.items() if not isinstance(spec[key], kind)]:
        raise InputError(f"{bad[0]}: expected {keys[bad[0]].__name__}, got {type(spec[bad[0]]).__name__}")
    if not re.fullmatch(r"cpu|mps|cuda(:[0-9]{1,3})?", spec["device"]):
        raise InputError(f"device: {spec['device'][:40]!r} is not cpu, mps or cuda[:N]")
    check_results_dir(spec["results_dir"])
    for key, output in spec["outputs"].items():
        if output != str(kind_file(spec["results_dir"], spec["device"], str(key))):
            raise InputError("outputs: not the calibration files of its device's step kinds under its results_dir")
    if len(spec["kinds"]) > MAX_KINDS:
        raise InputError(f"kinds: more than {MAX_KINDS} step kinds")
    for i, kind in enumerate(spec["kinds"]):
        try:
            RunSpec.from_dict(kind["spec"])
            ok = isinstance(kind["key"], str) and isinstance(kind["stage2_epoch"], int) and 0 <= kind[
                "stage2_epoch"] <= MAX_EPOCHS and isinstance(kind["teacher_model"], (str, type(None)))
        except (KeyError, TypeError, ValueError, AttributeError):
            ok = False
        if not ok:
            raise InputError(f"kinds[{i}]: not a step kind (key, spec, teacher_model, stage2_epoch)")
    if set(spec["outputs"]) != {kind["key"] for kind in spec["kinds"]}:
        raise InputError("outputs: not one calibration file per step kind of kinds")


def run_preflight(spec: dict[str, Any], threads: int | None = None) -> dict[str, Any]:
    """Every check of ``spec`` (see :func:`preflight_spec`); writes and returns the calibration.
    Raises :class:`PreflightError` naming every failed check (:class:`PreflightProblems` for several)."""
    check_preflight_spec(spec)
    problems: list[PreflightError] = []

    def check(function, *args):
        try:
            return function(*args)
        except PreflightError as error:
            problems.append(error)
            return None

    from ..runs.spec import RunSpec

    torch = check(_import_torch)
    device = spec["device"]
    facts = check(check_device, torch, device) if torch is not None else None
    check(check_writable, Path(spec["results_dir"]))
    datasets: dict[str, Any] = {}
    for kind in spec["kinds"] if torch is not None else []:
        run = RunSpec.from_dict(kind["spec"])
        name = _dataset_identity(run)
        if name not in datasets:
            datasets[name] = check(check_dataset, run, spec["data_root"])
    report = {"version": CALIBRATION_VERSION, "python": sys.version.split()[0], "executable": sys.executable,
              "host": platform.node(), "device": facts, "kinds": {}}
    on_device = {name: data.to(device) for name, data in datasets.items()} if not problems else {}
    for kind in spec["kinds"] if on_device else []:
        run = RunSpec.from_dict(kind["spec"])
        report["kinds"][kind["key"]] = check(measure_kind, torch, run, on_device[_dataset_identity(run)], kind,
                                             device, threads)
    if problems:
        raise problems[0] if len(problems) == 1 else PreflightProblems(problems)
    from ..io import atomic_write_json

    for key, measured in report["kinds"].items():  # one file per kind: what a config's runs depend on
        atomic_write_json(spec["outputs"][key], {**report, "kinds": {key: measured}})
    return report


def _import_torch():
    try:
        import torch
    except Exception as error:  # a missing, CPU-only or broken wheel raises many types
        raise PreflightError(f"torch does not import ({type(error).__name__}: {error})", sys.executable,
                             "install the project's pinned torch in the environment the jobs use (on shared "
                             "storage, visible from the compute nodes)", EXIT_DEVICE_ERROR) from None
    return torch


def check_device(torch, device: str) -> dict[str, Any]:
    """The device's facts for the report; a CUDA device that cannot run this wheel is a PreflightError."""
    facts: dict[str, Any] = {"device": device, "torch": torch.__version__, "cuda_build": torch.version.cuda}
    if not device.startswith("cuda"):
        return facts
    where = f"host {platform.node()}, torch {torch.__version__} built for CUDA {torch.version.cuda}"
    if not torch.cuda.is_available():
        raise PreflightError(f"device {device} is not available (torch.cuda.is_available() is False)", where,
                             "run on a GPU node with a GPU requested (cluster.gpus_per_run), a CUDA build of torch "
                             "and a driver at least as new as its CUDA", EXIT_DEVICE_ERROR)
    index = torch.device(device).index or 0
    if index >= torch.cuda.device_count():
        raise PreflightError(f"device {device} does not exist ({torch.cuda.device_count()} visible)", where,
                             "use device: cuda (SLURM sets CUDA_VISIBLE_DEVICES to the allocated GPUs)",
                             EXIT_DEVICE_ERROR)
    capability = torch.cuda.get_device_capability(index)
    facts.update(name=torch.cuda.get_device_name(index), capability=f"{capability[0]}.{capability[1]}",
                 driver=_driver_version(torch), cudnn=torch.backends.cudnn.version(),
                 arch_list=torch.cuda.get_arch_list())
    if not _wheel_runs_on(facts["arch_list"], capability):
        raise PreflightError(f"this torch wheel has no kernels for {facts['name']} (compute capability "
                             f"{facts['capability']}; built for {', '.join(facts['arch_list'])})", where,
                             "install a torch wheel built for this GPU generation", EXIT_DEVICE_ERROR)
    return facts


def _wheel_runs_on(arch_list: list[str], capability: tuple[int, int]) -> bool:
    """Whether a wheel built for ``arch_list`` (``sm_80``, ``compute_90``...) has kernels for a device:
    an exact build, or one of the same major generation and a lower minor (binary compatible)."""
    built = [int(a.split("_")[-1]) for a in arch_list if a.split("_")[-1].isdigit()]
    major, minor = capability
    return not built or any(b // 10 == major and b % 10 <= minor for b in built)


def _driver_version(torch) -> str | None:
    try:
        version = torch._C._cuda_getDriverVersion()  # e.g. 12040 for 12.4
        return f"{version // 1000}.{version % 1000 // 10}"
    except Exception:  # a private API: the report just lacks it
        return None


def check_writable(results_dir: Path) -> None:
    """results_dir can be written (created through the door: no link on its path followed), and locked as the
    runs' writer lock does (flock)."""
    import os

    from ..io import FileRefused, open_lock_file, remove_file

    probe = results_dir / ".preflight-write-check"
    try:
        fd = open_lock_file(probe)
        try:
            check_locking(fd, results_dir)
        finally:
            os.close(fd)
            remove_file(probe)
    except (FileRefused, OSError) as error:  # FileRefused is not an OSError: it names the path
        reason = error if isinstance(error, FileRefused) else error.strerror
        raise PreflightError(f"results_dir is not writable ({reason})", str(results_dir.resolve()),
                             "point results_dir at shared storage the compute nodes can write", EXIT_INPUT_ERROR
                             ) from None


def check_locking(fd: int, results_dir: Path) -> None:
    """The writer lock's flock on a file of results_dir; a file system without it is a PreflightError."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError as error:
        if error.errno not in LOCKING_UNSUPPORTED:
            raise
        raise PreflightError(f"results_dir does not support file locks (flock: {error.strerror}), which keep "
                             "two jobs from training one run at once", str(results_dir.resolve()),
                             "put results_dir on a file system with locking (on Lustre: mount with flock)",
                             EXIT_INPUT_ERROR) from None


def _dataset_identity(run) -> str:
    return repr((run.dataset, run.data_root))  # a frozen DatasetSpec: every setting that changes the data


def check_dataset(run, data_root: str):
    """The run's dataset, read by the loader the runs use; unreadable data is a PreflightError naming
    data_root and the command that fixes it."""
    from ..data import DatasetError, dataset_source
    from ..runs.loading import load_run_dataset

    run = replace(run, data_root=str(data_root))  # a job option, not in the record
    name, root = run.dataset.name, Path(run.data_root)
    source = dataset_source(name)
    try:
        return load_run_dataset(run)
    except (DatasetError, OSError, ValueError) as error:
        if not root.exists() and source.files:  # a dataset read from files under data_root
            what = f"data_root {root} does not exist, so dataset {name} cannot be read"
        else:
            what = f"dataset {name} is not readable under data_root {root} ({' '.join(str(error).split())[:300]})"
        raise PreflightError(what, f"host {platform.node()}", source.fix(root), EXIT_DATA_ERROR) from None


def measure_kind(torch, run, data, kind: dict[str, Any], device: str, threads: int | None = None) -> dict[str, Any]:
    """One checked training step of a step kind, then TIMED_STEPS timed ones and an evaluation pass, all
    set up by the trainer's own code (:class:`introspect.train.probe.StepRunner`: the device set-up with its
    deterministic mode and fp32/TF32 choice, the performance options, the data path)."""
    from ..models.evaluate import accuracy
    from ..train.device import sync_debug_errors
    from ..train.probe import StepRunner, step_times
    from ..train.step import batch_bounds

    try:
        step = StepRunner(run, data, device, teacher_model=kind["teacher_model"], epoch=kind["stage2_epoch"],
                          threads=threads)
        with sync_debug_errors(device):
            step()
        times = step_times(step, device, TIMED_STEPS)
        start = time.perf_counter()
        model = step.model
        accuracy(model, data.val, run.eval_batch_size, run.performance)
        accuracy(model, data.test, run.eval_batch_size, run.performance)
        eval_seconds = time.perf_counter() - start
    except PreflightError:
        raise
    except Exception as error:  # a CUDA, driver or method error: one line, not a traceback
        raise _step_error(torch, kind["key"], device, error) from None
    step_seconds = sorted(times)[len(times) // 2]
    batches = len(batch_bounds(len(data.train), run.budget.batch_size))
    return {"step_seconds": step_seconds, "eval_seconds": eval_seconds, "batches_per_epoch": batches,
            "epoch_seconds": batches * step_seconds + eval_seconds}


def _step_error(torch, key: str, device: str, error: Exception) -> PreflightError:
    from ..train.device import as_device_error, is_device_mismatch

    text = " ".join(str(error).split())[:300]
    if "synchroniz" in text:
        return PreflightError(f"one training step of {key} synchronises the host with the device ({text})", device,
                              "a host sync in the training step is a bug: report it with this line",
                              EXIT_TRAINING_ERROR)
    if is_device_mismatch(error):
        return PreflightError(f"one training step of {key} mixes devices ({text})", device,
                              "a tensor on the wrong device is a bug in introspect: report it with this line",
                              EXIT_TRAINING_ERROR)
    cuda = as_device_error(error, device) is not None
    where = f"{device}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    fix = ("check the node's driver against the wheel's CUDA (nvidia-smi) and run bench/gpu_check.py there"
           if cuda else "run this step kind alone: python bench/gpu_check.py --quick (it names the failing step)")
    return PreflightError(f"one training step of {key} failed ({type(error).__name__}: {text})", where, fix,
                          EXIT_DEVICE_ERROR if cuda else EXIT_TRAINING_ERROR)
