# Tables (mean ± std over seeds, the paper's value and our difference, Holm-corrected tests) and
# the file of every significance test. Each job reads its spec from a file the plan writes (spec_input);
# its params hold the spec's digest, the rerun trigger.


rule table:
    input:
        unpack(spec_input("table", lambda wildcards: wildcards.table)),
        runs=table_inputs,
    output:
        paths(LAYOUT.table("{table}", ext) for ext in ("md", "tex", "csv")),
        html=report(str(LAYOUT.table("{table}", "html")), caption="../report/table.rst", category="Tables",
                    labels=lambda wildcards: {"table": wildcards.table}),
        tests=str(LAYOUT.table_tests("{table}")),
    params:
        spec=spec_digest("table", lambda wildcards: wildcards.table),
        reported=PLAN.config.reported_results,
        metric=PLAN.config.table_metric,
        allow_missing="--allow-missing-seeds" if PLAN.config.allow_missing_seeds else "",
        caption=lambda wildcards: table_caption(PLAN.tables[wildcards.table]),
    log:
        str(LAYOUT.job_log("table", "{table}")),
    wildcard_constraints:
        table=names_pattern(PLAN.tables),
    localrule: True
    conda:
        "../../envs/introspect.yaml"
    shell:
        "python -m introspect table --spec {input.spec:q} --reported {params.reported:q}"
        " --metric {params.metric:q} {params.allow_missing} 2> {log:q}"


rule claims:
    """Every claim of the config: the paper's effect, ours with its corrected CI, Holm p, MDE, verdict, seeds
    needed; and claims_next.yaml, the overlay that adds those seeds."""
    input:
        unpack(spec_input("claims")),
        runs=claims_inputs,
    output:
        paths(LAYOUT.claims(ext) for ext in ("md", "csv")),
        html=report(str(LAYOUT.claims("html")), caption="../report/claims.rst", category="Claims"),
        next=str(LAYOUT.claims_next),
    params:
        spec=spec_digest("claims"),
        reported=PLAN.config.reported_results,
        metric=PLAN.config.table_metric,
        allow_missing="--allow-missing-seeds" if PLAN.config.allow_missing_seeds else "",
    log:
        str(LAYOUT.job_log("claims")),
    localrule: True
    conda:
        "../../envs/introspect.yaml"
    shell:
        "python -m introspect claims --spec {input.spec:q} --reported {params.reported:q}"
        " --metric {params.metric:q} {params.allow_missing} 2> {log:q}"


rule significance_tests:
    input:
        [str(LAYOUT.table_tests(name)) for name in PLAN.tables],
    output:
        TESTS_CSV,
    log:
        str(LAYOUT.job_log("significance_tests")),
    localrule: True
    conda:
        "../../envs/introspect.yaml"
    shell:
        "python -m introspect merge-tests {input:q} --out {output:q} 2> {log:q}"


rule summary:
    """`snakemake summary`: training runs per table, figure and sweep, and the estimated GPU-hours
    (from config `cluster.epoch_seconds`) of this config, without running anything."""
    input:
        config=job_file("config", "config"),
    log:
        str(LAYOUT.job_log("summary")),
    localrule: True
    conda:
        "../../envs/introspect.yaml"
    shell:
        "python -m introspect plan --config {input.config:q} 2> {log:q}"
