# Paths and parameters derived from the plan; shared by every rule file. Every path comes from the
# run layer (introspect.runs.ResultsLayout): no rule spells a run file's name or builds a run's path.
import re

from introspect.calibration import calibration_path, device_label
from introspect.resources import gpu_request, partitions, runtime_minutes

LAYOUT = PLAN.layout
TESTS_CSV = str(LAYOUT.tests)
# The jobs' interpreter: the environment's `python` under --sdm conda (envs/introspect.yaml), else the
# one running Snakemake (a bare `python` on a compute node may be another one). Job commands read it
# from the environment variable INTROSPECT_PYTHON, like the package's source from PYTHONPATH (Snakefile):
# the command text, which Snakemake's "code" rerun trigger compares, holds no absolute path, so moving
# the checkout reruns nothing. A cluster job re-reads this file in its own Snakemake and sets it there.
from snakemake_interface_executor_plugins.settings import DeploymentMethod

CONDA_JOBS = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
INTROSPECT_PYTHON = "python" if CONDA_JOBS else sys.executable
os.environ.update(INTROSPECT_PYTHON=INTROSPECT_PYTHON)


def paths(files):
    return [str(f) for f in files]


def _sweep_points():
    """Runs that only a sweep's selection reads: their rule (sweep_point) records a failure instead of
    failing, so one diverged point does not block its cell. A run some view or other run also reads is
    trained by its kind's rule, and its failure fails as any run's does."""
    used = {d for run in PLAN.runs.values() for d in run.depends_on}
    for table in PLAN.tables.values():
        used.update(table.run_ids(), table.teacher_run_ids(), table.reference_run_ids())
    for view in [*PLAN.figures.values(), *PLAN.analyses.values()]:
        used.update(view.run_ids())
    return {r for selection in PLAN.selections.values() for r in selection.run_ids()} - used


SWEEP_POINTS = _sweep_points()


def run_pattern(kind):
    """A wildcard constraint matching exactly the plan's runs of one kind (rules stay disjoint); the
    sweep points have their own rule (`sweep_point`, kind "sweep")."""
    ids = sorted(SWEEP_POINTS) if kind == "sweep" else [r for r in PLAN.ids(kind) if r not in SWEEP_POINTS]
    return "|".join(re.escape(run_id) for run_id in ids) if ids else "(?!)"


def names_pattern(names):
    return "|".join(re.escape(name) for name in names) or "(?!)"


CLUSTER = PLAN.config["cluster"]
# What a job that runs models asks for (the pre-flight, training, explanation figures, the student
# analysis): --gpus or --gres=gpu[:model]:N or a GRES shard, see introspect.resources.gpu_request.
GPU_REQUEST = gpu_request(PLAN.config)
NO_GPU = {"gpu": 0, "gpu_model": "", "gres": ""}


def partition(models):
    """The partition of a job that runs models (cluster.gpu_partition) or of a CPU-only cluster job
    (cluster.cpu_partition); unset, the profile's SBATCH_PARTITION."""
    gpu_partition, cpu_partition = partitions(PLAN.config)
    return (gpu_partition if models else cpu_partition) or os.environ.get("SBATCH_PARTITION", "")


# cluster.runs_per_gpu = k > 1: training jobs join job groups of k runs, each group one SLURM job asking
# for one GPU (through a string `gres` resource, which a group takes once; see gpu_request). Snakemake
# submits a group's connected components separately, so the k runs of a pack all read one tiny
# `pack_anchor` job of their group (temporary, ancient: it never makes a finished run stale). A run's
# pack is fixed by its place among the plan's runs of its kind, so the job's own Snakemake (which
# re-reads this file) finds the same groups. Runs that read a sweep's selection never share a pack
# with the sweep's runs (the group would wait on itself through the selection job).
RUNS_PER_GPU = CLUSTER["runs_per_gpu"]


