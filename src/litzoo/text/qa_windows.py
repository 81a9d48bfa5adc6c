"""Question + context -> the windows an extractive QA model reads, through a fast tokenizer's offsets.

A context longer than a window is cut into overlapping windows (Hugging Face ``run_qa`` semantics):
each window is ``[CLS] question [SEP] context piece [SEP]`` of at most ``max_seq_length`` tokens,
consecutive pieces share ``doc_stride`` context tokens (the original BERT ``run_squad.py`` called
its step between piece starts ``doc_stride``; the step here is ``room - doc_stride``), and questions
longer than ``max_query_length`` tokens are cut to that (as BERT and GluonNLP do).

Every window keeps, per token, the character span it covers in the *original* context (the fast
tokenizer's offset mapping; ``(-1, -1)`` for question, special and padding tokens), so an answer is
always a slice of the context text as given: accents, double spaces and newlines survive, however
the tokenizer normalises what it reads.

Training labels: the first token whose span contains the answer's first character and the last
token containing its last character; a window that does not hold the whole answer, and every
window of an unanswerable question, is labelled at ``[CLS]`` (index 0), as in BERT and ``run_qa``.

The tokenizer is passed in (a transformers fast tokenizer); this module imports only numpy.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from litzoo.errors import ConfigError

# Examples tokenized per call: the fast tokenizer parallelises within a call; chunks bound the memory.
CHUNK = 1000


@dataclass(frozen=True)
class WindowSettings:
    """How questions and contexts are cut into windows (the SQuAD settings by default)."""

    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64

    def check(self, tokenizer: Any) -> None:
        """Refuse settings the tokenizer cannot window (its own count of special tokens)."""
        special = int(tokenizer.num_special_tokens_to_add(pair=True))
        room = self.max_seq_length - self.max_query_length - special
        if room <= self.doc_stride:
            raise ConfigError(
                f"data.doc_stride={self.doc_stride} must be smaller than the {room} context tokens a window holds "
                f"(max_seq_length {self.max_seq_length} - max_query_length {self.max_query_length} - {special} "
                "special tokens of this tokenizer); lower doc_stride or raise max_seq_length."
            )


@dataclass
class Windows:
    """The windows of one split, column by column (one row per window, in example order).

    `offsets[w]` is ``[length, 2]`` (int32): each token's ``(start, end)`` characters in its
    example's context, ``(-1, -1)`` outside the context. `start_positions`/`end_positions` exist for
    labelled (training) windows.
    """

    input_ids: list[np.ndarray] = field(default_factory=list)
    token_type_ids: list[np.ndarray] | None = None
    offsets: list[np.ndarray] = field(default_factory=list)
    example_index: list[int] = field(default_factory=list)
    start_positions: list[int] | None = None
    end_positions: list[int] | None = None
    truncated_questions: int = 0
    lost_answers: int = 0  # answerable questions whose answer fits in none of their windows

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def sample(self, index: int, with_offsets: bool = True) -> dict[str, Any]:
        """Window `index` as the datamodule's samples are: numpy arrays and ints, unpadded."""
        ids = self.input_ids[index]
        row: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": np.ones(len(ids), dtype=np.int8),
            "example_index": self.example_index[index],
            "window_index": index,
        }
        if self.token_type_ids is not None:
            row["token_type_ids"] = self.token_type_ids[index]
        if with_offsets:
            row["offsets"] = self.offsets[index]
        if self.start_positions is not None and self.end_positions is not None:
            row["start_positions"] = self.start_positions[index]
            row["end_positions"] = self.end_positions[index]
        return row


def truncate_questions(
    tokenizer: Any, questions: Sequence[str], max_query_length: int
) -> tuple[list[str], int]:
    """Questions without leading whitespace (some SQuAD questions start with many spaces, which would
    eat a window's room), cut after their `max_query_length`-th token; and how many were cut."""
    stripped = [q.lstrip() for q in questions]
    encoded = tokenizer(stripped, add_special_tokens=False, return_offsets_mapping=True)
    out, cut = [], 0
    for text, offsets in zip(stripped, encoded["offset_mapping"]):
        if len(offsets) > max_query_length:
            text = text[: offsets[max_query_length - 1][1]]
            cut += 1
        out.append(text)
    return out, cut


