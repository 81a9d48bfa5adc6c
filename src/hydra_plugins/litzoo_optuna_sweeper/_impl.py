"""The search loop, in Optuna's ask-and-tell form: ask a batch of trials, launch them as Hydra
jobs, tell Optuna each job's result (complete, failed or pruned), until `n_trials` have run.

Hydra's launcher runs the jobs, so every launcher works unchanged (in this process, joblib,
SLURM through submitit). A job returns its objective (one float, or one per direction of a
multi-objective search); NaN, None or an exception is a failed trial, which the search
survives up to `max_failure_rate` of a batch.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.litzoo_optuna_sweeper import _results, _storage, _trial
from hydra_plugins.litzoo_optuna_sweeper._space import SearchSpace, to_overrides
from litzoo.errors import ConfigError, LitzooError

log = logging.getLogger(__name__)


class OptunaSearch:
    """The sweeper's state between Hydra's `setup` and `sweep` calls."""

    def __init__(
        self,
        sampler: Any,
        direction: Any,
        storage: Any,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        search_space: Any,
        custom_search_space: str | None,
        params: Any,
        pruner: Any,
    ) -> None:
        if not 0.0 <= float(max_failure_rate) <= 1.0:
            raise ConfigError(f"hydra.sweeper.max_failure_rate={max_failure_rate} must be between 0 and 1.")
        if int(n_trials) < 1 or int(n_jobs) < 1:
            raise ConfigError(f"hydra.sweeper.n_trials={n_trials} and n_jobs={n_jobs} must be positive.")
        self.sampler, self.pruner = sampler, pruner
        self.directions = directions_of(direction)
        self.storage = _storage.normalize(storage)
        self.study_name = study_name
        self.n_trials, self.n_jobs = int(n_trials), int(n_jobs)
        self.max_failure_rate = float(max_failure_rate)
        self.search_space = (
            OmegaConf.to_container(search_space) if isinstance(search_space, DictConfig) else search_space
        )
        self.params = OmegaConf.to_container(params) if isinstance(params, DictConfig) else params
        self.custom_search_space = custom_search_space
        self.job_idx = 0

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        self.sweep_dir = Path(str(config.hydra.sweep.dir))

    def sweep(self, arguments: list[str]) -> None:
        import optuna

        space = SearchSpace.parse(self.params, arguments, self.search_space)
        sampler, n_trials = self._sampler(space)
        study = optuna.create_study(
            study_name=self.study_name,
            storage=_storage.open_storage(self.storage),
            sampler=sampler,
            pruner=self.pruner or optuna.pruners.NopPruner(),
            directions=self.directions,
            load_if_exists=True,
        )
        self._check_directions(study)
        extend = _custom_search_space(self.custom_search_space)
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        _save_multirun_config(self.config, self.sweep_dir)
        log.info(
            "Study %s (%s), %s, %s: %d trial(s) already, %d to run",
            study.study_name,
            _storage.describe(self.storage),
            type(sampler).__name__,
            "/".join(self.directions),
            len(study.trials),
            n_trials,
        )
        _trial.register(study)
        try:
            remaining = n_trials
            while remaining > 0:
                batch = min(self.n_jobs, remaining)
                self._run_batch(study, space, extend, batch)
                remaining -= batch
        finally:
            _trial.unregister(study)
        results = _results.write_results(
            self.sweep_dir, study, _storage.describe(self.storage), _storage.dashboard_command(self.storage)
        )
        _log_results(results, self.sweep_dir)

    # --- one batch -----------------------------------------------------------------------------

    def _run_batch(self, study: Any, space: SearchSpace, extend: Any, batch: int) -> None:
        trials = [study.ask(fixed_distributions=space.distributions) for _ in range(batch)]
        overrides = [self._overrides(study, trial, space, extend) for trial in trials]
        returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
        failures = []
        for index, (trial, job) in enumerate(zip(trials, returns)):
            trial.set_user_attr(_results.JOB, self.job_idx + index)
            run_dir = _run_dir(job)
            if run_dir:
                trial.set_user_attr(_results.RUN_DIR, run_dir)
            state, values, problem = self._outcome(trial, job)
            if problem:
                log.warning("Trial %d failed: %s", trial.number, problem)
                failures.append(job)
            _tell(study, trial, state, values)
        self.job_idx += len(returns)
        if failures and len(failures) / len(returns) > self.max_failure_rate:
            for job in failures:  # re-raise a job's own exception, with its traceback, if it has one
                if job.status == JobStatus.FAILED:
                    job.return_value  # noqa: B018 (raises the job's error)
            raise LitzooError(
                f"{len(failures)} of {len(returns)} trials of the last batch failed, more than "
                f"hydra.sweeper.max_failure_rate={self.max_failure_rate} allows; the search stops. Each trial's "
                f"train.log under {self.sweep_dir} says why; raise hydra.sweeper.max_failure_rate (up to 1.0) "
                "to let a search go on past failed trials."
            )

    def _overrides(self, study: Any, trial: Any, space: SearchSpace, extend: Any) -> list[str]:
        for name, value in space.fixed.items():
            trial.set_user_attr(name, value)
        if extend is not None:
            extend(self.config, trial)
        overlap = set(trial.params) & set(space.fixed)
        if overlap:
            raise ConfigError(f"{', '.join(sorted(overlap))}: both searched and fixed; keep one of them.")
        return [
            *to_overrides(trial.params),
            *(f"{k}={v}" for k, v in space.fixed.items()),
            _trial.job_override(
                study.study_name, self.storage, trial._trial_id, trial.number, self._pruner_config()
            ),
        ]

    def _outcome(self, trial: Any, job: JobReturn) -> tuple[Any, list[float] | None, str | None]:
        """(state, values, why it failed) of a finished job."""
        from optuna.trial import TrialState

        if job.status == JobStatus.FAILED:
            return TrialState.FAIL, None, f"{type(job._return_value).__name__}: {job._return_value}"
        if _stored_user_attrs(trial).get(_trial.PRUNED_AT) is not None:
            return TrialState.PRUNED, None, None
        values = _as_values(job.return_value, len(self.directions))
        if values is None:
            return (
                TrialState.FAIL,
                None,
                (
                    f"its objective is {job.return_value!r}, not {len(self.directions)} "
                    "finite number(s) (see its train.log)"
                ),
            )
        return TrialState.COMPLETE, values, None

    # --- setup helpers -------------------------------------------------------------------------

    def _pruner_config(self) -> dict[str, Any] | None:
        """The pruner as config, for jobs that load the study from its storage (a storage keeps no pruner)."""
        node = OmegaConf.select(self.config, "hydra.sweeper.pruner", default=None)
        return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else None

    def _sampler(self, space: SearchSpace) -> tuple[Any, int]:
        import optuna

        sampler = self.sampler
        if isinstance(sampler, functools.partial) and sampler.func is optuna.samplers.GridSampler:
            grid = space.grid()
            size = math.prod(len(v) for v in grid.values())
            if size < self.n_trials:
                log.info("The grid has %d points: running %d trials, not %d.", size, size, self.n_trials)
            return sampler(grid), min(self.n_trials, size)
        if isinstance(sampler, functools.partial):
            sampler = sampler()
        return sampler, self.n_trials

    def _check_directions(self, study: Any) -> None:
        found = [d.name.lower() for d in study.directions]
        if found != self.directions:
            raise ConfigError(
                f"Study {study.study_name} in {_storage.describe(self.storage)} optimizes {found}, but "
                f"hydra.sweeper.direction is {self.directions}. Continue it with the same direction, or start "
                "a new study with another hydra.sweeper.study_name."
            )


def directions_of(direction: Any) -> list[str]:
    """["minimize"] / ["maximize", "minimize"] from hydra.sweeper.direction (a name, an enum or a list)."""
    items = (
        list(direction)
        if isinstance(direction, (list, tuple, Sequence)) and not isinstance(direction, str)
        else [direction]
    )
    names = [str(getattr(d, "name", d)).lower() for d in items]
    wrong = [n for n in names if n not in ("minimize", "maximize")]
    if wrong or not names:
        raise ConfigError(
            f"hydra.sweeper.direction={direction!r}: each direction is minimize or maximize "
            "(a list of them for a multi-objective search)."
        )
    return names


def _as_values(value: Any, count: int) -> list[float] | None:
    items = list(value) if isinstance(value, (list, tuple)) or OmegaConf.is_list(value) else [value]
    try:
        numbers = [float(v) for v in items]
    except (TypeError, ValueError):
        return None
    if len(numbers) != count or not all(math.isfinite(v) for v in numbers):
        return None
    return numbers


def _stored_user_attrs(trial: Any) -> dict[str, Any]:
    """The trial's user attributes as stored now (the job may have set some on its own Trial object;
    `trial.user_attrs` answers from this object's cache)."""
    from optuna.trial import TrialState

    running = trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return next((dict(t.user_attrs) for t in running if t.number == trial.number), {})


