"""SQuAD 1.1 / 2.0 JSON files, read as the official releases lay them out, every field checked.

The official format (``train-v1.1.json``, ``dev-v2.0.json``, ...)::

    {"version": "v2.0",
     "data": [{"title": "...",
               "paragraphs": [{"context": "...",
                               "qas": [{"id": "...", "question": "...",
                                        "answers": [{"text": "...", "answer_start": 42}],
                                        "is_impossible": false,          # 2.0 only
                                        "plausible_answers": [...]}]}]}]}  # 2.0, unanswerable only

What is checked, and how it is reported (`DataError`, naming the file and the JSON path of the
offending item, e.g. ``data[3].paragraphs[0].qas[5]: missing key "id"``):

- the shape: the first missing or mistyped key, with its path;
- the version: the file's own ``version`` field (``1.1``, ``v2.0``) or, without one, whether its
  questions carry ``is_impossible``; a file of the other version than `data.version` is refused
  (training a 2.0 file as 1.1 silently scores F1 ~43, with every unanswerable question wrong);
- every answer: ``context[answer_start : answer_start + len(text)] == text`` (the character
  offsets the windows are labelled from), an answerable question has answers, an unanswerable one
  has none, question ids are unique. With ``bad_samples="skip"`` a question with a wrong
  ``answer_start`` (or any other bad question) is left out and listed; without, the first one
  stops the run naming its id.

Nothing here imports torch or transformers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litzoo.errors import ConfigError, DataError

VERSIONS = ("1.1", "2.0")
BAD_SAMPLE_POLICIES = ("error", "skip")


@dataclass(frozen=True)
class SquadAnswer:
    """One gold answer: its text and the character offset of its start in the context."""

    text: str
    answer_start: int

    @property
    def answer_end(self) -> int:
        return self.answer_start + len(self.text)


@dataclass(frozen=True)
class SquadExample:
    """One question about one paragraph (the unit SQuAD scores).

    `answers` is empty for an unanswerable (2.0) question, whose `plausible_answers` (if the
    file has them) are the tempting wrong spans annotators marked; they are never used as labels.
    """

    qid: str
    title: str
    context: str
    question: str
    answers: tuple[SquadAnswer, ...]
    is_impossible: bool = False
    plausible_answers: tuple[SquadAnswer, ...] = ()

    @property
    def answer_texts(self) -> list[str]:
        return [a.text for a in self.answers]


@dataclass(frozen=True)
class SkippedQuestion:
    """A question left out under ``bad_samples=skip`` (listed in run.json)."""

    file: str
    qid: str
    reason: str

    def as_dict(self, split: str) -> dict[str, Any]:
        return {"split": split, "file": self.file, "id": self.qid, "reason": self.reason}


@dataclass
class SquadFile:
    """The questions of one file, in file order, with the version the file declared."""

    path: Path
    version: str
    examples: list[SquadExample]
    skipped: list[SkippedQuestion] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def num_unanswerable(self) -> int:
        return sum(e.is_impossible for e in self.examples)


def normalize_version(value: Any, where: str) -> str:
    """``1.1``, ``v1.1``, ``2.0``, ``v2.0``, ``2`` -> ``1.1`` / ``2.0``."""
    text = str(value).strip().lower().lstrip("v")
    text = {"1": "1.1", "2": "2.0"}.get(text, text)
    if text not in VERSIONS:
        raise ConfigError(f"{where}={value!r} is not a SQuAD version; use 1.1 or 2.0.")
    return text


def check_bad_samples(policy: str) -> str:
    if policy not in BAD_SAMPLE_POLICIES:
        raise ConfigError(f"data.bad_samples={policy!r} is not a policy; use error or skip.")
    return policy


# ----------------------------------------------------------------------------- reading


class _Invalid(Exception):
    """A problem with one question (skippable) rather than with the file's structure."""

    def __init__(self, qid: str, message: str) -> None:
        super().__init__(message)
        self.qid = qid


