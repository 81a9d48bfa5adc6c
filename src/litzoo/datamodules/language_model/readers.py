"""Readers of language-modelling corpora in their distributed formats (torch-free).

- WikiText-2 / WikiText-103 (Merity et al. 2016): `wiki.{train,valid,test}.tokens`, one paragraph
  or ` = Heading = ` per line, tokens separated by spaces, rare words already `<unk>`; the
  `.raw` variants (`wiki.*.raw`) hold the untokenized text. The folder may be the one the zip
  unpacks to (`wikitext-2/`, `wikitext-103-raw/`, ...) or its parent.
- Penn Treebank as Mikolov distributes it (`ptb.{train,valid,test}.txt`): one sentence per
  line, lower-cased, numbers as `N`, 10k words with `<unk>`.
- Any UTF-8 text files (`text_lm`).

Every line is a sample of the corpus, empty lines included (the standard setup appends `<eos>`
to each of them, as salesforce/awd-lstm-lm and GluonNLP's `skip_empty=False` do). A file that is
missing, empty, binary or not UTF-8 is refused with its name and the fix.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from litzoo.errors import DataError

SPLITS = ("train", "val", "test")
WIKITEXT_FILES = {"train": "wiki.train.tokens", "val": "wiki.valid.tokens", "test": "wiki.test.tokens"}
WIKITEXT_RAW_FILES = {"train": "wiki.train.raw", "val": "wiki.valid.raw", "test": "wiki.test.raw"}
PTB_FILES = {"train": "ptb.train.txt", "val": "ptb.valid.txt", "test": "ptb.test.txt"}
# Folders the official zips unpack to, tried below `data.root` when the files are not in it.
WIKITEXT_FOLDERS = (
    "wikitext-2",
    "wikitext-103",
    "wikitext-2-raw",
    "wikitext-103-raw",
    "wikitext-2-v1",
    "wikitext-103-v1",
    "wikitext-2-raw-v1",
    "wikitext-103-raw-v1",
)
_PROBE_BYTES = 1 << 16


def wikitext_files(raw: bool) -> dict[str, str]:
    return WIKITEXT_RAW_FILES if raw else WIKITEXT_FILES


def find_corpus_folder(root: str | Path, names: Sequence[str], subfolders: Sequence[str] = ()) -> Path | None:
    """`root` if it holds the train file `names[0]`, else the first of `subfolders` below it that does."""
    root = Path(root).expanduser()
    for folder in (root, *(root / sub for sub in subfolders)):
        if (folder / names[0]).is_file():
            return folder
    return None


def check_corpus_file(path: str | Path, what: str = "corpus file") -> Path:
    """Refuse a missing, empty, binary or non-UTF-8 file, naming it (reads at most 64 KiB)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(
            f"The {what} {path} does not exist. Check data.root (or the file paths in the data config)."
        )
    if path.stat().st_size == 0:
        raise DataError(
            f"The {what} {path} is empty. A language model needs text: give a file with at least a few "
            "lines, or fix the path."
        )
    with open(path, "rb") as handle:
        head = handle.read(_PROBE_BYTES)
    if b"\x00" in head:
        raise DataError(
            f"The {what} {path} is a binary file (it contains NUL bytes), not text. Give a UTF-8 text "
            "file with one paragraph or sentence per line."
        )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 4:  # not just a multi-byte character cut by the probe's end
            raise DataError(
                f"The {what} {path} is not UTF-8 text (byte {error.start}: {error.reason}). Convert it, "
                "e.g. `iconv -f latin1 -t utf-8`."
            ) from None
    return path


def iter_lines(path: str | Path) -> Iterator[str]:
    """The lines of a checked UTF-8 file, without their line breaks."""
    path = check_corpus_file(path)
    with open(path, encoding="utf-8", newline=None) as handle:
        number = 0
        try:
            for number, line in enumerate(handle, start=1):  # noqa: B007 - number is reported below
                yield line.rstrip("\n")
        except UnicodeDecodeError as error:
            raise DataError(
                f"{path}, after line {number}: not UTF-8 ({error.reason}). Convert the file to UTF-8."
            ) from None


def read_lines(path: str | Path) -> list[str]:
    """All lines of a corpus file; a file of only blank lines is refused as empty."""
    lines = list(iter_lines(path))
    if not any(line.strip() for line in lines):
        raise DataError(
            f"The corpus file {path} holds no text (only blank lines). Give a file with text in it."
        )
    return lines
