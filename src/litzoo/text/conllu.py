"""CoNLL-U (Universal Dependencies) and CoNLL-X treebank files: read, check, write back.

Both formats have one word per line in ten tab-separated columns and a blank line after each
sentence. CoNLL-U (https://universaldependencies.org/format.html)::

    ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC

plus `# comment` lines, multi-word token ranges (`1-2  don't`) and empty nodes (`8.1`), which
are kept verbatim but are not syntactic words: they have no basic HEAD/DEPREL, are never parsed
and never scored (as the CoNLL 2018 shared-task evaluation does). CoNLL-X (the PTB-SD files of
the parsing literature) has the columns ``ID FORM LEMMA CPOSTAG POSTAG FEATS HEAD DEPREL PHEAD
PDEPREL``; its CPOSTAG/POSTAG are read into `upos`/`xpos`.

A :class:`Sentence` keeps every line of its block as read, so writing a file back with
:func:`format_sentence` reproduces it byte for byte, and writing predicted trees replaces the
HEAD and DEPREL columns of the word lines and nothing else.

Problems are `DataError`s naming the file, the line and the fix: a line with the wrong number
of columns, IDs out of order, a HEAD outside the sentence, a gold tree with a cycle. Nothing
here imports torch.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from litzoo.errors import DataError

FORMATS = ("conllu", "conllx")
NUM_COLUMNS = 10
HEAD, DEPREL = 6, 7  # column indices
_WORD_ID = re.compile(r"[1-9][0-9]*")
_RANGE_ID = re.compile(r"([1-9][0-9]*)-([1-9][0-9]*)")
_EMPTY_ID = re.compile(r"(0|[1-9][0-9]*)\.[1-9][0-9]*")


@dataclass
class Word:
    """One syntactic word (a line with an integer ID). `head`/`deprel` are None when the file has `_`."""

    id: int
    form: str
    lemma: str
    upos: str
    xpos: str
    feats: str
    head: int | None
    deprel: str | None
    line: int  # 1-based line number in the file


@dataclass
class Sentence:
    """A sentence block: all its lines as read (comments, ranges, empty nodes, words) and its words."""

    lines: list[str]
    words: list[Word]
    word_rows: list[int]  # index into `lines` of each word's line
    path: str = "<input>"
    start_line: int = 1
    fmt: str = "conllu"
    comments: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.comments = [line for line in self.lines if line.startswith("#")]

    def __len__(self) -> int:
        return len(self.words)

    @property
    def forms(self) -> list[str]:
        return [w.form for w in self.words]

    @property
    def heads(self) -> list[int | None]:
        return [w.head for w in self.words]

    @property
    def deprels(self) -> list[str | None]:
        return [w.deprel for w in self.words]

    @property
    def has_tree(self) -> bool:
        return all(w.head is not None and w.deprel is not None for w in self.words)

    @property
    def sent_id(self) -> str | None:
        for comment in self.comments:
            key, _, value = comment[1:].partition("=")
            if key.strip() == "sent_id":
                return value.strip()
        return None


def universal_relation(deprel: str) -> str:
    """The universal part of a relation (`nsubj:pass` -> `nsubj`), as the CoNLL 2018 evaluation compares them."""
    return deprel.split(":", 1)[0]


# ----------------------------------------------------------------------------- reading


def read_treebank(path: str | Path, fmt: str = "conllu", require_tree: bool = True) -> list[Sentence]:
    """Every sentence of a CoNLL-U / CoNLL-X file, checked.

    `require_tree`: every word must have a HEAD and a DEPREL forming a tree (training and
    evaluation data); false allows `_` (input to be parsed), but HEADs that are given are
    still checked.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"Treebank file {path} does not exist. Give the path of a .conllu (or CoNLL-X) file.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path} is not UTF-8 text ({error.reason} at byte {error.start}); CoNLL-U files are UTF-8. "
            "Convert it, e.g. `iconv -f latin1 -t utf-8`."
        ) from None
    sentences = list(parse_treebank(text, str(path), fmt, require_tree))
    if not sentences:
        raise DataError(
            f"{path} holds no sentence. A treebank file has one word per line and a blank line after "
            "each sentence."
        )
    return sentences


