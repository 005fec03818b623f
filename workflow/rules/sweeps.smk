# Hyper-parameter sweeps (Dropout rate, LS factor, CP strength, BAN temperature, ...): the sweep runs
# are ordinary training runs; this rule scores their grid points on the validation split and writes
# the chosen point, which the final runs of the cell read when they start (`hyperparameters_from`).
import json


rule select_hyperparameters:
    input:
        selection_inputs,
    output:
        str(LAYOUT.selection("{selection}")),
    params:
        spec=lambda wildcards: json.dumps(PLAN.selections[wildcards.selection].to_dict()),
    log:
        str(LAYOUT.job_log("select_hyperparameters", "{selection}")),
    wildcard_constraints:
        selection=names_pattern(PLAN.selections),
    localrule: True
    conda:
        "../../envs/introspect.yaml"
    shell:
        '"$INTROSPECT_PYTHON" -m introspect select --spec {params.spec:q} 2> {log:q}'
