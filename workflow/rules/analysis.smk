# Beyond the paper: what the distilled students learned (UniCAM-style), against their group's teacher:
# top-1 agreement, Grad-CAM similarity for the teacher's class, and the relevance of the student's own
# explanation (accuracy drop when its most relevant pixels are removed vs random pixels).


rule analyse_students:
    input:
        unpack(spec_input("analysis", lambda wildcards: wildcards.analysis)),
        runs=analysis_inputs,
    output:
        paths([LAYOUT.table("{analysis}", "md"), LAYOUT.table("{analysis}", "csv"), LAYOUT.analysis_runs("{analysis}")]),
        html=report(str(LAYOUT.table("{analysis}", "html")), caption="../report/analysis.rst", category="Tables",
                    labels=lambda wildcards: {"table": wildcards.analysis}),
        png=report(str(LAYOUT.analysis_figure("{analysis}", "png")), caption="../report/analysis_pairs.rst",
                   category="Figures", labels=lambda wildcards: {"figure": f"{wildcards.analysis}_pairs"}),
        pdf=str(LAYOUT.analysis_figure("{analysis}", "pdf")),
        csv=str(LAYOUT.analysis_figure("{analysis}", "csv")),
    params:
        spec=spec_digest("analysis", lambda wildcards: wildcards.analysis),
        title=analysis_caption,
    log:
        str(LAYOUT.job_log("analyse_students", "{analysis}")),
    threads: 2  # the last job of the DAG, nothing left to run beside it (capped at --cores)
    wildcard_constraints:
        analysis=names_pattern(PLAN.analyses),
    # A cluster job with a device, like training: it runs every student and teacher over the test set.
    resources:
        **model_job(60),
    conda:
        "../../envs/introspect.yaml"
    shell:
        "python -m introspect analyse --spec {input.spec:q} --threads {threads}"
        ' --device "$INTROSPECT_DEVICE" 2> {log:q}'
