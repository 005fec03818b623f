"""Command line: ``introspect {train,plan,table,select,figure,analyse,claims,merge-tests,worker,download}``
(also ``python -m introspect ...``).

The Snakemake rules call these commands; they hold no logic of their own.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

EXIT_TRAINING_ERROR, EXIT_INTERRUPTED, EXIT_CONFIG_ERROR, EXIT_DATA_ERROR = 3, 143, 2, 4


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] not in ("worker", "-h", "--help"):
        from .worker import run_through_worker

        status = run_through_worker(argv)  # a warm local worker, if the workflow started one
        if status is not None:
            return status
    parser = argparse.ArgumentParser(prog="introspect", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("train", help="train one run (resumes from its checkpoint if there is one)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--record", help="a planned run (introspect.runs.RunRecord) as JSON text, or @file.json; "
                                         "trains into its run directory under its results_dir")
    source.add_argument("--spec", help="a run spec (introspect.spec.RunSpec) as JSON text, or @file.json; needs --out")
    p.add_argument("--out", help="run directory (with --spec)")
    p.add_argument("--fail-at-epoch", type=int, default=None, help="failure injection, for testing reruns")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")

    p = commands.add_parser("plan", help="validate a config and print its runs per table")
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--epoch-seconds", type=float, default=None,
                   help="GPU seconds per epoch of every model (overrides config cluster.epoch_seconds)")
    p.add_argument("--json", action="store_true", help="print the whole plan as JSON")

    p = commands.add_parser("table", help="aggregate the runs of one table into md/tex/csv/html and its tests CSV "
                                          "(under the spec's results_dir: tables/NAME.*, stats/NAME.tests.csv)")
    p.add_argument("--spec", required=True, help="table spec (introspect.specs.TableSpec) as JSON text, or @file.json")
    p.add_argument("--reported", required=True, help="CSV of the paper's reported numbers")
    p.add_argument("--metric", default="test_acc_final")
    p.add_argument("--allow-missing-seeds", action="store_true")

    p = commands.add_parser("select", help="choose a swept hyper-parameter on the validation split; writes the "
                                           "selection JSON whose 'chosen' values feed the final runs")
    p.add_argument("--spec", required=True,
                   help="selection spec (introspect.specs.Selection) as JSON text, or @file.json")

    p = commands.add_parser("figure", help="draw one figure (explanations, class similarity, accuracy)")
    p.add_argument("--spec", required=True, help="figure spec (introspect.specs.FigureSpec) as JSON text, or "
                                                 "@file.json; writes figures/NAME.png, NAME.pdf and NAME.csv")
    p.add_argument("--metric", default="test_acc_final")
    p.add_argument("--reported", default=None,
                   help="CSV of the paper's reported numbers (kind accuracy: marks the paper's values)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu", help="where the explanation figures run their models")

    p = commands.add_parser("analyse", help="what students learned: agreement, explanation similarity, relevance")
    p.add_argument("--spec", required=True, help="analysis spec (introspect.specs.AnalysisSpec) as JSON text, or "
                                                 "@file.json; writes tables/NAME.{md,csv,html}, NAME_runs.csv and "
                                                 "figures/NAME_pairs.{png,pdf,csv}")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu", help="where the students and teachers run")

    p = commands.add_parser("claims", help="evaluate the config's claims: writes claims.{md,csv,html} under the "
                                           "spec's results_dir (effect, 95%% CI, Holm p, MDE, verdict per claim)")
    p.add_argument("--spec", required=True,
                   help="claims spec (introspect.specs.ClaimsSpec) as JSON text, or @file.json")
    p.add_argument("--reported", required=True, help="CSV of the paper's reported numbers")
    p.add_argument("--metric", default="test_acc_final")
    p.add_argument("--allow-missing-seeds", action="store_true")

    p = commands.add_parser("merge-tests", help="concatenate per-table test CSVs")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--out", required=True)

    p = commands.add_parser("worker", help="serve jobs from a warm process (started by the Snakefile)")
    p.add_argument("--socket", required=True, help="UNIX socket path to listen on")
    p.add_argument("--parent-pid", type=int, default=None, help="exit when this process is gone")

    p = commands.add_parser("preflight", help="check the device, data, results_dir and one step of every step "
                                              "kind of a plan; writes the measured step costs (calibration)")
    p.add_argument("--spec", required=True, help="pre-flight spec (introspect.preflight.preflight_spec) as JSON "
                                                 "text, or @file.json")
    p.add_argument("--threads", type=int, default=None)

    p = commands.add_parser("download", help="fetch CIFAR-10 or MNIST with torchvision (needs internet)")
    p.add_argument("dataset", choices=["cifar10", "mnist"])
    p.add_argument("--root", default="data")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    commands = {"train": _train, "plan": _plan, "table": _table, "select": _select, "figure": _figure,
                "analyse": _analyse, "claims": _claims, "merge-tests": _merge_tests, "download": _download,
                "preflight": _preflight,
                "worker": _worker}
    return commands[args.command](args)


def _read_json_arg(value: str):
    return json.loads(Path(value[1:]).read_text() if value.startswith("@") else value)


def _train(args) -> int:
    from .data import DatasetError
    from .runs import RunFileError, RunRecord
    from .spec import RunSpec
    from .train import Interrupted, TrainingError, train

    try:
        if args.record:
            record = RunRecord.from_dict(_read_json_arg(args.record))
            spec, out = RunSpec.from_dict(record.run_spec_dict(args.fail_at_epoch)), record.files.directory
        else:
            if not args.out:
                raise ValueError("--spec needs --out (the run directory)")
            data = _read_json_arg(args.spec)
            if args.fail_at_epoch is not None:
                data["fail_at_epoch"] = args.fail_at_epoch
            spec, out = RunSpec.from_dict(data), Path(args.out)
    except (ValueError, TypeError, KeyError) as error:
        print(f"error: bad run {'record' if args.record else 'spec'}: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    try:
        metrics = train(spec, out, device=args.device, threads=args.threads)
    except Interrupted as error:
        print(f"interrupted: {error}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_DATA_ERROR
    except (TrainingError, RunFileError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_TRAINING_ERROR
    print(f"{spec.run_id}: test accuracy {metrics['test_acc_final']:.2f}% after {metrics['epochs']} epochs "
          f"({metrics['wall_time_seconds']:.1f}s)", file=sys.stderr)
    return 0


def _plan(args) -> int:
    from .config import reject
    from .plan import ConfigError, build_plan, load_config
    from .resources import cluster_problems
    from .resources import summary as plan_summary
    from .validation import warmup_summary

    try:
        config = load_config(args.config)
        if args.epoch_seconds:
            config.setdefault("cluster", {})["epoch_seconds"] = {"default": args.epoch_seconds}
        plan = build_plan(config)
        reject(cluster_problems(plan.config))
    except ConfigError as error:
        print(f"error: {args.config}: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if args.json:
        print(json.dumps({"runs": {r: run.to_dict() for r, run in plan.runs.items()},
                          "tables": {t: spec.to_dict() for t, spec in plan.tables.items()}}, indent=1))
        return 0
    summary = plan_summary(plan)
    print(f"{args.config}: {summary['runs']} training runs "
          f"({', '.join(f'{n} {k}' for k, n in summary['by_kind'].items())}), {summary['epochs']} epochs in all")
    for table, n in summary["runs_per_table"].items():
        print(f"  {table}: {n} runs")
    for line in warmup_summary(plan.config):
        print(f"  LE {line}")
    if summary["selections"]:
        print(f"  sweeps: {summary['sweep_runs']} runs in {summary['selections']} selections "
              f"(scored by {plan.config['sweeps']['metric']})")
    print(_cost_lines(plan, summary))
    return 0


def _cost_lines(plan, summary) -> str:
    """GPU-hours and time limits, saying whether they come from a pre-flight's measurements."""
    limits = summary["time_limits_minutes"]
    limit_text = f"time limits {limits['min']}-{limits['max']} min (median {limits['median']})" if limits else ""
    if summary["calibration"]:
        missing = summary["uncalibrated_kinds"]
        note = f"; {len(missing)} step kind(s) not measured use the hand constants" if missing else ""
        return (f"GPU-hours: {summary['gpu_hours']:.1f}, {limit_text}, from the measured step costs in "
                f"{summary['calibration']}{note}")
    seconds = plan.config["cluster"]["epoch_seconds"]
    return (f"estimated GPU-hours: {summary['gpu_hours']:.1f}, {limit_text}, from the hand constants (epoch seconds "
            f"per model: {', '.join(f'{k}={v:g}' for k, v in seconds.items())}; LE explainer cost factors: "
            f"{', '.join(f'{k}={v:g}' for k, v in plan.config['cluster']['explainer_cost'].items())}); "
            "a pre-flight job measures them")