def parse_treebank(
    text: str, path: str = "<input>", fmt: str = "conllu", require_tree: bool = True
) -> Iterator[Sentence]:
    """The sentences of CoNLL-U / CoNLL-X `text` (see :func:`read_treebank`)."""
    if fmt not in FORMATS:
        raise DataError(f"Unknown treebank format {fmt!r}; use one of {', '.join(FORMATS)}.")
    block: list[str] = []
    start = 1
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.strip():
            if not block:
                start = number
            block.append(line)
        elif block:
            yield _parse_block(block, path, start, fmt, require_tree)
            block = []
    if block:
        yield _parse_block(block, path, start, fmt, require_tree)


def _parse_block(lines: list[str], path: str, start: int, fmt: str, require_tree: bool) -> Sentence:
    words: list[Word] = []
    rows: list[int] = []
    ranges: list[tuple[int, int, int]] = []  # (first, last, line)
    for row, line in enumerate(lines):
        number = start + row
        if line.startswith("#"):
            if words and fmt == "conllu":
                raise _error(
                    path,
                    number,
                    "a comment line after the first word of the sentence",
                    "CoNLL-U comments come before the sentence's words; move it up or remove it",
                )
            continue
        columns = line.split("\t")
        if len(columns) != NUM_COLUMNS:
            hint = (
                " (the columns must be separated by tabs, not spaces)"
                if len(columns) < NUM_COLUMNS and " " in line
                else ""
            )
            raise _error(
                path,
                number,
                f"{len(columns)} column(s) instead of {NUM_COLUMNS}{hint}",
                f"give every word line the {NUM_COLUMNS} {fmt.upper()} columns, `_` for an empty one",
            )
        ident = columns[0]
        if _WORD_ID.fullmatch(ident):
            expected = len(words) + 1
            if int(ident) != expected:
                raise _error(
                    path,
                    number,
                    f"word ID {ident} where {expected} was expected",
                    "number the words of each sentence 1, 2, 3, ... in order",
                )
            words.append(_word(columns, number, path, require_tree))
            rows.append(row)
        elif fmt == "conllu" and (match := _RANGE_ID.fullmatch(ident)):
            first, last = int(match[1]), int(match[2])
            if first >= last or first != len(words) + 1:
                raise _error(
                    path,
                    number,
                    f"multi-word token range {ident} does not start at the next word "
                    f"({len(words) + 1}) or is empty",
                    "give the range of the words it spans, e.g. 3-4",
                )
            ranges.append((first, last, number))
        elif fmt == "conllu" and _EMPTY_ID.fullmatch(ident):
            continue  # an empty node of the enhanced graph: kept, not a word of the basic tree
        else:
            allowed = (
                "an integer"
                if fmt == "conllx"
                else "an integer, a range such as 1-2, or an empty node such as 8.1"
            )
            raise _error(
                path,
                number,
                f"ID {ident!r} is not {allowed}",
                "fix the first column" + ("; use fmt=conllu for UD files" if fmt == "conllx" else ""),
            )
    if not words:
        raise _error(
            path,
            start,
            "a sentence block without any word line",
            "remove the block, or add its words (each sentence is followed by one blank line)",
        )
    for first, last, number in ranges:
        if last > len(words):
            raise _error(
                path,
                number,
                f"multi-word token range {first}-{last} goes past the sentence's last word ({len(words)})",
                "fix the range",
            )
    _check_heads(words, path)
    if require_tree:
        _check_tree(words, path)
    return Sentence(lines=list(lines), words=words, word_rows=rows, path=path, start_line=start, fmt=fmt)


