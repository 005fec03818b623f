# Figures 1-3: explanations with their cosine similarity to the true class's (Fig. 1), class-similarity
# heat maps averaged over the test set (Fig. 2), LE's accuracy with each explainer (Fig. 3).


FIGURE_KINDS = {
    "explanations": "For a few test images (first column), the explanation of every class; the number under "
    "each map is its cosine similarity to the explanation of the true class (bold).",
    "class_similarity": "Cosine distance between the explanations of every pair of classes, averaged over "
    "the test set: small distances mark classes the model sees as similar. A diagonal entry above 0 means the "
    "class's Grad-CAM map was all zero (ReLU) on some images, where the cosine is taken as 0.",
    "accuracy": "Test accuracy (%) of each method per model: grey dots are single seeds, blue points the mean "
    "with its 95% confidence interval (t distribution over seeds), red diamonds the paper's reported mean where "
    "the paper prints one for that model and method (its tables; Figure 3 itself gives no numbers).",
}


def figure_caption(wildcards):
    figure = PLAN.figures[wildcards.figure]
    config = figure.config
    number = f"Paper Figure {config['paper_figure']}. " if config.get("paper_figure") else ""
    panels = "; ".join(f"{p.label}: run {p.run_id}" for p in figure.panels)
    return " ".join(filter(None, [f"{number}{config['title']}.", FIGURE_KINDS[config["kind"]],
                                  config.get("note"), f"Panels: {panels}." if panels else ""]))


def figure_inputs(wildcards):
    figure = PLAN.figures[wildcards.figure]
    if figure.panels:
        return metrics_of(figure.run_ids()) + models_of(figure.run_ids())
    return metrics_of(figure.run_ids()) + [PLAN.config["reported_results"]]  # the paper's values are drawn too


rule figure:
    input:
        figure_inputs,
    output:
        png=report(str(LAYOUT.figure("{figure}", "png")), caption="../report/figure.rst", category="Figures",
                   labels=lambda wildcards: {"figure": wildcards.figure}),
        pdf=str(LAYOUT.figure("{figure}", "pdf")),
        csv=str(LAYOUT.figure("{figure}", "csv")),
    params:
        spec=lambda wildcards: json.dumps(PLAN.figures[wildcards.figure].to_dict()),
        metric=PLAN.config["table_metric"],
        reported=PLAN.config["reported_results"],
        caption=figure_caption,
    threads: 1
    wildcard_constraints:
        figure=names_pattern(PLAN.figures),
    # A cluster job: explanation figures run their models over test images, on the configured device
    # (the accuracy figure only reads metrics and asks for no GPU).
    resources:
        gpu=lambda wildcards: JOB_GPUS if PLAN.figures[wildcards.figure].panels else 0,
        gres=lambda wildcards: JOB_GRES if PLAN.figures[wildcards.figure].panels else "",
        gpu_model=lambda wildcards: JOB_GPU_MODEL if PLAN.figures[wildcards.figure].panels else "",
        runtime=60,
        mem_mb=CLUSTER["mem_mb_per_run"],
    conda:
        "../../envs/introspect.yaml"
    shell:
        INTROSPECT + " figure --spec {params.spec:q} --metric {params.metric:q} --reported {params.reported:q}"
        " --threads {threads} --device " + DEVICE
