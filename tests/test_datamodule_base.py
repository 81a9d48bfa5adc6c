"""BaseDataModule: every loader comes from the data API -- self-sharding samplers seeded by the run's
seed, batchify functions, a resumable training loader -- chosen from the config.

Checked against independent references: the batches are recomputed here from
``numpy.random.default_rng([seed, epoch])``, shares are checked for disjointness and completeness,
and the runs that must agree are compared value for value.
"""

from __future__ import annotations

import bisect
import functools
import logging
import math
import random

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from conftest import compose
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import Dataset

from litzoo.data import batchify
from litzoo.data.base import BaseDataModule
from litzoo.data.loader import ResumableDataLoader
from litzoo.data.samplers import (
    FixedBucketSampler,
    RandomBatchSampler,
    SequentialBatchSampler,
    SortedBucketSampler,
)
from litzoo.datamodules.classification.digits import DigitsDataModule, split_indices
from litzoo.errors import ConfigError, DataError
from litzoo.platform.registry import META_KEYS, build

STACK = "{_target_:litzoo.data.batchify.Stack}"


# ============================================================================ datamodules under test


class Draws(Dataset):
    """Sample i is ``[i, torch.rand(), numpy.random.random(), random.random()]``: its index and one
    draw from each global RNG a random transform may use, so a batch shows how workers were seeded."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> torch.Tensor:
        draws = [torch.rand(()).item(), np.random.random(), random.random()]
        return torch.tensor([index, *draws], dtype=torch.float64)


class DrawsDataModule(BaseDataModule):
    """Train/val/test splits of ``sizes`` samples; batches are (B, 4) float64 tensors of `Draws`."""

    def __init__(self, sizes: tuple[int, int, int] = (50, 23, 7), batch_size: int = 8, **kwargs) -> None:
        super().__init__(batch_size, **kwargs)
        self.sizes = sizes

    def info(self) -> dict:
        return {}

    def setup(self, stage: str | None = None) -> None:
        self.train_set, self.val_set, self.test_set = (Draws(n) for n in self.sizes)


class InkSequenceDigits(DigitsDataModule):
    """The real digits as variable-length token sequences: the ink intensities (1..16) of each scan's
    non-blank pixels, row by row, with the digit as label (lengths spread from about 10 to 60)."""

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        from sklearn.datasets import load_digits

        digits = load_digits()
        ink = [image.astype(np.int64).ravel() for image in digits.images]
        samples = [(pixels[pixels > 0], int(label)) for pixels, label in zip(ink, digits.target)]
        splits = split_indices(digits.target.tolist(), self.val_fraction, self.test_fraction, self.split_seed)
        self.train_set, self.val_set, self.test_set = ([samples[i] for i in ids] for ids in splits)

    def lengths(self, split: str) -> list[int]:
        return [len(tokens) for tokens, _ in self.dataset(split)]


def indices(batch: torch.Tensor) -> list[int]:
    return batch[:, 0].long().tolist()


def epoch_batches(loader, epoch: int) -> list[list[int]]:
    loader.batch_sampler.set_epoch(epoch)  # what Lightning does before every epoch
    return [indices(batch) for batch in loader]


def random_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The documented default training order, computed independently of the samplers."""
    order = np.random.default_rng([seed, epoch]).permutation(n).tolist()
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def build_like_the_platform(data_cfg, seed: int):
    """What `registry.build(cfg.data, seed=...)` does (recursive instantiation, plain containers),
    for a test datamodule whose module the platform's target allowlist does not know."""
    arguments = {
        k: v for k, v in OmegaConf.to_container(data_cfg, resolve=True).items() if k not in META_KEYS
    }
    return instantiate(arguments, seed=seed, _convert_="all")


# ============================================================================ defaults and config


