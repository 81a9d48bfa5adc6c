"""Reading run directories for a report: what each run is, how it scored, where its files are.

Every value comes from the run directory through :class:`~litzoo.platform.run_dir.RunDir`:
``run.json`` (status, task/model/data, test metrics, duration, overrides), ``.hydra/config.yaml``
(the task's monitored metric and its direction) and ``metrics.csv`` (the monitored metric's best
logged value: the score of the checkpoint the run kept). A path given to the report is a run
directory when it holds ``run.json``; otherwise every run directory below it (a sweep, or a
whole ``outputs/`` tree) is read. Nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litzoo.platform.run_dir import RECORD_NAME, RunDir


@dataclass
class RunSummary:
    """One run as the report shows it."""

    path: Path
    status: str
    task: str
    model: str
    data: str
    overrides: list[str]
    metrics: dict[str, float]
    monitor: str | None = None
    monitor_mode: str = "max"
    monitor_value: float | None = (
        None  # best logged value of `monitor` (its last, for a monitor_mode it cannot rank)
    )
    duration_s: float | None = None
    started_at: str | None = None
    seed: Any = None
    global_batch_size: Any = None
    reproduce: str | None = None
    files: dict[str, Path] = field(default_factory=dict)  # curves.png, metrics.csv, train.log, run.json

    @property
    def label(self) -> str:
        return self.model if self.path.name == self.model else f"{self.model} ({self.path.name})"


ARTIFACTS = ("curves.png", "metrics.csv", "train.log", RECORD_NAME)


def find_runs(paths: Sequence[str | Path]) -> tuple[list[Path], list[Path]]:
    """The run directories under `paths` (in the order given, each sweep's in its own order), and
    the paths that hold none (no run.json in them or below them)."""
    from litzoo.platform.sweep import find_job_dirs

    runs: list[Path] = []
    empty: list[Path] = []
    for given in paths:
        path = Path(given).expanduser()
        if (path / RECORD_NAME).is_file():
            found = [path]
        elif path.is_dir():
            jobs = [job for job in find_job_dirs(path) if (job / RECORD_NAME).is_file()]
            deeper = sorted(
                record.parent for record in path.rglob(RECORD_NAME) if ".submitit" not in record.parts
            )
            found = jobs + [run for run in deeper if run not in jobs]
        else:
            found = []
        if not found:
            empty.append(path)
        runs.extend(run for run in found if run not in runs)
    return runs, empty


def read_run(path: Path) -> RunSummary:
    """The report's view of one run directory."""
    from omegaconf import OmegaConf

    from litzoo.errors import LitzooError

    run = RunDir(path)
    record = run.record()
    try:
        config = run.config()
    except LitzooError:
        config = None
    monitor = OmegaConf.select(config, "task.monitor", default=None) if config is not None else None
    mode = OmegaConf.select(config, "task.monitor_mode", default="max") if config is not None else "max"
    summary = RunSummary(
        path=run.path,
        status=str(record.get("status") or "unknown"),
        task=str(record.get("task") or _select(config, "task.name")),
        model=str(record.get("model") or _select(config, "model.name")),
        data=str(record.get("data") or _select(config, "data.name")),
        overrides=[str(o) for o in (record.get("overrides") or run.overrides())],
        metrics={k: float(v) for k, v in (record.get("metrics") or {}).items() if _is_number(v)},
        monitor=str(monitor) if monitor else None,
        monitor_mode=str(mode),
        duration_s=record.get("duration_s"),
        started_at=record.get("started_at"),
        seed=record.get("seed"),
        global_batch_size=record.get("global_batch_size"),
        reproduce=record.get("reproduce"),
        files={name: run.artifact(name) for name in ARTIFACTS if run.artifact(name).is_file()},
    )
    if summary.monitor and "metrics.csv" in summary.files:
        summary.monitor_value = best_logged(
            summary.files["metrics.csv"], summary.monitor, summary.monitor_mode
        )
    return summary


def best_logged(csv_path: Path, name: str, mode: str) -> float | None:
    """The best value of metric `name` in a metrics.csv (`mode` max or min; otherwise the last)."""
    from litzoo.platform.plots import read_metrics

    values = [value for _, value in read_metrics(csv_path).get(name, [])]
    if not values:
        return None
    return max(values) if mode == "max" else min(values) if mode == "min" else values[-1]


def _select(config: Any, key: str) -> str:
    from omegaconf import OmegaConf

    return str(OmegaConf.select(config, key, default="?")) if config is not None else "?"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
