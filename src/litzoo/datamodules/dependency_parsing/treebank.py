"""The embedded treebank: English-like sentences from a small grammar, written as a UD release (CoNLL-U).

`ensure_toy_treebank(root)` writes ``en_toy-ud-{train,dev,test}.conllu`` into `root` (once per
generator setting; a `generator.json` beside them records the setting) so that the embedded
default is read by the same CoNLL-U reader as a real UD treebank. What the grammar makes a
parser learn:

- UD relations with subtypes (`nsubj:pass`, `aux:pass`, `nmod:poss`, `acl:relcl`,
  `obl:tmod`), punctuation, coordination, clausal complements (`ccomp`, `xcomp` with `mark`),
  copulas, compounds and flat names;
- attachment that POS tags alone do not decide: `with a fork` attaches to the eating verb
  (`obl`) while `with cheese` attaches to the noun (`nmod`), and a locative after the object
  (`near the station`) attaches to the verb or to the object depending on the verb, the
  preposition and the noun together (a fixed hidden rule the parser must learn from examples);
- non-projective trees: relative clauses extraposed past the verb ("a man arrived who ...");
- multi-word tokens (`doesn't` = `does` + `n't`, `cannot` = `can` + `not`) and, in gapped
  coordinations ("the cat ate fish and the dog rice"), an empty node for the elided verb with
  the `orphan` relation in the basic tree, as UD annotates them.

Everything is drawn from one seeded generator: the same settings give the same files.
"""

from __future__ import annotations

import json
import random
import zlib
from dataclasses import dataclass, field
from pathlib import Path

GENERATOR_VERSION = 2
FILE_PATTERN = "en_toy-ud-{split}.conllu"
SPLITS = ("train", "dev", "test")


@dataclass
class Node:
    """A word of a tree being built: its columns, relation to its head and dependents on each side."""

    form: str
    lemma: str
    upos: str
    xpos: str
    feats: str = "_"
    rel: str = "root"
    left: list[Node] = field(default_factory=list)
    right: list[Node] = field(default_factory=list)
    contraction: str | None = None  # the surface token this word starts (e.g. "doesn't" for "does")
    contraction_size: int = 1
    space_after: bool = True

    def add_left(self, rel: str, node: Node) -> Node:
        node.rel = rel
        self.left.append(node)
        return node

    def add_right(self, rel: str, node: Node) -> Node:
        node.rel = rel
        self.right.append(node)
        return node


def _w(form: str, upos: str, xpos: str, lemma: str | None = None, feats: str = "_") -> Node:
    return Node(form, lemma or form.lower(), upos, xpos, feats)


# ----------------------------------------------------------------------------- the lexicon

