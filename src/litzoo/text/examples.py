"""The record every text reader returns, and the bookkeeping they share.

Every text dataset in litzoo, whatever its on-disk format (GLUE TSV, TREC label
lines, the IMDB folder tree, a user's CSV), is read into the same shape: a
`TextSplit` holding `TextExample`s. A single-sentence task leaves `text_b` as
None; a sentence-pair task fills it; a regression task (STS-B) carries a float
label; an unlabeled file (GLUE test) carries None. Downstream code (tokenizers,
datamodules, prediction) only ever sees this shape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, overload

from litzoo.errors import DataError

log = logging.getLogger(__name__)

OnInvalid = Literal["error", "skip"]
ON_INVALID_CHOICES: tuple[str, ...] = ("error", "skip")


@dataclass(frozen=True, slots=True)
class TextExample:
    """One example: a text (or a pair of texts), its label and a stable id.

    `label` is the class index for classification, the score for regression and
    None when the file carries no labels. `guid` names where the example came
    from (`"train-12"`, `"train/pos/123_9"`) so errors and predictions can point back.
    """

    text_a: str
    text_b: str | None
    label: int | float | None
    guid: str


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A row a reader dropped under `on_invalid="skip"`: where it was and why."""

    file: str
    line: int | str  # a 1-based line number, or a description such as "file 12_7.txt in pos/"
    reason: str

    def as_dict(self, split: str) -> dict[str, str | int]:
        return {"split": split, "file": self.file, "line": self.line, "reason": self.reason}


@dataclass
class TextSplit(Sequence[TextExample]):
    """The examples of one split of one dataset, with the facts needed to use them.

    `label_names[i]` is the name of class `i` (as written in the file); it is None
    for regression. `skipped` holds one message per row dropped under
    `on_invalid="skip"`, so a caller can log how many rows were lost and why;
    `skipped_rows` holds the same rows as records (file, line, reason) for run records.
    """

    name: str
    path: Path
    examples: list[TextExample]
    label_names: tuple[str, ...] | None
    skipped: list[str] = field(default_factory=list)
    skipped_rows: list[SkippedRow] = field(default_factory=list)

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    @property
    def num_labels(self) -> int:
        """Output size of a head for this split: number of classes, 1 for regression."""
        return 1 if self.label_names is None else len(self.label_names)

    @property
    def is_pair(self) -> bool:
        return any(example.text_b is not None for example in self.examples)

    @property
    def has_labels(self) -> bool:
        return bool(self.examples) and all(example.label is not None for example in self.examples)

    def __len__(self) -> int:
        return len(self.examples)

    @overload
    def __getitem__(self, index: int) -> TextExample: ...

    @overload
    def __getitem__(self, index: slice) -> list[TextExample]: ...

    def __getitem__(self, index: int | slice) -> TextExample | list[TextExample]:
        return self.examples[index]

    def __iter__(self) -> Iterator[TextExample]:
        return iter(self.examples)


def check_on_invalid(on_invalid: str) -> OnInvalid:
    """Validate the `on_invalid` option shared by all readers."""
    if on_invalid not in ON_INVALID_CHOICES:
        raise DataError(
            f"on_invalid={on_invalid!r} is not a valid choice. Use 'error' (stop at the first bad row, "
            "the default) or 'skip' (drop bad rows and report how many were dropped)."
        )
    return on_invalid  # type: ignore[return-value]


class RowProblems:
    """Collects or raises the problems found while reading one file.

    With `on_invalid="error"` the first problem raises a `DataError` that names
    the file and line; with `"skip"` the row is dropped and the message kept.
    """

    def __init__(self, path: Path, on_invalid: str) -> None:
        self.path = path
        self.on_invalid = check_on_invalid(on_invalid)
        self.messages: list[str] = []
        self.rows: list[SkippedRow] = []

    def report(self, line: int | str, problem: str, fix: str = "") -> None:
        where = f"{self.path}, line {line}" if isinstance(line, int) else f"{self.path} ({line})"
        message = f"{where}: {problem}"
        if self.on_invalid == "error":
            hint = f" {fix}" if fix else ""
            raise DataError(
                f"{message}.{hint} To drop such rows instead of stopping, set data.bad_samples=skip "
                "(on_invalid='skip' when calling the reader); the dropped rows are counted and logged."
            )
        self.messages.append(message)
        self.rows.append(SkippedRow(str(self.path), line, problem))

    def log_summary(self) -> None:
        if self.messages:
            log.warning(
                "%s: skipped %d invalid row(s); first: %s", self.path, len(self.messages), self.messages[0]
            )


class LabelIndex:
    """Maps the label strings written in a file to class indices, rejecting unknown ones."""

    def __init__(self, label_names: Sequence[str]) -> None:
        self.label_names = tuple(label_names)
        if len(set(self.label_names)) != len(self.label_names):
            raise DataError(
                f"The label set {list(self.label_names)} contains duplicates; list each label once."
            )
        self._index = {name: i for i, name in enumerate(self.label_names)}

    def lookup(self, raw: str) -> int | None:
        """Class index of `raw` (whitespace-stripped), or None when it is not in the label set."""
        return self._index.get(raw.strip())

    def describe(self) -> str:
        return ", ".join(repr(name) for name in self.label_names)


def parse_score(raw: str) -> float | None:
    """A regression target as float, or None when the field is not a finite number."""
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None
