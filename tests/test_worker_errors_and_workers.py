"""Loader rough edges: a user error raised in a DataLoader worker reads like any other (its own
paragraph and exit code), and the default number of workers follows the CPUs this process may use."""

from __future__ import annotations

import logging

import pytest
import torch
from conftest import TINY, run_in_process
from test_classification_data import write_imagefolder
from torch.utils.data import Dataset

from litzoo.data.base import BaseDataModule
from litzoo.data.loader import build_dataloader
from litzoo.data.samplers import RandomBatchSampler, SequentialBatchSampler
from litzoo.errors import DataError

MESSAGE = "Cannot decode image /data/bee/3.png: broken data stream. Remove or replace the file.\nSecond line."


class BrokenAt(Dataset):
    """Sample `bad` raises a DataError (chained to the decoder's error, as the readers do)."""

    def __init__(self, size: int = 8, bad: int = 3) -> None:
        self.size, self.bad = size, bad

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> torch.Tensor:
        if index == self.bad:
            try:
                raise OSError("broken data stream")
            except OSError as error:
                raise DataError(MESSAGE) from error
        return torch.tensor(float(index))


class Numbers(BaseDataModule):
    def setup(self, stage: str | None = None) -> None:
        self.train_set = self.val_set = self.test_set = BrokenAt()

    def info(self) -> dict:
        return {}


@pytest.mark.parametrize("split", ["train", "val"])
def test_an_error_in_a_worker_keeps_its_own_message(split):
    datamodule = Numbers(batch_size=2, num_workers=2, persistent_workers=False)
    datamodule.setup()
    loader = datamodule.train_dataloader() if split == "train" else datamodule.val_dataloader()
    with pytest.raises(DataError) as error:
        list(loader)
    assert str(error.value) == MESSAGE  # not torch's "Caught DataError in DataLoader worker process ..."
    # The worker's traceback is not lost: it is the cause, for train.log.
    assert "Original Traceback (most recent call last)" in str(error.value.__cause__)
    assert "OSError: broken data stream" in str(error.value.__cause__)


def test_the_plain_loader_unwraps_too():
    sampler = SequentialBatchSampler(8, 4, num_replicas=1, rank=0)
    with pytest.raises(DataError) as error:
        list(build_dataloader(BrokenAt(), sampler, num_workers=2))
    assert str(error.value) == MESSAGE
    sampler = RandomBatchSampler(8, 4, seed=0, num_replicas=1, rank=0)
    with pytest.raises(DataError, match="^Cannot decode image"):
        list(build_dataloader(BrokenAt(), sampler, num_workers=0))  # in-process: raised as it is


def test_a_broken_image_read_by_workers_ends_with_its_paragraph(tmp_path, capfd):
    """Issue 11: data=imagefolder, one broken PNG, data.num_workers=2 ended with a traceback wall."""
    write_imagefolder(
        tmp_path / "images",
        {
            "train": {"ant": [("L", (12, 12))] * 4, "bee": [("L", (12, 12))] * 4},
            "val": {"ant": [("L", (12, 12))] * 2, "bee": [("L", (12, 12))] * 2},
        },
    )
    broken = tmp_path / "images" / "train" / "bee" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    small = [o for o in TINY if not o.startswith(("data.image_size", "data.batch_size"))]
    code, record = run_in_process(
        [
            *small,
            "data=imagefolder",
            f"data.root={tmp_path / 'images'}",
            "data.image_size=12",
            "data.in_chans=1",
            "data.batch_size=9",
            "data.num_workers=2",
        ],
        tmp_path / "run",
    )
    console = capfd.readouterr()
    assert code == 3 and record["status"] == "failed", record.get("error")
    assert record["error"].startswith(f"Cannot decode image {broken}")
    assert f"Error: Cannot decode image {broken}" in console.err
    assert "Traceback (most recent call last)" not in console.out + console.err
    assert "DataLoader worker process" not in console.out + console.err


def test_default_workers_follow_the_cpus_this_process_may_use(monkeypatch, caplog):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    with caplog.at_level(logging.INFO, logger="litzoo"):
        assert Numbers(batch_size=2, num_workers="auto").num_workers == 2
    assert "data.num_workers=auto: 2 worker processes (2 CPUs available to this process" in caplog.text
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert Numbers(batch_size=2, num_workers="auto").num_workers == 4
    assert Numbers(batch_size=2, num_workers=6).num_workers == 6  # what the user asks for is kept
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)
    assert Numbers(batch_size=2, num_workers="auto").num_workers == 1
