"""SQuAD reader, windows and offsets, n-best decoding and the official metrics, without training."""

from __future__ import annotations

import json
import math
import random
import unicodedata

import pytest
import torch

from litzoo.datamodules.question_answering import read_squad, write_squad
from litzoo.datamodules.question_answering.layouts import check_squad, check_window_settings
from litzoo.errors import ConfigError, DataError
from litzoo.metrics.squad import evaluate_v1, evaluate_v2, raw_scores_v2, tune_null_threshold
from litzoo.text.qa_windows import WindowSettings, build_windows
from litzoo.text.span_decoding import WindowCandidates, decide, window_candidates


def squad(
    tmp_path, qas, context="Zoë  Martínez was born in São Paulo in 1921.", version="2.0", name="f.json"
):
    return write_squad(
        tmp_path / name, [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}], version
    )


def test_reader_checks_shape_version_and_answer_offsets(tmp_path):
    good = squad(
        tmp_path,
        [
            {
                "id": "a",
                "question": "Where?",
                "answers": [{"text": "São Paulo", "answer_start": 26}],
                "is_impossible": False,
            },
            {
                "id": "b",
                "question": "When did she die?",
                "answers": [],
                "is_impossible": True,
                "plausible_answers": [{"text": "1921", "answer_start": 39}],
            },
        ],
    )
    file = read_squad(good, "2.0")
    assert file.version == "2.0" and [e.qid for e in file.examples] == ["a", "b"]
    assert file.examples[1].is_impossible and file.examples[1].plausible_answers[0].text == "1921"
    with pytest.raises(DataError, match=r"is a SQuAD 2.0 file .* data.version=1.1"):
        read_squad(good, "1.1")
    broken = tmp_path / "broken.json"
    broken.write_text(
        json.dumps({"version": "1.1", "data": [{"paragraphs": [{"context": "x", "qas": [{"id": "q"}]}]}]})
    )
    with pytest.raises(DataError, match=r"data\[0\]\.paragraphs\[0\]\.qas\[0\]: missing key 'question'"):
        read_squad(broken)
    shifted = squad(
        tmp_path,
        [{"id": "off", "question": "Where?", "answers": [{"text": "São Paulo", "answer_start": 25}]}],
        version="1.1",
        name="shifted.json",
    )
    with pytest.raises(DataError, match=r"question off .*answer_start=25.*occurs at offset 26"):
        read_squad(shifted)
    squad(
        tmp_path,
        [
            {"id": "ok", "question": "When?", "answers": [{"text": "1921", "answer_start": 39}]},
            {"id": "off", "question": "Where?", "answers": [{"text": "São Paulo", "answer_start": 25}]},
        ],
        version="1.1",
        name="mixed.json",
    )
    skipped = read_squad(tmp_path / "mixed.json", bad_samples="skip")
    assert [e.qid for e in skipped.examples] == ["ok"] and skipped.skipped[0].qid == "off"


def test_layout_check_refuses_stride_and_missing_or_mismatched_files(tmp_path):
    with pytest.raises(ConfigError, match="doc_stride=320 is the overlap"):
        check_window_settings(384, 320, 64)
    check_window_settings(384, 128, 64)
    base = {"name": "squad", "max_seq_length": 384, "doc_stride": 128, "max_query_length": 64}
    with pytest.raises(DataError, match="missing train-v1.1.json, dev-v1.1.json"):
        check_squad({**base, "root": str(tmp_path), "version": "1.1"})
    squad(tmp_path, [], version="2.0", name="train-v1.1.json")
    squad(tmp_path, [], version="2.0", name="dev-v1.1.json")
    with pytest.raises(DataError, match="is a SQuAD 2.0 file"):
        check_squad({**base, "root": str(tmp_path), "version": "1.1"})


@pytest.fixture(scope="module")
def tokenizer():
    from litzoo.text.pretrained import load_tokenizer, minilm_l6_path

    return load_tokenizer(minilm_l6_path())


