"""Readers for the GLUE benchmark TSV files, exactly as `download_glue_data.py` distributes them.

Each GLUE task lives in its own folder (`SST-2/`, `MRPC/`, `MNLI/`, ...) holding
`train.tsv`, `dev.tsv` (MNLI: `dev_matched.tsv` and `dev_mismatched.tsv`) and
unlabeled `test*.tsv` files. Layouts differ per task; `GLUE_TASKS` records them:

======  ==========================================================  =====================
task    columns used (header names; CoLA has no header)              labels
======  ==========================================================  =====================
CoLA    source, label, original label, sentence (no header)          0 / 1
SST-2   sentence, label                                              0 / 1
MRPC    Quality, #1 ID, #2 ID, #1 String, #2 String                  0 / 1 (Quality)
QQP     id, qid1, qid2, question1, question2, is_duplicate           0 / 1
STS-B   index, genre, ..., sentence1, sentence2, score               float in [0, 5]
MNLI    index, ..., sentence1, sentence2, label1, [...], gold_label  contradiction / entailment / neutral
QNLI    index, question, sentence, label                             entailment / not_entailment
RTE     index, sentence1, sentence2, label                           entailment / not_entailment
WNLI    index, sentence1, sentence2, label                           0 / 1
======  ==========================================================  =====================

GLUE test files carry no labels, so evaluation happens on the dev split(s).
Files are read with `csv.QUOTE_NONE`: GLUE texts contain unbalanced quotes
(`" The foodservice pie business ...`) that a quoting reader would glue across lines.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from litzoo.errors import ConfigError, DataError
from litzoo.text.examples import (
    LabelIndex,
    RowProblems,
    TextExample,
    TextSplit,
    parse_score,
)

# QUOTE_NONE means a field ends only at a tab or newline; long IMDB-like rows in
# user TSVs can exceed the 128 KiB default, which would raise a bare csv.Error.
csv.field_size_limit(2**31 - 1)

_TRAIN_DEV = {"train": "train.tsv", "dev": "dev.tsv"}


@dataclass(frozen=True)
class GlueTask:
    """How one GLUE task is laid out on disk and how it is scored.

    Column fields are header names; for a header-less file (CoLA train/dev)
    `headerless_columns` names the columns by position. `label_names` are the
    label strings as written in the file, in class-index order; None marks a
    regression task. `class_names` are the human-readable names of those classes.
    """

    name: str
    folder: str
    text_a: str
    text_b: str | None
    label: str
    label_names: tuple[str, ...] | None
    metrics: tuple[str, ...]
    splits: Mapping[str, str] = field(default_factory=lambda: dict(_TRAIN_DEV))
    eval_splits: tuple[str, ...] = ("dev",)
    test_splits: Mapping[str, str] = field(default_factory=lambda: {"test": "test.tsv"})
    headerless_columns: tuple[str, ...] | None = None
    class_names: tuple[str, ...] | None = None

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    @property
    def is_pair(self) -> bool:
        return self.text_b is not None

    @property
    def num_labels(self) -> int:
        return 1 if self.label_names is None else len(self.label_names)

    @property
    def primary_metric(self) -> str:
        """The metric GLUE ranks this task by (first of `metrics`)."""
        return self.metrics[0]

    def file_for(self, split: str) -> str:
        files = {**self.splits, **self.test_splits}
        if split not in files:
            raise ConfigError(
                f"GLUE task {self.name} has no split {split!r}; its splits are {sorted(files)}. "
                f"Pick one of those (for {self.name} evaluation uses {list(self.eval_splits)})."
            )
        return files[split]


_BINARY = ("0", "1")
_NLI2 = ("entailment", "not_entailment")

GLUE_TASKS: dict[str, GlueTask] = {
    task.name: task
    for task in (
        GlueTask(
            name="cola",
            folder="CoLA",
            text_a="sentence",
            text_b=None,
            label="label",
            label_names=_BINARY,
            class_names=("unacceptable", "acceptable"),
            metrics=("mcc",),
            headerless_columns=("source", "label", "original_label", "sentence"),
        ),
        GlueTask(
            name="sst2",
            folder="SST-2",
            text_a="sentence",
            text_b=None,
            label="label",
            label_names=_BINARY,
            class_names=("negative", "positive"),
            metrics=("accuracy",),
        ),
        GlueTask(
            name="mrpc",
            folder="MRPC",
            text_a="#1 String",
            text_b="#2 String",
            label="Quality",
            label_names=_BINARY,
            class_names=("not_equivalent", "equivalent"),
            metrics=("f1", "accuracy"),
        ),
        GlueTask(
            name="qqp",
            folder="QQP",
            text_a="question1",
            text_b="question2",
            label="is_duplicate",
            label_names=_BINARY,
            class_names=("not_duplicate", "duplicate"),
            metrics=("f1", "accuracy"),
        ),
        GlueTask(
            name="stsb",
            folder="STS-B",
            text_a="sentence1",
            text_b="sentence2",
            label="score",
            label_names=None,
            metrics=("pearson", "spearman"),
        ),
        GlueTask(
            name="mnli",
            folder="MNLI",
            text_a="sentence1",
            text_b="sentence2",
            label="gold_label",
            label_names=("contradiction", "entailment", "neutral"),
            metrics=("accuracy",),
            splits={
                "train": "train.tsv",
                "dev_matched": "dev_matched.tsv",
                "dev_mismatched": "dev_mismatched.tsv",
            },
            eval_splits=("dev_matched", "dev_mismatched"),
            test_splits={"test_matched": "test_matched.tsv", "test_mismatched": "test_mismatched.tsv"},
        ),
        GlueTask(
            name="qnli",
            folder="QNLI",
            text_a="question",
            text_b="sentence",
            label="label",
            label_names=_NLI2,
            metrics=("accuracy",),
        ),
        GlueTask(
            name="rte",
            folder="RTE",
            text_a="sentence1",
            text_b="sentence2",
            label="label",
            label_names=_NLI2,
            metrics=("accuracy",),
        ),
        GlueTask(
            name="wnli",
            folder="WNLI",
            text_a="sentence1",
            text_b="sentence2",
            label="label",
            label_names=_BINARY,
            class_names=("not_entailment", "entailment"),
            metrics=("accuracy",),
        ),
    )
}


def get_glue_task(name: str | GlueTask) -> GlueTask:
    """The `GlueTask` for a name; folder spellings (`SST-2`, `sts_b`) are accepted."""
    if isinstance(name, GlueTask):
        return name
    key = name.lower().replace("-", "").replace("_", "")
    if key not in GLUE_TASKS:
        raise ConfigError(
            f"Unknown GLUE task {name!r}. Known tasks: {', '.join(sorted(GLUE_TASKS))}. "
            "For your own CSV/TSV/JSONL data use the generic tabular reader instead."
        )
    return GLUE_TASKS[key]


def expected_layout(task: GlueTask) -> str:
    """A short picture of the folder a task expects, for error messages."""
    if task.headerless_columns:
        header = "no header; columns " + ", ".join(task.headerless_columns)
    else:
        header = "header includes " + ", ".join(c for c in (task.text_a, task.text_b, task.label) if c)
    files = ", ".join(task.splits.values())
    return f"{task.folder}/ holding {files} (tab-separated, {header})"


def folder_contents(root: Path, limit: int = 8) -> str:
    """The names in a folder for an error message, shortened for big folders."""
    names = sorted(p.name for p in root.iterdir())
    if len(names) <= limit:
        return str(names)
    return f"{len(names)} entries, e.g. {names[:limit]}"


def check_glue_folder(root: str | Path, task: str | GlueTask) -> None:
    """Check, without reading the rows, that `root` holds the task's labeled files with the right columns.

    Cheap enough to run during config validation (it reads one line per file).
    """
    spec = get_glue_task(task)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(
            f"GLUE {spec.name}: data.root={root} is not a directory. Point data.root at the {spec.folder} "
            f"folder exactly as GLUE distributes it: {expected_layout(spec)}."
        )
    missing = [name for name in spec.splits.values() if not (root / name).is_file()]
    if missing:
        raise DataError(
            f"GLUE {spec.name}: {', '.join(missing)} not found in {root} (the folder holds {folder_contents(root)}). Point "
            f"data.root at the {spec.folder} folder exactly as GLUE distributes it: {expected_layout(spec)}."
        )
    for name in spec.splits.values():
        path = root / name
        with path.open(encoding="utf-8-sig", newline="") as handle:
            _resolve_columns(
                csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), path, spec, labeled=True
            )


def read_glue_split(
    root: str | Path,
    task: str | GlueTask,
    split: str = "train",
    on_invalid: str = "error",
) -> TextSplit:
    """Read one split of a GLUE task from its folder (the one holding `train.tsv`).

    Labeled splits (`train`, `dev`, MNLI `dev_matched`/`dev_mismatched`) must have
    a valid label on every row; test splits are read with `label=None`. Bad rows
    (wrong number of fields, empty text, unknown label) raise `DataError` naming
    file and line, or are dropped and listed in `TextSplit.skipped` with `on_invalid="skip"`.
    """
    spec = get_glue_task(task)
    root = Path(root).expanduser()
    path = root / spec.file_for(split)
    if not path.is_file():
        where = f"the folder holds {folder_contents(root)}" if root.is_dir() else "that folder does not exist"
        raise DataError(
            f"GLUE {spec.name}: {path} not found ({where}). Point data.root at the {spec.folder} folder "
            f"exactly as GLUE distributes it: {expected_layout(spec)}."
        )
    labeled = split in spec.splits
    examples, problems = _read_rows(path, spec, split, labeled, on_invalid)
    problems.log_summary()
    if not examples:
        raise DataError(
            f"GLUE {spec.name}: {path} contains no usable rows. Check that the file is not empty."
        )
    return TextSplit(
        name=split,
        path=path,
        examples=examples,
        label_names=spec.label_names,
        skipped=problems.messages,
        skipped_rows=problems.rows,
    )


def _read_rows(
    path: Path, spec: GlueTask, split: str, labeled: bool, on_invalid: str
) -> tuple[list[TextExample], RowProblems]:
    problems = RowProblems(path, on_invalid)
    labels = LabelIndex(spec.label_names) if spec.label_names is not None else None
    examples: list[TextExample] = []
    # utf-8-sig: the MRPC files produced from the Microsoft release start with a byte-order mark.
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        layout, first_data_row = _resolve_columns(reader, path, spec, labeled)
        rows = _numbered(reader, first_data_row)
        pending_blank: int | None = None
        for line, row in rows:
            if not row or (len(row) == 1 and not row[0].strip()):
                # A trailing newline is harmless; a blank line *between* rows usually means a
                # text with an embedded line break, so it is reported once the next row shows up.
                pending_blank = pending_blank or line
                continue
            if pending_blank is not None:
                problems.report(pending_blank, "empty line", "Remove empty lines from the file.")
                pending_blank = None
            example = _row_to_example(row, line, layout, spec, split, labels, labeled, problems)
            if example is not None:
                examples.append(example)
    return examples, problems


@dataclass(frozen=True)
class _Layout:
    positions: dict[str, int]
    width: int


def _numbered(
    reader: Iterator[list[str]], first_data_row: list[str] | None
) -> Iterator[tuple[int, list[str]]]:
    """Rows with their 1-based line numbers (QUOTE_NONE: one row per physical line)."""
    if first_data_row is not None:
        yield 1, first_data_row
    yield from enumerate(reader, start=2)


def _resolve_columns(
    reader: Iterator[list[str]], path: Path, spec: GlueTask, labeled: bool
) -> tuple[_Layout, list[str] | None]:
    """Map the needed column names to positions; returns the first data row if the file has no header."""
    first = next(reader, None)
    if first is None:
        raise DataError(f"GLUE {spec.name}: {path} is empty. Expected {expected_layout(spec)}.")
    needed = [spec.text_a] + ([spec.text_b] if spec.text_b else []) + ([spec.label] if labeled else [])
    if spec.headerless_columns is not None and labeled:
        if len(first) != len(spec.headerless_columns):
            raise DataError(
                f"GLUE {spec.name}: {path} line 1 has {len(first)} column(s) {first[:6]}, but a {spec.folder} "
                f"{path.name} has no header and exactly {len(spec.headerless_columns)} columns "
                f"({', '.join(spec.headerless_columns)}). Use the file as GLUE distributes it."
            )
        positions = {name: i for i, name in enumerate(spec.headerless_columns)}
        return _Layout(positions, len(first)), first
    header = [name.strip() for name in first]
    missing = [name for name in needed if name not in header]
    if missing:
        raise DataError(
            f"GLUE {spec.name}: header of {path} does not match the {spec.folder} layout: missing column(s) "
            f"{missing}; columns found: {header}; expected columns including {needed}. Check that data.root "
            f"points at the {spec.folder} folder and that the file was not re-saved with another layout."
        )
    return _Layout({name: header.index(name) for name in needed}, len(header)), None


def _row_to_example(
    row: list[str],
    line: int,
    layout: _Layout,
    spec: GlueTask,
    split: str,
    labels: LabelIndex | None,
    labeled: bool,
    problems: RowProblems,
) -> TextExample | None:
    if len(row) != layout.width:
        problems.report(
            line,
            f"{len(row)} tab-separated field(s) where the file has {layout.width} columns",
            "A text probably contains a tab or a line break; fix or remove that row.",
        )
        return None
    text_a = row[layout.positions[spec.text_a]].strip()
    text_b = row[layout.positions[spec.text_b]].strip() if spec.text_b else None
    for column, text in ((spec.text_a, text_a), (spec.text_b, text_b)):
        if column is not None and not text:
            problems.report(line, f"empty text in column {column!r}", "Remove the row or fill in the text.")
            return None
    label: int | float | None = None
    if labeled:
        raw = row[layout.positions[spec.label]]
        if labels is None:
            label = parse_score(raw)
            if label is None:
                problems.report(line, f"score {raw!r} in column {spec.label!r} is not a number")
                return None
        else:
            label = labels.lookup(raw)
            if label is None:
                problems.report(
                    line,
                    f"label {raw!r} in column {spec.label!r} is not one of {spec.name}'s labels ({labels.describe()})",
                    "Fix the label or remove the row.",
                )
                return None
    return TextExample(text_a=text_a, text_b=text_b, label=label, guid=f"{split}-{line}")
