"""BPTT batching (GluonNLP's `CorpusBPTTBatchify`) and the window batching of stateless models.

**Streams** (recurrent models, `data.batching=bptt`). The corpus, one id stream, is cut into
`S` contiguous streams of `T = len // S` tokens (the tail that does not fill a stream is
dropped, as GluonNLP's `last_batch='discard'`), laid out time-major as a `[T, S]` matrix:
column `s` is `corpus[s * T : (s + 1) * T]`. Batch `i` is the window `[p_i, p_i + l_i]` of rows:
inputs are rows `p_i .. p_i + l_i - 1`, targets the next rows, so consecutive batches continue
each stream where the last stopped and the model carries its hidden state (detached) from
one to the next. Under DDP the training corpus is cut into `world x batch_size` streams and rank
`r` owns streams `r * B .. r * B + B - 1`, i.e. the contiguous shard
`corpus[r * B * T : (r + 1) * B * T]`; every rank has the same number of windows. Evaluation
streams do not depend on the world size (`eval_batch_size` streams; ranks split the columns,
padding with masked copies), so DDP evaluation gives the numbers of one process.

The AWD-LSTM variable BPTT length (Merity et al. 2018): each window's length is `bptt` with
probability `p` (else `bptt / 2`) plus N(0, `std`) noise, at least `min_len`, at most
`bptt + max_delta`. Here the epoch's lengths are drawn from `(seed, epoch)` and then scaled by
the one factor (close to 1) that makes them cover the stream exactly: every epoch has the same
number of windows on every rank (Lightning counts batches once, DDP needs equal counts), the
epoch is reproducible and resumable mid-way, and no token is left out.

**Windows** (stateless models such as GPT-2, `data.batching=windows`). Training uses
contiguous blocks of `seq_len + 1` tokens (targets overlap the next block's first input),
shuffled per epoch like Hugging Face's `run_clm.py` groups; evaluation uses the strided
sliding window (Hugging Face's perplexity recipe): windows of at most `window` inputs starting
`stride` apart, each scoring only the targets the previous one did not (the first scores all
of its own), so every target `1 .. N-1` of the split is scored exactly once, with at least
`window - stride` tokens of context after the first window; with `stride == window` these are
plain consecutive chunks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from litzoo.data.samplers.sharded import ShardedBatchSampler, _Plan
from litzoo.errors import CheckpointError, ConfigError, DataError

# ----------------------------------------------------------------------------- the layout


def stream_matrix(ids: np.ndarray, num_streams: int) -> np.ndarray:
    """`[T, num_streams]` time-major matrix of `ids` cut into contiguous streams (tail dropped)."""
    length = len(ids) // num_streams
    return np.ascontiguousarray(np.asarray(ids[: length * num_streams]).reshape(num_streams, length).T)


def rank_columns(num_streams: int, world: int, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns (of `num_streams` evaluation streams) that `rank` evaluates, and which of them count.

    Every rank gets `ceil(num_streams / world)` columns, contiguous; a rank short of columns repeats
    column 0 with its mask off, so all ranks run the same shapes and the same number of batches.
    """
    per_rank = -(-num_streams // world)
    columns = np.arange(rank * per_rank, (rank + 1) * per_rank)
    real = columns < num_streams
    return np.where(real, columns, 0), real


def bptt_windows(
    stream_len: int,
    bptt: int,
    variable: bool = False,
    *,
    seed: int = 0,
    epoch: int = 0,
    p_full: float = 0.95,
    std: float = 5.0,
    min_len: int = 5,
    max_delta: int = 40,
) -> tuple[np.ndarray, np.ndarray]:
    """`(starts, lengths)` of the BPTT windows over a stream of `stream_len` tokens (`stream_len - 1` targets)."""
    targets = stream_len - 1
    if targets < 1:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if not variable:
        starts = np.arange(0, targets, bptt, dtype=np.int64)
        return starts, np.minimum(bptt, targets - starts)
    count = variable_window_count(stream_len, bptt, p_full, min_len)
    rng = np.random.default_rng([int(seed), int(epoch)])
    base = np.where(rng.random(count) < p_full, float(bptt), bptt / 2.0)
    lengths = np.clip(np.floor(rng.normal(base, std)), min_len, bptt + max_delta)
    # Scale to cover the stream exactly: window ends at the rounded cumulative lengths.
    ends = np.round(np.cumsum(lengths) * targets / lengths.sum()).astype(np.int64)
    ends[-1] = targets
    starts = np.concatenate([[0], ends[:-1]])
    lengths = ends - starts
    keep = lengths > 0  # only when the stream is shorter than the windows (tiny corpora)
    return starts[keep], lengths[keep]


def variable_window_count(stream_len: int, bptt: int, p_full: float = 0.95, min_len: int = 5) -> int:
    """Windows per epoch under variable BPTT: the stream's targets over the expected window length."""
    mean = max(float(min_len), p_full * bptt + (1.0 - p_full) * bptt / 2.0)
    return max(1, round((stream_len - 1) / mean))


# ----------------------------------------------------------------------------- datasets


class StreamRows(Dataset):
    """Rows of stream matrices: sample `r * T + t` is time step `t` of rank `r`'s streams (`[B]` ids).

    `__getitems__` returns a window in one gather (what the loader calls without workers).
    `column_mask` marks the columns that count (evaluation padding); `None` means all do.
    """

    def __init__(self, blocks: Sequence[np.ndarray], column_mask: np.ndarray | None = None) -> None:
        lengths = {len(b) for b in blocks}
        if len(lengths) != 1:
            raise ValueError("every rank's stream matrix must have the same number of time steps")
        self.stream_len = lengths.pop()
        self.rows = torch.from_numpy(np.concatenate([np.asarray(b, dtype=np.int64) for b in blocks]))
        self.column_mask = None if column_mask is None else torch.as_tensor(column_mask, dtype=torch.bool)

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor]:
        return int(index), self.rows[index]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        index = torch.as_tensor(indices)
        return [{"first": int(index[0]), "block": self.rows.index_select(0, index)}]