def _table(args) -> int:
    from .analysis.tables import write_table
    from .specs import TableSpec

    spec = TableSpec.from_dict(_read_json_arg(args.spec))
    return _reporting_errors(lambda: write_table(spec, Path(args.reported), metric=args.metric,
                                                 allow_missing=args.allow_missing_seeds))


def _select(args) -> int:
    from .analysis.selection import describe, write_selection
    from .specs import Selection

    spec = Selection.from_dict(_read_json_arg(args.spec))
    return _reporting_errors(lambda: print(describe(write_selection(spec)), file=sys.stderr))


def _figure(args) -> int:
    from .analysis.figures import draw_figure
    from .specs import FigureSpec

    spec = FigureSpec.from_dict(_read_json_arg(args.spec))
    _set_threads(args.threads)
    return _reporting_errors(lambda: draw_figure(spec, metric=args.metric, device=args.device,
                                                 reported=Path(args.reported) if args.reported else None))


def _analyse(args) -> int:
    from .analysis.students import write_student_analysis
    from .specs import AnalysisSpec

    spec = AnalysisSpec.from_dict(_read_json_arg(args.spec))
    _set_threads(args.threads)
    return _reporting_errors(lambda: write_student_analysis(spec, args.device))


def _claims(args) -> int:
    from .analysis.claims import summary, write_claims_report
    from .specs import ClaimsSpec

    spec = ClaimsSpec.from_dict(_read_json_arg(args.spec))
    return _reporting_errors(lambda: print(summary(write_claims_report(
        spec, Path(args.reported), metric=args.metric, allow_missing=args.allow_missing_seeds)), file=sys.stderr))


