"""Loading machinery cost per batch: the datamodule base's loaders next to torch's DataLoader.

A ``TensorDataset`` of 200,000 ints in batches of 64, so only the loaders' own work counts
(sampling, worker hand-off, collate, and for the resumable training loader the state
snapshot of every batch, which with workers includes each worker's random states). Rows:

- base train: `BaseDataModule.train_dataloader()` (torchdata ``StatefulDataLoader`` with
  litzoo's batch sampler; with workers, per-epoch worker seeding and random-state snapshots);
- base val: `BaseDataModule.val_dataloader()` (torch ``DataLoader``, sequential batches);
- torch: ``DataLoader(dataset, batch_size=64, shuffle=True)``.

    python benchmarks/bench_loader_overhead.py            # 0 and 2 workers, 3 epochs each
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from litzoo.data.base import BaseDataModule


class Ints(BaseDataModule):
    def __init__(self, n: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n = n

    def info(self) -> dict:
        return {}

    def setup(self, stage: str | None = None) -> None:
        data = TensorDataset(torch.arange(self.n))
        self.train_set = self.val_set = self.test_set = data


def per_batch(loader, epochs: int) -> float:
    """Microseconds per batch over `epochs` epochs, after one untimed warm-up epoch."""

    def run(epoch: int) -> int:
        if hasattr(loader.batch_sampler, "set_epoch"):
            loader.batch_sampler.set_epoch(epoch)
        return sum(1 for _ in loader)

    run(0)
    start = time.perf_counter()
    batches = sum(run(epoch) for epoch in range(1, epochs + 1))
    return (time.perf_counter() - start) / batches * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)

    rows = {"base train (resumable)": [], "base val (sequential)": [], "torch DataLoader(shuffle)": []}
    for workers in args.workers:
        dm = Ints(args.samples, batch_size=64, num_workers=workers, seed=0)
        dm.setup()
        plain = DataLoader(
            dm.train_set, batch_size=64, shuffle=True, num_workers=workers, persistent_workers=workers > 0
        )
        rows["base train (resumable)"].append(per_batch(dm.train_dataloader(), args.epochs))
        rows["base val (sequential)"].append(per_batch(dm.val_dataloader(), args.epochs))
        rows["torch DataLoader(shuffle)"].append(per_batch(plain, args.epochs))

    print(
        f"\n== Loader cost per batch ({args.samples:,} ints, batches of 64, mean of {args.epochs} epochs) =="
    )
    print(f"{'loader':<28}" + "".join(f"{f'num_workers={w}':>16}" for w in args.workers))
    for name, values in rows.items():
        print(f"{name:<28}" + "".join(f"{v:>13.0f} us" for v in values))


if __name__ == "__main__":
    main()
