"""Finding and checking a treebank's files (torch-free; run before anything heavy starts).

`conf/data/conllu.yaml` names :func:`check_treebank` as its `layout`: it finds the split files
(`root` with UD release names, or explicit paths) and reads every one of them with the CoNLL-U
reader, so a line with the wrong number of columns, a HEAD outside its sentence, a cycle in a
gold tree or a dev/test relation the training file never has stops the run within seconds, naming
the file and the line, before torch is imported (reading costs about 1-2 s per 100,000 words).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litzoo.data.layouts import layout_error
from litzoo.errors import DataError

# How UD releases name the split files: <lang>_<treebank>-ud-<split>.conllu
UD_NAMES = {"train": "*-ud-train.conllu", "val": "*-ud-dev.conllu", "test": "*-ud-test.conllu"}
LAYOUT = (
    "  <root>/<lang>_<treebank>-ud-train.conllu\n  <root>/<lang>_<treebank>-ud-dev.conllu\n"
    "  <root>/<lang>_<treebank>-ud-test.conllu   (optional: without it, the test split is dev)\n"
    "or give the files: data.train_file=... data.val_file=... [data.test_file=...]"
)


def find_treebank_files(
    root: Path | str | None, files: Mapping[str, Any], fmt: str = "conllu", name: str = "conllu"
) -> dict[str, Path]:
    """The train/val/test file of a treebank: explicit paths first, else found in `root` by UD names."""
    root_path = Path(str(root)).expanduser() if root not in (None, "") else None
    found: dict[str, Path] = {}
    for split, pattern in UD_NAMES.items():
        explicit = files.get(split)
        if explicit:
            path = Path(str(explicit)).expanduser()
            if not path.is_absolute() and root_path is not None and not path.is_file():
                path = root_path / path
            if not path.is_file():
                raise DataError(
                    f"data.{split}_file={explicit}: the file does not exist. Give the path of the "
                    f"{split} split's {fmt.upper()} file."
                )
            found[split] = path
            continue
        if root_path is None:
            continue
        if not root_path.is_dir():
            raise layout_error(name, root_path, "the directory does not exist", LAYOUT)
        matches = sorted(
            root_path.glob(pattern if fmt == "conllu" else pattern.replace(".conllu", ".conll*"))
        )
        if len(matches) > 1:
            raise layout_error(
                name,
                root_path,
                f"several {split} files ({', '.join(m.name for m in matches)}); "
                f"give the one to use as data.{split}_file",
                LAYOUT,
            )
        if matches:
            found[split] = matches[0]
    missing = [split for split in ("train", "val") if split not in found]
    if missing:
        where = f"no {' and no '.join('dev' if s == 'val' else s for s in missing)} file"
        if root_path is None:
            raise DataError(
                f"data={name}: {where}: set data.root=<treebank folder> or "
                f"data.{missing[0]}_file=<file>. Expected layout:\n{LAYOUT}"
            )
        raise layout_error(name, root_path, where, LAYOUT)
    found.setdefault("test", found["val"])
    return found


def check_treebank(data: Mapping[str, Any]) -> None:
    """Find the split files, read each of them once with the checking reader, and (unless
    `data.unknown_relations=allow`) refuse dev/test relations the training file never has."""
    from litzoo.text.conllu import read_treebank
    from litzoo.text.parser_inputs import check_relations

    fmt = str(data.get("format", "conllu"))
    files = {"train": data.get("train_file"), "val": data.get("val_file"), "test": data.get("test_file")}
    paths = find_treebank_files(data.get("root"), files, fmt, str(data.get("name", "conllu")))
    read = {path: read_treebank(path, fmt) for path in dict.fromkeys(paths.values())}
    if data.get("unknown_relations", "error") == "error":
        check_relations(
            read[paths["train"]],
            [s for path in dict.fromkeys((paths["val"], paths["test"])) for s in read[path]],
        )