def test_default_config_gives_seeded_random_train_batches_and_ordered_eval_batches():
    cfg = compose([])
    assert cfg.data.sampler is None and cfg.data.collate is None
    dm = build(cfg.data, seed=42)
    assert dm.trainer_kwargs() == {"use_distributed_sampler": False}
    dm.setup("fit")
    train = dm.train_dataloader()
    assert isinstance(train, ResumableDataLoader) and type(train.batch_sampler) is RandomBatchSampler
    assert (train.batch_sampler.seed, train.batch_sampler.batch_size, len(dm.train_set)) == (42, 64, 1257)
    for epoch in (0, 1):
        expected = random_batches(1257, 64, seed=42, epoch=epoch)
        assert train.batch_sampler.global_batches(epoch) == expected
    train.batch_sampler.set_epoch(1)
    images, labels = next(iter(train))
    first = random_batches(1257, 64, seed=42, epoch=1)[0]
    assert images.shape == (64, 1, 32, 32) and torch.equal(labels, dm.train_set.labels[first])
    # val/test: every sample once, in dataset order, unshuffled whatever the epoch
    val = dm.val_dataloader()
    assert type(val.batch_sampler) is SequentialBatchSampler and not val.batch_sampler.shuffle
    val.batch_sampler.set_epoch(3)
    assert torch.equal(torch.cat([labels for _, labels in val]), dm.val_set.labels)


def test_sampler_and_collate_from_config():
    collate = f"{{_target_:litzoo.data.batchify.Tuple,_args_:[{{_target_:litzoo.data.batchify.Stack,dtype:float16}},{STACK}]}}"
    sampler = "{_target_:litzoo.data.samplers.RandomBatchSampler,_partial_:true,batch_size:10}"
    cfg = compose([f"data.collate={collate}", f"data.sampler={sampler}", "data.eval_batch_size=100"])
    dm = build(cfg.data, seed=3)
    assert isinstance(dm.collate_fn, batchify.Tuple) and isinstance(dm.sampler_factory, functools.partial)
    dm.setup("fit")
    train = dm.train_dataloader()
    # the sampler's own batch_size wins over data.batch_size; the run's seed and shuffle are added
    assert train.batch_sampler.global_batches(0) == random_batches(1257, 10, seed=3, epoch=0)
    images, labels = next(iter(train))
    assert images.dtype == torch.float16 and labels.dtype == torch.int64 and len(labels) == 10
    val = dm.val_dataloader()  # eval: the same factory, unshuffled, evenly split
    assert not val.batch_sampler.shuffle and val.batch_sampler.even_split
    assert [len(b) for b in val.batch_sampler.global_batches()] == [10] * 27


def test_length_aware_sampler_and_pad_collate_from_config(caplog):
    sampler = (
        "{_target_:litzoo.data.samplers.FixedBucketSampler,_partial_:true,"
        "num_buckets:5,bucket_scheme:linear,ratio:0.5}"
    )
    pad = "{_target_:litzoo.data.batchify.Pad,pad_val:0,ret_length:true}"
    collate = f"{{_target_:litzoo.data.batchify.Tuple,_args_:[{pad},{STACK}]}}"
    cfg = compose(
        [
            f"data._target_={__name__}.InkSequenceDigits",
            f"data.sampler={sampler}",
            f"data.collate={collate}",
            "data.batch_size=32",
        ]
    )
    dm = build_like_the_platform(cfg.data, seed=9)
    dm.setup("fit")
    with caplog.at_level(logging.INFO, logger="litzoo"):
        train = dm.train_dataloader()
    sampler = train.batch_sampler
    assert isinstance(sampler, FixedBucketSampler)
    assert (sampler.seed, sampler.batch_size, sampler.shuffle, sampler.ratio) == (9, 32, True, 0.5)
    lengths = dm.lengths("train")
    assert sampler.lengths.tolist() == lengths
    assert f"train sampler: {sampler.stats()}" in caplog.text  # logged once, when built

    # A batch pads to its own longest sample, and all its samples come from one bucket.
    keys = sampler.bucket_keys
    for (tokens, valid_length), labels in train:
        assert tokens.shape == (len(labels), int(valid_length.max()))
        assert len({bisect.bisect_left(keys, v) for v in valid_length.tolist()}) == 1
        for row, v in zip(tokens, valid_length.tolist()):
            assert (row[:v] > 0).all() and (row[v:] == 0).all()  # ink tokens, then padding
    # Bucketing pads far less than random batches of the same size over the same lengths.
    random_padding = RandomBatchSampler(len(lengths), 32, seed=9)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in random_padding.global_batches(0))
    assert sampler.stats()["padding_fraction"] < 0.5 * (1 - sum(lengths) / padded)

    val = dm.val_dataloader()
    assert isinstance(val.batch_sampler, FixedBucketSampler)
    assert not val.batch_sampler.shuffle and val.batch_sampler.even_split
    seen = sorted(i for b in val.batch_sampler for i in b)
    assert seen == list(range(len(dm.val_set)))


