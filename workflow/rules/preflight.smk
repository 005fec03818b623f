# The pre-flight job (introspect.cluster.preflight): one short job on the training device that checks the
# interpreter, torch, the device, every dataset at data_root, that results_dir is writable, and one
# training step of every step kind of the plan; it writes the measured step costs (the calibration
# file), which the training jobs' time limits use from then on (introspect.cluster.resources). Every training
# job takes its output as an `ancient` input: a missing or refreshed pre-flight never retrains a
# finished run, but no run starts before it passed. Its output is keyed by the device and the step
# kinds it measures (introspect.cluster.calibration): a config with the same kinds (other epochs, seeds,
# name) reuses it, a new kind is probed before its jobs start. A checkpoint, like job_files: once it
# has run, Snakemake re-evaluates which jobs are out of date.
import json

from introspect.cluster.preflight import preflight_spec
from introspect.cluster.slurm_status import install_plugin_fixes

# SLURM's faults and limits fail or delay a job instead of stalling the head: a job cancelled, or pre-empted
# or on a failed node and not requeued, fails (and is retried); a submit-limit refusal waits and resubmits
install_plugin_fixes()

PREFLIGHT = calibration_paths(PLAN)  # step kind -> its file
# Its spec file is named by the files it writes (device, results_dir, step kinds): other epochs, seeds or
# data never redo it. Where the data is comes from the job's environment, like the runs' (--data-root).
PREFLIGHT_SPEC = (json.dumps(preflight_spec(PLAN), sort_keys=True, indent=1) + "\n", sorted(paths(PREFLIGHT.values())))


checkpoint preflight:
    input:
        spec=lambda wildcards: job_file("preflight", "preflight"),
    output:
        paths(PREFLIGHT.values()),
    log:
        str(LAYOUT.job_log("preflight", device_label(PLAN.config.device))),
    threads: PLAN.config.threads_per_run
    priority: 10
    retries: 0  # deterministic: a retry finds the same problems (it names all of them at once)
    resources:
        **model_job(30),
    conda:
        "../../envs/introspect.yaml"
    shell:
        "python -m introspect preflight --spec {input.spec:q} --threads {threads}"
        ' --data-root "$INTROSPECT_DATA_ROOT" 2> {log:q}'


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
        **model_job(1),
    conda:
        "../../envs/introspect.yaml"
    shell:
        "touch {output:q} 2> {log:q}"
