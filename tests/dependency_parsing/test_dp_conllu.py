"""CoNLL-U / CoNLL-X reading and writing: the real UD sample round-trips byte for byte; bad lines are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from litzoo.errors import DataError
from litzoo.text.conllu import (
    format_sentence,
    parse_treebank,
    read_treebank,
    sentence_from_tokens,
    universal_relation,
    write_treebank,
)

SAMPLE = Path("real") / "UD" / "en_ewt-ud-sample.conllu"
WORD = "{id}\t{form}\t_\tNOUN\tNN\t_\t{head}\t{rel}\t_\t_"


def block(*rows: tuple[int | str, str, int | str, str]) -> str:
    return "\n".join(WORD.format(id=i, form=f, head=h, rel=r) for i, f, h, r in rows) + "\n\n"


def test_the_real_ud_sample_reads_into_words_without_ranges_or_empty_nodes(fixtures_dir):
    sentences = read_treebank(fixtures_dir / SAMPLE)
    assert [len(s) for s in sentences] == [7, 23, 9, 13]
    last = sentences[3]
    assert [w.id for w in last.words] == list(range(1, 14))  # the empty node 8.1 is not a word
    assert any(line.startswith("8.1\t") for line in last.lines)  # ... but it is kept
    assert last.words[2].deprel == "nsubj:pass" and last.words[2].head == 5
    assert last.sent_id == "weblog-blogspot.com_healingiraq_20040409053012_ENG_20040409_053012-0022"
    assert sentences[0].comments[0].startswith("# newdoc id = weblog-blogspot.com_zentelligence")
    assert sentences[0].words[0].upos == "PRON" and sentences[0].words[0].xpos == "WP"


def test_the_real_ud_sample_round_trips_byte_for_byte(fixtures_dir, tmp_path):
    source = fixtures_dir / SAMPLE
    sentences = read_treebank(source)
    written = write_treebank(tmp_path / "copy.conllu", (format_sentence(s) for s in sentences))
    assert written.read_bytes() == source.read_bytes()
    # Writing the gold trees as predictions changes nothing either.
    again = write_treebank(
        tmp_path / "again.conllu", (format_sentence(s, s.heads, s.deprels) for s in sentences)
    )
    assert again.read_bytes() == source.read_bytes()


def test_predicted_trees_replace_head_and_deprel_and_nothing_else(fixtures_dir):
    sentence = read_treebank(fixtures_dir / SAMPLE)[3]
    heads = [0] + [1] * (len(sentence) - 1)
    rels = ["root"] + ["dep"] * (len(sentence) - 1)
    written = format_sentence(sentence, heads, rels).rstrip("\n").split("\n")
    assert len(written) == len(sentence.lines)
    for old, new in zip(sentence.lines, written):
        old_columns, new_columns = old.split("\t"), new.split("\t")
        if old.startswith("#") or "." in old_columns[0] or "-" in old_columns[0]:
            assert new == old  # comments, ranges and empty nodes untouched
            continue
        position = int(old_columns[0]) - 1
        assert new_columns[6:8] == [str(heads[position]), rels[position]]
        assert new_columns[:6] == old_columns[:6] and new_columns[8:] == old_columns[8:]
    reread = list(parse_treebank("\n".join(written) + "\n\n"))[0]
    assert reread.heads == heads and reread.deprels == rels


def test_multiword_token_ranges_are_kept_and_skipped():
    text = (
        "# text = don't go\n1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
        + WORD.format(id=1, form="do", head=3, rel="aux")
        + "\n"
        + WORD.format(id=2, form="n't", head=3, rel="advmod")
        + "\n"
        + WORD.format(id=3, form="go", head=0, rel="root")
        + "\n\n"
    )
    (sentence,) = parse_treebank(text)
    assert sentence.forms == ["do", "n't", "go"] and sentence.heads == [3, 3, 0]
    assert format_sentence(sentence) == text


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("1\tdog\t_\tNOUN\tNN\t_\t0\troot\t_\n\n", 1, "9 column(s) instead of 10"),
        ("1 dog _ NOUN NN _ 0 root _ _\n\n", 1, "separated by tabs"),
        (
            block((1, "a", 0, "root"), (2, "b", 5, "dep")),
            2,
            "HEAD 5 points outside the sentence, which has 2 words",
        ),
        (block((1, "a", 0, "root"), (2, "b", 3, "dep"), (3, "c", 2, "dep")), 2, "cycle (2 -> 3 -> 2)"),
        (block((1, "a", 0, "root"), (3, "b", 1, "dep")), 2, "word ID 3 where 2 was expected"),
        (block((1, "a", 0, "root"), (2, "b", "x", "dep")), 2, "HEAD 'x' is not a word number"),
        (block((1, "a", 0, "root"), (2, "b", 2, "dep")), 2, "its own head"),
        (block((1, "a", 0, "root"), (2, "b", "_", "dep")), 2, "HEAD is `_`"),
        ("# only a comment\n\n" + block((1, "a", 0, "root")), 1, "without any word line"),
    ],
)
def test_bad_lines_are_refused_with_file_line_and_fix(text, line, fragment, tmp_path):
    path = tmp_path / "bad.conllu"
    path.write_text("# sent_id = 1\n" + block((1, "ok", 0, "root")) + text)
    with pytest.raises(DataError) as error:
        read_treebank(path)
    message = str(error.value)
    assert f"{path}, line {line + 3}:" in message and fragment in message and "Fix:" in message


def test_prediction_input_may_lack_trees_but_not_valid_columns():
    text = "1\tthe\t_\t_\t_\t_\t_\t_\t_\t_\n2\tdog\t_\t_\t_\t_\t_\t_\t_\t_\n\n"
    (sentence,) = parse_treebank(text, require_tree=False)
    assert sentence.heads == [None, None] and not sentence.has_tree
    with pytest.raises(DataError, match="line 1: HEAD is `_`"):
        list(parse_treebank(text))


def test_conllx_reads_cpostag_and_postag_and_refuses_ud_ids():
    text = "1\tThe\tthe\tDT\tDT\t_\t2\tdet\t_\t_\n2\tdog\tdog\tNN\tNN\t_\t0\troot\t_\t_\n\n"
    (sentence,) = parse_treebank(text, fmt="conllx")
    assert [w.upos for w in sentence.words] == ["DT", "NN"] and sentence.deprels == ["det", "root"]
    with pytest.raises(DataError, match="use fmt=conllu for UD files"):
        list(parse_treebank("1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n" + text, fmt="conllx"))


def test_raw_tokens_become_a_valid_conllu_sentence():
    sentence = sentence_from_tokens(["The", "dog", "barked", "."])
    text = format_sentence(sentence, [2, 3, 0, 3], ["det", "nsubj", "root", "punct"])
    (reread,) = parse_treebank(text)
    assert reread.forms == ["The", "dog", "barked", "."] and reread.heads == [2, 3, 0, 3]
    assert "# text = The dog barked ." in text


def test_multiple_blank_lines_and_crlf_are_tolerated():
    text = "1\ta\t_\t_\t_\t_\t0\troot\t_\t_\r\n\r\n\r\n1\tb\t_\t_\t_\t_\t0\troot\t_\t_\r\n"
    assert [s.forms for s in parse_treebank(text)] == [["a"], ["b"]]


def test_universal_relation_drops_the_subtype():
    assert universal_relation("nsubj:pass") == "nsubj" and universal_relation("obl") == "obl"


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "out.conllu"
    path.write_text("old")

    def blocks():
        yield "1\ta\t_\t_\t_\t_\t0\troot\t_\t_\n\n"
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_treebank(path, blocks())
    assert path.read_text() == "old" and list(tmp_path.iterdir()) == [path]
