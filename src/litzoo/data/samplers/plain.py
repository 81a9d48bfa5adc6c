"""RandomBatchSampler / SequentialBatchSampler: plain batches, the datamodules' default."""

from __future__ import annotations

import numpy as np

from litzoo.data.samplers.sharded import ShardedBatchSampler, _check_batch_size, _Plan
from litzoo.errors import DataError


class RandomBatchSampler(ShardedBatchSampler):
    """Batches of ``batch_size`` consecutive indices of a per-epoch permutation (the last may be short).

    What ``DataLoader(batch_size=..., shuffle=True)`` does, but deterministic per ``(seed, epoch)``,
    self-sharding and resumable like the length-aware samplers: the default training sampler
    of :class:`~litzoo.data.base.BaseDataModule`.

    Args:
        num_samples: size of the dataset.
        batch_size: samples per batch.
        shuffle: permute the indices every epoch; ``False`` keeps ``0, 1, ..., N - 1``.
        seed, num_replicas, rank, drop_last, even_split: see :class:`ShardedBatchSampler`.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_last: bool = False,
        even_split: bool = False,
    ) -> None:
        super().__init__(
            shuffle=shuffle,
            seed=seed,
            num_replicas=num_replicas,
            rank=rank,
            drop_last=drop_last,
            even_split=even_split,
        )
        who = type(self).__name__
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
            raise DataError(
                f"{who}: num_samples must be a positive integer, got {num_samples!r}. An empty split "
                "cannot be batched: check the dataset's files for this split."
            )
        self.num_samples = int(num_samples)
        self.batch_size = _check_batch_size(who, batch_size)
        self._starts = np.arange(0, self.num_samples, self.batch_size, dtype=np.int64)
        self._ends = np.minimum(self._starts + self.batch_size, self.num_samples)

    @property
    def lengths(self) -> np.ndarray:
        # Samples of one size: the padding statistics come out as zero padding.
        return np.ones(self.num_samples, dtype=np.int64)

    @property
    def num_global_batches(self) -> int:
        return int(self._starts.size)

    def _build_plan(self, epoch: int) -> _Plan:
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)
        else:
            order = np.arange(self.num_samples, dtype=np.int64)
        return _Plan(order, self._starts, self._ends)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_samples={self.num_samples}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, seed={self.seed})"
        )


class SequentialBatchSampler(RandomBatchSampler):
    """Batches of ``batch_size`` indices in dataset order: the default evaluation sampler.

    Under DDP, rank ``r`` takes batches ``r, r + W, ...``; with ``even_split=True`` (what the
    datamodules use) no batch is repeated, so every sample is evaluated exactly once.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_last: bool = False,
        even_split: bool = False,
    ) -> None:
        super().__init__(
            num_samples,
            batch_size,
            shuffle=False,
            num_replicas=num_replicas,
            rank=rank,
            drop_last=drop_last,
            even_split=even_split,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_samples={self.num_samples}, batch_size={self.batch_size})"
