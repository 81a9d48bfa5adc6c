"""A DataLoader whose position is saved in Lightning checkpoints, for mid-epoch resume.

Lightning 2.x calls ``state_dict()``/``load_state_dict()`` on every training DataLoader that
has them (``CombinedLoader._state_dicts`` in the fit loop) and stores the result in the
checkpoint. torch's own ``DataLoader`` has neither, so we build on torchdata's
``StatefulDataLoader``, a drop-in subclass of ``DataLoader`` that:

- counts the batches the training loop *consumed*, not the ones workers prefetched: with
  ``num_workers > 0`` it snapshots the batch sampler's ``state_dict()`` when each batch's
  indices are handed to a worker and returns the snapshot of the last batch it yielded;
- restores by calling the batch sampler's ``load_state_dict()`` (our samplers then skip the
  batches already seen) instead of replaying the epoch;
- works with ``persistent_workers``.

:class:`ResumableDataLoader` adds what exact resume needs on top:

- it starts its workers at the first ``next()`` rather than at ``iter()``. Lightning
  creates the epoch's iterator *before* it calls ``set_epoch`` in some paths (e.g. when
  resuming from an end-of-epoch checkpoint); a multi-process iterator would already have
  asked the sampler for the old epoch's order;
- random augmentation in worker processes resumes exactly (:class:`WorkerRandomState`):
  each worker reseeds its random generators at the start of every epoch from (loader
  seed, epoch, worker id), so an epoch's draws do not depend on whether the workers are
  persistent or on how many epochs this process has run, and the workers' random states
  travel in the loader's state (torchdata snapshots a worker's dataset state with every
  batch and restores it in the new worker), so draws continue mid-epoch.

Both it and :class:`EvalDataLoader` (val/test) re-raise a user error (`LitzooError`, e.g. a
`DataError` naming a file that does not decode) that a worker process raised with its own
message: torch rebuilds it in the main process as ``type(error)(<the worker's traceback>)``,
which would reach the console as a traceback wall (:func:`unwrap_worker_error`).
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from litzoo.errors import DependencyError, LitzooError
from litzoo.random_state import capture_rng_state, restore_rng_state

try:
    from torchdata.stateful_dataloader import StatefulDataLoader
except ImportError as exc:  # pragma: no cover - torchdata is a declared dependency
    raise DependencyError(
        "Resumable data loading needs the 'torchdata' package (StatefulDataLoader), which is not "
        "installed. Install it with `pip install torchdata` (it is a litzoo dependency)."
    ) from exc

__all__ = [
    "EvalDataLoader",
    "ResumableDataLoader",
    "WorkerRandomState",
    "build_dataloader",
    "unwrap_worker_error",
]


def unwrap_worker_error(error: BaseException) -> BaseException | None:
    """The user error a DataLoader worker raised, with its own message, or None if `error` is not one.

    torch sends a worker's exception to the main process as text and raises
    ``type(error)("Caught DataError in DataLoader worker process 0.\\nOriginal Traceback ...")``; the
    original message is what follows the last ``<module>.<class>: `` of that traceback. The rebuilt
    error keeps torch's (with the worker's traceback) as its cause, so train.log still shows it.
    """
    message = str(error)
    if (
        not isinstance(error, LitzooError)
        or not message.startswith("Caught ")
        or "Original Traceback" not in message
    ):
        return None
    kind = type(error)
    marker = f"\n{kind.__module__}.{kind.__qualname__}: "
    position = message.rfind(marker)
    if position < 0:
        return None
    clean = kind(message[position + len(marker) :].rstrip("\n"))
    clean.__cause__ = error
    return clean


def _next_unwrapped(iterator: Iterator[Any]) -> Any:
    try:
        return next(iterator)
    except LitzooError as error:
        clean = unwrap_worker_error(error)
        if clean is None:
            raise
        raise clean from error


class _DeferredIterator:
    """Iterator that creates the loader's real iterator (and so its worker requests) on first use."""

    def __init__(self, loader: ResumableDataLoader) -> None:
        self._loader = loader
        self._iterator: Iterator[Any] | None = None

    def __iter__(self) -> _DeferredIterator:
        return self

    def __next__(self) -> Any:
        if self._iterator is None:
            self._iterator = StatefulDataLoader.__iter__(self._loader)
        return _next_unwrapped(self._iterator)

    def __len__(self) -> int:
        return len(self._loader)


