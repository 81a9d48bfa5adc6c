"""Batch samplers that group samples of similar length, shard themselves under DDP and resume mid-epoch.

Five samplers share one machinery (:class:`ShardedBatchSampler`):

- :class:`RandomBatchSampler` / :class:`SequentialBatchSampler` -- plain batches of
  ``batch_size`` over a (shuffled) index order: the default of every datamodule.
- :class:`FixedBucketSampler` -- GluonNLP's bucketing: samples go to the bucket with the
  smallest key that fits them; each bucket is cut into batches of its own batch size.
- :class:`SortedBucketSampler` -- GluonNLP's sort-within-chunks: chunks of ``mult * batch_size``
  samples are sorted by a key and cut into batches.
- :class:`TokenBudgetSampler` -- fairseq's ``batch_by_size``: samples sorted by length are
  packed greedily so a batch's padded size (``batch size x longest sample``) stays under
  ``max_tokens``.

Each sampler yields lists of dataset indices (use it as ``DataLoader(batch_sampler=...)``).

Determinism: the order of epoch ``e`` is a pure function of ``(seed, epoch)``: it comes from
``numpy.random.default_rng([seed, e])``. ``set_epoch(e)`` selects the epoch, as with
``DistributedSampler``; Lightning calls it each epoch (see :attr:`ShardedBatchSampler.sampler`).

Distributed training: every rank builds the same global list of batches, pads it to a multiple
of the world size by repeating batches from its start (or drops the tail with ``drop_last``),
and takes batches ``rank, rank + W, rank + 2W, ...``. So ranks see disjoint shares (apart from
the repeated batches) and all get the same number of batches, which DDP needs to not hang at
the end of an epoch. With ``even_split`` (used for evaluation) the largest batches are split in
two instead, until the count divides by the world size, so no sample is seen twice. World size
and rank are read from ``torch.distributed`` when the sampler is iterated, because Lightning
creates the process group after the datamodule is built. Lightning cannot inject its
``DistributedSampler`` into a batch sampler, so the Trainer must run with
``use_distributed_sampler=False`` when these samplers are used (docs/data_api.md); a
:class:`~litzoo.datamodules.base.BaseDataModule` asks for it in ``trainer_kwargs()``.

Resuming: ``state_dict()`` records ``{epoch, seed, num_replicas, batches_yielded}``;
``load_state_dict()`` makes the next iteration skip the batches already yielded, so a run
resumed from a mid-epoch checkpoint continues with the batch that would have come next. A
stateful DataLoader (:func:`litzoo.datamodules.loader.build_dataloader`) stores this state
in Lightning checkpoints.
"""

from __future__ import annotations

import abc
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from litzoo.errors import CheckpointError, ConfigError, DataError

__all__ = [
    "BucketScheme",
    "ConstWidthBucket",
    "LinearWidthBucket",
    "ExpWidthBucket",
    "resolve_bucket_scheme",
    "distributed_world",
    "ShardedBatchSampler",
    "RandomBatchSampler",
    "SequentialBatchSampler",
    "FixedBucketSampler",
    "SortedBucketSampler",
    "TokenBudgetSampler",
]

Key = int | tuple[int, ...]


# --------------------------------------------------------------------------------------------
# Bucket schemes (GluonNLP's formulas, same rounding)
# --------------------------------------------------------------------------------------------


