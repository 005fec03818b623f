# Students that learn from a teacher's checkpoint (KD, Hint, AT+KD, FSP+KD, and any registered method
# with needs_teacher): each job takes its teacher's model.pt as input.


rule distill:
    input:
        dependency_models,
    output:
        run_outputs("student"),
    log:
        str(RUNS / "{run}" / "train.log"),
    params:
        spec=run_spec,
    threads: PLAN.config["threads_per_run"]
    resources:
        gpu=CLUSTER["gpus_per_run"],
        gpu_model=CLUSTER["gpu_model"] or "",
        runtime=runtime_minutes,
        mem_mb=CLUSTER["mem_mb_per_run"],
    wildcard_constraints:
        run=run_pattern("student"),
    shell:
        TRAIN_SHELL