def _require(node: Mapping[str, Any], key: str, kind: type | tuple[type, ...], path: str, file: Path) -> Any:
    if key not in node:
        raise DataError(
            f'{file}: {path}: missing key {key!r}. A SQuAD file holds {{"data": [{{"title", "paragraphs": '
            '[{"context", "qas": [{"id", "question", "answers": [{"text", "answer_start"}]}]}]}]}; '
            "convert the file to that layout (as the official train-v1.1.json / dev-v2.0.json are)."
        )
    value = node[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DataError(
            f"{file}: {path}.{key} is {type(value).__name__} {_short(value)}, but SQuAD files have a {names} "
            "there. Fix the file (or regenerate it with the tool that wrote it)."
        )
    return value


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_json(path: Path) -> Any:
    """The parsed file, or a `DataError` naming the file and the line/column that is not JSON."""
    if not path.is_file():
        raise DataError(f"SQuAD file {path} not found. Give the folder that holds it as data.root.")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise DataError(
            f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}). A SQuAD file is one "
            "JSON object; check the file is complete (not truncated by a download)."
        ) from None
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path} is not UTF-8 text ({error.reason} at byte {error.start}); SQuAD files are UTF-8."
        ) from None


def declared_version(dataset: Mapping[str, Any], questions: Iterable[Mapping[str, Any]]) -> str:
    """The file's version: its `version` field, else 2.0 when its questions carry `is_impossible`."""
    if "version" in dataset:
        return normalize_version(dataset["version"], 'the file\'s "version"')
    return "2.0" if any("is_impossible" in q for q in questions) else "1.1"


def read_squad(path: str | Path, version: str | None = None, bad_samples: str = "error") -> SquadFile:
    """Every question of a SQuAD file (see the module docstring for what is checked).

    Args:
        path: the JSON file.
        version: the version the run expects (``1.1`` / ``2.0``); None accepts the file's own.
        bad_samples: ``error`` stops at the first bad question, naming its id; ``skip`` leaves it
            out and lists it in the result's `skipped`.
    """
    path = Path(path).expanduser()
    check_bad_samples(bad_samples)
    dataset = load_json(path)
    if not isinstance(dataset, dict):
        raise DataError(
            f"{path}: the top level is a JSON {type(dataset).__name__}, but a SQuAD file is an object with "
            '"data" (a list of articles) and "version". Convert the file to the official layout.'
        )
    articles = _require(dataset, "data", list, "(top level)", path)
    paragraphs: list[tuple[str, str, str, list[Any]]] = []  # (title, context, path, qas)
    for a, article in enumerate(articles):
        where = f"data[{a}]"
        if not isinstance(article, dict):
            raise DataError(
                f'{path}: {where} is a {type(article).__name__}; each article is an object with "paragraphs".'
            )
        title = article.get("title", "")
        for p, paragraph in enumerate(_require(article, "paragraphs", list, where, path)):
            at = f"{where}.paragraphs[{p}]"
            if not isinstance(paragraph, dict):
                raise DataError(
                    f"{path}: {at} is a {type(paragraph).__name__}; each paragraph is an object "
                    'with "context" and "qas".'
                )
            context = _require(paragraph, "context", str, at, path)
            qas = _require(paragraph, "qas", list, at, path)
            paragraphs.append((str(title), context, at, qas))

    file_version = declared_version(
        dataset, (q for *_, qas in paragraphs for q in qas if isinstance(q, dict))
    )
    if version is not None:
        expected = normalize_version(version, "data.version")
        if expected != file_version:
            raise DataError(version_mismatch(path, file_version, expected, "version" in dataset))

    result = SquadFile(path=path, version=file_version, examples=[])
    seen: dict[str, str] = {}
    for title, context, at, qas in paragraphs:
        for q, qa in enumerate(qas):
            where = f"{at}.qas[{q}]"
            if not isinstance(qa, dict):
                raise DataError(
                    f'{path}: {where} is a {type(qa).__name__}; each question is an object with "id", '
                    '"question" and "answers".'
                )
            qid = str(_require(qa, "id", (str, int), where, path))
            if qid in seen:
                raise DataError(
                    f"{path}: {where}: question id {qid!r} is used twice (first at {seen[qid]}); SQuAD "
                    "scores by id, so ids must be unique. Renumber the questions."
                )
            seen[qid] = where
            try:
                result.examples.append(_example(qa, qid, title, context, where, path, file_version))
            except _Invalid as invalid:
                if bad_samples == "error":
                    raise DataError(
                        f"{path}: question {invalid.qid} ({where}): {invalid}. Fix the file, or pass "
                        "data.bad_samples=skip to leave such questions out (they are listed in run.json)."
                    ) from None
                result.skipped.append(SkippedQuestion(str(path), invalid.qid, str(invalid)))
    if not result.examples:
        raise DataError(
            f"{path} holds no question{' that could be used' if result.skipped else ''}; a SQuAD split "
            "needs at least one."
        )
    return result


