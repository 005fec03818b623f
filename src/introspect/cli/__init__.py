"""The command line, ``introspect COMMAND`` (also ``python -m introspect``): the arguments and their help
are in :mod:`.parser`, each command's code below.

The Snakemake rules call these commands; they hold no logic of their own. Records and specs arrive as
files (``--record FILE``, ``--spec FILE``) and are data: every key, type and id is checked, and any
input error is one line and exit code 2 (``EXIT_INPUT_ERROR``), never a traceback.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from ..errors import (
    EXIT_BUSY,
    EXIT_DATA_ERROR,
    EXIT_DEVICE_ERROR,
    EXIT_INPUT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_TRAINING_ERROR,
    InputError,
)
from ..kernels import pin_kernels
from .parser import build_parser

EXIT_CONFIG_ERROR = EXIT_INPUT_ERROR


def main(argv: list[str] | None = None) -> int:
    pin_kernels()  # before anything imports torch: the same kernels on every x86 CPU (introspect.kernels)
    argv = sys.argv[1:] if argv is None else argv
    from ..cluster.head import end_with_head

    end_with_head()  # a job of a local workflow run (the worker too) ends when that run's Snakemake does
    if argv and argv[0] not in ("worker", "-h", "--help"):
        from ..cluster.worker import run_through_worker

        status = run_through_worker(argv)  # a warm local worker, if the workflow started one
        if status is not None:
            return status
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    commands = {"train": _train, "plan": _plan, "table": _table, "select": _select, "figure": _figure,
                "analyse": _analyse, "claims": _claims, "summary": _summary, "merge-tests": _merge_tests,
                "download": _download, "preflight": _preflight,
                "worker": _worker}
    try:
        _check_options(args)
        return commands[args.command](args)
    except InputError as error:  # a record, spec or results file handed to us: one line, no traceback
        print(f"error: {_shown(error)}", file=sys.stderr)
        return EXIT_INPUT_ERROR


def _shown(error: Exception) -> str:
    """An error message for the terminal: each of its lines with control and bidi characters from a file or a
    label made visible (an ESC sequence would otherwise act on the terminal)."""
    from ..analysis.escape import one_line

    return "\n".join(one_line(line) for line in str(error).splitlines())


# Bounds of the numeric options: a thread count or batch size outside them is a typo, not a setting.
OPTION_BOUNDS = {"threads": (1, 4096), "eval_batch_size": (1, 1_000_000), "fail_at_epoch": (0, 100_000),
                 "parent_pid": (1, 2**22)}


def _check_options(args) -> None:
    """The options every command shares, checked before anything runs (an InputError: one line, exit 2)."""
    import re

    for name, (low, high) in OPTION_BOUNDS.items():
        value = getattr(args, name, None)
        if value is not None and not low <= value <= high:
            raise InputError(f"--{name.replace('_', '-')}: {value} is outside {low}..{high}")
    device = getattr(args, "device", None)
    if device is not None and not re.fullmatch(r"cpu|mps|cuda(:[0-9]{1,3})?", device):
        raise InputError(f"--device: {device[:40]!r} is not cpu, mps or cuda[:N]")


def _run_to_train(args):
    """The RunSpec and run directory of ``train --record FILE`` or ``train --spec FILE --out DIR``."""
    from ..plan.job_files import read_json_file, read_record, reject_run_problems
    from ..runs.record import RunOptions
    from ..runs.spec import RunSpec

    if args.record:
        record = read_record(args.record)
        defaults = RunOptions()
        options = RunOptions(args.data_root or defaults.data_root, args.eval_batch_size or defaults.eval_batch_size)
        try:
            return record.run_spec(options, args.fail_at_epoch), record.files.directory
        except ValueError as error:
            raise InputError(f"{args.record}: not a valid run ({error})") from None
    else:
        if not args.out:
            raise InputError("train --spec needs --out (the run directory)")
        data, out, what = read_json_file(args.spec, "run spec"), Path(args.out), args.spec
        if not isinstance(data, dict):
            raise InputError(f"{what}: a run spec is a JSON object")
        data = {**data, **({"fail_at_epoch": args.fail_at_epoch} if args.fail_at_epoch is not None else {})}
        if args.data_root:
            data["dataset"] = {**data.get("dataset", {}), "root": args.data_root}
        if args.eval_batch_size:
            data["eval_batch_size"] = args.eval_batch_size
    try:
        run = RunSpec.from_dict(data)
    except (ValueError, TypeError, KeyError) as error:
        raise InputError(f"{what}: not a valid run ({type(error).__name__}: {error})") from None
    try:  # decoded: now the config's bounds (epochs, batch size, workers, registered method and backend)
        reject_run_problems(data, data.get("method"), data.get("model"), data.get("seed"))
    except InputError as error:
        raise InputError(f"{what}: {error}") from None
    return run, out


def _train(args) -> int:
    if args.outcome is None:
        return _train_run(args)[0]
    try:
        status, message = _train_run(args)
    except Exception as error:  # a sweep point's crash is recorded too, once its retries are used up
        import traceback

        traceback.print_exc()
        status, message = EXIT_TRAINING_ERROR, f"error: {type(error).__name__}: {error}"
    from ..io import atomic_write_json

    if status == 0:
        atomic_write_json(args.outcome, {"finished": True})
    elif status != EXIT_INTERRUPTED and args.attempt > args.retries:  # failed for good: scored as failed
        atomic_write_json(args.outcome, {"failed": f"exit {status} in attempt {args.attempt}: {message}"})
        return 0
    return status  # an interruption is never recorded: it is retried and resumes


def _failed(status: int, line: str) -> tuple[int, str]:
    print(line, file=sys.stderr)
    return status, line


def _train_run(args) -> tuple[int, str]:
    """Train the run: its exit status and, if it failed, the one line saying why."""
    from ..cluster.mps import packed_gpu_sharing
    from ..data import DatasetError
    from ..train import DeviceError, Interrupted, RunBusyError, TrainingError, train
    from ..train.signals import die_with_parent

    spec, out = _run_to_train(args)
    die_with_parent()  # no orphan trainer writing a run's files after its job ended
    try:
        with packed_gpu_sharing(args.device):  # packed CUDA runs share the GPU through MPS (untested on a GPU)
            metrics = train(spec, out, device=args.device, threads=args.threads, wait_for_lock=args.wait_for_lock)
    except Interrupted as error:
        return _failed(EXIT_INTERRUPTED, f"interrupted: {error}")
    except RunBusyError as error:
        return _failed(EXIT_BUSY, f"busy: {error}")
    except DeviceError as error:
        return _failed(EXIT_DEVICE_ERROR, f"error: {_shown(error)}")
    except DatasetError as error:
        return _failed(EXIT_DATA_ERROR, f"error: {_shown(error)}")
    except InputError as error:  # e.g. a tampered teacher or checkpoint file
        return _failed(EXIT_INPUT_ERROR, f"error: {_shown(error)}")
    except (TrainingError, ValueError) as error:
        return _failed(EXIT_TRAINING_ERROR, f"error: {_shown(error)}")
    print(f"{spec.run_id}: test accuracy {metrics['test_acc_final']:.2f}% after {metrics['epochs']} epochs "
          f"({metrics['wall_time_seconds']:.1f}s)", file=sys.stderr)
    return 0, ""


def _plan(args) -> int:
    from ..cluster.resources import summary as plan_summary
    from ..plan.build import ConfigError, build_plan, load_config, warmup_summary

    try:
        config = load_config(args.config)
        if args.epoch_seconds:
            config.setdefault("cluster", {})["epoch_seconds"] = {"default": args.epoch_seconds}
        plan = build_plan(config)
    except ConfigError as error:
        print(f"error: {args.config}: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if args.json:
        from ..runs.typed import encode

        print(json.dumps({"runs": {r: run.to_dict() for r, run in plan.runs.items()},
                          "tables": {t: encode(spec) for t, spec in plan.tables.items()}}, indent=1))
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
              f"(scored by {plan.config.sweeps.metric})")
    print(_cost_lines(plan, summary))
    print(f"Next: snakemake --cores 2 --configfile {args.config}   (add -n for a dry run); its tables, claims and "
          f"figures go to {plan.layout.views_dir}/")
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
    seconds = plan.config.cluster.epoch_seconds
    return (f"estimated GPU-hours: {summary['gpu_hours']:.1f}, {limit_text}, from the hand constants (epoch seconds "
            f"per model: {', '.join(f'{k}={v:g}' for k, v in seconds.items())}; LE explainer cost factors: "
            f"{', '.join(f'{k}={v:g}' for k, v in plan.config.cluster.explainer_cost.items())}); "
            "a pre-flight job measures them")


def _table(args) -> int:
    from ..analysis.tables import write_table
    from ..plan.job_files import read_spec
    from ..plan.views import TableSpec

    spec = read_spec(TableSpec, args.spec)
    return _reporting_errors(lambda: write_table(spec, Path(args.reported), metric=args.metric,
                                                 allow_missing=args.allow_missing_seeds))


def _select(args) -> int:
    from ..analysis.selection import describe, write_selection
    from ..plan.job_files import read_spec
    from ..plan.views import Selection

    spec = read_spec(Selection, args.spec)
    return _reporting_errors(lambda: print(describe(write_selection(spec)), file=sys.stderr))


def _figure(args) -> int:
    from ..analysis.figures import draw_figure
    from ..plan.job_files import read_spec
    from ..plan.views import FigureSpec

    spec = read_spec(FigureSpec, args.spec)
    _configure(args.device, args.threads)
    return _reporting_errors(lambda: draw_figure(spec, metric=args.metric, device=args.device,
                                                 reported=Path(args.reported) if args.reported else None))


def _analyse(args) -> int:
    from ..analysis.students import write_student_analysis
    from ..plan.job_files import read_spec
    from ..plan.views import AnalysisSpec

    spec = read_spec(AnalysisSpec, args.spec)
    _configure(args.device, args.threads)
    return _reporting_errors(lambda: write_student_analysis(spec, args.device))


def _claims(args) -> int:
    from ..claims.render import summary
    from ..claims.report import write_claims_report
    from ..plan.job_files import read_spec
    from ..plan.views import ClaimsSpec

    spec = read_spec(ClaimsSpec, args.spec)
    costs = (spec.cell_gpu_hours, spec.priced_in_paper_config)
    return _reporting_errors(lambda: print(summary(write_claims_report(
        spec, Path(args.reported), metric=args.metric, allow_missing=args.allow_missing_seeds), costs),
        file=sys.stderr))


def _summary(args) -> int:
    from ..analysis.headline import headline
    from ..io import atomic_write_text
    from ..runs.fingerprint import compare, fingerprint, read_expected

    def run() -> None:
        ours = fingerprint(args.results, args.name)
        if args.write_fingerprint:
            atomic_write_text(Path(args.fingerprint), json.dumps(ours, indent=1, sort_keys=True) + "\n")
            print(f"wrote {args.fingerprint}: {ours['runs']} runs, fingerprint {ours['fingerprint']}")
            return
        lines = compare(ours, read_expected(args.fingerprint), args.fingerprint)
        # a file (--out) gets Markdown for the README, and so does --markdown; printed, it is plain text
        text = headline(args.results, args.name, markdown=bool(args.out or args.markdown))
        text += "".join(f"- {line}\n" for line in lines)
        if args.out:
            atomic_write_text(Path(args.out), text)
        else:
            print(text, end="")

    return _reporting_errors(run)


def _reporting_errors(command) -> int:
    """Run an aggregation command; a missing or corrupt run file is one line naming it, not a traceback."""
    from ..analysis.reported import ReportedResultsError
    from ..runs.record import RunFileError

    try:
        command()
    except (RunFileError, ReportedResultsError) as error:
        print(f"error: {_shown(error)}", file=sys.stderr)
        return EXIT_TRAINING_ERROR
    return 0


def _configure(device: str, threads: int | None) -> None:
    """The trainer's device set-up for the commands that run models (fixed threads, fp32 on CUDA)."""
    from ..train.device import configure

    configure(device, threads)


