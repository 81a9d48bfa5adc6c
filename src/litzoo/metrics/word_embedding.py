"""Word-embedding evaluation: word similarity (Spearman) and word analogy (3CosAdd, 3CosMul), any vectors.

**Similarity.** For each pair, the cosine of the two words' vectors; the score of a set is
Spearman's rank correlation (ties get their average rank, as ``scipy.stats.spearmanr``) between
the cosines and the human scores of the pairs that could be scored. A pair with a word outside
the vocabulary is *counted*, never silently dropped: ``<set>_oov`` is the number of such pairs,
``<set>_scored`` the number of pairs in the correlation (a fastText model scores out-of-vocabulary
words with their character n-grams; a word2vec model cannot, and drops them from the correlation).

**Analogy** (Mikolov et al. 2013; Levy & Goldberg 2014) over unit vectors, the answer searched in
the vocabulary (or its ``top_k`` most frequent words, an explicit and reported option) without the
three question words: 3CosAdd ``argmax cos(x, b) - cos(x, a) + cos(x, c)`` and 3CosMul
``argmax cos'(x, b) cos'(x, c) / (cos'(x, a) + 0.001)`` with ``cos' = (cos + 1) / 2``. A question
is *covered* when its four words are in the searched vocabulary. ``<set>_acc`` counts uncovered
questions as wrong (an honest accuracy over the whole set), ``<set>_covered_acc`` is the accuracy
on covered questions only (what gensim's ``evaluate_word_analogies`` reports, by default over the
300,000 most frequent words), ``<set>_oov`` the number of uncovered questions, and
``<set>_semantic_acc`` / ``<set>_syntactic_acc`` split ``_acc`` by section (``gram*`` sections are
syntactic). Words are looked up case-insensitively (the most frequent variant),
as gensim does with ``case_insensitive=True``:
the most frequent case variant stands for all of them.

Scores do not depend on how the items were batched or sharded: cosines are row-wise float64
dot products, and the analogy answer is decided among the matrix product's 10 best candidates
by recomputing their scores row-wise in float64. So a split evaluated on two ranks, whose
results :class:`WordEmbeddingMetrics` gathers before scoring once, scores exactly as on one.

Command line, on any vectors file (word2vec text/binary, fastText ``.vec``, GloVe)::

    python -m litzoo.metrics.word_embedding vectors.bin                        # embedded WS353, SimLex, analogies
    python -m litzoo.metrics.word_embedding glove.6B.300d.txt --eval-dir /data/eval --top-k 300000
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

MUL_EPSILON = 1e-3
_CANDIDATES = 10


@dataclass
class EvaluationResult:
    """One evaluation pass: flat metrics (``<set>_spearman``, ``analogy_acc``, ...) and text tables for the
    log; the shape of :class:`litzoo.tasks.base.Scores`, which the task hands on as it is."""

    metrics: dict[str, float]
    tables: dict[str, str] = field(default_factory=dict)
    save: Any = None


# ----------------------------------------------------------------------------- Spearman


def rank_average(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values sharing the average of their ranks (``scipy.stats.rankdata``'s default)."""
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(ordered) != 0) + 1])
    ends = np.concatenate([starts[1:], [n]])
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rho: Pearson's correlation of the average ranks; NaN for fewer than 2 pairs or a constant side."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size != y.size:
        raise ValueError(f"spearman needs two sequences of one length, got {x.size} and {y.size}")
    if x.size < 2:
        return float("nan")
    rx, ry = rank_average(x), rank_average(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((rx * rx).sum()) * float((ry * ry).sum()))
    return float((rx * ry).sum() / denominator) if denominator > 0 else float("nan")


# ----------------------------------------------------------------------------- the vector space


class WordIndex:
    """Word -> row of a vocabulary (most frequent first): exact, and lower-cased to the most frequent variant."""

    def __init__(self, words: Sequence[str]) -> None:
        self.words = list(words)
        self.exact = {w: i for i, w in enumerate(self.words)}
        self.folded: dict[str, int] = {}
        for i, w in enumerate(self.words):
            self.folded.setdefault(w.lower(), i)