def test_sort_keys_sampler_gets_lengths_and_eval_batch_size():
    dm = InkSequenceDigits(
        batch_size=16, eval_batch_size=50, seed=1, sampler=functools.partial(SortedBucketSampler, mult=4)
    )
    dm.setup("fit")
    val = dm.batch_sampler("val")
    assert isinstance(val, SortedBucketSampler) and (val.batch_size, val.shuffle) == (50, False)
    assert [len(b) for b in val.global_batches()][:5] == [50, 50, 50, 50, 50]
    lengths = dm.lengths("val")
    first = val.global_batches()[0]
    assert [lengths[i] for i in first] == sorted((lengths[i] for i in range(200)), reverse=True)[:50]


def test_uninstantiated_sampler_and_collate_configs_are_built():
    dm = DrawsDataModule(
        sampler={"_target_": "litzoo.data.samplers.RandomBatchSampler", "drop_last": True},
        collate={"_target_": "litzoo.data.batchify.Stack", "dtype": "float32"},
        num_replicas=3,
        rank=2,
    )
    dm.setup()
    sampler = dm.batch_sampler("train")
    assert (
        isinstance(sampler, RandomBatchSampler) and len(sampler) == 7 // 3
    )  # drop_last: 7 batches on 3 ranks
    assert next(iter(dm.train_dataloader())).dtype == torch.float32


@pytest.mark.parametrize(
    ("sampler", "error", "match"),
    [
        (
            functools.partial(FixedBucketSampler, num_buckets=4),
            ConfigError,
            "groups samples by length, but DrawsDataModule provides no per-sample lengths for its train split",
        ),
        (
            functools.partial(RandomBatchSampler, seed=5),
            ConfigError,
            "sets seed, which the datamodule fills in",
        ),
        (
            {"_target_": "litzoo.data.samplers.RandomBatchSampler", "shuffle": False},
            ConfigError,
            "sets shuffle",
        ),
        (RandomBatchSampler(10, 2), ConfigError, "must be a sampler factory, not a built sampler"),
        (functools.partial(torch.utils.data.BatchSampler), ConfigError, "takes none of num_samples"),
        ({"sampler": "FixedBucketSampler"}, ConfigError, "must name its class with _target_"),
    ],
)
def test_misconfigured_samplers_name_the_fix(sampler, error, match):
    with pytest.raises(error, match=match):
        dm = DrawsDataModule(sampler=sampler)
        dm.setup()
        dm.train_dataloader()


@pytest.mark.parametrize("seed", [-1, 2.5, None])
def test_the_seed_must_be_a_non_negative_integer(seed):
    with pytest.raises(ConfigError, match="the data seed must be a non-negative integer"):
        DrawsDataModule(seed=seed)


def test_lengths_must_match_the_split():
    class Short(InkSequenceDigits):
        def lengths(self, split):
            return super().lengths(split)[:-1]

    dm = Short(sampler=functools.partial(FixedBucketSampler, num_buckets=3))
    dm.setup()
    with pytest.raises(DataError, match=r"returned 1256 lengths for a split of 1257 samples"):
        dm.train_dataloader()


def test_a_custom_batch_sampler_that_does_not_shard_is_refused():
    def unsharded(num_samples, batch_size):
        return torch.utils.data.BatchSampler(range(num_samples), batch_size, drop_last=False)

    dm = DrawsDataModule(sampler=unsharded)
    dm.setup()
    with pytest.raises(ConfigError, match="does not shard itself"):
        dm.train_dataloader()


# ============================================================================ DDP sharding


