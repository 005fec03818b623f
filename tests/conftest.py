import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from introspect.kernels import pin_kernels  # noqa: E402

pin_kernels()  # the kernels every run uses (introspect.kernels), before torch loads; subprocesses inherit them

import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def registry_cache(tmp_path_factory):
    """Keep the registries' catalog cache (introspect.config.registry_facts) out of the user's ~/.cache;
    workflow subprocesses inherit the variable."""
    os.environ["INTROSPECT_CACHE_DIR"] = str(tmp_path_factory.mktemp("introspect-cache"))


@pytest.fixture
def seeded():
    torch.manual_seed(0)
    return torch.Generator().manual_seed(0)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The smoke config run once locally with `snakemake --cores 2`; shared by workflow tests."""
    from workflow_helpers import snakemake, write_config

    workdir = tmp_path_factory.mktemp("smoke")
    config = write_config(workdir)
    result = snakemake(workdir, "--cores", "2")
    return workdir, config, result


@pytest.fixture(scope="session")
def smoke_report(smoke_run):
    """`snakemake --report` of the smoke run, built once for the tests that read or open it."""
    from workflow_helpers import snakemake

    workdir, _, _ = smoke_run
    snakemake(workdir, "--report", str(workdir / "report.html"))
    return workdir / "report.html"


def _cpu_seconds() -> float:
    """User+system CPU of this process and of its waited-for descendants (a child's RUSAGE_CHILDREN is folded
    into its parent's when the parent waits for it, so a Snakemake subprocess tree counts whole once reaped;
    SLURM jobs, real or stand-in, are not waited for by a descendant and do not count)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Opt-in per-test cost: with INTROSPECT_TEST_CPU=path.csv, append `nodeid,cpu_s,wall_s` for each test
    (setup+call+teardown, so a session fixture counts in the first test that needs it). CPU rather than wall
    because the machine is shared: wall time there measures the neighbours."""
    import time

    path = os.environ.get("INTROSPECT_TEST_CPU")
    if not path:
        yield
        return
    cpu, wall = _cpu_seconds(), time.monotonic()
    yield
    cpu, wall = _cpu_seconds() - cpu, time.monotonic() - wall
    with open(path, "a", encoding="utf-8") as out:
        out.write(f'"{item.nodeid}",{cpu:.2f},{wall:.2f}\n')
