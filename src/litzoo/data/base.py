"""The LightningDataModule every litzoo datamodule builds on.

A datamodule owns its data: it reads the real on-disk format, builds the splits and
transforms in `setup()`, and says what the model needs to know about the data through
`info()` (e.g. `num_classes`) before any training starts. This base builds every loader
from the data API (docs/data_api.md):

- batches come from self-sharding batch samplers (:mod:`litzoo.data.samplers`):
  deterministic per ``(seed, epoch)``, split across DDP ranks by the samplers themselves,
  so the Trainer runs with ``use_distributed_sampler=False`` (:meth:`trainer_kwargs`);
- the training loader is resumable mid-epoch (:func:`~litzoo.data.loader.build_dataloader`);
- the sampler and the batchify function come from the config (``data.sampler``,
  ``data.collate``); by default plain random batches and torch's default collate;
- worker processes get seeds derived from the run's seed, the split and the rank;
- a sample the dataset cannot read stops the run (``data.bad_samples=error``) or is left
  out of its batch and listed in the run record (``skip``; :mod:`litzoo.data.bad_samples`).
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from litzoo.data.bad_samples import SkipBadSamples, check_policy, drop_bad_samples
from litzoo.data.loader import EvalDataLoader, ResumableDataLoader, build_dataloader
from litzoo.data.samplers import (
    RandomBatchSampler,
    SequentialBatchSampler,
    ShardedBatchSampler,
    distributed_world,
)
from litzoo.errors import ConfigError, DataError

log = logging.getLogger("litzoo")

SPLITS = ("train", "val", "test")
# The most DataLoader workers `num_workers: auto` starts (fewer when fewer CPUs are available).
AUTO_WORKERS = 4
SamplerFactory = Callable[..., ShardedBatchSampler]
Collate = Callable[[list[Any]], Any]

# What a sampler's per-sample argument is called: the dataset size or one length/key per sample.
_DATA_ARGUMENTS = ("num_samples", "lengths", "sort_keys")
# Arguments the datamodule always fills in; a sampler config that sets one is refused, because
# the datamodule's value (the run's seed, the real world size, ...) must win on every rank.
_OWNED_ARGUMENTS = (*_DATA_ARGUMENTS, "shuffle", "seed", "num_replicas", "rank")


class BaseDataModule(pl.LightningDataModule):
    """Loaders over `train_set`, `val_set` and `test_set`, which subclasses create in `setup()`.

    Subclasses implement `setup()` (the split datasets, built once however often it is called)
    and `info()`; those that serve
    length-aware samplers also implement :meth:`lengths`. A subclass may set `self.collate_fn`
    in `setup()` when `data.collate` is null (e.g. a `Pad` with its vocabulary's padding id).

    Args:
        batch_size: samples per batch *per device* (the global batch multiplies by devices,
            nodes and gradient accumulation); completes the sampler unless it sets its own.
        num_workers: DataLoader worker processes (0 loads in the main process), or ``"auto"``: as
            many as the CPUs this process may use, at most `AUTO_WORKERS` (the choice is logged). A
            number is kept as given.
        pin_memory: page-locked host memory for faster host-to-GPU copies.
        persistent_workers: keep workers alive between epochs (when num_workers > 0).
        eval_batch_size: batch size for val/test (defaults to batch_size).
        seed: the run's seed (the platform passes it): the samplers' shuffles and the workers'
            seeds derive from it; it must be the same on every rank.
        sampler: a batch-sampler *factory*: ``None`` for plain random batches (train) and
            sequential batches (val/test), or a callable such as
            ``functools.partial(FixedBucketSampler, num_buckets=10)`` (what a config entry with
            ``_target_`` and ``_partial_: true`` instantiates to). The datamodule calls it per split
            with the data (``num_samples``, ``lengths`` or ``sort_keys``), ``batch_size`` (unless
            set), ``shuffle``, ``seed``, ``num_replicas`` and ``rank``; for val/test also
            ``even_split=True, drop_last=False``. An uninstantiated mapping with ``_target_`` is
            accepted too.
        collate: the batchify function (e.g. ``batchify.Tuple(batchify.Pad(), batchify.Stack())``),
            or a mapping with ``_target_``; ``None`` keeps torch's default collate.
        shuffle: reshuffle the training batches every epoch (val/test never shuffle).
        num_replicas, rank: DDP world size and rank; ``None`` (the default) reads them from
            ``torch.distributed`` when the loaders run. Set them to look at one rank's share.
        prefetch_factor: batches each worker loads ahead (torch's default when None).
        bad_samples: ``error`` (a sample the dataset cannot read stops the run, naming it) or
            ``skip`` (it is left out of its batch and logged to `bad_sample_log`, which the
            platform points at `<run_dir>/bad_samples.jsonl`).
    """

    collate_fn: Collate | None = None

    def __init__(
        self,
        batch_size: int,
        num_workers: int | str = 0,
        pin_memory: bool = False,
        persistent_workers: bool = True,
        eval_batch_size: int | None = None,
        seed: int = 0,
        sampler: SamplerFactory | Mapping[str, Any] | None = None,
        collate: Collate | Mapping[str, Any] | None = None,
        shuffle: bool = True,
        num_replicas: int | None = None,
        rank: int | None = None,
        prefetch_factor: int | None = None,
        bad_samples: str = "error",
    ) -> None:
        super().__init__()
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(
                f"seed={seed!r}: the data seed must be a non-negative integer (it seeds the samplers' "
                "shuffles and the workers). Pass seed=<n> on the command line."
            )
        self.seed = int(seed)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = resolve_num_workers(num_workers)
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.prefetch_factor = prefetch_factor
        self.shuffle = shuffle
        self.num_replicas, self.rank = num_replicas, rank
        self.sampler_factory = _as_sampler_factory(sampler)
        self.bad_samples = check_policy(bad_samples)
        self.bad_sample_log: str | None = None
        configured = _as_collate(collate)
        if configured is not None:
            self.collate_fn = configured
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        # One sampler per split, kept across loader rebuilds so its epoch and position survive.
        self._samplers: dict[str, tuple[Dataset, ShardedBatchSampler]] = {}

    # -- what subclasses provide --------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """What the task needs to know to build its model (e.g. num_classes); cheap to call."""
        raise NotImplementedError

    def lengths(self, split: str) -> Sequence[Any] | np.ndarray | None:
        """One length (or tuple of lengths) per sample of `split`, for length-aware samplers.

        ``None`` (the default) means the datamodule has no notion of length; configuring a
        length-aware sampler is then a `ConfigError`.
        """
        return None

    # -- what the platform and Lightning call ---------------------------------------------------

    def train_samples(self) -> int:
        """The size of the training split (sets up the fit splits; `setup()` builds them once, so
        Lightning's own call later costs nothing). The platform caps the recorded batch size by it."""
        self.setup("fit")
        return len(self.dataset("train"))  # type: ignore[arg-type]

    def trainer_kwargs(self) -> dict[str, Any]:
        """Trainer arguments this datamodule needs: its samplers shard themselves across ranks,
        so Lightning must not wrap the loaders in a `DistributedSampler`."""
        return {"use_distributed_sampler": False}

    def train_dataloader(self) -> ResumableDataLoader:
        return build_dataloader(
            self._loaded("train"),
            self.batch_sampler("train"),
            self._collate(),
            num_workers=self.num_workers,
            persistent_workers=self.persistent_workers,
            pin_memory=self.pin_memory,
            prefetch_factor=self.prefetch_factor,
            generator=self._worker_seed_generator("train"),
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    # -- building blocks ------------------------------------------------------------------------

    def dataset(self, split: str) -> Dataset:
        """The dataset of `split` ("train", "val" or "test") that `setup()` created."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        found = getattr(self, f"{split}_set", None)
        if found is None:
            raise RuntimeError(f"{type(self).__name__}.setup() did not create the {split} split")
        return found

    def batch_sampler(self, split: str) -> ShardedBatchSampler:
        """The split's batch sampler, built on first use (and logged when it is length-aware)."""
        dataset = self.dataset(split)
        cached = self._samplers.get(split)
        if cached is not None and cached[0] is dataset:
            return cached[1]
        sampler = self._build_sampler(split, dataset)
        self._samplers[split] = (dataset, sampler)
        if not isinstance(sampler, RandomBatchSampler) and sampler.rank == 0:
            log.info("%s sampler: %s", split, sampler.stats())
        return sampler

    def _loaded(self, split: str) -> Dataset:
        """The split's dataset as the loader sees it: with unreadable samples skipped if asked."""
        if self.bad_samples == "skip":
            return SkipBadSamples(self.dataset(split), split, self.bad_sample_log)
        return self.dataset(split)

    def _collate(self) -> Collate | None:
        if self.bad_samples == "skip":
            return drop_bad_samples(self.collate_fn or default_collate)
        return self.collate_fn

    def _eval_loader(self, split: str) -> DataLoader:
        workers = self.num_workers
        return EvalDataLoader(
            self._loaded(split),
            batch_sampler=self.batch_sampler(split),
            collate_fn=self._collate(),
            num_workers=workers,
            persistent_workers=self.persistent_workers and workers > 0,
            pin_memory=self.pin_memory,
            prefetch_factor=self.prefetch_factor if workers > 0 else None,
            generator=self._worker_seed_generator(split),
        )

    def _build_sampler(self, split: str, dataset: Dataset) -> ShardedBatchSampler:
        train = split == "train"
        batch_size = self.batch_size if train else self.eval_batch_size
        where = {"num_replicas": self.num_replicas, "rank": self.rank}
        factory = self.sampler_factory
        if factory is None:
            if train:
                return RandomBatchSampler(
                    len(dataset), batch_size, shuffle=self.shuffle, seed=self.seed, **where
                )
            return SequentialBatchSampler(len(dataset), batch_size, even_split=True, **where)

        name = _factory_name(factory)
        accepted = _accepted_arguments(factory, name)
        bound = set(factory.keywords) if isinstance(factory, functools.partial) else set()
        clash = sorted(bound & set(_OWNED_ARGUMENTS))
        if clash:
            raise ConfigError(
                f"data.sampler ({name}) sets {', '.join(clash)}, which the datamodule fills in: the data "
                "from the split, shuffle from data.shuffle (never for val/test), seed from the run's seed, "
                "num_replicas/rank from torch.distributed. Remove them from data.sampler."
            )
        data_argument = next((a for a in _DATA_ARGUMENTS if a in accepted), None)
        if data_argument is None:
            raise ConfigError(
                f"data.sampler ({name}) takes none of {', '.join(_DATA_ARGUMENTS)}, so it is not a batch "
                "sampler the datamodule can complete. Use one of litzoo.data.samplers (e.g. "
                "FixedBucketSampler) with `_partial_: true`, or data.sampler=null for random batches."
            )
        values: dict[str, Any] = {"shuffle": self.shuffle and train, "seed": self.seed, **where}
        if data_argument == "num_samples":
            values["num_samples"] = len(dataset)
        else:
            values[data_argument] = self._split_lengths(split, dataset, name)
        if "batch_size" in accepted and "batch_size" not in bound:
            values["batch_size"] = batch_size
        if not train:  # evaluate every sample exactly once, also under DDP
            values.update(even_split=True, drop_last=False)
        values = {k: v for k, v in values.items() if k in accepted}
        try:
            sampler = factory(**values)
        except TypeError as error:
            raise ConfigError(
                f"data.sampler ({name}) cannot be built for the {split} split: {error}."
            ) from error
        if not getattr(sampler, "shards_itself", False):
            raise ConfigError(
                f"data.sampler ({name}) built a {type(sampler).__name__}, which does not shard itself "
                "across DDP ranks; the Trainer runs with use_distributed_sampler=False, so every rank "
                "would see all the data. Use a sampler from litzoo.data.samplers."
            )
        return sampler

    def _split_lengths(self, split: str, dataset: Dataset, name: str) -> Sequence[Any] | np.ndarray:
        lengths = self.lengths(split)
        if lengths is None:
            raise ConfigError(
                f"data.sampler={name} groups samples by length, but {type(self).__name__} provides no "
                f"per-sample lengths for its {split} split. Use data.sampler=null (random batches) with "
                "this dataset, or a datamodule that implements lengths(split)."
            )
        if len(lengths) != len(dataset):
            raise DataError(
                f"{type(self).__name__}.lengths('{split}') returned {len(lengths)} lengths for a split of "
                f"{len(dataset)} samples; it must return one length per sample, in dataset order."
            )
        return lengths

    def _worker_seed_generator(self, split: str) -> torch.Generator:
        """The loader's generator: each iterator draws its workers' base seed from it.

        torch seeds `random`, numpy's global RNG and torch in worker `w` from `base_seed + w`
        (Lightning's `seed_everything(workers=True)` re-derives them from the same value), so
        seeding this generator from (run seed, split, rank) makes the workers' random
        augmentations a function of the run's seed, different per split, rank and epoch.
        """
        rank = self.rank if self.rank is not None else distributed_world()[1]
        entropy = [int(self.seed), SPLITS.index(split), int(rank)]
        seed = int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])
        return torch.Generator().manual_seed(seed)


def resolve_num_workers(num_workers: int | str) -> int:
    """`num_workers`, with ``"auto"`` made the CPUs this process may use (its affinity, which a
    container or `taskset` narrows), at most `AUTO_WORKERS`: more workers than CPUs only compete
    with the training process (and torch warns about them)."""
    if num_workers != "auto":
        return int(num_workers)
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    chosen = max(1, min(AUTO_WORKERS, available))
    log.info(
        "data.num_workers=auto: %d worker processes (%d CPUs available to this process, at most %d); "
        "set data.num_workers=<n> to choose",
        chosen,
        available,
        AUTO_WORKERS,
    )
    return chosen


def _as_sampler_factory(sampler: Any) -> SamplerFactory | None:
    if sampler is None:
        return None
    if isinstance(sampler, Mapping):  # a config node that was not instantiated (non-recursive build)
        if "_target_" not in sampler:
            raise ConfigError(
                f"data.sampler must name its class with _target_ (got keys {sorted(sampler)}), e.g. "
                "{_target_: litzoo.data.samplers.FixedBucketSampler, _partial_: true, num_buckets: 10}."
            )
        from hydra.utils import instantiate

        return instantiate({**sampler, "_partial_": True}, _convert_="all")
    if isinstance(sampler, ShardedBatchSampler) or not callable(sampler):
        raise ConfigError(
            f"data.sampler must be a sampler factory, not a built sampler ({sampler!r}): the datamodule "
            "builds one per split from the data. In a config, add `_partial_: true` next to its _target_."
        )
    return sampler


def _as_collate(collate: Any) -> Collate | None:
    if collate is None:
        return None
    if isinstance(collate, Mapping):
        if "_target_" not in collate:
            raise ConfigError(
                f"data.collate must name a batchify function with _target_ (got keys {sorted(collate)}), "
                "e.g. {_target_: litzoo.data.batchify.Stack}."
            )
        from hydra.utils import instantiate

        collate = instantiate(collate, _convert_="all")
    if not callable(collate):
        raise ConfigError(f"data.collate must be a batchify function (callable), got {collate!r}.")
    return collate


def _factory_name(factory: Any) -> str:
    inner = factory
    while isinstance(inner, functools.partial):
        inner = inner.func
    return getattr(inner, "__qualname__", type(inner).__name__)


def _accepted_arguments(factory: Any, name: str) -> set[str]:
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError) as error:
        raise ConfigError(f"data.sampler ({name}) has no inspectable signature ({error}).") from error
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
