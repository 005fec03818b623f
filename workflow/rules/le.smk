# LE (Algorithm 1): Stage 1 is a warm-up run of one-hot CE for the first warmup_epochs of the
# schedule; its checkpoint (model and optimiser) feeds every Stage-2 variant of the same model and
# seed (LE(Grad-CAM), LE(Grad), LE-Permut of Tables 2, 3 and 6).


rule le_warmup:
    output:
        run_outputs("warmup"),
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
        run=run_pattern("warmup"),
    shell:
        TRAIN_SHELL


rule le_stage2:
    input:
        dependency_models,
    output:
        run_outputs("stage2"),
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
        run=run_pattern("stage2"),
    shell:
        TRAIN_SHELL
