"""Embedded corpora and evaluation sets: real English text and the public test sets that gensim ships.

gensim's wheel carries, as test data, a shortened English Wikipedia dump
(``enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2``, 206 articles), the
Lee news corpus (``lee_background.cor``, 300 Australian news stories) and copies of WordSim353
(``wordsim353.tsv``), SimLex-999 (``simlex999.txt``) and the Google analogy questions
(``questions-words.txt``). On first use they are turned into corpora in the on-disk format
litzoo reads (so the real reader is what runs):

- ``enwiki_sample``: the dump through a Python port of Matt Mahoney's ``wikifil.pl``, the
  script that made text8 and fil9 from Wikipedia (article text only, lower-case letters, digits
  spelled out, everything else a space): one line of about 513,000 tokens, a small fil9;
- ``lee``: one news story per line, lower-cased, split into words (letters and digits, inner
  apostrophes and hyphens kept): about 60,000 tokens.

Torch-free. gensim is needed only to find these files (``pip install gensim``).
"""

from __future__ import annotations

import bz2
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from litzoo.errors import DataError
from litzoo.text.evaluation_sets import gensim_test_data

ENWIKI_DUMP = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
LEE_CORPUS = "lee_background.cor"
_VERSION = 1


# ----------------------------------------------------------------------------- wikifil


_DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_DIGITS = {str(i): f" {w} " for i, w in enumerate(_DIGIT_NAMES)}
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_RULES = [  # wikifil.pl's substitutions, in its order (perl `s///i` -> re.I)
    (re.compile(r"<ref[^<]*</ref>"), ""),
    (re.compile(r"<[^>]*>"), ""),
    (re.compile(r"\[http:[^] ]*"), "["),
    (re.compile(r"\|thumb", re.I), ""),
    (re.compile(r"\|left", re.I), ""),
    (re.compile(r"\|right", re.I), ""),
    (re.compile(r"\|\d+px", re.I), ""),
    (re.compile(r"\[\[image:[^\[\]]*\|", re.I), ""),
    (re.compile(r"\[\[category:([^|\]]*)[^]]*\]\]", re.I), r"[[\1]]"),
    (re.compile(r"\[\[[a-z\-]*:[^\]]*\]\]"), ""),
    (re.compile(r"\[\[[^\|\]]*\|"), "[["),
    (re.compile(r"{{[^}]*}}"), ""),
    (re.compile(r"{[^}]*}"), ""),
    (re.compile(r"\["), ""),
    (re.compile(r"\]"), ""),
    (re.compile(r"&[^;]*;"), " "),
]


def wikifil(xml: TextIO) -> Iterator[str]:
    """Matt Mahoney's ``wikifil.pl`` (the filter behind text8 and fil9) over a Wikipedia XML dump.

    Like the perl script, the input is read in records that end with ``>``; text between
    ``<text ...>`` and ``</text>`` is kept unless the page is a redirect, stripped of markup,
    references, links' targets and tables, lower-cased (ASCII), digits spelled out, and every
    run of other characters becomes one space. The pieces joined make one line.
    """
    in_text = False
    pending = ""
    for chunk in iter(lambda: xml.read(1 << 20), ""):
        pending += chunk
        *records, pending = pending.split(">")
        for body in records:
            record = body + ">"
            if "<text " in record:
                in_text = True
            if re.search("#redirect", record, re.I):
                in_text = False
            if not in_text:
                continue
            if "</text>" in record:
                in_text = False
            record = re.sub(r"<.*>", "", record, count=1)
            record = record.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
            for pattern, replacement in _RULES:
                record = pattern.sub(replacement, record)
            record = f" {record} ".translate(_ASCII_LOWER)
            record = re.sub(r"[0-9]", lambda m: _DIGITS[m.group()], record)
            yield re.sub(r"[^a-z]+", " ", record)[:-1]


_WORD = re.compile(r"[a-z0-9]+(?:['\u2019-][a-z0-9]+)*")


def tokenize_news(line: str) -> list[str]:
    """The Lee corpus' words: lower-cased runs of letters and digits (inner apostrophes and hyphens kept)."""
    return _WORD.findall(line.lower())


# ----------------------------------------------------------------------------- materialising


def _materialise(target: Path, source: Path, write) -> Path:
    """Write `target` from `source` with `write(source, handle)` unless an up-to-date copy exists."""
    marker = target.with_name(target.name + ".source.json")
    stamp = {"source": str(source), "size": source.stat().st_size, "version": _VERSION}
    if target.is_file() and marker.is_file():
        try:
            if json.loads(marker.read_text()) == stamp:
                return target
        except ValueError:
            pass
    if target.exists() and not marker.exists():
        raise DataError(
            f"{target} exists but was not written by litzoo; move it away or choose another "
            "data.root for the embedded corpus."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        write(source, out)
    tmp.replace(target)
    marker.write_text(json.dumps(stamp))
    return target


def ensure_enwiki_sample(root: str | Path) -> Path:
    """``<root>/enwiki_sample.txt``: gensim's shortened Wikipedia dump through wikifil (a small fil9)."""

    def write(source: Path, out: TextIO) -> None:
        with bz2.open(source, "rt", encoding="utf-8", errors="replace") as xml:
            for piece in wikifil(xml):
                out.write(piece)

    return _materialise(
        Path(root).expanduser() / "enwiki_sample.txt", gensim_test_data() / ENWIKI_DUMP, write
    )


def ensure_lee_corpus(root: str | Path) -> Path:
    """``<root>/lee_background.txt``: the Lee news corpus, one tokenised story per line."""

    def write(source: Path, out: TextIO) -> None:
        for line in source.read_text(encoding="utf-8", errors="replace").splitlines():
            tokens = tokenize_news(line)
            if tokens:
                out.write(" ".join(tokens) + "\n")

    return _materialise(
        Path(root).expanduser() / "lee_background.txt", gensim_test_data() / LEE_CORPUS, write
    )
