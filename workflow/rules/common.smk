# Paths and parameters derived from the plan; shared by every rule file. Every path comes from the
# run layer (introspect.runs.record.ResultsLayout): no rule spells a run file's name or builds a run's path.
import re

from introspect.io import linked_folders
from introspect.plan import job_files as specfiles
from introspect.plan.jobs import packs, sweep_points
from introspect.cluster.calibration import calibration_paths, device_label, step_kind
from introspect.cluster.resources import attempt_mem_mb, attempt_runtime, gpu_request, partitions, runtime_minutes

LAYOUT = PLAN.layout
# Snakemake itself writes job logs and creates output folders (our code writes through introspect.io, which never
# follows a link): a folder of the results directory reached through a symlink is refused before any job runs.
_LINKED = linked_folders([LAYOUT.root, LAYOUT.runs_dir, LAYOUT.root / "selection", LAYOUT.root / "preflight",
                          LAYOUT.views_dir, LAYOUT.logs_dir, LAYOUT.views_dir / "specs"]
                         + [run.files.directory for run in PLAN.runs.values()])
if _LINKED:
    raise WorkflowError("results directory refused before any job started:\n  " + "\n  ".join(_LINKED[:20]))
TESTS_CSV = str(LAYOUT.tests)
# The jobs' interpreter is `python` on PATH: the one running Snakemake (its directory goes first on
# PATH here; a bare `python` on a compute node may be another one), or under --sdm conda the job's
# environment (envs/introspect.yaml), whose activation puts its own directory first in the job's shell.
# Set in the environment, like the package's source (PYTHONPATH, Snakefile), so the command text, which
# Snakemake's "code" rerun trigger compares, holds no absolute path: moving the checkout reruns nothing.
# A cluster job re-reads this file in its own Snakemake and sets them there.
os.environ.update(PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
# Options that do not change a run's numbers reach its job through the environment, not the command or
# its params (the rerun triggers): moving the data, another evaluation batch size or device reruns
# nothing, and an interrupted run resumes under the new setting (metrics.json records them).
os.environ.update(INTROSPECT_DATA_ROOT=str(PLAN.run_options.data_root),
                  INTROSPECT_EVAL_BATCH_SIZE=str(PLAN.run_options.eval_batch_size),
                  INTROSPECT_DEVICE=PLAN.config.device)
# performance.native_kernels: the jobs (and the warm worker) load torch with the CPU's own kernels
if PLAN.config.performance.native_kernels:
    os.environ.update(INTROSPECT_NATIVE_KERNELS="1")
RUN_OPTIONS = ('--device "$INTROSPECT_DEVICE" --data-root "$INTROSPECT_DATA_ROOT"'
               ' --eval-batch-size "$INTROSPECT_EVAL_BATCH_SIZE"')


def paths(files):
    return [str(f) for f in files]


SWEEP_POINTS = sweep_points(PLAN)  # introspect.plan.jobs


def run_pattern(kind):
    """A wildcard constraint matching exactly the plan's runs of one kind (rules stay disjoint); the
    sweep points have their own rule (`sweep_point`, kind "sweep")."""
    ids = sorted(SWEEP_POINTS) if kind == "sweep" else [r for r in PLAN.ids(kind) if r not in SWEEP_POINTS]
    return "|".join(re.escape(run_id) for run_id in ids) if ids else "(?!)"


def names_pattern(names):
    return "|".join(re.escape(name) for name in names) or "(?!)"


CLUSTER = PLAN.config.cluster
# What a job that runs models asks for (the pre-flight, training, explanation figures, the student
# analysis): --gpus or --gres=gpu[:model]:N or a GRES shard, see introspect.cluster.resources.gpu_request.
GPU_REQUEST = gpu_request(PLAN.config)
NO_GPU = {"gpu": 0, "gpu_model": "", "gres": ""}


def partition(models):
    """The partition of a job that runs models (cluster.gpu_partition, unset: the profile's SBATCH_PARTITION)
    or of a CPU-only cluster job (cluster.cpu_partition, unset: '', so the plugin asks sinfo for the cluster's
    default partition): a CPU-only job never takes the GPU partition that SBATCH_PARTITION usually names."""
    gpu_partition, cpu_partition = partitions(PLAN.config)
    return (gpu_partition or os.environ.get("SBATCH_PARTITION", "")) if models else cpu_partition


# cluster.runs_per_gpu = k > 1: training jobs join job groups of k runs, each group one SLURM job asking
# for one GPU (through a string `gres` resource, which a group takes once; see gpu_request). Snakemake
# submits a group's connected components separately, so the k runs of a pack all read one tiny
# `pack_anchor` job of their group (temporary, ancient: it never makes a finished run stale). The packs
# are the plan's (introspect.plan.jobs.packs). When one member fails, Snakemake fails the group and deletes
# every member's outputs; a finished member's next job puts its kept files back without training
# (introspect.train.finished).
RUNS_PER_GPU = CLUSTER.runs_per_gpu
# Packed runs on CUDA share the GPU through CUDA MPS, started and stopped inside the pack's SLURM job by
# its training processes (introspect.cluster.mps; untested on a GPU). INTROSPECT_MPS=0 (the SLURM
# profile's switch) turns it off: the runs then time-slice the GPU.
if RUNS_PER_GPU > 1 and PLAN.config.device.startswith("cuda"):
    os.environ.update(INTROSPECT_PACK_MPS="1")

PACKS = packs(PLAN, RUNS_PER_GPU)


def pack_group(wildcards):
    return PACKS[wildcards.run]


def pack_anchor(pack):
    return str(LAYOUT.root / "packs" / f"{pack}.anchor")


def model_job(runtime, mem_mb=CLUSTER.mem_mb_per_run, **more):
    """The resources of a job that runs models, one block for every such rule: its GPU request (gpu_request),
    the GPU partition, its time limit (minutes, or a function of the job) and memory."""
    return {**GPU_REQUEST, "slurm_partition": partition(models=True), "runtime": runtime, "mem_mb": mem_mb, **more}


def runtime(wildcards, attempt):
    """A training job's time limit; a retry asks 1.5x, then 2x (a TIMEOUT would recur), capped at 2 days."""
    return attempt_runtime(runtime_minutes(PLAN, wildcards.run), attempt)


def memory(wildcards, attempt):
    """A training job's memory; a retry asks 1.5x, then 2x (an OUT_OF_MEMORY kill would recur)."""
    return attempt_mem_mb(CLUSTER.mem_mb_per_run, attempt)


def record_digest(wildcards):
    """What the run trains, as a digest: its params (rerun trigger); the record itself is a file."""
    return specfiles.record_digest(PLAN, wildcards.run)


def job_file(kind, name):
    """A file the job_files step writes (job_files.smk), as a job's input: ancient, its time stamp is no
    trigger (its name holds its content's digest, and the params the definition's digest)."""
    return ancient(str(JOB_FILES.path(kind, name)))


def spec_input(kind, name_of=None):
    """An input function: the job's spec file, named `spec`."""
    return lambda wildcards: {"spec": job_file(kind, name_of(wildcards) if name_of else kind)}


def spec_digest(kind, name_of=None):
    return lambda wildcards: specfiles.spec_digest(PLAN, kind, name_of(wildcards) if name_of else kind)


def fail_option(wildcards):
    """Failure injection for the rerun tests (config `fail_runs`)."""
    epoch = PLAN.config.fail_runs.get(wildcards.run)
    return "" if epoch is None else f"--fail-at-epoch {int(epoch)}"


def run_inputs(wildcards):
    """The run's record file, the checkpoints of the runs it starts from or learns from, the selection file
    of its sweep, and the pre-flight's file of its step kind (ancient: its time stamp never makes a
    finished run stale)."""
    anchor = [ancient(pack_anchor(PACKS[wildcards.run]))] if PACKS else []
    preflight = PREFLIGHT[step_kind(PLAN, PLAN.runs[wildcards.run]).key]
    return {"record": job_file("record", wildcards.run),
            "needs": paths(PLAN.runs[wildcards.run].input_files()) + [ancient(str(preflight))] + anchor}


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


# A warm local worker (introspect.cluster.worker): the jobs this Snakemake process starts itself (every job of a
# local run, the local rules of a cluster run) fork from one process that imported torch once, instead
# of importing it each. It serves no other process, so cluster jobs on this host run themselves, as do
# jobs when it is not there (`local_worker: false`, a worker that failed to start).
LOCAL_WORKER = []


def start_local_worker():
    from introspect.cluster.head import mark_head
    from introspect.cluster.worker import start_local_worker as start

    mark_head()  # every job this process starts, the worker and its jobs too, ends when it does
    worker = start() if PLAN.config.local_worker else None
    LOCAL_WORKER.extend([worker] if worker else [])


def stop_local_worker():
    while LOCAL_WORKER:
        LOCAL_WORKER.pop().stop()