def _reporting_errors(command) -> int:
    """Run an aggregation command; a missing or corrupt run file is one line naming it, not a traceback."""
    from .analysis.reported import ReportedResultsError
    from .runs import RunFileError

    try:
        command()
    except (RunFileError, ReportedResultsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_TRAINING_ERROR
    return 0


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def _merge_tests(args) -> int:
    import pandas as pd

    from .io import atomic_write_text

    frames = [pd.read_csv(path) for path in args.inputs]
    atomic_write_text(args.out, pd.concat(frames, ignore_index=True).to_csv(index=False))
    return 0


def _worker(args) -> int:
    from .worker import serve

    serve(args.socket, args.parent_pid)
    return 0


def _preflight(args) -> int:
    from .preflight import PreflightError, run_preflight

    try:
        report = run_preflight(_read_json_arg(args.spec), args.threads)
    except PreflightError as error:
        print(str(error), file=sys.stderr)
        return error.exit_code
    device = report["device"]
    print(f"pre-flight passed on {report['host']} ({device.get('name', device['device'])}, torch {device['torch']}): "
          f"{len(report['kinds'])} step kind(s) measured", file=sys.stderr)
    return 0


def _download(args) -> int:
    from torchvision.datasets import CIFAR10, MNIST

    cls = CIFAR10 if args.dataset == "cifar10" else MNIST
    for train in (True, False):
        cls(args.root, train=train, download=True)
    print(f"{args.dataset} is ready under {Path(args.root).resolve()}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
