"""Checks of question-answering data configs that run before torch is imported (`layout:` in conf/data/).

- `check_windows`: the sliding-window settings can cut every context into windows
  (``doc_stride`` is the overlap of consecutive windows, so it must be smaller than the room a
  window has for the context: ``max_seq_length - max_query_length - 3`` tokens for BERT's
  ``[CLS] q [SEP] c [SEP]``);
- `check_squad`: that, plus the official files in ``data.root`` (or the explicit
  ``train_file``/``val_file``/``test_file``), and that each file's declared version (read from
  the few bytes where the official files keep it, not the whole file) is ``data.version``.

`find_squad_files` is the one place that decides which file is which split, for these checks and
for the datamodule alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litzoo.data.layouts import layout_error
from litzoo.datamodules.question_answering.squad import VERSIONS, normalize_version, version_mismatch
from litzoo.errors import ConfigError, DataError

# [CLS] question [SEP] context [SEP]: what BERT-family tokenizers add to a pair (RoBERTa adds 4; the
# datamodule re-checks with the tokenizer's own count).
PAIR_SPECIAL_TOKENS = 3

SQUAD_LAYOUT = """  <root>/train-v1.1.json   dev-v1.1.json   [test-v1.1.json]   (data.version=1.1)
  <root>/train-v2.0.json   dev-v2.0.json   [test-v2.0.json]   (data.version=2.0)
  as https://rajpurkar.github.io/SQuAD-explorer/ distributes them; the test split is dev unless a
  test file exists. Or give data.train_file / data.val_file / data.test_file."""

_VERSION_FIELD = re.compile(r'"version"\s*:\s*"([^"]*)"')


def context_room(
    max_seq_length: int, max_query_length: int, special_tokens: int = PAIR_SPECIAL_TOKENS
) -> int:
    """Context tokens a window holds beside the longest (truncated) question."""
    return int(max_seq_length) - int(max_query_length) - int(special_tokens)


def check_window_settings(
    max_seq_length: Any, doc_stride: Any, max_query_length: Any, special_tokens: int = PAIR_SPECIAL_TOKENS
) -> None:
    """Refuse window settings that cannot cut a long context into windows (`ConfigError`)."""
    values = {
        "max_seq_length": max_seq_length,
        "doc_stride": doc_stride,
        "max_query_length": max_query_length,
    }
    for key, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "doc_stride" else 1):
            raise ConfigError(
                f"data.{key}={value!r} must be a {'non-negative' if key == 'doc_stride' else 'positive'} "
                "integer (tokens)."
            )
    room = context_room(max_seq_length, max_query_length, special_tokens)
    if room < 1:
        raise ConfigError(
            f"data.max_seq_length={max_seq_length} leaves no room for the context beside a question of "
            f"data.max_query_length={max_query_length} tokens and {special_tokens} special tokens. Raise "
            "max_seq_length (384 is the SQuAD setting) or lower max_query_length (64)."
        )
    if doc_stride >= room:
        raise ConfigError(
            f"data.doc_stride={doc_stride} is the overlap of consecutive windows, but a window holds only {room} "
            f"context tokens (max_seq_length {max_seq_length} - max_query_length {max_query_length} - "
            f"{special_tokens} special tokens), so a context longer than one window could never be cut into "
            f"windows. Set data.doc_stride below {room} (SQuAD: 128 with max_seq_length 384), or raise "
            "data.max_seq_length."
        )


def check_windows(data: Mapping[str, Any]) -> None:
    """The layout check of the embedded dataset: only the window settings (its files are generated)."""
    check_window_settings(data.get("max_seq_length"), data.get("doc_stride"), data.get("max_query_length"))
    if data.get("version") is not None:
        normalize_version(data["version"], "data.version")


def find_squad_files(
    root: str | Path | None, version: str | None, files: Mapping[str, Any] | None = None, name: str = "squad"
) -> tuple[dict[str, Path], str]:
    """``({train, val, test}: path, version)``: explicit files win over `root`; the test split is dev
    unless ``test-v<version>.json`` (or `test_file`) exists. `version` None picks the one `root` holds."""
    files = {k: v for k, v in (files or {}).items() if v not in (None, "")}
    chosen = normalize_version(version, "data.version") if version not in (None, "") else None
    base = Path(str(root)).expanduser() if root not in (None, "") else None
    if base is not None and not base.is_dir() and not {"train", "val"} <= set(files):
        raise layout_error(name, base, "the folder does not exist", SQUAD_LAYOUT)
    if chosen is None:
        present = [v for v in VERSIONS if base is not None and (base / f"train-v{v}.json").is_file()]
        if len(present) > 1:
            raise ConfigError(
                f"data.root={base} holds both SQuAD 1.1 and 2.0 files; say which to use with data.version=1.1 or "
                "data.version=2.0 (2.0 adds unanswerable questions and the no-answer threshold)."
            )
        chosen = present[0] if present else None
    paths: dict[str, Path] = {}
    missing: list[str] = []
    for split, stem in (("train", "train"), ("val", "dev"), ("test", "test")):
        if split in files:
            path = Path(str(files[split])).expanduser()
            if not path.is_file():
                raise DataError(
                    f"data.{split}_file={path} does not exist; give the path of a SQuAD JSON file."
                )
            paths[split] = path
        elif base is not None and chosen is not None and (base / f"{stem}-v{chosen}.json").is_file():
            paths[split] = base / f"{stem}-v{chosen}.json"
        elif split != "test":
            missing.append(f"{stem}-v{chosen or '<version>'}.json")
    if missing:
        raise layout_error(name, base or Path("."), f"missing {', '.join(missing)}", SQUAD_LAYOUT)
    paths.setdefault("test", paths["val"])
    if chosen is None:  # explicit files only: the version is what they declare
        chosen = peek_version(paths["train"]) or "1.1"
    return paths, chosen


def peek_version(path: Path) -> str | None:
    """The `version` a SQuAD file declares, read from its first and last kilobytes (the official files
    end with ``"version": "1.1"}``), or None when it is not found there."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024)
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 1024))
            tail = handle.read()
    except OSError:
        return None
    for chunk in (tail, head):
        text = chunk.decode("utf-8", errors="ignore")
        matches = _VERSION_FIELD.findall(text)
        if matches:
            try:
                return normalize_version(matches[-1] if chunk is tail else matches[0], "version")
            except ConfigError:
                return None
    return None


def check_squad(data: Mapping[str, Any]) -> None:
    """The layout check of `data=squad`: window settings, the files, and their declared versions."""
    check_window_settings(data.get("max_seq_length"), data.get("doc_stride"), data.get("max_query_length"))
    files = {"train": data.get("train_file"), "val": data.get("val_file"), "test": data.get("test_file")}
    paths, version = find_squad_files(
        data.get("root"), data.get("version"), files, str(data.get("name", "squad"))
    )
    for path in dict.fromkeys(paths.values()):
        found = peek_version(path)
        if found is not None and found != version:
            raise DataError(version_mismatch(path, found, version, declared=True))