def test_offsets_round_trip_answers_with_spaces_accents_and_windows(tokenizer):
    rng = random.Random(0)
    words = ["Zoë", "Martínez", "São", "Paulo", "Kraków", "naïve", "Ødegård", "1921", "the", "café", "Zürich"]
    contexts, questions, answers, texts = [], [], [], []
    for i in range(40):
        tokens = [rng.choice(words) for _ in range(rng.randint(20, 90))]
        context = "".join(t + rng.choice([" ", "  ", "\n", " \t "]) for t in tokens).strip()
        if i % 3 == 0:
            context = unicodedata.normalize("NFD", context)  # combining accents
        start_word, length = rng.randrange(len(tokens) - 3), rng.randint(1, 3)
        pieces, position = [], 0
        for t in tokens:
            position = context.index(unicodedata.normalize("NFD", t) if i % 3 == 0 else t, position)
            pieces.append((position, position + len(unicodedata.normalize("NFD", t) if i % 3 == 0 else t)))
            position = pieces[-1][1]
        start, end = pieces[start_word][0], pieces[start_word + length - 1][1]
        contexts.append(context), questions.append("Where is it?"), answers.append((start, end))
        texts.append(context[start:end])
    windows = build_windows(tokenizer, questions, contexts, WindowSettings(48, 12, 16), answers)
    assert len(windows) > len(contexts)  # long contexts became several windows
    hits = set()
    for w in range(len(windows)):
        s, e = windows.start_positions[w], windows.end_positions[w]
        if s == 0:
            assert e == 0
            continue
        example, offsets = windows.example_index[w], windows.offsets[w]
        assert contexts[example][offsets[s][0] : offsets[e][1]] == texts[example]
        hits.add(example)
    assert hits == set(range(len(contexts)))  # every answer fits in (at least) one window
    assert all(len(ids) <= 48 for ids in windows.input_ids)


def test_windows_and_labels_on_a_hand_made_example(tokenizer):
    context = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    # [CLS] what [SEP] + 6 context tokens + [SEP] = 10 tokens; consecutive windows share 2 tokens
    answer = (context.index(" eta") + 1, context.index(" eta") + 4)
    windows = build_windows(tokenizer, ["what"], [context], WindowSettings(10, 2, 4), [answer])
    pieces = [[context[a:b] for a, b in w if a >= 0] for w in windows.offsets]
    assert pieces == [
        ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"],
        ["epsilon", "zeta", "eta", "theta", "io", "ta"],
        ["io", "ta", "kappa"],
    ]  # io ##ta
    assert list(zip(windows.start_positions, windows.end_positions)) == [
        (0, 0),
        (5, 5),
        (0, 0),
    ]  # "eta" in 2nd
    with pytest.raises(ConfigError, match="doc_stride=6 must be smaller"):
        build_windows(tokenizer, ["what"], [context], WindowSettings(10, 6, 4), None)


def reference_decode(start, end, offsets, n_best, max_len):
    """Hugging Face's postprocess_qa_predictions for one window (offsets None outside the context)."""
    order_s = sorted(range(len(start)), key=lambda i: -start[i])[:n_best]
    order_e = sorted(range(len(end)), key=lambda i: -end[i])[:n_best]
    out = []
    for s in order_s:
        for e in order_e:
            if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_len:
                continue
            out.append((start[s] + end[e], offsets[s][0], offsets[e][1]))
    return sorted(out, key=lambda c: -c[0])[:n_best], start[0] + end[0]


def test_n_best_decoding_equals_the_reference_on_synthetic_logits():
    torch.manual_seed(0)
    batch, length = 6, 40
    start, end = torch.randn(batch, length), torch.randn(batch, length)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[3, 30:] = 0
    offsets = torch.full((batch, length, 2), -1)
    for t in range(8, length - 1):
        offsets[:, t] = torch.tensor([5 * t, 5 * t + 4])
    found = window_candidates(start, end, offsets, mask, n_best_size=7, max_answer_length=5)
    for b in range(batch):
        real = int(mask[b].sum())
        offs = [None if offsets[b, t, 0] < 0 else tuple(offsets[b, t].tolist()) for t in range(real)]
        expected, null = reference_decode(start[b, :real].tolist(), end[b, :real].tolist(), offs, 7, 5)
        assert [(s, e) for _, s, e in found[b].candidates] == [(s, e) for _, s, e in expected]
        assert [c[0] for c in found[b].candidates] == pytest.approx([c[0] for c in expected])
        assert found[b].null_score == pytest.approx(null)
    context = "x" * 300
    windows = [WindowCandidates(1.0, [(3.0, 40, 44), (1.0, 50, 54)]), WindowCandidates(-2.0, [(5.0, 60, 64)])]
    answer = decide(context, windows, with_null=True, threshold=0.0)
    assert (answer.best_score, answer.best_start, answer.null_score, answer.null_odds) == (
        5.0,
        60,
        -2.0,
        -7.0,
    )
    assert answer.text == "x" * 4 and decide(context, windows, with_null=True, threshold=-8.0).is_null
    assert math.isclose(sum(n["probability"] for n in answer.nbest), 1.0)


