"""Layout checks of the translation datasets (torch-free; run in validation, before anything heavy).

A data config names one with `layout: litzoo.datamodules.translation.layouts.<function>`. The line
counts of each source/target pair are compared here, so misaligned files stop within seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litzoo.data.layouts import layout_error
from litzoo.errors import DataError


def _count_lines(path: Path) -> int:
    count, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def split_files(data: Mapping[str, Any]) -> dict[str, tuple[Path, Path]]:
    """split -> (source file, target file): ``<root>/<prefix>.<lang>`` for each configured split prefix."""
    root = Path(str(data["root"])).expanduser()
    src, tgt = str(data["src_lang"]), str(data["tgt_lang"])
    prefixes = {
        "train": data.get("train_prefix"),
        "val": data.get("valid_prefix"),
        "test": data.get("test_prefix"),
    }
    return {
        split: (root / f"{prefix}.{src}", root / f"{prefix}.{tgt}")
        for split, prefix in prefixes.items()
        if prefix
    }


def check_parallel_text(data: Mapping[str, Any]) -> None:
    """`<root>/{train,valid,test}.{src_lang,tgt_lang}` (prefixes configurable) exist and are line-aligned."""
    name = str(data.get("name", "parallel_text"))
    root = Path(str(data["root"])).expanduser()
    layout = (
        "  <root>/<train_prefix>.<src_lang>  <root>/<train_prefix>.<tgt_lang>\n"
        "  <root>/<valid_prefix>.<src_lang>  ...  (one sentence per line, line i translates line i)\n"
        f"  here: train_prefix={data.get('train_prefix')}, valid_prefix={data.get('valid_prefix')}, "
        f"test_prefix={data.get('test_prefix')}, src_lang={data.get('src_lang')}, tgt_lang={data.get('tgt_lang')}"
    )
    if data.get("generate"):
        return  # the embedded pair is written on first use
    if not root.is_dir():
        raise layout_error(name, root, "the directory does not exist", layout)
    for split, (source, target) in split_files(data).items():
        missing = [p.name for p in (source, target) if not p.is_file()]
        if missing:
            raise layout_error(name, root, f"missing {split} file(s) {', '.join(missing)}", layout)
        n_source, n_target = _count_lines(source), _count_lines(target)
        if n_source != n_target:
            raise DataError(
                f"data={name}: {source} has {n_source} lines but {target} has {n_target}: parallel files must be "
                "line-aligned (line i of one translates line i of the other). Check that both are the same split."
            )


def check_tsv(data: Mapping[str, Any]) -> None:
    """`parallel_tsv`: the training file exists (validation/test files too, when given)."""
    name = str(data.get("name", "parallel_tsv"))
    for key in ("train_file", "valid_file", "test_file"):
        value = data.get(key)
        if key == "train_file" and not value:
            raise DataError(f"data={name}: set data.train_file=<pairs.tsv> (source<TAB>target per line).")
        if value and not Path(str(value)).expanduser().is_file():
            raise DataError(
                f"data={name}: data.{key}={value} does not exist. Give a TSV file with source<TAB>target lines."
            )
