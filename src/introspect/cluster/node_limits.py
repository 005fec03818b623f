"""A SLURM job never asks for more than a node of its partition has, so no request pends forever.

A retried job asks for more (1.5x, then 2x its memory: :func:`.resources.attempt_mem_mb`), and a pack of k
runs (``cluster.runs_per_gpu``) asks k times a run's CPUs and memory. SLURM queues a request that no node
of the partition can ever satisfy and leaves it pending ("Resources" or "ReqNodeNotAvail") without end:
the head waits on it forever. Each sbatch call of the SLURM plugin is therefore capped, in the head
(:func:`install_request_caps`, from :func:`.slurm_status.install_plugin_fixes`), at the largest node of
its partition as ``sinfo`` reports it (CPUs, memory in MB) and at the partition's time limit (a longer ``-t``
pends for ever too), and at ``INTROSPECT_MAX_CPUS`` / ``INTROSPECT_MAX_MEM_MB`` when set (your QOS's per-job
limits). A capped request is said, as a warning.
When sinfo does not answer, only the configured maxima apply.
"""
from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class NodeLimits:
    cpus: int | None = None
    mem_mb: int | None = None
    minutes: int | None = None  # the partition's MaxTime


def slurm_minutes(text: str) -> int | None:
    """A SLURM time limit (D-HH[:MM[:SS]], HH:MM:SS, MM:SS, MM) in minutes, rounded up; None for infinite."""
    days, _, rest = text.rpartition("-")
    parts = rest.split(":")
    if not (days == "" or days.isdigit()) or not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        return None
    numbers = [int(p) for p in parts]
    if days:
        hours, minutes, seconds = (numbers + [0, 0])[:3]
    elif len(numbers) == 3:
        hours, minutes, seconds = numbers
    elif len(numbers) == 2:
        hours, minutes, seconds = 0, numbers[0], numbers[1]
    else:
        hours, minutes, seconds = 0, numbers[0], 0
    return int(days or 0) * 1440 + hours * 60 + minutes + (seconds > 0)


def parse_sinfo(text: str) -> NodeLimits:
    """The largest node in ``sinfo --noheader --Node --format='%c %m %l'`` output (CPUs, memory in MB per
    node, the partition's time limit; a number may end in '+' when sinfo groups nodes)."""
    cpus, mems, limits = [], [], []
    for line in text.splitlines():
        fields = [f.rstrip("+") for f in line.split()]
        if len(fields) in (2, 3) and all(f.isdigit() for f in fields[:2]):
            cpus.append(int(fields[0]))
            mems.append(int(fields[1]))
            limits.append(slurm_minutes(fields[2]) if len(fields) == 3 else None)
    if not cpus:
        return NodeLimits()
    return NodeLimits(max(cpus), max(mems), None if None in limits else max(limits))


@lru_cache(maxsize=32)
def partition_limits(partition: str) -> NodeLimits:
    """The largest node of ``partition`` ('' : every node sinfo lists), from sinfo; empty if it fails."""
    command = ["sinfo", "--noheader", "--Node", "--format=%c %m %l"]
    command += [f"--partition={partition}"] if partition else []
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return NodeLimits()
    return parse_sinfo(result.stdout) if result.returncode == 0 else NodeLimits()


def configured_limits() -> NodeLimits:
    """INTROSPECT_MAX_CPUS and INTROSPECT_MAX_MEM_MB (unset: no limit)."""
    cpus, mem = os.environ.get("INTROSPECT_MAX_CPUS"), os.environ.get("INTROSPECT_MAX_MEM_MB")
    return NodeLimits(int(cpus) if cpus else None, int(mem) if mem else None)


def tightest(*limits: NodeLimits) -> NodeLimits:
    def least(values):
        values = [v for v in values if v is not None]
        return min(values) if values else None

    return NodeLimits(least(lim.cpus for lim in limits), least(lim.mem_mb for lim in limits),
                      least(lim.minutes for lim in limits))


# the plugin's spellings: "--mem 4000", "--mem-per-cpu 500", "--cpus-per-task=4", "--cpus-per-gpu=4", "-p 'gpu'"
_MEM = re.compile(r"(--mem )(\d+)")
_MEM_PER_CPU = re.compile(r"(--mem-per-cpu )(\d+)")
_CPUS = re.compile(r"(--cpus-per-(?:task|gpu)=)(\d+)")
_TIME = re.compile(r"( -t '?)(\d+)")  # minutes, as the plugin writes the runtime resource
_PARTITION = re.compile(r"(?:^| )-p '?([^' ]+)'?")


def partition_of(call: str) -> str:
    match = _PARTITION.search(call)
    return match.group(1) if match else ""


def capped(call: str, limits: NodeLimits) -> tuple[str, list[str]]:
    """The sbatch call with its CPUs and memory at most ``limits``, and what was lowered (for the warning)."""
    lowered: list[str] = []

    def cap(pattern: re.Pattern, text: str, limit: int | None, name: str) -> str:
        def replace(match: re.Match) -> str:
            asked = int(match.group(2))
            if limit is None or asked <= limit:
                return match.group(0)
            lowered.append(f"{name} {asked} -> {limit}")
            return f"{match.group(1)}{limit}"

        return pattern.sub(replace, text)

    cpus = _CPUS.search(call)
    per_cpu_limit = None
    if limits.mem_mb is not None:  # --mem-per-cpu times the CPUs asked (after their cap) within a node
        n = min(int(cpus.group(2)), limits.cpus or int(cpus.group(2))) if cpus else 1
        per_cpu_limit = limits.mem_mb // max(n, 1)
    call = cap(_CPUS, call, limits.cpus, "CPUs")
    call = cap(_MEM, call, limits.mem_mb, "memory (MB)")
    call = cap(_MEM_PER_CPU, call, per_cpu_limit, "memory per CPU (MB)")
    call = cap(_TIME, call, limits.minutes, "time limit (min)")
    return call, lowered


def install_request_caps(plugin, warn: Callable[[str], None] | None = None) -> None:
    """Wrap the plugin's get_submit_command (its module's name, which run_job calls) with :func:`capped`."""
    original = plugin.get_submit_command

    def get_submit_command(job, params, *args, **kwargs):
        call = original(job, params, *args, **kwargs)
        limits = tightest(partition_limits(partition_of(call)), configured_limits())
        call, lowered = capped(call, limits)
        if lowered:
            (warn or print)(f"{job}: {', '.join(lowered)}: no node of the partition offers more (sinfo, or "
                            "INTROSPECT_MAX_CPUS / INTROSPECT_MAX_MEM_MB); a larger request would pend forever")
        return call

    plugin.get_submit_command = get_submit_command
