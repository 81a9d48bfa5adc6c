"""The training vocabulary: the words kept (``min_count``, ``max_vocab_size``) with their counts.

Ids follow decreasing count, ties broken by the word, so the same corpus always gives the same
ids and the first ``k`` ids are the ``k`` most frequent words (what a top-k restriction of the
analogy search takes). The run directory keeps it as ``vocab.txt``, one ``word count`` line
per word in id order: word2vec's and fastText's ``-save-vocab`` format.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from litzoo.errors import CheckpointError, DataError

VOCAB_FILE = "vocab.txt"


class WordCounts:
    """Words in id order and how often each occurs in the corpus (after lower-casing, if asked).

    A plain class, not a dataclass: Hydra would turn a dataclass handed to `instantiate` into a
    config node, copying a million-word list into OmegaConf.
    """

    def __init__(self, words: list[str], counts: np.ndarray, lowercase: bool = False) -> None:
        self.words = list(words)
        self.counts = np.asarray(counts, dtype=np.int64)  # [len(words)]
        self.lowercase = bool(lowercase)
        if self.counts.shape != (len(self.words),):
            raise ValueError(
                f"{len(self.words)} words need {len(self.words)} counts, got shape {self.counts.shape}"
            )

    def __len__(self) -> int:
        return len(self.words)

    @property
    def total(self) -> int:
        """Tokens of the corpus that are vocabulary words (word2vec's ``train_words``)."""
        return int(self.counts.sum())

    @classmethod
    def from_counts(
        cls,
        surface: Counter,
        min_count: int,
        max_size: int | None = None,
        lowercase: bool = False,
        source: str = "the corpus",
    ) -> WordCounts:
        """The vocabulary of surface-form (bytes) counts from :func:`~.corpus.index_corpus`."""
        if min_count < 1:
            raise DataError(f"data.min_count={min_count}: give a count of at least 1.")
        merged: Counter = Counter()
        for token, count in surface.items():
            word = token.decode("utf-8", errors="replace")
            merged[word.lower() if lowercase else word] += count
        kept = sorted(
            ((w, c) for w, c in merged.items() if c >= min_count), key=lambda item: (-item[1], item[0])
        )
        if max_size is not None:
            kept = kept[: int(max_size)]
        if not kept:
            top = max(merged.values(), default=0)
            raise DataError(
                f"No token of {source} occurs at least data.min_count={min_count} times (the most frequent occurs "
                f"{top} time(s), over {sum(merged.values())} tokens), so there is no word to train. Lower "
                f"data.min_count (e.g. data.min_count={max(top, 1)}) or give a larger corpus."
            )
        return cls([w for w, _ in kept], np.array([c for _, c in kept], dtype=np.int64), lowercase)

    def surface_lookup(self, surface: Counter) -> dict[bytes, int]:
        """Token bytes as they appear in the corpus -> word id, for every surface form of a kept word."""
        ids = {word: i for i, word in enumerate(self.words)}
        lookup: dict[bytes, int] = {}
        for token in surface:
            word = token.decode("utf-8", errors="replace")
            found = ids.get(word.lower() if self.lowercase else word)
            if found is not None:
                lookup[token] = found
        return lookup

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as out:
            for word, count in zip(self.words, self.counts.tolist()):
                out.write(f"{word} {count}\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, lowercase: bool = False) -> WordCounts:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(
                f"{path} not found: the run directory lacks the vocabulary its model was trained with. Give the "
                "run directory of a task=word_embedding run (it writes vocab.txt at the start of training)."
            )
        words, counts = [], []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit():
                raise CheckpointError(f"{path}, line {number}: expected `word count`, found {line[:60]!r}.")
            words.append(parts[0])
            counts.append(int(parts[1]))
        if not words:
            raise CheckpointError(
                f"{path} is empty; it should list the vocabulary, one `word count` per line."
            )
        return cls(words, np.array(counts, dtype=np.int64), lowercase)
