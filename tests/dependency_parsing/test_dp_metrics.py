"""UAS/LAS follow the CoNLL 2018 conventions; checked against an independent computation on hand-made files."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from litzoo.errors import DataError
from litzoo.metrics.dependency_parsing import attachment_scores, main, score_files
from litzoo.text.conllu import format_sentence, read_treebank, write_treebank
from litzoo.text.dependency_trees import is_tree

conllu = pytest.importorskip("conllu")  # an independent CoNLL-U parser (PyPI `conllu`)

SAMPLE = Path("real") / "UD" / "en_ewt-ud-sample.conllu"


def independent_scores(
    gold_path: Path, system_path: Path, exclude_punct: bool = False
) -> tuple[float, float]:
    """UAS/LAS as the CoNLL 2018 script computes them with the gold tokenization, on files parsed by `conllu`."""
    total = heads = labels = 0
    gold_sentences = conllu.parse(gold_path.read_text())
    system_sentences = conllu.parse(system_path.read_text())
    for gold, system in zip(gold_sentences, system_sentences):
        gold_words = [t for t in gold if isinstance(t["id"], int)]  # ranges and empty nodes are tuples
        system_words = [t for t in system if isinstance(t["id"], int)]
        assert [t["form"] for t in gold_words] == [t["form"] for t in system_words]
        for g, s in zip(gold_words, system_words):
            if exclude_punct and g["upos"] == "PUNCT":
                continue
            total += 1
            if g["head"] == s["head"]:
                heads += 1
                labels += g["deprel"].split(":")[0] == s["deprel"].split(":")[0]
    return heads / total, labels / total


@pytest.fixture
def files(fixtures_dir, tmp_path) -> tuple[Path, Path]:
    """The real UD sample (an empty node, subtyped relations) with MWT lines added, and a corrupted copy."""
    sample = (fixtures_dir / SAMPLE).read_text()
    # A multi-word token range over words 3-4 of the first sentence ("Google Morphed"): kept, never scored.
    sample = sample.replace("3\tGoogle\t", "3-4\tGoogleMorphed\t_\t_\t_\t_\t_\t_\t_\t_\n3\tGoogle\t", 1)
    gold_path = tmp_path / "gold.conllu"
    gold_path.write_text(sample)
    gold = read_treebank(gold_path)
    rng = random.Random(0)
    blocks = []
    for sentence in gold:
        heads, rels = list(sentence.heads), list(sentence.deprels)
        for k in range(len(sentence)):
            roll = rng.random()
            if roll < 0.2:  # another head, as long as the output stays a tree (the scorer refuses cycles)
                for head in rng.sample(range(len(sentence) + 1), len(sentence) + 1):
                    if head != heads[k] and is_tree([0, *heads[:k], head, *heads[k + 1 :]]):
                        heads[k] = head
                        break
            elif roll < 0.35:
                rels[k] = "dep"  # wrong label
            elif roll < 0.5 and ":" not in rels[k]:
                rels[k] = rels[k] + ":extra"  # same universal relation: still right
            elif roll < 0.6 and ":" in rels[k]:
                rels[k] = rels[k].split(":")[0]  # nmod:poss -> nmod: still right
        blocks.append(format_sentence(sentence, heads, rels))
    system_path = write_treebank(tmp_path / "system.conllu", blocks)
    return gold_path, system_path


def test_uas_las_equal_an_independent_computation(files):
    gold_path, system_path = files
    scores = score_files(str(gold_path), str(system_path))
    uas, las = independent_scores(gold_path, system_path)
    assert scores.words == 7 + 23 + 9 + 13  # syntactic words only: no range line, no empty node 8.1
    assert scores.uas == pytest.approx(uas, abs=1e-12) and scores.las == pytest.approx(las, abs=1e-12)
    assert 0.5 < scores.las < scores.uas < 1.0  # the corruption shows in both


def test_excluding_punctuation_is_an_explicit_option_that_changes_the_count(files):
    gold_path, system_path = files
    included = score_files(str(gold_path), str(system_path), punct="include")
    excluded = score_files(str(gold_path), str(system_path), punct="exclude")
    uas, las = independent_scores(gold_path, system_path, exclude_punct=True)
    assert excluded.uas == pytest.approx(uas, abs=1e-12) and excluded.las == pytest.approx(las, abs=1e-12)
    assert included.words - excluded.words == 9  # the sample's PUNCT words


def test_gold_as_prediction_scores_one_and_complete_matches_count_sentences(fixtures_dir):
    gold = read_treebank(fixtures_dir / SAMPLE)
    perfect = attachment_scores(gold, [s.heads for s in gold], [s.deprels for s in gold])
    assert perfect.metrics() == {"uas": 1.0, "las": 1.0, "ucm": 1.0, "lcm": 1.0}
    # One wrong label in the first sentence: LCM drops by a quarter, UCM stays.
    rels = [list(s.deprels) for s in gold]
    rels[0][1] = "obj"
    scores = attachment_scores(gold, [s.heads for s in gold], rels)
    assert (scores.ucm, scores.lcm, scores.uas) == (1.0, 0.75, 1.0)
    assert scores.las == pytest.approx(51 / 52)


def test_the_relation_table_counts_universal_relations(fixtures_dir):
    gold = read_treebank(fixtures_dir / SAMPLE)
    rels = [list(s.deprels) for s in gold]
    rels[3][2] = "nsubj"  # nsubj:pass -> nsubj: right
    rels[3][11] = "nmod"  # advmod -> nmod: wrong
    scores = attachment_scores(gold, [s.heads for s in gold], rels)
    assert scores.relations["nsubj"].gold == 3 and scores.relations["nsubj"].correct == 3
    assert scores.relations["advmod"].gold == 4 and scores.relations["advmod"].correct == 3
    assert scores.relations["nmod"].predicted == scores.relations["nmod"].gold + 1
    table = scores.relation_table()
    assert table.splitlines()[0].split() == ["relation", "gold", "pred", "prec", "recall", "f1"]
    assert any(line.split()[:3] == ["advmod", "4", "3"] for line in table.splitlines())


def test_files_with_other_words_are_refused(files, tmp_path):
    gold_path, _ = files
    other = tmp_path / "other.conllu"
    other.write_text(gold_path.read_text().replace("\tGoogle\t", "\tGoogol\t", 1))
    with pytest.raises(DataError, match="need the gold tokenization"):
        score_files(str(gold_path), str(other))


def test_the_command_line_scorer_prints_uas_and_las(files, capsys):
    gold_path, system_path = files
    assert main([str(gold_path), str(system_path), "--relations"]) == 0
    out = capsys.readouterr().out
    scores = score_files(str(gold_path), str(system_path))
    assert f"UAS {100 * scores.uas:.2f}  LAS {100 * scores.las:.2f}" in out and "relation" in out
    assert main([str(gold_path), str(gold_path.parent / "missing.conllu")]) == 3


def test_a_system_file_with_a_cycle_is_refused_as_the_official_scorer_does(files, tmp_path):
    gold_path, _ = files
    text = gold_path.read_text().replace("2\tif\tif\tSCONJ\tIN\t_\t4\t", "2\tif\tif\tSCONJ\tIN\t_\t3\t", 1)
    text = text.replace(
        "3\tGoogle\tGoogle\tPROPN\tNNP\tNumber=Sing\t4\t",
        "3\tGoogle\tGoogle\tPROPN\tNNP\tNumber=Sing\t2\t",
        1,
    )
    cyclic = tmp_path / "cyclic.conllu"
    cyclic.write_text(text)
    with pytest.raises(DataError, match="cycle"):
        score_files(str(gold_path), str(cyclic))
