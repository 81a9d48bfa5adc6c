"""Side-by-side measurements of the length-aware samplers.

1. Build time: build a sampler over N lengths (10 million by default) and iterate one epoch,
   next to one ``numpy.argsort`` of the same array (target for FixedBucketSampler: within 5x).
2. Padding and throughput: train a small ``nn.TransformerEncoder`` classifier on CPU for one
   epoch of sentence-like lengths (lognormal, 5 to 500 tokens) with (a) random batches,
   (b) FixedBucketSampler, (c) TokenBudgetSampler; print the padding fraction and the real
   (non-pad) tokens per second of each (target: padding < 10% with bucketing and >= 1.5x the
   real-token throughput of random batches).

    python benchmarks/bench_samplers.py            # full run (a few minutes on one core)
    python benchmarks/bench_samplers.py --quick    # 1M lengths, a short training run
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

from litzoo.data.batchify import Pad
from litzoo.data.samplers import FixedBucketSampler, SortedBucketSampler, TokenBudgetSampler


def sentence_lengths(n: int, seed: int) -> np.ndarray:
    """Long-tailed lengths like real sentences: lognormal, median 40 tokens, clipped to [5, 500]."""
    rng = np.random.default_rng(seed)
    return np.clip(np.round(rng.lognormal(np.log(40), 0.8, n)), 5, 500).astype(np.int64)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def consume(batches: Iterable[list[int]]) -> int:
    return sum(1 for _ in batches)


# ------------------------------------------------------------------------------ 1. build time


def bench_build(n: int, seed: int) -> None:
    lengths = sentence_lengths(n, seed)
    t_argsort, _ = timed(lambda: np.argsort(lengths))
    rows = []
    builders = {
        "FixedBucketSampler(32, 10 buckets, shuffle)": lambda: FixedBucketSampler(
            lengths, 32, num_buckets=10, shuffle=True
        ),
        "FixedBucketSampler(32, 32 exp buckets, ratio 0.5)": lambda: FixedBucketSampler(
            lengths, 32, num_buckets=32, bucket_scheme="exp", ratio=0.5, shuffle=True
        ),
        "SortedBucketSampler(32, mult 100, shuffle)": lambda: SortedBucketSampler(
            lengths, 32, mult=100, shuffle=True
        ),
        "TokenBudgetSampler(4096 tokens, shuffle)": lambda: TokenBudgetSampler(
            lengths, max_tokens=4096, shuffle=True
        ),
    }
    for name, build in builders.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            t_build, sampler = timed(build)
        t_iter, num_batches = timed(lambda s=sampler: consume(s))
        rows.append((name, t_build, t_iter, num_batches))

    print(f"\n== Build + one epoch over {n:,} lengths (times in s) ==")
    print(f"{'numpy.argsort (reference)':52s} {t_argsort:8.3f}")
    print(f"{'sampler':52s} {'build':>8s} {'epoch':>8s} {'total':>8s} {'x argsort':>10s} {'batches':>10s}")
    for name, t_build, t_iter, num_batches in rows:
        total = t_build + t_iter
        print(
            f"{name:52s} {t_build:8.3f} {t_iter:8.3f} {total:8.3f} {total / t_argsort:10.2f} {num_batches:10,d}"
        )


# ------------------------------------------------------------------------------ 2. training throughput


class TransformerClassifier(nn.Module):
    """Token embedding + learned positions + TransformerEncoder + masked mean pooling + linear head."""

    def __init__(
        self, vocab: int = 1000, d_model: int = 64, heads: int = 4, layers: int = 2, max_len: int = 512
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model, padding_idx=0)
        self.position = nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, heads, dim_feedforward=2 * d_model, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 2)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1])
        pad = positions[None, :] >= lengths[:, None]
        h = self.encoder(self.embed(tokens) + self.position(positions)[None], src_key_padding_mask=pad)
        h = h.masked_fill(pad[..., None], 0.0).sum(1) / lengths[:, None]
        return self.head(h)


def random_batches(n: int, batch_size: int, seed: int) -> list[list[int]]:
    perm = np.random.default_rng(seed).permutation(n)
    return [perm[i : i + batch_size].tolist() for i in range(0, n, batch_size)]


def train_one_epoch(
    batches: list[list[int]], tokens: list[np.ndarray], labels: np.ndarray, seed: int
) -> dict:
    torch.manual_seed(seed)
    model = TransformerClassifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    collate = Pad(pad_val=0, ret_length=True)
    real = padded = 0
    start = time.perf_counter()
    for batch in batches:
        x, lengths = collate([tokens[i] for i in batch])
        y = torch.from_numpy(labels[batch])
        loss = nn.functional.cross_entropy(model(x, lengths), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        real += int(lengths.sum())
        padded += x.numel()
    elapsed = time.perf_counter() - start
    return {
        "batches": len(batches),
        "padding": 1 - real / padded,
        "seconds": elapsed,
        "tokens_per_s": real / elapsed,
        "padded_per_batch": padded / len(batches),
    }


def bench_training(n: int, seed: int) -> None:
    lengths = sentence_lengths(n, seed + 1)
    rng = np.random.default_rng(seed + 2)
    tokens = [rng.integers(1, 1000, size=int(length)) for length in lengths]
    labels = rng.integers(0, 2, size=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        configs = {
            "random batches (32)": random_batches(n, 32, seed),
            "FixedBucketSampler(32, 32 exp buckets, ratio 0.5)": list(
                FixedBucketSampler(
                    lengths, 32, num_buckets=32, bucket_scheme="exp", ratio=0.5, shuffle=True, seed=seed
                )
            ),
            "FixedBucketSampler(32, 10 const buckets)": list(
                FixedBucketSampler(lengths, 32, num_buckets=10, shuffle=True, seed=seed)
            ),
            "TokenBudgetSampler(max_tokens 4096)": list(
                TokenBudgetSampler(lengths, max_tokens=4096, shuffle=True, seed=seed)
            ),
        }
    results = {name: train_one_epoch(batches, tokens, labels, seed) for name, batches in configs.items()}
    base = results["random batches (32)"]["tokens_per_s"]
    print(
        f"\n== One training epoch, {n:,} samples, lengths lognormal 5..500 "
        f"(mean {lengths.mean():.0f}), TransformerEncoder d=64 x2 on CPU, {torch.get_num_threads()} thread(s) =="
    )
    print(
        f"{'batching':52s} {'batches':>8s} {'padding':>8s} {'seconds':>8s} {'real tok/s':>11s} {'speed-up':>9s}"
    )
    for name, r in results.items():
        print(
            f"{name:52s} {r['batches']:8d} {r['padding']:8.1%} {r['seconds']:8.1f} "
            f"{r['tokens_per_s']:11,.0f} {r['tokens_per_s'] / base:8.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1M lengths and a short training run")
    parser.add_argument("--num-lengths", type=int, default=None, help="lengths for the build benchmark")
    parser.add_argument("--train-samples", type=int, default=None, help="samples in the training epoch")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    num_lengths = args.num_lengths or (1_000_000 if args.quick else 10_000_000)
    train_samples = args.train_samples or (800 if args.quick else 4000)
    bench_build(num_lengths, args.seed)
    bench_training(train_samples, args.seed)


if __name__ == "__main__":
    main()
