"""Readers of the public word-embedding evaluation sets: word similarity and word analogy files.

**Word similarity** (``word1 word2 ... score``; Spearman correlation with cosine similarity):

==========================  =============================================================  ===========
set                         file (as distributed)                                           columns
==========================  =============================================================  ===========
WordSim353 (all)            ``combined.csv`` / ``combined.tab``, gensim's ``wordsim353.tsv``  w1 w2 score
WordSim353 similarity       ``wordsim_similarity_goldstandard.txt`` (Agirre et al. 2009)    w1 w2 score
WordSim353 relatedness      ``wordsim_relatedness_goldstandard.txt``                        w1 w2 score
SimLex-999                  ``SimLex-999.txt``, gensim's ``simlex999.txt``                  w1 w2 POS score ...
MEN                         ``MEN_dataset_natural_form_full``                               w1 w2 score
RareWords (Stanford RW)     ``rw.txt``                                                      w1 w2 score r1 .. r10
SimVerb-3500                ``SimVerb-3500.txt`` (and its dev/test splits)                  w1 w2 POS score relation
==========================  =============================================================  ===========

One rule reads them all: fields are split on tabs (else commas, else spaces); the first two are
the words and the gold score is the first number after them. Blank lines and ``#`` comments are
skipped, and so is a first line without a number (a header such as ``Word 1,Word 2,Human (mean)``).

**Word analogy**, the Google format (Mikolov et al. 2013, ``questions-words.txt``): ``: section``
lines open a section and each other line is ``a b c d`` ("a is to b as c is to d"). Sections
whose name starts with ``gram`` are syntactic, the others semantic.

A file that fits neither layout is refused with a `DataError` naming its line and listing the
accepted formats. Pure Python (no torch): validation reads these files before training starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litzoo.errors import DataError, DependencyError

# Official file names -> the set's name in metric keys (test/<name>_spearman, test/analogy_acc).
KNOWN_FILES = {
    "wordsim353.tsv": "wordsim353",
    "combined.csv": "wordsim353",
    "combined.tab": "wordsim353",
    "wordsim_similarity_goldstandard.txt": "wordsim353_similarity",
    "wordsim_relatedness_goldstandard.txt": "wordsim353_relatedness",
    "simlex-999.txt": "simlex999",
    "simlex999.txt": "simlex999",
    "men_dataset_natural_form_full": "men",
    "men.txt": "men",
    "rw.txt": "rarewords",
    "simverb-3500.txt": "simverb3500",
    "simverb-500-dev.txt": "simverb500_dev",
    "simverb-3000-test.txt": "simverb3000_test",
    "questions-words.txt": "analogy",
}

EMBEDDED_EVALUATION_FILES = ("wordsim353.tsv", "simlex999.txt", "questions-words.txt")

ACCEPTED_FORMATS = (
    "word similarity: one pair per line, `word1 word2 [other columns] score`, separated by tabs, commas or "
    "spaces, the score being the first number after the two words (WordSim353 combined.csv/.tab and the "
    "similarity/relatedness goldstandard files, SimLex-999.txt, MEN_dataset_natural_form_full, rw.txt, "
    "SimVerb-3500.txt); word analogy: the Google questions-words.txt format, `: section` lines followed by "
    "`a b c d` lines"
)


@dataclass(frozen=True)
class SimilaritySet:
    """Word pairs with human similarity scores."""

    name: str
    path: Path
    pairs: tuple[tuple[str, str], ...]
    scores: tuple[float, ...]

    kind = "similarity"

    def __len__(self) -> int:
        return len(self.pairs)


@dataclass(frozen=True)
class AnalogySet:
    """Analogy questions ``a : b :: c : d`` with their section and whether it is syntactic."""

    name: str
    path: Path
    questions: tuple[tuple[str, str, str, str], ...]
    sections: tuple[str, ...]  # section names in file order
    section_of: tuple[int, ...]  # per question: index into `sections`

    kind = "analogy"

    def __len__(self) -> int:
        return len(self.questions)

    def is_syntactic(self, section: int) -> bool:
        return self.sections[section].lower().startswith("gram")


EvaluationSet = SimilaritySet | AnalogySet


def set_name(path: str | Path) -> str:
    """The set's name in metric keys: the official name for a known file, else the file's stem
    in lower case with other characters than letters, digits and ``_`` replaced by ``_``."""
    path = Path(path)
    known = KNOWN_FILES.get(path.name.lower())
    if known:
        return known
    return re.sub(r"[^a-z0-9_]+", "_", path.stem.lower()).strip("_") or "set"


def read_evaluation_set(path: str | Path, name: str | None = None) -> EvaluationSet:
    """A word-similarity or analogy file, its layout recognised from its lines."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"Evaluation file {path} not found. Accepted formats: {ACCEPTED_FORMATS}.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(
            f"{path} is not UTF-8 text, so it is no evaluation file. Accepted formats: {ACCEPTED_FORMATS}."
        ) from None
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1)]
    lines = [(number, line) for number, line in lines if line and not line.startswith("#")]
    if not lines:
        raise DataError(f"{path} holds no evaluation items. Accepted formats: {ACCEPTED_FORMATS}.")
    name = name or set_name(path)
    if any(line.startswith(":") for _, line in lines):
        return _read_analogies(path, name, lines)
    return _read_pairs(path, name, lines)


