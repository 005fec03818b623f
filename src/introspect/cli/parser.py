"""The command line's arguments and their help, in plain text (what ``--help`` prints is read on a terminal:
no markup). Every subcommand and every option says what it is for; ``tests/test_cli_help.py`` checks it."""
from __future__ import annotations

import argparse

DESCRIPTION = """\
LE (learning from online self-explanations) and the baselines of its paper: the commands the benchmark's
Snakemake rules run, one per job, and plan and summary for you.

Start with:
  introspect plan --config config/config.yaml     what a config would train, and its cost
  snakemake --cores 2                             run the default benchmark (README.md)
  introspect summary                              the headline of a finished result set

Records and specs arrive as files and are checked as data: an input error is one line and exit code 2."""

EPILOG = "Each command has its own --help, e.g. introspect plan --help."


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks; wraps option help at the terminal's width."""


def aggregation(p: argparse.ArgumentParser, whose: str, *, metric: str, missing: str) -> None:
    """The options of a command that aggregates runs against the paper (table, claims): ``whose`` spec file,
    the reported numbers, the accuracy read, and what to do with the seeds that finished when some failed."""
    p.add_argument("--spec", required=True, metavar="FILE", help=f"{whose} spec file, written by the plan")
    p.add_argument("--reported", required=True, metavar="CSV", help="the paper's reported numbers")
    p.add_argument("--metric", default="test_acc_final", help=f"{metric} (default: %(default)s)")
    p.add_argument("--allow-missing-seeds", action="store_true",
                   help=f"{missing} the seeds that finished instead of failing")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="introspect", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=_Formatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     title="commands (the Snakemake rules run all but plan and summary)")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                                   formatter_class=_Formatter)

    p = command("plan", "check a config and print its runs per table, the LE warm-ups, the cost and what to run next")
    p.add_argument("--config", default="config/config.yaml", metavar="FILE",
                   help="the config file (default: %(default)s); read as data, never evaluated")
    p.add_argument("--epoch-seconds", type=float, default=None, metavar="S",
                   help="GPU seconds per epoch of every model, instead of the config's cluster.epoch_seconds")
    p.add_argument("--json", action="store_true", help="print the whole plan (runs and tables) as JSON")

    p = command("summary", "print the headline of a finished result set: commit, machine, verdicts, flags "
                           "(plain text; Markdown with --out or --markdown)")
    p.add_argument("--results", default="results", metavar="DIR",
                   help="the results_dir holding runs/ and the config's views (default: %(default)s)")
    p.add_argument("--name", default="default",
                   help="the config's name: its claims are in DIR/NAME/claims.csv (default: %(default)s)")
    p.add_argument("--out", default=None, metavar="FILE", help="write the Markdown to FILE instead of printing it")
    p.add_argument("--markdown", action="store_true", help="print Markdown (for the README) instead of plain text")
    p.add_argument("--fingerprint", default="config/expected_fingerprint.json", metavar="FILE",
                   help="the committed fingerprint the runs' numbers are compared with (default: %(default)s)")
    p.add_argument("--write-fingerprint", action="store_true",
                   help="write the runs' fingerprint to the --fingerprint file instead of printing the headline")

    p = command("train", "train one run, resuming from its checkpoint if it has one")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--record", metavar="FILE",
                        help="a planned run's record.json: trains into its run directory under its results_dir")
    source.add_argument("--spec", metavar="FILE", help="a run spec file (a RunSpec as JSON); needs --out")
    p.add_argument("--out", metavar="DIR", help="the run directory to train into (with --spec)")
    p.add_argument("--fail-at-epoch", type=int, default=None, metavar="N",
                   help="fail on purpose at epoch N (tests of reruns and resume)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch threads (default: torch's)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default: %(default)s)")
    p.add_argument("--wait-for-lock", action="store_true",
                   help="if another process is training this run, wait for it instead of refusing")
    p.add_argument("--data-root", default=None, metavar="DIR",
                   help="where downloaded datasets are (with --record; default: data)")
    p.add_argument("--eval-batch-size", type=int, default=None, metavar="N",
                   help="evaluation batch size (with --record); changes no number")
    p.add_argument("--outcome", metavar="FILE", default=None,
                   help="a sweep point's job: write FILE (finished, or failed and why once --attempt is past "
                        "--retries) and exit 0, so one diverged point never blocks its selection")
    p.add_argument("--attempt", type=int, default=1, metavar="N", help="this job's attempt (with --outcome)")
    p.add_argument("--retries", type=int, default=0, metavar="N", help="the job's retries (with --outcome)")

    aggregation(command("table", "build one table from its runs: NAME.{md,tex,csv,html} and its significance tests"),
                "the table's", metric="the accuracy a cell shows", missing="build the table from")

    p = command("select", "choose a swept hyper-parameter on the validation split and write the selection file")
    p.add_argument("--spec", required=True, metavar="FILE", help="the selection's spec file, written by the plan")

    p = command("figure", "draw one figure (explanations, class similarity or accuracy) as png, pdf and csv")
    p.add_argument("--spec", required=True, metavar="FILE", help="the figure's spec file, written by the plan; "
                                                                 "writes figures/NAME.png, NAME.pdf and NAME.csv")
    p.add_argument("--metric", default="test_acc_final", help="the accuracy an accuracy figure plots "
                                                              "(default: %(default)s)")
    p.add_argument("--reported", default=None, metavar="CSV",
                   help="the paper's reported numbers, marked on an accuracy figure")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch threads (default: torch's)")
    p.add_argument("--device", default="cpu", help="where explanation figures run their models (default: cpu)")

    p = command("analyse", "analyse what students learned from their teachers: agreement, explanations, relevance")
    p.add_argument("--spec", required=True, metavar="FILE", help="the analysis's spec file, written by the plan")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch threads (default: torch's)")
    p.add_argument("--device", default="cpu", help="where students and teachers run (default: %(default)s)")

    aggregation(command("claims", "test the config's claims: claims.{md,csv,html} and claims_next.yaml"),
                "the claims'", metric="the accuracy compared", missing="test the claims on")

    p = command("merge-tests", "join the tables' significance-test CSV files into one")
    p.add_argument("inputs", nargs="+", metavar="CSV", help="the tables' test files")
    p.add_argument("--out", required=True, metavar="FILE", help="the joined CSV file")

    p = command("preflight", "check the device, data, results_dir and one step of each kind; time the steps")
    p.add_argument("--spec", required=True, metavar="FILE", help="the pre-flight's spec file, written by the plan")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch threads (default: torch's)")
    p.add_argument("--data-root", default=None, metavar="DIR", help="where the datasets are (default: the spec's)")

    p = command("download", "fetch a dataset's files into --root (needs internet)")
    p.add_argument("dataset", help="a dataset that can be fetched: cifar10 or mnist")
    p.add_argument("--root", default="data", metavar="DIR", help="where to put it (default: %(default)s)")

    p = command("worker", "serve jobs from one warm process (the Snakefile starts and stops it)")
    p.add_argument("--socket", required=True, metavar="PATH", help="the UNIX socket to listen on")
    p.add_argument("--parent-pid", type=int, default=None, metavar="PID", help="exit when this process is gone")
    p.add_argument("--remove-directory", action="store_true",
                   help="the socket's directory is the worker's own: remove it when the worker stops")
    return parser
