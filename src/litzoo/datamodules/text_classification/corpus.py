"""Embedded, generated text corpora written in real GLUE formats, so litzoo trains offline.

Two corpora, both deterministic functions of a seed:

* **Sentiment** (SST-2 format: `sentence\\tlabel`, lower-cased, PTB-style spacing
  such as `it 's`): movie-review sentences built compositionally. Sentiment
  adjectives (some intensified), negation that flips polarity (`is not dull`,
  `is hardly brilliant`), several clauses whose votes are summed, contrastive
  clauses where the clause after `but` / the main clause after `although`
  decides, and neutral filler. A bag of words cannot solve the negated and
  contrastive sentences, and a fixed share of labels is flipped, so accuracy
  tops out below 100%.
* **Paraphrase** (MRPC format: `Quality\\t#1 ID\\t#2 ID\\t#1 String\\t#2 String`):
  news-like event sentences. A paraphrase rewrites the event (synonymous verb
  or agent, passive voice, fronted time phrase, reporting frame); a
  non-paraphrase rewrites it the same way *and* changes one fact (who, what,
  when, an antonym verb, or swapped roles), so word overlap alone does not
  decide the label. About two thirds are paraphrases, as in MRPC.

Corpora are written on first use into a folder chosen by the caller, which is
then a valid `data.root` for the `sst2` / `mrpc` readers. A marker file records
the generator, its version and parameters; a folder whose marker matches is
reused untouched, anything else is regenerated. Files are written to a
temporary name and renamed, so concurrent processes never read half a file.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from litzoo.errors import ConfigError

MARKER = ".litzoo_corpus.json"
SENTIMENT_VERSION = 1
PARAPHRASE_VERSION = 1

# ----------------------------------------------------------------------------- sentiment lexicon

_SUBJECTS = (
    "the movie",
    "this film",
    "the story",
    "the plot",
    "the acting",
    "the script",
    "the soundtrack",
    "the cast",
    "the ending",
    "the dialogue",
    "the cinematography",
    "the direction",
    "the lead performance",
    "the pacing",
    "the humor",
    "the sequel",
    "this documentary",
    "the animation",
    "the second half",
    "the central romance",
    "the villain",
    "the score",
    "the editing",
    "the final act",
)
_POSITIVE = (
    "brilliant",
    "charming",
    "gripping",
    "moving",
    "witty",
    "delightful",
    "superb",
    "engaging",
    "heartfelt",
    "stunning",
    "clever",
    "funny",
    "beautiful",
    "powerful",
    "memorable",
    "refreshing",
    "thoughtful",
    "compelling",
    "inventive",
    "touching",
    "wonderful",
    "excellent",
    "entertaining",
    "smart",
    "vivid",
    "tender",
    "assured",
    "lively",
    "original",
    "absorbing",
)
_NEGATIVE = (
    "dull",
    "tedious",
    "clumsy",
    "bland",
    "boring",
    "predictable",
    "shallow",
    "messy",
    "lifeless",
    "forgettable",
    "awkward",
    "pointless",
    "tiresome",
    "flat",
    "pretentious",
    "confusing",
    "sloppy",
    "stale",
    "overlong",
    "weak",
    "silly",
    "hollow",
    "painful",
    "lazy",
    "dreary",
    "mediocre",
    "grating",
    "cheap",
    "muddled",
    "joyless",
)
_INTENSIFIERS = ("very", "truly", "remarkably", "utterly", "genuinely", "deeply", "incredibly", "thoroughly")
_LINKS = ("is", "feels", "seems", "looks", "turns out to be", "remains", "was")
_NEGATED_LINKS = ("is not", "is n't", "never feels", "is hardly", "is far from", "does n't seem", "was never")
_OPENERS = (
    "",
    "",
    "",
    "honestly ,",
    "in the end ,",
    "overall ,",
    "to be fair ,",
    "frankly ,",
    "all in all ,",
)
_FILLERS = (
    "i saw it on a rainy sunday",
    "it runs about two hours",
    "it was released last spring",
    "my cousin recommended it",
    "the theater was half empty",
    "it is based on a novel",
    "it was shot in toronto",
    "we watched it after dinner",
    "the director also wrote it",
    "it opens with a long wedding scene",
    "most of it takes place in one house",
    "the trailer came out in may",
    "it is the third film in the series",
    "i went with two friends",
)


@dataclass(frozen=True)
class _Clause:
    text: str
    polarity: int  # +1 / -1 after negation
    weight: int  # 2 when intensified and not negated, else 1


def _sentiment_clause(rng: random.Random) -> _Clause:
    polarity = rng.choice((1, -1))
    adjective = rng.choice(_POSITIVE if polarity > 0 else _NEGATIVE)
    negated = rng.random() < 0.3
    intensified = rng.random() < 0.3
    phrase = f"{rng.choice(_INTENSIFIERS)} {adjective}" if intensified else adjective
    if rng.random() < 0.15:  # a second adjective of the same polarity: "witty and moving"
        phrase += " and " + rng.choice(_POSITIVE if polarity > 0 else _NEGATIVE)
    link = rng.choice(_NEGATED_LINKS if negated else _LINKS)
    text = f"{rng.choice(_SUBJECTS)} {link} {phrase}"
    # "not very good" is mildly negative: negation both flips and weakens an intensifier.
    return _Clause(text, -polarity if negated else polarity, 2 if intensified and not negated else 1)


def _sentiment_sentence(rng: random.Random) -> tuple[str, int]:
    """One sentence and its true label (1 positive, 0 negative), before label noise."""
    form = rng.random()
    if form < 0.22:  # contrast: the clause after "but" decides
        first, second = _sentiment_clause(rng), _sentiment_clause(rng)
        while second.polarity == first.polarity:
            second = _sentiment_clause(rng)
        body, polarity = f"{first.text} , but {second.text}", second.polarity
    elif form < 0.32:  # concession: the main clause decides
        first, second = _sentiment_clause(rng), _sentiment_clause(rng)
        while second.polarity == first.polarity:
            second = _sentiment_clause(rng)
        body, polarity = f"although {first.text} , {second.text}", second.polarity
    else:  # one to three clauses vote, weighted by intensity; ties are redrawn
        while True:
            clauses = [_sentiment_clause(rng) for _ in range(rng.choice((1, 1, 2, 3)))]
            score = sum(c.polarity * c.weight for c in clauses)
            if score != 0:
                break
        joiner = rng.choice((" and ", " ; ", " , and "))
        body, polarity = joiner.join(c.text for c in clauses), 1 if score > 0 else -1
    opener = rng.choice(_OPENERS)
    if rng.random() < 0.3:
        filler = rng.choice(_FILLERS)
        body = f"{filler} ; {body}" if rng.random() < 0.5 else f"{body} ; {filler}"
    sentence = f"{opener} {body} .".strip()
    return sentence, int(polarity > 0)


# ----------------------------------------------------------------------------- paraphrase lexicon

_AGENTS = (
    ("the senator", "the lawmaker"),
    ("the mayor", "the city 's mayor"),
    ("the company", "the firm"),
    ("the union", "the labor union"),
    ("the governor", "the state 's governor"),
    ("the ministry", "the government department"),
    ("the committee", "the panel"),
    ("the bank", "the lender"),
    ("the court", "the judges"),
    ("the airline", "the carrier"),
    ("the school board", "the board"),
    ("the regulator", "the watchdog"),
    ("the hospital", "the medical center"),
    ("the council", "city council"),
)
_OBJECTS = (
    "the new budget",
    "the merger",
    "the proposal",
    "the contract",
    "the expansion plan",
    "the annual report",
    "the pilot project",
    "the trade deal",
    "the pension policy",
    "the training program",
    "the wage agreement",
    "the safety review",
    "the tax cut",
    "the construction permit",
    "the rescue package",
)
# Mutually antonymous verbs, each with a synonym. All are past tense = past participle,
# so the passive rewrite ("the merger was approved by ...") is grammatical.
_VERB_ANTONYMS = (
    (("approved", "endorsed"), ("rejected", "turned down")),
    (("criticized", "condemned"), ("praised", "commended")),
    (("announced", "unveiled"), ("scrapped", "dropped")),
    (("delayed", "postponed"), ("brought forward", "advanced")),
    (("cancelled", "called off"), ("extended", "prolonged")),
    (("launched", "started"), ("halted", "stopped")),
    (("backed", "supported"), ("opposed", "fought")),
    (("reviewed", "examined"), ("ignored", "disregarded")),
    (("thanked", "credited"), ("blamed", "faulted")),
)
_VERBS: tuple[tuple[str, str], ...] = tuple(row for pair in _VERB_ANTONYMS for row in pair)
# Verbs that make sense with a person or body as object ("the mayor praised the court").
_PERSONAL_VERBS = tuple(
    i
    for i, row in enumerate(_VERBS)
    if row[0] in {"criticized", "praised", "backed", "opposed", "thanked", "blamed", "ignored"}
)
_THING_VERBS = tuple(i for i, row in enumerate(_VERBS) if row[0] not in {"thanked", "blamed"})
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_REPORTERS = ("officials said", "a spokesman said", "sources said", "according to a statement")


@dataclass(frozen=True)
class _Event:
    agent: int
    verb: int
    obj: str
    day: int
    role_swappable: bool


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _render_event(rng: random.Random, event: _Event, rewrite: bool) -> str:
    """Surface form of an event; `rewrite` applies a random mix of meaning-preserving changes."""
    agent = _AGENTS[event.agent][1 if rewrite and rng.random() < 0.5 else 0]
    verb_row = _VERBS[event.verb]
    verb = verb_row[1] if rewrite and rng.random() < 0.6 else verb_row[0]
    day = f"on {_DAYS[event.day]}"
    if rewrite and rng.random() < 0.4:
        clause = f"{event.obj} was {verb} by {agent} {day}"
    elif rewrite and rng.random() < 0.4:
        clause = f"{day} , {agent} {verb} {event.obj}"
    else:
        clause = f"{agent} {verb} {event.obj} {day}"
    if rng.random() < 0.35:
        reporter = rng.choice(_REPORTERS)
        clause = f"{clause} , {reporter}" if rng.random() < 0.5 else f"{reporter} {clause}"
    return _capitalise(clause) + " ."


def _random_event(rng: random.Random) -> _Event:
    if rng.random() < 0.3:  # an agent acting on another agent, so roles can be swapped
        agent, other = rng.sample(range(len(_AGENTS)), 2)
        return _Event(agent, rng.choice(_PERSONAL_VERBS), _AGENTS[other][0], rng.randrange(len(_DAYS)), True)
    return _Event(
        rng.randrange(len(_AGENTS)),
        rng.choice(_THING_VERBS),
        rng.choice(_OBJECTS),
        rng.randrange(len(_DAYS)),
        False,
    )


def _change_one_fact(rng: random.Random, event: _Event) -> _Event:
    changes: list[Callable[[], _Event]] = [
        lambda: _Event(_new_agent(rng, event), event.verb, event.obj, event.day, event.role_swappable),
        lambda: _Event(event.agent, event.verb, _new_object(rng, event), event.day, event.role_swappable),
        lambda: _Event(
            event.agent, event.verb, event.obj, _other_index(rng, event.day, len(_DAYS)), event.role_swappable
        ),
        lambda: _Event(event.agent, _antonym_index(event.verb), event.obj, event.day, event.role_swappable),
    ]
    if event.role_swappable:
        swapped_agent = next(i for i, names in enumerate(_AGENTS) if names[0] == event.obj)
        changes.append(lambda: _Event(swapped_agent, event.verb, _AGENTS[event.agent][0], event.day, True))
        changes.append(changes[-1])  # role swaps are the hardest case; make them common
    return rng.choice(changes)()


def _new_agent(rng: random.Random, event: _Event) -> int:
    """Another agent, never the object itself (nobody approves themselves)."""
    return rng.choice([i for i, names in enumerate(_AGENTS) if i != event.agent and names[0] != event.obj])


def _new_object(rng: random.Random, event: _Event) -> str:
    """Another object of the same kind: a person or body for personal verbs, else a thing."""
    if event.role_swappable:
        own = _AGENTS[event.agent][0]
        return rng.choice([names[0] for names in _AGENTS if names[0] not in (own, event.obj)])
    return rng.choice([o for o in _OBJECTS if o != event.obj])


def _other_index(rng: random.Random, current: int, size: int) -> int:
    return rng.choice([i for i in range(size) if i != current])


def _antonym_index(verb: int) -> int:
    return verb ^ 1  # rows of _VERBS come in antonym pairs: (0, 1), (2, 3), ...


def _paraphrase_pair(rng: random.Random) -> tuple[str, str, int]:
    event = _random_event(rng)
    first = _render_event(rng, event, rewrite=False)
    is_paraphrase = rng.random() < 0.67
    second_event = event if is_paraphrase else _change_one_fact(rng, event)
    return first, _render_event(rng, second_event, rewrite=True), int(is_paraphrase)


# ----------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class CorpusSpec:
    """What a generated corpus folder holds; stored in its marker file."""

    generator: str
    version: int
    seed: int
    num_train: int
    num_dev: int
    label_noise: float


def _unique(
    rng: random.Random,
    make: Callable[[random.Random], tuple],
    key: Callable[[tuple], str],
    count: int,
    seen: set[str],
) -> list[tuple]:
    """`count` items whose keys are new, so that no dev sentence also appears in train."""
    items: list[tuple] = []
    attempts = 0
    while len(items) < count:
        attempts += 1
        if attempts > 50 * count + 1000:
            raise ConfigError(
                f"The generated corpus has only about {len(seen)} distinct examples, fewer than the {count} asked "
                "for; request fewer examples (num_train / num_dev)."
            )
        item = make(rng)
        if key(item) in seen:
            continue
        seen.add(key(item))
        items.append(item)
    return items


def _noisy(rng: random.Random, label: int, noise: float) -> int:
    return 1 - label if rng.random() < noise else label


def sentiment_rows(seed: int, num_train: int, num_dev: int, label_noise: float) -> dict[str, list[list[str]]]:
    """Header and rows of `train.tsv` / `dev.tsv` for the sentiment corpus (SST-2 layout)."""
    rng = random.Random(f"litzoo-sentiment-{seed}")
    seen: set[str] = set()
    files: dict[str, list[list[str]]] = {}
    for split, count in (("train", num_train), ("dev", num_dev)):
        items = _unique(rng, _sentiment_sentence, lambda item: item[0], count, seen)
        files[split] = [["sentence", "label"]] + [[s, str(_noisy(rng, y, label_noise))] for s, y in items]
    return files


def paraphrase_rows(
    seed: int, num_train: int, num_dev: int, label_noise: float
) -> dict[str, list[list[str]]]:
    """Header and rows of `train.tsv` / `dev.tsv` for the paraphrase corpus (MRPC layout)."""
    rng = random.Random(f"litzoo-paraphrase-{seed}")
    seen: set[str] = set()
    ids = rng.sample(range(100_000, 4_000_000), 2 * (num_train + num_dev))
    files: dict[str, list[list[str]]] = {}
    for split, count in (("train", num_train), ("dev", num_dev)):
        items = _unique(rng, _paraphrase_pair, lambda item: item[0] + "\t" + item[1], count, seen)
        rows = [["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]]
        for first, second, label in items:
            rows.append([str(_noisy(rng, label, label_noise)), str(ids.pop()), str(ids.pop()), first, second])
        files[split] = rows
    return files


def _write_atomic(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
        out.write(text)
    os.replace(temporary, path)


def _ensure(root: str | Path, spec: CorpusSpec, rows: Callable[[], dict[str, list[list[str]]]]) -> Path:
    root = Path(root).expanduser()
    marker = root / MARKER
    wanted = asdict(spec)
    if marker.is_file() and all((root / f"{split}.tsv").is_file() for split in ("train", "dev")):
        try:
            if json.loads(marker.read_text(encoding="utf-8")) == wanted:
                return root
        except json.JSONDecodeError:
            pass  # a torn marker: regenerate
    root.mkdir(parents=True, exist_ok=True)
    for split, table in rows().items():
        _write_atomic(root / f"{split}.tsv", "".join("\t".join(row) + "\n" for row in table))
    # The marker goes last: its presence certifies complete files.
    _write_atomic(marker, json.dumps(wanted, indent=2, sort_keys=True) + "\n")
    return root


def ensure_sentiment_corpus(
    root: str | Path, seed: int = 0, num_train: int = 6000, num_dev: int = 1000, label_noise: float = 0.04
) -> Path:
    """Write (once) the generated sentiment corpus as SST-2 `train.tsv`/`dev.tsv` under `root`; return `root`."""
    spec = CorpusSpec("sentiment", SENTIMENT_VERSION, seed, num_train, num_dev, label_noise)
    return _ensure(root, spec, lambda: sentiment_rows(seed, num_train, num_dev, label_noise))


def ensure_paraphrase_corpus(
    root: str | Path, seed: int = 0, num_train: int = 4000, num_dev: int = 800, label_noise: float = 0.03
) -> Path:
    """Write (once) the generated paraphrase corpus as MRPC `train.tsv`/`dev.tsv` under `root`; return `root`."""
    spec = CorpusSpec("paraphrase", PARAPHRASE_VERSION, seed, num_train, num_dev, label_noise)
    return _ensure(root, spec, lambda: paraphrase_rows(seed, num_train, num_dev, label_noise))
