"""WikiText, PTB and plain-text readers on files in the real formats; bad corpus files refused clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from litzoo.datamodules.language_model import check_corpus_file, read_lines
from litzoo.datamodules.language_model.datamodule import (
    PTBDataModule,
    TextFilesDataModule,
    WikiTextDataModule,
)
from litzoo.datamodules.language_model.layouts import check_ptb, check_wikitext
from litzoo.errors import DataError
from litzoo.text.lm_encoding import EOS_TOKEN, LMEncoding

from .conftest import write_wikitext


def standard_token_count(path: Path) -> int:
    """salesforce/awd-lstm-lm's data.py: `line.split() + ['<eos>']` for every line, blank ones too."""
    return sum(len(line.split()) + 1 for line in path.read_text(encoding="utf-8").splitlines())


def test_wikitext_reader_counts_tokens_as_the_standard_setup(wikitext_root):
    dm = WikiTextDataModule(root=wikitext_root.parent, tokenizer={"kind": "word"}, batch_size=4, bptt=5)
    ids = dm.prepare()  # root is the parent: the unpacked wikitext-2/ folder is found below it
    for split, file in (
        ("train", "wiki.train.tokens"),
        ("val", "wiki.valid.tokens"),
        ("test", "wiki.test.tokens"),
    ):
        assert len(ids[split]) == standard_token_count(wikitext_root / file)
    vocab = dm.encoding.vocab
    train_words = {w for line in read_lines(wikitext_root / "wiki.train.tokens") for w in line.split()}
    assert len(vocab) == len(train_words - {"<unk>"}) + 3  # + <pad>, <unk>, <eos>
    assert vocab.itos[:3] == ["<pad>", "<unk>", EOS_TOKEN]
    first = (wikitext_root / "wiki.train.tokens").read_text().splitlines()[:3]
    expected = [vocab.token_to_id(w) for line in first for w in [*line.split(), EOS_TOKEN]]
    assert (
        ids["train"][: len(expected)].tolist() == expected
    )  # " \n = Article train = \n \n" -> <eos> = ... <eos> <eos>
    assert dm.encoding.decode(ids["train"][:6]).split("\n")[1].strip() == "= Article train ="


def test_skip_empty_lines_drops_their_eos(wikitext_root):
    dm = WikiTextDataModule(
        root=wikitext_root, tokenizer={"kind": "word"}, skip_empty_lines=True, batch_size=4
    )
    lines = read_lines(wikitext_root / "wiki.valid.tokens")
    assert len(dm.prepare()["val"]) == sum(len(line.split()) + 1 for line in lines if line.strip())


def test_wikitext_raw_files_are_read_with_raw_true(tmp_path):
    root = write_wikitext(tmp_path / "wikitext-2-raw", raw=True)
    dm = WikiTextDataModule(root=tmp_path, raw=True, tokenizer={"kind": "word"}, batch_size=4)
    assert len(dm.prepare()["test"]) == standard_token_count(root / "wiki.test.raw")
    check_wikitext({"root": str(tmp_path), "raw": True, "name": "wikitext2"})
    with pytest.raises(DataError, match="there is no wiki.train.tokens"):
        check_wikitext({"root": str(tmp_path), "raw": False, "name": "wikitext2"})


def test_ptb_reader_and_vocabulary(ptb_root):
    dm = PTBDataModule(root=ptb_root, tokenizer={"kind": "word"}, batch_size=4)
    ids = dm.prepare()
    assert len(ids["train"]) == standard_token_count(ptb_root / "ptb.train.txt")
    assert dm.encoding.oov_rate(ids["val"]) == pytest.approx(
        np.mean(ids["val"] == dm.encoding.vocab.unk_id)
    )  # PTB's own <unk> map to <unk>
    check_ptb({"root": str(ptb_root), "name": "ptb"})


def test_text_files_hold_out_the_end_of_training_for_validation(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(f"line number {i} of the text\n" for i in range(100)), encoding="utf-8")
    dm = TextFilesDataModule(
        train_files=[str(path)], val_fraction=0.1, tokenizer={"kind": "word"}, batch_size=2
    )
    ids = dm.prepare()
    assert len(ids["train"]) == 90 * 7 and len(ids["val"]) == 10 * 7  # 6 words + <eos> per line
    assert dm.encoding.decode(ids["val"][:6]) == "line number <unk> of the text"  # 90 is not in train
    assert ids["test"] is ids["val"]  # no test file: test on the held-out part


def test_bpe_tokenizer_is_trained_on_train_and_round_trips(tmp_path):
    root = write_wikitext(tmp_path / "wikitext-2-raw", raw=True)
    dm = WikiTextDataModule(
        root=root,
        raw=True,
        tokenizer={"kind": "bpe", "vocab_size": 300},
        batch_size=2,
        batching="windows",
        bptt=16,
    )
    ids = dm.prepare()
    text = (root / "wiki.test.raw").read_text(encoding="utf-8")
    assert dm.encoding.decode(ids["test"].tolist()) == text  # byte-level BPE loses nothing
    assert dm.encoding.vocab_size == 300
    saved = dm.encoding.save(tmp_path / "run")
    again = LMEncoding.load(tmp_path / "run", dm.encoding.settings())
    assert saved.name == "tokenizer" and np.array_equal(again.encode_lines(text.splitlines()), ids["test"])


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"\x00\x01\x02binary\x00", "binary file"),
        ("caf\u00e9 latin-1 text\n".encode("latin-1") * 3, "not UTF-8"),
    ],
)
def test_bad_corpus_files_are_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "wiki.train.tokens"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as error:
        check_corpus_file(path)
    assert str(path) in str(error.value)


def test_a_file_of_blank_lines_holds_no_text(tmp_path):
    (tmp_path / "blank.txt").write_text(" \n\n \n", encoding="utf-8")
    dm = TextFilesDataModule(
        train_files=str(tmp_path / "blank.txt"),
        val_files=str(tmp_path / "blank.txt"),
        tokenizer={"kind": "word"},
        batch_size=2,
    )
    with pytest.raises(DataError, match="holds no text"):
        dm.prepare()


def test_cli_refuses_an_empty_wikitext_file_before_importing_torch(wikitext_root, tmp_path):
    root = tmp_path / "wt"
    root.mkdir()
    for name in ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"):
        (root / name).write_text((wikitext_root / name).read_text())
    (root / "wiki.valid.tokens").write_text("")
    result = run_cli(
        ["task=language_model", "data=wikitext2", f"data.root={root}", f"hydra.run.dir={tmp_path / 'run'}"],
        timeout=120,
    )
    assert result.returncode == 3, result.stderr[-2000:]
    assert f"{root / 'wiki.valid.tokens'} is empty" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli(
        [
            "task=language_model",
            "data=ptb",
            f"data.root={tmp_path / 'nowhere'}",
            f"hydra.run.dir={tmp_path / 'run2'}",
        ],
        timeout=120,
    )
    assert result.returncode == 3 and "ptb.train.txt" in result.stderr
