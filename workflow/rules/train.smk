# The base training rule: one job per planned run (introspect.runs.record.RunRecord). The job reads its record
# from the run's record.json (written by the plan when its content changes); the params hold a digest of
# what the run trains, so Snakemake reruns exactly the runs whose definition changed. Where the data
# lives, the device and the evaluation batch size come from the environment (common.smk): they change
# no numbers, so they trigger nothing. The other training rules (teachers, students, LE) derive from it.


rule train:
    input:
        unpack(run_inputs),
    output:
        run_outputs(),
    log:
        str(LAYOUT.run("{run}").log),
    params:
        record=record_digest,
        fail=fail_option,
    threads: PLAN.config.threads_per_run
    group: pack_group if RUNS_PER_GPU > 1 else None
    conda:
        "../../envs/introspect.yaml"
    resources:
        **model_job(runtime, memory),
    wildcard_constraints:
        run=run_pattern("train"),
    shell:
        "python -m introspect train --record {input.record:q} {params.fail} --threads {threads} "
        + RUN_OPTIONS
        + " 2> {log:q}"
