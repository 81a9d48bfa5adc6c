"""Callbacks that keep a run's state safe: exact resume, preemption, non-finite values.

The runner adds them to every fit (they are platform plumbing, not options):

- `ResumeState` saves the Python/numpy/torch random states in each checkpoint and
  puts them back when the resumed run starts training, so it draws the same random
  numbers (dropout, mixup, augmentation in the main process) as the run it
  continues. It also records how many rows `metrics.csv` held at the checkpoint,
  plus the row of the step being checkpointed (Lightning logs it just after the
  save), so the resumed log holds every step exactly once.
- `PreemptionCheckpoint`: on SIGTERM (Lightning's own handler stops the loop at
  the next step boundary) or SIGUSR1, writes `checkpoints/interrupted.ckpt` so a
  preempted run loses nothing; the runner then marks the run `interrupted`.
- `NonFiniteGuard`: a NaN/Inf loss or gradient either stops the run with a message
  naming the epoch, step and batch (policy `stop`; the weights are not updated,
  so the last checkpoint stays good) or skips that optimizer step and counts it
  (policy `skip`).
"""

from __future__ import annotations

import logging
import random
import signal
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from litzoo.errors import LitzooError

log = logging.getLogger("litzoo")


class NonFiniteError(LitzooError):
    exit_code = 6


def _capture_rng() -> dict[str, Any]:
    version, mt_state, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        # numpy arrays are not allowed in weights-only checkpoints: store plain tensors/lists.
        "python": [version, list(mt_state), gauss],
        "numpy": [np_name, torch.from_numpy(np_keys.astype(np.int64)), np_pos, np_has_gauss, np_gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict[str, Any]) -> None:
    version, mt_state, gauss = state["python"]
    random.setstate((version, tuple(mt_state), gauss))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_name, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumeState(pl.Callback):
    """Random states and the metrics log position in checkpoints; random states restored on resume."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    @property
    def state_key(self) -> str:
        return "litzoo.ResumeState"

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        from litzoo.platform.loggers import RunCSVLogger, count_rows

        state: dict[str, Any] = {"rng": _capture_rng()}
        for logger in trainer.loggers:
            logger.save()
            if isinstance(logger, RunCSVLogger):
                state["csv_rows"] = count_rows(Path(logger.log_dir) / "metrics.csv")
                state["csv_pending_row"] = _step_row_logged_after_save(trainer)
        checkpoint["litzoo"] = state

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        self._pending = checkpoint.get("litzoo", {}).get("rng")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After the sanity check and before the first batch is fetched: the loader makes no
        # draws from the global generators (it has its own), so the resumed run continues
        # exactly where the checkpoint left the random streams.
        if self._pending is not None:
            _restore_rng(self._pending)
            self._pending = None


def _step_row_logged_after_save(trainer: pl.Trainer) -> dict[str, float] | None:
    """The metrics row Lightning is about to log for the batch being checkpointed, if any.

    A checkpoint taken in `on_train_batch_end` (ModelCheckpoint's every-N-steps save)
    precedes the logging of that batch's step metrics; after a resume the batch is not
    run again, so its row is kept in the checkpoint and written back by the CSV logger.
    """
    loop = trainer.fit_loop.epoch_loop
    progress = loop.batch_progress.current
    connector = trainer._logger_connector
    in_batch_end = trainer.training and progress.processed > progress.completed
    if not in_batch_end or trainer.fit_loop._should_accumulate() or not connector.should_update_logs:
        return None
    from lightning.fabric.utilities.apply_func import convert_tensors_to_scalars

    row = convert_tensors_to_scalars(dict(connector.metrics["log"]))
    if not row:
        return None
    row.setdefault("epoch", trainer.current_epoch)
    row["step"] = loop._batches_that_stepped
    return row


class PreemptionCheckpoint(pl.Callback):
    """Checkpoint on SIGTERM/SIGUSR1 before the run stops."""

    FILENAME = "interrupted.ckpt"

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)
        self.saved: Path | None = None
        self._previous_usr1: Any = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning handles SIGTERM itself (stop at the next step boundary on every rank). Outside
        # SLURM it ignores SIGUSR1, the usual "about to be preempted" signal: route it the same way.
        if not hasattr(signal, "SIGUSR1") or signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, None):
            return

        def on_usr1(signum: int, frame: Any) -> None:
            log.info("Received SIGUSR1: checkpointing and stopping at the next step")
            trainer._signal_connector.received_sigterm = True  # Lightning's own stop flag

        try:
            self._previous_usr1 = signal.signal(signal.SIGUSR1, on_usr1)
        except ValueError:  # not the main thread
            self._previous_usr1 = None

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore_handler()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        self._restore_handler()
        if isinstance(exception, SIGTERMException) and trainer.state.fn == "fit":
            path = self.dirpath / self.FILENAME
            trainer.save_checkpoint(path)
            self.saved = path
            log.warning("Stopped by a signal; saved %s (continue with `python train.py resume=%s`)",
                        path, self.dirpath.parent)

    def _restore_handler(self) -> None:
        if self._previous_usr1 is not None:
            signal.signal(signal.SIGUSR1, self._previous_usr1)
            self._previous_usr1 = None


class NonFiniteGuard(pl.Callback):
    """Stop on, or skip, optimizer steps whose loss or gradients are NaN/Inf."""

    def __init__(self, policy: str = "stop") -> None:
        if policy not in ("stop", "skip"):
            from litzoo.errors import ConfigError

            raise ConfigError(f"nonfinite={policy!r} is not a policy; use stop or skip.")
        self.policy = policy
        self.skipped: list[dict[str, int]] = []
        self._bad_loss = False

    def _where(self, trainer: pl.Trainer) -> dict[str, int]:
        return {"epoch": trainer.current_epoch, "step": trainer.global_step,
                "batch_idx": trainer.fit_loop.epoch_loop.batch_idx}

    def _stop(self, trainer: pl.Trainer, what: str) -> None:
        where = self._where(trainer)
        raise NonFiniteError(
            f"Non-finite {what} at epoch {where['epoch']}, step {where['step']}, batch {where['batch_idx']}; "
            "training stopped before the weights were updated, so the last checkpoint is still good. "
            "Lower the learning rate, add gradient clipping (trainer.gradient_clip_val=1.0), check the data of "
            "that batch, or skip such steps with nonfinite=skip."
        )

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        self._bad_loss = not bool(torch.isfinite(loss.detach()).all())
        if self._bad_loss and self.policy == "stop":
            self._stop(trainer, f"loss ({loss.item()})")

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        bad_grads = any(not bool(torch.isfinite(g).all()) for g in grads)
        if not (self._bad_loss or bad_grads):
            return
        if self.policy == "stop":
            self._stop(trainer, "gradients")
        # Parameters without gradients are left untouched by torch optimizers (no momentum or
        # weight-decay update either), so clearing them all skips this step cleanly.
        for group in optimizer.param_groups:
            for p in group["params"]:
                p.grad = None
        where = self._where(trainer)
        self.skipped.append(where)
        log.warning("Skipped optimizer step with non-finite %s at epoch %d, step %d, batch %d",
                    "loss" if self._bad_loss else "gradients", where["epoch"], where["step"], where["batch_idx"])
        self._bad_loss = False
