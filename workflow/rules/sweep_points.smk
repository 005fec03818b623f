# Sweep points: the runs only a selection reads (SWEEP_POINTS, common.smk). The same training command
# as every run; the job's output is the run's outcome file (introspect.runs.record.OUTCOME). A point that still
# fails after its retries is recorded as failed and the job succeeds, so the selection scores it as
# failed (the table's notes say so) instead of waiting for it. Interruptions (exit 143) are never
# recorded: they are retried and resume. To train a failed point again, delete its outcome.json.
SWEEP_RETRIES = 2


# The outcome file is written through the package's one door (introspect.io: atomic, no symlink on its path
# followed), not by a shell redirection, which would follow a link planted in a shared results directory.
WRITE_OUTCOME = ("python -c 'import sys; from introspect.io import atomic_write_json; atomic_write_json(sys.argv[1], "
                 "{{\"failed\": sys.argv[2]}} if sys.argv[2] else {{\"finished\": True}})' ")


# The sweep point's command: train, then write its outcome (finished, or failed for good after its retries).
SWEEP_POINT_COMMAND = (
    "python -m introspect train --record {input.record:q} {params.fail} --threads {threads} "
    + RUN_OPTIONS
    + " 2> {log:q} && status=0 || status=$?; "
    'if [ "$status" -eq 0 ]; then ' + WRITE_OUTCOME + '{output:q} ""; '
    'elif [ "$status" -ne 143 ] && [ {resources.sweep_attempt} -gt {params.retries} ]; then ' + WRITE_OUTCOME +
    '{output:q} "exit $status in attempt {resources.sweep_attempt}: $(tail -n 1 {log:q})"; '
    'else exit "$status"; fi'
)


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
        **GPU_REQUEST,
        slurm_partition=partition(models=True),
        runtime=runtime,
        mem_mb=memory,
        sweep_attempt=lambda wildcards, attempt: attempt,
    wildcard_constraints:
        run=run_pattern("sweep"),
    shell:
        SWEEP_POINT_COMMAND
