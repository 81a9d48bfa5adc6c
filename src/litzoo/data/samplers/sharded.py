"""What every batch sampler shares: epoch plans, DDP sharding and resumable state (`ShardedBatchSampler`)."""

from __future__ import annotations

import abc
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from litzoo.data.samplers.buckets import Key
from litzoo.errors import CheckpointError, ConfigError, DataError


@dataclass(frozen=True)
class _Plan:
    """One epoch's global batches: batch ``i`` is ``order[starts[i]:ends[i]]``, in yield order.

    The batches are disjoint, contiguous pieces of ``order`` that together cover it.
    """

    order: np.ndarray
    starts: np.ndarray
    ends: np.ndarray


class _Progress:
    """Position of one iteration; a new iteration or ``set_epoch`` replaces it, so a stale
    generator keeps counting on an object the sampler no longer reports."""

    __slots__ = ("epoch", "yielded")

    def __init__(self, epoch: int, yielded: int) -> None:
        self.epoch = epoch
        self.yielded = yielded


def distributed_world() -> tuple[int, int]:
    """``(world_size, rank)`` of the initialised ``torch.distributed`` process group, else ``(1, 0)``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


class ShardedBatchSampler(abc.ABC):
    """Base class: deterministic per ``(seed, epoch)``, self-sharding across ranks, resumable.

    Subclasses compute the number of global batches once (it must not depend on the epoch,
    so every rank and every epoch agree on the length) and a :class:`_Plan` per epoch.

    Args:
        shuffle: reshuffle every epoch (from ``seed`` and the epoch).
        seed: seed of the shuffles; must be the same on every rank.
        num_replicas: number of ranks; ``None`` reads ``torch.distributed`` at iteration time.
        rank: this process's rank; ``None`` reads ``torch.distributed`` at iteration time.
        drop_last: under DDP, drop the last ``num_batches % world_size`` batches instead of
            repeating batches from the start of the epoch to even the ranks out.
        even_split: under DDP, split the largest batches in two until the number of batches
            divides by the world size, instead of repeating batches: every sample is seen exactly
            once (impossible only when there are fewer samples than the batches the ranks need,
            world size x ceil(batches / world size); then batches are repeated). Meant
            for evaluation, where a repeated batch would be counted twice by the metrics.
    """

    #: Marks batch samplers that split the data across ranks themselves; the platform must then
    #: build the Trainer with ``use_distributed_sampler=False``.
    shards_itself: ClassVar[bool] = True

    def __init__(
        self,
        *,
        shuffle: bool,
        seed: int,
        num_replicas: int | None,
        rank: int | None,
        drop_last: bool,
        even_split: bool = False,
    ) -> None:
        name = type(self).__name__
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"{name}: seed must be a non-negative integer, got {seed!r}.")
        if num_replicas is not None and num_replicas < 1:
            raise ConfigError(f"{name}: num_replicas must be at least 1, got {num_replicas}.")
        if rank is not None and (rank < 0 or (num_replicas is not None and rank >= num_replicas)):
            raise ConfigError(
                f"{name}: rank must be in [0, num_replicas), got rank={rank}, num_replicas={num_replicas}."
            )
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self._num_replicas = num_replicas
        self._rank = rank
        # Private on purpose: Lightning treats an object with public `batch_size` *and* `drop_last`
        # as a torch BatchSampler and tries to rebuild it around its own sampler.
        self._drop_last = bool(drop_last)
        if drop_last and even_split:
            raise ConfigError(
                f"{name}: drop_last=True and even_split=True are two answers to the same question (what to "
                "do when the batches do not divide by the world size); set only one of them."
            )
        self.even_split = bool(even_split)
        self._epoch = 0
        self._resume_skip = 0
        self._progress: _Progress | None = None
        self._plan_cache: tuple[tuple[int, int], _Plan] | None = None

    # -- what subclasses provide ------------------------------------------------------------

    @property
    @abc.abstractmethod
    def num_global_batches(self) -> int:
        """Number of batches of one epoch over all ranks (before DDP padding/dropping)."""

    @abc.abstractmethod
    def _build_plan(self, epoch: int) -> _Plan:
        """The global batches of ``epoch`` in the order they are yielded."""

    @property
    @abc.abstractmethod
    def lengths(self) -> np.ndarray:
        """Sample lengths, shape ``(N,)`` or ``(N, k)``, used for padding statistics."""

    # -- epochs and ranks -------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration yields (reshuffles when ``shuffle``)."""
        epoch = int(epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._resume_skip = 0  # a restored position belongs to the epoch it was saved in
            self._progress = None

    @property
    def sampler(self) -> ShardedBatchSampler:
        """This sampler itself.

        Lightning's ``_set_sampler_epoch`` calls ``set_epoch`` on ``dataloader.sampler`` and on
        ``dataloader.batch_sampler.sampler``, never on the batch sampler itself; exposing the
        sampler as its own ``sampler`` makes Lightning reshuffle it every epoch.
        """
        return self

    @property
    def num_replicas(self) -> int:
        return self._num_replicas if self._num_replicas is not None else distributed_world()[0]

    @property
    def rank(self) -> int:
        return self._rank if self._rank is not None else distributed_world()[1]

    def __len__(self) -> int:
        """Batches this rank yields per epoch (the same on every rank)."""
        return self._rank_length(self.num_global_batches, self.num_replicas)

    def _rank_length(self, num_batches: int, world: int) -> int:
        return num_batches // world if self._drop_last else -(-num_batches // world)

    def _rank_positions(self, epoch: int | None = None) -> np.ndarray:
        """Positions in the global batch list that this rank yields, padded or trimmed to equal length."""
        world, rank = self.num_replicas, self.rank
        if rank >= world:
            raise ConfigError(
                f"{type(self).__name__}: rank {rank} is not below num_replicas {world}. Leave both unset "
                "to read them from torch.distributed, or set them consistently."
            )
        per_rank = self._rank_length(self.num_global_batches, world)
        total = int(self.plan(epoch).starts.size)  # more than num_global_batches after an even split
        if per_rank == 0:
            raise ConfigError(
                f"{type(self).__name__}: an epoch has {total} batches, fewer than the {world} processes, "
                "so with drop_last=True no rank gets a batch. Use drop_last=False, a smaller batch size "
                "or fewer processes."
            )
        # Positions past the end wrap to the start: those batches are seen twice this epoch.
        return np.arange(rank, per_rank * world, world, dtype=np.int64) % total

    # -- iteration --------------------------------------------------------------------------

    def plan(self, epoch: int | None = None) -> _Plan:
        """The global batch plan of ``epoch`` (default: the current one), cached for the last epoch.

        With ``even_split`` the plan depends on the world size too (its largest batches are split).
        """
        epoch = self._epoch if epoch is None else int(epoch)
        world = self.num_replicas if self.even_split else 1
        if self._plan_cache is None or self._plan_cache[0] != (epoch, world):
            plan = self._build_plan(epoch)
            if world > 1:
                plan = _split_to_multiple(plan, world)
            self._plan_cache = ((epoch, world), plan)
        return self._plan_cache[1]

    def global_batches(self, epoch: int | None = None) -> list[list[int]]:
        """All batches of ``epoch`` over all ranks, before sharding (for inspection and tests)."""
        plan = self.plan(epoch)
        return [plan.order[s:e].tolist() for s, e in zip(plan.starts.tolist(), plan.ends.tolist())]

    def __iter__(self) -> Iterator[list[int]]:
        # A generator: nothing below runs before the first next(), so a set_epoch() that comes
        # between iter() and the first batch (Lightning does this) still takes effect.
        progress = _Progress(self._epoch, self._resume_skip)
        self._resume_skip = 0
        self._progress = progress
        plan = self.plan(progress.epoch)
        positions = self._rank_positions(progress.epoch)[progress.yielded :].tolist()
        order, starts, ends = plan.order, plan.starts, plan.ends
        for p in positions:
            # Count before yielding: a stateful DataLoader snapshots the state right after
            # fetching a batch's indices, and that snapshot must include the batch.
            progress.yielded += 1
            yield order[starts[p] : ends[p]].tolist()

    # -- resumable state --------------------------------------------------------------------

    def state_dict(self) -> dict[str, int]:
        """Position to resume from: epoch, seed, world size and batches already yielded on this rank."""
        progress = self._progress
        if progress is not None:
            epoch, yielded = progress.epoch, progress.yielded
        else:
            epoch, yielded = self._epoch, self._resume_skip
        return {
            "epoch": epoch,
            "seed": self.seed,
            "num_replicas": self.num_replicas,
            "batches_yielded": yielded,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state``: the next iteration skips the batches it records as yielded."""
        name = type(self).__name__
        missing = [k for k in ("epoch", "seed", "batches_yielded") if k not in state]
        if missing:
            raise CheckpointError(
                f"{name}: the sampler state in the checkpoint lacks {missing} (it has {sorted(state)}). "
                "The checkpoint was written by another sampler; resume with the sampler that wrote it."
            )
        if int(state["seed"]) != self.seed:
            raise CheckpointError(
                f"{name}: the checkpoint was written with sampler seed {state['seed']} but this sampler has "
                f"seed {self.seed}, so the resumed order would differ. Set the data seed to {state['seed']}."
            )
        epoch, yielded = int(state["epoch"]), int(state["batches_yielded"])
        saved_world, world = int(state.get("num_replicas", self.num_replicas)), self.num_replicas
        if saved_world != world:
            # The global position is exact; the split of the rest over a new world size is not.
            yielded = (yielded * saved_world) // world
            warnings.warn(
                f"{name}: resuming on {world} processes from a checkpoint written on {saved_world}; "
                "continuing at the same global batch, but ranks see a different split of the rest.",
                stacklevel=2,
            )
        if yielded >= len(self):
            # The saved epoch was complete: continue with the next one.
            epoch, yielded = epoch + 1, 0
        self._epoch = epoch
        self._resume_skip = yielded
        self._progress = None

    # -- statistics -------------------------------------------------------------------------

    def stats(self, epoch: int | None = None) -> dict[str, Any]:
        """Sample and batch counts, batch sizes and the padding fraction of ``epoch``'s batches.

        The padding fraction is ``1 - real / padded`` where a batch is padded to its longest
        sample (per field for tuple lengths), as :class:`~litzoo.data.batchify.Pad` does.
        """
        plan = self.plan(epoch)
        sizes, real, padded = _padding_totals(self.lengths, plan)
        return {
            "sampler": type(self).__name__,
            "num_samples": int(self.lengths.shape[0]),
            "num_batches": int(plan.starts.size),
            "num_replicas": int(self.num_replicas),
            "num_batches_per_rank": len(self),
            "batch_size_min": int(sizes.min()),
            "batch_size_mean": float(sizes.mean()),
            "batch_size_max": int(sizes.max()),
            "real_tokens": real,
            "padded_tokens": padded,
            "padding_fraction": 1.0 - real / padded if padded else 0.0,
        }


def _split_to_multiple(plan: _Plan, world: int) -> _Plan:
    """Split the largest batches in two (first half first) until the batch count divides by ``world``.

    At most ``world - 1`` splits, each O(batches); stops early when every batch has one sample
    (fewer samples than ranks), leaving the rest to the usual repeat padding.
    """
    starts, ends = plan.starts.tolist(), plan.ends.tolist()
    target = -(-len(starts) // world) * world
    while len(starts) < target:
        sizes = np.subtract(ends, starts)
        i = int(np.argmax(sizes))  # the first of the largest batches
        if sizes[i] < 2:
            break
        middle = starts[i] + (int(sizes[i]) + 1) // 2
        starts.insert(i + 1, middle)
        ends.insert(i + 1, ends[i])
        ends[i] = middle
    return _Plan(plan.order, np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64))


def _padding_totals(lengths: np.ndarray, plan: _Plan) -> tuple[np.ndarray, int, int]:
    """Batch sizes, real and padded token counts of a plan, without a Python loop over batches."""
    by_position = np.argsort(plan.starts, kind="stable")
    starts = plan.starts[by_position]
    sizes = (plan.ends - plan.starts)[by_position]
    ordered = lengths[plan.order]
    longest = np.maximum.reduceat(ordered, starts, axis=0)
    padded = int((sizes[:, None] * longest.reshape(sizes.size, -1)).sum())  # per field for tuple lengths
    return sizes, int(lengths.sum()), padded


def _as_lengths(values: Any, who: str, what: str = "lengths") -> np.ndarray:
    """Validate lengths: a non-empty int array of shape (N,) or (N, k) with every entry >= 1."""
    try:
        array = np.asarray(values)
    except ValueError as exc:
        raise DataError(f"{who}: {what} must be ints or equal-size tuples of ints ({exc}).") from exc
    if array.size == 0 or array.ndim not in (1, 2) or (array.ndim == 2 and array.shape[1] == 0):
        raise DataError(
            f"{who}: {what} must be a non-empty list of ints or of equal-size tuples of ints; got an array "
            f"of shape {array.shape}. Compute one length per sample of the dataset."
        )
    if array.dtype.kind == "f" and np.all(np.mod(array, 1) == 0):
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise DataError(f"{who}: {what} must be integers, got values of dtype {array.dtype}.")
    array = array.astype(np.int64, copy=False)
    bad = np.flatnonzero((array <= 0) if array.ndim == 1 else (array <= 0).any(axis=1))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{who}: sample {i} has {what} {array[i].tolist()}; every length must be at least 1. "
            "Filter out empty samples before building the sampler."
        )
    return array


def _as_key(value: Any) -> Key:
    # Any sequence (tuple, list, OmegaConf ListConfig from a Hydra config, array) is a tuple key.
    if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        return tuple(int(v) for v in value)
    return int(value)


def _check_batch_size(who: str, batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"{who}: batch_size must be a positive integer, got {batch_size!r}.")
    return int(batch_size)
