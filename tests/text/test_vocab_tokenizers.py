"""Vocabulary building and round-trip, the word tokenizer, and truncation counting of both encoders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from litzoo.errors import CheckpointError, ConfigError, DataError
from litzoo.text.examples import TextExample
from litzoo.text.tokenizers import HFTextEncoder, VocabEncoder, WordTokenizer, _truncate_pair
from litzoo.text.vocab import Vocab


def test_word_tokenizer_exact_tokens() -> None:
    tokenize = WordTokenizer()
    assert tokenize("He said the pie business doesn 't fit the company 's long-term strategy .") == [
        "he",
        "said",
        "the",
        "pie",
        "business",
        "doesn",
        "'t",
        "fit",
        "the",
        "company",
        "'s",
        "long-term",
        "strategy",
        ".",
    ]
    assert tokenize("It isn't bad, is n't it? Yen at 1.2891 (flat)!") == [
        "it",
        "isn't",
        "bad",
        ",",
        "is",
        "n't",
        "it",
        "?",
        "yen",
        "at",
        "1.2891",
        "(",
        "flat",
        ")",
        "!",
    ]
    assert WordTokenizer(lowercase=False)("Hello World") == ["Hello", "World"]
    assert WordTokenizer.from_dict(WordTokenizer(lowercase=False).to_dict()).lowercase is False


def test_vocab_ordering_and_limits() -> None:
    corpus = [["b", "a", "c", "a"], ["c", "a", "d", "b"], ["e"]]
    vocab = Vocab.build(corpus)
    # specials, then by decreasing count (a:3, b:2, c:2, d:1, e:1), ties alphabetical
    assert vocab.itos == ["<pad>", "<unk>", "<sep>", "a", "b", "c", "d", "e"]
    assert (vocab.pad_id, vocab.unk_id, vocab.sep_id) == (0, 1, 2)
    assert Vocab.build(corpus, min_freq=2).itos[3:] == ["a", "b", "c"]
    assert Vocab.build(corpus, max_size=2).itos[3:] == ["a", "b"]
    assert Vocab.build(corpus, extra_specials=()).itos[:3] == ["<pad>", "<unk>", "a"]
    assert vocab.encode(["a", "zzz", "e"]) == [3, 1, 7]
    assert vocab.decode([3, 1, 7, 0, 0]) == ["a", "<unk>", "e"]
    assert vocab.oov_rate([["a", "zzz"], ["q", "b"]]) == 0.5
    with pytest.raises(ConfigError):
        Vocab.build(corpus, min_freq=0)


def test_vocab_round_trip(tmp_path: Path) -> None:
    tokenize = WordTokenizer()
    texts = ["A great, great film .", "Ein schöner Film — really", "the film"]
    vocab = Vocab.build(tokenize(t) for t in texts)
    path = vocab.save(tmp_path / "run" / "vocab.json")
    loaded = Vocab.load(path)
    assert loaded == vocab and loaded.itos == vocab.itos and loaded.specials == vocab.specials
    assert loaded.counts == vocab.counts and loaded.counts["film"] == 3
    for text in texts:
        assert loaded.encode(tokenize(text)) == vocab.encode(tokenize(text))
    assert "schöner" in path.read_text(encoding="utf-8")  # readable UTF-8, not escaped


def test_vocab_load_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="vocab.json not found"):
        Vocab.load(tmp_path / "vocab.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        Vocab.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"itos": ["a"]}))
    with pytest.raises(CheckpointError, match="not a litzoo vocabulary"):
        Vocab.load(tmp_path / "other.json")


def test_vocab_encoder_truncates_and_counts() -> None:
    vocab = Vocab.build([["a", "b", "c", "d", "e", "f"]])
    encoder = VocabEncoder(vocab, max_length=4)
    assert encoder.encode("a b c") == vocab.encode(["a", "b", "c"])
    assert encoder.encode("a b c d e f") == vocab.encode(["a", "b", "c", "d"])
    # pair: "a <sep> b"; the longer side loses tokens first: 5 + 1 -> budget 3 -> (2, 1)
    assert encoder.encode("a b c d e", "f") == vocab.encode(["a", "b"]) + [vocab.sep_id] + vocab.encode(["f"])
    assert encoder.encode("a", "b") == vocab.encode(["a"]) + [vocab.sep_id] + vocab.encode(["b"])
    assert (encoder.stats.total, encoder.stats.truncated) == (4, 2)
    assert encoder.stats.describe(4) == "2 of 4 texts (50.0%) truncated to 4 tokens"
    # both sides too long: the budget is halved, as Hugging Face's longest_first does
    wide = VocabEncoder(vocab, max_length=8)
    assert len(wide.encode("a b c d", "a b c d e f f")) == 8
    assert wide.encode("a b c d", "a b c d e f f").index(vocab.sep_id) == 3
    no_sep = VocabEncoder(Vocab.build([["a"]], extra_specials=()))
    with pytest.raises(ConfigError, match="<sep>"):
        no_sep.encode("a", "a")


@pytest.fixture(scope="module")
def bert_tokenizer(tmp_path_factory: pytest.TempPathFactory):
    from transformers import AutoTokenizer

    words = [
        "the",
        "a",
        "film",
        "movie",
        "is",
        "was",
        "great",
        "dull",
        "not",
        "very",
        "and",
        "but",
        "plot",
        "good",
        "bad",
    ]
    folder = tmp_path_factory.mktemp("tok")
    (folder / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n"
    )
    (folder / "config.json").write_text('{"model_type": "bert"}')
    tokenizer = AutoTokenizer.from_pretrained(folder, model_max_length=32)
    assert tokenizer.is_fast and len(tokenizer) == 20
    return tokenizer


def test_hf_encoder_truncation_matches_untruncated_lengths(bert_tokenizer) -> None:
    texts = ["the film is great", "the plot was very very very dull and bad", "good", "a b c d e f g h"]
    encoder = HFTextEncoder(bert_tokenizer, max_length=8)
    encoded = encoder.encode_examples([TextExample(t, None, 0, str(i)) for i, t in enumerate(texts)])
    full = [len(ids) for ids in bert_tokenizer(texts)["input_ids"]]
    assert [len(e["input_ids"]) for e in encoded] == [min(n, 8) for n in full]
    assert encoder.stats.truncated == sum(n > 8 for n in full) == 2
    assert encoded[0]["input_ids"][0] == bert_tokenizer.cls_token_id
    assert encoded[1]["input_ids"][-1] == bert_tokenizer.sep_token_id  # truncation keeps the closing [SEP]
    assert set(encoded[0]) == {"input_ids", "token_type_ids", "attention_mask"}


def test_hf_encoder_pairs(bert_tokenizer) -> None:
    encoder = HFTextEncoder(bert_tokenizer, max_length=10)
    pair = encoder.encode("the film is great", "the plot was very very very dull")
    assert len(pair["input_ids"]) == 10 and encoder.stats.truncated == 1
    # 4 + 7 words into 10 - 3 special tokens: both must shrink, so the budget of 7 is split 3 / 4
    # ([CLS] a [SEP] -> type 0, b [SEP] -> type 1).
    assert pair["token_type_ids"] == [0] * 5 + [1] * 5
    with pytest.raises(DataError, match="all single texts or all pairs"):
        encoder.encode_examples([TextExample("a", None, 0, "0"), TextExample("a", "b", 0, "1")])


def test_hf_encoder_refuses_bad_settings(bert_tokenizer) -> None:
    with pytest.raises(ConfigError, match="model_max_length=32"):
        HFTextEncoder(bert_tokenizer, max_length=64)
    with pytest.raises(ConfigError, match="too small"):
        HFTextEncoder(bert_tokenizer, max_length=2)

    class SlowTokenizer:
        is_fast = False

    with pytest.raises(ConfigError, match="not a fast"):
        HFTextEncoder(SlowTokenizer(), max_length=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(len_a=st.integers(1, 12), len_b=st.integers(1, 12), max_length=st.integers(5, 16))
def test_pair_truncation_agrees_with_hugging_face(
    bert_tokenizer, len_a: int, len_b: int, max_length: int
) -> None:
    """The word encoder cuts pairs exactly like the Rust tokenizer's longest_first."""
    hf = bert_tokenizer(
        " ".join(["film"] * len_a),
        " ".join(["plot"] * len_b),
        truncation="longest_first",
        max_length=max_length,
    )
    types = hf["token_type_ids"]
    hf_lengths = (types.count(0) - 2, types.count(1) - 1)  # minus [CLS] [SEP] and the final [SEP]
    assert _truncate_pair(len_a, len_b, max_length - 3) == hf_lengths
