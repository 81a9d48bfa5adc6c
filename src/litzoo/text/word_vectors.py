"""Pretrained word vectors from a local GloVe or word2vec *text* file, aligned to a `Vocab`.

Two text layouts are read (plain or `.gz`):

* GloVe: one `word v1 ... vd` line per word (`glove.6B.300d.txt`). A few
  `glove.840B` entries contain spaces, so a line is split from the right.
* word2vec text: the same rows after a first line `count dim`
  (`GoogleNews-vectors-negative300.txt` as written by gensim with `binary=False`).

Only the vocabulary's words are parsed, so a 5 GB file costs one streaming pass.
Words are matched exactly first, then (by default) case-insensitively, taking
the first, i.e. most frequent, cased variant in the file. Words not found are
initialised uniformly in [-0.25, 0.25] as in Kim (2014); the padding row is zero.
"""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from litzoo.errors import ConfigError, DataError
from litzoo.text.vocab import Vocab


@dataclass
class PretrainedEmbeddings:
    """An embedding matrix for a vocabulary and how much of the vocabulary the file covered."""

    weights: torch.Tensor  # [len(vocab), dim], float32; row vocab.pad_id is zero
    path: Path
    found: int  # regular vocabulary words that got a pretrained vector
    missing: int  # regular words initialised at random
    missing_examples: list[str] = field(default_factory=list)  # the most frequent missing words

    @property
    def dim(self) -> int:
        return int(self.weights.shape[1])

    @property
    def coverage(self) -> float:
        total = self.found + self.missing
        return self.found / total if total else 0.0

    def describe(self) -> str:
        """The line to log: counts of found and randomly initialised words."""
        examples = f" (e.g. {', '.join(self.missing_examples[:5])})" if self.missing_examples else ""
        return (
            f"word vectors from {self.path.name}: {self.found} of {self.found + self.missing} vocabulary words "
            f"found ({100 * self.coverage:.1f}%), {self.missing} initialised at random{examples}"
        )


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


def _check_path(path: Path) -> None:
    if not path.is_file():
        raise DataError(
            f"Word-vector file {path} not found. Set model.embeddings to a local GloVe or word2vec text file "
            "(e.g. glove.6B.300d.txt); variant 'rand' needs no file."
        )
    if path.suffix in {".bin", ".zip"}:
        raise DataError(
            f"{path} looks like a {'binary word2vec' if path.suffix == '.bin' else 'zip'} file. litzoo reads the "
            "text format: unzip GloVe archives, and convert binary word2vec with gensim "
            "(KeyedVectors.load_word2vec_format(p, binary=True).save_word2vec_format(out, binary=False))."
        )


def iter_word_vectors(
    path: str | Path, wanted: set[str] | None = None
) -> tuple[int, Iterator[tuple[str, list[float]]]]:
    """The vector dimension of a GloVe/word2vec text file and an iterator of `(word, vector)`.

    With `wanted`, only those words (compared case-insensitively) are parsed and yielded.
    Every line's length is still checked, so a truncated or mixed file is reported with its line number.
    """
    path = Path(path).expanduser()
    _check_path(path)
    handle = _open_text(path)
    first = handle.readline()
    fields = first.rstrip().split(" ")
    if not first.strip():
        handle.close()
        raise DataError(f"Word-vector file {path} is empty or starts with a blank line.")
    is_word2vec_header = len(fields) == 2 and all(part.isdigit() for part in fields)
    dim = int(fields[1]) if is_word2vec_header else len(fields) - 1
    if dim < 1:
        handle.close()
        raise DataError(f"{path}, line 1: no vector values found; expected `word v1 ... vd` or `count dim`.")
    lowered = {word.lower() for word in wanted} if wanted is not None else None

    def rows() -> Iterator[tuple[str, list[float]]]:
        with handle:
            # A GloVe file has no header: its first line is already a vector.
            body = handle if is_word2vec_header else itertools.chain([first], handle)
            for number, line in enumerate(body, start=2 if is_word2vec_header else 1):
                line = line.rstrip()
                if not line:
                    continue
                if line.count(" ") < dim:
                    raise DataError(
                        f"{path}, line {number}: {line.count(' ')} vector values where the file has {dim} "
                        "dimensions (dimension mismatch). The file is truncated or mixes vectors of different sizes."
                    )
                word, _, values = _split_word(line, dim)
                if lowered is not None and word.lower() not in lowered:
                    continue
                try:
                    vector = [float(value) for value in values.split(" ")]
                except ValueError:
                    raise DataError(f"{path}, line {number}: a vector value is not a number.") from None
                if len(vector) != dim:
                    raise DataError(f"{path}, line {number}: {len(vector)} values, expected {dim}.")
                yield word, vector

    return dim, rows()


def _split_word(line: str, dim: int) -> tuple[str, str, str]:
    """Split off the word, which may itself contain spaces (a few glove.840B entries do)."""
    if line.count(" ") == dim:
        return line.partition(" ")
    parts = line.rsplit(" ", dim)
    return parts[0], " ", " ".join(parts[1:])


def build_embedding_matrix(
    vocab: Vocab,
    path: str | Path,
    dim: int | None = None,
    lowercase_fallback: bool = True,
    init_range: float = 0.25,
    seed: int = 0,
) -> PretrainedEmbeddings:
    """The `[len(vocab), d]` matrix for `vocab` from the vectors in `path`.

    `dim`, when given (e.g. from `model.embed_dim`), must equal the file's dimension.
    Special tokens other than padding get random vectors and are not counted as missing.
    """
    path = Path(path).expanduser()
    regular = vocab.itos[len(vocab.specials) :]
    file_dim, rows = iter_word_vectors(path, set(regular))
    if dim is not None and dim != file_dim:
        raise ConfigError(
            f"model.embed_dim={dim} but {path.name} holds {file_dim}-dimensional vectors. Set "
            f"model.embed_dim={file_dim} (or leave it unset to take the file's dimension)."
        )
    wanted = set(regular)
    exact: dict[str, list[float]] = {}
    folded: dict[str, list[float]] = {}
    for word, vector in rows:
        if word in wanted:
            exact.setdefault(word, vector)
        elif lowercase_fallback and word.lower() in wanted:
            folded.setdefault(word.lower(), vector)
    generator = torch.Generator().manual_seed(seed)
    weights = torch.empty(len(vocab), file_dim).uniform_(-init_range, init_range, generator=generator)
    weights[vocab.pad_id] = 0.0
    found, missing_words = 0, []
    offset = len(vocab.specials)
    for index, word in enumerate(regular, start=offset):
        vector = exact.get(word) or (folded.get(word) if lowercase_fallback else None)
        if vector is None:
            missing_words.append(word)
        else:
            weights[index] = torch.tensor(vector, dtype=torch.float32)
            found += 1
    if regular and found == 0:
        raise DataError(
            f"None of the {len(regular)} vocabulary words were found in {path}. Check that the file is a word-vector "
            "file for the data's language and tokenization (the textCNN vocabulary is lower-cased)."
        )
    return PretrainedEmbeddings(weights, path, found, len(missing_words), missing_words[:20])
