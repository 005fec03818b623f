# Teachers (Tables 1 and 5) and TAKD's assistants: trained once per teacher seed (config
# `teachers.<name>.shared`) and reused by every student that names them; their checkpoints are inputs
# of the students' jobs. An assistant is a teacher with a teacher of its own (its input here).


rule teacher:
    input:
        dependency_models,
    output:
        run_outputs("teacher"),
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
        run=run_pattern("teacher"),
    shell:
        TRAIN_SHELL
