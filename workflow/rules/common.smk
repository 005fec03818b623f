# Paths and parameters derived from the plan; shared by every rule file.
import re

RESULTS = Path(PLAN.config["results_dir"])
RUNS = RESULTS / "runs"
TABLES = RESULTS / "tables"
STATS = RESULTS / "stats"
FIGURES = RESULTS / "figures"
SELECTION = RESULTS / "selection"
TESTS_CSV = STATS / "tests.csv"
# The jobs' interpreter: the environment's `python` under --sdm conda (envs/introspect.yaml), else the
# one running Snakemake (a bare `python` on a compute node may be another one). The command text keeps
# the placeholder {INTROSPECT_PYTHON}, filled in from this global when the job runs, so the text that
# Snakemake's "code" rerun trigger compares holds no absolute path.
from snakemake_interface_executor_plugins.settings import DeploymentMethod

CONDA_JOBS = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
INTROSPECT_PYTHON = "python" if CONDA_JOBS else sys.executable
# Braces doubled twice: once for this f-string, once for the shell directive's formatting.
INTROSPECT = f"PYTHONPATH={SRC}${{{{PYTHONPATH:+:$PYTHONPATH}}}} {{INTROSPECT_PYTHON:q}} -m introspect"


def run_pattern(kind):
    """A wildcard constraint matching exactly the plan's runs of one kind (rules stay disjoint)."""
    ids = PLAN.ids(kind)
    return "|".join(re.escape(run_id) for run_id in ids) if ids else "(?!)"


CLUSTER = PLAN.config["cluster"]


def runtime_minutes(wildcards):
    return PLAN.runtime_minutes(wildcards.run)


def run_spec(wildcards):
    return run_spec_json(PLAN, wildcards.run, PLAN.config["fail_runs"].get(wildcards.run))


def run_inputs(wildcards):
    """Checkpoints of the runs it starts from or learns from, and the selection file of its sweep."""
    run = PLAN.runs[wildcards.run]
    selection = [PLAN.selection_path(run.selection)] if run.selection else []
    return [str(RUNS / dep / "model.pt") for dep in run.depends_on] + selection


def run_outputs(kind):
    return multiext(str(RUNS / "{run}") + "/", "metrics.json", "epochs.csv", "model.pt")


def table_outputs(tables):
    return [str(TABLES / f"{name}.{ext}") for name in tables for ext in ("md", "tex", "csv", "html")]


def figure_outputs(figures):
    return [str(FIGURES / f"{name}.{ext}") for name in figures for ext in ("png", "csv")]


TRAIN_SHELL = (
    INTROSPECT + " train --spec {params.spec:q} --out " + str(RUNS) + "/{wildcards.run}"
    " --threads {threads} --device " + PLAN.config["device"] + " 2> {log}"
)


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
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    env.pop("INTROSPECT_WORKER", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "introspect", "worker", "--socket", path, "--parent-pid", str(os.getpid())],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if os.path.exists(path):
        os.environ["INTROSPECT_WORKER"] = path
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
