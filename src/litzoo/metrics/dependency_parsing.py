"""Attachment scores of dependency trees: UAS and LAS as the CoNLL 2018 shared task computes them.

The conventions (those of the official `conll18_ud_eval.py` with the gold tokenization):

- only syntactic words are scored: multi-word token ranges (`1-2`) and empty nodes (`8.1`)
  never are (the reader does not even make them words);
- UAS: the share of words whose predicted head is the gold head; LAS: head and relation both
  right, relations compared by their universal part (`nsubj:pass` and `nsubj` are equal,
  `nsubj:pass` and `obj` are not);
- punctuation counts like any other word.

The parsing literature on the Penn Treebank (Chen & Manning 2014; Dozat & Manning 2017)
excludes punctuation instead: ``punct="exclude"`` leaves out words whose gold tag (UPOS or
XPOS) is in `punct_tags` (by default the PTB punctuation tags `` `` '' , . : `` and UD's
`PUNCT`). Whichever is used is an explicit option, logged with the scores.

Also computed: UCM/LCM (sentences whose scored words are all right, unlabeled/labeled) and a
per-relation table (gold and predicted counts, labeled precision, recall and F1 by universal
relation). `python -m litzoo.metrics.dependency_parsing gold.conllu system.conllu` scores two
files the same way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from litzoo.errors import ConfigError, DataError, LitzooError
from litzoo.text.conllu import Sentence, read_treebank, universal_relation

PUNCT_MODES = ("include", "exclude")
# Punctuation by gold tag: the PTB tags of Chen & Manning (2014) and UD's PUNCT.
DEFAULT_PUNCT_TAGS = ("``", "''", ",", ".", ":", "PUNCT")


@dataclass
class RelationCounts:
    gold: int = 0
    predicted: int = 0
    correct: int = 0  # head and relation right

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        total = self.gold + self.predicted
        return 2 * self.correct / total if total else 0.0


@dataclass
class AttachmentScores:
    """Counts behind UAS/LAS/UCM/LCM, and the per-relation table."""

    words: int = 0
    head_correct: int = 0
    labeled_correct: int = 0
    sentences: int = 0
    complete_unlabeled: int = 0
    complete_labeled: int = 0
    relations: dict[str, RelationCounts] = field(default_factory=dict)
    punct: str = "include"

    @property
    def uas(self) -> float:
        return self.head_correct / self.words if self.words else 0.0

    @property
    def las(self) -> float:
        return self.labeled_correct / self.words if self.words else 0.0

    @property
    def ucm(self) -> float:
        return self.complete_unlabeled / self.sentences if self.sentences else 0.0

    @property
    def lcm(self) -> float:
        return self.complete_labeled / self.sentences if self.sentences else 0.0

    def metrics(self) -> dict[str, float]:
        """The flat scores to log (0-1 scale)."""
        return {"uas": self.uas, "las": self.las, "ucm": self.ucm, "lcm": self.lcm}

    def relation_table(self) -> str:
        """Per universal relation: gold/predicted counts and labeled precision, recall (LAS of the
        relation's words) and F1, most frequent first."""
        rows = sorted(self.relations.items(), key=lambda kv: (-kv[1].gold, kv[0]))
        width = max([len("relation"), *(len(name) for name, _ in rows)])
        lines = [f"{'relation':<{width}}  {'gold':>6}  {'pred':>6}  {'prec':>6}  {'recall':>6}  {'f1':>6}"]
        for name, counts in rows:
            lines.append(
                f"{name:<{width}}  {counts.gold:>6}  {counts.predicted:>6}  {100 * counts.precision:6.2f}  "
                f"{100 * counts.recall:6.2f}  {100 * counts.f1:6.2f}"
            )
        lines.append(
            f"{'total':<{width}}  {self.words:>6}  {self.words:>6}  {'':>6}  {100 * self.las:6.2f}  {'':>6}"
        )
        return "\n".join(lines)


def check_punct(punct: str) -> str:
    if punct not in PUNCT_MODES:
        raise ConfigError(
            f"punct={punct!r} must be `include` (CoNLL 2018: every word is scored) or `exclude` "
            "(the PTB convention: words with a punctuation tag are not scored)."
        )
    return punct


def attachment_scores(
    gold: Sequence[Sentence],
    heads: Sequence[Sequence[int]],
    deprels: Sequence[Sequence[str]],
    punct: str = "include",
    punct_tags: Sequence[str] = DEFAULT_PUNCT_TAGS,
) -> AttachmentScores:
    """Score predicted trees against `gold` sentences (same words, in the same order).

    `heads[i][k]` and `deprels[i][k]` are the prediction for word `k + 1` of sentence `i`.
    """
    check_punct(punct)
    if not (len(gold) == len(heads) == len(deprels)):
        raise ValueError(
            f"{len(gold)} gold sentences but {len(heads)} predicted head lists and {len(deprels)} "
            "relation lists"
        )
    tags = frozenset(punct_tags)
    scores = AttachmentScores(punct=punct)
    for sentence, predicted_heads, predicted_rels in zip(gold, heads, deprels):
        if len(predicted_heads) != len(sentence) or len(predicted_rels) != len(sentence):
            raise ValueError(
                f"{sentence.path}, line {sentence.start_line}: {len(sentence)} words but "
                f"{len(predicted_heads)} predicted heads"
            )
        all_heads = all_labels = True
        scored = 0
        for word, head, rel in zip(sentence.words, predicted_heads, predicted_rels):
            if punct == "exclude" and (word.upos in tags or word.xpos in tags):
                continue
            scored += 1
            gold_rel = universal_relation(str(word.deprel))
            rel = universal_relation(str(rel))
            head_right = int(head) == word.head
            labeled_right = head_right and rel == gold_rel
            scores.words += 1
            scores.head_correct += head_right
            scores.labeled_correct += labeled_right
            all_heads &= head_right
            all_labels &= labeled_right
            scores.relations.setdefault(gold_rel, RelationCounts()).gold += 1
            scores.relations.setdefault(rel, RelationCounts()).predicted += 1
            scores.relations[gold_rel].correct += labeled_right
        if scored:
            scores.sentences += 1
            scores.complete_unlabeled += all_heads
            scores.complete_labeled += all_labels
    return scores


def score_files(
    gold_path: str,
    system_path: str,
    fmt: str = "conllu",
    punct: str = "include",
    punct_tags: Sequence[str] = DEFAULT_PUNCT_TAGS,
) -> AttachmentScores:
    """Score a system file against a gold file with the same sentences and words."""
    gold = read_treebank(gold_path, fmt)
    system = read_treebank(system_path, fmt)
    if len(gold) != len(system):
        raise DataError(
            f"{system_path} has {len(system)} sentences but {gold_path} has {len(gold)}; score a file "
            "parsed from the gold file's words (same sentences, same tokenization)."
        )
    for ours, theirs in zip(system, gold):
        if ours.forms != theirs.forms:
            raise DataError(
                f"{system_path}, line {ours.start_line}: the sentence's words differ from those of "
                f"{gold_path}, line {theirs.start_line}; attachment scores need the gold tokenization."
            )
    return attachment_scores(gold, [s.heads for s in system], [s.deprels for s in system], punct, punct_tags)


def gather_across_ranks(obj: Any) -> list[Any]:
    """Every rank's `obj` in rank order; `[obj]` without torch.distributed (or with one process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m litzoo.metrics.dependency_parsing",
        description="UAS/LAS of a parsed file against the gold file (CoNLL 2018 rules).",
    )
    parser.add_argument("gold")
    parser.add_argument("system")
    parser.add_argument("--format", default="conllu", choices=("conllu", "conllx"))
    parser.add_argument("--punct", default="include", choices=PUNCT_MODES)
    parser.add_argument("--relations", action="store_true", help="print the per-relation table")
    args = parser.parse_args(argv)
    try:
        scores = score_files(args.gold, args.system, args.format, args.punct)
    except LitzooError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    print(
        f"UAS {100 * scores.uas:.2f}  LAS {100 * scores.las:.2f}  UCM {100 * scores.ucm:.2f}  "
        f"LCM {100 * scores.lcm:.2f}  ({scores.words} words, punctuation {args.punct}d)"
    )
    if args.relations:
        print(scores.relation_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
