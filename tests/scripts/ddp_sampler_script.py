"""Train a tiny model under Lightning DDP (CPU, gloo, 2 processes) on a self-sharding batch sampler.

Run as a real script -- Lightning's ddp strategy re-launches ``sys.argv`` for the other ranks::

    python tests/scripts/ddp_sampler_script.py OUTDIR [--sampler fixed|token|sorted] [--epochs 3]
    python tests/scripts/ddp_sampler_script.py OUTDIR --datamodule [--epochs 3]

Each rank writes ``OUTDIR/rank{r}_epoch{e}.json`` with the index batches its training_step saw,
its ``len(dataloader)`` and the sampler's global batch list for that epoch, so a test can check
that ranks got equal, disjoint and complete shares that change between epochs.

With ``--datamodule`` the loaders come from a :class:`~litzoo.data.base.BaseDataModule`
with its default samplers, and the Trainer takes the datamodule's ``trainer_kwargs()`` (as the
platform does); each rank also writes ``OUTDIR/rank{r}_val{e}.json`` with its validation batches.
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset

from litzoo.data.base import BaseDataModule
from litzoo.data.loader import build_dataloader
from litzoo.data.samplers import FixedBucketSampler, SortedBucketSampler, TokenBudgetSampler


def skewed_lengths() -> list[int]:
    """One huge bucket of short samples, a few long ones and odd singletons, so bucket batch
    counts are uneven and the global batch count is odd (ranks need padding)."""
    rng = np.random.default_rng(0)
    short = rng.integers(1, 6, size=180)
    long = rng.integers(90, 101, size=21)
    singles = np.array([33, 47, 61, 76])
    lengths = np.concatenate([short, long, singles])
    return rng.permutation(lengths).tolist()


def make_sampler(kind: str, lengths: list[int]):
    if kind == "fixed":
        return FixedBucketSampler(lengths, batch_size=8, num_buckets=10, ratio=0.5, shuffle=True, seed=7)
    if kind == "token":
        return TokenBudgetSampler(lengths, max_tokens=120, max_sentences=16, shuffle=True, seed=7)
    return SortedBucketSampler(lengths, batch_size=8, mult=4, shuffle=True, seed=7)


class IndexDataset(Dataset):
    def __init__(self, lengths: list[int]) -> None:
        self.lengths = lengths

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> int:
        return i


# Sizes of the datamodule's splits: 197 training samples make 25 batches of 8 (odd: rank 1 gets a
# repeated batch), 37 validation samples make 5 batches of 8 (split evenly: no repeats).
DATAMODULE_SIZES = {"train": 197, "val": 37}


class IndexDataModule(BaseDataModule):
    def info(self) -> dict:
        return {}

    def setup(self, stage: str | None = None) -> None:
        self.train_set = IndexDataset([1] * DATAMODULE_SIZES["train"])
        self.val_set = IndexDataset([1] * DATAMODULE_SIZES["val"])


class Recorder(L.LightningModule):
    def __init__(self, outdir: Path) -> None:
        super().__init__()
        self.outdir = outdir
        self.layer = torch.nn.Linear(1, 1)
        self.seen: list[list[int]] = []
        self.val_seen: list[list[int]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(batch.tolist())
        return self.layer(batch.float()[:, None]).mean()

    def on_train_epoch_end(self) -> None:
        loader = self.trainer.train_dataloader
        sampler = loader.batch_sampler
        record = {
            "rank": self.global_rank,
            "world_size": self.trainer.world_size,
            "epoch": self.current_epoch,
            "len_dataloader": len(loader),
            "batches": self.seen,
            "global_batches": sampler.global_batches(self.current_epoch),
        }
        path = self.outdir / f"rank{self.global_rank}_epoch{self.current_epoch}.json"
        path.write_text(json.dumps(record))
        self.seen = []

    def validation_step(self, batch, batch_idx):
        self.val_seen.append(batch.tolist())

    def on_validation_epoch_end(self) -> None:
        path = self.outdir / f"rank{self.global_rank}_val{self.current_epoch}.json"
        path.write_text(json.dumps({"batches": self.val_seen, "world_size": self.trainer.world_size}))
        self.val_seen = []

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--sampler", choices=["fixed", "token", "sorted"], default="fixed")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--datamodule", action="store_true", help="loaders from a BaseDataModule")
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)

    common = dict(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=args.epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    if args.datamodule:
        datamodule = IndexDataModule(batch_size=8, num_workers=args.num_workers, seed=7)
        # The platform's contract: the datamodule says which Trainer arguments it needs.
        trainer = L.Trainer(num_sanity_val_steps=0, **common, **datamodule.trainer_kwargs())
        trainer.fit(Recorder(args.outdir), datamodule=datamodule)
    else:
        lengths = skewed_lengths()
        loader = build_dataloader(
            IndexDataset(lengths),
            make_sampler(args.sampler, lengths),
            num_workers=args.num_workers,
            persistent_workers=True,
        )
        trainer = L.Trainer(use_distributed_sampler=False, **common)  # the batch sampler shards itself
        trainer.fit(Recorder(args.outdir), train_dataloaders=loader)
    if trainer.global_rank == 0:
        (args.outdir / "done").write_text(str(os.getpid()))


if __name__ == "__main__":
    main()