ANIMATE = [
    "dog",
    "cat",
    "man",
    "woman",
    "child",
    "teacher",
    "farmer",
    "doctor",
    "student",
    "bird",
    "horse",
    "pilot",
]
THINGS = [
    "cake",
    "pizza",
    "book",
    "letter",
    "car",
    "ball",
    "apple",
    "soup",
    "house",
    "box",
    "song",
    "picture",
]
FOODS = ["pizza", "cake", "soup", "apple", "bread", "fish", "rice", "salad"]
INSTRUMENTS = ["fork", "knife", "spoon", "telescope", "hammer", "pen", "stick"]
ACCOMPANIMENTS = ["cheese", "sauce", "spots", "ribbon", "stripes", "sugar", "pictures"]
LOCATIVES = ["near", "behind", "beside", "under", "at"]
PLACES = ["park", "garden", "kitchen", "city", "school", "forest", "market", "station"]
ADJECTIVES = ["big", "small", "red", "old", "happy", "tall", "quiet", "young", "green", "tired"]
NAMES = [
    ("Mary", None),
    ("John", None),
    ("Anna", "Smith"),
    ("Peter", "Brown"),
    ("Lena", None),
    ("Omar", "Khan"),
]
TIMES = ["yesterday", "today", "tonight", "morning"]
MANNER = ["quickly", "slowly", "often", "happily", "quietly"]
# verb: (past form, participle, takes an instrument)
TRANSITIVE = {
    "eat": ("ate", "eaten", True),
    "see": ("saw", "seen", True),
    "chase": ("chased", "chased", False),
    "like": ("liked", "liked", False),
    "find": ("found", "found", False),
    "buy": ("bought", "bought", False),
    "cut": ("cut", "cut", True),
    "write": ("wrote", "written", True),
    "open": ("opened", "opened", True),
    "carry": ("carried", "carried", False),
}
INTRANSITIVE = {
    "sleep": "slept",
    "bark": "barked",
    "arrive": "arrived",
    "laugh": "laughed",
    "sing": "sang",
    "run": "ran",
    "wait": "waited",
}
SAYING = {"say": "said", "think": "thought", "know": "knew"}
WANTING = {"want": "wanted", "try": "tried", "hope": "hoped"}
BASE_FORMS = {
    "eat": "eat",
    "see": "see",
    "chase": "chase",
    "like": "like",
    "find": "find",
    "buy": "buy",
    "cut": "cut",
    "write": "write",
    "open": "open",
    "carry": "carry",
}
PRONOUNS = [
    ("she", "Case=Nom|Gender=Fem|Number=Sing|Person=3|PronType=Prs"),
    ("he", "Case=Nom|Gender=Masc|Number=Sing|Person=3|PronType=Prs"),
    ("they", "Case=Nom|Number=Plur|Person=3|PronType=Prs"),
]
POSSESSIVES = ["his", "her", "its", "their"]


