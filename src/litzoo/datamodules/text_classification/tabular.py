"""Reader for users' own text data: CSV, TSV or JSON Lines with configurable columns.

One file per split; the columns to use are named by the user::

    text,label                     {"text": "great film", "label": "pos"}
    "great film, really",pos       {"text": "dull", "label": "neg"}

A pair task names a second text column (`text_pair_column`); a regression task
sets `is_regression=True` and gets float labels. The label set is either declared
(`label_names`, class `i` = `label_names[i]`) or inferred from the training file,
sorted (numerically when every label is an integer), and then passed on to the
other splits so that class indices agree.

CSV uses standard quoting (fields may be quoted and contain commas or newlines);
TSV defaults to no quoting, like GLUE, because TSV texts often contain stray quotes.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litzoo.errors import ConfigError, DataError
from litzoo.text.examples import LabelIndex, RowProblems, TextExample, TextSplit, parse_score

csv.field_size_limit(2**31 - 1)

TABULAR_FORMATS: tuple[str, ...] = ("csv", "tsv", "jsonl")
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_QUOTING = {"minimal": csv.QUOTE_MINIMAL, "none": csv.QUOTE_NONE}

Record = dict[str, Any]


def detect_format(path: str | Path, fmt: str | None = None) -> str:
    """`csv`, `tsv` or `jsonl`: the declared format, else the one the file suffix implies."""
    if fmt is not None:
        if fmt not in TABULAR_FORMATS:
            raise ConfigError(f"Unknown table format {fmt!r} for {path}; use one of {list(TABULAR_FORMATS)}.")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise ConfigError(
            f"Cannot tell the format of {path} from its suffix {suffix!r}. Name the file .csv, .tsv or "
            ".jsonl, or set the format explicitly (data.format=csv|tsv|jsonl)."
        )
    return _SUFFIXES[suffix]


@dataclass(frozen=True)
class BadRow:
    """A row that could not even be split into the header's columns."""

    problem: str
    fix: str


Row = Record | BadRow | None  # None: a blank line


def iter_records(
    path: str | Path, fmt: str | None = None, quoting: str | None = None
) -> tuple[list[str], list[tuple[int, Row]]]:
    """The column names of a table and its rows as `(line, record)`; blank lines give `None`.

    For JSONL the column names are the keys of the first record. Files are read
    whole: per-split text tables fit in memory, and no handle outlives the call.
    """
    path = Path(path).expanduser()
    fmt = detect_format(path, fmt)
    if not path.is_file():
        raise DataError(
            f"Table {path} not found. Check the file paths in the data config (data.train_file, ...)."
        )
    if fmt == "jsonl":
        return _jsonl_records(path)
    quoting = quoting or ("minimal" if fmt == "csv" else "none")
    if quoting not in _QUOTING:
        raise ConfigError(f"quoting={quoting!r} is unknown; use 'minimal' or 'none'.")
    return _delimited_records(path, "," if fmt == "csv" else "\t", _QUOTING[quoting])


def _delimited_records(path: Path, delimiter: str, quoting: int) -> tuple[list[str], list[tuple[int, Row]]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter, quoting=quoting)
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise DataError(f"{path} is empty; the first line must be a header naming the columns.")
        rows: list[tuple[int, Row]] = []
        for row in reader:
            # line_num is the line where the record ends (a quoted CSV field may span lines).
            if not row or (len(row) == 1 and not row[0].strip()):
                rows.append((reader.line_num, None))
            elif len(row) != len(header):
                rows.append(
                    (
                        reader.line_num,
                        BadRow(
                            f"{len(row)} field(s) where the header has {len(header)}",
                            "A text probably contains an unquoted delimiter; quote it or fix the row.",
                        ),
                    )
                )
            else:
                rows.append((reader.line_num, dict(zip(header, row))))
    return header, rows


def _jsonl_records(path: Path) -> tuple[list[str], list[tuple[int, Row]]]:
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    parsed: list[tuple[int, Row]] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            parsed.append((number, None))
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(
                f"{path}, line {number}: not valid JSON ({error.msg} at column {error.colno}). "
                "JSON Lines files hold one JSON object per line."
            ) from None
        if not isinstance(value, dict):
            raise DataError(f"{path}, line {number}: expected a JSON object, found {type(value).__name__}.")
        parsed.append((number, value))
    first = next((record for _, record in parsed if isinstance(record, dict)), None)
    if first is None:
        raise DataError(f"{path} holds no JSON records.")
    return list(first), parsed


def table_columns(path: str | Path, fmt: str | None = None, quoting: str | None = None) -> list[str]:
    """The column names of a table from its first line (JSONL: the keys of the first record), rows unread."""
    path = Path(path).expanduser()
    fmt = detect_format(path, fmt)
    if not path.is_file():
        raise DataError(
            f"Table {path} not found. Check the file paths in the data config (data.train_file, ...)."
        )
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if fmt == "jsonl":
            for number, text in enumerate(handle, start=1):
                if text.strip():
                    try:
                        value = json.loads(text)
                    except json.JSONDecodeError as error:
                        raise DataError(f"{path}, line {number}: not valid JSON ({error.msg}).") from None
                    if not isinstance(value, dict):
                        raise DataError(
                            f"{path}, line {number}: expected a JSON object, found {type(value).__name__}."
                        )
                    return list(value)
            raise DataError(f"{path} holds no JSON records.")
        quoting = quoting or ("minimal" if fmt == "csv" else "none")
        if quoting not in _QUOTING:
            raise ConfigError(f"quoting={quoting!r} is unknown; use 'minimal' or 'none'.")
        reader = csv.reader(handle, delimiter="," if fmt == "csv" else "\t", quoting=_QUOTING[quoting])
        header = [name.strip() for name in next(reader, [])]
    if not header:
        raise DataError(f"{path} is empty; the first line must be a header naming the columns.")
    return header