class StreamBatchify:
    """Collate a BPTT window: `inputs`/`targets` `[T, B]`, `start` (the window's first time step; a
    window starting at 0 resets the hidden state) and, for padded evaluation columns, `mask`."""

    def __init__(self, stream_len: int, column_mask: torch.Tensor | None = None) -> None:
        self.stream_len = stream_len
        self.column_mask = column_mask

    def __call__(self, items: list[Any]) -> dict[str, Any]:
        if len(items) == 1 and isinstance(items[0], Mapping):
            first, block = items[0]["first"], items[0]["block"]
        else:  # one (index, row) per time step, e.g. from worker processes
            first, block = int(items[0][0]), torch.stack([row for _, row in items])
        batch: dict[str, Any] = {
            "inputs": block[:-1],
            "targets": block[1:],
            "start": torch.tensor(first % self.stream_len),
        }
        if self.column_mask is not None:
            batch["mask"] = self.column_mask.expand(block.shape[0] - 1, -1)
        return batch


class TokenBlocks(Dataset):
    """Contiguous training blocks of `seq_len + 1` ids (stateless models), block `k` starting at `k * seq_len`."""

    def __init__(self, ids: np.ndarray, seq_len: int) -> None:
        self.ids = torch.from_numpy(np.asarray(ids, dtype=np.int64))
        self.seq_len = int(seq_len)
        self.count = (len(ids) - 1) // self.seq_len

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> torch.Tensor:
        start = int(index) * self.seq_len
        return self.ids[start : start + self.seq_len + 1]


