"""The official SQuAD scores: exact match and F1 (v1.1), plus HasAns/NoAns and best-threshold F1 (v2.0).

The logic of the official scripts, ``evaluate-v1.1.py`` and ``evaluate-v2.0.py``
(https://rajpurkar.github.io/SQuAD-explorer/), on plain dicts:

- answers are compared after normalisation: lower-case, punctuation removed (``string.punctuation``),
  the articles *a*/*an*/*the* removed, whitespace collapsed;
- exact match is 1 when a normalised prediction equals a normalised gold answer; F1 is the bag-of-
  tokens F1 of prediction and gold answer; both take the max over a question's gold answers and are
  averaged over questions, on a 0-100 scale, as the scripts print them;
- 1.1 counts every question of the gold data (one without a prediction scores 0);
- 2.0 scores an unanswerable question 1 exactly when the prediction is empty, predicts no answer
  where ``na_prob > na_prob_thresh``, splits the scores into HasAns/NoAns, and from the `na_probs`
  (our ``null_odds.json``) finds the threshold with the best exact match and the best F1
  (``best_f1_thresh``: answer where ``na_prob <= thresh``).

``python -m litzoo.metrics.squad dev-v2.0.json predictions.json --na-prob-file null_odds.json``
prints what ``evaluate-v2.0.py`` prints for the same files.
"""

from __future__ import annotations

import argparse
import json
import re
import string
import sys
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and articles, collapse whitespace (both official scripts)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def exact_match_score(prediction: str, gold: str) -> int:
    return int(normalize_answer(prediction) == normalize_answer(gold))


def f1_v1(prediction: str, gold: str) -> float:
    """evaluate-v1.1.py's F1 (no tokens in common: 0)."""
    predicted, truth = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(predicted) & Counter(truth)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(truth)
    return 2 * precision * recall / (precision + recall)


def f1_v2(prediction: str, gold: str) -> float:
    """evaluate-v2.0.py's F1: an empty prediction or gold answer scores 1 only against an empty one."""
    predicted, truth = _tokens(prediction), _tokens(gold)
    if not predicted or not truth:
        return float(predicted == truth)
    same = sum((Counter(predicted) & Counter(truth)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(truth)
    return 2 * precision * recall / (precision + recall)


def evaluate_v1(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str]) -> dict[str, float]:
    """``{"exact_match", "f1"}`` of evaluate-v1.1.py; `gold` maps each question id to its answer texts."""
    exact = f1 = 0.0
    for qid, answers in gold.items():
        if qid not in predictions:
            continue  # the official script: "Unanswered question ... will receive score 0."
        prediction = predictions[qid]
        exact += max(exact_match_score(prediction, a) for a in answers)
        f1 += max(f1_v1(prediction, a) for a in answers)
    total = len(gold)
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total}


def raw_scores_v2(
    gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str]
) -> tuple[dict[str, int], dict[str, float]]:
    """Per question exact match and F1 before any threshold (questions without a prediction are left out,
    as evaluate-v2.0.py leaves them out)."""
    exact, f1 = {}, {}
    for qid, answers in gold.items():
        texts = [a for a in answers if normalize_answer(a)] or [""]
        if qid not in predictions:
            continue
        prediction = predictions[qid]
        exact[qid] = max(exact_match_score(prediction, a) for a in texts)
        f1[qid] = max(f1_v2(prediction, a) for a in texts)
    return exact, f1


def best_threshold(
    predictions: Mapping[str, str],
    scores: Mapping[str, float],
    na_probs: Mapping[str, float],
    has_answer: Mapping[str, bool],
) -> tuple[float, float]:
    """``(best score x100, threshold)``: start with every question unanswered, answer them in order of
    rising `na_probs`, keep the best total (evaluate-v2.0.py's find_best_thresh, ties to the lowest)."""
    current = best = float(sum(1 for qid in has_answer if not has_answer[qid]))
    threshold = 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            current += scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, threshold = current, na_probs[qid]
    return 100.0 * best / len(scores), threshold


def tune_null_threshold(
    predictions: Mapping[str, str],
    f1_raw: Mapping[str, float],
    na_probs: Mapping[str, float],
    has_answer: Mapping[str, bool],
) -> float:
    """The no-answer threshold with the best F1: the official best_f1_thresh, except when answering no
    question is best, where the official script returns 0.0 (which answers those with ``na_prob <= 0``);
    then a value just below every `na_probs`, so that applying it gives the best F1."""
    best, threshold = best_threshold(predictions, f1_raw, na_probs, has_answer)
    unanswered = 100.0 * sum(1 for qid in has_answer if not has_answer[qid]) / len(f1_raw)
    if best == unanswered and na_probs:
        import math

        return math.nextafter(min(na_probs[qid] for qid in f1_raw), -math.inf)
    return threshold


