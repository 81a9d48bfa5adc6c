"""The sweeper's config schema, registered as `hydra/sweeper: optuna` in Hydra's ConfigStore.

The keys are hydra-optuna-sweeper's, so a lightning-hydra-template search config
(`defaults: - override /hydra/sweeper: optuna`) composes unchanged. `sampler` and `pruner`
are plain `_target_` mappings rather than one dataclass per sampler: every argument of the
installed Optuna's class is accepted (Optuna adds and deprecates arguments between
releases), and a misspelt one is refused by the class itself when the search starts.

Imported by Hydra's plugin scan on every start: Hydra and the standard library only.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

SWEEPER_TARGET = "hydra_plugins.litzoo_optuna_sweeper.optuna_sweeper.OptunaSweeper"

# `override hydra/sweeper/sampler: <name>` (or hydra/sweeper/sampler=<name>) picks one.
SAMPLERS = {
    "tpe": "optuna.samplers.TPESampler",
    "random": "optuna.samplers.RandomSampler",
    "cmaes": "optuna.samplers.CmaEsSampler",
    "nsgaii": "optuna.samplers.NSGAIISampler",
    "qmc": "optuna.samplers.QMCSampler",
    "grid": "optuna.samplers.GridSampler",  # its grid is built from `params`
}
# `override hydra/sweeper/pruner: <name>` (or hydra/sweeper/pruner=<name>) picks one; its arguments
# are listed with Optuna's defaults, so `hydra.sweeper.pruner.n_warmup_steps=2` needs no `+`.
# The default (null) prunes nothing.
PRUNERS: dict[str, dict[str, Any]] = {
    "median": {
        "_target_": "optuna.pruners.MedianPruner",
        "n_startup_trials": 5,
        "n_warmup_steps": 0,
        "interval_steps": 1,
        "n_min_trials": 1,
    },
    "percentile": {
        "_target_": "optuna.pruners.PercentilePruner",
        "percentile": MISSING,
        "n_startup_trials": 5,
        "n_warmup_steps": 0,
        "interval_steps": 1,
        "n_min_trials": 1,
    },
    "successive_halving": {
        "_target_": "optuna.pruners.SuccessiveHalvingPruner",
        "min_resource": "auto",
        "reduction_factor": 4,
        "min_early_stopping_rate": 0,
        "bootstrap_count": 0,
    },
    "hyperband": {
        "_target_": "optuna.pruners.HyperbandPruner",
        "min_resource": 1,
        "max_resource": "auto",
        "reduction_factor": 3,
        "bootstrap_count": 0,
    },
    "threshold": {
        "_target_": "optuna.pruners.ThresholdPruner",
        "lower": None,
        "upper": None,
        "n_warmup_steps": 0,
        "interval_steps": 1,
    },
    "nop": {"_target_": "optuna.pruners.NopPruner"},
}


@dataclass
class OptunaSweeperConf:
    """hydra-optuna-sweeper 1.3's keys, plus `pruner`."""

    _target_: str = SWEEPER_TARGET
    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"sampler": "tpe"}, {"pruner": None}])

    # An Optuna sampler: `_target_` and its arguments (https://optuna.readthedocs.io/en/stable/reference/samplers).
    sampler: Any = MISSING
    # minimize or maximize, or one per objective ([maximize, minimize]) for a multi-objective search;
    # the task function then returns one value per objective.
    direction: Any = "minimize"
    # null: in memory. "sqlite:///optuna.db" or any SQLAlchemy URL; "journal:///shared/optuna.log"
    # (or a path ending in .log): Optuna's journal file, shared by jobs on several machines without a
    # database server. The same storage and study_name continue an earlier study.
    storage: Any = None
    study_name: str | None = None
    # Trials this search runs (a continued study keeps its earlier trials on top).
    n_trials: int = 20
    # Trials asked for and launched together (run in parallel by a parallel launcher).
    n_jobs: int = 2
    # The share of a batch that may fail before the search stops.
    max_failure_rate: float = 0.0
    # Hydra 1.1's search space form ({name: {type, low, high, log, step, choices}}); prefer `params`.
    search_space: dict[str, Any] | None = None
    # The search space as override strings: interval(...), range(...), choice(...), tag(log, ...).
    params: dict[str, str] | None = None
    # A callable(cfg, trial) that suggests more parameters (`module.function`).
    custom_search_space: str | None = None
    # An Optuna pruner (`_target_` + arguments). Trials report intermediate values after every
    # validation through litzoo.platform.pruning.OptunaPruning; null prunes nothing.
    pruner: Any = None


def _store() -> None:
    store = ConfigStore.instance()
    store.store(
        group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="litzoo_optuna_sweeper"
    )
    for name, target in SAMPLERS.items():
        node: dict[str, Any] = {"_target_": target}
        if name == "grid":
            node["_partial_"] = True  # the sweeper passes the search space
        store.store(group="hydra/sweeper/sampler", name=name, node=node, provider="litzoo_optuna_sweeper")
    for name, pruner in PRUNERS.items():
        store.store(group="hydra/sweeper/pruner", name=name, node=pruner, provider="litzoo_optuna_sweeper")


_store()
