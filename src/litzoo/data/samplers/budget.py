"""TokenBudgetSampler: fairseq's batch_by_size (batches under a padded-token budget)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from litzoo.data.samplers.sharded import ShardedBatchSampler, _as_lengths, _Plan
from litzoo.errors import ConfigError, DataError


class TokenBudgetSampler(ShardedBatchSampler):
    """Pack samples sorted by length into batches whose padded size fits a token budget (fairseq style).

    A batch's cost is its padded size, ``len(batch) * max(num_tokens)``, where a sample's
    ``num_tokens`` is its length (the largest field for tuple lengths, like fairseq's
    ``max(src, tgt)``). Batches are filled greedily in ascending length order.

    Args:
        lengths: one length per sample: ints or tuples such as ``(source, target)``.
        max_tokens: budget of padded tokens per batch (``None``: no token limit).
        max_sentences: most samples per batch (``None``: no limit).
        required_batch_size_multiple: a full batch is trimmed to a multiple of this (e.g. 8
            for tensor cores); the trimmed samples start the next batch. Batches smaller than
            the multiple stay as they are.
        shuffle: every epoch, break ties between equal lengths randomly and shuffle the batch
            order. Batch shapes do not change between epochs.
        seed, num_replicas, rank, drop_last, even_split: see :class:`ShardedBatchSampler`.
    """

    def __init__(
        self,
        lengths: Sequence[int] | Sequence[Sequence[int]] | np.ndarray,
        max_tokens: int | None = None,
        max_sentences: int | None = None,
        required_batch_size_multiple: int = 1,
        shuffle: bool = False,
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
        self._lengths = _as_lengths(lengths, who)
        if max_tokens is None and max_sentences is None:
            raise ConfigError(f"{who}: set max_tokens, max_sentences or both; neither was given.")
        for name, value in (("max_tokens", max_tokens), ("max_sentences", max_sentences)):
            if value is not None and value < 1:
                raise ConfigError(f"{who}: {name} must be a positive integer or None, got {value}.")
        if required_batch_size_multiple < 1:
            raise ConfigError(
                f"{who}: required_batch_size_multiple must be at least 1, got {required_batch_size_multiple}."
            )
        self.max_tokens = None if max_tokens is None else int(max_tokens)
        self.max_sentences = None if max_sentences is None else int(max_sentences)
        self.required_batch_size_multiple = int(required_batch_size_multiple)
        tokens = self._lengths if self._lengths.ndim == 1 else self._lengths.max(axis=1)
        self._num_tokens = tokens
        if self.max_tokens is not None:
            too_long = np.flatnonzero(tokens > self.max_tokens)
            if too_long.size:
                i = int(too_long[0])
                raise DataError(
                    f"{who}: sample {i} has {int(tokens[i])} tokens, more than max_tokens={self.max_tokens} "
                    f"({too_long.size} sample(s) are too long). Raise max_tokens or truncate/filter the "
                    "long samples."
                )
        self._sorted = np.argsort(tokens, kind="stable")
        self._starts, self._ends = self._pack(tokens[self._sorted])

    def _pack(self, sorted_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Greedy batch boundaries over ascending token counts.

        A batch starting at ``s`` takes the most samples ``m`` with ``m <= max_sentences`` and
        ``m * tokens[s + m - 1] <= max_tokens`` (ascending order makes the last one the longest),
        then is trimmed to a multiple of ``required_batch_size_multiple``. One Python step per
        batch, each vectorised over at most ``max_tokens / tokens[s]`` candidates.
        """
        n = sorted_tokens.size
        mult = self.required_batch_size_multiple
        starts: list[int] = []
        s = 0
        while s < n:
            limit = n - s
            if self.max_sentences is not None:
                limit = min(limit, self.max_sentences)
            if self.max_tokens is not None:
                limit = min(limit, self.max_tokens // int(sorted_tokens[s]))
                window = sorted_tokens[s : s + limit]
                cost = np.arange(1, window.size + 1, dtype=np.int64) * window  # non-decreasing
                limit = int(np.searchsorted(cost, self.max_tokens, side="right"))
            if s + limit < n and limit >= mult:
                limit -= limit % mult
            starts.append(s)
            s += limit
        start_array = np.asarray(starts, dtype=np.int64)
        return start_array, np.append(start_array[1:], n)

    @property
    def lengths(self) -> np.ndarray:
        return self._lengths

    @property
    def num_global_batches(self) -> int:
        return int(self._starts.size)

    def _build_plan(self, epoch: int) -> _Plan:
        if not self.shuffle:
            return _Plan(self._sorted, self._starts, self._ends)
        rng = np.random.default_rng([self.seed, epoch])
        perm = rng.permutation(self._num_tokens.size)
        order = perm[np.argsort(self._num_tokens[perm], kind="stable")]  # random ties, same shapes
        batch_perm = rng.permutation(self._starts.size)
        return _Plan(order, self._starts[batch_perm], self._ends[batch_perm])

    def stats(self, epoch: int | None = None) -> dict[str, Any]:
        out = super().stats(epoch)
        plan = self.plan(epoch)
        starts = np.sort(plan.starts)
        sizes = np.diff(np.append(starts, plan.order.size))
        longest = np.maximum.reduceat(self._num_tokens[plan.order], starts)
        out["max_batch_cost"] = int((sizes * longest).max())
        return out
