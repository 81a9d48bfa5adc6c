"""BPTT batchify: exact streams and windows on tiny corpora, DDP shards, variable lengths, resume, sliding windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from litzoo.datamodules.language_model.bptt import (
    BPTTBatchSampler,
    bptt_windows,
    rank_columns,
    sliding_windows,
    stream_matrix,
    variable_window_count,
)
from litzoo.datamodules.language_model.datamodule import LanguageModelDataModule
from litzoo.errors import CheckpointError, DataError


class InMemoryCorpus(LanguageModelDataModule):
    """The datamodule over given id streams (no files): what the batching tests need."""

    def __init__(self, ids: dict[str, np.ndarray], **kwargs) -> None:
        super().__init__(tokenizer={"kind": "word"}, **kwargs)
        self._ids = {split: np.asarray(v, dtype=np.int32) for split, v in ids.items()}

    def prepare(self) -> dict[str, np.ndarray]:
        return self._ids


def batches(loader) -> list[dict]:
    return list(loader)


def test_stream_matrix_is_gluonnlp_corpus_bptt_batchify():
    # 23 ids in 2 streams of 11: column s is ids[11 s : 11 (s + 1)], the last id does not fit and is dropped.
    matrix = stream_matrix(np.arange(23), 2)
    assert matrix.shape == (11, 2)
    assert matrix[:, 0].tolist() == list(range(11)) and matrix[:, 1].tolist() == list(range(11, 22))


def test_windows_give_exact_inputs_and_targets_and_continue_each_stream():
    dm = InMemoryCorpus(
        {"train": np.arange(23), "val": np.arange(9), "test": np.arange(9)},
        batch_size=2,
        bptt=4,
        eval_batch_size=1,
        num_replicas=1,
        rank=0,
    )
    dm.setup()
    got = batches(dm.train_dataloader())
    assert len(got) == len(dm.train_dataloader()) == 3  # 10 targets per stream: windows of 4, 4, 2
    assert got[0]["inputs"].tolist() == [[0, 11], [1, 12], [2, 13], [3, 14]]
    assert got[0]["targets"].tolist() == [[1, 12], [2, 13], [3, 14], [4, 15]]
    assert got[2]["inputs"].tolist() == [[8, 19], [9, 20]] and got[2]["targets"].tolist() == [
        [9, 20],
        [10, 21],
    ]
    assert [int(b["start"]) for b in got] == [0, 4, 8]  # a window at 0 resets the hidden state
    for previous, current in zip(got, got[1:]):  # each window starts where the last one's targets ended
        assert torch.equal(current["inputs"][0], previous["targets"][-1])
    assert got[0]["inputs"].dtype == torch.int64 and "mask" not in got[0]


def test_ddp_ranks_get_disjoint_contiguous_shards_with_equal_window_counts():
    corpus = np.arange(47)
    seen = {}
    for rank in (0, 1):
        dm = InMemoryCorpus(
            {"train": corpus, "val": corpus[:20], "test": corpus[:20]},
            batch_size=2,
            bptt=3,
            num_replicas=2,
            rank=rank,
        )
        dm.setup()
        got = batches(dm.train_dataloader())
        streams = torch.cat(
            [
                torch.cat([b["inputs"][:1], b["targets"]]) if i == 0 else b["targets"]
                for i, b in enumerate(got)
            ]
        )  # [T, 2]: this rank's two streams in full
        seen[rank] = (len(got), streams.t().reshape(-1).tolist())
    # 4 streams of 47 // 4 = 11 ids: rank 0 owns ids 0..21, rank 1 ids 22..43, each in order.
    assert seen[0] == (4, list(range(22))) and seen[1] == (4, list(range(22, 44)))


def test_evaluation_streams_do_not_depend_on_the_world_size():
    ids = np.arange(101)
    single = InMemoryCorpus(
        {"train": ids, "val": ids, "test": ids},
        batch_size=2,
        bptt=5,
        eval_batch_size=3,
        num_replicas=1,
        rank=0,
    )
    single.setup()
    whole = torch.cat([b["targets"] for b in single.val_dataloader()])  # [T, 3]
    parts = []
    for rank in (0, 1):
        dm = InMemoryCorpus(
            {"train": ids, "val": ids, "test": ids},
            batch_size=2,
            bptt=5,
            eval_batch_size=3,
            num_replicas=2,
            rank=rank,
        )
        dm.setup()
        got = list(dm.val_dataloader())
        assert len(got) == len(list(single.val_dataloader()))  # same number of steps on every rank
        targets = torch.cat([b["targets"] for b in got])
        mask = (
            torch.cat([b["mask"] for b in got])
            if "mask" in got[0]
            else torch.ones_like(targets, dtype=torch.bool)
        )
        parts += [targets[:, c] for c in range(targets.shape[1]) if mask[:, c].all()]
        assert all(
            not mask[:, c].any() for c in range(mask.shape[1]) if not mask[:, c].all()
        )  # padding counts 0
    assert torch.equal(torch.stack(parts, 1), whole)
    assert rank_columns(1, 2, 1)[1].tolist() == [False]  # test batch 1 on 2 ranks: rank 1 runs a masked copy


def test_variable_bptt_covers_each_stream_exactly_with_a_fixed_window_count():
    stream_len, bptt = 5001, 70
    count = variable_window_count(stream_len, bptt)
    lengths_by_epoch = []
    for epoch in range(4):
        starts, lengths = bptt_windows(stream_len, bptt, True, seed=1882, epoch=epoch)
        assert len(starts) == count  # the same every epoch: Lightning and DDP count batches once
        assert starts[0] == 0 and np.array_equal(starts[1:], np.cumsum(lengths)[:-1])
        assert lengths.sum() == stream_len - 1 and lengths.min() >= 1
        lengths_by_epoch.append(lengths)
    assert not np.array_equal(lengths_by_epoch[0], lengths_by_epoch[1])  # redrawn every epoch ...
    again = bptt_windows(stream_len, bptt, True, seed=1882, epoch=1)[1]
    assert np.array_equal(again, lengths_by_epoch[1])  # ... as a function of (seed, epoch)
    lengths = np.concatenate(lengths_by_epoch)
    assert (lengths < 50).mean() == pytest.approx(0.05, abs=0.02)  # bptt / 2 with probability 0.05
    assert np.median(lengths) == pytest.approx(70, abs=2)


def test_sampler_resumes_mid_epoch_and_refuses_another_world_size():
    sampler = BPTTBatchSampler(stream_len=200, bptt=10, variable=True, seed=3, num_replicas=2, rank=1)
    sampler.set_epoch(2)
    full = list(sampler)
    iterator = iter(sampler)
    first = [next(iterator) for _ in range(5)]
    state = sampler.state_dict()
    resumed = BPTTBatchSampler(stream_len=200, bptt=10, variable=True, seed=3, num_replicas=2, rank=1)
    resumed.load_state_dict(state)
    assert first + list(resumed) == full
    other = BPTTBatchSampler(stream_len=200, bptt=10, variable=True, seed=3, num_replicas=1, rank=0)
    with pytest.raises(CheckpointError, match="2 process"):
        other.load_state_dict(state)


def test_sliding_windows_score_every_target_once_with_the_first_window_whole():
    windows = sliding_windows(num_tokens=23, window=8, stride=3)
    assert windows[0] == (0, 8, 8)  # the first window scores all its targets, context from the start
    scored = [t for begin, end, count in windows for t in range(end - count, end)]
    assert scored == list(range(22))  # targets 1..22 (as positions 0..21 of ids[1:]) exactly once
    assert all(end - begin == 8 for begin, end, _ in windows[1:-1])
    assert all(
        end - count - begin >= 8 - 3 for begin, end, count in windows[1:]
    )  # >= window - stride context
    assert sliding_windows(23, 8, 8) == [(0, 8, 8), (8, 16, 8), (16, 22, 6)]  # stride = window: plain chunks


def test_a_corpus_smaller_than_one_bptt_batch_is_refused_with_the_fix():
    dm = InMemoryCorpus(
        {"train": np.arange(50), "val": np.arange(50), "test": np.arange(50)},
        batch_size=20,
        bptt=35,
        num_replicas=1,
        rank=0,
    )
    with pytest.raises(
        DataError, match=r"fewer than one BPTT batch.*20 stream\(s\) x 36 tokens.*data.batch_size"
    ):
        dm.setup()
