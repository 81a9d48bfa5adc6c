"""How a job finds the Optuna trial it runs, to report intermediate values and be pruned.

The sweeper gives each job one environment variable through Hydra's `hydra.job.env_set` (set
in the job's process by every launcher: in this process, a joblib worker or a SLURM task):
LITZOO_OPTUNA_TRIAL, a JSON object with the study name, the storage, the pruner's config
and the trial's id and number. The job reaches the study

- in this process, when the sweeper runs here (the basic launcher): the live study object,
  so an in-memory search can prune too;
- through the storage otherwise (a database or a journal file the job can reach).

A job with neither (an in-memory study, jobs in other processes) cannot be pruned; it says
so once and trains to the end.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("litzoo")

ENV_TRIAL = "LITZOO_OPTUNA_TRIAL"
# Set on a trial that its job stopped because the pruner said so; the sweeper then tells PRUNED.
PRUNED_AT = "litzoo_pruned_at_step"

_LIVE_STUDIES: dict[str, Any] = {}  # studies of searches running in this process, by name
_warned: set[str] = set()


def register(study: Any) -> None:
    _LIVE_STUDIES[study.study_name] = study


def unregister(study: Any) -> None:
    _LIVE_STUDIES.pop(study.study_name, None)


def job_override(study_name: str, storage: Any, trial_id: int, number: int, pruner: Any = None) -> str:
    """The Hydra override that hands a job its trial (a `hydra.` override: not one of the run's own,
    so it stays out of the run's overrides, its `reproduce` command and the sweep summary)."""
    trial = {
        "study": study_name,
        "number": number,
        "id": trial_id,
        "storage": storage if isinstance(storage, str) else None,
        "pruner": pruner,  # the search's pruner config: a study loaded from storage does not keep it
    }
    return f"++hydra.job.env_set.{ENV_TRIAL}={_quoted(json.dumps(trial))}"


class TrialReporter:
    """Reports one job's intermediate values to its trial and asks the pruner about them."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial

    @property
    def number(self) -> int:
        return int(self.trial.number)

    def report(self, value: float, step: int) -> bool:
        """Report `value` at `step`; True when the trial should stop (it is then marked pruned)."""
        self.trial.report(float(value), int(step))
        if self.trial.should_prune():
            self.trial.set_user_attr(PRUNED_AT, int(step))
            return True
        return False


def current_reporter(environ: Mapping[str, str] | None = None) -> TrialReporter | None:
    """The reporter of the trial this job runs; None outside a search, or where pruning cannot work."""
    environ = os.environ if environ is None else environ
    if not environ.get(ENV_TRIAL):
        return None
    trial = json.loads(environ[ENV_TRIAL])
    name, trial_id, storage = trial["study"], int(trial["id"]), trial.get("storage")
    import optuna
    from optuna.trial import Trial

    study = _LIVE_STUDIES.get(name)
    if study is None:
        if not storage:
            _warn_once(
                name,
                f"Optuna study {name} is kept in the memory of the process that runs the search, "
                "which this job cannot reach: intermediate values are not reported and the trial "
                "is not pruned. Give the search a storage both can reach, e.g. "
                "hydra.sweeper.storage=journal://<shared dir>/optuna.log.",
            )
            return None
        from hydra_plugins.litzoo_optuna_sweeper._storage import open_storage

        study = optuna.load_study(
            study_name=name, storage=open_storage(storage), pruner=_pruner(trial.get("pruner"))
        )
    if len(study.directions) > 1:
        _warn_once(name, "Optuna cannot prune a multi-objective search; trials run to the end.")
        return None
    return TrialReporter(Trial(study, trial_id))


def _pruner(config: Any) -> Any:
    import optuna

    if not config:
        return optuna.pruners.NopPruner()
    from hydra.utils import instantiate

    return instantiate(config)


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message)


def _quoted(value: str) -> str:
    """A Hydra override value that stays this exact string: in a quoted value, backslashes are
    literal except before a quote (or the closing quote), and `${` would be an interpolation."""
    escaped = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, value)
    escaped = escaped.replace("'", "\\'").replace("${", "\\${")
    return f"'{escaped}'"
