"""The LightningDataModule every litzoo datamodule builds on.

A datamodule owns its data: it reads the real on-disk format, builds the
splits and transforms, and says what the model needs to know about the data
through `info()` (e.g. `num_classes`) before any training starts. The base class
provides the DataLoader plumbing shared by all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
from torch.utils.data import DataLoader, Dataset


class BaseDataModule(pl.LightningDataModule):
    """DataLoaders over `train_set`, `val_set` and `test_set`, which subclasses create in `setup()`.

    Args:
        batch_size: samples per batch *per device* (the global batch multiplies by devices,
            nodes and gradient accumulation).
        num_workers: DataLoader worker processes (0 loads in the main process).
        pin_memory: page-locked host memory for faster host-to-GPU copies.
        persistent_workers: keep workers alive between epochs (when num_workers > 0).
        eval_batch_size: batch size for val/test (defaults to batch_size).
        seed: the run's seed (the platform passes it), for shuffling and sampling.
    """

    collate_fn: Callable[[list[Any]], Any] | None = None

    def __init__(self, batch_size: int, num_workers: int = 0, pin_memory: bool = False,
                 persistent_workers: bool = True, eval_batch_size: int | None = None, seed: int = 0) -> None:
        super().__init__()
        self.seed = seed
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    def info(self) -> dict[str, Any]:
        """What the task needs to know to build its model (e.g. num_classes); cheap to call."""
        raise NotImplementedError

    def trainer_kwargs(self) -> dict[str, Any]:
        """Trainer arguments this datamodule needs (e.g. its own distributed sampling)."""
        return {}

    def _loader(self, dataset: Dataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() did not create this split")
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
            collate_fn=self.collate_fn,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, train=False)