@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("epoch", [0, 4])
def test_loaders_shard_disjoint_complete_and_equal(world, epoch):
    sizes, seed = (50, 23, 7), 3
    ranks = []
    for rank in range(world):
        dm = DrawsDataModule(sizes, batch_size=8, eval_batch_size=5, seed=seed, num_replicas=world, rank=rank)
        dm.setup()
        ranks.append(dm)

    # train: rank r takes global batches r, r + W, ...; the list is padded from its start
    global_batches = random_batches(50, 8, seed, epoch)
    total = len(global_batches)
    per_rank = math.ceil(total / world)
    padded = [global_batches[p % total] for p in range(per_rank * world)]
    streams = [epoch_batches(dm.train_dataloader(), epoch) for dm in ranks]
    assert [len(s) for s in streams] == [per_rank] * world == [len(dm.train_dataloader()) for dm in ranks]
    for rank, stream in enumerate(streams):
        assert stream == padded[rank::world]
    seen = sorted(i for s in streams for b in s for i in b)
    repeated = [i for b in padded[total:] for i in b]
    assert seen == sorted(list(range(50)) + repeated)  # complete; only the padding batches repeat
    assert len(repeated) <= (world - 1) * 8

    # val/test: every sample exactly once over all ranks, equal batch counts, nothing repeated
    for split, n in (("val", 23), ("test", 7)):
        streams = [[indices(b) for b in getattr(dm, f"{split}_dataloader")()] for dm in ranks]
        assert len({len(s) for s in streams}) == 1
        assert len(streams[0]) == math.ceil(math.ceil(n / 5) / world)
        assert sorted(i for s in streams for b in s for i in b) == list(range(n))


# ============================================================================ determinism and resume


def test_train_order_is_a_function_of_seed_and_epoch():
    def run(seed):
        dm = DrawsDataModule(seed=seed)
        dm.setup()
        loader = dm.train_dataloader()
        return [epoch_batches(loader, e) for e in range(3)]

    first = run(5)
    assert first == run(5) == [random_batches(50, 8, 5, e) for e in range(3)]
    assert first[0] != first[1] != first[2]
    assert run(6)[0] != first[0]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_train_loader_resumes_mid_epoch_with_the_next_batch(num_workers):
    def loader():
        dm = DrawsDataModule(batch_size=4, seed=7, num_workers=num_workers, persistent_workers=False)
        dm.setup()
        return dm.train_dataloader()

    first = loader()
    first.batch_sampler.set_epoch(2)
    iterator = iter(first)
    done = [indices(next(iterator)) for _ in range(5)]
    state = first.state_dict()
    rest = [indices(batch) for batch in iterator]
    assert done + rest == random_batches(50, 4, 7, epoch=2)

    resumed = loader()
    resumed.load_state_dict(state)
    assert [indices(batch) for batch in resumed] == rest
    # the next epoch starts from its beginning
    assert epoch_batches(resumed, 3) == random_batches(50, 4, 7, epoch=3)


@pytest.mark.parametrize("persistent_workers", [False, True])
def test_worker_random_draws_resume_exactly_mid_epoch(persistent_workers):
    """With worker processes the resumed loader gives the same *samples* (not only the same indices):
    each worker's random state travels in the loader's state, so augmentation draws continue, and
    the next epoch's workers are seeded (or, persistent, carry on) as in the uninterrupted run,
    whether the run resumed mid-epoch or at an epoch's end."""

    def loader():
        dm = DrawsDataModule(batch_size=4, seed=7, num_workers=2, persistent_workers=persistent_workers)
        dm.setup()
        return dm.train_dataloader()

    def epoch(loader, number):
        loader.batch_sampler.set_epoch(number)
        return list(loader)

    first = loader()
    epoch(first, 0)  # the workers' random states are now well past their seeds
    first.batch_sampler.set_epoch(1)
    iterator = iter(first)
    for _ in range(5):
        next(iterator)
    state = first.state_dict()
    rest = list(iterator)
    end_of_epoch = first.state_dict()
    following = epoch(first, 2)

    resumed = loader()
    resumed.load_state_dict(state)
    again = list(resumed)
    assert len(again) == len(rest) == 13 - 5
    assert all(torch.equal(a, b) for a, b in zip(again, rest))
    assert all(torch.equal(a, b) for a, b in zip(epoch(resumed, 2), following))

    resumed = loader()
    resumed.load_state_dict(end_of_epoch)
    assert all(torch.equal(a, b) for a, b in zip(epoch(resumed, 2), following))


# ============================================================================ worker seeding


def draw_epochs(
    seed: int, num_workers: int, epochs: int = 2, persistent_workers: bool = True
) -> list[torch.Tensor]:
    dm = DrawsDataModule(
        (24, 8, 8), batch_size=4, seed=seed, num_workers=num_workers, persistent_workers=persistent_workers
    )
    dm.setup()
    loader = dm.train_dataloader()
    out = []
    for epoch in range(epochs):
        loader.batch_sampler.set_epoch(epoch)
        out.append(torch.cat(list(loader)))
    return out


