"""Translation family, fast: readers and their errors, subword round trip, beam search, sacreBLEU."""

from __future__ import annotations

import math

import pytest
import torch

from litzoo.datamodules.translation.layouts import check_parallel_text
from litzoo.datamodules.translation.readers import read_parallel, read_tsv
from litzoo.datamodules.translation.synthetic import ensure_synthetic_pairs
from litzoo.errors import DataError
from litzoo.metrics.bleu import CorpusBleu
from litzoo.models.translation import TransformerSeq2Seq
from litzoo.text.beam_search import beam_search, greedy_search, length_penalty
from litzoo.text.subword_vocab import BOS, EOS, SubwordVocab


def test_line_count_mismatch_names_both_files_and_counts(tmp_path):
    (tmp_path / "train.en").write_text("a\nb\nc\n")
    (tmp_path / "train.es").write_text("x\ny\n")
    with pytest.raises(DataError) as error:
        read_parallel(tmp_path / "train.en", tmp_path / "train.es")
    message = str(error.value)
    assert "train.en has 3 lines" in message and "train.es has 2" in message
    data = {"root": str(tmp_path), "src_lang": "en", "tgt_lang": "es", "train_prefix": "train"}
    with pytest.raises(DataError, match="has 3 lines but .* has 2"):
        check_parallel_text(data)


def test_empty_lines_skipped_and_counted_or_refused(tmp_path):
    (tmp_path / "s").write_text("one\n\nthree\nfour\n")
    (tmp_path / "t").write_text("uno\ndos\n \ncuatro\n")
    text = read_parallel(tmp_path / "s", tmp_path / "t")
    assert text.source == ["one", "four"] and text.target == ["uno", "cuatro"]
    assert text.skipped_empty == 2 and text.skipped_lines == [2, 3]
    with pytest.raises(DataError, match="line 2 is empty on the source side"):
        read_parallel(tmp_path / "s", tmp_path / "t", empty_lines="error")


def test_tsv_reader(tmp_path):
    (tmp_path / "p.tsv").write_text("src\ttgt\nHello.\tHola.\nBye.\tAdiós.\n")
    text = read_tsv(tmp_path / "p.tsv", header=True)
    assert text.source == ["Hello.", "Bye."] and text.target == ["Hola.", "Adiós."]


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    root = ensure_synthetic_pairs(tmp_path_factory.mktemp("pairs"), {"train": 800, "valid": 10, "test": 10})
    lines = (root / "train.en").read_text().splitlines() + (root / "train.xx").read_text().splitlines()
    return SubwordVocab.train(lines, 300, "bpe"), root


def test_subword_round_trip_and_reload(vocab, tmp_path):
    spm, root = vocab
    for line in (root / "valid.xx").read_text().splitlines() + (root / "valid.en").read_text().splitlines():
        assert spm.decode(spm.encode(line)) == line
    copy = SubwordVocab.load(spm.save(tmp_path / "spm.model"))
    assert copy.fingerprint == spm.fingerprint and copy.encode("The dog.") == spm.encode("The dog.")
    assert SubwordVocab.train(["a b c"] * 5 + ["d e"] * 3, 12).fingerprint != spm.fingerprint


def test_length_penalty_arithmetic():
    assert length_penalty(4, 1.0) == 4.0
    assert length_penalty(9, 0.5) == 3.0
    assert length_penalty(7, 1.0, "gnmt") == pytest.approx(2.0)
    assert length_penalty(7, 0.0, "gnmt") == 1.0


def _markov_step(table: torch.Tensor):
    """A decoder whose next-token distribution depends only on the last token."""

    def step(tokens, state):
        return table[tokens[:, -1]].log(), state

    return step


