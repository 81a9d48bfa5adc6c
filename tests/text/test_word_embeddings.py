"""Loading GloVe / word2vec text files into an embedding matrix aligned to a vocabulary."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from litzoo.errors import ConfigError, DataError
from litzoo.text.vocab import Vocab
from litzoo.text.word_vectors import build_embedding_matrix, iter_word_vectors

GLOVE = """the 0.1 0.2 0.3
film -1.0 0.5 2.25
great 0.0 0.0 1.0
unused 9 9 9
. . . 7 7 7
"""


@pytest.fixture
def vocab() -> Vocab:
    # regular tokens in id order: film, great, boring, the (ids 3..6)
    return Vocab(["film", "great", "boring", "the"])


def test_glove_rows_are_placed_by_vocab_id(tmp_path: Path, vocab: Vocab) -> None:
    path = tmp_path / "glove.3d.txt"
    path.write_text(GLOVE)
    vectors = build_embedding_matrix(vocab, path, seed=0)
    assert vectors.weights.shape == (7, 3) and vectors.dim == 3
    assert torch.equal(vectors.weights[vocab.token_to_id("film")], torch.tensor([-1.0, 0.5, 2.25]))
    assert torch.equal(vectors.weights[vocab.token_to_id("the")], torch.tensor([0.1, 0.2, 0.3]))
    assert torch.equal(vectors.weights[vocab.pad_id], torch.zeros(3))
    boring = vectors.weights[vocab.token_to_id("boring")]
    assert boring.abs().max() <= 0.25 and boring.abs().sum() > 0  # Kim's U[-0.25, 0.25]
    assert (vectors.found, vectors.missing, vectors.missing_examples) == (3, 1, ["boring"])
    assert (
        "3 of 4 vocabulary words found (75.0%), 1 initialised at random (e.g. boring)" in vectors.describe()
    )
    # deterministic random rows
    again = build_embedding_matrix(vocab, path, seed=0)
    assert torch.equal(again.weights, vectors.weights)


def test_word2vec_header_gzip_and_case_fallback(tmp_path: Path, vocab: Vocab) -> None:
    path = tmp_path / "vectors.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        # gensim writes `count dim` first and a trailing space after each vector
        out.write("3 2\nFilm 1.5 -2 \nfilm 3 4 \nGreat 0.25 0.75 \n")
    vectors = build_embedding_matrix(vocab, path)
    assert torch.equal(
        vectors.weights[vocab.token_to_id("film")], torch.tensor([3.0, 4.0])
    )  # exact beats cased
    assert torch.equal(
        vectors.weights[vocab.token_to_id("great")], torch.tensor([0.25, 0.75])
    )  # case fallback
    assert vectors.found == 2
    strict = build_embedding_matrix(vocab, path, lowercase_fallback=False)
    assert strict.found == 1


def test_words_with_spaces(tmp_path: Path) -> None:
    path = tmp_path / "glove.840B.txt"
    path.write_text(GLOVE)
    dim, rows = iter_word_vectors(path)
    assert dim == 3
    assert dict(rows)[". . ."] == [7.0, 7.0, 7.0]


def test_bad_files(tmp_path: Path, vocab: Vocab) -> None:
    with pytest.raises(DataError, match="not found"):
        build_embedding_matrix(vocab, tmp_path / "none.txt")
    (tmp_path / "GoogleNews.bin").write_bytes(b"3 2\n\x00\x01")
    with pytest.raises(DataError, match="binary word2vec"):
        build_embedding_matrix(vocab, tmp_path / "GoogleNews.bin")
    ragged = tmp_path / "ragged.txt"
    ragged.write_text("the 0.1 0.2 0.3\nfilm 0.1 0.2\n")
    with pytest.raises(
        DataError, match=r"ragged.txt, line 2: 2 vector values where the file has 3 dimensions"
    ):
        build_embedding_matrix(vocab, ragged)
    nan = tmp_path / "nan.txt"
    nan.write_text("the 0.1 0.2 x\n")
    with pytest.raises(DataError, match="line 1: a vector value is not a number"):
        build_embedding_matrix(vocab, nan)
    unrelated = tmp_path / "unrelated.txt"
    unrelated.write_text("zebra 1 2\n")
    with pytest.raises(DataError, match="None of the 4 vocabulary words"):
        build_embedding_matrix(vocab, unrelated)


def test_dimension_mismatch_with_config(tmp_path: Path, vocab: Vocab) -> None:
    path = tmp_path / "glove.3d.txt"
    path.write_text(GLOVE)
    with pytest.raises(ConfigError, match="model.embed_dim=300 but glove.3d.txt holds 3-dimensional vectors"):
        build_embedding_matrix(vocab, path, dim=300)
