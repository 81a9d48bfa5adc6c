"""What a search leaves in its sweep directory, besides the jobs' own directories.

- `optimization_results.yaml`: hydra-optuna-sweeper's file (`best_params`, `best_value`; for a
  multi-objective search `solutions`, the Pareto front), plus the best trial's number and run
  directory, the study's name, storage and trial counts, and the optuna-dashboard command;
- `trials.csv`: every trial of the study (a continued or shared study's earlier trials too):
  number, state, value(s), where it ran, when, for how long, where it was pruned, its parameters.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

RESULTS_FILE = "optimization_results.yaml"
TRIALS_FILE = "trials.csv"
RUN_DIR = "litzoo_run_dir"  # user attribute: the trial's job directory
JOB = "litzoo_job"  # user attribute: the trial's job number in the search that ran it


def write_results(sweep_dir: Path, study: Any, storage: str, dashboard: str | None) -> dict[str, Any]:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = {
        state.name.lower(): sum(t.state == state for t in trials)
        for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    }
    results: dict[str, Any] = {
        "name": "optuna",
        "study_name": study.study_name,
        "storage": storage,
        "directions": [d.name.lower() for d in study.directions],
        "n_trials": len(trials),
        **{f"n_{k}": v for k, v in counts.items()},
    }
    if len(study.directions) == 1:
        best = _best_trial(study)
        results.update(
            best_trial=best.number if best else None,
            best_value=best.value if best else None,
            best_params=dict(best.params) if best else {},
            best_run_dir=best.user_attrs.get(RUN_DIR) if best else None,
        )
    else:
        results["solutions"] = [
            {
                "number": t.number,
                "values": list(t.values),
                "params": dict(t.params),
                "run_dir": t.user_attrs.get(RUN_DIR),
            }
            for t in study.best_trials
        ]
    if dashboard:
        results["dashboard"] = dashboard
    OmegaConf.save(OmegaConf.create(results), sweep_dir / RESULTS_FILE)
    write_trials(sweep_dir / TRIALS_FILE, trials, len(study.directions))
    return results


def write_trials(path: Path, trials: Sequence[Any], n_objectives: int) -> None:
    from hydra_plugins.litzoo_optuna_sweeper._trial import PRUNED_AT

    params: list[str] = []
    for trial in trials:
        params += [name for name in trial.params if name not in params]
    values = ["value"] if n_objectives == 1 else [f"values_{i}" for i in range(n_objectives)]
    header = [
        "number",
        "state",
        *values,
        "job",
        "run_dir",
        "datetime_start",
        "duration_s",
        "pruned_at_step",
        *params,
    ]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for t in trials:
            duration = t.duration.total_seconds() if t.duration is not None else None
            objective = list(t.values) if t.values is not None else [None] * n_objectives
            writer.writerow(
                [
                    t.number,
                    t.state.name,
                    *map(_number, objective),
                    t.user_attrs.get(JOB, ""),
                    t.user_attrs.get(RUN_DIR, ""),
                    t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else "",
                    _number(duration),
                    t.user_attrs.get(PRUNED_AT, ""),
                    *[_cell(t.params.get(name)) for name in params],
                ]
            )


def _best_trial(study: Any) -> Any:
    try:
        return study.best_trial
    except ValueError:  # no completed trial yet
        return None


def _number(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(float(value))


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
