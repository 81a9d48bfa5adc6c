"""fastText's n-grams and hashing against gensim (an independent implementation of fastText's), and the
word2vec / fastText model's vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gensim.models.fasttext import compute_ngrams, compute_ngrams_bytes, ft_hash_bytes, ft_ngram_hashes

from litzoo.errors import ConfigError
from litzoo.models.word_embedding import WordEmbeddingModel
from litzoo.text.subwords import char_ngrams, fasttext_hash, ngram_buckets

WORDS = ["where", "a", "aaaa", "naïve", "日本語", "Straße", "x" * 12]


def test_ngrams_of_where_follow_the_fasttext_paper():
    assert char_ngrams("where", 3, 3) == ["<wh", "whe", "her", "ere", "re>"]
    # n = 3..6 in fastText's order: by start position, then length; the whole "<where>" has 7 characters.
    assert char_ngrams("where", 3, 6) == [
        "<wh",
        "<whe",
        "<wher",
        "<where",
        "whe",
        "wher",
        "where",
        "where>",
        "her",
        "here",
        "here>",
        "ere",
        "ere>",
        "re>",
    ]
    assert char_ngrams("a", 3, 6) == ["<a>"]  # a short word's bracketed form is one of its n-grams


@pytest.mark.parametrize("word", WORDS)
def test_ngrams_and_hashes_equal_gensims_fasttext(word):
    assert sorted(char_ngrams(word, 3, 6)) == sorted(compute_ngrams(word, 3, 6))
    assert [fasttext_hash(g.encode()) for g in char_ngrams(word, 3, 6)] == [
        ft_hash_bytes(g) for g in compute_ngrams_bytes(word, 3, 6)
    ]
    assert ngram_buckets(word, 3, 6, 2_000_000) == ft_ngram_hashes(word, 3, 6, 2_000_000)


def test_fasttext_hash_sign_extends_non_ascii_bytes():
    # FNV-1a over int8-cast bytes: 0xC3 contributes 0xFFFFFFC3, not 0xC3 (fastText's Dictionary::hash).
    assert fasttext_hash(b"") == 2166136261
    assert fasttext_hash(b"a") == ((2166136261 ^ 0x61) * 16777619) & 0xFFFFFFFF
    assert fasttext_hash(b"\xc3") == ((2166136261 ^ 0xFFFFFFC3) * 16777619) & 0xFFFFFFFF
    assert fasttext_hash("é") == ft_hash_bytes("é".encode())


def test_fasttext_word_vector_is_the_mean_of_its_rows_and_an_unseen_word_gets_its_ngrams():
    torch.manual_seed(0)
    words = ["where", "here", "there"]
    model = WordEmbeddingModel(words, dim=4, ngram_buckets=50, min_n=3, max_n=4)
    table = model.input.weight.detach()
    rows = [1] + [3 + b for b in ngram_buckets("here", 3, 4, 50)]
    assert torch.allclose(model.input_vectors(torch.tensor([1]))[0], table[rows].mean(0))
    assert torch.allclose(model.word_vectors()[1], table[rows].mean(0))
    unseen = [3 + b for b in ngram_buckets("wherever", 3, 4, 50)]
    assert torch.allclose(model.unseen_vector("wherever"), table[unseen].mean(0))
    sums, lengths = model.bag_sums(torch.tensor([0, 2]))
    assert lengths.tolist() == [1 + len(ngram_buckets(w, 3, 4, 50)) for w in ("where", "there")]
    assert torch.allclose(sums[0], table[[0] + [3 + b for b in ngram_buckets("where", 3, 4, 50)]].sum(0))


def test_zero_buckets_is_plain_word2vec():
    torch.manual_seed(0)
    model = WordEmbeddingModel(["a", "b", "c"], dim=5, ngram_buckets=0)
    assert model.input.weight.shape == (3, 5) and model.unseen_vector("zzz") is None
    assert torch.equal(model.word_vectors(), model.input.weight.detach())
    # word2vec's initialisation: inputs uniform in +-0.5/dim, outputs zero.
    assert model.input.weight.abs().max() <= 0.1 and torch.count_nonzero(model.output.weight) == 0


def test_sparse_gradients_touch_only_the_batch_rows():
    model = WordEmbeddingModel([f"w{i}" for i in range(20)], dim=3, ngram_buckets=10)
    model.input_vectors(torch.tensor([2, 5])).sum().backward()
    grad = model.input.weight.grad.coalesce()
    assert grad.is_sparse
    touched = set(grad.indices()[0].tolist())
    assert {2, 5} <= touched and all(t in (2, 5) or t >= 20 for t in touched)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"objective": "glove"}, "skipgram or cbow"),
        ({"dim": 0}, "model.dim"),
        ({"ngram_buckets": -1}, "model.ngram_buckets"),
        ({"ngram_buckets": 10, "min_n": 4, "max_n": 3}, "min_n <= max_n"),
    ],
)
def test_bad_model_arguments(arguments, message):
    with pytest.raises(ConfigError, match=message):
        WordEmbeddingModel(["a"], **arguments)


def test_vectors_export_in_frequency_order_and_are_deterministic():
    torch.manual_seed(3)
    first = WordEmbeddingModel(["a", "b"], dim=2).word_vectors()
    torch.manual_seed(3)
    assert np.array_equal(first.numpy(), WordEmbeddingModel(["a", "b"], dim=2).word_vectors().numpy())
