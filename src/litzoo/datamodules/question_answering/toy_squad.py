"""The embedded question-answering set: generated biographies, written as official SQuAD files.

Each paragraph tells of two or three people (names with accents: Zoë Martínez, Søren Ødegård),
where they were born and when, what they did and where they studied, in varying order and
wording, with the odd double space or curly quote, so that

- an answer is a span of the original text (``answer_start`` in characters, unicode intact) and
  finding it needs the question: every paragraph has several cities, years and professions, and
  only the sentence about the person asked for holds the answer;
- SQuAD 2.0's unanswerable questions are real traps: "When was Søren Ødegård born?" when only
  another person's birth year is given (that year is the `plausible_answers` entry);
- dev questions have two or three gold answers (``the University of Kraków`` /
  ``University of Kraków``), as SQuAD's dev set does, so the max over gold answers matters.

`ensure_toy_squad(root, version=...)` writes ``train-v<version>.json`` and ``dev-v<version>.json``
under `root` once (a settings stamp regenerates them when the settings change); the datamodule
then reads them with the same reader as the real SQuAD files. Deterministic for a given seed.
Nothing here imports torch.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litzoo.datamodules.question_answering.squad import normalize_version, write_squad

FIRST_NAMES = (
    "Zoë",
    "José",
    "Søren",
    "Ángela",
    "Françoise",
    "Jürgen",
    "Ilse",
    "Tomás",
    "Noémie",
    "Björn",
    "Chloé",
    "Mateus",
    "Agnès",
    "Håkon",
    "Inés",
    "Lukáš",
    "Elżbieta",
    "Renée",
    "Dmitri",
    "Aoife",
    "Kenji",
    "Amara",
    "Oskar",
    "Leïla",
    "Nils",
    "Mirela",
    "Pablo",
    "Sigrún",
    "Anouk",
    "Radek",
)
LAST_NAMES = (
    "Martínez",
    "Ødegård",
    "Brontë",
    "Dvořák",
    "Müller",
    "Nuñez",
    "Łukasiewicz",
    "Sørensen",
    "Gonçalves",
    "Kowalczyk",
    "Lefèvre",
    "Þórsson",
    "Rossi",
    "Novák",
    "Okafor",
    "Haraldsdóttir",
    "Ibáñez",
    "Weiß",
    "Castillo",
    "Nakamura",
    "Petrović",
    "Fontaine",
    "Lindqvist",
    "Moreau",
    "Kaminski",
    "Yılmaz",
)
CITIES = (
    "São Paulo",
    "Zürich",
    "Kraków",
    "Reykjavík",
    "Málaga",
    "Göteborg",
    "Besançon",
    "Brno",
    "Łódź",
    "Ålesund",
    "Düsseldorf",
    "Córdoba",
    "Tromsø",
    "Plzeň",
    "Nîmes",
    "Curitiba",
    "Bergen",
    "Turku",
    "Porto",
    "Lyon",
    "Graz",
    "Cluj",
    "Split",
    "Utrecht",
)
PROFESSIONS = (
    "chemist",
    "architect",
    "violinist",
    "cartographer",
    "botanist",
    "engineer",
    "novelist",
    "astronomer",
    "sculptor",
    "physician",
    "linguist",
    "photographer",
    "geologist",
    "composer",
    "economist",
)
FIELDS = (
    "optics",
    "glaciology",
    "medieval history",
    "acoustics",
    "mycology",
    "typography",
    "hydraulics",
    "phonetics",
    "crystallography",
    "navigation",
    "ceramics",
    "seismology",
)
UNIVERSITIES = (
    "University of {city}",
    "{city} Polytechnic",
    "Academy of Arts in {city}",
    "Conservatory of {city}",
)
INSTITUTES = ("Institute of {field}", "{field} Society", "Museum of {field}", "School of {field}")


@dataclass
class Person:
    first: str
    last: str
    city: str
    year: int
    profession: str
    university: str
    founded: str  # an institution the person founded
    founded_year: int

    @property
    def full(self) -> str:
        return f"{self.first} {self.last}"


def _person(rng: random.Random, used: set[str]) -> Person:
    while True:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        if first not in used and last not in used:
            used.update((first, last))
            break
    city = rng.choice(CITIES)
    study_city = rng.choice([c for c in CITIES if c != city])
    while True:  # institutions are unique within a paragraph: "Who founded the X?" has one answer
        field_name = rng.choice(FIELDS)
        institute = rng.choice(INSTITUTES).format(
            field=field_name.title() if rng.random() < 0.5 else field_name
        )
        institute = institute[0].upper() + institute[1:]
        if institute not in used:
            used.add(institute)
            break
    year = rng.randint(1850, 1985)
    return Person(
        first,
        last,
        city,
        year,
        rng.choice(PROFESSIONS),
        rng.choice(UNIVERSITIES).format(city=study_city),
        institute,
        year + rng.randint(22, 45),
    )


class _Paragraph:
    """Text assembled piece by piece, remembering where each answer span starts (in characters)."""

    def __init__(self) -> None:
        self.text = ""
        self.spans: dict[tuple[str, str], tuple[str, int]] = {}  # (person, fact) -> (text, start)

    def add(self, piece: str, key: tuple[str, str] | None = None) -> None:
        if key is not None:
            self.spans[key] = (piece, len(self.text))
        self.text += piece

    def sentence_break(self, rng: random.Random) -> None:
        self.text += rng.choice(("  ", " ", " ", " ", " ", "\n"))  # now and then two spaces or a newline


def _article(noun: str) -> str:
    return "an" if noun[0] in "aeiou" else "a"


def _birth_sentence(p: _Paragraph, person: Person, rng: random.Random, name: str) -> None:
    style = rng.randrange(3)
    if style == 0:
        p.add(f"{name} was born in ")
        p.add(person.city, (person.last, "city"))
        p.add(" in ")
        p.add(str(person.year), (person.last, "year"))
        p.add(".")
    elif style == 1:
        p.add(f"{name} (born ")
        p.add(str(person.year), (person.last, "year"))
        p.add(" in ")
        p.add(person.city, (person.last, "city"))
        p.add(f") was {_article(person.profession)} ")
        p.add(person.profession, (person.last, "profession"))
        p.add(".")
    else:
        p.add("Born in ")
        p.add(person.city, (person.last, "city"))
        p.add(" in ")
        p.add(str(person.year), (person.last, "year"))
        p.add(f", {name} grew up by the sea.")


def _study_sentence(p: _Paragraph, person: Person, rng: random.Random, name: str) -> None:
    field_phrase = rng.choice(("", " on a scholarship", " for four years"))
    p.add(f"{name} studied at ")
    p.add(f"the {person.university}", (person.last, "university"))
    p.add(f"{field_phrase}.")


def _profession_sentence(p: _Paragraph, person: Person, rng: random.Random, name: str) -> None:
    if (person.last, "profession") in p.spans:
        return
    quote = rng.random() < 0.3
    p.add(f"{name} worked as {_article(person.profession)} ")
    p.add(person.profession, (person.last, "profession"))
    p.add(" and was known as “the quiet one”." if quote else " for most of a long career.")


def _founding_sentence(p: _Paragraph, person: Person, rng: random.Random, name: str) -> None:
    if rng.random() < 0.5:
        p.add("In ")
        p.add(str(person.founded_year), (person.last, "founded_year"))
        p.add(", ")
        p.add(name, (person.last, "founder"))
        p.add(" founded the ")
        p.add(person.founded, (person.last, "founded"))
        p.add(".")
    else:
        p.add("The ")
        p.add(person.founded, (person.last, "founded"))
        p.add(" was founded by ")
        p.add(name, (person.last, "founder"))
        p.add(" in ")
        p.add(str(person.founded_year), (person.last, "founded_year"))
        p.add(".")


FACTS: dict[str, Callable[[_Paragraph, Person, random.Random, str], None]] = {
    "birth": _birth_sentence,
    "study": _study_sentence,
    "profession": _profession_sentence,
    "founding": _founding_sentence,
}

FILLERS = (
    "The winters there were long and the libraries were warm.",
    "Letters from that time survive in several archives.",
    "A street in the old town was later named after the family.",
    "Contemporaries described the household as noisy and generous.",
    "Much of the correspondence was written in three languages.",
)

# Question wordings per fact: "{name}" is the person's full name or surname, "{founded}" the institution.
QUESTIONS: dict[str, tuple[str, ...]] = {
    "city": ("Where was {name} born?", "In which city was {name} born?", "What is the birthplace of {name}?"),
    "year": ("When was {name} born?", "In what year was {name} born?", "What year was {name} born in?"),
    "profession": (
        "What was {name}'s profession?",
        "What did {name} work as?",
        "What was the occupation of {name}?",
    ),
    "university": ("Where did {name} study?", "At which institution did {name} study?"),
    "founded": ("What did {name} found?", "Which institution did {name} found?"),
    "founded_year": ("When did {name} found the {founded}?", "In which year was the {founded} founded?"),
    "founder": ("Who founded the {founded}?",),
}


def _variants(text: str, start: int, fact: str) -> list[tuple[str, int]]:
    """Other gold answers a second annotator might mark (dev): without the article, a shorter span."""
    variants = [(text, start)]
    if text.startswith("the "):
        variants.append((text[4:], start + 4))
    if fact == "founder" and " " in text:
        last = text.split(" ", 1)[1]
        variants.append((last, start + len(text) - len(last)))
    return variants


# What an unanswerable question may ask about the person the paragraph says it of no one else.
TRAP_FACTS = ("year", "city", "university", "profession", "founded")


def _paragraph(rng: random.Random, index: int, version: str, dev: bool, filler_rate: float) -> dict[str, Any]:
    used: set[str] = set()
    people = [_person(rng, used) for _ in range(rng.choice((2, 2, 3)))]
    # The last person's birth is never told (and some other facts neither): questions about what the
    # paragraph says only of the others are the unanswerable ones (2.0).
    silent = people[-1]
    p = _Paragraph()
    sentences: list[tuple[Person, str]] = []
    for person in people:
        others = [f for f in FACTS if f != "birth"]
        rng.shuffle(others)
        chosen = others[: rng.randint(1, 2 if person is silent else len(others))]
        sentences += [(person, f) for f in (chosen if person is silent else ["birth", *chosen])]
    rng.shuffle(sentences)
    fillers = rng.sample(FILLERS, len(FILLERS))
    mentioned: set[str] = set()
    for number, (person, fact) in enumerate(sentences):
        if number:
            p.sentence_break(rng)
        name = person.full if person.last not in mentioned else rng.choice((person.last, person.full))
        mentioned.add(person.last)
        FACTS[fact](p, person, rng, name)
        if fillers and rng.random() < filler_rate:
            p.sentence_break(rng)
            p.add(fillers.pop())
    qas: list[dict[str, Any]] = []
    spans = sorted(p.spans.items())  # at most six questions with an answer per paragraph, as in SQuAD
    for (last, fact), (text, start) in sorted(rng.sample(spans, min(len(spans), rng.randint(3, 6)))):
        person = next(x for x in people if x.last == last)
        name = person.full if fact in ("founder", "founded_year") else rng.choice((person.full, person.last))
        wording = rng.choice(QUESTIONS[fact]).format(name=name, founded=person.founded)
        answers = _variants(text, start, fact) if dev else [(text, start)]
        qa: dict[str, Any] = {
            "id": f"toy-{index:05d}-{len(qas)}",
            "question": wording,
            "answers": [{"text": t, "answer_start": s} for t, s in answers],
        }
        if version == "2.0":
            qa["is_impossible"] = False
        qas.append(qa)
    if version == "2.0":  # the traps: a fact of the silent person, told in the text of someone else
        facts = [f for f in TRAP_FACTS if (silent.last, f) not in p.spans]
        for fact in rng.sample(facts, min(len(facts), rng.choice((2, 3, 3)))):
            decoys = [x for x in people if x is not silent and (x.last, fact) in p.spans]
            if not decoys:
                continue
            text, start = p.spans[(rng.choice(decoys).last, fact)]
            wording = rng.choice(QUESTIONS[fact]).format(name=rng.choice((silent.full, silent.last)))
            qas.append(
                {
                    "id": f"toy-{index:05d}-{len(qas)}",
                    "question": wording,
                    "answers": [],
                    "is_impossible": True,
                    "plausible_answers": [{"text": text, "answer_start": start}],
                }
            )
    rng.shuffle(qas)
    return {"context": p.text, "qas": qas}


def generate_articles(
    num_paragraphs: int,
    seed: int,
    version: str,
    dev: bool,
    filler_rate: float = 0.35,
    paragraphs_per_article: int = 5,
) -> list[dict[str, Any]]:
    """The `data` list of a generated SQuAD file: articles of a few paragraphs each."""
    rng = random.Random(seed)
    articles: list[dict[str, Any]] = []
    for start in range(0, num_paragraphs, paragraphs_per_article):
        count = min(paragraphs_per_article, num_paragraphs - start)
        paragraphs = [_paragraph(rng, start + i, version, dev, filler_rate) for i in range(count)]
        articles.append(
            {"title": f"Biographies_{start // paragraphs_per_article:03d}", "paragraphs": paragraphs}
        )
    return articles


STAMP = ".toy_squad.json"


def ensure_toy_squad(
    root: str | Path,
    version: str = "2.0",
    num_train: int = 240,
    num_dev: int = 60,
    seed: int = 0,
    filler_rate: float = 0.35,
) -> Path:
    """Write ``train-v<version>.json`` / ``dev-v<version>.json`` (paragraph counts `num_train`, `num_dev`)
    under `root` unless the same settings already wrote them; returns `root`."""
    root = Path(root).expanduser()
    version = normalize_version(version, "data.version")
    settings = {
        "version": version,
        "num_train": int(num_train),
        "num_dev": int(num_dev),
        "seed": int(seed),
        "filler_rate": float(filler_rate),
        "format": 1,
    }
    stamp = root / f".v{version}{STAMP}"
    paths = [root / f"train-v{version}.json", root / f"dev-v{version}.json"]
    if stamp.is_file() and all(p.is_file() for p in paths):
        try:
            if json.loads(stamp.read_text(encoding="utf-8")) == settings:
                return root
        except (OSError, ValueError):
            pass
    # Train and dev come from different seeds, so dev paragraphs are new combinations.
    write_squad(
        paths[0], generate_articles(int(num_train), int(seed) * 2 + 1, version, False, filler_rate), version
    )
    write_squad(
        paths[1], generate_articles(int(num_dev), int(seed) * 2 + 2, version, True, filler_rate), version
    )
    stamp.write_text(json.dumps(settings), encoding="utf-8")
    return root
