"""Reader for the Large Movie Review Dataset (Maas et al., 2011) in its `aclImdb` folder layout.

The archive unpacks to::

    aclImdb/
      train/pos/<id>_<rating>.txt   12,500 reviews rated 7-10
      train/neg/<id>_<rating>.txt   12,500 reviews rated 1-4
      train/unsup/...               unlabeled reviews (not read here)
      test/pos/, test/neg/          the same for the test split

Reviews contain HTML line breaks (`<br />`), replaced by a space. Files are read
in numeric id order so that the example order does not depend on the file system.
"""

from __future__ import annotations

import re
from pathlib import Path

from litzoo.errors import ConfigError, DataError
from litzoo.text.examples import RowProblems, TextExample, TextSplit

IMDB_LABELS: tuple[str, ...] = ("neg", "pos")
IMDB_SPLITS: tuple[str, ...] = ("train", "test")

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_NAME = re.compile(r"^(\d+)_(\d+)\.txt$")


def clean_review(text: str) -> str:
    """Replace HTML line breaks with spaces and collapse runs of whitespace."""
    return _SPACES.sub(" ", _BREAK.sub(" ", text)).strip()


def find_imdb_root(root: str | Path) -> Path:
    """The `aclImdb` folder, whether `root` is that folder or its parent."""
    root = Path(root).expanduser()
    for candidate in (root, root / "aclImdb"):
        if (candidate / "train" / "pos").is_dir() or (candidate / "test" / "pos").is_dir():
            return candidate
    raise DataError(
        f"IMDB: no aclImdb layout under {root}. data.root must be the unpacked `aclImdb` folder (or its "
        "parent) holding train/pos, train/neg, test/pos and test/neg with one <id>_<rating>.txt per review."
    )


def _sort_key(path: Path) -> tuple[int, str]:
    match = _NAME.match(path.name)
    return (int(match.group(1)) if match else -1, path.name)


def read_imdb_split(root: str | Path, split: str = "train", on_invalid: str = "error") -> TextSplit:
    """Read the labeled reviews of one split (`train` or `test`): negatives first, then positives.

    `guid` is `<split>/<pos|neg>/<file stem>`, so the star rating stays visible.
    """
    if split not in IMDB_SPLITS:
        raise ConfigError(f"IMDB has no split {split!r}; use one of {list(IMDB_SPLITS)}.")
    base = find_imdb_root(root)
    split_dir = base / split
    examples: list[TextExample] = []
    problems = RowProblems(split_dir, on_invalid)
    for label, name in enumerate(IMDB_LABELS):
        folder = split_dir / name
        if not folder.is_dir():
            raise DataError(
                f"IMDB: {folder} is missing. The {split} split needs both {split}/neg and {split}/pos "
                "folders as in the original aclImdb archive."
            )
        for path in sorted(folder.glob("*.txt"), key=_sort_key):
            text = clean_review(path.read_text(encoding="utf-8", errors="replace"))
            if not text:
                problems.report(f"file {path.name} in {name}/", "empty review", "Delete the empty file.")
                continue
            examples.append(
                TextExample(text_a=text, text_b=None, label=label, guid=f"{split}/{name}/{path.stem}")
            )
    problems.log_summary()
    if not examples:
        raise DataError(f"IMDB: {split_dir} holds no .txt reviews under neg/ and pos/.")
    return TextSplit(
        name=split,
        path=split_dir,
        examples=examples,
        label_names=IMDB_LABELS,
        skipped=problems.messages,
        skipped_rows=problems.rows,
    )
