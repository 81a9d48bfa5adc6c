"""Samplers: GluonNLP bucket keys and batches against plain-Python references, properties over random
settings (coverage, sharding, bucket limits, ratio formula, determinism), resume, and the DataLoader
and Lightning integration (set_epoch, state in checkpoints)."""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from litzoo.data.loader import build_dataloader
from litzoo.data.samplers import (
    ConstWidthBucket,
    ExpWidthBucket,
    FixedBucketSampler,
    LinearWidthBucket,
    RandomBatchSampler,
    SequentialBatchSampler,
    SortedBucketSampler,
    TokenBudgetSampler,
    resolve_bucket_scheme,
)
from litzoo.errors import CheckpointError, ConfigError, DataError

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _quiet(factory, *args, **kwargs):
    """Build a sampler without the 'empty buckets removed' warning that random data triggers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return factory(*args, **kwargs)


# ============================================================================ plain-Python references


def reference_fixed_bucket_batches(lengths, batch_size, keys, ratio=0.0, use_average_length=False):
    """GluonNLP 0.x FixedBucketSampler without shuffling, written as directly as possible."""
    keys = sorted(set(keys))
    members = {k: [] for k in keys}
    for i, length in enumerate(lengths):
        best = None
        for k in keys:
            fits = k >= length if isinstance(k, int) else all(a >= b for a, b in zip(k, length))
            if fits:
                pad = k - length if isinstance(k, int) else sum(a - b for a, b in zip(k, length))
                if best is None or pad < best[0]:
                    best = (pad, k)
        assert best is not None
        members[best[1]].append(i)
    keys = [k for k in keys if members[k]]
    if use_average_length:
        sizes = []
        for k in keys:
            values = np.array([lengths[i] for i in members[k]], dtype=np.float64)
            sizes.append(max(int(batch_size / (values.mean() + values.std())), 1))
    else:
        scale = [k if isinstance(k, int) else sum(k) for k in keys]
        sizes = [max(int(max(scale) / float(s) * ratio * batch_size), batch_size) for s in scale]
    batches = []
    for k, size in reversed(list(zip(keys, sizes))):
        ids = members[k]
        batches += [ids[i : i + size] for i in range(0, len(ids), size)]
    return keys, sizes, batches


def reference_token_budget_batches(lengths, max_tokens, max_sentences, mult):
    tokens = [max(x) if isinstance(x, (tuple, list)) else x for x in lengths]
    order = sorted(range(len(tokens)), key=lambda i: tokens[i])
    batches, s = [], 0
    while s < len(order):
        m = 0
        while s + m < len(order):
            candidate = m + 1
            cost = candidate * tokens[order[s + m]]
            if (max_sentences and candidate > max_sentences) or (max_tokens and cost > max_tokens):
                break
            m = candidate
        if s + m < len(order) and m >= mult:
            m = mult * (m // mult)
        batches.append(order[s : s + m])
        s += m
    return batches


def reference_sorted_bucket_batches(keys, batch_size, mult, reverse):
    chunk = int(mult * batch_size)
    batches = []
    for begin in range(0, len(keys), chunk):
        ids = sorted(range(begin, min(begin + chunk, len(keys))), key=lambda i: keys[i], reverse=reverse)
        batches += [ids[i : i + batch_size] for i in range(0, len(ids), batch_size)]
    return batches


def rank_streams(factory, world, epoch=0):
    """Build one sampler per simulated rank and collect what each yields for ``epoch``."""
    streams = []
    for rank in range(world):
        sampler = factory(num_replicas=world, rank=rank)
        sampler.set_epoch(epoch)
        streams.append(list(sampler))
    return streams


def check_sharding(global_batches, streams, drop_last):
    """Ranks get equal counts, take the global batches round-robin, and cover them as documented."""
    world, total = len(streams), len(global_batches)
    per_rank = total // world if drop_last else math.ceil(total / world)
    assert all(len(s) == per_rank for s in streams)
    padded = [global_batches[p % total] for p in range(per_rank * world)]
    for rank, stream in enumerate(streams):
        assert stream == padded[rank::world]
    seen = [i for s in streams for b in s for i in b]
    everything = sorted(i for b in global_batches for i in b)
    if drop_last:
        assert len(seen) == len(set(seen))  # disjoint shares; the tail batches are dropped
    else:
        assert set(seen) == set(everything)  # complete
        repeated = [i for b in padded[total:] for i in b]
        assert sorted(seen) == sorted(everything + repeated)  # disjoint apart from the repeated batches


# ============================================================================ bucket keys (hand computed)


def test_const_width_keys_hand_computed():
    assert ConstWidthBucket()(100, 1, 10) == [100, 90, 80, 70, 60, 50, 40, 30, 20, 10]
    # width max((1 + 5 - 3) // 5, 1) = 1, keys clipped at the minimum
    assert ConstWidthBucket()(5, 3, 5) == [5, 4, 3, 3, 3]
    assert ConstWidthBucket()((10, 20), (1, 2), 3) == [(10, 20), (7, 14), (4, 8)]


def test_linear_width_keys_hand_computed():
    # alpha = 2 * (100 - 1 - 4) / (4 * 5) = 9.5; keys round(1 + 9.5 * T_i + i + 1) with T = 1, 3, 6, 10
    # -> round(11.5) = 12, round(31.5) = 32 (Python rounds half to even), 61, 100
    assert LinearWidthBucket()(100, 1, 4) == [12, 32, 61, 100]
    # per dimension; last key raised to the maximum
    assert LinearWidthBucket()((100, 10), (1, 1), 4) == [(12, 2), (32, 4), (61, 7), (100, 10)]


def test_exp_width_keys_hand_computed():
    # step 2: initial width (16 - 1) * 1 / (2**4 - 1) = 1, keys 1 + (2**(i+1) - 1)
    assert ExpWidthBucket(2.0)(16, 1, 4) == [2, 4, 8, 16]
    # default step 1.1: w0 = 90 * 0.1 / (1.1**5 - 1) = 14.7418...; keys 10 + w0 * (1.1**(i+1) - 1) / 0.1
    # = 24.74, 40.96, 58.79, 78.42, 100.0 -> rounded
    assert ExpWidthBucket()(100, 10, 5) == [25, 41, 59, 78, 100]


def test_scheme_names_and_errors():
    assert resolve_bucket_scheme("constant") == ConstWidthBucket()
    assert resolve_bucket_scheme("linear") == LinearWidthBucket()
    assert resolve_bucket_scheme("exp") == ExpWidthBucket(1.1)
    assert resolve_bucket_scheme({"name": "exp", "bucket_len_step": 1.5}) == ExpWidthBucket(1.5)
    with pytest.raises(ConfigError, match="Unknown bucket_scheme"):
        resolve_bucket_scheme("quadratic")
    with pytest.raises(ConfigError):
        ExpWidthBucket(1.0)
    scheme = pickle.loads(pickle.dumps(ExpWidthBucket(1.3)))
    assert scheme(16, 1, 4) == ExpWidthBucket(1.3)(16, 1, 4)


def test_fixed_bucket_sampler_uses_scheme_keys_and_ratio_formula():
    lengths = list(range(1, 101))
    sampler = FixedBucketSampler(lengths, batch_size=8, ratio=0.5)
    assert sampler.bucket_keys == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    # B_i = max(int(100 / k * 0.5 * 8), 8)
    assert sampler.bucket_batch_sizes == [40, 20, 13, 10, 8, 8, 8, 8, 8, 8]
    assert sampler.bucket_counts == [10] * 10
    assert FixedBucketSampler(lengths, 4, num_buckets=4, bucket_scheme="linear").bucket_keys == [
        12,
        32,
        61,
        100,
    ]
    exp = FixedBucketSampler(list(range(10, 101)), 4, num_buckets=5, bucket_scheme=ExpWidthBucket())
    assert exp.bucket_keys == [25, 41, 59, 78, 100]


def test_samplers_from_hydra_config():
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(
        {
            "fixed": {
                "_target_": "litzoo.data.samplers.FixedBucketSampler",
                "_partial_": True,
                "batch_size": 2,
                "bucket_keys": [[4, 4], [9, 9]],
                "shuffle": True,
                "seed": 3,
            },
            "exp": {
                "_target_": "litzoo.data.samplers.FixedBucketSampler",
                "_partial_": True,
                "batch_size": 4,
                "num_buckets": 4,
                "bucket_scheme": {"name": "exp", "bucket_len_step": 2.0},
            },
        }
    )
    built = instantiate(cfg)
    fixed = built.fixed([(1, 2), (8, 3), (4, 4), (2, 9)])
    assert fixed.bucket_keys == [(4, 4), (9, 9)] and fixed.bucket_counts == [2, 2]
    assert built.exp(list(range(1, 17))).bucket_keys == [2, 4, 8, 16]


# ============================================================================ GluonNLP equivalence


@PROPERTY
@given(
    lengths=st.lists(st.integers(1, 60), min_size=1, max_size=120),
    batch_size=st.integers(1, 9),
    num_buckets=st.integers(1, 12),
    ratio=st.sampled_from([0.0, 0.3, 0.5, 1.0, 2.5]),
    scheme=st.sampled_from(["constant", "linear", "exp"]),
    use_average_length=st.booleans(),
)
def test_fixed_bucket_matches_gluonnlp_reference(
    lengths, batch_size, num_buckets, ratio, scheme, use_average_length
):
    if use_average_length:
        batch_size *= 20  # a token budget
    sampler = _quiet(
        FixedBucketSampler,
        lengths,
        batch_size,
        num_buckets=num_buckets,
        ratio=ratio,
        bucket_scheme=scheme,
        use_average_length=use_average_length,
    )
    raw_keys = resolve_bucket_scheme(scheme)(max(lengths), min(lengths), num_buckets)
    keys, sizes, batches = reference_fixed_bucket_batches(
        lengths, batch_size, raw_keys, ratio, use_average_length
    )
    assert sampler.bucket_keys == keys
    assert sampler.bucket_batch_sizes == sizes
    assert sampler.global_batches() == batches
    assert list(sampler) == batches and len(sampler) == len(batches)


@PROPERTY
@given(
    pairs=st.lists(st.tuples(st.integers(1, 30), st.integers(1, 30)), min_size=1, max_size=80),
    batch_size=st.integers(1, 6),
    num_buckets=st.integers(1, 6),
    ratio=st.sampled_from([0.0, 0.5]),
)
def test_fixed_bucket_tuple_lengths_match_reference(pairs, batch_size, num_buckets, ratio):
    sampler = _quiet(FixedBucketSampler, pairs, batch_size, num_buckets=num_buckets, ratio=ratio)
    mx = tuple(max(p[j] for p in pairs) for j in range(2))
    mn = tuple(min(p[j] for p in pairs) for j in range(2))
    keys, sizes, batches = reference_fixed_bucket_batches(
        pairs, batch_size, ConstWidthBucket()(mx, mn, num_buckets), ratio
    )
    assert sampler.bucket_keys == keys
    assert sampler.bucket_batch_sizes == sizes
    assert sampler.global_batches() == batches


def test_fixed_bucket_explicit_keys_and_errors():
    lengths = [3, 9, 4, 12, 1]
    sampler = FixedBucketSampler(lengths, 2, bucket_keys=[12, 5, 10])
    assert sampler.global_batches() == [[3], [1], [0, 2], [4]]
    with pytest.raises(DataError, match="sample 3 has length 12, which fits no bucket"):
        FixedBucketSampler(lengths, 2, bucket_keys=[5, 10])
    with pytest.raises(DataError, match="sample 1 has lengths 0"):
        FixedBucketSampler([3, 0, 2], 2)
    with pytest.raises(DataError, match="sample 0 has length"):
        FixedBucketSampler([(3, 20)], 2, bucket_keys=[(5, 10)])
    with pytest.raises(ConfigError, match="bucket key"):
        FixedBucketSampler([(3, 4)], 2, bucket_keys=[5])
    with pytest.raises(ConfigError, match="batch_size"):
        FixedBucketSampler(lengths, 0)
    with pytest.raises(DataError, match="non-empty"):
        FixedBucketSampler([], 2)
    with pytest.warns(UserWarning, match="unused bucket keys=\\[20\\]"):
        FixedBucketSampler(lengths, 2, bucket_keys=[12, 20])


def test_sorted_bucket_matches_gluonnlp_reference():
    rng = np.random.default_rng(3)
    keys = rng.integers(1, 40, size=257).tolist()
    for mult, reverse in [(1, True), (3, False), (2.5, True), (100, True)]:
        sampler = SortedBucketSampler(keys, 8, mult=mult, reverse=reverse)
        expected = reference_sorted_bucket_batches(keys, 8, mult, reverse)
        assert sampler.global_batches() == expected
        assert len(sampler) == len(expected)


def test_sorted_bucket_tuple_keys_sort_lexicographically():
    keys = [(2, 5), (1, 9), (2, 1), (1, 2), (3, 0), (2, 5)]
    sampler = SortedBucketSampler(keys, 2, mult=3, reverse=True)
    assert sampler.global_batches() == reference_sorted_bucket_batches(keys, 2, 3, True)


@PROPERTY
@given(
    lengths=st.lists(st.integers(1, 50), min_size=1, max_size=150),
    max_tokens=st.one_of(st.none(), st.integers(50, 400)),
    max_sentences=st.one_of(st.none(), st.integers(1, 20)),
    mult=st.sampled_from([1, 2, 8]),
)
def test_token_budget_matches_reference_and_respects_budget(lengths, max_tokens, max_sentences, mult):
    assume(max_tokens is not None or max_sentences is not None)
    sampler = TokenBudgetSampler(
        lengths, max_tokens=max_tokens, max_sentences=max_sentences, required_batch_size_multiple=mult
    )
    expected = reference_token_budget_batches(lengths, max_tokens, max_sentences, mult)
    batches = sampler.global_batches()
    assert batches == expected
    for i, batch in enumerate(batches):
        if max_tokens is not None:
            assert len(batch) * max(lengths[j] for j in batch) <= max_tokens
        if max_sentences is not None:
            assert len(batch) <= max_sentences
        if i < len(batches) - 1 and len(batch) >= mult:
            assert len(batch) % mult == 0
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))


def test_token_budget_tuple_lengths_and_errors():
    pairs = [(3, 7), (10, 2), (4, 4), (1, 1)]
    sampler = TokenBudgetSampler(pairs, max_tokens=16)
    # num_tokens = max(src, tgt) = 7, 10, 4, 1 -> sorted 3, 2, 0, 1: [3, 2] costs 2*4, +0 would cost 3*7
    assert sampler.global_batches() == [[3, 2], [0], [1]]
    assert sampler.stats()["max_batch_cost"] == 10
    with pytest.raises(DataError, match="sample 1 has 10 tokens, more than max_tokens=8"):
        TokenBudgetSampler(pairs, max_tokens=8)
    with pytest.raises(ConfigError, match="neither"):
        TokenBudgetSampler(pairs)


# ============================================================================ properties of every sampler


def _factory(kind, lengths, batch_size, shuffle, seed, drop_last, extra, even_split=False):
    def make(**dist):
        common = dict(shuffle=shuffle, seed=seed, drop_last=drop_last, even_split=even_split, **dist)
        if kind == "random":
            return RandomBatchSampler(len(lengths), batch_size, **common)
        if kind == "fixed":
            return _quiet(FixedBucketSampler, lengths, batch_size, num_buckets=extra, ratio=0.5, **common)
        if kind == "sorted":
            return SortedBucketSampler(lengths, batch_size, mult=extra, **common)
        return TokenBudgetSampler(lengths, max_tokens=batch_size * 60, max_sentences=extra * 4, **common)

    return make


sampler_settings = dict(
    kind=st.sampled_from(["random", "fixed", "sorted", "token"]),
    lengths=st.lists(st.integers(1, 60), min_size=1, max_size=200),
    batch_size=st.integers(1, 16),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**31),
    epoch=st.integers(0, 50),
    world=st.integers(1, 4),
    drop_last=st.booleans(),
    extra=st.integers(1, 6),
)


@PROPERTY
@given(**sampler_settings)
def test_every_index_once_and_ranks_disjoint_equal_and_complete(
    kind, lengths, batch_size, shuffle, seed, epoch, world, drop_last, extra
):
    make = _factory(kind, lengths, batch_size, shuffle, seed, drop_last, extra)
    single = make(num_replicas=1, rank=0)
    single.set_epoch(epoch)
    batches = list(single)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(lengths)))  # one process: every index exactly once
    assert all(len(b) > 0 for b in batches) and len(batches) == len(single)
    assume(not drop_last or single.num_global_batches >= world)
    check_sharding(single.global_batches(epoch), rank_streams(make, world, epoch), drop_last)


@PROPERTY
@given(
    lengths=st.lists(st.integers(1, 80), min_size=1, max_size=200),
    batch_size=st.integers(1, 10),
    num_buckets=st.integers(1, 10),
    ratio=st.sampled_from([0.0, 0.5, 1.0, 3.0]),
    seed=st.integers(0, 1000),
    epoch=st.integers(0, 5),
)
def test_fixed_bucket_batches_fit_their_bucket_and_follow_ratio(
    lengths, batch_size, num_buckets, ratio, seed, epoch
):
    sampler = _quiet(
        FixedBucketSampler, lengths, batch_size, num_buckets=num_buckets, ratio=ratio, shuffle=True, seed=seed
    )
    keys, sizes = sampler.bucket_keys, sampler.bucket_batch_sizes
    largest = max(keys)
    assert sizes == [max(int(largest / float(k) * ratio * batch_size), batch_size) for k in keys]
    bucket_of = {}
    for b, key in enumerate(keys):
        lower = keys[b - 1] if b else 0
        for i, length in enumerate(lengths):
            if lower < length <= key:
                bucket_of[i] = b
    full = {b: 0 for b in range(len(keys))}
    for batch in sampler.global_batches(epoch):
        buckets = {bucket_of[i] for i in batch}
        assert len(buckets) == 1  # a batch never mixes buckets
        b = buckets.pop()
        assert max(lengths[i] for i in batch) <= keys[b]
        assert len(batch) <= sizes[b]
        full[b] += len(batch) < sizes[b]
    assert all(v <= 1 for v in full.values())  # at most one short batch per bucket


@PROPERTY
@given(**sampler_settings)
def test_deterministic_per_seed_and_epoch(
    kind, lengths, batch_size, shuffle, seed, epoch, world, drop_last, extra
):
    assume(not drop_last or world == 1)
    make = _factory(kind, lengths, batch_size, shuffle, seed, drop_last, extra)
    assert rank_streams(make, world, epoch) == rank_streams(make, world, epoch)
    if not shuffle:
        assert rank_streams(make, world, epoch) == rank_streams(make, world, epoch + 1)


@pytest.mark.parametrize("kind", ["random", "fixed", "sorted", "token"])
def test_shuffle_changes_with_epoch_and_seed(kind):
    lengths = np.random.default_rng(0).integers(1, 60, size=400).tolist()
    make = _factory(kind, lengths, 8, True, 17, False, 4)
    s = make(num_replicas=1, rank=0)
    epochs = [s.global_batches(e) for e in range(3)]
    assert epochs[0] != epochs[1] != epochs[2]
    other_seed = _factory(kind, lengths, 8, True, 18, False, 4)(num_replicas=1, rank=0)
    assert other_seed.global_batches(0) != epochs[0]
    # each rank's share changes between epochs
    shares = [[sorted(i for b in rank_streams(make, 2, e)[0] for i in b)] for e in range(2)]
    assert shares[0] != shares[1]


@PROPERTY
@given(**{k: v for k, v in sampler_settings.items() if k != "drop_last"})
def test_even_split_gives_every_sample_exactly_once_in_equal_batch_counts(
    kind, lengths, batch_size, shuffle, seed, epoch, world, extra
):
    make = _factory(kind, lengths, batch_size, shuffle, seed, False, extra, even_split=True)
    plain = _factory(kind, lengths, batch_size, shuffle, seed, False, extra)(num_replicas=1, rank=0)
    per_rank = math.ceil(plain.num_global_batches / world)
    # Splitting can make at most one batch per sample: with fewer samples than the batches the
    # ranks need (e.g. 3 samples, 2 ranks, batch size 1) a batch must repeat, as documented.
    assume(len(lengths) >= per_rank * world)
    streams = rank_streams(make, world, epoch)
    assert all(len(stream) == per_rank == len(make(num_replicas=world, rank=0)) for stream in streams)
    seen = sorted(i for stream in streams for batch in stream for i in batch)
    assert seen == list(range(len(lengths)))  # disjoint and complete: nothing repeated, nothing dropped
    assert all(batch for stream in streams for batch in stream)
    # The even plan is the plain plan with some batches cut in two (first half first), in place.
    merged, pieces = [], iter(make(num_replicas=world, rank=0).global_batches(epoch))
    for batch in plain.global_batches(epoch):
        got = next(pieces)
        while len(got) < len(batch):
            got = got + next(pieces)
        merged.append(got)
    assert merged == plain.global_batches(epoch)


def test_even_split_hand_computed_and_with_fewer_samples_than_ranks():
    # 23 samples in batches of 5 on 2 ranks: [5, 5, 5, 5, 3] -> the first 5 splits into 3 + 2.
    make = lambda **d: SequentialBatchSampler(23, 5, even_split=True, **d)  # noqa: E731
    assert [[len(b) for b in s] for s in rank_streams(make, 2)] == [[3, 5, 5], [2, 5, 3]]
    assert make(num_replicas=2, rank=0).stats()["num_batches"] == 6
    # 2 samples on 3 ranks: one batch splits into two singletons; rank 2 repeats the first one.
    assert rank_streams(lambda **d: SequentialBatchSampler(2, 4, even_split=True, **d), 3) == [
        [[0]],
        [[1]],
        [[0]],
    ]
    with pytest.raises(ConfigError, match="drop_last=True and even_split=True"):
        SequentialBatchSampler(10, 3, drop_last=True, even_split=True)


def test_random_and_sequential_batch_samplers_hand_computed():
    s = RandomBatchSampler(10, 4, seed=5)
    for epoch in (0, 1):
        order = np.random.default_rng([5, epoch]).permutation(10).tolist()
        assert s.global_batches(epoch) == [order[0:4], order[4:8], order[8:10]]
    s.set_epoch(1)
    assert list(s) == s.global_batches(1) and len(s) == 3
    assert list(SequentialBatchSampler(10, 4)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert list(RandomBatchSampler(5, 2, shuffle=False)) == [[0, 1], [2, 3], [4]]
    assert RandomBatchSampler(10, 4).stats()["padding_fraction"] == 0.0
    with pytest.raises(DataError, match="num_samples must be a positive integer"):
        RandomBatchSampler(0, 4)
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        SequentialBatchSampler(3, 0)


def test_set_epoch_between_iter_and_first_batch_takes_effect():
    s = SortedBucketSampler(list(range(1, 50)), 4, mult=2, shuffle=True, seed=3)
    iterator = iter(s)
    s.set_epoch(5)
    assert list(iterator) == s.global_batches(5)


def test_world_size_read_lazily_from_torch_distributed(monkeypatch):
    sampler = FixedBucketSampler(list(range(1, 41)), 4, num_buckets=2, shuffle=True)
    assert len(sampler) == 10 and sampler.num_replicas == 1
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 3)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 2)
    assert (sampler.num_replicas, sampler.rank, len(sampler)) == (3, 2, 4)
    assert list(sampler) == [sampler.global_batches()[p % 10] for p in (2, 5, 8, 11)]


def test_drop_last_with_fewer_batches_than_ranks_is_an_error():
    sampler = FixedBucketSampler([1, 2, 3], 4, bucket_keys=[3], num_replicas=2, rank=0, drop_last=True)
    with pytest.raises(ConfigError, match="fewer than the 2 processes"):
        list(sampler)
    padded = FixedBucketSampler([1, 2, 3], 4, bucket_keys=[3], num_replicas=2, rank=1)
    assert list(padded) == [[0, 1, 2]]  # the only batch, repeated for rank 1


# ============================================================================ statistics


def test_stats_padding_fraction_exact():
    lengths = [2, 4, 3, 10, 9]
    sampler = FixedBucketSampler(lengths, 2, bucket_keys=[4, 10])
    stats = sampler.stats()
    # batches [3, 4] -> 2 * 10, [0, 1] -> 2 * 4, [2] -> 1 * 3: padded 31, real 28
    assert sampler.global_batches() == [[3, 4], [0, 1], [2]]
    assert (stats["real_tokens"], stats["padded_tokens"]) == (28, 31)
    assert stats["padding_fraction"] == pytest.approx(3 / 31)
    assert (
        stats["bucket_keys"] == [4, 10]
        and stats["bucket_counts"] == [3, 2]
        and stats["bucket_batch_sizes"] == [2, 2]
    )
    assert (stats["num_samples"], stats["num_batches"], stats["batch_size_max"]) == (5, 3, 2)


@PROPERTY
@given(**sampler_settings)
def test_stats_padding_matches_batches(
    kind, lengths, batch_size, shuffle, seed, epoch, world, drop_last, extra
):
    assume(kind != "random")  # RandomBatchSampler knows no lengths (its samples all count as 1)
    sampler = _factory(kind, lengths, batch_size, shuffle, seed, drop_last, extra)(num_replicas=1, rank=0)
    batches = sampler.global_batches(epoch)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    stats = sampler.stats(epoch)
    assert stats["padded_tokens"] == padded and stats["real_tokens"] == sum(lengths)
    assert stats["padding_fraction"] == pytest.approx(1 - sum(lengths) / padded)


def test_stats_tuple_lengths_pad_per_field():
    pairs = [(2, 5), (4, 1), (3, 3)]
    sampler = FixedBucketSampler(pairs, 3, bucket_keys=[(4, 5)])
    stats = sampler.stats()
    assert stats["real_tokens"] == 18 and stats["padded_tokens"] == 3 * 4 + 3 * 5


# ============================================================================ resume


@PROPERTY
@given(**sampler_settings, data=st.data())
def test_resume_continues_with_the_next_batch(
    kind, lengths, batch_size, shuffle, seed, epoch, world, drop_last, extra, data
):
    assume(not drop_last)
    make = _factory(kind, lengths, batch_size, shuffle, seed, drop_last, extra)
    rank = data.draw(st.integers(0, world - 1))
    full = make(num_replicas=world, rank=rank)
    full.set_epoch(epoch)
    expected = list(full)
    k = data.draw(st.integers(0, len(expected)))
    first = make(num_replicas=world, rank=rank)
    first.set_epoch(epoch)
    iterator = iter(first)
    head = [next(iterator) for _ in range(k)]
    state = first.state_dict()
    assert state == {"epoch": epoch, "seed": seed, "num_replicas": world, "batches_yielded": k}
    resumed = make(num_replicas=world, rank=rank)
    resumed.load_state_dict(pickle.loads(pickle.dumps(state)))
    if k < len(expected):
        assert resumed.epoch == epoch
        assert head + list(resumed) == expected
        assert list(resumed) == expected  # the skip applies to one iteration only
    else:  # a complete epoch resumes at the start of the next one
        assert resumed.epoch == epoch + 1 and resumed.state_dict()["batches_yielded"] == 0


def test_state_dict_before_and_after_epochs():
    s = TokenBudgetSampler(list(range(1, 30)), max_tokens=40, shuffle=True, seed=5)
    assert s.state_dict() == {"epoch": 0, "seed": 5, "num_replicas": 1, "batches_yielded": 0}
    n = len(list(s))
    assert s.state_dict()["batches_yielded"] == n
    s.set_epoch(1)
    assert s.state_dict() == {"epoch": 1, "seed": 5, "num_replicas": 1, "batches_yielded": 0}


def test_load_state_dict_checks():
    s = FixedBucketSampler(list(range(1, 30)), 4, seed=1)
    with pytest.raises(CheckpointError, match="seed 2"):
        s.load_state_dict({"epoch": 0, "seed": 2, "batches_yielded": 1})
    with pytest.raises(CheckpointError, match="lacks"):
        s.load_state_dict({"epoch": 0})
    with pytest.warns(UserWarning, match="resuming on 1 processes"):
        s.load_state_dict({"epoch": 0, "seed": 1, "num_replicas": 2, "batches_yielded": 2})
    assert s.state_dict()["batches_yielded"] == 4  # the same global position


# ============================================================================ DataLoader integration


class _IndexDataset(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def _stream(loader, limit=None):
    out = []
    for batch in loader:
        out.append(batch.tolist())
        if limit is not None and len(out) == limit:
            break
    return out


@pytest.mark.parametrize("num_workers", [0, 2])
def test_stateful_loader_resumes_after_prefetch(num_workers):
    lengths = np.random.default_rng(1).integers(1, 100, size=300).tolist()

    def make_loader():
        sampler = _quiet(FixedBucketSampler, lengths, 8, ratio=0.5, shuffle=True, seed=11)
        return build_dataloader(_IndexDataset(300), sampler, num_workers=num_workers, persistent_workers=True)

    reference = make_loader()
    reference.batch_sampler.set_epoch(1)
    expected = _stream(reference)
    assert sorted(i for b in expected for i in b) == list(range(300))

    loader = make_loader()
    loader.batch_sampler.set_epoch(1)
    head = _stream(loader, limit=5)  # workers have prefetched more than 5 batches by now
    state = pickle.loads(pickle.dumps(loader.state_dict()))
    resumed = make_loader()
    resumed.load_state_dict(state)
    assert head + _stream(resumed) == expected


def test_persistent_workers_reshuffle_each_epoch():
    sampler = SortedBucketSampler(list(range(1, 101)), 5, mult=4, shuffle=True, seed=2)
    loader = build_dataloader(_IndexDataset(100), sampler, num_workers=2, persistent_workers=True)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        assert _stream(loader) == sampler.global_batches(epoch)


def test_lightning_set_sampler_epoch_reaches_batch_sampler():
    from lightning.fabric.utilities.data import _set_sampler_epoch

    sampler = TokenBudgetSampler(list(range(1, 60)), max_tokens=64, shuffle=True)
    loader = build_dataloader(_IndexDataset(59), sampler)
    _set_sampler_epoch(loader, 7)
    assert sampler.epoch == 7


# ============================================================================ Lightning round trip


def _lightning_module_class():
    import lightning as L

    class Recorder(L.LightningModule):
        """Records the dataset indices of every training batch."""

        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)
            self.seen: list[list[int]] = []
            self.epochs: list[int] = []

        def training_step(self, batch, batch_idx):
            self.seen.append(batch.tolist())
            self.epochs.append(self.current_epoch)
            return self.layer(batch.float()[:, None]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    return Recorder


@pytest.mark.parametrize("num_workers", [0, 2])
def test_lightning_mid_epoch_checkpoint_resumes_with_next_batch(tmp_path, num_workers):
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    Recorder = _lightning_module_class()
    lengths = np.random.default_rng(5).integers(1, 50, size=120).tolist()

    def loader():
        sampler = _quiet(FixedBucketSampler, lengths, 8, ratio=0.5, shuffle=True, seed=4)
        return build_dataloader(_IndexDataset(120), sampler, num_workers=num_workers, persistent_workers=True)

    def trainer(**kwargs):
        return L.Trainer(
            accelerator="cpu",
            max_epochs=3,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            **kwargs,
        )

    per_epoch = len(loader())
    mid_step = per_epoch + 3  # mid-way through the second epoch
    full = Recorder()
    mid = ModelCheckpoint(
        dirpath=tmp_path / "mid", every_n_train_steps=mid_step, save_top_k=-1, filename="{step}"
    )
    end = ModelCheckpoint(dirpath=tmp_path / "end", every_n_epochs=1, save_top_k=-1, filename="{step}")
    trainer(callbacks=[mid, end], enable_checkpointing=True).fit(full, train_dataloaders=loader())
    assert len(full.seen) == 3 * per_epoch
    epochs = [full.seen[e * per_epoch : (e + 1) * per_epoch] for e in range(3)]
    reference = _quiet(FixedBucketSampler, lengths, 8, ratio=0.5, shuffle=True, seed=4)
    assert epochs == [reference.global_batches(e) for e in range(3)]  # Lightning called set_epoch

    # A mid-epoch checkpoint, and an end-of-epoch one (where Lightning creates the iterator
    # before calling set_epoch, so workers must not start early).
    for ckpt, step in (
        (tmp_path / "mid" / f"step={mid_step}.ckpt", mid_step),
        (tmp_path / "end" / f"step={per_epoch}.ckpt", per_epoch),
    ):
        resumed = Recorder()
        trainer(enable_checkpointing=False).fit(resumed, train_dataloaders=loader(), ckpt_path=ckpt)
        assert resumed.seen == full.seen[step:]
        assert resumed.epochs[0] == 1
