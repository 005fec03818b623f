"""What a run reports as it goes: one progress line per epoch and ``epochs.csv``."""
from __future__ import annotations

import csv
import io
import logging
import os
import sys
from typing import Any

from ..cluster import EPOCH_LINES_ENV

log = logging.getLogger("introspect.train")

# dead_explanations: the share of the maps the method learns from that were all zero (LE: the true class's,
# the reference of its targets); dead_maps_all_classes: LE's every class's maps. Empty without explanations.
EPOCH_COLUMNS = ["epoch", "stage", "lr", "loss", "loss_terms", "train_acc", "val_acc", "test_acc",
                 "dead_explanations", "dead_maps_all_classes", "seconds"]


def progress_line(run_id: str, last_epoch: int, row: dict[str, Any], seconds_per_epoch: float) -> str:
    """One line per epoch for the job's stdout and log: ``<run> epoch 3/200 lr 0.1 loss 1.2345
    acc train 55.10 val 52.00 test 51.80 time 12.3s ETA 0:39:48`` (the ETA at this process's pace)."""
    eta = (last_epoch - row["epoch"]) * seconds_per_epoch
    return (f"{run_id} epoch {row['epoch']}/{last_epoch} lr {row['lr']:.4g} loss {row['loss']:.4f} "
            f"acc train {row['train_acc']:.2f} val {row['val_acc']:.2f} test {row['test_acc']:.2f} "
            f"time {row['seconds']:.1f}s ETA {clock(eta)}")


def clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def report_progress(line: str) -> None:
    """The workflow sends a job's stderr (the log) to its log file and its stdout to the Snakemake
    or SLURM output, so the line goes to both (to the log only where EPOCH_LINES_ENV is "log"); flushed,
    as stdout is a pipe or file there."""
    log.info("%s", line)
    if os.environ.get(EPOCH_LINES_ENV) != "log":
        print(line, file=sys.stdout, flush=True)


def epochs_csv(history: list[dict[str, Any]]) -> str:
    """``epochs.csv``: one row per epoch; a column a row lacks (older checkpoints' rows) is empty."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EPOCH_COLUMNS, lineterminator="\n", restval="")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (round(v, 6) if isinstance(v, float) else ("" if v is None else v))
                         for k, v in row.items()})
    return buffer.getvalue()
