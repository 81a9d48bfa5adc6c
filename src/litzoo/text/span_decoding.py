"""From start/end logits to answers: n-best spans per window, merged over all windows of a question.

The decoding of Hugging Face's ``postprocess_qa_predictions`` (and BERT's ``run_squad.py``):

1. per window, the `n_best_size` highest start logits and end logits among its tokens; every pair
   with both tokens in the context, ``end >= start`` and at most `max_answer_length` tokens is a
   candidate scored ``start_logit + end_logit``; its answer is the context *text* between the
   start token's first and the end token's last character (`offsets`), so it is a slice of the
   original context;
2. per question, the n best candidates over all its windows; the null score is the smallest
   ``start_logit[CLS] + end_logit[CLS]`` over its windows (``[CLS]`` is token 0);
3. SQuAD 2.0: ``null_odds = null_score - best_score``; the question is answered "no answer" when
   ``null_odds > threshold`` (``null_odds.json`` holds these values, in the official "na_prob" role).

Step 1 runs per batch on the model's device (:func:`window_candidates`) and keeps only plain
numbers, so windows of one question may be decoded on different DDP ranks and merged anywhere
(:func:`decide`); the result does not depend on how windows were batched or padded, because top-k
only looks at a window's real tokens. Ties are broken by character position, so the merge is
order-independent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch

# (score, start_char, end_char): one candidate answer of a window.
Candidate = tuple[float, int, int]


@dataclass
class WindowCandidates:
    """What one window contributes to its question's answer."""

    null_score: float
    candidates: list[Candidate]


@dataclass
class Answer:
    """The decision for one question: `text` ("" = no answer), the best non-null span and its odds."""

    text: str
    best_text: str
    best_score: float
    best_start: int  # the best span's first character in the context (-1: no valid span)
    null_score: float | None
    null_odds: float | None  # SQuAD 2.0 only
    nbest: list[dict[str, float | str]] = field(default_factory=list)

    @property
    def is_null(self) -> bool:
        return self.text == ""


@torch.no_grad()
def window_candidates(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    offsets: torch.Tensor,
    attention_mask: torch.Tensor,
    n_best_size: int = 20,
    max_answer_length: int = 30,
) -> list[WindowCandidates]:
    """The n-best candidate spans of each window of a batch (``[B, L]`` logits, ``[B, L, 2]`` offsets with
    -1 outside the context, ``[B, L]`` attention mask)."""
    start, end = start_logits.float(), end_logits.float()
    batch, length = start.shape
    real = attention_mask.bool()
    k = min(int(n_best_size), length)
    start_values, start_index = start.masked_fill(~real, -math.inf).topk(k, dim=1)
    end_values, end_index = end.masked_fill(~real, -math.inf).topk(k, dim=1)
    in_context = offsets[..., 0] >= 0
    start_ok = in_context.gather(1, start_index) & torch.isfinite(start_values)
    end_ok = in_context.gather(1, end_index) & torch.isfinite(end_values)
    span = end_index[:, None, :] - start_index[:, :, None] + 1  # [B, k(start), k(end)]
    valid = start_ok[:, :, None] & end_ok[:, None, :] & (span >= 1) & (span <= int(max_answer_length))
    scores = (
        (start_values[:, :, None] + end_values[:, None, :]).masked_fill(~valid, -math.inf).reshape(batch, -1)
    )
    top_scores, top = scores.topk(min(int(n_best_size), k * k), dim=1)
    start_char = offsets[..., 0].gather(1, start_index)  # [B, k]
    end_char = offsets[..., 1].gather(1, end_index)
    null = (start[:, 0] + end[:, 0]).tolist()
    top_scores_list, top_list = top_scores.tolist(), top.tolist()
    start_char_list, end_char_list = start_char.tolist(), end_char.tolist()
    out = []
    for b in range(batch):
        kept = []
        for score, flat in zip(top_scores_list[b], top_list[b]):
            if score == -math.inf:
                break
            s, e = divmod(flat, k)
            kept.append((score, int(start_char_list[b][s]), int(end_char_list[b][e])))
        out.append(WindowCandidates(float(null[b]), kept))
    return out


def _softmax(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def decide(
    context: str,
    windows: Iterable[WindowCandidates],
    n_best_size: int = 20,
    with_null: bool = False,
    threshold: float = 0.0,
) -> Answer:
    """The answer to one question from the candidates of all its windows (see the module docstring).

    Without a valid span in any window the best non-null answer is empty text scored 0 (run_qa's
    "empty" placeholder). `with_null` (SQuAD 2.0) adds the null score, the odds and the threshold.
    """
    windows = list(windows)
    if not windows:
        raise ValueError("a question needs at least one window")
    ranked = sorted((c for w in windows for c in w.candidates), key=lambda c: (-c[0], c[1], c[2]))[
        :n_best_size
    ]
    best_score, best_start, best_text = (
        (ranked[0][0], ranked[0][1], context[ranked[0][1] : ranked[0][2]]) if ranked else (0.0, -1, "")
    )
    entries: list[tuple[str, float]] = [(context[s:e], score) for score, s, e in ranked] or [("", 0.0)]
    null_score = null_odds = None
    text = best_text
    if with_null:
        null_score = min(w.null_score for w in windows)
        null_odds = null_score - best_score
        text = "" if null_odds > threshold else best_text
        entries = sorted([*entries, ("", null_score)], key=lambda entry: -entry[1])
    probabilities = _softmax([score for _, score in entries])
    nbest = [{"text": t, "score": s, "probability": p} for (t, s), p in zip(entries, probabilities)]
    return Answer(text, best_text, best_score, best_start, null_score, null_odds, nbest)
