"""The benchmark CSV: one row per (model, backend, device, batch, input size) measurement.

Rows are appended, as timm's ``benchmark-infer-*.csv`` files collect one row per model, so a
file grows into a table over many models and machines; the report reads it back
(:func:`read_rows`). The columns are fixed (:data:`COLUMNS`); appending to a file whose header
differs is refused rather than silently producing a ragged table. Nothing here imports torch.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from litzoo.errors import ConfigError, DataError

COLUMNS = (
    "model",
    "task",
    "data",
    "backend",
    "device",
    "precision",
    "batch_size",
    "input_size",
    "samples_per_sec",
    "latency_ms_median",
    "latency_ms_p90",
    "peak_mem_mb",
    "memory_measure",
    "params",
    "threads",
    "warmup",
    "repeats",
    "setup_s",
    "torch_version",
    "runtime",
    "date",
    "overrides",
)
NUMERIC = {
    "batch_size": int,
    "samples_per_sec": float,
    "latency_ms_median": float,
    "latency_ms_p90": float,
    "peak_mem_mb": float,
    "params": int,
    "threads": int,
    "warmup": int,
    "repeats": int,
    "setup_s": float,
}


def append_rows(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Append rows to the CSV at `path` (created with its header when new)."""
    path = Path(path).expanduser()
    rows = list(rows)
    existing = _header(path)
    if existing is not None and existing != list(COLUMNS):
        raise ConfigError(
            f"{path} is a CSV with other columns ({', '.join(existing[:6])}, ...), not a litzoo benchmark "
            f"file; appending would mix two tables. Give csv=<another file>."
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            if existing is None:
                writer.writeheader()
            for row in rows:
                writer.writerow({key: _cell(row.get(key)) for key in COLUMNS})
    except OSError as error:
        raise ConfigError(
            f"Cannot write the benchmark CSV {path} ({error}). Give csv=<a writable path>."
        ) from None
    return path


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a benchmark CSV with numbers as numbers (an empty cell is None)."""
    path = Path(path).expanduser()
    header = _header(path)
    if header is None:
        raise DataError(
            f"Benchmark CSV {path} does not exist or is empty. Give a file python -m litzoo.benchmark wrote."
        )
    missing = [c for c in ("model", "task", "backend", "samples_per_sec", "peak_mem_mb") if c not in header]
    if missing:
        raise DataError(
            f"{path} is not a litzoo benchmark CSV: it has no {', '.join(missing)} column. Give a file "
            "python -m litzoo.benchmark wrote."
        )
    rows = []
    with open(path, newline="") as f:
        for number, row in enumerate(csv.DictReader(f), start=2):
            parsed: dict[str, Any] = dict(row)
            for key, kind in NUMERIC.items():
                value = row.get(key)
                try:
                    parsed[key] = kind(float(value)) if value not in (None, "") else None
                except ValueError:
                    raise DataError(f"{path}, line {number}: {key}={value!r} is not a number.") from None
            rows.append(parsed)
    return rows


def _header(path: Path) -> list[str] | None:
    try:
        with open(path, newline="") as f:
            return next(csv.reader(f), None)
    except FileNotFoundError:
        return None


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