def official_v2(dataset, preds, na_probs, thresh):
    """Hugging Face evaluate's squad_v2 (= evaluate-v2.0.py), re-derived on the dataset structure."""
    import collections
    import re
    import string

    def norm(s):
        s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
        return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())

    def f1(g, p):
        gt, pt = norm(g).split() if g else [], norm(p).split() if p else []
        if not gt or not pt:
            return int(gt == pt)
        same = sum((collections.Counter(gt) & collections.Counter(pt)).values())
        return 0 if same == 0 else 2 * (same / len(pt)) * (same / len(gt)) / (same / len(pt) + same / len(gt))

    qas = [qa for a in dataset for p in a["paragraphs"] for qa in p["qas"]]
    has = {qa["id"]: bool(qa["answers"]) for qa in qas}
    exact_raw, f1_raw = {}, {}
    for qa in qas:
        golds = [a["text"] for a in qa["answers"] if norm(a["text"])] or [""]
        exact_raw[qa["id"]] = max(int(norm(g) == norm(preds[qa["id"]])) for g in golds)
        f1_raw[qa["id"]] = max(f1(g, preds[qa["id"]]) for g in golds)
    apply = lambda sc: {k: float(not has[k]) if na_probs[k] > thresh else v for k, v in sc.items()}  # noqa: E731
    e, f = apply(exact_raw), apply(f1_raw)
    out = {"exact": 100 * sum(e.values()) / len(e), "f1": 100 * sum(f.values()) / len(f)}
    ha = [k for k in has if has[k]]
    out["HasAns_f1"] = 100 * sum(f[k] for k in ha) / len(ha)

    def best(scores):
        cur = best_score = sum(1 for k in has if not has[k])
        bt = 0.0
        for k in sorted(na_probs, key=lambda k: na_probs[k]):
            cur += scores[k] if has[k] else (-1 if preds[k] else 0)
            if cur > best_score:
                best_score, bt = cur, na_probs[k]
        return 100 * best_score / len(scores), bt

    out["best_f1"], out["best_f1_thresh"] = best(f1_raw)
    return out


def test_metrics_equal_independent_implementations_and_gold_scores_100():
    from torchmetrics.functional.text import squad as tm_squad

    rng = random.Random(1)
    # (No gold answer that normalises to nothing, such as "the": evaluate-v1.1.py scores an empty prediction
    # against it F1 0, torchmetrics 1; real 1.1 answers never normalise to nothing.)
    vocab = [
        "the Paris",
        "Paris",
        "in 1921",
        "1921",
        "a cat",
        "São Paulo!",
        "Zürich",
        "cat",
        "blue whale",
        "",
    ]
    gold, preds, na = {}, {}, {}
    for i in range(200):
        answers = [] if i % 4 == 0 else rng.sample(vocab[:-1], rng.randint(1, 3))
        gold[f"q{i}"], preds[f"q{i}"], na[f"q{i}"] = answers, rng.choice(vocab), rng.uniform(-3, 3)
    answerable = {k: v for k, v in gold.items() if v}
    ours = evaluate_v1(answerable, preds)
    theirs = tm_squad(
        [{"prediction_text": preds[k], "id": k} for k in answerable],
        [{"answers": {"answer_start": [0] * len(v), "text": v}, "id": k} for k, v in answerable.items()],
    )
    assert ours["exact_match"] == pytest.approx(float(theirs["exact_match"]), abs=1e-4)
    assert ours["f1"] == pytest.approx(float(theirs["f1"]), abs=1e-4)
    dataset = [
        {"paragraphs": [{"qas": [{"id": k, "answers": [{"text": t} for t in v]} for k, v in gold.items()]}]}
    ]
    for thresh in (-1.0, 0.5, 1.0):
        mine, ref = evaluate_v2(gold, preds, na, thresh), official_v2(dataset, preds, na, thresh)
        for key in ref:
            assert mine[key] == pytest.approx(ref[key]), key
    assert evaluate_v1(answerable, {k: v[0] for k, v in answerable.items()}) == {
        "exact_match": 100.0,
        "f1": 100.0,
    }
    fed_back = evaluate_v2(gold, {k: (v[0] if v else "") for k, v in gold.items()})
    assert fed_back["exact"] == fed_back["f1"] == 100.0


def test_null_threshold_selection():
    gold = {"a": ["x"], "b": [], "c": ["y"], "d": []}
    preds = {"a": "x", "b": "z", "c": "w", "d": "q"}
    odds = {"a": -3.0, "b": -1.0, "c": 0.5, "d": 2.0}
    _, f1 = raw_scores_v2(gold, preds)
    has = {k: bool(v) for k, v in gold.items()}
    # answering a (+1) then b (-1), c (0), d (-1): the best is answering only a -> threshold -3
    assert tune_null_threshold(preds, f1, odds, has) == -3.0
    assert (
        evaluate_v2(gold, {k: ("" if odds[k] > -3.0 else p) for k, p in preds.items()}, odds, -3.0)["f1"]
        == 75.0
    )
    # answering nothing is best: a threshold below every odds, which reproduces it (not the official 0.0)
    worse = {**preds, "a": "nope"}
    _, f1 = raw_scores_v2(gold, worse)
    threshold = tune_null_threshold(worse, f1, odds, has)
    assert threshold < -3.0 and all(v > threshold for v in odds.values())
