"""Layout checks of the text-classification datasets (torch-free; run before anything heavy).

A data config names one with `layout: litzoo.datamodules.text_classification.layouts.<function>`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litzoo.data.layouts import layout_error


def check_glue(data: Mapping[str, Any]) -> None:
    """Check a GLUE task folder: its train/dev files exist and their headers have the task's columns."""
    from litzoo.datamodules.text_classification.glue import (
        check_glue_folder,  # torch-free; one line read per file
    )

    check_glue_folder(str(data["root"]), str(data["glue_task"]))


def check_trec(data: Mapping[str, Any]) -> None:
    """Check a TREC folder holds the training and test `.label` files."""
    from litzoo.datamodules.text_classification.trec import TREC_FILES

    root = Path(str(data["root"])).expanduser()
    files = {**TREC_FILES, **dict(data.get("files") or {})}
    layout = "\n".join(
        f"  <root>/{name}   ({split}; one `LABEL:sub question` per line)" for split, name in files.items()
    )
    if not root.is_dir():
        raise layout_error(data.get("name", "trec"), root, "the directory does not exist", layout)
    missing = [name for name in files.values() if not (root / name).is_file()]
    if missing:
        raise layout_error(data.get("name", "trec"), root, f"missing file(s) {', '.join(missing)}", layout)


def check_imdb(data: Mapping[str, Any]) -> None:
    """Check the unpacked `aclImdb` tree (train and test, each with pos/ and neg/)."""
    from litzoo.datamodules.text_classification.imdb import find_imdb_root

    base = find_imdb_root(str(data["root"]))
    layout = (
        "  <root>/train/pos/<id>_<rating>.txt, <root>/train/neg/..., <root>/test/pos/..., <root>/test/neg/..."
    )
    missing = [
        f"{split}/{label}"
        for split in ("train", "test")
        for label in ("pos", "neg")
        if not (base / split / label).is_dir()
    ]
    if missing:
        raise layout_error(data.get("name", "imdb"), base, f"missing folder(s) {', '.join(missing)}", layout)


def check_text_tabular(data: Mapping[str, Any]) -> None:
    """Check the tables exist and their headers (JSONL: first record's keys) have the configured columns."""
    from litzoo.datamodules.text_classification.tabular import check_table_columns

    columns = [data.get("text_column", "text")]
    columns += [c for c in (data.get("text_pair_column"), data.get("label_column", "label")) if c]
    for key in ("train_file", "val_file", "test_file"):
        if data.get(key):
            check_table_columns(str(data[key]), columns, data.get("format"), data.get("quoting"))
