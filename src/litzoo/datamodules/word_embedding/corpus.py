"""Streaming reader of tokenised text corpora: word counts and a block index in one pass, blocks on demand.

A corpus is one or more files (plain or ``.gz``) of whitespace-separated tokens, one sentence
or document per line, as word2vec, fastText and gensim's ``LineSentence`` read them. Nothing
is held in memory but the word counts and one small index entry per block, so a corpus larger
than memory trains, and a single-line corpus (text8, fil9) is read in 1 MiB pieces:

- **sentences**: a line is a sentence; a line longer than ``max_sentence_length`` tokens is cut
  into consecutive sentences of that many tokens (the last one shorter). No token is dropped
  (gensim keeps only the first 10,000 tokens of a longer text; word2vec.c cuts at 1,000).
  Context windows never cross a sentence end.
- **blocks**: consecutive sentences are grouped into blocks of at least ``block_tokens`` tokens
  (the last block of a file may be smaller); a block is the unit the training split indexes,
  read by seeking to its byte range. A block starts at the start of a sentence, so re-cutting
  its lines at ``max_sentence_length`` gives back exactly the sentences the index counted.
- **tokens** are split on ASCII whitespace (word2vec's rule; ``\\r`` of Windows line ends is
  whitespace too) and decoded as UTF-8 (invalid bytes become U+FFFD), lower-cased if asked.

Counting keeps one entry per distinct token; if a corpus has more than ``count_limit``
distinct tokens, the rarest are pruned as word2vec's ``ReduceVocab`` does (counts at or below
1, then 2, ...), which can only lower counts of words far below any useful ``min_count``.
"""

from __future__ import annotations

import gzip
import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO

import numpy as np

from litzoo.errors import DataError

log = logging.getLogger("litzoo")

_CHUNK = 1 << 20
_WHITESPACE = b" \t\n\r\x0b\x0c"
CORPUS_SUFFIXES_SKIPPED = (".md", ".json", ".yaml", ".yml")


def corpus_files(path: str | Path) -> list[Path]:
    """The corpus files at `path`: the file itself, or every regular file under a folder (sorted,
    recursively; hidden files and README/JSON/YAML files are left out)."""
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(
            f"data.path={path} does not exist. Give a tokenised text file (one sentence or document per line, "
            "plain or .gz) or a folder of such files."
        )
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
        and p.suffix.lower() not in CORPUS_SUFFIXES_SKIPPED
        and not p.name.lower().startswith("readme")
    )
    if not files:
        raise DataError(
            f"data.path={path} is a folder without corpus files. Put tokenised text files (plain or .gz) in it."
        )
    return files