def sliding_windows(num_tokens: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """`(begin, end, scored)` per evaluation window over `num_tokens` ids: inputs `ids[begin:end]`,
    targets `ids[begin + 1:end + 1]`, of which the last `scored` count (the first window: all)."""
    if not 1 <= stride <= window:
        raise ConfigError(f"data.eval_stride={stride} must be between 1 and the window ({window}).")
    targets = num_tokens - 1
    windows: list[tuple[int, int, int]] = []
    scored_up_to = 0
    for begin in range(0, max(targets, 0), stride):  # Hugging Face's strided perplexity loop
        end = min(begin + window, targets)
        windows.append((begin, end, end - scored_up_to))
        scored_up_to = end
        if end == targets:
            break
    return windows


class SlidingWindows(Dataset):
    """The evaluation windows of :func:`sliding_windows`; a sample is `(inputs, targets, scored)`."""

    def __init__(self, ids: np.ndarray, window: int, stride: int) -> None:
        self.ids = torch.from_numpy(np.asarray(ids, dtype=np.int64))
        self.windows = sliding_windows(len(ids), window, stride)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        begin, end, scored = self.windows[index]
        return self.ids[begin:end], self.ids[begin + 1 : end + 1], scored


class WindowBatchify:
    """Collate training blocks (`[S + 1]` each) or evaluation windows into time-major `inputs`/`targets`
    `[T, B]`, padding uneven windows with `pad_id` and marking the scored targets in `mask`."""

    def __init__(self, pad_id: int = 0) -> None:
        self.pad_id = int(pad_id)

    def __call__(self, items: list[Any]) -> dict[str, Any]:
        if isinstance(items[0], torch.Tensor):
            block = torch.stack(items, dim=1)
            return {"inputs": block[:-1], "targets": block[1:], "start": torch.tensor(0)}
        longest = max(len(x) for x, _, _ in items)
        inputs = torch.full((longest, len(items)), self.pad_id, dtype=torch.long)
        targets = torch.full_like(inputs, self.pad_id)
        mask = torch.zeros(longest, len(items), dtype=torch.bool)
        for column, (x, y, scored) in enumerate(items):
            inputs[: len(x), column], targets[: len(y), column] = x, y
            mask[len(x) - scored : len(x), column] = True
        return {"inputs": inputs, "targets": targets, "mask": mask, "start": torch.tensor(0)}


# ----------------------------------------------------------------------------- the sampler


class BPTTBatchSampler(ShardedBatchSampler):
    """The windows of a stream matrix, in order, for each rank; resumable mid-epoch.

    Yields, per step, the sample indices (rows of :class:`StreamRows`) of one window
    `[p_i, p_i + l_i]` of this rank's streams. Global batch `i * world + r` is window `i` of rank
    `r`, so the shared machinery of :class:`~litzoo.data.samplers.ShardedBatchSampler` (epochs,
    resumable position, round-robin sharding) hands every rank its own windows in order.

    Args:
        stream_len: time steps `T` of each rank's stream matrix.
        bptt: window length (targets per window).
        variable: AWD-LSTM's random window lengths (see the module docstring), drawn per epoch.
        p_full, std, min_len, max_delta: that distribution's parameters (Merity et al.: 0.95, 5, 5, 40).
        seed: seed of the variable lengths (the run's seed).
        num_replicas, rank: the world the streams were laid out for (fixed: the layout depends on it).
    """

    def __init__(
        self,
        stream_len: int,
        bptt: int,
        variable: bool = False,
        p_full: float = 0.95,
        std: float = 5.0,
        min_len: int = 5,
        max_delta: int = 40,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        super().__init__(
            shuffle=bool(variable), seed=seed, num_replicas=num_replicas, rank=rank, drop_last=False
        )
        if isinstance(bptt, bool) or int(bptt) < 1:
            raise ConfigError(f"data.bptt={bptt!r} must be a positive number of tokens.")
        self.stream_len, self.bptt, self.variable = int(stream_len), int(bptt), bool(variable)
        self.p_full, self.std, self.min_len, self.max_delta = (
            float(p_full),
            float(std),
            int(min_len),
            int(max_delta),
        )
        self._windows: tuple[int, tuple[np.ndarray, np.ndarray]] | None = None
        self._count = len(self.windows(0)[0])

    def windows(self, epoch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`(starts, lengths)` of the epoch's windows (the same on every rank)."""
        epoch = self._epoch if epoch is None else int(epoch)
        if self._windows is None or self._windows[0] != epoch:
            self._windows = (
                epoch,
                bptt_windows(
                    self.stream_len,
                    self.bptt,
                    self.variable,
                    seed=self.seed,
                    epoch=epoch,
                    p_full=self.p_full,
                    std=self.std,
                    min_len=self.min_len,
                    max_delta=self.max_delta,
                ),
            )
        return self._windows[1]

    @property
    def num_global_batches(self) -> int:
        return self._count * self.num_replicas

    @property
    def lengths(self) -> np.ndarray:
        return np.ones(self.stream_len * self.num_replicas, dtype=np.int64)

    def _build_plan(self, epoch: int) -> _Plan:
        starts, lengths = self.windows(epoch)
        world, span = self.num_replicas, self.stream_len
        sizes = np.repeat(
            lengths + 1, world
        )  # batch i * world + r: window i of rank r (inputs + last target)
        offsets = np.tile(np.arange(world, dtype=np.int64) * span, len(starts)) + np.repeat(starts, world)
        ends = np.cumsum(sizes)
        begins = ends - sizes
        order = np.repeat(offsets - begins, sizes) + np.arange(int(ends[-1]) if len(ends) else 0)
        return _Plan(order.astype(np.int64), begins.astype(np.int64), ends.astype(np.int64))

    def stats(self, epoch: int | None = None) -> dict[str, Any]:
        starts, lengths = self.windows(epoch)
        return {
            "sampler": type(self).__name__,
            "stream_len": self.stream_len,
            "num_replicas": self.num_replicas,
            "num_windows": len(starts),
            "bptt": self.bptt,
            "variable": self.variable,
            "window_min": int(lengths.min()) if len(lengths) else 0,
            "window_mean": float(lengths.mean()) if len(lengths) else 0.0,
            "window_max": int(lengths.max()) if len(lengths) else 0,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        saved = int(state.get("num_replicas", self.num_replicas))
        if saved != self.num_replicas:
            raise CheckpointError(
                f"The checkpoint was written by a run on {saved} process(es), this one has {self.num_replicas}: the "
                "training corpus is cut into (processes x batch size) streams, so the saved stream positions and "
                f"hidden states do not fit. Resume with trainer.devices x trainer.num_nodes = {saved}."
            )
        super().load_state_dict(state)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(stream_len={self.stream_len}, bptt={self.bptt}, variable={self.variable}, "
            f"num_replicas={self.num_replicas}, rank={self.rank})"
        )


def check_enough_tokens(num_tokens: int, num_streams: int, per_stream: int, where: str, fix: str) -> int:
    """The stream length, or a `DataError` when the split cannot give every stream `per_stream` tokens
    (training: one BPTT window, `bptt + 1`; evaluation: 2, one input and its target)."""
    stream_len = num_tokens // max(num_streams, 1)
    if stream_len < per_stream:
        raise DataError(
            f"{where} has {num_tokens:,} tokens, fewer than one BPTT batch: {num_streams} stream(s) x {per_stream} "
            f"tokens = {num_streams * per_stream:,}. {fix}"
        )
    return stream_len


def describe_windows(starts: np.ndarray, lengths: np.ndarray) -> str:
    if not len(starts):
        return "no windows"
    return (
        f"{len(starts)} windows of {int(lengths.min())}-{int(lengths.max())} tokens "
        f"(mean {float(lengths.mean()):.1f}, {math.fsum(lengths.tolist()):.0f} targets)"
    )
