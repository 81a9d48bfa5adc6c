"""Lightning callback that lets an Optuna search prune a trial from its intermediate `val/` metric.

After every epoch's validation, rank 0 reports the monitored metric to the trial this job runs
(the sweeper hands it over, see `hydra_plugins.litzoo_optuna_sweeper._trial`) and asks the
search's pruner; when the pruner says stop, every rank stops after this epoch (the decision is
shared, so DDP ranks stop together), the run is tested and recorded as usual, and the sweeper
tells Optuna the trial was pruned. Outside an Optuna search, or for a search without a pruner,
it reports nothing and changes nothing.

conf/hparams_search/*.yaml add it as `callbacks.optuna_pruning` with `monitor: ${optimized_metric}`.
One value per epoch: the epoch is the step, so trials with different batch sizes compare at
the same point of training.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

log = logging.getLogger("litzoo")


class OptunaPruning(Callback):
    """Report `monitor` to this job's Optuna trial after each validation; stop when it is pruned."""

    def __init__(self, monitor: str | Sequence[str] | None) -> None:
        if monitor is not None and not isinstance(monitor, str):
            monitor = list(monitor)[0] if len(monitor) else None  # a multi-objective search: never pruned
        self.monitor = monitor
        self._reporter: Any = None
        self._looked_up = False
        self._last_epoch: int | None = None

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or not self.monitor:
            return
        prune = False
        if trainer.is_global_zero:
            prune = self._report(trainer)
        prune = trainer.strategy.reduce_boolean_decision(prune, all=False)
        if prune:
            trainer.should_stop = True

    def _report(self, trainer: Trainer) -> bool:
        reporter = self._trial_reporter()
        value = trainer.callback_metrics.get(self.monitor)
        epoch = int(trainer.current_epoch)
        if reporter is None or value is None or epoch == self._last_epoch:
            return False  # not in a search; not logged yet; a second validation in the same epoch
        self._last_epoch = epoch
        if reporter.report(float(value), step=epoch):
            log.info(
                "Optuna pruned trial %d at epoch %d (%s=%.6g): training stops after this epoch.",
                reporter.number,
                epoch,
                self.monitor,
                float(value),
            )
            return True
        return False

    def _trial_reporter(self) -> Any:
        if not self._looked_up:
            self._looked_up = True
            from hydra_plugins.litzoo_optuna_sweeper._trial import current_reporter

            self._reporter = current_reporter()
        return self._reporter
