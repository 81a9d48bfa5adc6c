"""The embedded default of translation: a generated language pair, written as IWSLT-style parallel text.

English-like source sentences (``The big dog sees a small cat.``) translate into an invented target
language by rules a model must learn, each of which a word-for-word model gets wrong:

- a **dictionary** (every source word has one target word; nouns have a gender, m or f);
- **agreement**: determiners and adjectives take the gender (and number) of their noun
  (``le``/``la``/``los``/``las``, adjective endings ``-o``/``-a``/``-os``/``-as``);
- **reordering**: adjectives follow their noun, and the verb moves to the end (SOV);
- plural nouns take ``-en``; a sentence may end with a place phrase (``in the garden``), kept in place.

Files are written once under ``root`` as ``{train,valid,test}.{en,xx}`` (one sentence per line,
raw text with capitalisation and attached punctuation), and read by the same reader as
``data=parallel_text``; a stamp rewrites them when the generator or the sizes change.
"""

from __future__ import annotations

import random
from pathlib import Path

from litzoo.data.generated import ensure_generated

SOURCE_LANG, TARGET_LANG = "en", "xx"
STAMP = "litzoo_pairs.json"
_VERSION = 1
_NOUNS = [
    "dog",
    "cat",
    "bird",
    "horse",
    "farmer",
    "teacher",
    "child",
    "king",
    "queen",
    "doctor",
    "girl",
    "boy",
    "friend",
    "baker",
    "sailor",
    "wolf",
    "fox",
    "mouse",
    "student",
    "singer",
    "painter",
    "soldier",
]
_ADJECTIVES = [
    "big",
    "small",
    "old",
    "young",
    "happy",
    "angry",
    "quiet",
    "brave",
    "clever",
    "tired",
    "red",
    "green",
]
_VERBS = ["sees", "likes", "helps", "follows", "calls", "finds", "visits", "watches", "feeds", "greets"]
_PLACES = ["garden", "house", "market", "forest", "river", "school", "city"]
_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "nu",
    "pe",
    "ri",
    "sa",
    "tu",
    "vo",
    "ze",
    "ba",
    "do",
    "fi",
    "gu",
    "ha",
    "je",
    "ko",
    "lu",
    "ma",
    "ne",
    "po",
    "qui",
    "ro",
    "si",
    "ta",
    "ve",
    "xi",
    "zo",
]


def _lexicon(rng: random.Random) -> dict[str, tuple[str, str]]:
    """source word -> (target stem, gender) for nouns/places, (target word, '') for the rest."""
    used: set[str] = set()

    def fresh(syllables: int) -> str:
        while True:
            word = "".join(rng.choice(_SYLLABLES) for _ in range(syllables))
            if word not in used:
                used.add(word)
                return word

    lexicon: dict[str, tuple[str, str]] = {}
    for word in _NOUNS + _PLACES:
        lexicon[word] = (fresh(2), rng.choice("mf"))
    for word in _ADJECTIVES:
        lexicon[word] = (fresh(2) + "ñ", "")
    for word in _VERBS:
        lexicon[word] = (fresh(2) + "é", "")
    return lexicon


def _noun_phrase(rng: random.Random, lexicon: dict, nouns: list[str]) -> tuple[list[str], list[str]]:
    noun = rng.choice(nouns)
    plural = rng.random() < 0.3
    adjectives = rng.sample(_ADJECTIVES, rng.choice((0, 0, 1, 1, 2)))
    definite = rng.random() < 0.6
    det = "the" if definite else ("some" if plural else "a")
    source = [det, *adjectives, noun + ("s" if plural else "")]
    stem, gender = lexicon[noun]
    ending = {"m": "o", "f": "a"}[gender] + ("s" if plural else "")
    articles = {("m", False): "le", ("f", False): "la", ("m", True): "los", ("f", True): "las"}
    target_det = (
        articles[gender, plural] if definite else ("un" if gender == "m" else "una") + ("s" if plural else "")
    )
    target = [target_det, stem + ("en" if plural else ""), *(lexicon[a][0] + ending for a in adjectives)]
    return source, target


def make_pair(rng: random.Random, lexicon: dict) -> tuple[str, str]:
    """One sentence pair: subject, verb, object and an optional place phrase."""
    subject_src, subject_tgt = _noun_phrase(rng, lexicon, _NOUNS)
    object_src, object_tgt = _noun_phrase(rng, lexicon, _NOUNS)
    verb = rng.choice(_VERBS)
    source, target = [*subject_src, verb, *object_src], [*subject_tgt, *object_tgt, lexicon[verb][0]]
    if rng.random() < 0.4:
        place_src, place_tgt = _noun_phrase(rng, lexicon, _PLACES)
        source += ["in", *place_src]
        target += ["ad", *place_tgt]
    return " ".join(source).capitalize() + ".", " ".join(target).capitalize() + "."


def ensure_synthetic_pairs(root: str | Path, sizes: dict[str, int] | None = None, seed: int = 0) -> Path:
    """Write the generated pair under `root` (once; several processes may race, the first to finish
    wins: :func:`litzoo.data.generated.ensure_generated`) and return `root`."""
    root = Path(root).expanduser()
    sizes = {str(k): int(v) for k, v in dict(sizes or {"train": 12000, "valid": 400, "test": 400}).items()}

    def write(folder: Path) -> None:
        rng = random.Random(seed)
        lexicon = _lexicon(rng)
        for split, count in sizes.items():
            pairs = [make_pair(rng, lexicon) for _ in range(count)]
            for lang, side in ((SOURCE_LANG, 0), (TARGET_LANG, 1)):
                (folder / f"{split}.{lang}").write_text(
                    "".join(p[side] + "\n" for p in pairs), encoding="utf-8"
                )

    owned = [f"{split}.{lang}" for split in sizes for lang in (SOURCE_LANG, TARGET_LANG)]
    marker = {"version": _VERSION, "params": {"sizes": sizes, "seed": int(seed)}}
    ensure_generated(root, "synthetic translation pair", STAMP, marker, owned, write)
    return root
