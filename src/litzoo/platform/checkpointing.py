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
    # Of equally new files (a best that is a hard link to last.ckpt, or its copy), last.ckpt first.
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name == "last.ckpt"), reverse=True)


def newest_intact_checkpoint(folder: str | Path, resumable: bool = False) -> Path | None:
    """The most recently written checkpoint in `folder` that loads; corrupt ones are skipped and logged.

    `resumable=True` also skips checkpoints without a training state (a best checkpoint that
    `last.ckpt` has moved on from keeps only its weights): what a resumed run starts from.
    """
    for path in checkpoints_newest_first(folder):
        try:
            checkpoint = load_checkpoint_file(path)
        except CheckpointError as error:
            log.warning("Skipping %s", error)
            continue
        if resumable and not is_resumable(checkpoint):
            log.debug("Not resuming from %s: it holds weights only", path)
            continue
        return path
    return None


class AtomicCheckpointIO(TorchCheckpointIO):
    """Crash-safe saving (temp file + fsync + rename) and weights-only loading."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
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

    def load_checkpoint(
        self, path: str | Path, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint_file(path, map_location=map_location or "cpu")


class BestAndLastCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` with the rules a user of ``best`` and ``last.ckpt`` expects,
    and no more copies on disk than resuming needs.

    - A tie with the k-th best replaces it: on a small validation set the monitored metric
      saturates (e.g. the same top-1 at several epochs), and strict improvement would keep the
      earliest, least-trained of the equals; the newest is the better-converged one.
    - ``last.ckpt`` holds the weights at the end of every validation, whether or not they made
      the top k (Lightning 2.6 rewrites it only along with a top-k save). It keeps the whole
      training state (optimizer, schedule, loops, random states): resuming starts from it.
    - A best checkpoint of the step ``last.ckpt`` holds is a hard link to it: one file on disk.
      When ``last.ckpt`` moves on, that best keeps only what evaluation and prediction read
      (weights, hyper-parameters, loop counters): resuming never starts from an older best, so
      its optimizer state would only take disk space (as much again as the weights, for SGD
      with momentum; twice that for Adam).
    - Nothing is written under ``fast_dev_run`` (Lightning 2.6 still writes ``last.ckpt`` when
      training ends).
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
        if self.save_last and fitting and self._last_step_in_last != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        if trainer.fast_dev_run or self._last_step_in_last == trainer.global_step:
            return  # nothing under fast_dev_run; already written along with this step's best
        super()._save_last_checkpoint(trainer, monitor_candidates)

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        last = self._last_path(trainer)
        if filepath == last:
            self._write_last(trainer, last)
        elif self.save_last is True and trainer.state.fn == TrainerFn.FITTING:
            # A top-k save: Lightning writes last.ckpt of this same step right after it, so that
            # is written now and the best becomes a second name of the same file.
            self.last_model_path = last
            self._write_last(trainer, last)
            self._hard_link(trainer, last, filepath)
            self._last_checkpoint_saved = filepath
        else:
            super()._save_checkpoint(trainer, filepath)

    def _last_path(self, trainer: pl.Trainer) -> str:
        return self.format_checkpoint_name(self._monitor_candidates(trainer), self.CHECKPOINT_NAME_LAST)

    def _write_last(self, trainer: pl.Trainer, last: str) -> None:
        # The bests that are the current last.ckpt under another name: once last.ckpt moves on,
        # they keep their weights but not a training state that nothing will resume from.
        superseded = [path for path in self.best_k_models if _same_file(path, last)]
        super()._save_checkpoint(trainer, last)  # a new file (atomic rename): the bests keep the old one
        self._last_step_in_last = trainer.global_step
        if trainer.is_global_zero:
            for path in superseded:
                strip_training_state(path)

    @staticmethod
    def _hard_link(trainer: pl.Trainer, target: str, link: str) -> None:
        if trainer.is_global_zero:
            tmp = Path(link).with_name(f".{Path(link).name}.{os.getpid()}.link")
            tmp.unlink(missing_ok=True)
            try:
                os.link(target, tmp)
            except OSError:  # a filesystem without hard links: a copy
                import shutil

                shutil.copyfile(target, tmp)
            os.replace(tmp, link)
            _fsync_directory(Path(link).parent)
        trainer.strategy.barrier()


# What a checkpoint holds only to resume training; evaluation and prediction need none of it.
TRAINING_STATE_KEYS = ("callbacks", "optimizer_states", "lr_schedulers", "litzoo")


def is_resumable(checkpoint: dict[str, Any]) -> bool:
    """Whether a loaded checkpoint carries the training state `trainer.fit(ckpt_path=...)` restores."""
    return "optimizer_states" in checkpoint and "loops" in checkpoint


def strip_training_state(path: str | Path) -> None:
    """Rewrite a checkpoint without its optimizer/schedule/callback state (atomically, keeping its
    modification time, which says when its weights were taken)."""
    path = Path(path)
    stat = path.stat()
    checkpoint = load_checkpoint_file(path)
    kept = {
        k: v for k, v in checkpoint.items() if k not in TRAINING_STATE_KEYS and not k.endswith("Precision")
    }
    AtomicCheckpointIO().save_checkpoint(kept, path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class StepCheckpoint(ModelCheckpoint):
    """The rolling every-N-steps checkpoint, except after an epoch's last training batch.

    A checkpoint taken there, before the epoch's validation and epoch-end hooks, does not resume
    exactly: Lightning restarts after the finished epoch, so its validation never runs and the
    next epoch starts from another state than in a run left alone. The epoch-end checkpoints
    (``last.ckpt``, the best) cover that point; a kill before they are written resumes from the
    previous step checkpoint and redoes the steps since.

    The step checkpoints exist for a run that dies: when training ends, those no later than
    ``last.ckpt`` are removed (``keep_after_fit=False``, the default), since anything that
    continues the run (``resume=<run_dir> trainer.max_epochs=...``) starts from ``last.ckpt``.
    """

    def __init__(self, *args: Any, keep_after_fit: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keep_after_fit = keep_after_fit

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        last_steps = [
            c._last_step_in_last
            for c in trainer.checkpoint_callbacks
            if isinstance(c, BestAndLastCheckpoint) and c._last_step_in_last >= 0
        ]
        if self.keep_after_fit or not last_steps or trainer.interrupted:
            return
        for path, step in list(self.best_k_models.items()):
            if int(step) <= max(last_steps):
                self._remove_checkpoint(trainer, path)
                del self.best_k_models[path]

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if (
            trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
            or batch_idx + 1 >= trainer.num_training_batches
        ):
            return
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