def open_corpus_file(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


@dataclass
class CorpusIndex:
    """What one pass over a corpus learns: surface-form counts and the blocks' byte ranges."""

    files: list[Path]
    counts: Counter  # bytes token -> count (surface forms, before lower-casing)
    block_file: np.ndarray  # int32 [B]
    block_start: np.ndarray  # int64 [B], byte offset of the block's first sentence
    block_end: np.ndarray  # int64 [B], byte offset just past the block
    block_tokens: np.ndarray  # int64 [B], tokens in the block (all of them, in the vocabulary or not)
    num_sentences: int
    max_sentence_length: int
    pruned_below: int = 0  # counts at or below this were pruned while counting (0: nothing pruned)

    @property
    def num_tokens(self) -> int:
        return int(self.block_tokens.sum())

    def __len__(self) -> int:
        return int(self.block_start.size)


class _BlockBuilder:
    """Cuts one file's token stream into sentences and blocks while it is read."""

    def __init__(self, file_index: int, block_tokens: int, max_sentence_length: int) -> None:
        self.file_index = file_index
        self.block_tokens = block_tokens
        self.max_sentence_length = max_sentence_length
        self.blocks: list[tuple[int, int, int, int]] = []
        self.start = 0  # byte offset where the open block starts
        self.tokens = 0  # tokens in the open block
        self.piece = 0  # tokens of the current line's current sentence
        self.sentences = 0

    def fragment(self, data: bytes, offset: int, ends_line: bool) -> None:
        """A piece of one line, `data` starting at byte `offset`, cut between tokens."""
        count = len(data.split())
        taken, position = 0, 0
        while count - taken >= self.max_sentence_length - self.piece and (
            taken + self.max_sentence_length - self.piece < count or not ends_line
        ):
            # A sentence reaches its maximum length inside this line: it ends `step` tokens further on.
            step = self.max_sentence_length - self.piece
            position = _end_of_tokens(data, position, step)
            taken += step
            self.tokens += step
            self.piece = 0
            self.sentences += 1
            if self.tokens >= self.block_tokens:
                self._close(offset + position)
        rest = count - taken
        self.tokens += rest
        self.piece += rest
        if ends_line:
            if self.piece:
                self.sentences += 1
            self.piece = 0
            if self.tokens >= self.block_tokens:
                self._close(offset + len(data) + 1)

    def finish(self, end: int) -> None:
        if self.piece:
            self.sentences += 1
            self.piece = 0
        if self.tokens:
            self._close(end)

    def _close(self, end: int) -> None:
        self.blocks.append((self.file_index, self.start, end, self.tokens))
        self.start, self.tokens = end, 0


@lru_cache(maxsize=64)
def _tokens_regex(count: int) -> re.Pattern[bytes]:
    return re.compile(rb"(?:[ \t\n\r\x0b\x0c]*[^ \t\n\r\x0b\x0c]+){%d}" % count)


def _end_of_tokens(data: bytes, position: int, count: int) -> int:
    """Byte position just past the `count`-th token of `data` after `position` (a C-speed regex, no Python
    loop per token)."""
    match = _tokens_regex(count).match(data, position)
    assert match is not None
    return match.end()


def index_corpus(
    files: Sequence[Path],
    block_tokens: int = 10_000,
    max_sentence_length: int = 10_000,
    count_limit: int = 30_000_000,
) -> CorpusIndex:
    """Count the tokens of `files` and cut them into blocks, in one streaming pass."""
    if block_tokens < 1 or max_sentence_length < 1:
        raise DataError(
            f"data.block_tokens={block_tokens} and data.max_sentence_length={max_sentence_length} must "
            "both be positive."
        )
    counts: Counter = Counter()
    blocks: list[tuple[int, int, int, int]] = []
    sentences, pruned_below = 0, 0
    for file_index, path in enumerate(files):
        builder = _BlockBuilder(file_index, block_tokens, max_sentence_length)
        end = 0
        try:
            for data, offset, ends_line in _fragments(path):
                counts.update(data.split())
                builder.fragment(data, offset, ends_line)
                end = offset + len(data) + (1 if ends_line else 0)
                if len(counts) > count_limit:
                    pruned_below += 1
                    counts = Counter({t: c for t, c in counts.items() if c > pruned_below})
                    log.warning(
                        "More than %d distinct tokens: pruned those counted %d time(s) or fewer so far "
                        "(word2vec's ReduceVocab)",
                        count_limit,
                        pruned_below,
                    )
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            raise DataError(
                f"Cannot read corpus file {path} ({error}). Check that it is a text file (or a complete "
                ".gz file)."
            ) from None
        builder.finish(end)
        blocks += builder.blocks
        sentences += builder.sentences
    table = np.array(blocks, dtype=np.int64).reshape(-1, 4)
    return CorpusIndex(
        list(files),
        counts,
        table[:, 0].astype(np.int32),
        table[:, 1].copy(),
        table[:, 2].copy(),
        table[:, 3].copy(),
        sentences,
        max_sentence_length,
        pruned_below,
    )


def _fragments(path: Path) -> Iterator[tuple[bytes, int, bool]]:
    """(piece of a line, its byte offset, whether the line ends after it); pieces end between tokens."""
    offset = 0
    carry = b""
    with open_corpus_file(path) as handle:
        while True:
            chunk = handle.read(_CHUNK)
            data = carry + chunk
            if not chunk:
                if data:
                    yield data, offset, False
                return
            cut = max(data.rfind(c) for c in (b" ", b"\t", b"\n", b"\r"))
            if cut < 0:  # a token longer than the chunk: keep reading
                carry = data
                continue
            head, carry = data[: cut + 1], data[cut + 1 :]
            lines = head.split(b"\n")
            for line in lines[:-1]:
                yield line, offset, True
                offset += len(line) + 1
            if lines[-1]:
                yield lines[-1], offset, False
                offset += len(lines[-1])


class BlockReader:
    """Reads blocks back as sentences of token ids; one open handle per file, reused across reads.

    Reads in increasing offset order are sequential (what a gzip file needs to be cheap); a read
    behind the handle's position seeks (a plain file) or decompresses from the start (gzip).
    Handles are not pickled: each DataLoader worker opens its own.
    """

    def __init__(self, index: CorpusIndex, lookup: dict[bytes, int]) -> None:
        self.index = index
        self.lookup = lookup
        self._handles: dict[int, IO[bytes]] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_handles": {}}

    def raw(self, block: int) -> bytes:
        index = self.index
        file_index = int(index.block_file[block])
        start, end = int(index.block_start[block]), int(index.block_end[block])
        handle = self._handles.get(file_index)
        if handle is None:
            handle = self._handles[file_index] = open_corpus_file(index.files[file_index])
        if handle.tell() != start:
            handle.seek(start)
        data = handle.read(end - start)
        if len(data) != end - start:
            raise DataError(
                f"Corpus file {index.files[file_index]} changed since it was indexed (block {block} at "
                f"bytes {start}-{end} is cut short). Rerun so that the corpus is read afresh."
            )
        return data

    def sentences(self, block: int) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of the block's in-vocabulary tokens (int64) and each sentence's number of them.

        Tokens outside the vocabulary are left out before windows are drawn, as word2vec does
        (so a window reaches past them); sentences left empty have length 0.
        """
        lookup, limit = self.lookup, self.index.max_sentence_length
        ids: list[int] = []
        lengths: list[int] = []
        for line in self.raw(block).split(b"\n"):
            tokens = line.split()
            for start in range(0, len(tokens), limit):
                found = [i for i in (lookup.get(t, -1) for t in tokens[start : start + limit]) if i >= 0]
                ids += found
                lengths.append(len(found))
        return np.asarray(ids, dtype=np.int64), np.asarray(lengths, dtype=np.int64)

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()
