"""Hydra callbacks for sweeps and multi-process jobs, and the sweep summary.

`SweepSummary` runs when a sweep (`-m`, an Optuna search, a SLURM array) ends. It reads
every job directory of the sweep (`run.json`, `.hydra/`, `metrics.csv`) and writes

- `<sweep_dir>/summary.csv`: one row per job: job number, status, objective, the swept
  values, the test metrics, duration, run directory, error (for failed jobs) and the
  job's full overrides;
- `<sweep_dir>/summary.png`: the objective per trial (failed trials marked), with the
  best-so-far line when the direction is known;
- a table on the terminal.

The objective is the job's `optimized_metric`: its `objective` in run.json if the runner
recorded one, otherwise the metric's last logged value in `metrics.csv` (which is what the
train function returned to the sweeper). Failed jobs are listed with their error; they
never stop the summary. `python -m litzoo.platform.sweep <sweep_dir>` rebuilds it, e.g.
for a sweep whose jobs were still running when the launcher returned.

`OptunaFailedTrials` turns a NaN objective into a failed Optuna trial instead of a crashed
search. `RankLogFiles` gives processes that a launcher starts *without* our command line (the
tasks of a multi-GPU SLURM job submitted by submitit) the same rank-suffixed log files
that `ranks.ddp_child_argv` gives processes started from the command line.

Nothing here imports torch; matplotlib is imported only to draw the plot.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("litzoo")

SUMMARY_CSV = "summary.csv"
SUMMARY_PNG = "summary.png"


@dataclass
class JobRow:
    """What the summary says about one job of a sweep."""

    job: str
    run_dir: Path
    status: str
    overrides: list[str]
    objective_name: str | None = None
    objective: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    duration_s: float | None = None
    error: str | None = None
    number: int | None = None


# --- reading a sweep directory -----------------------------------------------------------------


def find_job_dirs(sweep_dir: Path) -> list[Path]:
    """Job directories under a sweep directory (those with a run.json or Hydra's .hydra/), in job order."""
    found: set[Path] = set()
    for pattern in ("*/run.json", "*/.hydra/overrides.yaml", "*/*/run.json", "*/*/.hydra/overrides.yaml"):
        for path in sweep_dir.glob(pattern):
            job = path.parent.parent if path.parent.name == ".hydra" else path.parent
            if ".submitit" not in job.parts:
                found.add(job)
    return sorted(found, key=lambda p: (_job_number(p) is None, _job_number(p) or 0, _natural_key(str(p))))


def read_job(job_dir: Path, sweep_dir: Path, default_metric: str | None = None) -> JobRow:
    """The summary row of one job directory."""
    record = _read_json(job_dir / "run.json")
    config = _load_yaml(job_dir / ".hydra" / "config.yaml")
    overrides = list(record.get("overrides") or _load_list(job_dir / ".hydra" / "overrides.yaml"))
    metric = (config.get("optimized_metric") if config else None) or default_metric
    status = record.get("status") or "no record"
    row = JobRow(
        job=str(job_dir.relative_to(sweep_dir)) if job_dir.is_relative_to(sweep_dir) else str(job_dir),
        run_dir=job_dir, status=status, overrides=[str(o) for o in overrides], objective_name=metric,
        metrics={k: float(v) for k, v in (record.get("metrics") or {}).items() if _is_number(v)},
        duration_s=record.get("duration_s"), error=record.get("error"), number=_job_number(job_dir),
    )
    if metric and status == "completed":
        recorded = record.get("objective")
        if isinstance(recorded, Mapping):
            recorded = recorded.get(metric)
        if _is_number(recorded):
            row.objective = float(recorded)
        elif metric in row.metrics:
            row.objective = row.metrics[metric]
        else:
            row.objective = last_logged(job_dir / "metrics.csv", metric)
    return row


def last_logged(csv_path: Path, name: str) -> float | None:
    """The last value of metric `name` in Lightning's metrics.csv (None if never logged)."""
    if not csv_path.is_file():
        return None
    value = None
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get(name) not in (None, ""):
                value = float(row[name])
    return value


def swept_keys(rows: Sequence[JobRow]) -> list[str]:
    """The override keys whose values differ between jobs (all of a single job's keys)."""
    per_job = [dict(_split_override(o) for o in row.overrides) for row in rows]
    keys: list[str] = []
    for values in per_job:
        for key in values:
            if key not in keys:
                keys.append(key)
    if len(per_job) <= 1:
        return keys
    return [k for k in keys if len({values.get(k) for values in per_job}) > 1]


def direction_of(config: DictConfig | None, rows: Sequence[JobRow]) -> str | None:
    """"maximize", "minimize" or None: the sweeper's direction, else the task's monitor mode."""
    if config is not None:
        direction = OmegaConf.select(config, "hydra.sweeper.direction", default=None)
        if isinstance(direction, str):
            return direction.lower()
        if direction is not None and len(direction) == 1:
            return str(direction[0]).lower()
    for row in rows:
        job_config = _load_yaml(row.run_dir / ".hydra" / "config.yaml")
        if job_config and row.objective_name and OmegaConf.select(job_config, "task.monitor") == row.objective_name:
            mode = OmegaConf.select(job_config, "task.monitor_mode")
            return {"max": "maximize", "min": "minimize"}.get(str(mode))
    return None


def best_row(rows: Sequence[JobRow], direction: str | None) -> JobRow | None:
    scored = [r for r in rows if r.objective is not None and math.isfinite(r.objective)]
    if not scored or direction not in ("maximize", "minimize"):
        return None
    pick = max if direction == "maximize" else min
    return pick(scored, key=lambda r: r.objective)


# --- writing the summary -----------------------------------------------------------------------


def summarize(sweep_dir: Path, config: DictConfig | None = None, show: bool = True) -> list[JobRow]:
    """Write summary.csv and summary.png into `sweep_dir`, print the table; returns the rows."""
    sweep_dir = Path(sweep_dir)
    default_metric = OmegaConf.select(config, "optimized_metric", default=None) if config is not None else None
    rows = [read_job(d, sweep_dir, default_metric) for d in find_job_dirs(sweep_dir)]
    if not rows:
        log.warning("No job directories found in %s; no sweep summary written.", sweep_dir)
        return rows
    keys = swept_keys(rows)
    direction = direction_of(config, rows)
    best = best_row(rows, direction)
    write_csv(sweep_dir / SUMMARY_CSV, rows, keys, best)
    try:
        plot_objective(sweep_dir / SUMMARY_PNG, rows, direction)
    except Exception:  # a plot is a convenience; the CSV and the table are the summary
        log.warning("Could not plot the sweep objective", exc_info=True)
    if show:
        print_table(rows, keys, best, sweep_dir)
    return rows


def write_csv(path: Path, rows: Sequence[JobRow], keys: Sequence[str], best: JobRow | None) -> None:
    metric_names = sorted({name for row in rows for name in row.metrics})
    objective_names = sorted({row.objective_name for row in rows if row.objective_name})
    header = ["job", "status", "objective", "optimized_metric", "best", *keys, *metric_names,
              "duration_s", "run_dir", "error", "overrides"]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            values = dict(_split_override(o) for o in row.overrides)
            writer.writerow([
                row.job, row.status, _csv_number(row.objective), row.objective_name or ",".join(objective_names),
                "yes" if row is best else "", *[values.get(k, "") for k in keys],
                *[_csv_number(row.metrics.get(m)) for m in metric_names],
                _csv_number(row.duration_s), str(row.run_dir), row.error or "", " ".join(row.overrides),
            ])


def print_table(rows: Sequence[JobRow], keys: Sequence[str], best: JobRow | None, sweep_dir: Path) -> None:
    from rich import get_console
    from rich.table import Table

    names = sorted({r.objective_name for r in rows if r.objective_name})
    table = Table(title=f"Sweep summary: {len(rows)} job(s) in {sweep_dir}", title_style="bold")
    table.add_column("job", style="cyan")
    table.add_column("overrides" if keys else "", overflow="fold")
    table.add_column("status")
    table.add_column(", ".join(names) or "objective", justify="right")
    table.add_column("run directory / error", overflow="fold")
    for row in rows:
        values = dict(_split_override(o) for o in row.overrides)
        swept = " ".join(f"{k}={values[k]}" for k in keys if k in values)
        status = {"completed": "[green]completed[/green]", "failed": "[red]failed[/red]"}.get(row.status,
                                                                                             row.status)
        objective = "" if row.objective is None else f"{row.objective:.6g}" + (" (best)" if row is best else "")
        where = str(row.run_dir) + (f"\n[red]{_shorten(row.error, 300)}[/red]" if row.error else "")
        table.add_row(row.job, swept, status, objective, where)
    console = get_console()
    console.print(table)
    console.print(f"[bold]Summary:[/bold] {sweep_dir / SUMMARY_CSV}, {sweep_dir / SUMMARY_PNG}", soft_wrap=True)


def plot_objective(path: Path, rows: Sequence[JobRow], direction: str | None) -> Path | None:
    """The objective of each trial in job order; failed trials as red crosses on the x axis."""
    names = sorted({r.objective_name for r in rows if r.objective_name})
    if not names:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r.number if r.number is not None else i for i, r in enumerate(rows)]
    ok = [(x, r.objective) for x, r in zip(xs, rows) if r.objective is not None and math.isfinite(r.objective)]
    bad = [x for x, r in zip(xs, rows) if r.objective is None or not math.isfinite(r.objective)]
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    if ok:
        ax.plot([x for x, _ in ok], [y for _, y in ok], "o", color="tab:blue", label="completed trial")
        if direction in ("maximize", "minimize"):
            pick = max if direction == "maximize" else min
            best_so_far, current = [], None
            for _, y in ok:
                current = y if current is None else pick(current, y)
                best_so_far.append(current)
            ax.step([x for x, _ in ok], best_so_far, where="post", color="tab:orange", label="best so far")
    if bad:  # on the bottom edge of the plot (x in data units, y in axes units): they have no value
        ax.plot(bad, [0.04] * len(bad), "x", color="tab:red", markersize=9, label="failed / no value",
                transform=ax.get_xaxis_transform(), clip_on=False)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("job (trial) number")
    ax.set_ylabel(", ".join(names))
    ax.set_title(f"{', '.join(names)} per trial" + (f" ({direction})" if direction else ""))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --- Hydra callbacks ---------------------------------------------------------------------------


