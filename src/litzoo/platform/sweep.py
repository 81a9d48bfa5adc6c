"""Hydra callbacks for sweeps and multi-process jobs, and the sweep summary.

`SweepSummary` runs when a sweep (`-m`, an Optuna search, a SLURM array) ends. It reads
every job directory of the sweep (`run.json`, `.hydra/`, `metrics.csv`) and writes

- `<sweep_dir>/summary.csv`: one row per job: job number, status, objective, the swept
  values, the test metrics, duration, run directory, error (for failed jobs) and the
  job's full overrides;
- `<sweep_dir>/summary.png`: the objective against the swept values for a grid sweep, or per
  trial with the best-so-far line for a search (`litzoo.platform.sweep_plot`);
- a table on the terminal, and the paths of the files it wrote (only those).

The objective is the job's `optimized_metric`, or, when none is set (a plain `-m` grid), the
task's monitored metric (`task.monitor`, the one checkpoints are ranked by; `task.monitor_mode`
gives the direction): its `objective` in run.json if the runner recorded one, otherwise the
metric's last logged value in `metrics.csv` (which is what the train function returned to the
sweeper). A list of metrics (a multi-objective search) gets one column per metric. Failed
jobs are listed with their error; they never stop the summary. A trial that an Optuna
search pruned is listed as `pruned` (from the search's trials.csv) and is never the best.
`python -m litzoo.platform.sweep <sweep_dir>` rebuilds it, e.g.
for a sweep whose jobs were still running when the launcher returned.

`OptunaFailedTrials` turns a NaN objective into a failed trial for hydra-optuna-sweeper, which
would otherwise crash (litzoo's own sweeper needs no help). `RankLogFiles` gives processes
that a launcher starts *without* our command line (the tasks of a multi-GPU SLURM job
submitted by submitit) the same rank-suffixed log files that `ranks.ddp_child_argv` gives
processes started from the command line.

Nothing here imports torch; matplotlib is imported only to draw the plot.
"""

from __future__ import annotations

import csv
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

from litzoo.platform.run_dir import RunDir

log = logging.getLogger("litzoo")

SUMMARY_CSV = "summary.csv"
SUMMARY_PNG = "summary.png"
# Written by an Optuna search (hydra_plugins.litzoo_optuna_sweeper): every trial, and the best.
TRIALS_CSV = "trials.csv"
SEARCH_RESULTS = "optimization_results.yaml"


@dataclass
class JobRow:
    """What the summary says about one job of a sweep."""

    job: str
    run_dir: Path
    status: str
    overrides: list[str]
    objective_name: str | None = None
    objective: float | None = None
    objectives: dict[str, float] = field(default_factory=dict)  # every metric of a multi-objective search
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


def read_job(job_dir: Path, sweep_dir: Path, default_metric: Any = None) -> JobRow:
    """The summary row of one job directory."""
    record = RunDir(job_dir).record()
    config = _load_yaml(job_dir / ".hydra" / "config.yaml")
    overrides = list(record.get("overrides") or _load_list(job_dir / ".hydra" / "overrides.yaml"))
    names = objective_names(config, default_metric)
    status = record.get("status") or "no record"
    row = JobRow(
        job=str(job_dir.relative_to(sweep_dir)) if job_dir.is_relative_to(sweep_dir) else str(job_dir),
        run_dir=job_dir,
        status=status,
        overrides=[str(o) for o in overrides],
        objective_name=names[0] if names else None,
        metrics={k: float(v) for k, v in (record.get("metrics") or {}).items() if _is_number(v)},
        duration_s=record.get("duration_s"),
        error=record.get("error"),
        number=_job_number(job_dir),
    )
    if names and status == "completed":
        recorded = record.get("objective")
        if not isinstance(recorded, (Mapping, list)):
            recorded = {names[0]: recorded}
        elif isinstance(recorded, list):
            recorded = dict(zip(names, recorded))
        for name in names:
            value = recorded.get(name)
            if _is_number(value):
                row.objectives[name] = float(value)
            elif name in row.metrics:
                row.objectives[name] = row.metrics[name]
            elif (logged := last_logged(job_dir / "metrics.csv", name)) is not None:
                row.objectives[name] = logged
        row.objective = row.objectives.get(names[0])
    return row


def objective_names(job_config: DictConfig | None, default: Any = None) -> list[str]:
    """The metric(s) a job is judged by: its `optimized_metric`, the sweep's, else its task's monitor."""
    for names in (
        job_config.get("optimized_metric") if job_config else None,
        default,
        OmegaConf.select(job_config, "task.monitor", default=None) if job_config else None,
    ):
        if names:
            return [str(names)] if isinstance(names, str) else [str(n) for n in names]
    return []


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
    """ "maximize", "minimize" or None: the sweeper's direction, else the task's monitor mode."""
    if config is not None:
        direction = OmegaConf.select(config, "hydra.sweeper.direction", default=None)
        if isinstance(direction, str):
            return direction.lower()
        if direction is not None and len(direction) == 1:
            return str(direction[0]).lower()
    if len({name for row in rows for name in row.objectives}) > 1:
        return None  # several objectives: no single best (the search's trials.csv has its Pareto front)
    for row in rows:
        job_config = _load_yaml(row.run_dir / ".hydra" / "config.yaml")
        if (
            job_config
            and row.objective_name
            and OmegaConf.select(job_config, "task.monitor") == row.objective_name
        ):
            mode = OmegaConf.select(job_config, "task.monitor_mode")
            return {"max": "maximize", "min": "minimize"}.get(str(mode))
    return None


