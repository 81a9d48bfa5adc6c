"""Similarity (Spearman) and analogy (3CosAdd/3CosMul) scoring against scipy and gensim; evaluation files;
vector files through gensim's loader."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from litzoo.errors import DataError
from litzoo.metrics.word_embedding import (
    VectorSpace,
    answer_analogies,
    evaluate_space,
    main,
    rank_average,
    score_pairs,
    spearman,
)
from litzoo.text.evaluation_sets import read_evaluation_set, read_evaluation_sets
from litzoo.text.vector_files import read_word_vectors, write_word_vectors


def test_spearman_equals_scipys_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = rng.integers(0, 6, 40), rng.normal(size=40)
        assert spearman(x, y) == pytest.approx(scipy.stats.spearmanr(x, y)[0], abs=1e-12)
        assert np.array_equal(rank_average(x), scipy.stats.rankdata(x))
    assert np.isnan(spearman([1.0], [2.0])) and np.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_similarity_on_hand_made_vectors_counts_oov_pairs():
    words = ["cat", "dog", "car", "tree"]
    vectors = torch.tensor([[1.0, 0.0], [0.9, 0.3], [0.0, 1.0], [-1.0, 0.2]])
    pairs = [("cat", "dog"), ("cat", "car"), ("dog", "tree"), ("cat", "unicorn"), ("Car", "tree")]
    space = VectorSpace(words, vectors)
    cosines, oov = score_pairs(space, pairs)
    unit = torch.nn.functional.normalize(vectors, dim=1).double()
    expected = [float(unit[0] @ unit[1]), float(unit[0] @ unit[2]), float(unit[1] @ unit[3])]
    assert cosines[:3] == pytest.approx(expected, abs=1e-12) and np.isnan(cosines[3])
    assert oov == [False, False, False, True, False]  # "Car" is found case-insensitively
    gold = [9.0, 2.0, 1.0, 5.0, 0.5]
    from litzoo.metrics.word_embedding import WordEmbeddingMetrics

    metrics = WordEmbeddingMetrics([{"name": "toy", "kind": "similarity", "size": 5}])
    metrics.update_similarity(0, range(5), cosines, oov, gold)
    found = metrics.compute().metrics
    scored = [0, 1, 2, 4]
    assert found["toy_spearman"] == pytest.approx(
        scipy.stats.spearmanr([cosines[i] for i in scored], [gold[i] for i in scored])[0], abs=1e-12
    )
    assert (found["toy_oov"], found["toy_scored"]) == (1, 4)


def analogy_space() -> VectorSpace:
    # king - man + woman = queen exactly; frequent distractors first.
    basis = {
        "the": [1, 1, 1, 1],
        "man": [1, 0, 0, 0],
        "woman": [0, 1, 0, 0],
        "king": [1, 0, 1, 0],
        "queen": [0, 1, 1, 0],
        "paris": [0, 0, 0, 1],
        "france": [0, 0.2, 0, 1.1],
    }
    return VectorSpace(list(basis), torch.tensor(list(basis.values()), dtype=torch.float32))


def test_analogy_answers_are_found_and_question_words_excluded():
    space = analogy_space()
    questions = [
        ("man", "woman", "king", "queen"),
        ("man", "king", "woman", "queen"),
        ("man", "woman", "king", "paris"),
        ("man", "woman", "king", "prince"),
    ]
    covered, add, mul = answer_analogies(space, questions)
    assert covered == [True, True, True, False]
    assert add == [True, True, False, False] and mul == [True, True, False, False]
    # Restricted to the 5 most frequent words, "paris"/"france" are out of the search: the question is not covered.
    covered, add, _ = answer_analogies(
        space, [("man", "woman", "king", "queen"), ("paris", "france", "man", "woman")], top_k=5
    )
    assert covered == [True, False] and add == [True, False]


def test_analogy_answers_do_not_depend_on_batching():
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(300)]
    space = VectorSpace(words, torch.from_numpy(rng.normal(size=(300, 16)).astype(np.float32)))
    questions = [tuple(words[j] for j in rng.choice(300, 4, replace=False)) for _ in range(200)]
    whole = answer_analogies(space, questions)
    assert answer_analogies(space, questions, max_elements=300) == whole
    assert [answer_analogies(space, [q])[1][0] for q in questions[:30]] == whole[1][:30]


def test_scores_equal_gensims_on_real_fasttext_vectors(gensim_data):
    from gensim.models import KeyedVectors

    path = gensim_data / "lee_fasttext.vec"
    kv = KeyedVectors.load_word2vec_format(str(path))
    vectors = read_word_vectors(path)
    space = VectorSpace(vectors.words, torch.from_numpy(vectors.vectors))
    sets = read_evaluation_sets(
        [gensim_data / n for n in ("wordsim353.tsv", "simlex999.txt", "questions-words.txt")]
    )
    found = evaluate_space(space, sets).metrics
    for name, file in (("wordsim353", "wordsim353.tsv"), ("simlex999", "simlex999.txt")):
        _, (rho, _), oov_ratio = kv.evaluate_word_pairs(str(gensim_data / file))
        assert found[f"{name}_spearman"] == pytest.approx(rho, abs=1e-6)
        assert found[f"{name}_oov"] == round(oov_ratio / 100 * len(sets[0 if name == "wordsim353" else 1]))
    accuracy, sections = kv.evaluate_word_analogies(str(gensim_data / "questions-words.txt"))
    total = sections[-1]
    assert found["analogy_covered_acc"] == pytest.approx(accuracy, abs=1e-12)
    assert found["analogy_oov"] == 19544 - len(total["correct"]) - len(total["incorrect"])
    assert found["analogy_acc"] == pytest.approx(len(total["correct"]) / 19544, abs=1e-12)


def test_embedded_and_official_evaluation_formats(gensim_data, tmp_path):
    assert len(read_evaluation_set(gensim_data / "wordsim353.tsv")) == 353
    assert len(read_evaluation_set(gensim_data / "simlex999.txt")) == 999
    analogy = read_evaluation_set(gensim_data / "questions-words.txt")
    assert len(analogy) == 19544 and len(analogy.sections) == 14
    assert [analogy.is_syntactic(i) for i in range(14)] == [False] * 5 + [True] * 9
    files = {
        "combined.csv": "Word 1,Word 2,Human (mean)\nlove,sex,6.77\ntiger,cat,7.35\n",
        "SimLex-999.txt": "word1\tword2\tPOS\tSimLex999\tconc(w1)\nold\tnew\tA\t1.58\t2.72\n",
        "MEN_dataset_natural_form_full": "sun sunlight 50.000000\nautomobile car 50.000000\n",
        "rw.txt": "squishing\tsquirt\t5.88\t7\t7\t6\t1\t3\t7\t3\t8\t10\t7\n",
        "SimVerb-3500.txt": "take\tremove\tV\t6.81\tSYNONYMS\n",
    }
    expected = {
        "combined.csv": ("wordsim353", ("tiger", "cat"), 7.35),
        "SimLex-999.txt": ("simlex999", ("old", "new"), 1.58),
        "MEN_dataset_natural_form_full": ("men", ("automobile", "car"), 50.0),
        "rw.txt": ("rarewords", ("squishing", "squirt"), 5.88),
        "SimVerb-3500.txt": ("simverb3500", ("take", "remove"), 6.81),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        found = read_evaluation_set(tmp_path / name)
        set_name, pair, score = expected[name]
        assert found.name == set_name and found.pairs[-1] == pair and found.scores[-1] == score


def test_an_evaluation_file_in_an_unknown_format_lists_the_accepted_ones(tmp_path):
    bad = tmp_path / "mine.txt"
    bad.write_text(
        "cat dog\ncar bus\n"
    )  # the first line could be a header; the second is no pair with a score
    with pytest.raises(
        DataError, match=r"mine\.txt, line 2: .* format is unknown\. Accepted formats: word similarity"
    ):
        read_evaluation_set(bad)
    bad.write_text(": section\nking queen man\n")
    with pytest.raises(DataError, match="has 3 words"):
        read_evaluation_set(bad)


@pytest.mark.parametrize("binary", [False, True])
def test_written_vectors_load_in_gensim_exactly(tmp_path, binary):
    from gensim.models import KeyedVectors

    words = ["king", "queen", "naïve", "日本"]
    vectors = np.random.default_rng(0).normal(size=(4, 7)).astype(np.float32)
    path = write_word_vectors(tmp_path / ("v.bin" if binary else "v.txt"), words, vectors, binary=binary)
    kv = KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert kv.index_to_key == words and np.array_equal(kv.vectors, vectors)
    back = read_word_vectors(path)
    assert back.words == words and np.array_equal(back.vectors, vectors)
    kv.save_word2vec_format(str(tmp_path / "g.bin"), binary=True)  # and gensim's own files read back
    assert np.array_equal(read_word_vectors(tmp_path / "g.bin").vectors, vectors)


def test_vectors_whose_header_disagrees_with_the_rows_are_refused(tmp_path, gensim_data):
    text = tmp_path / "v.txt"
    text.write_text("3 2\na 1 2\nb 3 4\n")
    with pytest.raises(
        DataError, match="header announces 3 vectors of dimension 2, but the file holds 2 rows"
    ):
        read_word_vectors(text)
    text.write_text("2 2\na 1 2\nb 3\n")
    with pytest.raises(DataError, match="line 3: 1 values where the file has 2 dimensions"):
        read_word_vectors(text)
    binary = write_word_vectors(tmp_path / "v.bin", ["a", "b"], np.ones((2, 3)), binary=True)
    binary.write_bytes(binary.read_bytes().replace(b"2 3\n", b"3 3\n", 1))
    with pytest.raises(DataError, match="announces 3 vectors of dimension 3, but the file ends after 2"):
        read_word_vectors(binary)
    with pytest.raises(DataError, match="fastText model"):
        read_word_vectors(gensim_data / "crime-and-punishment.bin")
    glove = read_word_vectors(gensim_data / "test_glove.txt")
    assert glove.format == "glove-text" and glove.vectors.shape == (76, 50)


def test_textcnn_static_vectors_load_a_fasttext_vec_file(gensim_data):
    from litzoo.text.vocab import Vocab
    from litzoo.text.word_vectors import build_embedding_matrix

    vocab = Vocab(["the", "of", "unseenword"])
    matrix = build_embedding_matrix(vocab, gensim_data / "lee_fasttext.vec")
    reference = read_word_vectors(gensim_data / "lee_fasttext.vec")
    assert matrix.found == 2 and np.allclose(
        matrix.weights[vocab.token_to_id("the")].numpy(), reference.vectors[reference.index()["the"]]
    )


def test_command_line_scores_any_vectors_file(gensim_data, capsys):
    assert main([str(gensim_data / "lee_fasttext.vec"), "--json"]) == 0
    printed = capsys.readouterr().out
    assert '"wordsim353_spearman"' in printed and '"analogy_acc"' in printed
    assert main([str(gensim_data / "lee_fasttext.vec"), "--eval-files", str(gensim_data / "lee.cor")]) == 3
    assert "Accepted formats" in capsys.readouterr().err