class VectorSpace:
    """Unit vectors of a vocabulary (row ``i`` is ``words[i]``, most frequent first) and word lookup.

    Args:
        words: the vocabulary in row order (or its :class:`WordIndex`, built once and reused).
        vectors: ``[len(words), dim]`` (any float dtype, any device); normalised here.
        lowercase: the vectors were trained on lower-cased text: queries are lower-cased first.
        unseen: vector of a word outside the vocabulary (fastText n-grams), or None.
    """

    def __init__(
        self,
        words: Sequence[str] | WordIndex,
        vectors: torch.Tensor,
        lowercase: bool = False,
        unseen: Callable[[str], torch.Tensor | None] | None = None,
    ) -> None:
        index = words if isinstance(words, WordIndex) else WordIndex(words)
        vectors = torch.as_tensor(vectors).float()
        if vectors.ndim != 2 or vectors.shape[0] != len(index.words):
            raise ValueError(
                f"{len(index.words)} words need a [{len(index.words)}, dim] matrix, got "
                f"{tuple(vectors.shape)}"
            )
        self.words = index.words
        self.exact, self.folded = index.exact, index.folded
        self.unit = _normalise(vectors)
        self.lowercase = lowercase
        self.unseen = unseen

    def __len__(self) -> int:
        return len(self.words)

    def index(self, word: str, limit: int | None = None) -> int | None:
        """Row of `word`, case-insensitively: the most frequent of the vocabulary's case variants (as gensim's
        ``case_insensitive=True``); None if absent (or, with `limit`, not among the first `limit` rows)."""
        found = self.folded.get(word.lower())
        if found is None or (limit is not None and found >= limit):
            return None
        return found

    def vector(self, word: str) -> torch.Tensor | None:
        """Unit vector of `word`: its row, else its n-gram vector (if the model has n-grams), else None."""
        found = self.index(word)
        if found is not None:
            return self.unit[found]
        if self.unseen is None:
            return None
        vector = self.unseen(word.lower() if self.lowercase else word)
        return None if vector is None else _normalise(vector.float().reshape(1, -1).to(self.unit.device))[0]

    def fold(self, word: str) -> str:
        return word.lower()


def _normalise(vectors: torch.Tensor) -> torch.Tensor:
    norms = vectors.norm(dim=1, keepdim=True)
    return vectors / torch.where(norms > 0, norms, torch.ones_like(norms))


def score_pairs(space: VectorSpace, pairs: Sequence[tuple[str, str]]) -> tuple[list[float], list[bool]]:
    """Cosine of each pair (NaN when a word has no vector) and whether a word is outside the vocabulary."""
    cosines, oov = [], []
    for first, second in pairs:
        u, v = space.vector(first), space.vector(second)
        oov.append(space.index(first) is None or space.index(second) is None)
        cosines.append(float("nan") if u is None or v is None else float((u.double() * v.double()).sum()))
    return cosines, oov


