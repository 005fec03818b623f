# The pre-flight job (introspect.cluster.preflight): one short job on the training device that checks the
# interpreter, torch, the device, every dataset at data_root, that results_dir is writable, and one
# training step of every step kind of the plan; it writes the measured step costs (the calibration
# file), which the training jobs' time limits use from then on (introspect.cluster.resources). Every training
# job takes its output as an `ancient` input: a missing or refreshed pre-flight never retrains a
# finished run, but no run starts before it passed.
import json

from introspect.cluster.preflight import preflight_spec
from introspect.cluster.slurm_status import install_plugin_fixes

# SLURM's faults and limits fail or delay a job instead of stalling the head: a job cancelled, or pre-empted
# or on a failed node and not requeued, fails (and is retried); a submit-limit refusal waits and resubmits
install_plugin_fixes()

PREFLIGHT = str(calibration_path(PLAN))
PREFLIGHT_TEXT = json.dumps(preflight_spec(PLAN), sort_keys=True, indent=1) + "\n"
# What the pre-flight checks, without where the data lives: like a run's identity, moving the data
# (--config data_root=...) redoes nothing; the next pre-flight, for new step kinds, reads the new root.
PREFLIGHT_IDENTITY = {k: v for k, v in preflight_spec(PLAN).items() if k != "data_root"}


rule preflight:
    input:
        spec=preflight_spec_file,
    output:
        PREFLIGHT,
    params:
        spec=specfiles.digest(PREFLIGHT_IDENTITY),
    log:
        str(LAYOUT.job_log("preflight", device_label(PLAN.config.device))),
    threads: PLAN.config.threads_per_run
    priority: 10
    retries: 0  # deterministic: a retry finds the same problems (it names all of them at once)
    resources:
        **GPU_REQUEST,
        slurm_partition=partition(models=True),
        runtime=30,
        mem_mb=CLUSTER.mem_mb_per_run,
    conda:
        "../../envs/introspect.yaml"
    shell:
        "python -m introspect preflight --spec {input.spec:q} --threads {threads} 2> {log:q}"


rule pack_anchor:
    """The first job of each pack of runs (cluster.runs_per_gpu): it only ties the pack into one group job."""
    output:
        temp(pack_anchor("{pack}")),
    log:
        str(LAYOUT.job_log("pack_anchor", "{pack}")),
    group: lambda wildcards: wildcards.pack
    wildcard_constraints:
        pack=names_pattern(sorted(set(PACKS.values()))),
    resources:
        **GPU_REQUEST,
        slurm_partition=partition(models=True),
        runtime=1,
        mem_mb=CLUSTER.mem_mb_per_run,
    conda:
        "../../envs/introspect.yaml"
    shell:
        "touch {output:q} 2> {log:q}"
