"""The embedded treebank, UD file discovery and layout checks, vocabularies and batches."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import compose, run_cli

from litzoo.datamodules.dependency_parsing.datamodule import ToyTreebankDataModule, TreebankDataModule
from litzoo.datamodules.dependency_parsing.layouts import find_treebank_files
from litzoo.datamodules.dependency_parsing.treebank import ensure_toy_treebank, generate_treebank
from litzoo.errors import DataError
from litzoo.platform.validate import validate
from litzoo.text.conllu import parse_treebank, read_treebank
from litzoo.text.dependency_trees import is_projective, is_tree
from litzoo.text.parser_inputs import ParserVocab

from .conftest import TREEBANK

SAMPLE = Path("real") / "UD" / "en_ewt-ud-sample.conllu"


def test_the_generated_treebank_is_deterministic_valid_ud_with_the_hard_cases():
    text = generate_treebank(400, seed=1, prefix="t")
    assert generate_treebank(400, seed=1, prefix="t") == text
    assert generate_treebank(400, seed=2, prefix="t") != text
    sentences = list(parse_treebank(text))
    assert len(sentences) == 400
    assert all(is_tree([0, *s.heads], single_root=True) for s in sentences)
    lines = [line for s in sentences for line in s.lines if not line.startswith("#")]
    assert any("-" in line.split("\t")[0] for line in lines)  # multi-word tokens
    assert any("." in line.split("\t")[0] for line in lines)  # empty nodes
    assert sum(not is_projective([0, *s.heads]) for s in sentences) > 20  # extraposed relative clauses
    relations = collections.Counter(r for s in sentences for r in s.deprels)
    assert {"nsubj:pass", "acl:relcl", "nmod:poss", "orphan", "punct"} <= set(relations)


def test_pp_attachment_depends_on_the_words_not_only_the_tags():
    sentences = list(parse_treebank(generate_treebank(3000, seed=0, prefix="t")))
    attachments = collections.defaultdict(collections.Counter)
    for sentence in sentences:
        for word in sentence.words:
            if word.deprel in ("obl", "nmod") and any(
                w.head == word.id and w.form == "with" for w in sentence.words
            ):
                attachments[word.form][word.deprel] += 1
    assert set(attachments["fork"]) == {"obl"} and set(attachments["cheese"]) == {"nmod"}


def test_ensure_writes_ud_names_once_and_regenerates_on_other_settings(tmp_path):
    root = ensure_toy_treebank(tmp_path / "toy", 20, 5, 5, seed=0)
    names = sorted(p.name for p in root.glob("*.conllu"))
    assert names == ["en_toy-ud-dev.conllu", "en_toy-ud-test.conllu", "en_toy-ud-train.conllu"]
    stamp = (root / "en_toy-ud-train.conllu").stat().st_mtime_ns
    ensure_toy_treebank(root, 20, 5, 5, seed=0)
    assert (root / "en_toy-ud-train.conllu").stat().st_mtime_ns == stamp
    ensure_toy_treebank(root, 30, 5, 5, seed=0)
    assert len(read_treebank(root / "en_toy-ud-train.conllu")) == 30


def ud_folder(fixtures_dir: Path, folder: Path, splits: tuple[str, ...] = ("train", "dev", "test")) -> Path:
    folder.mkdir(parents=True)
    for split in splits:
        shutil.copy(fixtures_dir / SAMPLE, folder / f"en_ewt-ud-{split}.conllu")
    return folder


def test_a_ud_release_folder_is_found_by_its_file_names(fixtures_dir, tmp_path):
    root = ud_folder(fixtures_dir, tmp_path / "UD_English-EWT")
    found = find_treebank_files(root, {})
    assert {k: v.name for k, v in found.items()} == {
        "train": "en_ewt-ud-train.conllu",
        "val": "en_ewt-ud-dev.conllu",
        "test": "en_ewt-ud-test.conllu",
    }
    explicit = tmp_path / "mine.conllu"
    shutil.copy(fixtures_dir / SAMPLE, explicit)
    assert find_treebank_files(root, {"test": str(explicit)})["test"] == explicit


def test_without_a_test_file_the_test_split_is_dev(fixtures_dir, tmp_path):
    root = ud_folder(fixtures_dir, tmp_path / "UD_Small", ("train", "dev"))
    found = find_treebank_files(root, {})
    assert found["test"] == found["val"]


@pytest.mark.parametrize(
    ("splits", "message"),
    [
        (("train",), "no dev file"),
        (("dev", "test"), "no train file"),
    ],
)
def test_missing_splits_show_the_expected_layout(fixtures_dir, tmp_path, splits, message):
    root = ud_folder(fixtures_dir, tmp_path / "UD_X", splits)
    with pytest.raises(DataError, match=message) as error:
        find_treebank_files(root, {})
    assert "-ud-train.conllu" in str(error.value) and "data.train_file" in str(error.value)


def test_a_bad_line_fails_validation_before_torch_with_file_and_line(fixtures_dir, tmp_path):
    root = ud_folder(fixtures_dir, tmp_path / "UD_Bad")
    dev = root / "en_ewt-ud-dev.conllu"
    lines = dev.read_text().split("\n")
    lines[4] = lines[4].replace("\t4\tmark\t", "\t40\tmark\t")
    dev.write_text("\n".join(lines))
    cfg = compose(["task=dependency_parsing", "data=conllu", f"data.root={root}"])
    with pytest.raises(DataError, match=rf"{dev}, line 5: HEAD 40 points outside the sentence"):
        validate(cfg, [Path("conf")])
    result = run_cli(["task=dependency_parsing", "data=conllu", f"data.root={root}", "--cfg", "job"])
    assert result.returncode == 0  # showing the config checks nothing
    result = run_cli(
        ["task=dependency_parsing", "data=conllu", f"data.root={root}", f"hydra.run.dir={tmp_path / 'run'}"],
        timeout=120,
    )
    assert result.returncode == 3, result.stderr[-2000:]
    assert "line 5: HEAD 40 points outside the sentence" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_relation_unseen_in_training_is_refused_at_test_time_unless_allowed(fixtures_dir, tmp_path):
    root = ud_folder(fixtures_dir, tmp_path / "UD_Rel")
    test = root / "en_ewt-ud-test.conllu"
    test.write_text(test.read_text().replace("\t6\tflat\t", "\t6\tflat:name\t", 1))
    data = TreebankDataModule(root=root, batch_size=4)
    with pytest.raises(DataError) as error:
        data.setup()
    message = str(error.value)
    assert f"{test}, line 46" in message and "'flat:name' never occurs in the training data" in message
    assert "data.unknown_relations=allow" in message
    cfg = compose(["task=dependency_parsing", "data=conllu", f"data.root={root}"])
    with pytest.raises(DataError, match=rf"{test}, line 46: the relation 'flat:name'"):
        validate(cfg, [Path("conf")])  # before torch: the layout check reads every split
    validate(
        compose(
            ["task=dependency_parsing", "data=conllu", f"data.root={root}", "data.unknown_relations=allow"]
        ),
        [Path("conf")],
    )
    allowed = TreebankDataModule(root=root, batch_size=4, unknown_relations="allow")
    allowed.setup()
    assert -1 in np.concatenate([s["rels"] for s in allowed.test_set.samples])


def test_vocabularies_come_from_training_and_survive_a_round_trip(fixtures_dir, tmp_path):
    sentences = read_treebank(fixtures_dir / SAMPLE)
    vocab = ParserVocab.build(sentences[:3], min_freq=1)
    assert "iraqis" not in vocab.words  # only in the fourth sentence
    again = ParserVocab.load(vocab.save(tmp_path / "v.json"))
    for sentence in sentences:
        ours, theirs = vocab.encode(sentence, with_tree=False), again.encode(sentence, with_tree=False)
        assert all(np.array_equal(ours[k], theirs[k]) for k in ours)
    sample = vocab.encode(sentences[0], with_tree=True)
    assert sample["words"][0] == vocab.words.token_to_id("<root>") and sample["heads"].tolist() == [
        -1,
        0,
        4,
        4,
        1,
        6,
        4,
        4,
    ]
    assert [vocab.relations[r] for r in sample["rels"][1:]] == sentences[0].deprels
    assert sample["chars"].shape == (8, vocab.max_word_length)


def test_batches_pad_heads_and_relations_with_minus_one_and_carry_sentence_indices(treebank_root):
    data = ToyTreebankDataModule(root=treebank_root, batch_size=8, **{k: v for k, v in TREEBANK.items()})
    data.setup()
    batch = next(iter(data.val_dataloader()))
    lengths = batch["words"].ne(0).sum(-1)
    for b, n in enumerate(lengths.tolist()):
        assert batch["heads"][b, n:].eq(-1).all() and batch["heads"][b, 0] == -1
        sentence = data.sentences("val")[int(batch["index"][b])]
        assert batch["heads"][b, 1:n].tolist() == sentence.heads
    assert data.lengths("val").tolist() == [len(s) + 1 for s in data.sentences("val")]
