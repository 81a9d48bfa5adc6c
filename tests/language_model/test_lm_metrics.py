"""Perplexity over a whole split, checked by hand and against torchmetrics; the neural cache against a plain loop."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.text import Perplexity

from litzoo.metrics.language_model import PerplexityMeter, cache_target_probabilities, token_nll


def test_perplexity_is_exp_of_total_nll_over_total_tokens_not_a_mean_of_batch_perplexities():
    meter = PerplexityMeter()
    batches = [(torch.tensor(12.0), 4), (torch.tensor(3.0), 1), (torch.tensor(50.0), 10)]
    for nll, count in batches:
        meter.update(nll, count)
    result = meter.compute()
    assert result["ppl"] == pytest.approx(math.exp(65.0 / 15))
    assert result["loss"] == pytest.approx(65.0 / 15) and result["tokens"] == 15
    mean_of_batches = sum(math.exp(n / c) for n, c in [(12, 4), (3, 1), (50, 10)]) / 3
    assert abs(result["ppl"] - mean_of_batches) > 1.0
    meter.reset()
    assert math.isnan(meter.compute()["ppl"])


def test_token_weighted_perplexity_matches_torchmetrics_over_uneven_masked_batches():
    torch.manual_seed(0)
    reference = Perplexity(ignore_index=-100)
    meter = PerplexityMeter()
    for steps in (7, 3, 11):
        logits = torch.randn(steps, 4, 50)
        targets = torch.randint(0, 50, (steps, 4))
        mask = torch.rand(steps, 4) > 0.3
        meter.update(*token_nll(logits, targets, mask))
        reference.update(logits.transpose(0, 1), targets.masked_fill(~mask, -100).t())
    assert meter.compute()["ppl"] == pytest.approx(float(reference.compute()), rel=1e-5)


def reference_cache(vocab_probs, hidden, targets, window, theta, lambdas):
    """The cache step by step over one stream (salesforce/awd-lstm-lm's pointer.py loop, batch 1),
    using whatever history there is (Grave et al.)."""
    history_h, history_y, out = [], [], []
    for t in range(hidden.shape[0]):
        p = vocab_probs[t]
        if history_h:
            keys, words = torch.stack(history_h[-window:]), torch.stack(history_y[-window:])
            attention = torch.softmax(theta * keys @ hidden[t], 0)
            p = (1 - lambdas) * p + lambdas * attention[words == targets[t]].sum()
        out.append(p)
        history_h.append(hidden[t])
        history_y.append(targets[t])
    return torch.stack(out)


def test_neural_cache_matches_a_step_by_step_loop_across_windows():
    torch.manual_seed(1)
    steps, hidden_size, window = 23, 5, 6
    hidden = torch.randn(steps, hidden_size)
    targets = torch.randint(0, 4, (steps,))
    vocab_probs = torch.rand(steps)
    expected = reference_cache(vocab_probs, hidden, targets, window, 0.662, 0.1279)
    history, got = None, []
    for start in range(0, steps, 5):  # BPTT windows of 5 carrying the cache
        chunk = slice(start, start + 5)
        mixed, history = cache_target_probabilities(
            vocab_probs[chunk, None],
            hidden[chunk, None],
            targets[chunk, None],
            history,
            window,
            0.662,
            0.1279,
        )
        got.append(mixed[:, 0])
    assert torch.allclose(torch.cat(got), expected, atol=1e-6)
    assert got[0][0] == vocab_probs[0]  # nothing cached yet: the model's own probability
    assert history[0].shape[0] == window  # the cache keeps the last `window` positions
