# Sweep points: the runs only a selection reads (SWEEP_POINTS, common.smk). The same training command
# as every run; the job's output is the run's outcome file (introspect.runs.record.OUTCOME). A point that still
# fails after its retries is recorded as failed and the job succeeds, so the selection scores it as
# failed (the table's notes say so) instead of waiting for it. Interruptions (exit 143) are never
# recorded: they are retried and resume. To train a failed point again, delete its outcome.json. The trainer
# writes the outcome itself (`introspect train --outcome`, through the package's one door: atomic, no symlink
# on its path followed), so the rule holds no retry logic and no shell redirection into results_dir.
SWEEP_RETRIES = 2


rule sweep_point:
    input:
        unpack(run_inputs),
    output:
        str(LAYOUT.run("{run}").outcome),
    log:
        str(LAYOUT.run("{run}").log),
    params:
        record=record_digest,
        fail=fail_option,
        retries=SWEEP_RETRIES,
    threads: PLAN.config.threads_per_run
    group: pack_group if RUNS_PER_GPU > 1 else None
    retries: SWEEP_RETRIES
    conda:
        "../../envs/introspect.yaml"
    resources:
        **model_job(runtime, memory, sweep_attempt=lambda wildcards, attempt: attempt),
    wildcard_constraints:
        run=run_pattern("sweep"),
    shell:
        "python -m introspect train --record {input.record:q} {params.fail} --threads {threads} "
        + RUN_OPTIONS
        + " --outcome {output:q} --attempt {resources.sweep_attempt} --retries {params.retries} 2> {log:q}"