def _word(columns: list[str], number: int, path: str, require_tree: bool) -> Word:
    head_text, deprel = columns[HEAD], columns[DEPREL]
    head: int | None
    if head_text == "_":
        head = None
    elif head_text.isdigit():
        head = int(head_text)
    else:
        raise _error(
            path,
            number,
            f"HEAD {head_text!r} is not a word number",
            "give the ID of the head word (0 for the root)",
        )
    if require_tree and head is None:
        raise _error(
            path,
            number,
            "HEAD is `_`, but this file is used for training or evaluation",
            "annotate every word with its head, or use the file only for prediction",
        )
    if require_tree and deprel == "_":
        raise _error(
            path,
            number,
            "DEPREL is `_`, but this file is used for training or evaluation",
            "annotate every word with its relation",
        )
    return Word(
        int(columns[0]),
        columns[1],
        columns[2],
        columns[3],
        columns[4],
        columns[5],
        head,
        None if deprel == "_" else deprel,
        number,
    )


def _check_heads(words: Sequence[Word], path: str) -> None:
    for word in words:
        if word.head is not None and word.head > len(words):
            raise _error(
                path,
                word.line,
                f"HEAD {word.head} points outside the sentence, which has {len(words)} words",
                f"give a head between 0 (root) and {len(words)}",
            )
        if word.head == word.id:
            raise _error(path, word.line, f"word {word.id} is its own head", "give it another head")


def _check_tree(words: Sequence[Word], path: str) -> None:
    """Every word must reach the root (0) through its heads: no cycles."""
    state = [0] * (len(words) + 1)  # 0 unvisited, 1 on the current path, 2 reaches the root
    state[0] = 2
    for start in range(1, len(words) + 1):
        trail = []
        node = start
        while state[node] == 0:
            state[node] = 1
            trail.append(node)
            node = int(words[node - 1].head)  # type: ignore[arg-type]
        if state[node] == 1:  # back on the current path: a cycle
            cycle = trail[trail.index(node) :]
            shown = " -> ".join(str(i) for i in [*cycle, cycle[0]])
            raise _error(
                path,
                words[cycle[0] - 1].line,
                f"the heads form a cycle ({shown}), so this is not a tree",
                "correct the HEAD column of these words so that each of them leads to the root (0)",
            )
        for visited in trail:
            state[visited] = 2


def _error(path: str, line: int, problem: str, fix: str) -> DataError:
    return DataError(f"{path}, line {line}: {problem}. Fix: {fix}.")


# ----------------------------------------------------------------------------- raw input


def sentence_from_tokens(
    tokens: Sequence[str], index: int = 0, path: str = "<input>", line: int = 1
) -> Sentence:
    """A CoNLL-U sentence for pre-tokenised words (for prediction): only ID and FORM are known."""
    if not tokens:
        raise DataError(
            f"{path}, line {line}: an empty sentence. Give one pre-tokenised sentence per line "
            "(words separated by spaces); remove empty lines."
        )
    for token in tokens:
        if "\t" in token or "\n" in token:
            raise DataError(
                f"{path}, line {line}: a word contains a tab or newline, which CoNLL-U cannot hold."
            )
    lines = [f"# sent_id = {index + 1}", f"# text = {' '.join(tokens)}"]
    lines += [f"{i}\t{form}\t_\t_\t_\t_\t_\t_\t_\t_" for i, form in enumerate(tokens, start=1)]
    words = [Word(i, form, "_", "_", "_", "_", None, None, line) for i, form in enumerate(tokens, start=1)]
    return Sentence(
        lines=lines, words=words, word_rows=list(range(2, len(lines))), path=path, start_line=line
    )


# ----------------------------------------------------------------------------- writing


def format_sentence(
    sentence: Sentence, heads: Sequence[int] | None = None, deprels: Sequence[str] | None = None
) -> str:
    """The sentence's block (its lines and the blank line after it); with `heads`/`deprels`, those
    columns of its word lines are replaced and every other line and column is left as it was."""
    lines = list(sentence.lines)
    if heads is not None or deprels is not None:
        for position, row in enumerate(sentence.word_rows):
            columns = lines[row].split("\t")
            if heads is not None:
                columns[HEAD] = str(int(heads[position]))
            if deprels is not None:
                columns[DEPREL] = str(deprels[position])
            lines[row] = "\t".join(columns)
    return "\n".join(lines) + "\n\n"


def write_treebank(path: str | Path, blocks: Iterable[str]) -> Path:
    """Write formatted sentence blocks atomically: readers see the old file or the complete new one."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            for block in blocks:
                f.write(block)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
