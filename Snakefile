# The LE-paper benchmark as one DAG. The plan (which runs each table needs, which run feeds which)
# is computed by introspect.plan.build from the validated config; the rules only map runs to files and
# call the package's CLI. Run: snakemake --cores 2   (default embedded config, see README.md)
import os
from pathlib import Path
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

# The default config only when no --configfile gave a whole config (one with its tables, or one that
# `extends:` a base): Snakemake would otherwise deep-merge the given file into the default one, and a
# config's tables would inherit the default's. A file without either (an overlay, e.g. other seeds) is merged
# over the default; --config values always win. `config` already holds --configfile and --config here.
if "tables" not in config and "extends" not in config:

    configfile: "config/config.yaml"


SRC = Path(workflow.basedir) / "src"
sys.path.insert(0, str(SRC))  # plan without requiring an installed package
from introspect.config.overlays import OverlayError, declaring_directory, resolve_extends  # noqa: E402

# `extends: base.yaml` (config/base.yaml holds the paper's tables once): the base, read as data with limits
# and relative to the file that names it, under everything Snakemake merged (introspect.config.overlays).
try:
    if "extends" in config:
        _resolved = resolve_extends(config, declaring_directory(config, workflow.configfiles))
        config.clear()
        config.update(_resolved)
except OverlayError as error:
    raise WorkflowError(f"config rejected before any job started:\n  {error}")
# Jobs import this checkout's package too. Set here, not in the job commands, so that no absolute path
# enters their text (Snakemake's "code" rerun trigger compares it): a moved checkout reruns nothing.
# A cluster job re-reads this Snakefile in its own Snakemake, which sets it there as well.
os.environ.update(PYTHONPATH=os.pathsep.join(
    dict.fromkeys(filter(None, [str(SRC), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]))))

from introspect.claims.costs import attach_claim_costs  # noqa: E402
from introspect.plan.build import ConfigError, build_plan  # noqa: E402

from introspect.config.command_line import unsafe_arguments  # noqa: E402

# --config values and --configfile paths reach every cluster job's command line (sbatch --wrap="..."): nothing
# there may be something a shell expands (introspect.config.command_line).
_unsafe = unsafe_arguments(workflow.config_settings.config, workflow.config_settings.configfiles)
if _unsafe:
    raise WorkflowError("config rejected before any job started:\n  " + "\n  ".join(_unsafe))

try:
    # Validates against the package's schema (introspect/config/schemas), then the method and model names against
    # the registries' cached catalog (introspect.config.registry_facts: no torch import, so cluster jobs re-check cheaply).
    # The claims' seeds_needed are priced in GPU-hours by the plan's estimate (introspect.cluster.resources).
    # Every check, the cluster requests' included (GPU model names the SLURM plugin accepts, no GPU for device: cpu).
    PLAN = attach_claim_costs(build_plan(config))
except ConfigError as error:
    raise WorkflowError(f"config rejected before any job started:\n{error}")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/functions.smk"
include: "workflow/rules/preflight.smk"
include: "workflow/rules/job_files.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/teachers.smk"
include: "workflow/rules/distillation.smk"
include: "workflow/rules/le.smk"
include: "workflow/rules/sweep_points.smk"
include: "workflow/rules/sweeps.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/analysis.smk"


# The terminal shows one line per finished job and the training time left, not Snakemake's block per job
# (introspect.cluster.terminal); the log file keeps everything. Set up while the Snakefile is read, so that
# Snakemake's header and job table are left to the log file too; workflow.dryrun is not known yet (no executor),
# the command line's -n is (output_settings), and a dry run keeps its listing of the jobs.
if workflow.is_main_process:
    from introspect.cluster.terminal import quiet_terminal

    quiet_terminal(PLAN, workflow.resource_settings.cores, dryrun=workflow.output_settings.dryrun,
                   verbose=workflow.output_settings.verbose)


onstart:
    from introspect.cluster.terminal import quiet_job_output

    quiet_job_output(local=workflow.local_exec)  # a local job's epoch lines go to its log, not to this terminal
    start_local_worker()
    from introspect.cluster.resources import outlook

    print(outlook(PLAN, workflow.resource_settings.cores))  # the runs left, and their time once measured here


onsuccess:
    stop_local_worker()
    # What this call built (from Snakemake's log, not from the files present), the requested files that were
    # up to date already, and the claims' verdicts (plain text, from claims.csv) only if this call wrote them.
    from introspect.cluster.run_summary import run_summary
    from introspect.cluster.snakemake_log import read_logs

    print(run_summary(read_logs(log), requested_files(), LAYOUT.claims("csv") if PLAN.claims else None))
    print(f"HTML report of all of them: snakemake --report {LAYOUT.views_dir / 'report.html'} (same --configfile)")


onerror:
    stop_local_worker()
    # The jobs that failed in this invocation and their logs, read from Snakemake's own log (not every
    # unfinished run: after a failed pre-flight that would be all of them).
    from introspect.cluster.failures import failure_report

    print(failure_report(log, unfinished=len(PLAN.unfinished_runs())))


rule all:
    input:
        table_outputs(PLAN.tables),
        TESTS_CSV,
        figure_outputs(PLAN.figures),
        analysis_outputs(PLAN.analyses),
        claims_outputs(),
    default_target: True