def test_beam_search_finds_the_known_best_sequence_greedy_misses():
    v = 6  # 0 pad, 1 unk, 2 bos, 3 eos, 4 a, 5 b
    table = torch.full((v, v), 1e-9)
    table[BOS, 4], table[BOS, 5] = 0.6, 0.4  # greedy takes a ...
    table[4, 3], table[4, 4], table[4, 5] = 0.34, 0.33, 0.33  # ... whose best ending is 0.6 * 0.34 = 0.204
    table[5, 3] = 0.9  # b </s>: 0.36, the best sequence
    table[:, :] /= table.sum(1, keepdim=True)
    max_len = torch.tensor([5])
    assert greedy_search(_markov_step(table), None, 1, BOS, EOS, max_len) == [[4]]
    found = beam_search(_markov_step(table), lambda s, r: s, None, 1, 2, BOS, EOS, max_len, alpha=0.0)
    assert found == [[5]]


def test_length_penalty_changes_the_choice():
    v = 6
    table = torch.full((v, v), 1e-9)
    table[BOS, 3], table[BOS, 4] = 0.5, 0.5  # empty output: log 0.5 over length 1
    table[4, 4], table[4, 3] = 0.1, 0.9  # "a </s>": log 0.45 over length 2
    table /= table.sum(1, keepdim=True)

    def run(alpha: float) -> list[list[int]]:
        step = _markov_step(table)
        return beam_search(step, lambda s, r: s, None, 1, 2, BOS, EOS, torch.tensor([4]), alpha=alpha)

    assert run(0.0) == [[]]  # log 0.5 > log 0.45
    assert run(1.0) == [[4]]  # log(0.45) / 2 > log(0.5) / 1


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = TransformerSeq2Seq(
        40,
        40,
        d_model=32,
        heads=4,
        ffn_dim=64,
        encoder_layers=2,
        decoder_layers=2,
        dropout=0.0,
        max_positions=64,
    ).eval()
    src = torch.randint(4, 40, (5, 9))
    src[3, 6:] = 0
    return net, src


def test_cached_decoding_equals_full_decoding(model):
    net, src = model
    tokens = torch.cat([torch.full((5, 1), BOS), torch.randint(4, 40, (5, 6))], 1)
    full = torch.log_softmax(net(src, tokens), -1)
    state = net.start_state(src)
    for t in range(tokens.size(1)):
        step, state = net.step(tokens[:, : t + 1], state)
        torch.testing.assert_close(step, full[:, t], atol=1e-5, rtol=1e-5)


def test_beam_one_equals_greedy_and_batched_equals_one_by_one(model):
    net, src = model
    max_len = torch.full((5,), 12)
    greedy = greedy_search(net.step, net.start_state(src), 5, BOS, EOS, max_len)
    beam1 = beam_search(net.step, net.reorder, net.start_state(src, 1), 5, 1, BOS, EOS, max_len)
    assert beam1 == greedy
    batched = beam_search(net.step, net.reorder, net.start_state(src, 4), 5, 4, BOS, EOS, max_len)
    for i in range(5):
        row = src[i : i + 1]
        row = row[:, : int((row != 0).sum())]
        alone = beam_search(net.step, net.reorder, net.start_state(row, 4), 1, 4, BOS, EOS, max_len[:1])
        assert alone[0] == batched[i]


def test_bleu_equals_sacrebleu_and_counts_each_sentence_once():
    import sacrebleu

    hyps = ["The cat sat on the mat.", "A dog barked loudly!", "Nothing here."]
    refs = ["The cat sat on the mat.", "The dog barked loudly.", "Something else entirely."]
    metric = CorpusBleu("test")
    metric.update([2, 0], [hyps[2], hyps[0]], [refs[2], refs[0]])
    metric.update([1, 0], [hyps[1], hyps[0]], [refs[1], refs[0]])  # index 0 again (an evenly split repeat)
    result = metric.compute()
    expected = sacrebleu.corpus_bleu(hyps, [refs])
    assert result["bleu"] == pytest.approx(expected.score, abs=1e-12)
    assert result["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score, abs=1e-12)
    assert result["hypotheses"] == hyps and result["sentences"] == 3
    assert result["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert not math.isnan(result["bleu"])