def best_row(rows: Sequence[JobRow], direction: str | None) -> JobRow | None:
    """The completed job with the best objective (pruned trials never count, as in Optuna)."""
    scored = [
        r for r in rows if r.status == "completed" and r.objective is not None and math.isfinite(r.objective)
    ]
    if not scored or direction not in ("maximize", "minimize"):
        return None
    pick = max if direction == "maximize" else min
    return pick(scored, key=lambda r: r.objective)


# --- writing the summary -----------------------------------------------------------------------


def summarize(sweep_dir: Path, config: DictConfig | None = None, show: bool = True) -> list[JobRow]:
    """Write summary.csv and summary.png into `sweep_dir`, print the table; returns the rows."""
    sweep_dir = Path(sweep_dir)
    default_metric = (
        OmegaConf.select(config, "optimized_metric", default=None) if config is not None else None
    )
    rows = [read_job(d, sweep_dir, default_metric) for d in find_job_dirs(sweep_dir)]
    if not rows:
        log.warning("No job directories found in %s; no sweep summary written.", sweep_dir)
        return rows
    _mark_pruned(rows, sweep_dir)
    keys = swept_keys(rows)
    direction = direction_of(config, rows)
    best = best_row(rows, direction)
    write_csv(sweep_dir / SUMMARY_CSV, rows, keys, best)
    written = [sweep_dir / SUMMARY_CSV]
    (sweep_dir / SUMMARY_PNG).unlink(missing_ok=True)  # never leave an earlier summary's plot as this one's
    try:
        from litzoo.platform.sweep_plot import plot_objective

        plot = plot_objective(
            sweep_dir / SUMMARY_PNG, rows, keys, direction, best, history=is_search(config, sweep_dir)
        )
        written += [plot] if plot is not None else []
    except Exception:  # a plot is a convenience; the CSV and the table are the summary
        log.warning("Could not plot the sweep objective", exc_info=True)
    written += [p for p in (sweep_dir / TRIALS_CSV, sweep_dir / SEARCH_RESULTS) if p.is_file()]
    if show:
        print_table(rows, keys, best, sweep_dir, written)
    return rows


def is_search(config: DictConfig | None, sweep_dir: Path) -> bool:
    """Whether an optimizing sweeper (Optuna) chose the trials, rather than a grid."""
    if config is not None and OmegaConf.select(config, "hydra.sweeper.direction", default=None) is not None:
        return True
    return (Path(sweep_dir) / SEARCH_RESULTS).is_file()


def _mark_pruned(rows: Sequence[JobRow], sweep_dir: Path) -> None:
    """Jobs an Optuna search pruned ran to a normal end, early: list them as `pruned`."""
    states = read_trial_states(sweep_dir)
    for row in rows:
        if row.status == "completed" and states.get(str(row.run_dir)) == "PRUNED":
            row.status = "pruned"


def read_trial_states(sweep_dir: Path) -> dict[str, str]:
    """{run directory: Optuna trial state} from a search's trials.csv ({} for a grid sweep)."""
    path = Path(sweep_dir) / TRIALS_CSV
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {row["run_dir"]: row["state"] for row in csv.DictReader(f) if row.get("run_dir")}


def write_csv(path: Path, rows: Sequence[JobRow], keys: Sequence[str], best: JobRow | None) -> None:
    metric_names = sorted({name for row in rows for name in row.metrics})
    names = sorted({row.objective_name for row in rows if row.objective_name})
    several = (
        []
        if len({n for row in rows for n in row.objectives}) <= 1
        else list(dict.fromkeys(n for row in rows for n in row.objectives))
    )
    header = [
        "job",
        "status",
        "objective",
        "optimized_metric",
        "best",
        *several,
        *keys,
        *metric_names,
        "duration_s",
        "run_dir",
        "error",
        "overrides",
    ]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            values = dict(_split_override(o) for o in row.overrides)
            writer.writerow(
                [
                    row.job,
                    row.status,
                    _csv_number(row.objective),
                    row.objective_name or ",".join(names),
                    "yes" if row is best else "",
                    *[_csv_number(row.objectives.get(n)) for n in several],
                    *[values.get(k, "") for k in keys],
                    *[_csv_number(row.metrics.get(m)) for m in metric_names],
                    _csv_number(row.duration_s),
                    str(row.run_dir),
                    row.error or "",
                    " ".join(row.overrides),
                ]
            )


def print_table(
    rows: Sequence[JobRow],
    keys: Sequence[str],
    best: JobRow | None,
    sweep_dir: Path,
    written: Sequence[Path] = (),
) -> None:
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
        status = {
            "completed": "[green]completed[/green]",
            "failed": "[red]failed[/red]",
            "pruned": "[yellow]pruned[/yellow]",
        }.get(row.status, row.status)
        objective = (
            "" if row.objective is None else f"{row.objective:.6g}" + (" (best)" if row is best else "")
        )
        where = str(row.run_dir) + (f"\n[red]{_shorten(row.error, 300)}[/red]" if row.error else "")
        table.add_row(row.job, swept, status, objective, where)
    console = get_console()
    console.print(table)
    if written:
        console.print(f"[bold]Summary:[/bold] {', '.join(map(str, written))}", soft_wrap=True)


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
    diverged run can return NaN too. litzoo's own sweeper (hydra_plugins.litzoo_optuna_sweeper)
    tells Optuna such a trial failed by itself; this callback is for searches still run by
    hydra-optuna-sweeper 1.3 (with optuna 2.10), which crashes the whole search on NaN:
    `study.tell` refuses NaN, and its fallback tells a failed state *with* that value, which
    optuna refuses again. A value that is not a float (None) takes that sweeper's failed-trial
    path instead, so the search goes on. Only applies when the sweeper is an Optuna one; runs
    inside the job, with every launcher.
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
