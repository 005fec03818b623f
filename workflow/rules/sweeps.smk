# Hyper-parameter sweeps (Dropout rate, LS factor, CP strength, BAN temperature, ...): the sweep runs
# are ordinary training runs; this rule scores their grid points on the validation split and writes
# the chosen point, which the final runs of the cell read when they start (`hyperparameters_from`).
import json


def selection_inputs(wildcards):
    selection = PLAN.selections[wildcards.selection]
    return [str(RUNS / run_id / "metrics.json") for ids in selection.candidates for run_id in ids]


rule select_hyperparameters:
    input:
        selection_inputs,
    output:
        str(SELECTION / "{selection}.json"),
    params:
        spec=lambda wildcards: json.dumps(PLAN.selections[wildcards.selection].to_dict()),
    wildcard_constraints:
        selection="|".join(re.escape(s) for s in PLAN.selections) or "(?!)",
    localrule: True
    conda:
        "../../envs/introspect.yaml"
    shell:
        INTROSPECT + " select --spec {params.spec:q} --runs-dir " + str(RUNS) + " --out {output}"
