# The files jobs read their definition from (each run's record, each view's spec, the claims spec, the
# validated config for `introspect plan`, the pre-flight's spec): computed by the plan, written by this
# one local step, never while the DAG is built, so `snakemake -n`, --summary and --lint write nothing.
# Each file's name holds its content's digest (introspect.plan.job_files.JobFiles): a changed
# definition is a missing file, so the step and the jobs it changes are out of date, and nothing else.
# A checkpoint: once it has run, Snakemake re-evaluates every job (it does not look past an existing
# ancient input of a job that must run), so a change trains what it changed in the same call.

JOB_FILES = specfiles.job_files(PLAN, {"preflight": PREFLIGHT_SPEC})
CONFIG_FILE = JOB_FILES.path("config", "config")  # its own step: `snakemake summary` writes nothing else
DEFINITIONS = sorted(set(JOB_FILES.files) - {CONFIG_FILE})


checkpoint job_files:
    output:
        paths(DEFINITIONS),
    log:
        str(LAYOUT.job_log("job_files")),
    localrule: True
    run:
        JOB_FILES.write(DEFINITIONS, log=log[0])


rule config_file:
    output:
        str(CONFIG_FILE),
    log:
        str(LAYOUT.job_log("config_file")),
    localrule: True
    run:
        JOB_FILES.write([CONFIG_FILE], log=log[0])