def version_mismatch(path: Path, found: str, expected: str, declared: bool) -> str:
    how = (
        f'its "version" field says {found}'
        if declared
        else (
            "its questions carry is_impossible" if found == "2.0" else "its questions carry no is_impossible"
        )
    )
    if found == "2.0":
        consequence = (
            "read as 1.1 its unanswerable questions would be trained and scored as if they had answers "
            "(F1 around 43)"
        )
    else:
        consequence = (
            "a 1.1 file has no unanswerable questions, so the no-answer threshold could not be learned"
        )
    return (
        f"{path} is a SQuAD {found} file ({how}) but data.version={expected}: {consequence}. Pass "
        f"data.version={found}, or point data.root at the SQuAD {expected} files."
    )


def _answers(items: Any, key: str, qid: str, where: str, path: Path, context: str) -> tuple[SquadAnswer, ...]:
    if not isinstance(items, list):
        raise DataError(
            f"{path}: {where}.{key} is {type(items).__name__}; it must be a list of "
            '{"text", "answer_start"} objects.'
        )
    answers = []
    for i, item in enumerate(items):
        at = f"{where}.{key}[{i}]"
        if not isinstance(item, dict):
            raise DataError(
                f'{path}: {at} is {type(item).__name__}; an answer is an object with "text" and '
                '"answer_start".'
            )
        text = _require(item, "text", str, at, path)
        start = _require(item, "answer_start", int, at, path)
        found = context[start : start + len(text)] if 0 <= start <= len(context) else None
        if found != text:
            near = context.find(text)
            hint = (
                f"; the text occurs at offset {near}"
                if near >= 0
                else "; the text does not occur in the context"
            )
            raise _Invalid(
                qid,
                f"{key}[{i}] has answer_start={start}, which points at {_short(found or '')} instead of "
                f"its text {_short(text)}{hint}",
            )
        answers.append(SquadAnswer(text, start))
    return tuple(answers)


def _example(
    qa: Mapping[str, Any], qid: str, title: str, context: str, where: str, path: Path, version: str
) -> SquadExample:
    question = _require(qa, "question", str, where, path)
    answers = _answers(_require(qa, "answers", list, where, path), "answers", qid, where, path, context)
    impossible = False
    if version == "2.0":
        impossible = (
            bool(_require(qa, "is_impossible", bool, where, path)) if "is_impossible" in qa else not answers
        )
    plausible = (
        _answers(qa["plausible_answers"], "plausible_answers", qid, where, path, context)
        if "plausible_answers" in qa
        else ()
    )
    if not question.strip():
        raise _Invalid(qid, "the question is empty")
    if not context.strip():
        raise _Invalid(qid, "the paragraph's context is empty")
    if impossible and answers:
        raise _Invalid(
            qid,
            f"it is marked is_impossible but has {len(answers)} answer(s); an unanswerable question "
            "keeps its spans in plausible_answers",
        )
    if not impossible and not answers:
        raise _Invalid(
            qid,
            "it has no answers"
            + (
                " and is not marked is_impossible"
                if version == "2.0"
                else " (SQuAD 1.1 questions all have one)"
            ),
        )
    if any(not a.text.strip() for a in answers):
        raise _Invalid(qid, "one of its answers is empty text")
    return SquadExample(qid, title, context, question, answers, impossible, plausible)


# ----------------------------------------------------------------------------- writing


def write_squad(path: str | Path, articles: Sequence[Mapping[str, Any]], version: str) -> Path:
    """Write `articles` (the official `data` list) as a SQuAD file of `version` (``v2.0`` spelled as the
    official 2.0 files spell it), atomically."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    version = normalize_version(version, "version")
    document = {"version": "v2.0" if version == "2.0" else "1.1", "data": list(articles)}
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, ensure_ascii=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def gold_answers(examples: Iterable[SquadExample]) -> dict[str, list[str]]:
    """``{id: [answer texts]}``: what the official scripts compare predictions with (empty for unanswerable)."""
    return {e.qid: e.answer_texts for e in examples}
