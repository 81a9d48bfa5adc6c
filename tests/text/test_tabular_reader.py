"""The generic CSV/TSV/JSONL reader for users' own data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from litzoo.datamodules.text_classification.tabular import (
    detect_format,
    infer_label_names,
    read_tabular_split,
)
from litzoo.errors import ConfigError, DataError


def test_csv_with_quoted_commas_and_newlines(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text('id,review,stars\n1,"great, really ""great""",pos\n2,"two\nlines",neg\n3,meh,neg\n')
    split = read_tabular_split(path, text_column="review", label_column="stars")
    assert split.label_names == ("neg", "pos")  # inferred, sorted
    assert [(e.text_a, e.label) for e in split] == [
        ('great, really "great"', 1),
        ("two\nlines", 0),
        ("meh", 0),
    ]
    assert split[2].guid == "train-5"  # line numbers count physical lines


def test_tsv_pairs_keep_stray_quotes(tmp_path: Path) -> None:
    path = tmp_path / "dev.tsv"
    path.write_text('q1\tq2\tis_dup\n" odd start\tfine\t1\n')
    split = read_tabular_split(path, "q1", "q2", "is_dup", label_names=["0", "1"], split="dev")
    assert split[0].text_a == '" odd start' and split[0].text_b == "fine" and split[0].label == 1
    assert split.is_pair


def test_jsonl_numeric_labels_sort_numerically(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    rows = [{"text": "a", "label": 10}, {"text": "b", "label": 2}, {"text": "c", "label": "2"}]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    assert infer_label_names(path) == ("2", "10")
    split = read_tabular_split(path)
    assert [e.label for e in split] == [1, 0, 0]


def test_declared_labels_and_unknown_label(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text("text,label\nfine,pos\nodd,maybe\n")
    with pytest.raises(DataError, match=r"test.csv, line 3: label 'maybe' .*'neg', 'pos'"):
        read_tabular_split(path, label_names=["neg", "pos"])
    split = read_tabular_split(path, label_names=["neg", "pos"], on_invalid="skip")
    assert len(split) == 1 and "line 3" in split.skipped[0]


def test_regression_and_unlabeled(tmp_path: Path) -> None:
    path = tmp_path / "scores.tsv"
    path.write_text("s1\ts2\tscore\na\tb\t4.5\nc\td\t0\n")
    split = read_tabular_split(path, "s1", "s2", "score", is_regression=True)
    assert split.is_regression and [e.label for e in split] == [4.5, 0.0]
    unlabeled = read_tabular_split(path, "s1", label_column=None, split="predict")
    assert [e.label for e in unlabeled] == [None, None] and not unlabeled.has_labels


def test_missing_column_lists_found_columns(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("sentence,label\nhi,1\n")
    with pytest.raises(DataError) as error:
        read_tabular_split(path, text_column="text")
    assert str(path) in str(error.value) and "['text']" in str(error.value)
    assert "columns found: ['sentence', 'label']" in str(error.value)


def test_row_problems_are_located(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("text,label\nhi,1\n,0\n")
    with pytest.raises(DataError, match="line 3: empty text in column 'text'"):
        read_tabular_split(path)
    path.write_text("text,label\nhi,1\nbye,1,extra\n")
    with pytest.raises(DataError, match="line 3: 3 field"):
        read_tabular_split(path)
    path.write_text("text,label\nhi,1\n\nbye,0\n")
    with pytest.raises(DataError, match="line 3: empty line"):
        read_tabular_split(path)
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text('{"text": "a", "label": 1}\n{"text": "b"\n')
    with pytest.raises(DataError, match="line 2: not valid JSON"):
        read_tabular_split(jsonl)
    jsonl.write_text('{"text": "a", "label": 1}\n{"text": "b"}\n')
    with pytest.raises(DataError, match="line 2: missing label"):
        read_tabular_split(jsonl)
    score = tmp_path / "score.csv"
    score.write_text("text,label\na,high\n")
    with pytest.raises(DataError, match="target 'high'"):
        read_tabular_split(score, is_regression=True)


def test_format_detection(tmp_path: Path) -> None:
    assert (
        detect_format("x.CSV") == "csv"
        and detect_format("x.ndjson") == "jsonl"
        and detect_format("x.tsv") == "tsv"
    )
    assert detect_format("x.txt", "tsv") == "tsv"
    with pytest.raises(ConfigError, match="data.format"):
        detect_format("x.txt")
    with pytest.raises(DataError, match="not found"):
        read_tabular_split(tmp_path / "none.csv")
