"""Layout checks of the language-modelling datasets (torch-free; run before anything heavy).

A data config names one with `layout: litzoo.datamodules.language_model.layouts.<function>`. Each
check also opens the corpus files' first 64 KiB, so an empty or binary file stops within a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litzoo.data.layouts import layout_error
from litzoo.datamodules.language_model.readers import (
    PTB_FILES,
    WIKITEXT_FOLDERS,
    check_corpus_file,
    find_corpus_folder,
    wikitext_files,
)
from litzoo.errors import DataError


def _check_folder(
    name: str, root: Path, files: dict[str, str], subfolders: tuple[str, ...], note: str
) -> None:
    layout = "\n".join(f"  <root>/{file}   ({split})" for split, file in files.items()) + note
    if not root.is_dir():
        raise layout_error(name, root, "the directory does not exist", layout)
    folder = find_corpus_folder(root, list(files.values()), subfolders)
    if folder is None:
        raise layout_error(name, root, f"there is no {files['train']}", layout)
    missing = [file for file in files.values() if not (folder / file).is_file()]
    if missing:
        raise layout_error(name, folder, f"missing file(s) {', '.join(missing)}", layout)
    for file in files.values():
        check_corpus_file(folder / file)


def check_wikitext(data: Mapping[str, Any]) -> None:
    """WikiText-2/103: the three `wiki.*.tokens` (or `.raw` with data.raw=true) files in root or its zip folder."""
    raw = bool(data.get("raw", False))
    note = (
        "\n(root may also be the folder that holds the unpacked wikitext-2/ or wikitext-103/ folder; "
        f"data.raw={'true' if raw else 'false'} reads the {'.raw' if raw else '.tokens'} files)"
    )
    _check_folder(
        str(data.get("name", "wikitext")),
        Path(str(data["root"])).expanduser(),
        wikitext_files(raw),
        WIKITEXT_FOLDERS,
        note,
    )


def check_ptb(data: Mapping[str, Any]) -> None:
    """Penn Treebank as Mikolov distributes it: ptb.train.txt, ptb.valid.txt, ptb.test.txt."""
    _check_folder(
        str(data.get("name", "ptb")),
        Path(str(data["root"])).expanduser(),
        PTB_FILES,
        ("data",),
        "\n(Mikolov's simple-examples/data files; one sentence per line)",
    )


def check_text_files(data: Mapping[str, Any]) -> None:
    """`text_lm`: a training file (or list of files), optional validation/test files."""
    name = data.get("name", "text_lm")
    for key in ("train_files", "val_files", "test_files"):
        value = data.get(key)
        files = [value] if isinstance(value, str) else list(value or [])
        if key == "train_files" and not files:
            raise DataError(
                f"data={name}: data.train_files is empty; give the text file(s) to train on, e.g. "
                "data.train_files=[/data/corpus/train.txt]."
            )
        for file in files:
            check_corpus_file(file, f"data.{key} file")
