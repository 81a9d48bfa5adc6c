"""TREC label files and the IMDB aclImdb tree, written by the tests in their original formats."""

from __future__ import annotations

from pathlib import Path

import pytest

from litzoo.datamodules.text_classification.imdb import clean_review, read_imdb_split
from litzoo.datamodules.text_classification.trec import TREC_COARSE_LABELS, TREC_FINE_LABELS, read_trec_split
from litzoo.errors import ConfigError, DataError

TREC_LINES = [
    b"DESC:manner How did serfdom develop in and then leave Russia ?",
    b"ENTY:cremat What films featured the character Popeye Doyle ?",
    b"HUM:ind What contemptible scoundrel stole the cork from my lunch ?",
    # The original train_5500.label holds one byte that is not UTF-8 (0xF0).
    b"LOC:city What is the name of the \xf0 city ?",
    b"NUM:date When was Ozzy Osbourne born ?",
]


@pytest.fixture
def trec_root(tmp_path: Path) -> Path:
    (tmp_path / "train_5500.label").write_bytes(b"\n".join(TREC_LINES) + b"\n")
    (tmp_path / "TREC_10.label").write_bytes(b"NUM:dist How far is it from Denver to Aspen ?\n")
    return tmp_path


def test_trec_coarse_labels(trec_root: Path) -> None:
    split = read_trec_split(trec_root, "train")
    assert split.label_names == TREC_COARSE_LABELS == ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
    assert [split.label_names[e.label] for e in split] == ["DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert split[0].text_a == "How did serfdom develop in and then leave Russia ?"
    assert split[3].text_a == "What is the name of the \u00f0 city ?"
    test = read_trec_split(trec_root, "test")
    assert len(test) == 1 and test[0].label == TREC_COARSE_LABELS.index("NUM")


def test_trec_fine_labels(trec_root: Path) -> None:
    assert len(TREC_FINE_LABELS) == 50
    split = read_trec_split(trec_root, "train", granularity="fine")
    assert [split.label_names[e.label] for e in split] == [
        "DESC:manner",
        "ENTY:cremat",
        "HUM:ind",
        "LOC:city",
        "NUM:date",
    ]


def test_trec_configurable_files_and_errors(trec_root: Path) -> None:
    (trec_root / "train_1000.label").write_bytes(b"ABBR:exp What does NASA stand for ?\nbroken line\n")
    with pytest.raises(DataError, match=r"train_1000.label, line 2: expected `LABEL:sub question text`"):
        read_trec_split(trec_root, "train", files={"train": "train_1000.label"})
    split = read_trec_split(trec_root, "train", files={"train": "train_1000.label"}, on_invalid="skip")
    assert len(split) == 1 and len(split.skipped) == 1
    (trec_root / "bad.label").write_bytes(b"WHO:ind Who is it ?\n")
    with pytest.raises(DataError, match="label 'WHO' is not a TREC coarse label"):
        read_trec_split(trec_root, "train", files={"train": "bad.label"})
    with pytest.raises(DataError, match="TREC_10.label"):
        read_trec_split(trec_root / "nowhere", "test")
    with pytest.raises(ConfigError):
        read_trec_split(trec_root, "train", granularity="medium")


def write_review(root: Path, split: str, polarity: str, name: str, text: str) -> None:
    folder = root / "aclImdb" / split / polarity
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


@pytest.fixture
def imdb_root(tmp_path: Path) -> Path:
    write_review(tmp_path, "train", "pos", "10_9.txt", "Great film.<br /><br />Loved it.")
    write_review(tmp_path, "train", "pos", "2_10.txt", "A classic.")
    write_review(tmp_path, "train", "neg", "0_3.txt", "Dull<br/>and  long.")
    write_review(tmp_path, "train", "unsup", "0_0.txt", "not read")
    write_review(tmp_path, "test", "pos", "0_8.txt", "Fine.")
    write_review(tmp_path, "test", "neg", "0_2.txt", "Bad.")
    return tmp_path


def test_imdb_layout(imdb_root: Path) -> None:
    split = read_imdb_split(imdb_root, "train")  # the parent of aclImdb works too
    assert split.label_names == ("neg", "pos")
    # negatives first, then positives in numeric id order (2 before 10)
    assert [(e.guid, e.label) for e in split] == [
        ("train/neg/0_3", 0),
        ("train/pos/2_10", 1),
        ("train/pos/10_9", 1),
    ]
    assert split[2].text_a == "Great film. Loved it."
    assert split[0].text_a == "Dull and long."
    assert len(read_imdb_split(imdb_root / "aclImdb", "test")) == 2


def test_imdb_errors(imdb_root: Path, tmp_path: Path) -> None:
    assert clean_review("a<BR />b <br>c") == "a b c"
    with pytest.raises(DataError, match="aclImdb"):
        read_imdb_split(tmp_path / "missing", "train")
    with pytest.raises(ConfigError):
        read_imdb_split(imdb_root, "unsup")
    write_review(imdb_root, "train", "pos", "11_7.txt", "<br />  ")
    with pytest.raises(DataError, match="11_7.txt.*empty review"):
        read_imdb_split(imdb_root, "train")
    for path in (imdb_root / "aclImdb" / "test" / "neg").iterdir():
        path.unlink()
    (imdb_root / "aclImdb" / "test" / "neg").rmdir()
    with pytest.raises(DataError, match="test/neg"):
        read_imdb_split(imdb_root, "test")