def answer_token_span(
    offsets: Sequence[tuple[int, int]], sequence_ids: Sequence[int | None], start_char: int, end_char: int
) -> tuple[int, int] | None:
    """The window's (first, last) token covering characters ``[start_char, end_char)`` of the context, or
    None when the window does not hold the whole answer."""
    context = [i for i, s in enumerate(sequence_ids) if s == 1]
    if not context:
        return None
    first, last = context[0], context[-1]
    if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
        return None
    # The first token ending after the answer's start and the last one starting before its end: the
    # tokens containing its first and last characters (run_qa's loops, without stepping into [SEP]
    # when the answer is the window's last word, and skipping a space the answer may start with).
    start = next(t for t in context if offsets[t][1] > start_char)
    end = next(t for t in reversed(context) if offsets[t][0] < end_char)
    return (start, end) if start <= end else None


def _through_combining_marks(text: str, end: int) -> int:
    """`end` moved past combining marks (a decomposed "e" + U+0308): tokenizers that strip accents end
    the token's span before them, which would cut them off the answer text."""
    while end < len(text) and unicodedata.combining(text[end]):
        end += 1
    return end


def build_windows(
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    settings: WindowSettings,
    answers: Sequence[tuple[int, int] | None] | None = None,
) -> Windows:
    """The windows of every ``(questions[i], contexts[i])``, labelled when `answers` is given.

    `answers[i]` is the training answer's ``(start_char, end_char)`` in ``contexts[i]``, or None for an
    unanswerable question (every window labelled at [CLS]). Without `answers` (evaluation) windows
    carry no labels.
    """
    if len(questions) != len(contexts) or (answers is not None and len(answers) != len(questions)):
        raise ValueError("questions, contexts (and answers) must have one entry per example")
    settings.check(tokenizer)
    with_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
    windows = Windows(token_type_ids=[] if with_types else None)
    if answers is not None:
        windows.start_positions, windows.end_positions = [], []
    for begin in range(0, len(questions), CHUNK):
        chunk = range(begin, min(begin + CHUNK, len(questions)))
        asked, cut = truncate_questions(tokenizer, [questions[i] for i in chunk], settings.max_query_length)
        windows.truncated_questions += cut
        encoded = tokenizer(
            asked,
            [contexts[i] for i in chunk],
            truncation="only_second",
            max_length=settings.max_seq_length,
            stride=settings.doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=False,
        )
        found: dict[int, bool] = {}
        for w, local in enumerate(encoded["overflow_to_sample_mapping"]):
            example = begin + int(local)
            ids = encoded["input_ids"][w]
            sequence_ids = encoded.sequence_ids(w)
            offsets = np.full((len(ids), 2), -1, dtype=np.int32)
            context = contexts[example]
            for t, (s, span) in enumerate(zip(sequence_ids, encoded["offset_mapping"][w])):
                if s == 1:
                    offsets[t] = (span[0], _through_combining_marks(context, span[1]))
            windows.input_ids.append(np.asarray(ids, dtype=np.int32))
            if windows.token_type_ids is not None:
                windows.token_type_ids.append(np.asarray(encoded["token_type_ids"][w], dtype=np.int8))
            windows.offsets.append(offsets)
            windows.example_index.append(example)
            if answers is None:
                continue
            answer = answers[example]
            span = (
                None
                if answer is None
                else answer_token_span(encoded["offset_mapping"][w], sequence_ids, *answer)
            )
            if answer is not None:
                found[example] = found.get(example, False) or span is not None
            start, end = span if span is not None else (0, 0)
            windows.start_positions.append(start)  # type: ignore[union-attr]
            windows.end_positions.append(end)  # type: ignore[union-attr]
        windows.lost_answers += sum(not hit for hit in found.values())
    return windows
