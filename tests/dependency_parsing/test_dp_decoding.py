"""Tree decoders: Chu-Liu/Edmonds and Eisner find the best (single-rooted) tree on hand-made and random scores."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from litzoo.text.dependency_trees import (
    chu_liu_edmonds,
    decode_heads,
    eisner,
    is_projective,
    is_tree,
    mst,
    tree_score,
)


def best_by_enumeration(
    scores: np.ndarray, projective: bool = False, single_root: bool = True
) -> tuple[list, float]:
    """The reference: every head assignment of a short sentence, the best tree among them."""
    n = scores.shape[0] - 1
    best, best_score = None, -np.inf
    for heads in itertools.product(range(n + 1), repeat=n):
        tree = [0, *heads]
        if not is_tree(tree, single_root) or (projective and not is_projective(tree)):
            continue
        score = tree_score(scores, tree)
        if score > best_score:
            best, best_score = tree, score
    return best, best_score


def matrix(n: int, arcs: dict[tuple[int, int], float]) -> np.ndarray:
    """scores[d, h] for the arcs (head, dependent) given, 0 elsewhere."""
    scores = np.zeros((n + 1, n + 1))
    for (head, dependent), value in arcs.items():
        scores[dependent, head] = value
    return scores


def test_mst_finds_the_hand_made_best_tree():
    # root -> 2, 2 -> 1, 2 -> 3: every other arc is worse.
    scores = matrix(3, {(0, 2): 5, (2, 1): 4, (2, 3): 4, (0, 1): 1, (1, 3): 2, (3, 1): 1})
    assert mst(scores).tolist() == [0, 2, 0, 2]
    assert eisner(torch.tensor(scores)[None], [3])[0].tolist() == [0, 2, 0, 2]


def test_mst_breaks_a_cycle_the_greedy_heads_make():
    # Greedy heads: 1 <- 2 and 2 <- 1 (a cycle); the best tree enters it from the root at its cheapest point.
    scores = matrix(2, {(2, 1): 10, (1, 2): 9, (0, 1): 3, (0, 2): 1})
    assert chu_liu_edmonds(scores).tolist() == [0, 0, 1]  # root -> 1 -> 2: 3 + 9 beats 1 + 10
    assert mst(scores).tolist() == [0, 0, 1]


def test_a_non_projective_best_tree_mst_finds_and_eisner_cannot():
    # root -> 2, 2 -> 3, 3 -> 1: the arcs (1, 3) and (0, 2) cross.
    scores = matrix(3, {(0, 2): 10, (2, 3): 10, (3, 1): 10})
    best = mst(scores).tolist()
    assert best == [0, 3, 0, 2] and not is_projective(best)
    projective = eisner(torch.tensor(scores)[None], [3])[0].tolist()
    assert projective != best and is_projective(projective) and is_tree(projective)
    reference, reference_score = best_by_enumeration(scores, projective=True)
    assert tree_score(scores, projective) == reference_score == 20.0


def test_single_root_is_enforced_where_the_unconstrained_tree_has_two():
    scores = matrix(2, {(0, 1): 10, (0, 2): 10, (1, 2): 1, (2, 1): 1})
    assert chu_liu_edmonds(scores).tolist() == [0, 0, 0]  # two root children score 20
    for tree in (mst(scores).tolist(), eisner(torch.tensor(scores)[None], [2])[0].tolist()):
        assert tree in ([0, 0, 1], [0, 2, 0]) and tree_score(scores, tree) == 11.0
    multi = eisner(torch.tensor(scores)[None], [2], single_root=False)[0].tolist()
    assert multi == [0, 0, 0]


@pytest.mark.parametrize("seed", range(20))
def test_both_decoders_match_exhaustive_search_on_random_scores(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 6))
    scores = rng.normal(size=(n + 1, n + 1)) * 3
    _, best = best_by_enumeration(scores)
    assert tree_score(scores, mst(scores)) == pytest.approx(best, abs=1e-9)
    _, best_projective = best_by_enumeration(scores, projective=True)
    tree = eisner(torch.tensor(scores)[None], [n])[0].tolist()
    assert is_projective(tree) and tree_score(scores, tree) == pytest.approx(best_projective, abs=1e-9)
    _, best_multi = best_by_enumeration(scores, single_root=False)
    assert tree_score(scores, chu_liu_edmonds(scores)) == pytest.approx(best_multi, abs=1e-9)


@settings(max_examples=40)
@given(st.integers(1, 20), st.integers(0, 2**31 - 1), st.sampled_from(["mst", "eisner"]))
def test_every_decoded_output_is_a_tree_with_exactly_one_root(n, seed, decoder):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(1, n + 1, n + 1, generator=generator) * 10
    heads = decode_heads(scores, torch.tensor([n]), decoder)[0].tolist()
    assert is_tree(heads, single_root=True)
    assert sum(1 for h in heads[1:] if h == 0) == 1
    if decoder == "eisner":
        assert is_projective(heads)


def test_batched_decoding_equals_one_sentence_at_a_time_and_pads_with_zeros():
    generator = torch.Generator().manual_seed(0)
    lengths = torch.tensor([3, 9, 1, 6])
    scores = torch.randn(4, 10, 10, generator=generator)
    for decoder in ("mst", "eisner"):
        batch = decode_heads(scores, lengths, decoder)
        for b, n in enumerate(lengths.tolist()):
            alone = decode_heads(scores[b : b + 1, : n + 1, : n + 1], lengths[b : b + 1], decoder)[0]
            assert torch.equal(batch[b, : n + 1], alone)
            assert batch[b, n + 1 :].eq(0).all()


def test_mst_is_never_worse_than_eisner():
    generator = torch.Generator().manual_seed(1)
    scores = torch.randn(16, 21, 21, generator=generator)
    lengths = torch.full((16,), 20)
    non_projective = decode_heads(scores, lengths, "mst")
    projective = decode_heads(scores, lengths, "eisner")
    for b in range(16):
        assert (
            tree_score(scores[b], non_projective[b].tolist())
            >= tree_score(scores[b], projective[b].tolist()) - 1e-9
        )