def evaluate_v2(
    gold: Mapping[str, Sequence[str]],
    predictions: Mapping[str, str],
    na_probs: Mapping[str, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> OrderedDict[str, float]:
    """What evaluate-v2.0.py prints: exact, f1, total, HasAns_*, NoAns_* and, with `na_probs`, best_exact(_thresh)
    and best_f1(_thresh). `gold` maps each question id to its answer texts (empty: unanswerable)."""
    has_answer = {qid: bool(answers) for qid, answers in gold.items()}
    exact_raw, f1_raw = raw_scores_v2(gold, predictions)
    probabilities = dict(na_probs) if na_probs is not None else {qid: 0.0 for qid in predictions}

    def thresholded(scores: Mapping[str, float]) -> dict[str, float]:
        return {
            qid: float(not has_answer[qid]) if probabilities[qid] > na_prob_thresh else float(score)
            for qid, score in scores.items()
        }

    exact, f1 = thresholded(exact_raw), thresholded(f1_raw)

    def summary(ids: Iterable[str] | None) -> OrderedDict[str, float]:
        chosen = list(exact) if ids is None else list(ids)
        total = len(chosen)
        return OrderedDict(
            [
                ("exact", 100.0 * sum(exact[q] for q in chosen) / total),
                ("f1", 100.0 * sum(f1[q] for q in chosen) / total),
                ("total", total),
            ]
        )

    out = summary(None)
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        ids = [qid for qid, has in has_answer.items() if has is wanted]
        if ids:
            for key, value in summary(ids).items():
                out[f"{prefix}_{key}"] = value
    if na_probs is not None:
        out["best_exact"], out["best_exact_thresh"] = best_threshold(
            predictions, exact_raw, probabilities, has_answer
        )
        out["best_f1"], out["best_f1_thresh"] = best_threshold(predictions, f1_raw, probabilities, has_answer)
    return out


# The names litzoo logs (val/<name>, test/<name>) for the keys of evaluate-v2.0.py.
V2_METRIC_NAMES = {
    "exact": "exact_match",
    "f1": "f1",
    "HasAns_exact": "has_ans_exact_match",
    "HasAns_f1": "has_ans_f1",
    "NoAns_f1": "no_ans_f1",
    "best_exact": "best_exact_match",
    "best_f1": "best_f1",
}


def logged_metrics(official: Mapping[str, float], version: str) -> dict[str, float]:
    """The official result as litzoo's metric names (NoAns exact match equals NoAns F1, so only the F1)."""
    if version == "1.1":
        return {"exact_match": float(official["exact_match"]), "f1": float(official["f1"])}
    return {name: float(official[key]) for key, name in V2_METRIC_NAMES.items() if key in official}


def gold_from_squad(dataset: Mapping[str, Any]) -> dict[str, list[str]]:
    """``{id: [answer texts]}`` of a parsed SQuAD file (its ``data`` list), as the official scripts read it."""
    return {
        str(qa["id"]): [a["text"] for a in qa["answers"]]
        for article in dataset["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }


def gather_across_ranks(obj: Any) -> list[Any]:
    """Every rank's `obj` in rank order; ``[obj]`` without torch.distributed (or with one process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def _read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m litzoo.metrics.squad",
        description="Score a predictions.json against a SQuAD file (the official v1.1/v2.0 logic).",
    )
    parser.add_argument("data_file", help="the SQuAD JSON file (dev-v1.1.json, dev-v2.0.json, ...)")
    parser.add_argument("pred_file", help="predictions.json: {question id: answer text}")
    parser.add_argument("--na-prob-file", help="2.0: null_odds.json ({question id: no-answer score})")
    parser.add_argument("--na-prob-thresh", type=float, default=1.0, help="2.0: predict no answer above this")
    parser.add_argument("--version", choices=("1.1", "2.0"), help="default: the data file's own version")
    args = parser.parse_args(argv)
    try:
        dataset = _read_json(args.data_file)
        predictions = _read_json(args.pred_file)
        na_probs = _read_json(args.na_prob_file) if args.na_prob_file else None
        gold = gold_from_squad(dataset)
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 3
    questions = [qa for a in dataset["data"] for p in a["paragraphs"] for qa in p["qas"]]
    declared = str(dataset.get("version", "2.0" if any("is_impossible" in q for q in questions) else "1.1"))
    version = args.version or ("2.0" if declared.lstrip("v").startswith("2") else "1.1")
    if version == "1.1":
        result: Mapping[str, float] = evaluate_v1(gold, predictions)
    else:
        result = evaluate_v2(gold, predictions, na_probs, args.na_prob_thresh)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
