"""Turning text into ids: a word tokenizer + `Vocab` for textCNN, a Hugging Face fast tokenizer for encoders.

Both encoders truncate to `max_length` instead of failing, and count how many
texts were cut (`TruncationStats`), so the platform can log e.g. "412 of 25,000
texts (1.6%) truncated to 256 tokens".

Pairs: the word encoder joins the two texts as `a <sep> b` (textCNN has no
notion of segments); the HF encoder passes them as a pair so the checkpoint's
own template applies (`[CLS] a [SEP] b [SEP]` with token type ids for BERT).
When a pair is too long, tokens are removed from the longer text first, as
`truncation="longest_first"` does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litzoo.errors import ConfigError, DataError
from litzoo.text.examples import TextExample
from litzoo.text.vocab import SEP_TOKEN, Vocab

# Numbers with decimals stay whole ("1.2891"), words keep inner apostrophes and hyphens
# ("long-term", "don't"), PTB-split clitics stay one token ("'s", "n't"), any other
# non-space character is a token of its own so punctuation and emoji are kept.
_WORD_PATTERN = re.compile(r"\d+(?:[.,]\d+)*|n't|'\w+|\w+(?:[-']\w+)*|[^\w\s]")


class WordTokenizer:
    """Deterministic rule-based word tokenizer (lower-cases by default) for textCNN vocabularies."""

    def __init__(self, lowercase: bool = True) -> None:
        self.lowercase = lowercase

    def __call__(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        return _WORD_PATTERN.findall(text)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "word", "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WordTokenizer:
        return cls(lowercase=bool(data.get("lowercase", True)))

    def __repr__(self) -> str:
        return f"WordTokenizer(lowercase={self.lowercase})"


@dataclass
class TruncationStats:
    """How many texts (or pairs) an encoder saw and how many it had to truncate."""

    total: int = 0
    truncated: int = 0

    def add(self, was_truncated: bool) -> None:
        self.total += 1
        self.truncated += int(was_truncated)

    @property
    def rate(self) -> float:
        return self.truncated / self.total if self.total else 0.0

    def describe(self, max_length: int | None) -> str:
        return f"{self.truncated} of {self.total} texts ({100 * self.rate:.1f}%) truncated to {max_length} tokens"


def _check_max_length(max_length: int | None, minimum: int) -> None:
    if max_length is not None and max_length < minimum:
        raise ConfigError(f"max_length={max_length} is too small; it must be at least {minimum}.")


def _truncate_pair(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Lengths after "longest_first" truncation to `len_a + len_b <= budget`.

    Same rule as the Hugging Face (Rust) tokenizers, so both encoders cut pairs
    alike: the longer text shrinks to what the shorter leaves free, and when
    both must shrink the budget is split in half (the longer text gets the odd token).
    """
    if len_a + len_b <= budget:
        return len_a, len_b
    short, long = sorted((len_a, len_b))
    long = max(short, budget - short) if short <= budget else short
    if short + long > budget:
        short = budget // 2
        long = budget - short
    return (long, short) if len_a > len_b else (short, long)


class VocabEncoder:
    """Text(s) -> vocabulary ids with the word tokenizer; pairs become `a <sep> b`."""

    def __init__(
        self, vocab: Vocab, tokenizer: WordTokenizer | None = None, max_length: int | None = None
    ) -> None:
        _check_max_length(max_length, 1)
        self.vocab = vocab
        self.tokenizer = tokenizer or WordTokenizer()
        self.max_length = max_length
        self.stats = TruncationStats()

    def encode(self, text_a: str, text_b: str | None = None) -> list[int]:
        tokens_a = self.tokenizer(text_a)
        if text_b is None:
            truncated = self.max_length is not None and len(tokens_a) > self.max_length
            if truncated:
                tokens_a = tokens_a[: self.max_length]
            self.stats.add(truncated)
            return self.vocab.encode(tokens_a)
        sep = self.vocab.sep_id
        if sep is None:
            raise ConfigError(
                f"The vocabulary has no {SEP_TOKEN} token, so it cannot encode sentence pairs; "
                f"build it with extra_specials=('{SEP_TOKEN}',)."
            )
        tokens_b = self.tokenizer(text_b)
        len_a, len_b = len(tokens_a), len(tokens_b)
        if self.max_length is not None:
            _check_max_length(self.max_length, 3)
            len_a, len_b = _truncate_pair(len_a, len_b, self.max_length - 1)
        self.stats.add((len_a, len_b) != (len(tokens_a), len(tokens_b)))
        return self.vocab.encode(tokens_a[:len_a]) + [sep] + self.vocab.encode(tokens_b[:len_b])

    def encode_examples(self, examples: Sequence[TextExample]) -> list[list[int]]:
        return [self.encode(example.text_a, example.text_b) for example in examples]


class HFTextEncoder:
    """Text(s) -> model inputs with a Hugging Face *fast* tokenizer, truncating to `max_length`.

    Returns unpadded per-example dicts (`input_ids`, `attention_mask`, and
    `token_type_ids` when the tokenizer makes them); padding is the batchify step's job.
    """

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError(
                f"{type(tokenizer).__name__} is not a fast (Rust) tokenizer. litzoo needs the fast tokenizer "
                "of the checkpoint (a tokenizer.json file or a vocabulary transformers can convert); load it "
                "with AutoTokenizer.from_pretrained(path, use_fast=True)."
            )
        _check_max_length(max_length, tokenizer.num_special_tokens_to_add(pair=True) + 2)
        limit = getattr(tokenizer, "model_max_length", None)
        if isinstance(limit, int) and limit < 1_000_000 and max_length > limit:
            raise ConfigError(
                f"max_length={max_length} exceeds the tokenizer's model_max_length={limit}; the model has no "
                f"position embeddings beyond that. Set data.max_length <= {limit}."
            )
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.stats = TruncationStats()

    @classmethod
    def from_pretrained(cls, path: str | Path, max_length: int) -> HFTextEncoder:
        """Load the fast tokenizer stored in a local checkpoint directory."""
        from litzoo.text.pretrained import load_tokenizer

        return cls(load_tokenizer(path), max_length)

    def encode_examples(
        self, examples: Sequence[TextExample], batch_size: int = 1024
    ) -> list[dict[str, list[int]]]:
        if not examples:
            return []
        pair_flags = {example.text_b is not None for example in examples}
        if len(pair_flags) > 1:
            raise DataError(
                "Some examples have a second text and some do not; a split must be all single "
                "texts or all pairs. Check the text_pair_column of the data config."
            )
        is_pair = pair_flags.pop()
        out: list[dict[str, list[int]]] = []
        for start in range(0, len(examples), batch_size):
            chunk = examples[start : start + batch_size]
            first = [example.text_a for example in chunk]
            second = [example.text_b for example in chunk] if is_pair else None
            out.extend(self._encode_batch(first, second))
        return out

    def encode(self, text_a: str, text_b: str | None = None) -> dict[str, list[int]]:
        return self._encode_batch([text_a], None if text_b is None else [text_b])[0]

    def _encode_batch(self, first: list[str], second: list[str] | None) -> list[dict[str, list[int]]]:
        batch = self.tokenizer(
            first, second, truncation="longest_first", max_length=self.max_length, padding=False
        )
        keys = [key for key in ("input_ids", "token_type_ids", "attention_mask") if key in batch]
        results = []
        for i, encoding in enumerate(batch.encodings):
            # The Rust tokenizer keeps what truncation removed in `overflowing`: non-empty means cut.
            self.stats.add(bool(encoding.overflowing))
            results.append({key: batch[key][i] for key in keys})
        return results
