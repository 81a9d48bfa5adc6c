"""Readers of parallel text: line-aligned file pairs (IWSLT, WMT newstest, any `<prefix>.<lang>`) and TSV.

Line ``i`` of the source file translates line ``i`` of the target file, as IWSLT2015
(``train.en``/``train.vi``, ``tst2012.*``, ``tst2013.*``), WMT plain text (``newstest2014.de``) and
fairseq's raw text all are. Text is kept raw (no Moses tokenization): the subword vocabulary works
on raw text and sacreBLEU scores detokenized output against these raw references.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from litzoo.errors import DataError

EMPTY_POLICIES = ("skip", "error")


@dataclass
class ParallelText:
    """Aligned sentence pairs of one split, with how many pairs were left out and why."""

    source: list[str]
    target: list[str]
    skipped_empty: int = 0
    skipped_lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.source)


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path} not found: a parallel text split needs both its source and target files.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8 text ({error}). Convert it: iconv -t UTF-8 {path}.") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start an empty one
    return [line.rstrip("\r") for line in lines]


def align(source: list[str], target: list[str], where: str, empty_lines: str = "skip") -> ParallelText:
    """Pairs with an empty side are skipped and counted (``empty_lines=skip``) or refused (``error``)."""
    if empty_lines not in EMPTY_POLICIES:
        raise DataError(f"data.empty_lines={empty_lines!r}: choose one of {', '.join(EMPTY_POLICIES)}.")
    out = ParallelText([], [])
    for number, (src, tgt) in enumerate(zip(source, target, strict=True), start=1):
        src, tgt = src.strip(), tgt.strip()
        if not src or not tgt:
            if empty_lines == "error":
                side = "source" if not src else "target"
                raise DataError(
                    f"{where}: line {number} is empty on the {side} side. Remove the pair, or set "
                    "data.empty_lines=skip to leave such pairs out (they are counted in the log)."
                )
            out.skipped_empty += 1
            out.skipped_lines.append(number)
            continue
        out.source.append(src)
        out.target.append(tgt)
    return out


def read_parallel(
    source_file: str | Path, target_file: str | Path, empty_lines: str = "skip"
) -> ParallelText:
    """The sentence pairs of two line-aligned files; different line counts are a DataError naming both."""
    source_file, target_file = Path(source_file).expanduser(), Path(target_file).expanduser()
    source, target = _read_lines(source_file), _read_lines(target_file)
    if len(source) != len(target):
        raise DataError(
            f"{source_file} has {len(source)} lines but {target_file} has {len(target)}: parallel files must be "
            "line-aligned (line i of one translates line i of the other). Check that both are the same split "
            "and were not cut or concatenated differently."
        )
    return align(source, target, f"{source_file} / {target_file}", empty_lines)


def read_tsv(
    path: str | Path,
    source_column: int = 0,
    target_column: int = 1,
    header: bool = False,
    empty_lines: str = "skip",
) -> ParallelText:
    """Pairs from a tab-separated file (one pair per line; e.g. Tatoeba/ManyThings exports)."""
    path = Path(path).expanduser()
    lines = _read_lines(path)[1 if header else 0 :]
    source, target = [], []
    need = max(source_column, target_column) + 1
    for number, line in enumerate(lines, start=2 if header else 1):
        cells = line.split("\t")
        if len(cells) < need:
            if not line.strip():
                cells = [""] * need
            else:
                raise DataError(
                    f"{path} line {number} has {len(cells)} tab-separated column(s); columns {source_column} "
                    f"(source) and {target_column} (target) are needed. Fix the line or set "
                    "data.source_column/data.target_column."
                )
        source.append(cells[source_column])
        target.append(cells[target_column])
    return align(source, target, str(path), empty_lines)