def test_two_workers_are_seeded_from_the_run_seed_alone():
    torch.manual_seed(123)
    first = draw_epochs(seed=11, num_workers=2)
    torch.manual_seed(999)  # the global RNG, which workers are seeded from by default, must not matter
    again = draw_epochs(seed=11, num_workers=2)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    other = draw_epochs(seed=12, num_workers=2)
    assert not torch.equal(first[0][:, 1:], other[0][:, 1:])
    for epoch in first:
        draws = epoch[:, 1:]
        assert len(torch.unique(draws[:, 0])) == len(draws)  # torch: no two samples share a draw
        assert len(np.unique(draws[:, 1].numpy())) == len(draws)  # numpy: workers differ
        assert len(set(draws[:, 2].tolist())) == len(draws)  # random: workers differ
    assert not torch.equal(first[0][:, 1:], first[1][:, 1:])  # epochs differ


def test_worker_draws_do_not_depend_on_persistent_workers():
    """Workers reseed at every epoch from (seed, epoch, worker), so persistent workers draw what
    fresh workers would: an epoch's augmentation does not depend on the workers' age."""
    persistent = draw_epochs(seed=11, num_workers=2, epochs=3, persistent_workers=True)
    fresh = draw_epochs(seed=11, num_workers=2, epochs=3, persistent_workers=False)
    assert all(torch.equal(a, b) for a, b in zip(persistent, fresh))
    assert not torch.equal(persistent[1][:, 1:], persistent[2][:, 1:])


def test_main_process_loading_follows_the_seeded_global_rngs():
    pl.seed_everything(11, workers=True, verbose=False)  # what the runner does before building
    first = draw_epochs(seed=11, num_workers=0)
    pl.seed_everything(11, workers=True, verbose=False)
    again = draw_epochs(seed=11, num_workers=0)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    pl.seed_everything(12, workers=True, verbose=False)
    assert not torch.equal(draw_epochs(seed=11, num_workers=0)[0], first[0])


# ============================================================================ through Lightning


class Recorder(pl.LightningModule):
    """Records the rows of every training and validation batch it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.train_rows: list[list[float]] = []
        self.val_indices: list[list[int]] = []

    def training_step(self, batch, batch_idx):
        self.train_rows.append(batch.tolist())
        return self.layer(batch[:, 1:2].float()).mean()

    def validation_step(self, batch, batch_idx):
        self.val_indices.append(indices(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(dm: BaseDataModule, tmp_path, epochs: int = 2, ckpt_path=None, callbacks=()) -> Recorder:
    module = Recorder()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=epochs,
        logger=False,
        callbacks=list(callbacks),
        enable_checkpointing=bool(callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        **dm.trainer_kwargs(),
    )
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    return module


@pytest.mark.parametrize("num_workers", [0, 2])
def test_two_identical_lightning_runs_see_identical_batches(num_workers, tmp_path):
    runs = []
    for _ in range(2):
        pl.seed_everything(21, workers=True, verbose=False)
        dm = DrawsDataModule((24, 10, 4), batch_size=4, seed=21, num_workers=num_workers)
        runs.append(fit(dm, tmp_path))
    assert runs[0].train_rows == runs[1].train_rows
    order = [[int(row[0]) for row in batch] for batch in runs[0].train_rows]
    assert order == random_batches(24, 4, 21, 0) + random_batches(24, 4, 21, 1)  # Lightning set the epochs
    assert runs[0].val_indices == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] * 2


def test_lightning_resumes_the_datamodule_mid_epoch(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    pl.seed_everything(4, workers=True, verbose=False)
    every_step = ModelCheckpoint(dirpath=tmp_path, filename="{step}", every_n_train_steps=1, save_top_k=-1)
    full = fit(DrawsDataModule((30, 6, 4), batch_size=4, seed=4), tmp_path, callbacks=[every_step])
    order = [[int(row[0]) for row in batch] for batch in full.train_rows]
    assert len(order) == 16  # 8 batches per epoch
    resumed = fit(
        DrawsDataModule((30, 6, 4), batch_size=4, seed=4),
        tmp_path / "resumed",
        ckpt_path=tmp_path / "step=11.ckpt",
    )
    assert [[int(row[0]) for row in batch] for batch in resumed.train_rows] == order[11:]
