"""Text datamodules on real formats: splits, vocabulary from train only, bucketing, padding, bad rows."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from text_fixtures import write_mnli

from litzoo.data.samplers import FixedBucketSampler
from litzoo.datamodules.text_classification import TextExample, Vocab, WordTokenizer, read_glue_split
from litzoo.datamodules.text_classification.datamodule import (
    GeneratedCorpusDataModule,
    GlueDataModule,
    TabularTextDataModule,
    TextEncoding,
)
from litzoo.errors import ConfigError, DataError

VOCAB = {"kind": "vocab", "lowercase": True, "min_freq": 1, "max_size": None}
BUCKETS = functools.partial(FixedBucketSampler, num_buckets=8, bucket_scheme="exp")


def sentiment_module(root: Path, **kwargs) -> GeneratedCorpusDataModule:
    options = dict(tokenizer=VOCAB, max_length=64, val_fraction=0.1, batch_size=32, seed=7)
    options.update(kwargs)
    return GeneratedCorpusDataModule("sentiment", root, **options)


def test_hold_out_is_stratified_and_vocabulary_comes_from_train_only(corpus_roots) -> None:
    sentiment, _ = corpus_roots
    module = sentiment_module(sentiment)
    prepared = module.prepare()
    assert (len(prepared.train), len(prepared.val[0]), len(prepared.test[0])) == (5400, 600, 1000)
    assert [split.name for split in prepared.test] == ["dev"]
    train_labels = np.mean([e.label for e in prepared.train])
    val_labels = np.mean([e.label for e in prepared.val[0]])
    assert (
        abs(train_labels - val_labels) < 1 / 600 + 1e-9
    )  # stratified: same positive share up to one example
    words = WordTokenizer()
    expected = Vocab.build(words(e.text_a) for e in prepared.train)
    assert prepared.encoding.vocab == expected
    # The same seed gives the same hold-out; another split_seed another one.
    again = sentiment_module(sentiment).prepare()
    assert [e.guid for e in again.val[0]] == [e.guid for e in prepared.val[0]]
    other = sentiment_module(sentiment, split_seed=1).prepare()
    assert [e.guid for e in other.val[0]] != [e.guid for e in prepared.val[0]]
    info = module.info()
    assert info["class_names"] == ["negative", "positive"] and info["label_names"] == ["0", "1"]
    assert info["encoding"] == {
        "kind": "vocab",
        "max_length": 64,
        "vocab_size": len(expected),
        "pad_id": 0,
        "lowercase": True,
        "file": "vocab.json",
    }
    assert info["vocab"] is prepared.encoding.vocab and info["metrics"] == ["accuracy"]


def test_batches_are_bucketed_padded_and_carry_lengths(corpus_roots) -> None:
    sentiment, _ = corpus_roots
    module = sentiment_module(sentiment, sampler=BUCKETS)
    module.setup("fit")
    lengths = module.lengths("train")
    assert len(lengths) == 5400 and lengths.max() <= 64
    batch = next(iter(module.train_dataloader()))
    ids, length = batch["input_ids"], batch["length"]
    assert ids.dtype == torch.int64 and batch["label"].dtype == torch.int64
    assert ids.shape[1] == int(length.max())
    for row, n in zip(ids, length.tolist()):  # real tokens, then padding id 0
        assert (row[:n] != 0).all() and (row[n:] == 0).all()
    # Bucketing pads far less than random batches of the same size.
    bucketed = module.batch_sampler("train").stats()["padding_fraction"]
    random_module = sentiment_module(sentiment, sampler=None)
    random_module.setup("fit")
    padded = sum(
        len(b) * int(random_module.lengths("train")[b].max()) for b in random_module.batch_sampler("train")
    )
    random_fraction = 1 - int(random_module.lengths("train").sum()) / padded
    assert bucketed < 0.1 < 0.3 < random_fraction


def test_mnli_validates_and_tests_on_both_dev_sets(corpus_roots, tmp_path: Path) -> None:
    _, paraphrase = corpus_roots
    root = write_mnli(tmp_path / "MNLI", paraphrase, num_train=200, num_dev=40)
    module = GlueDataModule("mnli", root, tokenizer=VOCAB, batch_size=16, seed=0)
    info = module.info()
    assert info["val_names"] == info["test_names"] == ["dev_matched", "dev_mismatched"]
    assert info["label_names"] == ["contradiction", "entailment", "neutral"] and info["is_pair"]
    module.setup("test")
    splits = torch.cat([batch["split"] for batch in module.test_dataloader()])
    assert sorted(splits.tolist()) == [0] * 40 + [1] * 40
    # Pairs are joined with <sep> for the word vocabulary.
    first = module.test_set[0]["input_ids"].tolist()
    assert module.prepare().encoding.vocab.sep_id in first


def test_hf_tokenizer_truncates_and_counts(corpus_roots, tiny_bert: Path, caplog) -> None:
    sentiment, _ = corpus_roots
    module = sentiment_module(
        sentiment, tokenizer={"kind": "hf", "pretrained": str(tiny_bert)}, max_length=12
    )
    with caplog.at_level(logging.INFO, logger="litzoo"):
        module.setup("fit")
    lengths = module.lengths("train")
    assert lengths.max() == 12
    tokenizer = module.prepare().encoding.tokenizer
    truncated = sum(len(tokenizer(e.text_a)["input_ids"]) > 12 for e in module.prepare().train)
    assert f"{truncated} of 5400 texts" in caplog.text and truncated > 1000
    batch = next(iter(module.train_dataloader()))
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "label", "split"}
    assert (batch["attention_mask"].sum(dim=1) == (batch["input_ids"] != 0).sum(dim=1)).all()
    with pytest.raises(ConfigError, match="model_max_length=128"):
        sentiment_module(
            sentiment, tokenizer={"kind": "hf", "pretrained": str(tiny_bert)}, max_length=512
        ).prepare()


def test_encoding_saved_in_run_dir_reads_text_identically(
    corpus_roots, tiny_bert: Path, tmp_path: Path
) -> None:
    sentiment, _ = corpus_roots
    texts = read_glue_split(sentiment, "sst2", "dev").examples[:50]
    unseen = [TextExample("a zorblax film is utterly brilliant", None, 1, "x")]
    for settings in (VOCAB, {"kind": "hf", "pretrained": str(tiny_bert)}):
        module = sentiment_module(sentiment, tokenizer=settings)
        encoding = module.prepare().encoding
        run_dir = tmp_path / settings["kind"]
        encoding.save(run_dir)
        loaded = TextEncoding.load(run_dir, encoding.settings())
        for a, b in zip(encoding.encode(texts + unseen)[0], loaded.encode(texts + unseen)[0]):
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert (tmp_path / "vocab" / "vocab.json").is_file()
    assert {"config.json", "tokenizer.json"} <= {p.name for p in (tmp_path / "hf" / "tokenizer").iterdir()}


def test_bad_rows_stop_or_are_skipped_and_listed(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_text(
        "text,label\ngreat film,pos\n\ndull,neg\nfine,meh\nsolid,pos\nbad,neg\n", encoding="utf-8"
    )
    options = dict(
        train_file=train, tokenizer=VOCAB, label_names=["neg", "pos"], val_fraction=0.4, batch_size=2
    )
    with pytest.raises(DataError, match=r"train.csv, line 3: empty line.*data.bad_samples=skip"):
        TabularTextDataModule(**options).prepare()
    module = TabularTextDataModule(**options, bad_samples="skip")
    module.prepare()
    assert module.skipped_samples() == [
        {"split": "train", "file": str(train), "line": 3, "reason": "empty line"},
        {
            "split": "train",
            "file": str(train),
            "line": 5,
            "reason": "label 'meh' in column 'label' is not in the label set ('neg', 'pos')",
        },
    ]
    assert len(module.prepare().train) + len(module.prepare().val[0]) == 4


def test_tabular_columns_labels_and_regression_metrics(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    train.write_text(
        '{"review": "great", "stars": 5}\n{"review": "dull", "stars": 1}\n'
        '{"review": "fine", "stars": 3}\n{"review": "awful", "stars": 1}\n',
        encoding="utf-8",
    )
    with pytest.raises(
        DataError, match=r"column\(s\) \['text', 'label'\] not found; columns found: \['review', 'stars'\]"
    ):
        TabularTextDataModule(train_file=train, tokenizer=VOCAB, val_fraction=0.5).prepare()
    classes = TabularTextDataModule(
        train_file=train, text_column="review", label_column="stars", tokenizer=VOCAB, val_fraction=0.5
    )
    assert classes.info()["label_names"] == ["1", "3", "5"]
    with pytest.raises(ConfigError, match="do not fit a regression task"):
        TabularTextDataModule(
            train_file=train,
            text_column="review",
            label_column="stars",
            tokenizer=VOCAB,
            val_fraction=0.5,
            is_regression=True,
            metrics=["accuracy"],
        ).prepare()
    scores = TabularTextDataModule(
        train_file=train,
        text_column="review",
        label_column="stars",
        tokenizer=VOCAB,
        val_fraction=0.5,
        is_regression=True,
    )
    info = scores.info()
    assert info["is_regression"] and info["num_labels"] == 1 and info["metrics"] == ["pearson", "spearman"]
    scores.setup("fit")
    assert next(iter(scores.train_dataloader()))["label"].dtype == torch.float32


def test_missing_tokenizer_and_validation_split_are_explained(corpus_roots) -> None:
    sentiment, _ = corpus_roots
    with pytest.raises(ConfigError, match="data.tokenizer is not set"):
        sentiment_module(sentiment, tokenizer=None).prepare()
    with pytest.raises(ConfigError, match="no validation file; set data.val_fraction"):
        TabularTextDataModule(
            train_file=sentiment / "train.tsv", text_column="sentence", tokenizer=VOCAB, val_fraction=None
        ).prepare()
    with pytest.raises(ConfigError, match="bad_samples='ignore' is not a policy"):
        sentiment_module(sentiment, bad_samples="ignore")


def test_trec_and_imdb_hold_out_validation_and_test_on_their_test_files(tmp_path: Path) -> None:
    from litzoo.data.layouts import check_layout
    from litzoo.datamodules.text_classification.datamodule import ImdbDataModule, TrecDataModule

    trec = tmp_path / "trec"
    trec.mkdir()
    questions = [
        "DESC:manner How did serfdom develop ?",
        "HUM:ind Who was the first president ?",
        "LOC:city What city hosts the games ?",
        "NUM:date When did it end ?",
    ] * 5
    (trec / "train_5500.label").write_text("\n".join(questions) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"missing file\(s\) TREC_10.label"):
        check_layout(
            "litzoo.datamodules.text_classification.layouts.check_trec", {"root": str(trec), "name": "trec"}
        )
    (trec / "TREC_10.label").write_text("\n".join(questions[:4]) + "\n", encoding="utf-8")
    check_layout(
        "litzoo.datamodules.text_classification.layouts.check_trec", {"root": str(trec), "name": "trec"}
    )
    module = TrecDataModule(trec, tokenizer=VOCAB, val_fraction=0.2)
    info = module.info()
    assert info["label_names"] == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert (info["val_names"], info["test_names"]) == (["val"], ["test"])
    prepared = module.prepare()
    assert (len(prepared.train), len(prepared.val[0]), len(prepared.test[0])) == (16, 4, 4)

    imdb = tmp_path / "aclImdb"
    for split in ("train", "test"):
        for label, text in (("pos", "A <br />wonderful film"), ("neg", "A dull<br/>film")):
            (imdb / split / label).mkdir(parents=True)
            for i in range(5):
                (imdb / split / label / f"{i}_{8 if label == 'pos' else 2}.txt").write_text(f"{text} {i}")
    check_layout(
        "litzoo.datamodules.text_classification.layouts.check_imdb", {"root": str(tmp_path), "name": "imdb"}
    )  # the parent of aclImdb is accepted too
    module = ImdbDataModule(tmp_path, tokenizer=VOCAB, val_fraction=0.2)
    info = module.info()
    assert info["class_names"] == ["negative", "positive"] and info["test_names"] == ["test"]
    module.setup("fit")
    vocab = module.prepare().encoding.vocab
    assert "br" not in vocab and "wonderful" in vocab  # HTML line breaks are gone before tokenizing
    assert len(module.train_set) == 8 and len(module.val_set) == 2 and len(module.test_set) == 10
