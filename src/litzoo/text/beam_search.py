"""Batched beam search and greedy decoding over any incremental decoder (fairseq's search, in one file).

The decoder is a ``step(tokens, state) -> (log_probs, state)`` function: `tokens` are the
``(N, t)`` prefixes generated so far (``N`` = sentences x beams, all the same length), `log_probs`
the ``(N, V)`` next-token log-probabilities and `state` whatever it caches (keys/values); a
``reorder(state, rows)`` function selects the rows that survive a step. Every sentence of the batch
and every beam advance together, one tensor operation per step.

Scores follow fairseq: a hypothesis ends when ``</s>`` is among the top `beam` candidates; its score
is the sum of log-probabilities (``</s>`` included) divided by ``length ** length_penalty`` (length
counting ``</s>``), or GNMT's ``((5 + length) / 6) ** length_penalty`` with ``length_penalty_kind="gnmt"``;
a sentence is done when it holds `beam` finished hypotheses, and at its ``max_len`` only ``</s>`` is
allowed. With ``beam=1`` the search is greedy decoding exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

Step = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]
Reorder = Callable[[Any, torch.Tensor], Any]


def length_penalty(length: int | float, alpha: float, kind: str = "fairseq") -> float:
    """The divisor of a finished hypothesis' summed log-probability."""
    if kind == "gnmt":
        return ((5.0 + length) / 6.0) ** alpha
    if kind == "fairseq":
        return float(length) ** alpha
    raise ValueError(f"length_penalty_kind must be fairseq or gnmt, got {kind!r}")


@torch.no_grad()
def greedy_search(
    step: Step,
    state: Any,
    batch_size: int,
    bos: int,
    eos: int,
    max_len: torch.Tensor,
    device: torch.device | None = None,
) -> list[list[int]]:
    """The most probable next token at every step until ``</s>`` or `max_len` tokens (per sentence)."""
    tokens = torch.full((batch_size, 1), bos, dtype=torch.long, device=device)
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)
    max_len = max_len.to(device)
    for t in range(int(max_len.max()) + 1):
        log_probs, state = step(tokens, state)
        forced = max_len <= t
        log_probs = log_probs.clone()
        log_probs[forced] = float("-inf")
        log_probs[forced, eos] = 0.0
        nxt = log_probs.argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
        tokens = torch.cat([tokens, nxt[:, None]], 1)
        done |= nxt == eos
        if bool(done.all()):
            break
    out = []
    for row in tokens[:, 1:].tolist():
        out.append(row[: row.index(eos)] if eos in row else row)
    return out


@torch.no_grad()
def beam_search(
    step: Step,
    reorder: Reorder,
    state: Any,
    batch_size: int,
    beam: int,
    bos: int,
    eos: int,
    max_len: torch.Tensor,
    alpha: float = 1.0,
    kind: str = "fairseq",
    device: torch.device | None = None,
) -> list[list[int]]:
    """The best finished hypothesis per sentence (without ``</s>``). `state` holds ``batch_size * beam``
    rows (each sentence's rows repeated `beam` times, sentence-major)."""
    n, k = batch_size, beam
    tokens = torch.full((n * k, 1), bos, dtype=torch.long, device=device)
    scores = torch.full((n, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # only the first beam is alive at the start
    max_len = max_len.to(device)
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(n)]
    done = [False] * n
    offsets = (torch.arange(n, device=device) * k)[:, None]
    for t in range(int(max_len.max()) + 1):
        log_probs, state = step(tokens, state)
        vocab = log_probs.size(-1)
        log_probs = log_probs.float().view(n, k, vocab).clone()
        forced = max_len <= t
        log_probs[forced] = float("-inf")
        log_probs[forced, :, eos] = 0.0
        candidates = (scores[:, :, None] + log_probs).view(n, k * vocab)
        top_scores, top_ids = candidates.topk(2 * k, dim=1)
        top_beams, top_tokens = top_ids // vocab, top_ids % vocab
        is_eos = (top_tokens == eos) & torch.isfinite(top_scores)
        # Finish the </s> candidates among the top k (fairseq), longest-first bookkeeping on the CPU.
        if bool(is_eos[:, :k].any()):
            for b, r in is_eos[:, :k].nonzero().tolist():
                if done[b] or len(finished[b]) >= k:
                    continue
                row = int(offsets[b, 0] + top_beams[b, r])
                hyp = tokens[row, 1:].tolist()
                norm = float(top_scores[b, r]) / length_penalty(len(hyp) + 1, alpha, kind)
                finished[b].append((norm, hyp))
        for b in range(n):
            if not done[b] and len(finished[b]) >= k:
                done[b] = True
        if all(done):
            break
        # The k best candidates that do not end carry on.
        alive_scores = top_scores.masked_fill(top_tokens == eos, float("-inf"))
        keep_scores, keep_pos = alive_scores.topk(k, dim=1)
        keep_beams = top_beams.gather(1, keep_pos)
        keep_tokens = top_tokens.gather(1, keep_pos)
        rows = (offsets + keep_beams).view(-1)
        tokens = torch.cat([tokens.index_select(0, rows), keep_tokens.view(-1, 1)], 1)
        scores = keep_scores
        state = reorder(state, rows)
    out = []
    for b in range(n):
        if not finished[b]:  # cannot happen with max_len forcing; kept for safety
            out.append(tokens[b * k, 1:].tolist())
            continue
        out.append(max(finished[b], key=lambda item: item[0])[1])
    return out