class Grammar:
    """Sentence templates over the lexicon; each method returns the head node of a phrase."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def choice(self, items: list) -> object:
        return self.rng.choice(items)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    # -- noun phrases ------------------------------------------------------------------------------
    def noun_phrase(self, nouns: list[str], allow_pp: bool = True, plural_ok: bool = True) -> Node:
        if nouns is ANIMATE and self.chance(0.12):
            return self.name()
        plural = plural_ok and self.chance(0.25)
        noun = str(self.choice(nouns))
        form = noun + ("es" if noun.endswith(("ch", "sh", "x")) else "s") if plural else noun
        head = _w(form, "NOUN", "NNS" if plural else "NN", noun, "Number=Plur" if plural else "Number=Sing")
        if plural and self.chance(0.3):
            head.add_left(
                "nummod", _w(str(self.choice(["two", "three", "five"])), "NUM", "CD", feats="NumType=Card")
            )
        elif self.chance(0.2):
            head.add_left(
                "nmod:poss", _w(str(self.choice(POSSESSIVES)), "PRON", "PRP$", feats="Poss=Yes|PronType=Prs")
            )
        else:
            det = "the" if plural or self.chance(0.6) else str(self.choice(["a", "every", "this"]))
            head.add_left("det", _w(det, "DET", "DT", feats="PronType=Art"))
        if self.chance(0.3):
            adjective = _w(str(self.choice(ADJECTIVES)), "ADJ", "JJ", feats="Degree=Pos")
            head.left.insert(len(head.left), adjective)
            adjective.rel = "amod"
        if nouns is THINGS and self.chance(0.1):
            modifier = _w(str(self.choice(FOODS)), "NOUN", "NN", feats="Number=Sing")
            modifier.rel = "compound"
            head.left.append(modifier)
        if allow_pp and self.chance(0.15):
            self.attach_pp(head, str(self.choice(["in", "near"])), PLACES, "nmod")
        return head

    def name(self) -> Node:
        first, last = self.choice(NAMES)  # type: ignore[misc]
        head = _w(first, "PROPN", "NNP", first, "Number=Sing")
        if last:
            head.add_right("flat", _w(last, "PROPN", "NNP", last, "Number=Sing"))
        return head

    def subject(self) -> Node:
        if self.chance(0.15):
            form, feats = self.choice(PRONOUNS)  # type: ignore[misc]
            return _w(str(form), "PRON", "PRP", str(form), str(feats))
        return self.noun_phrase(ANIMATE)

    def attach_pp(self, head: Node, preposition: str, nouns: list[str], rel: str) -> Node:
        noun = self.noun_phrase(nouns, allow_pp=False, plural_ok=nouns is not INSTRUMENTS)
        noun.left.insert(0, _w(preposition, "ADP", "IN"))
        noun.left[0].rel = "case"
        return head.add_right(rel, noun)

    # -- clauses -----------------------------------------------------------------------------------
    def verb(
        self, form: str, lemma: str, xpos: str = "VBD", feats: str = "Mood=Ind|Tense=Past|VerbForm=Fin"
    ) -> Node:
        return _w(form, "VERB", xpos, lemma, feats)

    def transitive_clause(self, subject: Node | None = None) -> Node:
        lemma = str(self.choice(list(TRANSITIVE)))
        past, _, instrumental = TRANSITIVE[lemma]
        modal = self.chance(0.15)
        negated = self.chance(0.12)
        if modal or negated:
            verb = self.verb(BASE_FORMS[lemma], lemma, "VB", "VerbForm=Inf")
        else:
            verb = self.verb(past, lemma)
        verb.add_left("nsubj", subject or self.subject())
        if modal and negated:
            can = verb.add_left("aux", _w("can", "AUX", "MD", "can", "VerbForm=Fin"))
            verb.add_left("advmod", _w("not", "PART", "RB", "not", "Polarity=Neg"))
            can.contraction, can.contraction_size = "cannot", 2
            can.space_after = False
        elif modal:
            verb.add_left(
                "aux", _w(str(self.choice(["will", "can", "must"])), "AUX", "MD", feats="VerbForm=Fin")
            )
        elif negated:
            does = verb.add_left("aux", _w("did", "AUX", "VBD", "do", "Mood=Ind|Tense=Past|VerbForm=Fin"))
            verb.add_left("advmod", _w("n't", "PART", "RB", "not", "Polarity=Neg"))
            does.contraction, does.contraction_size = "didn't", 2
            does.space_after = False
        objects = FOODS if lemma in ("eat", "cut", "buy") else THINGS
        obj = verb.add_right("obj", self.noun_phrase(objects))
        if instrumental and self.chance(0.35):  # the lexical attachment decision
            self.attach_pp(verb, "with", INSTRUMENTS, "obl")
        elif self.chance(0.3):
            self.attach_pp(obj, "with", ACCOMPANIMENTS, "nmod")
        if self.chance(0.35):  # attachment decided by the (verb, preposition, noun) triple, as in real text
            preposition, place = str(self.choice(LOCATIVES)), str(self.choice(PLACES))
            to_verb = zlib.crc32(f"{lemma}|{preposition}|{place}".encode()) % 2 == 0
            self.attach_pp(verb if to_verb else obj, preposition, [place], "obl" if to_verb else "nmod")
        self.adverbs(verb)
        return verb

    def intransitive_clause(self, subject: Node | None = None) -> Node:
        lemma = str(self.choice(list(INTRANSITIVE)))
        verb = self.verb(INTRANSITIVE[lemma], lemma)
        verb.add_left("nsubj", subject or self.subject())
        if self.chance(0.4):
            self.attach_pp(verb, str(self.choice(["in", "near", "under"])), PLACES, "obl")
        self.adverbs(verb)
        return verb

    def passive_clause(self) -> Node:
        lemma = str(self.choice(list(TRANSITIVE)))
        participle = TRANSITIVE[lemma][1]
        verb = self.verb(participle, lemma, "VBN", "Tense=Past|VerbForm=Part|Voice=Pass")
        subject = verb.add_left("nsubj:pass", self.noun_phrase(THINGS))
        plural = subject.xpos == "NNS"
        verb.add_left(
            "aux:pass",
            _w("were" if plural else "was", "AUX", "VBD", "be", "Mood=Ind|Tense=Past|VerbForm=Fin"),
        )
        if self.chance(0.6):
            self.attach_pp(verb, "by", ANIMATE, "obl")
        self.adverbs(verb)
        return verb

    def copular_clause(self) -> Node:
        adjective = _w(str(self.choice(ADJECTIVES)), "ADJ", "JJ", feats="Degree=Pos")
        subject = adjective.add_left("nsubj", self.subject())
        plural = subject.xpos in ("NNS",) or subject.form == "they"
        adjective.add_left(
            "cop", _w("were" if plural else "was", "AUX", "VBD", "be", "Mood=Ind|Tense=Past|VerbForm=Fin")
        )
        if self.chance(0.3):
            adjective.add_left("advmod", _w("very", "ADV", "RB"))
        return adjective

    def saying_clause(self) -> Node:
        lemma = str(self.choice(list(SAYING)))
        verb = self.verb(SAYING[lemma], lemma)
        verb.add_left("nsubj", self.subject())
        inner = self.choice([self.transitive_clause, self.intransitive_clause])()  # type: ignore[operator]
        if self.chance(0.7):
            inner.left.insert(0, _w("that", "SCONJ", "IN"))
            inner.left[0].rel = "mark"
        verb.add_right("ccomp", inner)
        return verb

    def wanting_clause(self) -> Node:
        lemma = str(self.choice(list(WANTING)))
        verb = self.verb(WANTING[lemma], lemma)
        verb.add_left("nsubj", self.subject())
        inner_lemma = str(self.choice(list(TRANSITIVE)))
        inner = self.verb(BASE_FORMS[inner_lemma], inner_lemma, "VB", "VerbForm=Inf")
        inner.add_left("mark", _w("to", "PART", "TO"))
        inner.add_right("obj", self.noun_phrase(FOODS if inner_lemma == "eat" else THINGS, allow_pp=False))
        verb.add_right("xcomp", inner)
        return verb

    def relative_clause(self) -> Node:
        verb_lemma = str(self.choice(list(INTRANSITIVE)))
        verb = self.verb(INTRANSITIVE[verb_lemma], verb_lemma)
        verb.add_left("nsubj", _w("who", "PRON", "WP", feats="PronType=Rel"))
        if self.chance(0.3):
            self.attach_pp(verb, "in", PLACES, "obl")
        return verb

    def adverbs(self, verb: Node) -> None:
        if self.chance(0.15):
            verb.add_right("advmod", _w(str(self.choice(MANNER)), "ADV", "RB"))
        if self.chance(0.1):
            verb.add_right("obl:tmod", _w(str(self.choice(TIMES)), "NOUN", "NN", feats="Number=Sing"))

    def coordinated(self, clause: Node) -> Node:
        other = self.choice([self.transitive_clause, self.intransitive_clause])()  # type: ignore[operator]
        other.left.insert(0, _w(str(self.choice(["and", "but"])), "CCONJ", "CC"))
        other.left[0].rel = "cc"
        if self.chance(0.5):
            comma = _w(",", "PUNCT", ",")
            comma.rel = "punct"
            other.left.insert(0, comma)
        clause.add_right("conj", other)
        return clause


# ----------------------------------------------------------------------------- linearising


@dataclass
class Row:
    node: Node
    head: int
    rel: str


def _linearise(root: Node) -> list[Row]:
    rows: list[Row] = []

    def visit(node: Node, head_position: int) -> None:
        # Reserve the node's place after its left dependents: visit them with a deferred head.
        left_start = len(rows)
        for child in node.left:
            visit(child, -1)
        index = len(rows)
        rows.append(Row(node, head_position, node.rel))
        for row in rows[left_start:index]:
            if row.head == -1:
                row.head = index + 1
        for child in node.right:
            visit(child, index + 1)

    visit(root, 0)
    return rows


def _subtree_span(rows: list[Row], top: int) -> tuple[int, int]:
    """The (first, last) 0-based positions of the subtree of word `top` (0-based), if contiguous."""
    members = {top}
    changed = True
    while changed:
        changed = False
        for i, row in enumerate(rows):
            if i not in members and row.head - 1 in members:
                members.add(i)
                changed = True
    return min(members), max(members)


def _move_block(rows: list[Row], first: int, last: int, to: int) -> list[Row]:
    """Move rows[first:last+1] so that it starts at position `to` (after removal), remapping heads."""
    order = list(range(len(rows)))
    block = order[first : last + 1]
    rest = order[:first] + order[last + 1 :]
    order = rest[:to] + block + rest[to:]
    new_position = {old: new for new, old in enumerate(order)}
    moved = []
    for old in order:
        row = rows[old]
        head = 0 if row.head == 0 else new_position[row.head - 1] + 1
        moved.append(Row(row.node, head, row.rel))
    return moved


def generate_sentence(rng: random.Random) -> tuple[list[Row], dict[str, object]]:
    """One sentence as rows (word, head, relation) and what else it has (empty node, extraposition)."""
    grammar = Grammar(rng)
    extra: dict[str, object] = {}
    kind = rng.random()
    if kind < 0.08:  # gapping: "the cat ate fish and the dog rice"
        root = grammar.transitive_clause()
        remnant_subject = grammar.noun_phrase(ANIMATE, allow_pp=False)
        remnant_object = grammar.noun_phrase(FOODS, allow_pp=False, plural_ok=False)
        remnant_subject.left.insert(0, _w("and", "CCONJ", "CC"))
        remnant_subject.left[0].rel = "cc"
        remnant_subject.add_right("orphan", remnant_object)
        root.add_right("conj", remnant_subject)
        extra["gapped"] = root
    elif kind < 0.18:  # extraposed relative clause: non-projective
        subject = grammar.noun_phrase(ANIMATE, allow_pp=False, plural_ok=False)
        if subject.upos == "PROPN":
            subject = _w("man", "NOUN", "NN", "man", "Number=Sing")
            subject.add_left("det", _w("a", "DET", "DT", feats="PronType=Art"))
        relative = subject.add_right("acl:relcl", grammar.relative_clause())
        root = grammar.intransitive_clause(subject)
        extra["extrapose"] = relative
    else:
        makers = [
            grammar.transitive_clause,
            grammar.transitive_clause,
            grammar.intransitive_clause,
            grammar.passive_clause,
            grammar.copular_clause,
            grammar.saying_clause,
            grammar.wanting_clause,
        ]
        root = rng.choice(makers)()
        if rng.random() < 0.12:
            subject = next((child for child in root.left if child.rel == "nsubj"), None)
            if subject is not None and subject.upos == "NOUN":
                subject.add_right("acl:relcl", grammar.relative_clause())
        if rng.random() < 0.15:
            grammar.coordinated(root)
    period = _w(rng.choice([".", ".", "!"]), "PUNCT", ".")
    root.add_right("punct", period)
    rows = _linearise(root)
    if "extrapose" in extra:
        top = next(i for i, r in enumerate(rows) if r.node is extra["extrapose"])
        first, last = _subtree_span(rows, top)
        rows = _move_block(
            rows, first, last, len(rows) - (last - first + 1) - 1
        )  # before the final punctuation
    return rows, extra


def _space_after(rows: list[Row], position: int) -> bool:
    node = rows[position].node
    if not node.space_after:
        return False
    following = rows[position + 1].node if position + 1 < len(rows) else None
    return following is None or following.upos != "PUNCT"


def sentence_lines(rows: list[Row], extra: dict[str, object], sent_id: str) -> list[str]:
    """The CoNLL-U lines of a generated sentence (comments, ranges, empty node, words)."""
    # Surface text: no space before punctuation; contractions are single tokens.
    text_parts: list[str] = []
    position = 0
    while position < len(rows):
        node = rows[position].node
        size = node.contraction_size if node.contraction else 1
        surface = node.contraction or node.form
        last = position + size - 1
        text_parts.append(
            surface + (" " if last + 1 < len(rows) and rows[last + 1].node.upos != "PUNCT" else "")
        )
        position += size
    lines = [f"# sent_id = {sent_id}", f"# text = {''.join(text_parts).strip()}"]
    gapped = extra.get("gapped")
    gap_after = None
    if gapped is not None:  # the elided verb of the second conjunct sits after its subject
        conj = next(i for i, r in enumerate(rows) if r.rel == "conj" and rows[r.head - 1].node is gapped)
        gap_after = conj + 1
    skip_until = 0
    for position, row in enumerate(rows):
        node = row.node
        word_id = position + 1
        if node.contraction and word_id > skip_until:
            last = word_id + node.contraction_size - 1
            space = "_" if _space_after(rows, last - 1) else "SpaceAfter=No"
            lines.append(f"{word_id}-{last}\t{node.contraction}\t_\t_\t_\t_\t_\t_\t_\t{space}")
            skip_until = last
        misc = "_"
        inside_contraction = skip_until >= word_id
        if not inside_contraction and not _space_after(rows, position):
            misc = "SpaceAfter=No"
        deps = f"{row.head}:{row.rel}"
        lines.append(
            f"{word_id}\t{node.form}\t{node.lemma}\t{node.upos}\t{node.xpos}\t{node.feats}\t{row.head}\t"
            f"{row.rel}\t{deps}\t{misc}"
        )
        if gap_after is not None and word_id == gap_after:
            verb = rows[row.head - 1].node
            lines.append(
                f"{word_id}.1\t{verb.form}\t{verb.lemma}\t{verb.upos}\t{verb.xpos}\t{verb.feats}\t_\t_\t"
                f"{row.head}:conj\tCopyOf={row.head}"
            )
    return lines


def generate_treebank(num_sentences: int, seed: int, prefix: str) -> str:
    """`num_sentences` generated sentences as CoNLL-U text."""
    rng = random.Random(seed)
    blocks = [f"# newdoc id = {prefix}"]
    out = []
    for index in range(num_sentences):
        rows, extra = generate_sentence(rng)
        lines = sentence_lines(rows, extra, f"{prefix}-{index + 1:05d}")
        if index == 0:
            lines = blocks + lines
        out.append("\n".join(lines) + "\n\n")
    return "".join(out)


def ensure_toy_treebank(
    root: str | Path, num_train: int = 3000, num_dev: int = 400, num_test: int = 400, seed: int = 0
) -> Path:
    """Write the embedded treebank into `root` unless it is there with the same settings; returns `root`."""
    root = Path(root).expanduser()
    settings = {
        "version": GENERATOR_VERSION,
        "num_train": num_train,
        "num_dev": num_dev,
        "num_test": num_test,
        "seed": seed,
    }
    marker = root / "generator.json"
    files = {split: root / FILE_PATTERN.format(split=split) for split in SPLITS}
    if marker.is_file() and all(f.is_file() for f in files.values()):
        try:
            if json.loads(marker.read_text()) == settings:
                return root
        except ValueError:
            pass
    root.mkdir(parents=True, exist_ok=True)
    sizes = {"train": num_train, "dev": num_dev, "test": num_test}
    for offset, split in enumerate(SPLITS):
        text = generate_treebank(sizes[split], seed * 1000 + offset, f"toy-{split}")
        tmp = files[split].with_suffix(f".tmp{random.random():.6f}")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(files[split])
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(settings))
    tmp.replace(marker)
    return root