def _tell(study: Any, trial: Any, state: Any, values: list[float] | None) -> None:
    try:
        study.tell(trial, values=values, state=state)
    except RuntimeError as error:  # GridSampler stops the study once the grid is used up
        if "Study.stop" not in str(error):
            raise


def _run_dir(job: JobReturn) -> str | None:
    try:
        return str(job.hydra_cfg.hydra.runtime.output_dir)
    except Exception:
        return None


def _custom_search_space(target: str | None) -> Any:
    if not target:
        return None
    from hydra.utils import get_method

    return get_method(target)


def _save_multirun_config(config: DictConfig, sweep_dir: Path) -> None:
    """multirun.yaml, as Hydra's basic sweeper writes it (credentials redacted)."""
    from litzoo.platform.secrets import redact

    container = OmegaConf.to_container(config, resolve=False)
    OmegaConf.save(OmegaConf.create(redact(container)), sweep_dir / "multirun.yaml")


def _log_results(results: dict[str, Any], sweep_dir: Path) -> None:
    if "solutions" in results:
        log.info(
            "Pareto front: %d trial(s): %s",
            len(results["solutions"]),
            "; ".join(f"#{s['number']} {s['values']}" for s in results["solutions"]),
        )
    elif results.get("best_trial") is not None:
        log.info(
            "Best trial #%d: %s = %s (%s)",
            results["best_trial"],
            results["best_params"],
            results["best_value"],
            results.get("best_run_dir"),
        )
    else:
        log.warning("No trial of study %s completed.", results["study_name"])
    log.info("Results: %s, %s", sweep_dir / _results.RESULTS_FILE, sweep_dir / _results.TRIALS_FILE)
    if results.get("dashboard"):
        log.info("Dashboard: %s", results["dashboard"])