class ResumableDataLoader(StatefulDataLoader):
    """torchdata's ``StatefulDataLoader`` that reads the sampler's epoch at the first batch, not at
    ``iter()``, and feeds a :class:`WorkerRandomState` dataset ``(epoch, index)`` keys.

    Takes exactly the arguments of ``torch.utils.data.DataLoader`` (plus torchdata's
    ``snapshot_every_n_steps``, which must stay 1 for exact resume with workers).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with warnings.catch_warnings():
            # torchdata 0.11 calls torch.set_vital(), deprecated in recent torch; harmless here.
            warnings.filterwarnings("ignore", message=".*set_vital.*")
            super().__init__(*args, **kwargs)

    def __iter__(self) -> Iterator[Any]:
        return _DeferredIterator(self)

    @property
    def _index_sampler(self) -> Any:
        # What torch's iterators take their indices from: with workers, the same batches with
        # each index tagged by its epoch (for WorkerRandomState); `batch_sampler` stays the
        # user's sampler, which Lightning and the datamodule talk to.
        if isinstance(self.dataset, WorkerRandomState) and hasattr(self.batch_sampler, "epoch"):
            return _EpochTaggedBatches(self.batch_sampler)
        return super()._index_sampler

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.num_workers > 0 and state_dict.get("_iterator_finished"):
            # Saved at the end of an epoch. torchdata would rebuild the finished iterator, let its
            # workers prefetch (and draw random numbers for) batches that it then throws away, and
            # start the next epoch over; start the next epoch afresh instead, like the run did.
            sampler_state = state_dict["_snapshot"]["_main_snapshot"].get("_index_sampler_state")
            if sampler_state is not None and hasattr(self.batch_sampler, "load_state_dict"):
                self.batch_sampler.load_state_dict(sampler_state)
            state_dict = {}
        super().load_state_dict(state_dict)


class _UnwrappingIterator:
    """A DataLoader iterator whose workers' user errors come out with their own message."""

    def __init__(self, iterator: Iterator[Any]) -> None:
        self._iterator = iterator

    def __iter__(self) -> _UnwrappingIterator:
        return self

    def __next__(self) -> Any:
        return _next_unwrapped(self._iterator)

    def __len__(self) -> int:
        return len(self._iterator)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        if name == "_iterator":
            raise AttributeError(name)
        return getattr(self._iterator, name)


class EvalDataLoader(DataLoader):
    """torch's DataLoader (val/test need no resume) whose workers' user errors keep their message."""

    def __iter__(self) -> Iterator[Any]:
        return _UnwrappingIterator(super().__iter__())


class _EpochTaggedBatches:
    """The batches of ``batch_sampler`` with every index as ``(epoch, index)``."""

    def __init__(self, batch_sampler: Any) -> None:
        self.batch_sampler = batch_sampler

    def __iter__(self) -> Iterator[list[tuple[int, Any]]]:
        for batch in self.batch_sampler:
            epoch = int(self.batch_sampler.epoch)  # read after the sampler started its epoch
            yield [(epoch, index) for index in batch]

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def state_dict(self) -> dict[str, Any]:
        return self.batch_sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batch_sampler.load_state_dict(state)


class WorkerRandomState(Dataset):
    """``dataset`` for worker processes: per-epoch seeding of a worker, its random states as state.

    The loader hands it ``(epoch, index)`` keys. At a worker's first sample of an epoch it
    seeds Python's, numpy's and torch's global generators from (``seed``, epoch, worker id),
    as torch seeds a new worker but independent of the worker's age. ``state_dict()`` is
    that worker's epoch and random states; torchdata's ``StatefulDataLoader`` saves it with
    every batch and calls ``load_state_dict()`` in the new worker of a resumed loader. In
    the main process the state is empty (the platform checkpoints the run's own states).
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = int(seed)
        self._epoch: int | None = None

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, tuple):  # a plain index, e.g. from code inspecting loader.dataset
            return self.dataset[key]
        epoch, index = key
        if epoch != self._epoch:
            worker = get_worker_info()
            if worker is not None:
                self._seed_worker(epoch, worker.id)
            self._epoch = epoch
        return self.dataset[index]

    def __getattr__(self, name: str) -> Any:
        # Everything else is the wrapped dataset's, but not dunders such as __getitems__,
        # which would bypass the (epoch, index) keys.
        if name == "dataset" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def _seed_worker(self, epoch: int, worker_id: int) -> None:
        sequence = np.random.SeedSequence([self.seed, epoch, worker_id])
        seed = int(sequence.generate_state(1, np.uint64)[0])
        random.seed(seed)
        torch.manual_seed(seed)
        np.random.seed(sequence.generate_state(4))

    def state_dict(self) -> dict[str, Any]:
        if get_worker_info() is None:
            return {}
        return {"epoch": -1 if self._epoch is None else self._epoch, "rng": capture_rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state and get_worker_info() is not None:
            self._epoch = None if state["epoch"] < 0 else int(state["epoch"])
            restore_rng_state(state["rng"])


def build_dataloader(
    dataset: Dataset,
    batch_sampler: Any,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    *,
    num_workers: int = 0,
    persistent_workers: bool = False,
    pin_memory: bool = False,
    prefetch_factor: int | None = None,
    **kwargs: Any,
) -> ResumableDataLoader:
    """A resumable DataLoader over ``dataset`` that takes its batches from ``batch_sampler``.

    Use it for training loaders built on the samplers of :mod:`litzoo.data.samplers`
    so that a checkpoint taken mid-epoch resumes with the next batch. ``persistent_workers``
    and ``prefetch_factor`` are ignored when ``num_workers == 0`` (torch refuses them there).
    Extra keyword arguments go to the DataLoader (``timeout``, ``worker_init_fn``, ...).
    """
    if num_workers > 0:
        generator = kwargs.get("generator")
        seed = generator.initial_seed() if generator is not None else torch.randint(2**62, ()).item()
        dataset = WorkerRandomState(dataset, seed)
    return ResumableDataLoader(
        dataset,
        batch_sampler=batch_sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
        persistent_workers=persistent_workers and num_workers > 0,
        pin_memory=pin_memory,
        prefetch_factor=prefetch_factor if num_workers > 0 else None,
        **kwargs,
    )