def _pack_index():
    subsets = {}
    for run_id in sorted(PLAN.runs):
        run = PLAN.runs[run_id]
        subsets.setdefault(f"{run.kind}{'_selected' if run.selection else ''}", []).append(run_id)
    return {r: f"pack_{subset}_{i // RUNS_PER_GPU}" for subset, ids in subsets.items() for i, r in enumerate(ids)}


PACKS = _pack_index() if RUNS_PER_GPU > 1 else {}


def pack_group(wildcards):
    return PACKS[wildcards.run]


def pack_anchor(pack):
    return str(LAYOUT.root / "packs" / f"{pack}.anchor")


def runtime(wildcards):
    return runtime_minutes(PLAN, wildcards.run)


def run_record(wildcards):
    return PLAN.runs[wildcards.run].to_json()


def fail_option(wildcards):
    """Failure injection for the rerun tests (config `fail_runs`)."""
    epoch = PLAN.config["fail_runs"].get(wildcards.run)
    return "" if epoch is None else f"--fail-at-epoch {int(epoch)}"


def run_inputs(wildcards):
    """Checkpoints of the runs it starts from or learns from, the selection file of its sweep, and the
    pre-flight (ancient: its time stamp never makes a finished run stale)."""
    anchor = [ancient(pack_anchor(PACKS[wildcards.run]))] if PACKS else []
    return paths(PLAN.runs[wildcards.run].input_files()) + [ancient(PREFLIGHT)] + anchor


def run_outputs():
    """A training job's outputs, for the wildcard {run} (each rule constrains it to its kind's run ids)."""
    return paths(LAYOUT.run("{run}").outputs)


def metrics_of(run_ids):
    return [str(LAYOUT.run(r).metrics) for r in run_ids]


def models_of(run_ids):
    return [str(LAYOUT.run(r).model) for r in run_ids]


def table_outputs(tables):
    return [str(path) for name in tables for path in LAYOUT.table_files(name)]


def figure_outputs(figures):
    return [str(path) for name in figures for path in LAYOUT.figure_files(name)]


def claims_summary():
    """The verdict paragraph of claims.md and every sanity flag of its claims, for the end-of-run summary."""
    import pandas as pd

    text = LAYOUT.claims("md").read_text().split("\n\n")[1]
    flagged = pd.read_csv(LAYOUT.claims("csv"), keep_default_na=False)
    flagged = flagged[flagged["flags"] != ""]
    lines = [f"  {row.name}: {row.flags}" for row in flagged.itertuples()][:20]
    more = f"\n  ... and {len(flagged) - 20} more (claims.csv, column flags)" if len(flagged) > 20 else ""
    return text + ("\nSanity flags under claims:\n" + "\n".join(lines) + more if lines else "")


# A warm local worker (introspect.worker): on a local run, jobs fork from one process that imported
# torch once, instead of paying ~2.5 s of imports each. Jobs fall back to running themselves if it
# is not there (cluster jobs, `local_worker: false`, a worker that failed to start).
LOCAL_WORKER = {}


def start_local_worker():
    import os
    import subprocess
    import tempfile
    import time

    if not (PLAN.config["local_worker"] and workflow.local_exec):
        return
    directory = tempfile.mkdtemp(prefix="introspect-worker-")
    path = os.path.join(directory, "socket")
    env = dict(os.environ)  # PYTHONPATH already names this checkout's src (Snakefile)
    env.pop("INTROSPECT_WORKER", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "introspect", "worker", "--socket", path, "--parent-pid", str(os.getpid())],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if os.path.exists(path):
        os.environ.update(INTROSPECT_WORKER=path)
        LOCAL_WORKER.update(process=process, directory=directory)
    else:
        process.kill()
        print("introspect: the local worker did not start; every job imports torch itself")


def stop_local_worker():
    import shutil

    process = LOCAL_WORKER.pop("process", None)
    if process is not None:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(LOCAL_WORKER.pop("directory"), ignore_errors=True)
