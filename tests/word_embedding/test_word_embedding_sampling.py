"""The sampling formulas (subsampling, unigram^0.75 noise, alias draws, dynamic windows) and the loss kernel,
against the papers' formulas, gensim's tables and plain autograd."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from litzoo.models.word_embedding import (
    alias_probabilities,
    alias_table,
    draw_negatives,
    keep_probabilities,
    negative_sampling_loss,
    noise_distribution,
    window_pairs,
)

COUNTS = np.array([1000, 400, 90, 30, 7, 5, 5, 1], dtype=np.int64)


def test_keep_probability_is_word2vecs_formula():
    t = 1e-2
    total = COUNTS.sum()
    for count, kept in zip(COUNTS, keep_probabilities(COUNTS, t)):
        f = count / total
        assert kept == pytest.approx(min(1.0, (math.sqrt(f / t) + 1) * t / f), rel=1e-12)
    # The most frequent word: f = 1000/1538, (sqrt(f / 0.01) + 1) * 0.01 / f
    assert keep_probabilities(COUNTS, t)[0] == pytest.approx(0.1393961, rel=1e-6)
    assert np.all(keep_probabilities(COUNTS, 0.0) == 1.0)


def test_keep_probability_and_noise_table_equal_gensims(lee_corpus):
    from gensim.models import Word2Vec

    from litzoo.datamodules.word_embedding import WordCounts, corpus_files, index_corpus

    sentences = [line.split() for line in lee_corpus.read_text().splitlines()]
    model = Word2Vec(vector_size=10, min_count=5, sample=1e-3, seed=1, workers=1)
    model.build_vocab(sentences)
    vocab = WordCounts.from_counts(index_corpus(corpus_files(lee_corpus)).counts, min_count=5)
    assert sorted(vocab.words) == sorted(model.wv.index_to_key)
    counts = {w: int(c) for w, c in zip(vocab.words, vocab.counts)}
    assert all(counts[w] == model.wv.get_vecattr(w, "count") for w in vocab.words)
    # gensim stores the keep probability as an integer threshold, about p * 2**32.
    ours = dict(zip(vocab.words, keep_probabilities(vocab.counts, 1e-3)))
    for word in model.wv.index_to_key:
        assert model.wv.get_vecattr(word, "sample_int") == pytest.approx(
            min(ours[word] * 2**32, 2**32 - 1), abs=2.0
        )
    # gensim's cum_table: the running sum of count^0.75 scaled to 2**31 - 1, in its own word order.
    p = dict(zip(vocab.words, noise_distribution(vocab.counts)))
    in_gensim_order = np.array([p[w] for w in model.wv.index_to_key])
    assert np.allclose(np.diff(model.cum_table, prepend=0) / (2**31 - 1), in_gensim_order, atol=1e-9)


def test_noise_distribution_is_the_unigram_to_the_three_quarters():
    p = noise_distribution(COUNTS)
    expected = COUNTS**0.75 / (COUNTS**0.75).sum()
    assert np.allclose(p, expected, rtol=1e-14) and p.sum() == pytest.approx(1.0, abs=1e-15)
    assert np.allclose(noise_distribution(COUNTS, 1.0), COUNTS / COUNTS.sum())


@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=60))
def test_alias_table_draws_exactly_the_distribution(counts):
    p = noise_distribution(np.array(counts))
    keep, alias = alias_table(p)
    assert np.allclose(alias_probabilities(keep, alias), p, atol=1e-12)
    assert np.all((keep >= 0) & (keep <= 1)) and np.all((alias >= 0) & (alias < len(counts)))


def test_drawn_noise_words_follow_the_distribution():
    p = noise_distribution(COUNTS)
    keep, alias = alias_table(p)
    draws = draw_negatives(
        torch.from_numpy(keep).float(), torch.from_numpy(alias), 400_000, torch.Generator().manual_seed(0)
    )
    frequencies = np.bincount(draws.numpy(), minlength=len(COUNTS)) / draws.numel()
    sigma = np.sqrt(p * (1 - p) / draws.numel())
    assert np.all(np.abs(frequencies - p) < 5 * sigma + 1e-7)


def brute_force_pairs(sentence: list[int], reach: list[int]) -> set[tuple[int, int]]:
    return {
        (i, j)
        for i in range(len(sentence))
        for j in range(len(sentence))
        if i != j and abs(i - j) <= reach[i] and sentence[i] == sentence[j]
    }


def test_windows_on_a_hand_example():
    # Two sentences [0 1 2] [3 4]; position 1 reaches 2 words, the others 1.
    centres, contexts = window_pairs(torch.tensor([0, 0, 0, 1, 1]), torch.tensor([1, 2, 1, 1, 1]), window=2)
    assert set(zip(centres.tolist(), contexts.tolist())) == {(0, 1), (1, 0), (1, 2), (2, 1), (3, 4), (4, 3)}
    assert len(centres) == 6


@given(st.lists(st.integers(0, 3), min_size=0, max_size=40).map(sorted), st.integers(1, 6), st.data())
def test_windows_equal_brute_force(sentence, window, data):
    reach = data.draw(st.lists(st.integers(1, window), min_size=len(sentence), max_size=len(sentence)))
    centres, contexts = window_pairs(
        torch.tensor(sentence, dtype=torch.int64), torch.tensor(reach, dtype=torch.int64), window
    )
    pairs = list(zip(centres.tolist(), contexts.tolist()))
    assert len(pairs) == len(set(pairs))
    assert set(pairs) == brute_force_pairs(sentence, reach)


def test_loss_kernel_equals_autograd_and_does_not_depend_on_chunking():
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(37, 8, generator=generator, dtype=torch.float64)
    weight = torch.randn(11, 8, generator=generator, dtype=torch.float64)
    outputs = torch.randint(0, 11, (37, 4), generator=generator)
    used = (torch.rand(37, 4, generator=generator) > 0.2).double()
    used[:, 0] = 1

    h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    u = w[outputs]
    scores = (u * h.unsqueeze(1)).sum(-1)
    reference = F.softplus(-scores[:, 0]).sum() + (F.softplus(scores[:, 1:]) * used[:, 1:]).sum()
    reference.backward()

    for chunk in (1, 5, 1000):
        h2, w2 = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
        loss = negative_sampling_loss(h2, w2, outputs, used, chunk=chunk)
        (2.0 * loss).backward()  # the upstream gradient scales both
        assert loss.item() == pytest.approx(reference.item(), rel=1e-12)
        assert torch.allclose(h2.grad, 2 * h.grad, atol=1e-12)
        assert w2.grad.is_sparse
        assert torch.allclose(w2.grad.to_dense(), 2 * w.grad, atol=1e-12)
