"""Corpus BLEU and chrF with sacreBLEU, on detokenized hypotheses against raw references.

The one comparable way to report translation quality (Post 2018): the system's *detokenized*
output against the *untokenized* references, tokenized by sacreBLEU itself (``13a`` by default), with
the signature (``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.x``) stored beside the score.
Tokenized BLEU on subword or Moses-tokenized text, the number fairseq's ``--scoring bleu`` prints,
is not computed.

Under DDP each rank holds its share of the split: :meth:`CorpusBleu.compute` gathers every rank's
``(index, hypothesis, reference)``, orders them by index (a sentence seen twice counts once), and scores
the whole split once, so 2 processes give the numbers of 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from litzoo.metrics.coco_eval import _broadcast_from_rank0, gather_across_ranks


def corpus_scores(
    hypotheses: Sequence[str], references: Sequence[str], tokenize: str = "13a", lowercase: bool = False
) -> dict[str, Any]:
    """sacreBLEU's corpus BLEU and chrF (x100, as sacreBLEU reports them) with their signatures."""
    from sacrebleu.metrics import BLEU, CHRF

    bleu, chrf = BLEU(tokenize=tokenize, lowercase=lowercase), CHRF()
    b = bleu.corpus_score(list(hypotheses), [list(references)])
    c = chrf.corpus_score(list(hypotheses), [list(references)])
    return {
        "bleu": b.score,
        "chrf": c.score,
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "bleu_text": str(b),
    }


class CorpusBleu:
    """Collects decoded sentences of one split; ``compute()`` scores them all (collective under DDP)."""

    def __init__(self, split: str, tokenize: str = "13a", lowercase: bool = False) -> None:
        self.split, self.tokenize, self.lowercase = split, tokenize, lowercase
        self.reset()

    def reset(self) -> None:
        self._items: list[tuple[int, str, str, str]] = []
        self.last: dict[str, Any] | None = None

    def update(
        self,
        indices: Sequence[int],
        hypotheses: Sequence[str],
        references: Sequence[str],
        sources: Sequence[str] | None = None,
    ) -> None:
        sources = sources if sources is not None else [""] * len(hypotheses)
        self._items.extend(zip((int(i) for i in indices), hypotheses, references, sources, strict=True))

    def compute(self) -> dict[str, Any] | None:
        """Scores of the whole split (every rank gets them), with the ordered hypotheses and references."""
        unique: dict[int, tuple[str, str, str]] = {}
        for part in gather_across_ranks(self._items):
            for index, hyp, ref, src in part:
                unique.setdefault(index, (hyp, ref, src))
        order = sorted(unique)
        hyps, refs = [unique[i][0] for i in order], [unique[i][1] for i in order]
        result = None
        if hyps:
            result = corpus_scores(hyps, refs, self.tokenize, self.lowercase)
            result.update(sentences=len(hyps), hypotheses=hyps, references=refs)
        self.last = _broadcast_from_rank0(result)
        return self.last


def write_lines(path: str | Path, lines: Sequence[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
