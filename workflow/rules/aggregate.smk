# Tables (mean ± std over seeds, the paper's value and our difference, Holm-corrected tests) and
# the file of every significance test.
import json


def table_inputs(wildcards):
    """Every run of the table; with allow_missing_seeds, runs that were tried and failed (a train.log
    but no metrics.json) are left out, so the table is built with the seeds that finished."""
    table = PLAN.tables[wildcards.table]
    teachers = {run_id for ids in table.teachers.values() for run_id in ids}
    run_ids = sorted({run_id for cell in table.cells for run_id in cell.run_ids} | teachers)
    if PLAN.config["allow_missing_seeds"]:
        run_ids = [r for r in run_ids if (RUNS / r / "metrics.json").exists() or not (RUNS / r / "train.log").exists()]
    selections = sorted({cell.selection for cell in table.cells if cell.selection})
    return [str(RUNS / run_id / "metrics.json") for run_id in run_ids] + selections


def table_caption(table):
    number = f"Paper Table {table.config['paper_table']}. " if table.config.get("paper_table") else ""
    metric = "Test error (%)" if table.config.get("metric") == "error" else "Test accuracy (%)"
    return f"{number}{table.config['title']}. {metric} on {table.settings['dataset']}."


rule table:
    input:
        table_inputs,
    output:
        multiext(str(TABLES / "{table}"), ".md", ".tex", ".csv"),
        html=report(str(TABLES / "{table}.html"), caption="../report/table.rst", category="Tables",
                    labels=lambda wildcards: {"table": wildcards.table}),
        tests=str(STATS / "{table}.tests.csv"),
    params:
        spec=lambda wildcards: json.dumps(PLAN.tables[wildcards.table].to_dict()),
        reported=PLAN.config["reported_results"],
        metric=PLAN.config["table_metric"],
        allow_missing="--allow-missing-seeds" if PLAN.config["allow_missing_seeds"] else "",
        caption=lambda wildcards: table_caption(PLAN.tables[wildcards.table]),
    wildcard_constraints:
        table="|".join(PLAN.tables),
    localrule: True
    conda:
        "../../envs/introspect.yaml"
    shell:
        INTROSPECT + " table --spec {params.spec:q} --runs-dir " + str(RUNS) +
        " --reported {params.reported} --metric {params.metric} {params.allow_missing}"
        " --out-prefix " + str(TABLES) + "/{wildcards.table} --tests-out {output.tests}"


rule significance_tests:
    input:
        [str(STATS / f"{name}.tests.csv") for name in PLAN.tables],
    output:
        TESTS_CSV,
    localrule: True
    conda:
        "../../envs/introspect.yaml"
    shell:
        INTROSPECT + " merge-tests {input} --out {output}"


rule summary:
    """`snakemake summary`: training runs per table, figure and sweep, and the estimated GPU-hours
    (from config `cluster.epoch_seconds`) of this config, without running anything."""
    params:
        config=lambda wildcards: json.dumps(PLAN.config),
    localrule: True
    conda:
        "../../envs/introspect.yaml"
    shell:
        "echo {params.config:q} | " + INTROSPECT + " plan --config /dev/stdin"
