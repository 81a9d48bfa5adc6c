"""Test-only fault injection: a Lightning callback that makes one rank of a DDP job fail.

Selected from the command line of a test run, with `tests/scripts` on PYTHONPATH::

    python train.py trainer=ddp_cpu +callbacks.fail._target_=fail_on_rank.FailOnRank \
        +callbacks.fail.rank=1 +callbacks.fail.when=setup

`when` picks the moment: `setup` (a data error while the datamodule is set up, before
training), `train_batch` (an error in the middle of training, while the other rank waits
in a gradient all-reduce) or `exit` (the process dies without a Python exception, as
after an out-of-memory kill). `stall_others_s` makes the other ranks sleep that long at the
same batch instead of reaching the next collective: a rank stuck where a dead peer cannot
wake it (as in an NCCL collective, which waits for its timeout).
"""

from __future__ import annotations

import os
import time
from typing import Any

import lightning.pytorch as pl

from litzoo.errors import DataError

MESSAGE = "injected failure: sample 17 of the train split cannot be decoded"


class FailOnRank(pl.Callback):
    def __init__(self, rank: int = 1, when: str = "setup", batch: int = 1, stall_others_s: float = 0) -> None:
        if when not in ("setup", "train_batch", "exit"):
            raise ValueError(f"when={when!r}")
        self.rank, self.when, self.batch, self.stall_others_s = rank, when, batch, stall_others_s

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.when == "setup":
            self._fail(trainer)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.when in ("train_batch", "exit") and batch_idx == self.batch:
            self._fail(trainer)

    def _fail(self, trainer: pl.Trainer) -> None:
        if trainer.global_rank != self.rank:
            time.sleep(self.stall_others_s)
            return
        if self.when == "exit":
            os._exit(17)  # no exception, no cleanup: like a process killed by the OS
        raise DataError(f"{MESSAGE} (rank {trainer.global_rank})")
