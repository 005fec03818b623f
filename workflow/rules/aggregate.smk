# Tables (mean ± std over seeds, the paper's value and our difference, Holm-corrected tests) and
# the file of every significance test.
import json


def table_inputs(wildcards):
    """Every run of the table; with allow_missing_seeds, runs that were tried and failed (a log but
    no metrics) are left out, so the table is built with the seeds that finished."""
    table = PLAN.tables[wildcards.table]
    run_ids = sorted(set(table.run_ids()) | set(table.teacher_run_ids()))
    if PLAN.config["allow_missing_seeds"]:
        run_ids = [r for r in run_ids if LAYOUT.run(r).is_finished() or not LAYOUT.run(r).was_tried()]
    selections = [str(LAYOUT.selection(s)) for s in table.selection_ids()]
    return metrics_of(run_ids) + selections + [PLAN.config["reported_results"]]


def table_caption(table):
    number = f"Paper Table {table.config['paper_table']}. " if table.config.get("paper_table") else ""
    return f"{number}{table.config['title']}. {table.metric_label.capitalize()} on {table.settings['dataset']}."


rule table:
    input:
        table_inputs,
    output:
        paths(LAYOUT.table("{table}", ext) for ext in ("md", "tex", "csv")),
        html=report(str(LAYOUT.table("{table}", "html")), caption="../report/table.rst", category="Tables",
                    labels=lambda wildcards: {"table": wildcards.table}),
        tests=str(LAYOUT.table_tests("{table}")),
    params:
        spec=lambda wildcards: json.dumps(PLAN.tables[wildcards.table].to_dict()),
        reported=PLAN.config["reported_results"],
        metric=PLAN.config["table_metric"],
        allow_missing="--allow-missing-seeds" if PLAN.config["allow_missing_seeds"] else "",
        caption=lambda wildcards: table_caption(PLAN.tables[wildcards.table]),
    wildcard_constraints:
        table=names_pattern(PLAN.tables),
    localrule: True
    conda:
        "../../envs/introspect.yaml"
    shell:
        INTROSPECT + " table --spec {params.spec:q} --reported {params.reported:q} --metric {params.metric:q}"
        " {params.allow_missing}"


def claims_inputs(wildcards):
    run_ids = PLAN.claims.run_ids()
    if PLAN.config["allow_missing_seeds"]:
        run_ids = [r for r in run_ids if LAYOUT.run(r).is_finished() or not LAYOUT.run(r).was_tried()]
    return metrics_of(run_ids) + [PLAN.config["reported_results"]]


def claims_outputs():
    return paths(LAYOUT.claims(ext) for ext in ("md", "csv", "html")) if PLAN.claims else []


rule claims:
    """Every claim of the config: the paper's effect, ours with its 95% CI, Holm p, MDE, verdict."""
    input:
        claims_inputs,
    output:
        paths(LAYOUT.claims(ext) for ext in ("md", "csv")),
        html=report(str(LAYOUT.claims("html")), caption="../report/claims.rst", category="Claims"),
    params:
        spec=lambda wildcards: json.dumps(PLAN.claims.to_dict()),
        reported=PLAN.config["reported_results"],
        metric=PLAN.config["table_metric"],
        allow_missing="--allow-missing-seeds" if PLAN.config["allow_missing_seeds"] else "",
    localrule: True
    conda:
        "../../envs/introspect.yaml"
    shell:
        INTROSPECT + " claims --spec {params.spec:q} --reported {params.reported:q} --metric {params.metric:q}"
        " {params.allow_missing}"


rule significance_tests:
    input:
        [str(LAYOUT.table_tests(name)) for name in PLAN.tables],
    output:
        TESTS_CSV,
    localrule: True
    conda:
        "../../envs/introspect.yaml"
    shell:
        INTROSPECT + " merge-tests {input:q} --out {output:q}"


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
