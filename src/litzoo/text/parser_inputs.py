"""What a dependency parser reads: vocabularies of words, characters, tags and relations, and the
per-sentence arrays built from them (for training, evaluation and prediction alike).

:class:`ParserVocab` is built from the training sentences only and saved into the run directory
(`parser_vocab.json`), so evaluation and prediction map words to the ids training used. Index
layout per vocabulary: `<pad>` = 0, `<unk>` = 1, `<root>` = 2 (the artificial root word every
sentence starts with), then the tokens by decreasing frequency (`litzoo.text.vocab.Vocab`).
Relations have no specials: id `k` is `relations[k]`, as the label scorer outputs them.

:meth:`ParserVocab.encode` gives one sentence as numpy arrays of length ``n + 1`` (the root
first): `words`, `chars` (``[n + 1, max_word_length]``), `upos`, `xpos`, and with a gold tree
`heads` and `rels` (``-1`` at the root). :class:`SubwordEncoder` adds `subwords` and
`word_starts` (each word's first subword; the root is the tokenizer's first special token)
for transformer encoders. Nothing here imports torch.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from litzoo.errors import CheckpointError, DataError
from litzoo.text.conllu import Sentence
from litzoo.text.vocab import Vocab

ROOT_TOKEN = "<root>"
VOCAB_FILE = "parser_vocab.json"
_FORMAT = "litzoo.parser_vocab"


class ParserVocab:
    """Word, character, UPOS, XPOS and relation vocabularies of a treebank's training split."""

    def __init__(
        self,
        words: Vocab,
        chars: Vocab,
        upos: Vocab,
        xpos: Vocab,
        relations: Sequence[str],
        lowercase: bool = True,
        max_word_length: int = 20,
    ) -> None:
        self.words, self.chars, self.upos, self.xpos = words, chars, upos, xpos
        self.relations = list(relations)
        self.relation_ids = {name: i for i, name in enumerate(self.relations)}
        self.lowercase, self.max_word_length = lowercase, max_word_length

    @classmethod
    def build(
        cls,
        sentences: Sequence[Sentence],
        min_freq: int = 1,
        lowercase: bool = True,
        max_word_length: int = 20,
    ) -> ParserVocab:
        forms = [[w.form for w in s.words] for s in sentences]
        words = Vocab.build(
            ([f.lower() if lowercase else f for f in sentence] for sentence in forms),
            min_freq=min_freq,
            extra_specials=(ROOT_TOKEN,),
        )
        chars = Vocab.build(
            (list(form) for sentence in forms for form in sentence), extra_specials=(ROOT_TOKEN,)
        )
        upos = Vocab.build(([w.upos for w in s.words] for s in sentences), extra_specials=(ROOT_TOKEN,))
        xpos = Vocab.build(([w.xpos for w in s.words] for s in sentences), extra_specials=(ROOT_TOKEN,))
        counts = Counter(str(w.deprel) for s in sentences for w in s.words)
        relations = sorted(counts, key=lambda r: (-counts[r], r))
        return cls(words, chars, upos, xpos, relations, lowercase, max_word_length)

    # -- sizes the model is built with ------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return {
            "num_words": len(self.words),
            "num_chars": len(self.chars),
            "num_upos": len(self.upos),
            "num_xpos": len(self.xpos),
            "num_rels": len(self.relations),
            "pad_id": self.words.pad_id,
            "unk_id": self.words.unk_id,
            "lowercase": self.lowercase,
            "max_word_length": self.max_word_length,
        }

    # -- encoding ---------------------------------------------------------------------------------
    def encode(
        self, sentence: Sentence, with_tree: bool, unknown_relations: str = "error"
    ) -> dict[str, np.ndarray]:
        """The arrays of one sentence (see the module docstring); relations missing from the training
        data are an error naming the line (`unknown_relations="error"`) or get id -1 (`"allow"`:
        such words count as wrongly labeled)."""
        root_word = self.words.token_to_id(ROOT_TOKEN)
        forms = [w.form.lower() if self.lowercase else w.form for w in sentence.words]
        sample: dict[str, np.ndarray] = {
            "words": np.asarray([root_word, *self.words.encode(forms)], dtype=np.int64),
            "upos": np.asarray(
                [self.upos.token_to_id(ROOT_TOKEN), *self.upos.encode(w.upos for w in sentence.words)],
                dtype=np.int64,
            ),
            "xpos": np.asarray(
                [self.xpos.token_to_id(ROOT_TOKEN), *self.xpos.encode(w.xpos for w in sentence.words)],
                dtype=np.int64,
            ),
            "chars": self._chars(sentence),
        }
        if with_tree:
            sample["heads"] = np.asarray([-1, *(int(w.head) for w in sentence.words)], dtype=np.int64)  # type: ignore[arg-type]
            rels = [-1]
            for word in sentence.words:
                rel = self.relation_ids.get(str(word.deprel), -1)
                if rel < 0 and unknown_relations == "error":
                    raise unknown_relation_error(sentence, word, self.relations)
                rels.append(rel)
            sample["rels"] = np.asarray(rels, dtype=np.int64)
        return sample

    def _chars(self, sentence: Sentence) -> np.ndarray:
        width = self.max_word_length
        chars = np.zeros((len(sentence) + 1, width), dtype=np.int64)  # <pad> = 0
        chars[0, 0] = self.chars.token_to_id(ROOT_TOKEN)
        for row, word in enumerate(sentence.words, start=1):
            ids = self.chars.encode(list(word.form[:width]))
            chars[row, : len(ids)] = ids
        return chars

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "format": _FORMAT,
            "version": 1,
            "lowercase": self.lowercase,
            "max_word_length": self.max_word_length,
            "relations": self.relations,
            **{name: getattr(self, name).to_dict() for name in ("words", "chars", "upos", "xpos")},
        }
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ParserVocab:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(
                f"{path} not found: training writes the parser's vocabularies there, and evaluation "
                "and prediction need them. Point to the run directory the checkpoint came from."
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise CheckpointError(f"{path} is not valid JSON ({error}); the file is corrupt.") from None
        if data.get("format") != _FORMAT:
            raise CheckpointError(
                f"{path} is not a litzoo parser vocabulary (format {data.get('format')!r})."
            )

        def vocab(entry: dict[str, Any]) -> Vocab:
            return Vocab(
                entry["tokens"],
                extra_specials=entry["specials"][2:],
                counts=dict(zip(entry["tokens"], entry.get("counts", []))),
            )

        return cls(
            *(vocab(data[name]) for name in ("words", "chars", "upos", "xpos")),
            data["relations"],
            bool(data["lowercase"]),
            int(data["max_word_length"]),
        )


def unknown_relation_error(sentence: Sentence, word: Any, relations: Sequence[str]) -> DataError:
    """A dev/test word whose relation the training data never has (the parser cannot predict it)."""
    known = ", ".join(relations[:12]) + (", ..." if len(relations) > 12 else "")
    return DataError(
        f"{sentence.path}, line {word.line}: the relation {word.deprel!r} never occurs in the training data, so the "
        f"parser cannot predict it (known: {known}). Fix: correct the label, add training sentences with it, or "
        "set data.unknown_relations=allow to score such words as mislabeled."
    )


def check_relations(train: Sequence[Sentence], others: Sequence[Sentence]) -> None:
    """Refuse the first word of `others` whose relation does not occur in `train`."""
    counts = Counter(str(w.deprel) for s in train for w in s.words)
    relations = sorted(counts, key=lambda r: (-counts[r], r))
    for sentence in others:
        for word in sentence.words:
            if str(word.deprel) not in counts:
                raise unknown_relation_error(sentence, word, relations)


class SubwordEncoder:
    """A Hugging Face fast tokenizer's subwords for pre-tokenised sentences, and each word's first subword.

    `encode(sentence)` gives `subwords` (the tokenizer's ids, with its special tokens) and
    `word_starts` (length ``n + 1``: position 0 -- the first special token, e.g. `[CLS]` -- stands for
    the root; then each word's first subword). Words cut off by `max_length` point at the last
    subword kept and are counted in `truncated_words`.
    """

    def __init__(self, tokenizer: Any, max_length: int = 512) -> None:
        self.tokenizer, self.max_length = tokenizer, int(max_length)
        self.truncated_words = 0

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id or 0)

    def encode(self, sentence: Sentence) -> dict[str, np.ndarray]:
        encoded = self.tokenizer(
            sentence.forms,
            is_split_into_words=True,
            truncation=True,
            max_length=self.max_length,
            add_special_tokens=True,
        )
        word_ids = encoded.word_ids()
        starts = np.full(len(sentence) + 1, -1, dtype=np.int64)
        starts[0] = 0
        for position, word in enumerate(word_ids):
            if word is not None and starts[word + 1] < 0:
                starts[word + 1] = position
        missing = starts < 0
        if missing.any():
            last = (
                max(p for p, w in enumerate(word_ids) if w is not None)
                if any(w is not None for w in word_ids)
                else 0
            )
            self.truncated_words += int(missing.sum())
            starts[missing] = last
        return {"subwords": np.asarray(encoded["input_ids"], dtype=np.int64), "word_starts": starts}
