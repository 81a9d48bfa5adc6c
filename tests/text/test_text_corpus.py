"""The embedded generated corpora: real GLUE formats, deterministic, idempotent, learnable but not trivial."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from litzoo.datamodules.text_classification.corpus import (
    MARKER,
    ensure_paraphrase_corpus,
    ensure_sentiment_corpus,
)
from litzoo.datamodules.text_classification.glue import read_glue_split
from litzoo.text.tokenizers import WordTokenizer


@pytest.fixture(scope="module")
def sentiment_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_sentiment_corpus(tmp_path_factory.mktemp("sentiment"), seed=0)


def test_sentiment_corpus_is_sst2_format(sentiment_root: Path) -> None:
    lines = (sentiment_root / "train.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "sentence\tlabel"
    assert len(lines) == 6001 and all(line.count("\t") == 1 for line in lines)
    train = read_glue_split(sentiment_root, "sst2", "train")
    dev = read_glue_split(sentiment_root, "sst2", "dev")
    assert (len(train), len(dev)) == (6000, 1000)
    positive = sum(e.label for e in train) / len(train)
    assert 0.4 < positive < 0.6
    assert all(text == text.lower() for text in (e.text_a for e in train))
    # No dev sentence leaks into train, so dev accuracy measures generalisation.
    assert not {e.text_a for e in dev} & {e.text_a for e in train}


def test_generation_is_deterministic_and_seeded(tmp_path: Path, sentiment_root: Path) -> None:
    again = ensure_sentiment_corpus(tmp_path / "again", seed=0)
    other = ensure_sentiment_corpus(tmp_path / "other", seed=1)
    for name in ("train.tsv", "dev.tsv"):
        assert (again / name).read_bytes() == (sentiment_root / name).read_bytes()
    assert (other / "train.tsv").read_bytes() != (sentiment_root / "train.tsv").read_bytes()


def test_ensure_is_idempotent_and_regenerates_on_change(tmp_path: Path) -> None:
    root = ensure_sentiment_corpus(tmp_path, seed=3, num_train=200, num_dev=50)
    marker = json.loads((root / MARKER).read_text())
    assert marker == {
        "generator": "sentiment",
        "version": 1,
        "seed": 3,
        "num_train": 200,
        "num_dev": 50,
        "label_noise": 0.04,
    }
    # A matching marker means "already there": a file edited afterwards is left alone.
    (root / "train.tsv").write_text("sentence\tlabel\nuntouched\t1\n")
    ensure_sentiment_corpus(tmp_path, seed=3, num_train=200, num_dev=50)
    assert (root / "train.tsv").read_text() == "sentence\tlabel\nuntouched\t1\n"
    # Other parameters regenerate.
    ensure_sentiment_corpus(tmp_path, seed=3, num_train=300, num_dev=50)
    assert len((root / "train.tsv").read_text().splitlines()) == 301
    assert not list(root.glob(".*.tmp"))


def test_sentiment_corpus_defeats_bag_of_words(sentiment_root: Path) -> None:
    """Negation and contrast make word counts a poor predictor (textCNN reaches > 0.9, see test_textcnn)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    train = read_glue_split(sentiment_root, "sst2", "train")
    dev = read_glue_split(sentiment_root, "sst2", "dev")
    vectorizer = CountVectorizer(tokenizer=WordTokenizer(), token_pattern=None, lowercase=False)
    features = vectorizer.fit_transform([e.text_a for e in train])
    classifier = LogisticRegression(max_iter=1000).fit(features, [e.label for e in train])
    accuracy = classifier.score(vectorizer.transform([e.text_a for e in dev]), [e.label for e in dev])
    assert 0.55 < accuracy < 0.7


def test_paraphrase_corpus_is_mrpc_format(tmp_path: Path) -> None:
    root = ensure_paraphrase_corpus(tmp_path, seed=0, num_train=600, num_dev=100)
    header = (root / "train.tsv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
    train = read_glue_split(root, "mrpc", "train")
    dev = read_glue_split(root, "mrpc", "dev")
    assert (len(train), len(dev)) == (600, 100)
    assert train.is_pair
    assert 0.58 < sum(e.label for e in train) / len(train) < 0.76  # MRPC is about 68% paraphrases
    ids = [line.split("\t")[1:3] for line in (root / "train.tsv").read_text().splitlines()[1:]]
    flat = [i for pair in ids for i in pair]
    assert len(set(flat)) == len(flat)
    # Non-paraphrases are close rewrites, not unrelated sentences: word overlap stays high for both classes.
    tokenize = WordTokenizer()

    def overlap(a: str, b: str) -> float:
        x, y = set(tokenize(a)), set(tokenize(b))
        return len(x & y) / len(x | y)

    negatives = [overlap(e.text_a, e.text_b) for e in train if e.label == 0]
    assert sum(negatives) / len(negatives) > 0.4
