"""Translation task, fast: the loss and schedule against independent formulas, a CPU smoke run whose saved
hypotheses re-score to the logged BLEU, and a checkpoint of another vocabulary refused."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from litzoo.errors import CheckpointError
from litzoo.tasks.translation import InverseSqrtFactor, TranslationTask, label_smoothed_nll
from litzoo.text.subword_vocab import PAD

TINY_MODEL = {
    "_target_": "litzoo.models.translation.build_transformer",
    "d_model": 16,
    "heads": 2,
    "ffn_dim": 32,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "dropout": 0.0,
    "pre_norm": True,
}


def test_label_smoothing_equals_torch_cross_entropy_with_fairseqs_epsilon():
    # fairseq spreads epsilon over the V-1 other classes, torch over all V: eps_torch = eps * V / (V - 1).
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 11)
    target = torch.randint(4, 11, (3, 5))
    target[1, 3:] = PAD
    loss, nll = label_smoothed_nll(logits, target, 0.1)
    flat, labels = logits.view(-1, 11), target.view(-1)
    expected = F.cross_entropy(flat, labels, ignore_index=PAD, label_smoothing=0.1 * 11 / 10, reduction="sum")
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(nll, F.cross_entropy(flat, labels, ignore_index=PAD, reduction="sum"))


def test_inverse_sqrt_schedule_is_the_papers_formula():
    # Vaswani et al.: lr = d^-0.5 * min(step^-0.5, step * warmup^-1.5), peak d^-0.5 * warmup^-0.5 at warmup.
    d, warmup = 512, 4000
    peak = d**-0.5 * warmup**-0.5
    factor = InverseSqrtFactor(warmup)
    for step in (1, 7, 1000, 3999, 4000, 4001, 10_000, 100_000):
        paper = d**-0.5 * min(step**-0.5, step * warmup**-1.5)
        assert peak * factor(step) == pytest.approx(paper, rel=1e-12)
    assert round(peak, 6) == 0.000699  # conf/model/transformer_base.yaml's recipe lr 7.0e-4


def _task(fingerprint: str) -> TranslationTask:
    vocab = {"kind": "sentencepiece", "fingerprint": fingerprint}
    info = {
        "src_vocab_size": 40,
        "tgt_vocab_size": 40,
        "vocab": {"src": vocab, "tgt": vocab},
        "max_positions": 32,
    }
    return TranslationTask(
        model=TINY_MODEL, data_info=info, optim={"_target_": "torch.optim.AdamW", "lr": 1e-3}
    )


def test_a_checkpoint_of_another_vocabulary_is_refused():
    trained = _task("aaaa").state_dict()
    mine = _task("bbbb")
    checkpoint = {"state_dict": trained, "hyper_parameters": dict(_task("aaaa").hparams)}
    with pytest.raises(CheckpointError, match="another vocabulary .*data.vocab_from"):
        mine.on_load_checkpoint(checkpoint)
    _task("aaaa").on_load_checkpoint(checkpoint)  # its own vocabulary: accepted


def test_cpu_run_saves_hypotheses_that_rescore_to_the_logged_bleu(tmp_path):
    import sacrebleu

    from tests.conftest import FAST_RUN, run_in_process

    overrides = [
        "task=translation",
        *FAST_RUN,
        "trainer.limit_test_batches=null",
        "data.sizes={train: 600, valid: 20, test: 20}",
        "model.d_model=32",
        "model.heads=2",
        "model.ffn_dim=64",
        "model.encoder_layers=1",
        "model.decoder_layers=1",
        "task.beam_size=2",
        "task.max_len_b=3",
        f"paths.data_dir={tmp_path / 'data'}",
    ]
    code, record = run_in_process(overrides, tmp_path / "run")
    assert code == 0, record
    run = tmp_path / "run"
    hyps = (run / "hypotheses_test.txt").read_text(encoding="utf-8").splitlines()
    refs = (run / "references_test.txt").read_text(encoding="utf-8").splitlines()
    # The raw references, whole split, in the file's order (nothing tokenized, nothing left out).
    assert (
        refs == (tmp_path / "data" / "toy_translation" / "test.xx").read_text(encoding="utf-8").splitlines()
    )
    assert len(hyps) == 20
    rescored = sacrebleu.corpus_bleu(hyps, [refs])
    assert record["metrics"]["test/bleu"] == pytest.approx(rescored.score, abs=1e-4)
    assert record["metrics"]["test/chrf"] == pytest.approx(
        sacrebleu.corpus_chrf(hyps, [refs]).score, abs=1e-4
    )
    saved = json.loads((run / "sacrebleu_test.json").read_text())
    assert saved["sentences"] == 20 and saved["bleu_signature"].startswith(
        "nrefs:1|case:mixed|eff:no|tok:13a"
    )
    assert math.isclose(saved["bleu"], rescored.score, abs_tol=1e-9)
    # run.json says how its test BLEU was computed (TaskModule.record_fields)
    assert record["sacrebleu"] == saved
