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
    assert "the disk is full" in str(error.value) and f"The last good checkpoint is {path}" in str(error.value)
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
