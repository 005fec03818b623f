# Figures 1-3: explanations with their cosine similarity to the true class's (Fig. 1), class-similarity
# heat maps averaged over the test set (Fig. 2), LE's accuracy with each explainer (Fig. 3).


rule figure:
    input:
        unpack(spec_input("figure", lambda wildcards: wildcards.figure)),
        runs=figure_inputs,
    output:
        png=report(str(LAYOUT.figure("{figure}", "png")), caption="../report/figure.rst", category="Figures",
                   labels=lambda wildcards: {"figure": wildcards.figure}),
        pdf=str(LAYOUT.figure("{figure}", "pdf")),
        csv=str(LAYOUT.figure("{figure}", "csv")),
    params:
        spec=spec_digest("figure", lambda wildcards: wildcards.figure),
        metric=PLAN.config.table_metric,
        reported=PLAN.config.reported_results,
        caption=figure_caption,
    log:
        str(LAYOUT.job_log("figure", "{figure}")),
    threads: 1
    wildcard_constraints:
        figure=names_pattern(PLAN.figures),
    # A cluster job: explanation figures run their models over test images, on the configured device
    # (the accuracy figure only reads metrics and asks for no GPU).
    resources:
        **{key: (lambda wildcards, key=key: (GPU_REQUEST if PLAN.figures[wildcards.figure].panels else NO_GPU)[key])
           for key in NO_GPU},
        slurm_partition=lambda wildcards: partition(models=bool(PLAN.figures[wildcards.figure].panels)),
        runtime=60,
        mem_mb=CLUSTER.mem_mb_per_run,
    conda:
        "../../envs/introspect.yaml"
    shell:
        "python -m introspect figure --spec {input.spec:q} --metric {params.metric:q}"
        ' --reported {params.reported:q} --threads {threads} --device "$INTROSPECT_DEVICE" 2> {log:q}'
