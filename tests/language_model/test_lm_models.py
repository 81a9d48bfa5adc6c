"""AWD-LSTM's regularisers, the standard LSTM presets, GPT-2 from scratch and from a local checkpoint,
and the hidden state the task carries (detached) from one BPTT window to the next."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from litzoo.errors import ConfigError
from litzoo.models.language_model import (
    AWDLSTM,
    LockedDropout,
    create_causal_lm,
    create_lstm_lm,
    embedding_dropout,
    weight_dropped_lstm,
)
from litzoo.tasks.language_model import LanguageModelTask

VOCAB = 30
# The task's steps are called directly here, without a Trainer to log to.
pytestmark = pytest.mark.filterwarnings("ignore:You are trying to `self.log()`")


def test_weight_drop_runs_the_lstm_with_a_dropped_hidden_to_hidden_weight():
    torch.manual_seed(0)
    lstm, x = torch.nn.LSTM(4, 3), torch.randn(6, 2, 4)
    torch.manual_seed(5)
    out, _ = weight_dropped_lstm(lstm, x, None, p=0.5, training=True)
    torch.manual_seed(5)
    reference = copy.deepcopy(lstm)
    reference.weight_hh_l0.data = F.dropout(lstm.weight_hh_l0, 0.5, training=True).detach()
    assert torch.allclose(out, reference(x)[0])
    assert not torch.allclose(out, lstm(x)[0])
    out.sum().backward()
    assert (
        lstm.weight_hh_l0.grad is not None and lstm.weight_hh_l0.grad.abs().sum() > 0
    )  # trains the raw weight
    assert torch.equal(weight_dropped_lstm(lstm, x, None, p=0.5, training=False)[0], lstm(x)[0])
    assert isinstance(lstm.weight_hh_l0, torch.nn.Parameter)  # nothing re-registered on the module


def test_locked_dropout_shares_one_mask_over_time_and_embedding_dropout_drops_whole_words():
    torch.manual_seed(0)
    drop = LockedDropout().train()
    y = drop(torch.ones(9, 3, 8), 0.5)
    assert torch.equal(y, y[:1].expand_as(y)) and set(y.unique().tolist()) <= {0.0, 2.0}
    embedding = torch.nn.Embedding(10, 4)
    ids = torch.tensor([[1, 1, 2, 3, 1]]).t()
    out = embedding_dropout(embedding, ids, 0.5, training=True)
    rows_of_word_1 = out[ids[:, 0] == 1, 0]
    assert torch.equal(
        rows_of_word_1, rows_of_word_1[:1].expand_as(rows_of_word_1)
    )  # dropped everywhere or nowhere


def test_awd_lstm_ties_weights_and_returns_what_ar_tar_and_the_cache_need():
    model = AWDLSTM(VOCAB, embed_size=8, hidden_size=12, num_layers=3, tie_weights=True)
    assert model.decoder.weight is model.encoder.weight
    assert [rnn.hidden_size for rnn in model.rnns] == [12, 12, 8]  # the last layer is embed_size wide
    out = model(torch.randint(0, VOCAB, (5, 2)))
    assert out.logits.shape == (5, 2, VOCAB) and len(out.state) == 6 and out.hidden.shape == (5, 2, 8)
    assert not torch.equal(out.hidden, out.dropped)  # AR reads the dropped output, TAR the raw one
    model.eval()
    assert torch.equal(
        model(torch.zeros(3, 1, dtype=torch.long)).hidden, model(torch.zeros(3, 1, dtype=torch.long)).dropped
    )


def test_zaremba_presets_and_explicit_values():
    medium = create_lstm_lm(VOCAB, preset="medium")
    assert (medium.embed_size, medium.hidden_size, medium.rnn.num_layers, medium.drop.p) == (650, 650, 2, 0.5)
    custom = create_lstm_lm(VOCAB, preset="large", hidden_size=20, embed_size=20, tie_weights=True)
    assert (
        custom.hidden_size == 20 and custom.drop.p == 0.65 and custom.decoder.weight is custom.encoder.weight
    )
    assert float(create_lstm_lm(VOCAB, preset="small").encoder.weight.detach().abs().max()) <= 0.1
    with pytest.raises(ConfigError, match="preset"):
        create_lstm_lm(VOCAB, preset="huge")


def tiny_task(model: dict, **kwargs) -> LanguageModelTask:
    data_info = {
        "vocab_size": VOCAB,
        "encoding": {"kind": "word", "vocab_size": VOCAB, "fingerprint": "x"},
        "batching": "bptt",
        "bptt": 4,
    }
    return LanguageModelTask(
        model=model,
        data_info=data_info,
        optim={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 1.0},
        **kwargs,
    )


def test_the_hidden_state_is_carried_across_windows_and_detached():
    torch.manual_seed(0)
    task = tiny_task(
        {
            "_target_": "litzoo.models.language_model.create_lstm_lm",
            "preset": None,
            "embed_size": 6,
            "hidden_size": 6,
            "num_layers": 2,
        }
    )
    stream = torch.randint(0, VOCAB, (9, 2))
    first = {"inputs": stream[:4], "targets": stream[1:5], "start": torch.tensor(0)}
    second = {"inputs": stream[4:8], "targets": stream[5:9], "start": torch.tensor(4)}
    task.training_step(first, 0)
    carried = task._train_state
    assert all(s.grad_fn is None and not s.requires_grad for s in carried)  # truncated BPTT: no graph kept
    loss = task.training_step(second, 1)
    whole = task.net(stream[:8]).logits[4:]  # the second window's logits given the whole history
    expected = F.cross_entropy(whole.reshape(-1, VOCAB), stream[5:9].reshape(-1))
    assert torch.allclose(loss, expected, atol=1e-6)
    restart = dict(second, start=torch.tensor(0))  # a window at a stream's start begins from zeros
    fresh = F.cross_entropy(task.net(stream[4:8]).logits.reshape(-1, VOCAB), stream[5:9].reshape(-1))
    assert torch.allclose(task.training_step(restart, 2), fresh, atol=1e-6)


def test_ar_and_tar_are_added_to_the_loss():
    torch.manual_seed(0)
    model = {
        "_target_": "litzoo.models.language_model.create_awd_lstm",
        "embed_size": 6,
        "hidden_size": 6,
        "num_layers": 2,
        "dropout": 0.0,
        "dropout_h": 0.0,
        "dropout_i": 0.0,
        "dropout_e": 0.0,
        "weight_drop": 0.0,
    }
    plain, regularised = tiny_task(model), tiny_task(model, alpha=2.0, beta=1.0)
    regularised.load_state_dict(plain.state_dict())
    batch = {
        "inputs": torch.randint(0, VOCAB, (5, 3)),
        "targets": torch.randint(0, VOCAB, (5, 3)),
        "start": torch.tensor(0),
    }
    out = plain.net(batch["inputs"])
    extra = 2.0 * out.dropped.pow(2).mean() + 1.0 * (out.hidden[1:] - out.hidden[:-1]).pow(2).mean()
    assert torch.allclose(
        regularised.training_step(batch, 0), plain.training_step(batch, 0) + extra, atol=1e-6
    )


def test_gpt2_from_scratch_and_from_a_local_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = create_causal_lm(VOCAB, n_positions=16, n_embd=8, n_layer=1, n_head=2, dropout=0.0).eval()
    assert not model.stateful and model.context_size == 16
    ids = torch.randint(0, VOCAB, (7, 3))
    logits = model(ids).logits
    assert logits.shape == (7, 3, VOCAB)
    assert torch.allclose(logits[:, 1], model(ids[:, 1:2]).logits[:, 0], atol=1e-5)  # columns are independent
    model.model.save_pretrained(tmp_path / "ckpt")
    loaded = create_causal_lm(VOCAB, pretrained=str(tmp_path / "ckpt")).eval()
    assert torch.allclose(loaded(ids).logits, logits, atol=1e-6)
    with pytest.raises(ConfigError, match="embeds only"):
        create_causal_lm(VOCAB + 5, pretrained=str(tmp_path / "ckpt"))


def test_variable_bptt_scales_each_steps_learning_rate_by_its_length():
    data_info = {
        "vocab_size": VOCAB,
        "encoding": {"kind": "word", "vocab_size": VOCAB, "fingerprint": "x"},
        "batching": "bptt",
        "bptt": 10,
        "variable_bptt": True,
    }
    task = LanguageModelTask(
        model={"_target_": "litzoo.models.language_model.create_lstm_lm", "embed_size": 4, "hidden_size": 4},
        data_info=data_info,
        optim={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 30.0},
    )
    optimizer = torch.optim.SGD(task.parameters(), lr=30.0)
    seen = []

    def closure() -> None:
        seen.append(optimizer.param_groups[0]["lr"])

    for steps in (5, 10, 14):
        task.on_train_batch_start({"inputs": torch.zeros(steps, 2, dtype=torch.long)}, 0)
        task.optimizer_step(0, 0, optimizer, closure)
    assert seen == [15.0, 30.0, 42.0]  # lr x seq_len / bptt during the step (Merity et al.) ...
    assert optimizer.param_groups[0]["lr"] == 30.0  # ... and the schedule's own lr afterwards
