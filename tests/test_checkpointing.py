"""Crash-safe checkpoint files: atomic saves, corrupt files detected, the newest intact one found."""

from __future__ import annotations

import os
import time

import pytest
import torch

from litzoo.errors import CheckpointError
from litzoo.platform.checkpointing import AtomicCheckpointIO, load_checkpoint_file, newest_intact_checkpoint


def test_save_interrupted_mid_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"step": 1, "w": torch.ones(3)}, path)

    def dies_halfway(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(CheckpointError) as error:
        io.save_checkpoint({"step": 2, "w": torch.zeros(3)}, path)
    assert "the disk is full" in str(error.value) and f"The last good checkpoint is {path}" in str(
        error.value
    )
    monkeypatch.undo()
    assert load_checkpoint_file(path)["step"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temporary file left behind


def test_truncated_checkpoint_is_named_and_skipped(tmp_path):
    io = AtomicCheckpointIO()
    folder = tmp_path / "checkpoints"
    io.save_checkpoint({"step": 3, "w": torch.randn(1000)}, folder / "step000003.ckpt")
    time.sleep(0.01)
    io.save_checkpoint({"step": 6, "w": torch.randn(1000)}, folder / "step000006.ckpt")
    newest = folder / "step000006.ckpt"
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # cut off, as by a crash without atomic writes
    os.utime(newest)
    with pytest.raises(CheckpointError, match="step000006.ckpt is truncated or corrupt"):
        load_checkpoint_file(newest)
    assert newest_intact_checkpoint(folder) == folder / "step000003.ckpt"


def test_no_checkpoint_at_all(tmp_path):
    assert newest_intact_checkpoint(tmp_path / "missing") is None
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint_file(tmp_path / "nope.ckpt")


def _scripted_module(scores: list[float]):
    """A module that trains one scalar and logs a scripted validation score per epoch."""
    import lightning.pytorch as pl

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, batch_idx):
            return (self.weight - 1).pow(2).sum()

        def validation_step(self, batch, batch_idx):
            self.log("val/score", scores[self.current_epoch])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    return Module()


def test_best_keeps_the_newest_of_equal_scores_and_last_holds_the_final_weights(tmp_path):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from litzoo.platform.checkpointing import BestAndLastCheckpoint

    scores = [0.5, 0.9, 0.9, 0.8]  # epochs 1 and 2 tie for the best; epoch 3 is worse
    callback = BestAndLastCheckpoint(
        dirpath=tmp_path,
        filename="epoch{epoch}",
        auto_insert_metric_name=False,
        monitor="val/score",
        mode="max",
        save_top_k=1,
        save_last=True,
    )
    trainer = pl.Trainer(
        max_epochs=len(scores),
        callbacks=[callback],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
    )
    data = DataLoader(torch.zeros(2, 1), batch_size=1)
    trainer.fit(_scripted_module(scores), data, data)

    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["epoch2.ckpt", "last.ckpt"]
    assert callback.best_model_path == str(tmp_path / "epoch2.ckpt")
    last = load_checkpoint_file(tmp_path / "last.ckpt")
    assert (last["epoch"], last["global_step"]) == (3, 8)  # the end of training, not the best's weights


def test_step_checkpoints_skip_the_last_batch_of_an_epoch(tmp_path):
    """A checkpoint after an epoch's last batch (before its validation) would resume past that validation."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from litzoo.platform.checkpointing import StepCheckpoint

    callback = StepCheckpoint(
        dirpath=tmp_path,
        filename="step{step}",
        auto_insert_metric_name=False,
        every_n_train_steps=2,
        monitor="step",
        mode="max",
        save_top_k=-1,
        keep_after_fit=True,
    )
    trainer = pl.Trainer(
        max_epochs=2,
        callbacks=[callback],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
    )
    data = DataLoader(torch.zeros(4, 1), batch_size=1)  # 4 steps per epoch
    trainer.fit(_scripted_module([0.1, 0.2]), data, DataLoader(torch.zeros(1, 1)))
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["step2.ckpt", "step6.ckpt"]


def _fit_scripted(tmp_path, scores: list[float], **callback_kwargs):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from litzoo.platform.checkpointing import BestAndLastCheckpoint

    callback = BestAndLastCheckpoint(
        dirpath=tmp_path,
        filename="epoch{epoch}",
        auto_insert_metric_name=False,
        monitor="val/score",
        mode="max",
        save_top_k=1,
        save_last=True,
        **callback_kwargs,
    )
    trainer = pl.Trainer(
        max_epochs=len(scores),
        callbacks=[callback],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
        plugins=[AtomicCheckpointIO()],
    )
    data = DataLoader(torch.zeros(2, 1), batch_size=1)
    trainer.fit(_scripted_module(scores), data, data)
    return trainer, callback


def test_a_best_of_the_last_step_is_a_hard_link_to_last_ckpt(tmp_path):
    _, callback = _fit_scripted(tmp_path, [0.5, 0.9, 0.9])  # the final epoch is (tied for) the best
    best, last = tmp_path / "epoch2.ckpt", tmp_path / "last.ckpt"
    assert callback.best_model_path == str(best)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch2.ckpt", "last.ckpt"]  # no temporary files
    assert os.path.samefile(best, last) and best.stat().st_nlink == 2  # one file on disk, two names
    state = load_checkpoint_file(last)
    assert (state["epoch"], state["global_step"]) == (2, 6) and "optimizer_states" in state


def test_an_older_best_keeps_its_weights_and_last_ckpt_the_training_state(tmp_path):
    from litzoo.platform.checkpointing import is_resumable

    _, callback = _fit_scripted(tmp_path, [0.5, 0.9, 0.8])  # epoch 1 stays the best
    best, last = tmp_path / "epoch1.ckpt", tmp_path / "last.ckpt"
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["epoch1.ckpt", "last.ckpt"]
    assert not os.path.samefile(best, last)
    best_state, last_state = load_checkpoint_file(best), load_checkpoint_file(last)
    assert (best_state["global_step"], last_state["global_step"]) == (4, 6)
    assert not is_resumable(best_state) and is_resumable(last_state)
    assert not {"optimizer_states", "lr_schedulers", "callbacks"} & set(best_state)
    assert best_state["state_dict"]["weight"] != last_state["state_dict"]["weight"]  # the epoch-1 weights
    assert best.stat().st_mtime_ns < last.stat().st_mtime_ns  # it still says when its weights were taken
    # resuming starts from last.ckpt, never from a weights-only best
    os.utime(best)  # even if that best were the newer file
    assert newest_intact_checkpoint(tmp_path, resumable=True) == last
    assert newest_intact_checkpoint(tmp_path) == best


def test_step_checkpoints_are_removed_when_training_ends_and_last_ckpt_supersedes_them(tmp_path):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from litzoo.platform.checkpointing import BestAndLastCheckpoint, StepCheckpoint

    steps = StepCheckpoint(
        dirpath=tmp_path,
        filename="step{step}",
        auto_insert_metric_name=False,
        every_n_train_steps=2,
        monitor="step",
        mode="max",
        save_top_k=-1,
    )
    best = BestAndLastCheckpoint(
        dirpath=tmp_path,
        filename="epoch{epoch}",
        auto_insert_metric_name=False,
        monitor="val/score",
        mode="max",
        save_top_k=1,
        save_last=True,
    )
    seen: list[str] = []

    class Snapshot(pl.Callback):  # what the folder held just before training ended
        def on_train_epoch_end(self, trainer, pl_module):
            seen[:] = sorted(p.name for p in tmp_path.glob("*.ckpt"))

    trainer = pl.Trainer(
        max_epochs=2,
        callbacks=[steps, best, Snapshot()],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
    )
    data = DataLoader(torch.zeros(4, 1), batch_size=1)
    trainer.fit(_scripted_module([0.1, 0.2]), data, DataLoader(torch.zeros(1, 1)))
    assert {"step2.ckpt", "step6.ckpt"} <= set(seen)
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["epoch1.ckpt", "last.ckpt"]


def test_nothing_is_written_under_fast_dev_run(tmp_path):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from litzoo.platform.checkpointing import BestAndLastCheckpoint

    callback = BestAndLastCheckpoint(dirpath=tmp_path, monitor="val/score", mode="max", save_last=True)
    trainer = pl.Trainer(
        fast_dev_run=True,
        callbacks=[callback],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    data = DataLoader(torch.zeros(2, 1), batch_size=1)
    trainer.fit(_scripted_module([0.5]), data, data)
    assert list(tmp_path.iterdir()) == []  # Lightning 2.6 alone writes last.ckpt when training ends
