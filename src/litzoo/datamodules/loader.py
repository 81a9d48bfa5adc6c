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

:class:`ResumableDataLoader` adds one thing: it starts its workers at the first ``next()``
rather than at ``iter()``. Lightning creates the epoch's iterator *before* it calls
``set_epoch`` in some paths (e.g. when resuming from an end-of-epoch checkpoint); a
multi-process iterator would already have asked the sampler for the old epoch's order.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import Dataset

from litzoo.errors import DependencyError

try:
    from torchdata.stateful_dataloader import StatefulDataLoader
except ImportError as exc:  # pragma: no cover - torchdata is a declared dependency
    raise DependencyError(
        "Resumable data loading needs the 'torchdata' package (StatefulDataLoader), which is not "
        "installed. Install it with `pip install torchdata` (it is a litzoo dependency)."
    ) from exc

__all__ = ["ResumableDataLoader", "build_dataloader"]


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
        return next(self._iterator)

    def __len__(self) -> int:
        return len(self._loader)


class ResumableDataLoader(StatefulDataLoader):
    """torchdata's ``StatefulDataLoader`` that reads the sampler's epoch at the first batch, not at ``iter()``.

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

    Use it for training loaders built on the samplers of :mod:`litzoo.datamodules.samplers`
    so that a checkpoint taken mid-epoch resumes with the next batch. ``persistent_workers``
    and ``prefetch_factor`` are ignored when ``num_workers == 0`` (torch refuses them there).
    Extra keyword arguments go to the DataLoader (``timeout``, ``worker_init_fn``, ...).
    """
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
