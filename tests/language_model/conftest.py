"""Shared fixtures of the language-modelling tests: small corpora written in the real on-disk formats."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

SUBJECTS = [
    "the company",
    "the board",
    "the court",
    "the king",
    "a spokesman",
    "the bank",
    "the city council",
    "the union",
    "the minister",
    "the museum",
]
VERBS = ["said", "reported", "announced", "denied", "confirmed", "expected", "rejected", "approved"]
OBJECTS = [
    "the plan",
    "a new contract",
    "the deal",
    "higher prices",
    "the report",
    "its offer",
    "the proposal",
    "a loss of N million dollars",
    "the merger",
    "an <unk> agreement",
]
TAILS = [
    "on monday",
    "last year",
    "in a statement",
    "after the vote",
    "this week",
    "",
    "",
    "for the first time",
]


def sentences(count: int, seed: int) -> list[str]:
    """Lower-cased news-like sentences, PTB style (numbers as N, rare words as <unk>)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(TAILS)]
        out.append(" ".join(w for w in words if w))
    return out


def write_wikitext(
    root: Path, lines_per_split: tuple[int, int, int] = (600, 80, 80), raw: bool = False
) -> Path:
    """A WikiText-2-style folder: ` = Heading = ` lines, blank ` ` lines, one paragraph per line."""
    root.mkdir(parents=True, exist_ok=True)
    suffix = "raw" if raw else "tokens"
    for seed, (split, count) in enumerate(zip(("train", "valid", "test"), lines_per_split)):
        rng = random.Random(seed)
        lines = [" ", f" = Article {split} = ", " "]
        body = sentences(count, seed)
        for i in range(0, count, 4):
            if i and i % 40 == 0:
                lines += [" ", f" = = Section {i} = = ", " "]
            paragraph = " . ".join(body[i : i + 4]) + " ."
            lines.append(f" {paragraph.replace(' , ', ' @,@ ') if raw else paragraph} ")
            if rng.random() < 0.3:
                lines.append(" ")
        (root / f"wiki.{split}.{suffix}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def write_ptb(root: Path, lines_per_split: tuple[int, int, int] = (500, 60, 60)) -> Path:
    """Mikolov's ptb.{train,valid,test}.txt: one sentence per line, a leading space, lower case."""
    root.mkdir(parents=True, exist_ok=True)
    for seed, (split, count) in enumerate(zip(("train", "valid", "test"), lines_per_split)):
        text = "".join(f" {s} \n" for s in sentences(count, 10 + seed))
        (root / f"ptb.{split}.txt").write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def wikitext_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wikitext(tmp_path_factory.mktemp("wikitext") / "wikitext-2")


@pytest.fixture(scope="session")
def ptb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ptb(tmp_path_factory.mktemp("ptb"))