def read_evaluation_sets(paths: Iterable[str | Path]) -> list[EvaluationSet]:
    """Several files; two files that would log under the same name are refused."""
    sets = [read_evaluation_set(p) for p in paths]
    names = [s.name for s in sets]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        files = [str(s.path) for s in sets if s.name in clash]
        raise DataError(
            f"Evaluation files {', '.join(files)} would all be logged as {clash[0]}; give only one of them."
        )
    return sets


def find_evaluation_files(folder: str | Path) -> list[Path]:
    """The files of `folder` with an official name (see the table above), in a fixed order."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(
            f"data.eval_dir={folder} is not a folder. Give the folder holding the evaluation files "
            f"({', '.join(sorted(KNOWN_FILES))})."
        )
    found = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
    by_name: dict[str, Path] = {}
    for file_name, set_key in KNOWN_FILES.items():  # the first official file of each set wins
        if file_name in found and set_key not in by_name:
            by_name[set_key] = found[file_name]
    return list(by_name.values())


def _split(line: str) -> list[str]:
    if "\t" in line:
        return [part.strip() for part in line.split("\t")]
    if "," in line:
        return [part.strip() for part in line.split(",")]
    return line.split()


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _read_pairs(path: Path, name: str, lines: Sequence[tuple[int, str]]) -> SimilaritySet:
    pairs, scores = [], []
    for position, (number, line) in enumerate(lines):
        fields = _split(line)
        score = next((v for v in (_number(f) for f in fields[2:]) if v is not None), None)
        if score is None and position == 0:
            continue  # a header line
        if len(fields) < 3 or score is None or not fields[0] or not fields[1]:
            raise DataError(
                f"{path}, line {number}: {line[:80]!r} is neither a word pair with a score nor an analogy "
                f"section, so the file's format is unknown. Accepted formats: {ACCEPTED_FORMATS}."
            )
        pairs.append((fields[0], fields[1]))
        scores.append(score)
    if not pairs:
        raise DataError(f"{path} holds a header but no word pairs. Accepted formats: {ACCEPTED_FORMATS}.")
    return SimilaritySet(name, path, tuple(pairs), tuple(scores))


def _read_analogies(path: Path, name: str, lines: Sequence[tuple[int, str]]) -> AnalogySet:
    sections: list[str] = []
    questions: list[tuple[str, str, str, str]] = []
    section_of: list[int] = []
    for number, line in lines:
        if line.startswith(":"):
            sections.append(line[1:].strip() or f"section{len(sections) + 1}")
            continue
        words = line.split()
        if len(words) != 4 or not sections:
            problem = (
                "comes before the first `: section` line" if sections == [] else f"has {len(words)} words"
            )
            raise DataError(
                f"{path}, line {number}: {line[:80]!r} {problem}; an analogy file has `: section` lines and "
                f"`a b c d` questions. Accepted formats: {ACCEPTED_FORMATS}."
            )
        questions.append((words[0], words[1], words[2], words[3]))
        section_of.append(len(sections) - 1)
    if not questions:
        raise DataError(
            f"{path} has analogy sections but no questions. Accepted formats: {ACCEPTED_FORMATS}."
        )
    return AnalogySet(name, path, tuple(questions), tuple(sections), tuple(section_of))


# ----------------------------------------------------------------------------- which files


def gensim_test_data() -> Path:
    """The folder of gensim's bundled test data (``gensim.test.utils.datapath('')``), without importing gensim."""
    import importlib.util

    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(
            "The embedded word-embedding corpora and evaluation sets are the test data gensim ships; gensim is not "
            "installed. Install it with `pip install gensim` (part of `pip install 'litzoo[text]'`), or give your own "
            "corpus (data=text_corpus data.path=...) and evaluation files (data.eval_dir=...)."
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "test" / "test_data"
    if not folder.is_dir():
        raise DependencyError(
            f"gensim is installed but its test data folder {folder} is missing; reinstall gensim."
        )
    return folder


def embedded_evaluation_files() -> list[Path]:
    """gensim's copies of WordSim353, SimLex-999 and the Google analogy questions."""
    folder = gensim_test_data()
    return [folder / name for name in EMBEDDED_EVALUATION_FILES]


def evaluation_files(eval_dir: str | None, eval_files: list[str] | None) -> list[Path]:
    """The evaluation files a data config names: `eval_files` (relative to `eval_dir` unless absolute), or
    every official file in `eval_dir`, or (both unset) the embedded copies of WordSim353, SimLex-999 and
    the Google analogies."""
    if eval_files:
        base = Path(eval_dir).expanduser() if eval_dir else Path.cwd()
        return [Path(f).expanduser() if Path(f).expanduser().is_absolute() else base / f for f in eval_files]
    if eval_dir:
        found = find_evaluation_files(eval_dir)
        if not found:
            raise DataError(
                f"data.eval_dir={eval_dir} holds none of the evaluation files litzoo knows by name "
                f"({', '.join(sorted(KNOWN_FILES))}). Name yours with data.eval_files=[<file>, ...]."
            )
        return found
    return embedded_evaluation_files()


def describe_sets(sets: list[EvaluationSet]) -> list[dict[str, Any]]:
    """Plain-data descriptions of the evaluation sets (saved with the task's hyper-parameters)."""
    described = []
    for s in sets:
        entry: dict[str, Any] = {"name": s.name, "kind": s.kind, "size": len(s), "file": str(s.path)}
        if isinstance(s, AnalogySet):
            entry["sections"] = list(s.sections)
            entry["syntactic"] = [s.is_syntactic(i) for i in range(len(s.sections))]
        described.append(entry)
    return described
