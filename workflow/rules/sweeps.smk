# Hyper-parameter sweeps (Dropout rate, LS factor, CP strength, BAN temperature, ...): the sweep runs
# are ordinary training runs; this rule scores their grid points on the validation split and writes
# the chosen point, which the final runs of the cell read when they start (`hyperparameters_from`).


rule select_hyperparameters:
    input:
        unpack(spec_input("selection", lambda wildcards: wildcards.selection)),
        runs=selection_inputs,
    output:
        str(LAYOUT.selection("{selection}")),
    params:
        spec=spec_digest("selection", lambda wildcards: wildcards.selection),
    log:
        str(LAYOUT.job_log("select_hyperparameters", "{selection}")),
    wildcard_constraints:
        selection=names_pattern(PLAN.selections),
    localrule: True
    conda:
        "../../envs/introspect.yaml"
    shell:
        "python -m introspect select --spec {input.spec:q} 2> {log:q}"
