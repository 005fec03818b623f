# Single-stage runs: CE and the regularisation baselines of Tables 2 and 3 (Dropout, LS, CP), and
# any other registered method that needs no other run's checkpoint.


rule train:
    input:
        run_inputs,
    output:
        run_outputs(),
    log:
        str(LAYOUT.run("{run}").log),
    params:
        record=run_record,
        fail=fail_option,
        device=PLAN.config["device"],
    threads: PLAN.config["threads_per_run"]
    group: pack_group if RUNS_PER_GPU > 1 else None
    conda:
        "../../envs/introspect.yaml"
    resources:
        **GPU_REQUEST,
        slurm_partition=partition(models=True),
        runtime=runtime,
        mem_mb=CLUSTER["mem_mb_per_run"],
    wildcard_constraints:
        run=run_pattern("train"),
    shell:
        '"$INTROSPECT_PYTHON" -m introspect train --record {params.record:q} {params.fail} --threads {threads}'
        " --device {params.device:q} 2> {log:q}"
