# Single-stage runs: CE and the regularisation baselines of Tables 2 and 3 (Dropout, LS, CP), and
# any other registered method that needs no other run's checkpoint.


rule train:
    output:
        run_outputs("train"),
    log:
        str(RUNS / "{run}" / "train.log"),
    params:
        spec=run_spec,
    threads: PLAN.config["threads_per_run"]
    wildcard_constraints:
        run=run_pattern("train"),
    shell:
        TRAIN_SHELL