class SweepSummary(Callback):
    """Hydra callback: write the sweep summary when a multirun ends (registered in conf/hydra/default.yaml)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.enabled:
            return
        try:
            sweep_dir = Path(str(config.hydra.sweep.dir))
            summarize(sweep_dir, config)
        except Exception:  # the jobs ran; a summary problem must not turn the sweep into a failure
            log.warning("Could not write the sweep summary", exc_info=True)


class OptunaFailedTrials(Callback):
    """Hydra callback: a trial whose objective is NaN is reported to Optuna as failed.

    The runner returns NaN for a failed job of a sweep that optimizes a metric, and a
    diverged run can return NaN too. hydra-optuna-sweeper 1.3 with optuna 2.10 then
    crashes the whole search: `study.tell` refuses NaN, and the sweeper's fallback tells
    a failed state *with* that value, which optuna refuses again. A value that is not a
    float (None) takes the sweeper's failed-trial path instead, so the search goes on.
    Only applies when the sweeper is Optuna's; runs inside the job, with every launcher.
    """

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        from hydra.core.utils import JobStatus

        target = str(OmegaConf.select(config, "hydra.sweeper._target_", default="") or "")
        if "optuna" not in target.lower() or job_return is None or job_return.status != JobStatus.COMPLETED:
            return
        value = job_return.return_value
        if isinstance(value, float) and math.isnan(value):
            log.warning("Objective is NaN: reporting this trial to Optuna as failed.")
            job_return.return_value = None


class RankLogFiles(Callback):
    """Hydra callback: rank-suffixed log files for ranks a launcher started without our command line.

    A multi-GPU SLURM job submitted by submitit runs the whole Hydra job once per task; every
    task would log into the same `train.log` and rewrite `.hydra/`. In a task whose global
    rank (RANK / SLURM_PROCID / SUBMITIT_LOCAL_GLOBALID) is not 0, and whose job name still
    is the plain one, this moves the log file to `<job name>_rank<R>.log` and redacts the
    `.hydra/` files it just wrote (rank 0's runner redacts its own).
    """

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        from litzoo.platform.ranks import launcher_rank

        rank = launcher_rank()
        name = str(OmegaConf.select(config, "hydra.job.name", default="train"))
        if not rank or re.search(r"(_rank\d+|_process_\d+)$", name):
            return
        run_dir = Path(str(config.hydra.runtime.output_dir))
        target = run_dir / f"{name}_rank{rank}.log"
        root = logging.getLogger()
        for handler in list(root.handlers):
            if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == run_dir:
                replacement = logging.FileHandler(target, mode="a")
                replacement.setFormatter(handler.formatter)
                replacement.setLevel(handler.level)
                root.removeHandler(handler)
                handler.close()
                root.addHandler(replacement)
        _redact_hydra_outputs(run_dir / ".hydra")


def _redact_hydra_outputs(hydra_dir: Path) -> None:
    from litzoo.platform.secrets import redact

    for path in hydra_dir.glob("*.yaml"):
        try:
            original = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
            cleaned = redact(original)
            if cleaned != original:
                tmp = path.with_name(f".{path.name}.rank{os.getpid()}")
                OmegaConf.save(OmegaConf.create(cleaned), tmp)
                os.replace(tmp, path)
        except Exception:  # another rank may be rewriting the same file; rank 0 redacts it too
            continue


# --- helpers -----------------------------------------------------------------------------------


def _split_override(override: str) -> tuple[str, str]:
    key, _, value = str(override).partition("=")
    return key.lstrip("+~"), value


def _job_number(job_dir: Path) -> int | None:
    hydra = _load_yaml(job_dir / ".hydra" / "hydra.yaml")
    number = OmegaConf.select(hydra, "hydra.job.num", default=None) if hydra else None
    if isinstance(number, int):
        return number
    return int(job_dir.name) if job_dir.name.isdigit() else None


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _load_yaml(path: Path) -> DictConfig | None:
    try:
        loaded = OmegaConf.load(path)
    except Exception:
        return None
    return loaded if isinstance(loaded, DictConfig) else None


def _load_list(path: Path) -> list[Any]:
    try:
        loaded = OmegaConf.load(path)
    except Exception:
        return []
    return list(OmegaConf.to_container(loaded)) if not isinstance(loaded, DictConfig) else []


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _csv_number(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _shorten(text: str | None, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m litzoo.platform.sweep <sweep_dir>`: (re)write a sweep directory's summary."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m litzoo.platform.sweep", description=main.__doc__)
    parser.add_argument("sweep_dir", type=Path)
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(f"Error: {args.sweep_dir} is not a directory.", file=sys.stderr)
        return 2
    multirun = _load_yaml(args.sweep_dir / "multirun.yaml")
    rows = summarize(args.sweep_dir, multirun)
    return 0 if rows else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
