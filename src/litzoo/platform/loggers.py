"""What a run logs, and loggers that continue, rather than restart, when a run is resumed in place.

Lightning's CSV logger deletes an existing `metrics.csv` when it starts; a
resumed run must instead keep the rows written up to its checkpoint and drop
the ones logged after it (they are logged again), so each step appears exactly
once.
TensorBoard gets the same effect from `purge_step`, W&B by reusing the run id.

`DenseLoggingForShortRuns` logs steps often enough that a short run's curves have points
to draw; `LogDataSummary` writes the split sizes and the batch decision at DEBUG level
(`hydra.verbose=true`).
"""

from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

log = logging.getLogger("litzoo")


class _ContinuingWriter(ExperimentWriter):
    """Appends to an existing metrics.csv (same columns) instead of deleting it."""

    def _check_log_dir_exists(self) -> None:
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as f:
                header = next(csv.reader(f), [])
            self.metrics_keys = sorted(header)


class RunCSVLogger(CSVLogger):
    """`metrics.csv` (+ `hparams.yaml`) at the top of the run directory, continued on resume.

    `resume_rows`: the number of rows the file held when the checkpoint being resumed was
    written (later rows are dropped: the resumed run logs those steps again); `pending_rows`:
    the rows of the checkpointed step or epoch, which Lightning logged just after the save.
    """

    def __init__(
        self,
        save_dir: str | Path,
        resume_rows: int | None = None,
        pending_rows: list[dict[str, float]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(save_dir=save_dir, name="", version="", **kwargs)
        path = Path(self.log_dir) / "metrics.csv"
        if resume_rows is not None:
            keep_rows(path, resume_rows, pending_rows or [])
        elif path.exists():  # a fresh run never inherits old rows
            path.unlink()

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.log_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return self._experiment


def count_rows(path: Path) -> int:
    """Data rows of a CSV file (0 if it does not exist)."""
    if not path.is_file():
        return 0
    with open(path, newline="") as f:
        return max(sum(1 for _ in csv.reader(f)) - 1, 0)


def keep_rows(path: Path, count: int, extra: list[dict[str, Any]]) -> None:
    """Keep the first `count` rows of metrics.csv, append `extra` rows, rewrite atomically."""
    rows: list[dict[str, Any]] = []
    fields: list[str] = []
    if path.is_file():
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            fields = list(reader.fieldnames or [])
            rows = list(reader)[:count]
    for row in extra:
        fields += sorted(k for k in row if k not in fields)
    rows += [{k: row[k] for k in row} for row in extra]
    if not fields:
        return
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted(fields))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


class DenseLoggingForShortRuns(pl.Callback):
    """Log training steps often enough for `min_points` points per curve over the whole run.

    `trainer.log_every_n_steps` (10 by default) suits long runs; a run of 30 steps would log
    3 points (a 3-step run none) and its `curves.png` would show single dots. The interval is
    lowered, never raised, from the run's total steps, which a resumed run computes the same
    way, so its metrics.csv continues with the same rows.
    """

    def __init__(self, min_points: int = 50) -> None:
        self.min_points = int(min_points)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        total = trainer.estimated_stepping_batches
        interval = trainer.log_every_n_steps
        if not interval or not math.isfinite(total) or self.min_points <= 0:
            return
        dense = max(1, int(total) // self.min_points)
        if dense < interval:
            log.debug("Logging every %d steps instead of %d: %d steps in all", dense, interval, int(total))
            trainer.log_every_n_steps = dense


class LogDataSummary(pl.Callback):
    """At DEBUG level (`hydra.verbose=true`), once the datamodule is set up: the samples per split
    and how the batch was decided (per device, eval, world size, accumulation)."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        datamodule = trainer.datamodule
        if datamodule is None or not log.isEnabledFor(logging.DEBUG):
            return
        sizes = {}
        for split in ("train", "val", "test"):
            dataset = getattr(datamodule, f"{split}_set", None)
            if dataset is not None:
                try:
                    sizes[split] = len(dataset)
                except TypeError:  # an iterable dataset without a length
                    sizes[split] = "?"
        name = type(datamodule).__name__
        log.debug(
            "%s (%s): %s samples",
            name,
            getattr(stage, "value", stage),
            ", ".join(f"{k} {v}" for k, v in sizes.items()) or "no splits",
        )
        batch, eval_batch = (
            getattr(datamodule, "batch_size", None),
            getattr(datamodule, "eval_batch_size", None),
        )
        log.debug(
            "%s batches: %s per device for training, %s for evaluation (data.batch_size, data.eval_batch_size); "
            "world size %d (%d device(s) x %d node(s)), accumulate_grad_batches=%d",
            name,
            batch,
            eval_batch,
            trainer.world_size,
            trainer.num_devices,
            trainer.num_nodes,
            trainer.accumulate_grad_batches,
        )
