# Paths and parameters derived from the plan; shared by every rule file. Every path comes from the
# run layer (introspect.runs.ResultsLayout): no rule spells a run file's name or builds a run's path.
import re

from introspect.resources import runtime_minutes

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


def run_pattern(kind):
    """A wildcard constraint matching exactly the plan's runs of one kind (rules stay disjoint)."""
    ids = PLAN.ids(kind)
    return "|".join(re.escape(run_id) for run_id in ids) if ids else "(?!)"


def names_pattern(names):
    return "|".join(re.escape(name) for name in names) or "(?!)"


CLUSTER = PLAN.config["cluster"]
# What a job that runs models asks for (training, explanation figures, the student analysis). Shards go
# through the plugin's `gres` (it refuses --gres in slurm_extra); with shards, no gpu_model either (it
# would add --gpus=<model>:0).
JOB_GPUS = 0 if CLUSTER["gpu_shards_per_run"] else CLUSTER["gpus_per_run"]
JOB_GRES = f"shard:{CLUSTER['gpu_shards_per_run']}" if CLUSTER["gpu_shards_per_run"] else ""
JOB_GPU_MODEL = "" if CLUSTER["gpu_shards_per_run"] else CLUSTER["gpu_model"] or ""


def runtime(wildcards):
    return runtime_minutes(PLAN, wildcards.run)


def run_record(wildcards):
    return PLAN.runs[wildcards.run].to_json()


def fail_option(wildcards):
    """Failure injection for the rerun tests (config `fail_runs`)."""
    epoch = PLAN.config["fail_runs"].get(wildcards.run)
    return "" if epoch is None else f"--fail-at-epoch {int(epoch)}"


def run_inputs(wildcards):
    """Checkpoints of the runs it starts from or learns from, and the selection file of its sweep."""
    return paths(PLAN.runs[wildcards.run].input_files())


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
    """The opening of claims.md (counts and resolved claims) and the flags under claims, for the end-of-run
    summary: the markdown up to its open-claims table, then its flag list."""
    text = LAYOUT.claims("md").read_text()
    opening = text.split("\n## ", 1)[0].split("\n", 1)[1].strip()
    flags = text.split("## Sanity flags under claims\n\n", 1)[1].split("\n\n", 1)[0] if "## Sanity flags" in text else ""
    lines = flags.splitlines()
    more = f"\n  ... and {len(lines) - 20} more (claims.md)" if len(lines) > 20 else ""
    return opening + ("\n\nSanity flags under claims:\n" + "\n".join(lines[:20]) + more if lines else "")


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
