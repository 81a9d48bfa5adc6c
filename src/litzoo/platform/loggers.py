"""Loggers that continue, rather than restart, when a run is resumed in place.

Lightning's CSV logger deletes an existing `metrics.csv` when it starts; a
resumed run must instead keep the rows written up to its checkpoint and drop
the ones logged after it (they are logged again), so each step appears exactly
once.
TensorBoard gets the same effect from `purge_step`, W&B by reusing the run id.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


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

    def __init__(self, save_dir: str | Path, resume_rows: int | None = None,
                 pending_rows: list[dict[str, float]] | None = None, **kwargs: Any) -> None:
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
