"""Whole word-vector files in the formats people exchange: word2vec text and binary, fastText `.vec`, GloVe.

* **word2vec text** (also fastText's ``.vec``): a header ``<count> <dim>``, then one
  ``word v1 ... vd`` line per word.
* **GloVe**: the same lines without a header (``glove.6B.300d.txt``); a few ``glove.840B`` words
  contain spaces, so a line is split from the right.
* **word2vec binary** (``GoogleNews-vectors-negative300.bin``): the same header, then per word its
  UTF-8 bytes, a space and ``dim`` little-endian float32 values, optionally followed by a newline.

Text files may be gzip-compressed (``.gz``). Files written here load with gensim's
``KeyedVectors.load_word2vec_format(path, binary=...)`` and with word2vec's and fastText's own
tools; text values are written with 9 significant digits, which gives every float32 back exactly.

A file whose header disagrees with its rows (fewer or more vectors than announced, a row with
another number of values, a truncated binary record) is refused with a `DataError` naming the
line or record, never silently cut short. (:mod:`litzoo.text.word_vectors` reads only the words
of a vocabulary, for textCNN; this module reads or writes every vector.)
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from litzoo.errors import DataError

log = logging.getLogger("litzoo")

FORMATS = ("word2vec-text", "word2vec-binary", "glove-text")
_CHUNK = 1 << 20
_FASTTEXT_MODEL_MAGIC = (793712314).to_bytes(4, "little")  # fastText's FASTTEXT_FILEFORMAT_MAGIC_INT32


@dataclass
class WordVectors:
    """Words and their vectors, row ``i`` of `vectors` belonging to ``words[i]`` (file order)."""

    words: list[str]
    vectors: np.ndarray  # float32 [len(words), dim]
    path: Path | None = None
    format: str = "word2vec-text"
    duplicates: int = 0  # repeated words in the file; the first vector of each was kept
    _index: dict[str, int] | None = field(default=None, repr=False)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def index(self) -> dict[str, int]:
        """word -> row."""
        if self._index is None:
            self._index = {word: i for i, word in enumerate(self.words)}
        return self._index


def detect_format(path: str | Path) -> str:
    """``word2vec-binary`` for a header followed by binary data, ``word2vec-text`` for a header followed
    by text lines, ``glove-text`` for text without a header."""
    path = _existing(path)
    with _open_binary(path) as handle:
        head = handle.read(4096)
    if head[:4] == _FASTTEXT_MODEL_MAGIC:
        raise DataError(
            f"{path} is a fastText model (.bin), not a word-vector file. Give its .vec file (fastText writes both), "
            "or export the vectors with fastText's `print-word-vectors`."
        )
    newline = head.find(b"\n")
    first = head[: newline if newline >= 0 else len(head)].split()
    if len(first) == 2 and all(part.isdigit() for part in first):
        body = head[newline + 1 :]
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as error:
            # A text file cut mid-character at the end of the sample is still text.
            if error.start < len(body) - 4:
                return "word2vec-binary"
        return "word2vec-binary" if b"\x00" in body else "word2vec-text"
    try:
        head[: newline if newline >= 0 else len(head)].decode("utf-8")
    except UnicodeDecodeError:
        newline = -1
    if newline < 0 or b"\x00" in head:
        raise DataError(
            f"{path} is not a word-vector file in a known format ({', '.join(FORMATS)}): its first line is not "
            "text. Give a word2vec text/binary file, a fastText .vec or a GloVe .txt file."
        )
    return "glove-text"


def read_word_vectors(path: str | Path, binary: bool | None = None, limit: int | None = None) -> WordVectors:
    """All vectors of a word2vec (text or binary), fastText ``.vec`` or GloVe file.

    `binary` None detects the format from the file's first bytes. `limit` reads only the first
    `limit` vectors (the most frequent ones in files written by word2vec, fastText and litzoo).
    """
    path = _existing(path)
    kind = detect_format(path) if binary is None else ("word2vec-binary" if binary else None)
    if kind is None:
        kind = detect_format(path)
        if kind == "word2vec-binary":
            raise DataError(
                f"{path} is a binary word2vec file, but it was asked to be read as text; read it "
                "with binary=true (or leave the format to detection)."
            )
    if kind == "word2vec-binary":
        words, rows = _read_binary(path, limit)
    else:
        words, rows = _read_text(path, kind, limit)
    if not words:
        raise DataError(f"{path} holds no word vectors.")
    kept_words, kept_rows, seen = [], [], set()
    for word, row in zip(words, rows):
        if word not in seen:
            seen.add(word)
            kept_words.append(word)
            kept_rows.append(row)
    duplicates = len(words) - len(kept_words)
    if duplicates:
        log.warning("%s repeats %d word(s); the first vector of each is kept", path, duplicates)
    return WordVectors(kept_words, np.stack(kept_rows).astype(np.float32, copy=False), path, kind, duplicates)


def write_word_vectors(
    path: str | Path, words: Sequence[str], vectors: np.ndarray, binary: bool = False
) -> Path:
    """Write `vectors` (one row per word) in word2vec's text (``.gz``: compressed) or binary format."""
    path = Path(path).expanduser()
    vectors = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise ValueError(f"{len(words)} words need a [{len(words)}, dim] matrix, got shape {vectors.shape}")
    bad = [w for w in words if not w or any(c.isspace() for c in w)]
    if bad:
        raise DataError(
            f"Word {bad[0]!r} is empty or contains whitespace, which the word2vec format cannot hold."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    count, dim = vectors.shape
    if binary:
        little = vectors.astype("<f4", copy=False)
        with path.open("wb") as out:
            out.write(f"{count} {dim}\n".encode())
            for word, row in zip(words, little):
                out.write(word.encode("utf-8") + b" " + row.tobytes() + b"\n")
        return path
    template = " ".join(["%.9g"] * dim)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as out:
        out.write(f"{count} {dim}\n")
        for word, row in zip(words, vectors.tolist()):
            out.write(f"{word} {template % tuple(row)}\n")
    return path


# ----------------------------------------------------------------------------- readers


def _existing(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(
            f"Word-vector file {path} not found. Give a word2vec (.txt/.bin), fastText (.vec) or GloVe file."
        )
    return path


def _open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _header(line: bytes, path: Path) -> tuple[int, int]:
    parts = line.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or int(parts[1]) < 1:
        raise DataError(f"{path}, line 1: expected the header `<count> <dim>`, found {line[:60]!r}.")
    return int(parts[0]), int(parts[1])


def _read_text(path: Path, kind: str, limit: int | None) -> tuple[list[str], list[np.ndarray]]:
    words: list[str] = []
    rows: list[np.ndarray] = []
    with _open_binary(path) as raw:
        first = raw.readline()
        announced, dim = _header(first, path) if kind == "word2vec-text" else (None, None)
        lines = raw if kind == "word2vec-text" else _chain([first], raw)
        first_number = 2 if kind == "word2vec-text" else 1
        for number, line in enumerate(lines, start=first_number):
            text = line.decode("utf-8", errors="replace").rstrip()
            if not text:
                continue
            if limit is not None and len(words) >= limit:
                break
            if dim is None:  # GloVe: the first row fixes the dimension
                dim = len(text.split(" ")) - 1
                if dim < 1:
                    raise DataError(f"{path}, line {number}: no vector values; expected `word v1 ... vd`.")
            if text.count(" ") < dim:
                raise DataError(
                    f"{path}, line {number}: {text.count(' ')} values where the file has {dim} dimensions. The file "
                    "is truncated or mixes vectors of different sizes."
                )
            parts = text.rsplit(" ", dim)
            try:
                row = np.array(parts[1:], dtype=np.float32)
            except ValueError:
                raise DataError(f"{path}, line {number}: a vector value is not a number.") from None
            words.append(parts[0])
            rows.append(row)
    if announced is not None and limit is None and len(words) != announced:
        raise DataError(
            f"{path}: the header announces {announced} vectors of dimension {dim}, but the file holds {len(words)} "
            "rows. The file is truncated or its header is wrong; fix the header's count (or rewrite the file)."
        )
    return words, rows


def _chain(first: list[bytes], rest: IO[bytes]):
    yield from first
    yield from rest


def _read_binary(path: Path, limit: int | None) -> tuple[list[str], list[np.ndarray]]:
    with _open_binary(path) as raw:
        announced, dim = _header(raw.readline(), path)
        wanted = announced if limit is None else min(limit, announced)
        width = 4 * dim
        words: list[str] = []
        rows: list[np.ndarray] = []
        buffer, position = raw.read(_CHUNK), 0
        while len(words) < wanted:
            # Leading whitespace (word2vec.c ends every record with a newline) is not part of a word.
            while True:
                while position < len(buffer) and buffer[position] in b" \n\r\t":
                    position += 1
                if position < len(buffer):
                    break
                buffer, position = raw.read(_CHUNK), 0
                if not buffer:
                    break
            space = buffer.find(b" ", position)
            while space < 0 or len(buffer) - space - 1 < width:
                more = raw.read(_CHUNK)
                if not more:
                    raise DataError(
                        f"{path}: the header announces {announced} vectors of dimension {dim}, but the file ends "
                        f"after {len(words)}. The file is truncated (or not a binary word2vec file)."
                    )
                buffer, position = buffer[position:] + more, 0
                space = buffer.find(b" ", position)
            word = buffer[position:space]
            if len(word) > 1000:
                raise DataError(
                    f"{path}: record {len(words) + 1} has no word before its vector; the file is not a "
                    "binary word2vec file or its header's dimension is wrong."
                )
            words.append(word.decode("utf-8", errors="replace"))
            rows.append(np.frombuffer(buffer, dtype="<f4", count=dim, offset=space + 1).astype(np.float32))
            position = space + 1 + width
        if limit is None:
            rest = buffer[position:] + raw.read(64)
            if rest.strip():
                raise DataError(
                    f"{path}: the header announces {announced} vectors of dimension {dim}, but more data follows the "
                    f"last of them. Fix the header's count (or the dimension)."
                )
    return words, rows