def _merge_tests(args) -> int:
    import io

    import pandas as pd

    from ..analysis.escape import csv_frame
    from ..io import atomic_write_text, read_text

    frames = []
    for path in args.inputs:  # result files: their text cells escaped again
        try:
            frames.append(pd.read_csv(io.StringIO(read_text(path, "csv"))))
        except (ValueError, pd.errors.ParserError) as error:  # the door's refusals are InputErrors
            if isinstance(error, InputError):
                raise
            raise InputError(f"{path}: not a CSV table ({' '.join(str(error).split())[:120]})") from None
    atomic_write_text(args.out, csv_frame(pd.concat(frames, ignore_index=True)).to_csv(index=False))
    return 0


def _worker(args) -> int:
    from ..cluster.worker import serve

    try:
        serve(args.socket, main, args.parent_pid, remove_directory=args.remove_directory)
    except OSError as error:  # e.g. a socket path too long for AF_UNIX, or a directory not writable
        print(f"error: the worker cannot serve on {args.socket}: {error}", file=sys.stderr)
        return 1
    return 0


def _preflight(args) -> int:
    from ..cluster.preflight import PreflightError, run_preflight
    from ..plan.job_files import read_json_file

    try:
        spec = read_json_file(args.spec, "pre-flight spec")
        if args.data_root and isinstance(spec, dict):  # where the data is: the job's environment, like the runs'
            spec = {**spec, "data_root": args.data_root}
        report = run_preflight(spec, args.threads)
    except PreflightError as error:
        print(str(error), file=sys.stderr)
        return error.exit_code
    device = report["device"]
    print(f"pre-flight passed on {report['host']} ({device.get('name', device['device'])}, torch {device['torch']}): "
          f"{len(report['kinds'])} step kind(s) measured", file=sys.stderr)
    return 0


def _download(args) -> int:
    from ..data import available_datasets, dataset_source

    fetchable = [name for name in available_datasets() if dataset_source(name).downloadable]
    if args.dataset not in fetchable:
        print(f"error: download: {args.dataset!r} is not a dataset to fetch; choose one of {', '.join(fetchable)}",
              file=sys.stderr)
        return EXIT_CONFIG_ERROR
    try:
        dataset_source(args.dataset).download(Path(args.root))
    except OSError as error:  # offline, a proxy, a full disk: urllib and torchvision raise OSError subclasses
        reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
        print(f"error: download {args.dataset}: {_shown(reason)} (no internet here? copy the files into "
              f"{args.root} from a machine that has it)", file=sys.stderr)
        return EXIT_DATA_ERROR
    print(f"{args.dataset} is ready under {Path(args.root).resolve()}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
