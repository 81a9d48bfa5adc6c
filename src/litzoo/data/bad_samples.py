"""What to do with a sample that cannot be used: `data.bad_samples=error` (default) or `skip`.

Datasets raise `DataError` for a sample they cannot read (an image that does not
decode, an empty or unreadable text, a label outside the label set), naming the
file or index. With `error` that stops the run with that message. With `skip`,
`SkipBadSamples` turns the error into a marker that `drop_bad_samples` removes
from the batch, and appends one JSON line per skipped sample to a log file in
the run directory (appends of one short line are atomic, so DataLoader workers
and DDP ranks can share it); the runner lists them in `run.json`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from litzoo.errors import ConfigError, DataError

POLICIES = ("error", "skip")


@dataclass(frozen=True)
class BadSample:
    """Stands in for a sample that could not be loaded, until the collate function drops it."""

    index: int
    reason: str


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise ConfigError(f"data.bad_samples={policy!r} is not a policy; use one of {', '.join(POLICIES)}.")
    return policy


class SkipBadSamples(Dataset):
    """Wraps a dataset so that its `DataError`s become `BadSample` markers, logged to `log_path`."""

    def __init__(self, dataset: Dataset, split: str, log_path: str | Path | None) -> None:
        self.dataset, self.split = dataset, split
        self.log_path = str(log_path) if log_path else None

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:  # e.g. `targets`, `classes` of the wrapped dataset
        if name in ("dataset", "split", "log_path"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except DataError as error:
            if self.log_path:
                line = json.dumps({"split": self.split, "index": int(index), "reason": str(error)}) + "\n"
                fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, line.encode())
                finally:
                    os.close(fd)
            return BadSample(int(index), str(error))


def drop_bad_samples(collate: Callable[[list[Any]], Any]) -> Callable[[list[Any]], Any]:
    """A collate function that leaves out `BadSample` markers before collating."""
    return _DropBadSamples(collate)


class _DropBadSamples:
    # A class rather than a closure so DataLoader workers can pickle it.
    def __init__(self, collate: Callable[[list[Any]], Any]) -> None:
        self.collate = collate

    def __call__(self, samples: list[Any]) -> Any:
        kept = [s for s in samples if not isinstance(s, BadSample)]
        if not kept:
            raise DataError(
                f"Every sample of a batch was unusable (indices {[s.index for s in samples]}): "
                f"{samples[0].reason}"
            )
        return self.collate(kept)


def read_log(path: str | Path, limit: int = 100) -> dict[str, Any]:
    """The skipped samples recorded in `path`: their count and the first `limit` of them."""
    path = Path(path)
    if not path.is_file():
        return {"count": 0, "samples": []}
    entries: Sequence[dict[str, Any]] = [json.loads(line) for line in path.read_text().splitlines() if line]
    unique = list({(e["split"], e["index"]): e for e in entries}.values())  # one per sample, across epochs
    return {"count": len(unique), "samples": unique[:limit]}
