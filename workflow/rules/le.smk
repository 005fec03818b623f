# LE (Algorithm 1): Stage 1 is a warm-up run of one-hot CE for the first warmup_epochs of the
# schedule; its checkpoint (model and optimiser) feeds every Stage-2 variant of the same model and
# seed (LE(Grad-CAM), LE(Grad), LE-Permut of Tables 2, 3 and 6).


use rule train as le_warmup with:
    output:
        run_outputs(),
    priority: 3  # every LE Stage-2 run waits for its warm-up
    wildcard_constraints:
        run=run_pattern("warmup"),


use rule train as le_stage2 with:
    input:
        run_inputs,
    output:
        run_outputs(),
    priority: 2  # the longest runs (input-gradient explainers): started early, short runs fill the end
    wildcard_constraints:
        run=run_pattern("stage2"),