def check_table_columns(
    path: str | Path, needed: Sequence[str], fmt: str | None = None, quoting: str | None = None
) -> None:
    """Raise `DataError` naming the columns of `needed` that the table's header lacks."""
    _require_columns(path, table_columns(path, fmt, quoting), needed)


def _label_key(raw: Any) -> str:
    """Labels are compared as strings so that `1` in JSON and `"1"` in CSV name the same class."""
    return raw.strip() if isinstance(raw, str) else str(raw)


def _sort_labels(names: set[str]) -> tuple[str, ...]:
    try:
        return tuple(sorted(names, key=int))
    except ValueError:
        return tuple(sorted(names))


def infer_label_names(
    path: str | Path, label_column: str = "label", fmt: str | None = None, quoting: str | None = None
) -> tuple[str, ...]:
    """The sorted set of labels found in a (training) file; numeric labels sort as numbers."""
    header, records = iter_records(path, fmt, quoting)
    _require_columns(path, header, [label_column])
    found = {
        _label_key(record[label_column])
        for _, record in records
        if isinstance(record, dict) and record.get(label_column) not in (None, "")
    }
    if not found:
        raise DataError(
            f"{path}: column {label_column!r} holds no labels; declare data.label_names or fix the file."
        )
    return _sort_labels(found)


def _require_columns(path: str | Path, header: Sequence[str], needed: Sequence[str]) -> None:
    missing = [name for name in needed if name not in header]
    if missing:
        raise DataError(
            f"{path}: column(s) {missing} not found; columns found: {list(header)}. Set data.text_column, "
            "data.text_pair_column and data.label_column to the names used in the file's header (JSONL: keys)."
        )


def read_tabular_split(
    path: str | Path,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str | None = "label",
    label_names: Sequence[str] | None = None,
    is_regression: bool = False,
    fmt: str | None = None,
    quoting: str | None = None,
    split: str = "train",
    on_invalid: str = "error",
) -> TextSplit:
    """Read one split of a user table into a `TextSplit`.

    `label_column=None` reads an unlabeled file (for prediction). Without
    `label_names`, a classification label set is inferred from this file
    (do that for train only, then pass the result to the other splits).
    """
    path = Path(path).expanduser()
    header, records = iter_records(path, fmt, quoting)
    text_columns = [text_column] + ([text_pair_column] if text_pair_column else [])
    _require_columns(path, header, text_columns + ([label_column] if label_column else []))
    names: tuple[str, ...] | None = None
    if label_column and not is_regression:
        names = (
            tuple(label_names)
            if label_names is not None
            else infer_label_names(path, label_column, fmt, quoting)
        )
    elif label_names is not None and not is_regression:
        names = tuple(label_names)
    labels = LabelIndex(names) if names is not None else None
    problems = RowProblems(path, on_invalid)
    examples: list[TextExample] = []
    pending_blank: int | None = None
    for line, record in records:
        if record is None:
            pending_blank = pending_blank or line
            continue
        if pending_blank is not None:
            problems.report(pending_blank, "empty line", "Remove empty lines from the file.")
            pending_blank = None
        example = _record_to_example(
            record, line, text_column, text_pair_column, label_column, labels, is_regression, split, problems
        )
        if example is not None:
            examples.append(example)
    problems.log_summary()
    if not examples:
        raise DataError(f"{path} contains no usable rows.")
    return TextSplit(
        name=split,
        path=path,
        examples=examples,
        label_names=None if is_regression else names,
        skipped=problems.messages,
        skipped_rows=problems.rows,
    )


def _record_to_example(
    record: Record | BadRow,
    line: int,
    text_column: str,
    text_pair_column: str | None,
    label_column: str | None,
    labels: LabelIndex | None,
    is_regression: bool,
    split: str,
    problems: RowProblems,
) -> TextExample | None:
    if isinstance(record, BadRow):
        problems.report(line, record.problem, record.fix)
        return None
    texts: list[str | None] = []
    for column in (text_column, text_pair_column):
        if column is None:
            texts.append(None)
            continue
        value = record.get(column)
        text = value.strip() if isinstance(value, str) else ""
        if not text:
            what = "missing" if column not in record else "empty"
            problems.report(line, f"{what} text in column {column!r}", "Remove the row or fill in the text.")
            return None
        texts.append(text)
    label: int | float | None = None
    if label_column is not None:
        raw = record.get(label_column)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            problems.report(
                line, f"missing label in column {label_column!r}", "Fill in the label or remove the row."
            )
            return None
        if is_regression:
            label = parse_score(str(raw))
            if label is None:
                problems.report(line, f"target {raw!r} in column {label_column!r} is not a number")
                return None
        else:
            assert labels is not None
            label = labels.lookup(_label_key(raw))
            if label is None:
                problems.report(
                    line,
                    f"label {raw!r} in column {label_column!r} is not in the label set ({labels.describe()})",
                    "Fix the label, or declare it in data.label_names if it is a genuine class.",
                )
                return None
    return TextExample(text_a=texts[0] or "", text_b=texts[1], label=label, guid=f"{split}-{line}")
