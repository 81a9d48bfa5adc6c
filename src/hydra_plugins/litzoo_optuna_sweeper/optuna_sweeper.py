"""The Hydra `Sweeper` plugin class (`hydra/sweeper: optuna`); the search itself is in `_impl`.

Hydra imports this module on every start to find its plugins, so the search (and Optuna) is
imported only when a sweep is set up.

lightning-hydra-template's search configs name hydra-optuna-sweeper's class in their
`_target_` (`hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper`). Where that
package is not installed, this module makes the same class answer to that name too, so
those configs run unchanged.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

HYDRA_OPTUNA_SWEEPER = "hydra_plugins.hydra_optuna_sweeper"


class OptunaSweeper(Sweeper):
    """Optuna (>= 4) search over Hydra jobs; arguments as in `config.OptunaSweeperConf`."""

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
        pruner: Any = None,
    ) -> None:
        from hydra_plugins.litzoo_optuna_sweeper._impl import OptunaSearch

        self.search = OptunaSearch(
            sampler,
            direction,
            storage,
            study_name,
            n_trials,
            n_jobs,
            max_failure_rate,
            search_space,
            custom_search_space,
            params,
            pruner,
        )

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.search.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        self.search.sweep(arguments)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _alias_under_hydra_optuna_sweeper_name() -> type[OptunaSweeper]:
    """This sweeper class, reachable as hydra-optuna-sweeper's `optuna_sweeper.OptunaSweeper`.

    Hydra keys a plugin by `<class module>.<class name>` and imports that path again when it
    instantiates it, so the path must import: two stand-in module objects in sys.modules (no
    files, so nothing clashes with a later install of the real package) hold the class.
    """
    package = types.ModuleType(
        HYDRA_OPTUNA_SWEEPER, "Stand-in: litzoo's Optuna sweeper answers to this name."
    )
    package.__path__ = []
    module = types.ModuleType(f"{HYDRA_OPTUNA_SWEEPER}.optuna_sweeper", package.__doc__)
    alias = type("OptunaSweeper", (OptunaSweeper,), {"__module__": module.__name__, "__doc__": __doc__})
    module.OptunaSweeper = alias
    package.optuna_sweeper = module
    sys.modules.setdefault(package.__name__, package)
    sys.modules.setdefault(module.__name__, module)
    sys.modules["hydra_plugins"].hydra_optuna_sweeper = package
    return alias


if not _installed(HYDRA_OPTUNA_SWEEPER):
    HydraOptunaSweeperName = _alias_under_hydra_optuna_sweeper_name()
