"""Reader for the TREC question classification data (Li & Roth, 2002) in its original format.

Each line is `COARSE:fine question`, e.g.::

    DESC:manner How did serfdom develop in and then leave Russia ?

The canonical files are `train_5500.label` (5,452 questions) and `TREC_10.label`
(500 test questions); smaller training sets `train_1000.label` ... exist too, so
file names are configurable. The coarse task has 6 classes, the fine one 50.
The training file contains one byte that is not UTF-8 (0xF0), so lines fall back
to Latin-1 rather than failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from litzoo.errors import ConfigError, DataError
from litzoo.text.examples import LabelIndex, RowProblems, TextExample, TextSplit

TREC_FILES: dict[str, str] = {"train": "train_5500.label", "test": "TREC_10.label"}

TREC_COARSE_LABELS: tuple[str, ...] = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")

_FINE_BY_COARSE: dict[str, tuple[str, ...]] = {
    "ABBR": ("abb", "exp"),
    "DESC": ("def", "desc", "manner", "reason"),
    "ENTY": (
        "animal",
        "body",
        "color",
        "cremat",
        "currency",
        "dismed",
        "event",
        "food",
        "instru",
        "lang",
        "letter",
        "other",
        "plant",
        "product",
        "religion",
        "sport",
        "substance",
        "symbol",
        "techmeth",
        "termeq",
        "veh",
        "word",
    ),
    "HUM": ("desc", "gr", "ind", "title"),
    "LOC": ("city", "country", "mount", "other", "state"),
    "NUM": (
        "code",
        "count",
        "date",
        "dist",
        "money",
        "ord",
        "other",
        "perc",
        "period",
        "speed",
        "temp",
        "volsize",
        "weight",
    ),
}
TREC_FINE_LABELS: tuple[str, ...] = tuple(
    f"{coarse}:{fine}" for coarse in TREC_COARSE_LABELS for fine in _FINE_BY_COARSE[coarse]
)

Granularity = Literal["coarse", "fine"]


def trec_label_names(granularity: str = "coarse") -> tuple[str, ...]:
    """The class names, in class-index order, of the coarse (6) or fine (50) task."""
    if granularity == "coarse":
        return TREC_COARSE_LABELS
    if granularity == "fine":
        return TREC_FINE_LABELS
    raise ConfigError(
        f"TREC granularity {granularity!r} is unknown; use 'coarse' (6 classes) or 'fine' (50)."
    )


def read_trec_split(
    root: str | Path,
    split: str = "train",
    granularity: str = "coarse",
    files: Mapping[str, str] | None = None,
    on_invalid: str = "error",
) -> TextSplit:
    """Read one TREC split from the folder holding `train_5500.label` and `TREC_10.label`.

    `files` overrides the split-to-file mapping (e.g. `{"train": "train_1000.label"}`).
    """
    label_names = trec_label_names(granularity)
    mapping = {**TREC_FILES, **(files or {})}
    if split not in mapping:
        raise ConfigError(f"TREC has no split {split!r}; known splits: {sorted(mapping)}.")
    root = Path(root).expanduser()
    path = root / mapping[split]
    if not path.is_file():
        raise DataError(
            f"TREC: {path} not found. data.root must be the folder holding the original TREC files "
            f"({', '.join(mapping.values())}), one `LABEL:sub question` per line."
        )
    labels = LabelIndex(label_names)
    problems = RowProblems(path, on_invalid)
    examples: list[TextExample] = []
    for line_number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("latin-1")
        line = line.strip()
        if not line:
            continue
        tag, _, question = line.partition(" ")
        coarse, colon, _fine = tag.partition(":")
        if not colon or not question.strip():
            problems.report(
                line_number,
                f"expected `LABEL:sub question text`, found {line[:60]!r}",
                "Each line must start with a label such as DESC:manner, a space, then the question.",
            )
            continue
        name = coarse if granularity == "coarse" else tag
        label = labels.lookup(name)
        if label is None:
            problems.report(
                line_number, f"label {name!r} is not a TREC {granularity} label ({labels.describe()})"
            )
            continue
        examples.append(
            TextExample(text_a=question.strip(), text_b=None, label=label, guid=f"{split}-{line_number}")
        )
    problems.log_summary()
    if not examples:
        raise DataError(f"TREC: {path} contains no questions. Check that it is the original `.label` file.")
    return TextSplit(
        name=split,
        path=path,
        examples=examples,
        label_names=label_names,
        skipped=problems.messages,
        skipped_rows=problems.rows,
    )