class BucketScheme(abc.ABC):
    """Generates bucket keys from the longest and shortest lengths and the number of buckets."""

    @abc.abstractmethod
    def __call__(self, max_lengths: Key, min_lengths: Key, num_buckets: int) -> list[Key]:
        """Return ``num_buckets`` keys (ints, or tuples when lengths are tuples)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(vars(self).items()))))


def _per_dimension(fn: Any, max_lengths: Key, min_lengths: Key, num_buckets: int) -> list[Key]:
    """Apply a 1-d scheme to every dimension of tuple lengths and zip the keys back into tuples."""
    if isinstance(max_lengths, tuple):
        columns = [fn(mx, mn, num_buckets) for mx, mn in zip(max_lengths, min_lengths)]
        return [tuple(col[i] for col in columns) for i in range(num_buckets)]
    return fn(max_lengths, min_lengths, num_buckets)


class ConstWidthBucket(BucketScheme):
    """Buckets of equal width ``max((1 + max - min) // num_buckets, 1)``, counted down from the max."""

    def __call__(self, max_lengths: Key, min_lengths: Key, num_buckets: int) -> list[Key]:
        def one(mx: int, mn: int, n: int) -> list[int]:
            width = max((1 + mx - mn) // n, 1)
            return [max(mx - i * width, mn) for i in range(n)]

        return _per_dimension(one, max_lengths, min_lengths, num_buckets)


class LinearWidthBucket(BucketScheme):
    """Bucket widths growing linearly, ``w_i = alpha * i + 1``; the last key is at least the max."""

    def __call__(self, max_lengths: Key, min_lengths: Key, num_buckets: int) -> list[Key]:
        def one(mx: int, mn: int, n: int) -> list[int]:
            alpha = 2 * float(mx - mn - n) / (n * (n + 1))
            keys = [int(round(mn + alpha * (((i + 1) * (i + 2)) / 2) + i + 1)) for i in range(n)]
            keys[-1] = max(keys[-1], mx)
            return keys

        return _per_dimension(one, max_lengths, min_lengths, num_buckets)


class ExpWidthBucket(BucketScheme):
    """Bucket widths growing geometrically, ``w_i = bucket_len_step * w_{i-1}``; the last key is at least the max."""

    def __init__(self, bucket_len_step: float = 1.1) -> None:
        if not bucket_len_step > 1.0:
            raise ConfigError(
                f"ExpWidthBucket: bucket_len_step must be larger than 1 (got {bucket_len_step}); "
                "use ConstWidthBucket for equal widths."
            )
        self.bucket_len_step = float(bucket_len_step)

    def __call__(self, max_lengths: Key, min_lengths: Key, num_buckets: int) -> list[Key]:
        step = self.bucket_len_step

        def one(mx: int, mn: int, n: int) -> list[int]:
            initial_width = (mx - mn) * (step - 1) / (math.pow(step, n) - 1)
            keys = [
                int(round(mn + initial_width * (math.pow(step, i + 1) - 1) / (step - 1))) for i in range(n)
            ]
            keys[-1] = max(keys[-1], mx)
            return keys

        return _per_dimension(one, max_lengths, min_lengths, num_buckets)

    def __repr__(self) -> str:
        return f"ExpWidthBucket(bucket_len_step={self.bucket_len_step})"


_SCHEME_NAMES: dict[str, type[BucketScheme]] = {
    "constant": ConstWidthBucket,
    "const": ConstWidthBucket,
    "linear": LinearWidthBucket,
    "exp": ExpWidthBucket,
    "exponential": ExpWidthBucket,
}


def resolve_bucket_scheme(scheme: BucketScheme | str | Mapping[str, Any] | None) -> BucketScheme:
    """Accept a scheme object, a name ("constant", "linear", "exp") or ``{"name": "exp", "bucket_len_step": 1.2}``."""
    if scheme is None:
        return ConstWidthBucket()
    if isinstance(scheme, BucketScheme):
        return scheme
    if isinstance(scheme, str):
        name, options = scheme, {}
    elif isinstance(scheme, Mapping):
        options = dict(scheme)
        name = options.pop("name", None)
    else:
        name, options = None, {}
    cls = _SCHEME_NAMES.get(str(name).lower()) if name is not None else None
    if cls is None:
        raise ConfigError(
            f"Unknown bucket_scheme {scheme!r}. Use 'constant', 'linear' or 'exp' (or a mapping such as "
            "{name: exp, bucket_len_step: 1.2}, or a BucketScheme instance)."
        )
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(f"bucket_scheme {scheme!r}: {exc}.") from exc


# --------------------------------------------------------------------------------------------
# Shared machinery: epoch plans, DDP sharding, resumable state
# --------------------------------------------------------------------------------------------


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
        sample (per field for tuple lengths), as :class:`~litzoo.datamodules.batchify.Pad` does.
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


# --------------------------------------------------------------------------------------------
# RandomBatchSampler / SequentialBatchSampler (the datamodules' default)
# --------------------------------------------------------------------------------------------


class RandomBatchSampler(ShardedBatchSampler):
    """Batches of ``batch_size`` consecutive indices of a per-epoch permutation (the last may be short).

    What ``DataLoader(batch_size=..., shuffle=True)`` does, but deterministic per ``(seed, epoch)``,
    self-sharding and resumable like the length-aware samplers: the default training sampler
    of :class:`~litzoo.datamodules.base.BaseDataModule`.

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


# --------------------------------------------------------------------------------------------
# FixedBucketSampler
# --------------------------------------------------------------------------------------------


def _match_bucket_keys(keys: list[Key], lengths: np.ndarray, who: str) -> np.ndarray:
    """Bucket of every sample: among the keys that fit it, the one with the least padding.

    Keys are sorted, so for int lengths that is the smallest key >= the length; for tuple
    lengths it is the fitting key with the smallest summed padding (first one on ties).
    """
    if lengths.ndim == 1:
        key_array = np.asarray(keys, dtype=np.int64)
        bucket = np.searchsorted(key_array, lengths, side="left")
        unfit = np.flatnonzero(bucket == len(keys))
    else:
        key_array = np.asarray(keys, dtype=np.int64).reshape(len(keys), -1)
        bucket = np.empty(lengths.shape[0], dtype=np.int64)
        unfit_parts = []
        chunk = max(1, 2_000_000 // max(1, key_array.size))  # bounds the (chunk, buckets, k) temporary
        for begin in range(0, lengths.shape[0], chunk):
            part = lengths[begin : begin + chunk]
            diff = key_array[None, :, :] - part[:, None, :]
            fits = (diff >= 0).all(axis=2)
            padding = np.where(fits, diff.sum(axis=2), np.iinfo(np.int64).max)
            bucket[begin : begin + chunk] = padding.argmin(axis=1)
            unfit_parts.append(np.flatnonzero(~fits.any(axis=1)) + begin)
        unfit = np.concatenate(unfit_parts)
    if unfit.size:
        i = int(unfit[0])
        raise DataError(
            f"{who}: sample {i} has length {lengths[i].tolist()}, which fits no bucket (bucket keys {keys}; "
            f"{unfit.size} sample(s) do not fit). Add a larger bucket key, leave bucket_keys unset so the "
            "keys are generated from the lengths, or filter/truncate the long samples."
        )
    return bucket


class FixedBucketSampler(ShardedBatchSampler):
    """Assign every sample to a fixed bucket by length and batch within buckets (GluonNLP semantics).

    Args:
        lengths: one length per sample: ints, or tuples such as ``(source, target)`` lengths.
        batch_size: samples per batch (of the largest bucket when ``ratio > 0``); a token
            budget per batch when ``use_average_length``.
        num_buckets: number of buckets to generate; ignored when ``bucket_keys`` is given.
        bucket_keys: explicit keys (the longest length each bucket holds); generated by
            ``bucket_scheme`` when ``None``.
        ratio: scale up the batch size of shorter buckets:
            ``B_i = max(int(max_key / key_i * ratio * batch_size), batch_size)`` (tuple keys
            are summed). ``0`` keeps ``batch_size`` everywhere.
        shuffle: shuffle samples within buckets and the order of batches every epoch.
        use_average_length: ``B_i = max(int(batch_size / (mean_i + std_i)), 1)`` from the mean
            and standard deviation of bucket ``i``'s lengths; ``ratio`` is then ignored.
        bucket_scheme: a :class:`BucketScheme` or one of ``"constant"``, ``"linear"``, ``"exp"``.
        seed, num_replicas, rank, drop_last, even_split: see :class:`ShardedBatchSampler`.

    Buckets that receive no sample are removed (with a warning), as in GluonNLP. Without
    shuffling, batches come from the longest bucket first, so memory problems show early.
    """

    def __init__(
        self,
        lengths: Sequence[int] | Sequence[Sequence[int]] | np.ndarray,
        batch_size: int,
        num_buckets: int | None = 10,
        bucket_keys: Sequence[Key] | None = None,
        ratio: float = 0.0,
        shuffle: bool = False,
        use_average_length: bool = False,
        bucket_scheme: BucketScheme | str | Mapping[str, Any] = "constant",
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
        self.batch_size = _check_batch_size(who, batch_size)
        if ratio < 0:
            raise ConfigError(f"{who}: ratio must be >= 0, got {ratio}.")
        self.ratio = float(ratio)
        self.use_average_length = bool(use_average_length)
        self.bucket_scheme = resolve_bucket_scheme(bucket_scheme)
        single = self._lengths.ndim == 1
        keys = self._bucket_keys_from(bucket_keys, num_buckets, single, who)

        bucket = _match_bucket_keys(keys, self._lengths, who)
        counts = np.bincount(bucket, minlength=len(keys))
        unused = [k for k, c in zip(keys, counts) if c == 0]
        if unused:
            warnings.warn(
                f"{who}: some buckets are empty and are removed; unused bucket keys={unused}", stacklevel=2
            )
        kept = np.flatnonzero(counts > 0)
        remap = np.full(len(keys), -1, dtype=np.int64)
        remap[kept] = np.arange(kept.size)
        bucket = remap[bucket]
        self._bucket_keys: list[Key] = [keys[i] for i in kept]
        self._bucket_counts = counts[kept]
        # Small ints sort by radix in a stable argsort: O(N) even for tens of millions of samples.
        small = bucket.astype(np.int16 if len(self._bucket_keys) < 2**15 else np.int64)
        self._bucket_order = np.argsort(small, kind="stable")
        self._bucket_offsets = np.concatenate([[0], np.cumsum(self._bucket_counts)]).astype(np.int64)
        self._bucket_batch_sizes = self._batch_sizes(single, who)

        # Unshuffled batch list: longest bucket first, each bucket's batches in order.
        starts, ends = [], []
        for b in range(len(self._bucket_keys) - 1, -1, -1):
            begin, end, size = (
                self._bucket_offsets[b],
                self._bucket_offsets[b + 1],
                self._bucket_batch_sizes[b],
            )
            s = np.arange(begin, end, size, dtype=np.int64)
            starts.append(s)
            ends.append(np.minimum(s + size, end))
        self._base_starts = np.concatenate(starts)
        self._base_ends = np.concatenate(ends)

    def _bucket_keys_from(
        self, bucket_keys: Sequence[Key] | None, num_buckets: int | None, single: bool, who: str
    ) -> list[Key]:
        if bucket_keys is None:
            if num_buckets is None or num_buckets < 1:
                raise ConfigError(
                    f"{who}: num_buckets must be a positive integer when bucket_keys is not given "
                    f"(got {num_buckets})."
                )
            if single:
                mx, mn = int(self._lengths.max()), int(self._lengths.min())
            else:
                mx = tuple(int(v) for v in self._lengths.max(axis=0))
                mn = tuple(int(v) for v in self._lengths.min(axis=0))
            keys = [_as_key(k) for k in self.bucket_scheme(mx, mn, int(num_buckets))]
        else:
            keys = [_as_key(k) for k in bucket_keys]
            if not keys:
                raise ConfigError(f"{who}: bucket_keys is empty; give at least one key or leave it unset.")
            width = None if single else self._lengths.shape[1]
            for k in keys:
                if (single and isinstance(k, tuple)) or (
                    not single and (not isinstance(k, tuple) or len(k) != width)
                ):
                    expected = "ints" if single else f"tuples of {width} ints"
                    raise ConfigError(
                        f"{who}: bucket key {k!r} does not match the lengths, which are {expected}. Give "
                        f"bucket_keys as {expected}."
                    )
        return sorted(set(keys))

    def _batch_sizes(self, single: bool, who: str) -> list[int]:
        batch_size = self.batch_size
        if not self.use_average_length:
            scale_keys = [k if single else sum(k) for k in self._bucket_keys]
            largest = max(scale_keys)
            # Same expression and float order as GluonNLP, so the integer results agree exactly.
            return [max(int(largest / float(k) * self.ratio * batch_size), batch_size) for k in scale_keys]
        if self.ratio > 0:
            warnings.warn(f"{who}: ratio={self.ratio} is ignored when use_average_length=True", stacklevel=3)
        sizes = []
        for b in range(len(self._bucket_keys)):
            members = self._bucket_order[self._bucket_offsets[b] : self._bucket_offsets[b + 1]]
            values = self._lengths[members]
            sizes.append(max(int(batch_size / (float(np.mean(values)) + float(np.std(values)))), 1))
        return sizes

    @property
    def lengths(self) -> np.ndarray:
        return self._lengths

    @property
    def bucket_keys(self) -> list[Key]:
        """Keys of the non-empty buckets, ascending."""
        return list(self._bucket_keys)

    @property
    def bucket_batch_sizes(self) -> list[int]:
        return list(self._bucket_batch_sizes)

    @property
    def bucket_counts(self) -> list[int]:
        return self._bucket_counts.tolist()

    @property
    def num_global_batches(self) -> int:
        return int(self._base_starts.size)

    def _build_plan(self, epoch: int) -> _Plan:
        if not self.shuffle:
            return _Plan(self._bucket_order, self._base_starts, self._base_ends)
        rng = np.random.default_rng([self.seed, epoch])
        order = self._bucket_order.copy()
        for b in range(len(self._bucket_keys)):
            rng.shuffle(order[self._bucket_offsets[b] : self._bucket_offsets[b + 1]])  # in place, per bucket
        perm = rng.permutation(self._base_starts.size)
        return _Plan(order, self._base_starts[perm], self._base_ends[perm])

    def stats(self, epoch: int | None = None) -> dict[str, Any]:
        out = super().stats(epoch)
        out.update(
            bucket_keys=self.bucket_keys,
            bucket_counts=self.bucket_counts,
            bucket_batch_sizes=self.bucket_batch_sizes,
        )
        return out

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(\n"
            f"  sample_num={self._lengths.shape[0]}, batch_num={self.num_global_batches}\n"
            f"  key={self._bucket_keys}\n"
            f"  cnt={self.bucket_counts}\n"
            f"  batch_size={self._bucket_batch_sizes}\n"
            ")"
        )


# --------------------------------------------------------------------------------------------
# SortedBucketSampler
# --------------------------------------------------------------------------------------------


class SortedBucketSampler(ShardedBatchSampler):
    """Sort chunks of ``mult * batch_size`` samples by key and cut them into batches (GluonNLP semantics).

    With ``shuffle``, the samples are permuted before chunking and the batches of each chunk
    are shuffled, every epoch. Ties keep their order (a stable sort), also with ``reverse``.

    Args:
        sort_keys: one number per sample (e.g. its length), or equal-size tuples compared
            lexicographically.
        batch_size: samples per batch.
        mult: chunk size multiplier (``>= 1``).
        reverse: sort each chunk in descending order.
        shuffle, seed, num_replicas, rank, drop_last, even_split: see :class:`ShardedBatchSampler`.
    """

    def __init__(
        self,
        sort_keys: Sequence[Any] | np.ndarray,
        batch_size: int,
        mult: float = 100,
        reverse: bool = True,
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
        keys = np.asarray(sort_keys)
        if keys.size == 0 or keys.ndim not in (1, 2):
            raise DataError(f"{who}: sort_keys must be a non-empty list of numbers or of equal-size tuples.")
        if keys.dtype.kind not in "biuf":
            raise DataError(f"{who}: sort_keys must be numbers, got values of dtype {keys.dtype}.")
        self._keys = keys.astype(np.float64 if keys.dtype.kind == "f" else np.int64)
        self.batch_size = _check_batch_size(who, batch_size)
        if not mult >= 1:
            raise ConfigError(f"{who}: mult must be at least 1, got {mult}.")
        self.mult = mult
        self.reverse = bool(reverse)
        self._chunk = int(mult * self.batch_size)
        n = self._keys.shape[0]
        chunk_sizes = np.diff(np.append(np.arange(0, n, self._chunk), n))
        self._batches_per_chunk = -(-chunk_sizes // self.batch_size)

    @property
    def lengths(self) -> np.ndarray:
        # Padding statistics assume the sort keys are lengths, which they usually are.
        return self._keys

    @property
    def num_global_batches(self) -> int:
        return int(self._batches_per_chunk.sum())

    def _build_plan(self, epoch: int) -> _Plan:
        n = self._keys.shape[0]
        rng = np.random.default_rng([self.seed, epoch]) if self.shuffle else None
        ids = rng.permutation(n) if rng is not None else np.arange(n)
        chunk_of = np.arange(n) // self._chunk
        keys = self._keys[ids]
        columns = [keys] if keys.ndim == 1 else [keys[:, j] for j in range(keys.shape[1] - 1, -1, -1)]
        if self.reverse:
            columns = [-c for c in columns]
        # lexsort is stable; its last key is the primary one: chunk, then the sort key columns.
        order = ids[np.lexsort((*columns, chunk_of))]

        counts = self._batches_per_chunk
        chunk_id = np.repeat(np.arange(counts.size), counts)
        first_batch = np.concatenate([[0], np.cumsum(counts)[:-1]])
        starts = chunk_id * self._chunk + (np.arange(counts.sum()) - first_batch[chunk_id]) * self.batch_size
        ends = np.minimum(starts + self.batch_size, np.minimum((chunk_id + 1) * self._chunk, n))
        if rng is not None:
            shuffled = np.lexsort((rng.random(starts.size), chunk_id))  # shuffle batches within each chunk
            starts, ends = starts[shuffled], ends[shuffled]
        return _Plan(order, starts, ends)


# --------------------------------------------------------------------------------------------
# TokenBudgetSampler (fairseq batch_by_size)
# --------------------------------------------------------------------------------------------


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