def answer_analogies(
    space: VectorSpace,
    questions: Sequence[tuple[str, str, str, str]],
    top_k: int | None = None,
    max_elements: int = 1 << 24,
) -> tuple[list[bool], list[bool], list[bool]]:
    """For each question: (covered, 3CosAdd correct, 3CosMul correct). See the module docstring."""
    searched = len(space) if top_k is None else min(int(top_k), len(space))
    rows = [[space.index(w, searched) for w in q] for q in questions]
    covered = [all(r is not None for r in row) for row in rows]
    add_right, mul_right = [False] * len(questions), [False] * len(questions)
    todo = [i for i, ok in enumerate(covered) if ok]
    if not todo or searched == 0:
        return covered, add_right, mul_right
    unit = space.unit
    candidates = unit[:searched]
    step = max(1, max_elements // searched)
    for start in range(0, len(todo), step):
        chosen = todo[start : start + step]
        ids = torch.tensor([rows[i] for i in chosen], dtype=torch.int64, device=unit.device)
        a, b, c, d = ids.unbind(1)
        sims = [unit[x] @ candidates.T for x in (a, b, c)]
        add = sims[1] - sims[0] + sims[2]
        mul = (sims[1] + 1) / 2 * (sims[2] + 1) / 2 / ((sims[0] + 1) / 2 + MUL_EPSILON)
        for method, scores in (("add", add), ("mul", mul)):
            scores.scatter_(1, ids[:, :3], float("-inf"))
            predicted = _decide(unit, a, b, c, scores, method)
            right = (predicted == d).tolist()
            target = add_right if method == "add" else mul_right
            for i, ok, guess in zip(chosen, right, predicted.tolist()):
                # Case-insensitively equal words count as the answer (gensim compares upper-cased words).
                target[i] = bool(ok) or space.fold(space.words[guess]) == space.fold(questions[i][3])
    return covered, add_right, mul_right


def _decide(
    unit: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, scores: torch.Tensor, method: str
) -> torch.Tensor:
    """The best candidate, decided by exact float64 row-wise scores of the matrix product's best few
    (ties: the most frequent word), so the answer does not depend on the batch it was computed in."""
    count = min(_CANDIDATES, scores.shape[1])
    top = scores.topk(count, dim=1).indices  # [n, count]
    x = unit[top].double()  # [n, count, dim]
    cos = [(x * unit[w].double().unsqueeze(1)).sum(-1) for w in (a, b, c)]
    if method == "add":
        exact = cos[1] - cos[0] + cos[2]
    else:
        exact = (cos[1] + 1) / 2 * (cos[2] + 1) / 2 / ((cos[0] + 1) / 2 + MUL_EPSILON)
    valid = torch.isfinite(scores.gather(1, top))
    exact = torch.where(valid, exact, torch.full_like(exact, float("-inf")))
    best = exact.max(dim=1, keepdim=True).values
    # Among equally good candidates the lowest row (most frequent word) wins.
    tied = torch.where(exact == best, top, torch.full_like(top, torch.iinfo(torch.int64).max))
    return tied.min(dim=1).values


# ----------------------------------------------------------------------------- whole-split scoring


def gather_across_ranks(obj: Any) -> list[Any]:
    """Every rank's `obj` in rank order; `[obj]` without torch.distributed (or with one process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


class WordEmbeddingMetrics:
    """Per-item results of one evaluation pass, gathered across ranks and scored once per set.

    Args:
        sets: the sets' descriptions (``name``, ``kind``, ``size``; analogy: ``sections``, ``syntactic``),
            as :func:`litzoo.datamodules.word_embedding.evaluation.describe_sets` writes them.
        searched_words: the size of the vocabulary analogy answers are searched in (reported).
    """

    def __init__(self, sets: Sequence[dict[str, Any]], searched_words: int | None = None) -> None:
        self.sets = [dict(s) for s in sets]
        self.searched_words = searched_words
        self.reset()

    def reset(self) -> None:
        self._rows: list[tuple] = []

    def update_similarity(
        self,
        set_index: int,
        items: Sequence[int],
        cosines: Sequence[float],
        oov: Sequence[bool],
        gold: Sequence[float],
    ) -> None:
        self._rows += [
            (set_index, int(i), "s", float(c), bool(o), float(g))
            for i, c, o, g in zip(items, cosines, oov, gold)
        ]

    def update_analogy(
        self,
        set_index: int,
        items: Sequence[int],
        covered: Sequence[bool],
        add_right: Sequence[bool],
        mul_right: Sequence[bool],
        sections: Sequence[int],
    ) -> None:
        self._rows += [
            (set_index, int(i), "a", bool(c), bool(r), bool(m), int(s))
            for i, c, r, m, s in zip(items, covered, add_right, mul_right, sections)
        ]

    def compute(self) -> EvaluationResult:
        """Gather every rank's rows (a collective: every rank calls it), keep each item once, score."""
        rows: dict[tuple[int, int], tuple] = {}
        for part in gather_across_ranks(self._rows):
            for row in part:
                rows.setdefault((row[0], row[1]), row)
        metrics: dict[str, float] = {}
        lines = []
        for set_index, described in enumerate(self.sets):
            mine = [rows[key] for key in sorted(k for k in rows if k[0] == set_index)]
            name = described["name"]
            if described["kind"] == "similarity":
                found = _similarity(mine)
                lines.append(
                    f"{name:<24} {described['size']:>6} pairs  Spearman {found['spearman']:.4f}  scored "
                    f"{found['scored']}  with a word outside the vocabulary {found['oov']}"
                )
            else:
                found = _analogy(mine, described)
                if self.searched_words is not None:
                    found["searched_words"] = self.searched_words
                lines.append(_analogy_table(name, described, mine, found))
            metrics.update({f"{name}_{key}": float(value) for key, value in found.items()})
        return EvaluationResult(metrics=metrics, tables={"word embedding": "\n".join(lines)} if lines else {})


def _similarity(rows: list[tuple]) -> dict[str, float]:
    scored = [(cos, gold) for _, _, _, cos, _, gold in rows if not math.isnan(cos)]
    rho = spearman([c for c, _ in scored], [g for _, g in scored]) if scored else float("nan")
    return {"spearman": rho, "scored": len(scored), "oov": sum(1 for row in rows if row[4])}


def _analogy(rows: list[tuple], described: dict[str, Any]) -> dict[str, float]:
    total = len(rows)
    covered = sum(1 for row in rows if row[3])
    add = sum(1 for row in rows if row[4])
    syntactic = [bool(s) for s in described.get("syntactic", [])]
    kinds = {
        "semantic": [r for r in rows if not syntactic[r[6]]],
        "syntactic": [r for r in rows if syntactic[r[6]]],
    }
    found = {
        "acc": add / total if total else float("nan"),
        "covered_acc": add / covered if covered else float("nan"),
        "3cosmul_acc": sum(1 for row in rows if row[5]) / total if total else float("nan"),
        "oov": total - covered,
    }
    for kind, part in kinds.items():
        found[f"{kind}_acc"] = sum(1 for r in part if r[4]) / len(part) if part else float("nan")
    return found


def _analogy_table(name: str, described: dict[str, Any], rows: list[tuple], found: dict[str, float]) -> str:
    sections = described.get("sections", [])
    lines = [
        f"{name}: {len(rows)} questions, {len(rows) - int(found['oov'])} covered, 3CosAdd {found['acc']:.4f} "
        f"(covered only {found['covered_acc']:.4f}), 3CosMul {found['3cosmul_acc']:.4f}, searched over "
        f"{found.get('searched_words', 'all')} words",
        f"  {'section':<30} {'questions':>9} {'covered':>8} {'3CosAdd':>8} {'3CosMul':>8}",
    ]
    for index, section in enumerate(sections):
        part = [r for r in rows if r[6] == index]
        if part:
            lines.append(
                f"  {section:<30} {len(part):>9} {sum(r[3] for r in part):>8} "
                f"{sum(r[4] for r in part) / len(part):>8.4f} {sum(r[5] for r in part) / len(part):>8.4f}"
            )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- any vectors file


def evaluate_space(space: VectorSpace, sets: Sequence[Any], top_k: int | None = None) -> EvaluationResult:
    """Score every set on `space` in this process (the command line; the task shards items instead)."""
    from litzoo.text.evaluation_sets import describe_sets

    searched = len(space) if top_k is None else min(int(top_k), len(space))
    metrics = WordEmbeddingMetrics(describe_sets(list(sets)), searched_words=searched)
    for set_index, s in enumerate(sets):
        if s.kind == "similarity":
            cosines, oov = score_pairs(space, s.pairs)
            metrics.update_similarity(set_index, range(len(s)), cosines, oov, s.scores)
        else:
            covered, add, mul = answer_analogies(space, s.questions, top_k)
            metrics.update_analogy(set_index, range(len(s)), covered, add, mul, s.section_of)
    return metrics.compute()


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        prog="python -m litzoo.metrics.word_embedding",
        description="Score a word-vector file (word2vec text/binary, fastText .vec, GloVe) on word similarity "
        "(Spearman) and analogy (3CosAdd, 3CosMul) sets.",
    )
    result.add_argument("vectors", help="the vectors file")
    result.add_argument(
        "--eval-dir",
        help="folder of evaluation files (default: the embedded WordSim353, "
        "SimLex-999 and Google analogy sets gensim ships)",
    )
    result.add_argument(
        "--eval-files", nargs="+", help="evaluation files (relative to --eval-dir unless absolute)"
    )
    result.add_argument(
        "--top-k",
        type=int,
        default=None,
        help="search analogy answers among the first K vectors only (default: all of them)",
    )
    result.add_argument("--limit", type=int, default=None, help="read only the first N vectors of the file")
    result.add_argument(
        "--lowercase", action="store_true", help="the vectors were trained on lower-cased text"
    )
    result.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    from litzoo.errors import ConfigError, LitzooError
    from litzoo.text.evaluation_sets import evaluation_files, read_evaluation_sets
    from litzoo.text.vector_files import read_word_vectors

    args = parser().parse_args(argv)
    try:
        if args.top_k is not None and args.top_k < 1:
            raise ConfigError(
                f"--top-k {args.top_k}: give a positive number of words, or leave it out for all."
            )
        sets = read_evaluation_sets(evaluation_files(args.eval_dir, args.eval_files))
        vectors = read_word_vectors(args.vectors, limit=args.limit)
        space = VectorSpace(vectors.words, torch.from_numpy(vectors.vectors), lowercase=args.lowercase)
        scores = evaluate_space(space, sets, args.top_k)
    except LitzooError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    if args.json:
        print(json.dumps(scores.metrics))
    else:
        print(f"{args.vectors}: {len(space)} vectors of dimension {vectors.dim} ({vectors.format})")
        for table in scores.tables.values():
            print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
