"""Checkpoints that survive crashes and refuse to run code.

- `AtomicCheckpointIO` writes each checkpoint to a temporary file in the same
  directory, fsyncs it and renames it over the target, then fsyncs the
  directory: a kill during a save leaves the previous file intact. Lightning
  deletes superseded top-k files only after a save succeeded, so the newest
  intact checkpoint is never the one removed. A full disk becomes a
  `CheckpointError` naming the last good checkpoint.
- Loading always uses `torch.load(weights_only=True)`: a checkpoint carrying a
  pickled object that would execute code is refused, and a truncated or
  corrupt file is reported by name. litzoo's own checkpoints hold only tensors
  and plain data, so they load under that rule.
- `newest_intact_checkpoint` is how a resumed run picks its starting point,
  skipping corrupt files.
- `BestAndLastCheckpoint` (conf/callbacks/default.yaml) keeps the newest of equally good
  checkpoints as the best and rewrites `last.ckpt` after every validation; `StepCheckpoint`
  is the rolling every-N-steps one, which skips the one point it could not resume exactly from.
"""

from __future__ import annotations

import errno
import logging
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn

from litzoo.errors import CheckpointError

log = logging.getLogger("litzoo")


def _fsync_directory(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint_file(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """`torch.load` with `weights_only=True`, turning refusals and corruption into CheckpointError."""
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as error:
        raise CheckpointError(f"Checkpoint {path} does not exist.") from error
    except pickle.UnpicklingError as error:
        if "Weights only load failed" in str(error) or "weights_only" in str(error):
            raise CheckpointError(
                f"Refusing to load {path}: it contains pickled Python objects that could run code when "
                "loaded (only tensors and plain data are accepted). litzoo's own checkpoints never do; "
                "if you made this file yourself and trust it, convert it to a plain state dict "
                "(e.g. with safetensors) first."
            ) from error
        raise _corrupt(path, error) from error
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        raise _corrupt(path, error) from error


def _corrupt(path: Path, error: BaseException) -> CheckpointError:
    return CheckpointError(
        f"Checkpoint {path} is truncated or corrupt ({type(error).__name__}: {str(error)[:200]}). "
        "It was probably cut off by a crash or a full disk; use an earlier checkpoint of the run "
        "(resume picks the newest intact one automatically)."
    )


def is_intact(path: str | Path) -> bool:
    try:
        load_checkpoint_file(path)
    except CheckpointError:
        return False
    return True


def checkpoints_newest_first(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    files = [p for p in folder.glob("*.ckpt") if p.is_file() and not p.name.startswith(".")]
    return sorted(files, key=lambda p: p.stat().st_mtime_ns, reverse=True)


def newest_intact_checkpoint(folder: str | Path) -> Path | None:
    """The most recently written checkpoint in `folder` that loads; corrupt ones are skipped and logged."""
    for path in checkpoints_newest_first(folder):
        try:
            load_checkpoint_file(path)
        except CheckpointError as error:
            log.warning("Skipping %s", error)
            continue
        return path
    return None


class AtomicCheckpointIO(TorchCheckpointIO):
    """Crash-safe saving (temp file + fsync + rename) and weights-only loading."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            _fsync_directory(path.parent)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            last_good = newest_intact_checkpoint(path.parent)
            problem = "the disk is full" if error.errno == errno.ENOSPC else f"{error.strerror or error}"
            raise CheckpointError(
                f"Could not save checkpoint {path}: {problem}. The last good checkpoint is "
                f"{last_good or '(none yet)'}. Free space (or fix the directory's permissions), then continue "
                f"with `python train.py resume={path.parent.parent}`."
            ) from error

    def load_checkpoint(self, path: str | Path, map_location: Any = None, weights_only: bool | None = None
                        ) -> dict[str, Any]:
        return load_checkpoint_file(path, map_location=map_location or "cpu")


class BestAndLastCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` with two rules a user of ``best`` and ``last.ckpt`` expects.

    - A tie with the k-th best replaces it: on a small validation set the monitored metric
      saturates (e.g. the same top-1 at several epochs), and strict improvement would keep the
      earliest, least-trained of the equals; the newest is the better-converged one.
    - ``last.ckpt`` holds the weights at the end of every validation, whether or not they made
      the top k (Lightning 2.6 rewrites it only along with a top-k save).
    """

    _last_step_in_last = -1  # the global step whose weights last.ckpt holds

    def check_monitor_top_k(self, trainer: pl.Trainer, current: torch.Tensor | None = None) -> bool:
        if current is None or self.save_top_k == -1 or len(self.best_k_models) < self.save_top_k:
            return super().check_monitor_top_k(trainer, current)
        not_worse = {"min": torch.le, "max": torch.ge}[self.mode]
        decision = bool(not_worse(current, self.best_k_models[self.kth_best_model_path]))
        return trainer.strategy.reduce_boolean_decision(decision)

    # Lightning saves in on_train_epoch_end when validation runs once per epoch and in
    # on_validation_end otherwise; last.ckpt is refreshed right after whichever of the two saves.
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def _refresh_last(self, trainer: pl.Trainer) -> None:
        fitting = trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking
        if self.save_last and fitting and not trainer.fast_dev_run and self._last_step_in_last != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        self._last_step_in_last = trainer.global_step


class StepCheckpoint(ModelCheckpoint):
    """The rolling every-N-steps checkpoint, except after an epoch's last training batch.

    A checkpoint taken there, before the epoch's validation and epoch-end hooks, does not resume
    exactly: Lightning restarts after the finished epoch, so its validation never runs and the
    next epoch starts from another state than in a run left alone. The epoch-end checkpoints
    (``last.ckpt``, the best) cover that point; a kill before they are written resumes from the
    previous step checkpoint and redoes the steps since.
    """

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch or batch_idx + 1 >= trainer.num_training_batches:
            return
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
