"""Decoding dependency trees from arc scores: Chu-Liu/Edmonds (non-projective) and Eisner (projective).

Scores follow the biaffine parser's layout: ``scores[d, h]`` is the score of word ``h`` being
the head of word ``d``; position 0 is the artificial root, words are ``1..n``. A decoded tree
is an array ``heads`` of length ``n + 1`` with ``heads[d]`` the head of word ``d`` (``heads[0]``
is 0 and means nothing).

Both decoders return a tree with exactly one word attached to the root, as UD requires
(and the PTB conversions have):

- :func:`mst` runs Chu-Liu/Edmonds once on scores whose root arcs are lowered by a constant
  larger than any difference two trees' other arcs can make; every tree with k root children
  loses k times that constant, so the best tree overall is the best single-rooted one (the
  same answer as trying every root child, in one run);
- :func:`eisner` is the O(n^3) dynamic program over projective trees, batched over sentences
  in torch, with the root's complete span allowed only once it covers the whole sentence
  (so the root takes exactly one child).

`is_tree`, `is_projective` and `tree_score` are small helpers the tests and the metrics use.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

DECODERS = ("mst", "eisner")


# ----------------------------------------------------------------------------- checks


def is_tree(heads: Sequence[int], single_root: bool = True) -> bool:
    """Whether ``heads`` (length n + 1, position 0 ignored) is a tree rooted at 0 (with one root child)."""
    n = len(heads) - 1
    if n < 1 or any(not 0 <= int(h) <= n for h in heads[1:]):
        return False
    if single_root and sum(1 for h in heads[1:] if int(h) == 0) != 1:
        return False
    for start in range(1, n + 1):  # every word reaches the root within n steps
        node, steps = start, 0
        while node != 0:
            node, steps = int(heads[node]), steps + 1
            if steps > n:
                return False
    return True


def is_projective(heads: Sequence[int]) -> bool:
    """Whether no two arcs of the tree cross (arcs from the root included)."""
    arcs = [(min(d, int(h)), max(d, int(h))) for d, h in enumerate(heads) if d > 0]
    for i, (left, right) in enumerate(arcs):
        for other_left, other_right in arcs[i + 1 :]:
            if left < other_left < right < other_right or other_left < left < other_right < right:
                return False
    return True


def tree_score(scores: np.ndarray | torch.Tensor, heads: Sequence[int]) -> float:
    """The sum of the tree's arc scores."""
    values = scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
    return float(sum(values[d, int(h)] for d, h in enumerate(heads) if d > 0))


# ----------------------------------------------------------------------------- Chu-Liu/Edmonds


def chu_liu_edmonds(scores: np.ndarray) -> np.ndarray:
    """The maximum spanning arborescence rooted at 0 (any number of root children).

    ``scores`` is ``[n + 1, n + 1]`` with ``scores[d, h]`` for head ``h`` of word ``d``; ``-inf``
    forbids an arc. Returns ``heads`` (``heads[0] = 0``).
    """
    scores = np.array(scores, dtype=np.float64)
    scores[0] = -np.inf  # the root has no head
    np.fill_diagonal(scores, -np.inf)  # no word heads itself
    heads = _cle(scores)
    heads[0] = 0
    return heads


def _cle(scores: np.ndarray) -> np.ndarray:
    heads = scores.argmax(axis=1)
    cycle = _find_cycle(heads)
    if cycle is None:
        return heads
    # Contract the cycle into one node (the last one of the smaller graph) and solve that graph.
    in_cycle = np.zeros(len(heads), dtype=bool)
    in_cycle[cycle] = True
    outside = np.flatnonzero(~in_cycle)  # contains 0: the root never lies on a cycle
    inside = np.flatnonzero(in_cycle)
    kept = scores[inside, heads[inside]]  # the arcs of the cycle
    # An outside head h entering the cycle at c replaces c's cycle arc: gain scores[c, h] - kept[c].
    entering = scores[np.ix_(inside, outside)] - kept[:, None]
    enter_at = entering.argmax(axis=0)  # per outside head, the cycle word it would take
    # A cycle word heading an outside word d: the best of them.
    leaving = scores[np.ix_(outside, inside)]
    leave_from = leaving.argmax(axis=1)
    size = len(outside)
    contracted = np.full((size + 1, size + 1), -np.inf)
    contracted[:size, :size] = scores[np.ix_(outside, outside)]
    contracted[:size, size] = leaving[np.arange(size), leave_from]
    contracted[size, :size] = entering[enter_at, np.arange(size)]
    contracted[0] = -np.inf
    sub = _cle(contracted)
    # Expand: outside words keep their heads (mapped back), the cycle is broken where the arc enters.
    result = heads.copy()
    for position, word in enumerate(outside):
        if position == 0:
            continue
        head = sub[position]
        result[word] = inside[leave_from[position]] if head == size else outside[head]
    entry_head = sub[size]
    result[inside[enter_at[entry_head]]] = outside[entry_head]
    return result


def _find_cycle(heads: np.ndarray) -> list[int] | None:
    """A cycle of the head function (position 0 is the root and is never part of one), or None."""
    state = np.zeros(len(heads), dtype=np.int8)  # 0 new, 1 on the current path, 2 done
    state[0] = 2
    for start in range(1, len(heads)):
        path = []
        node = start
        while state[node] == 0:
            state[node] = 1
            path.append(node)
            node = int(heads[node])
        if state[node] == 1:
            return path[path.index(node) :]
        state[path] = 2
    return None


def mst(scores: np.ndarray | torch.Tensor, single_root: bool = True) -> np.ndarray:
    """The best (non-projective) tree; with `single_root`, the best one with exactly one root child."""
    values = (
        scores.detach().cpu().double().numpy()
        if isinstance(scores, torch.Tensor)
        else np.array(scores, np.float64)
    )
    n = values.shape[0] - 1
    if n == 1:
        return np.array([0, 0])
    if single_root:
        arcs = values[1:].copy()
        np.fill_diagonal(arcs[:, 1:], np.nan)
        finite = arcs[np.isfinite(arcs)]
        spread = float(finite.max() - finite.min()) if finite.size else 0.0
        values = values.copy()
        values[1:, 0] -= 1.0 + n * spread  # more than any two trees' non-root arcs can differ by
    return chu_liu_edmonds(values)


# ----------------------------------------------------------------------------- Eisner


def eisner(
    scores: torch.Tensor, lengths: torch.Tensor | Sequence[int], single_root: bool = True
) -> torch.Tensor:
    """The best projective trees of a batch: ``scores`` ``[B, N, N]`` (``N`` = longest sentence + 1),
    ``lengths`` the number of words of each sentence. Returns heads ``[B, N]`` (0 beyond a sentence)."""
    scores = scores.detach().double()
    batch, size, _ = scores.shape
    lengths = torch.as_tensor(lengths, dtype=torch.long, device=scores.device)
    minus_inf = float("-inf")
    # Spans [i, j]: right = head i, left = head j; incomplete spans end with the arc i<->j.
    complete_right = scores.new_full((batch, size, size), minus_inf)
    complete_left = scores.new_full((batch, size, size), minus_inf)
    incomplete_right = scores.new_full((batch, size, size), minus_inf)
    incomplete_left = scores.new_full((batch, size, size), minus_inf)
    diagonal = torch.arange(size, device=scores.device)
    complete_right[:, diagonal, diagonal] = 0.0
    complete_left[:, diagonal, diagonal] = 0.0
    split_incomplete = torch.zeros((batch, size, size), dtype=torch.long, device=scores.device)
    split_left = torch.zeros_like(split_incomplete)
    split_right = torch.zeros_like(split_incomplete)
    for width in range(1, size):
        starts = torch.arange(size - width, device=scores.device)
        ends = starts + width
        offsets = torch.arange(width, device=scores.device)
        mids = starts[:, None] + offsets[None, :]  # r = i .. j-1
        # Two facing complete spans meet between r and r + 1; the arc i <-> j joins them.
        joined = complete_right[:, starts[:, None], mids] + complete_left[:, mids + 1, ends[:, None]]
        best, where = joined.max(dim=-1)
        split_incomplete[:, starts, ends] = starts + where
        incomplete_right[:, starts, ends] = best + scores[:, ends, starts]  # head i, dependent j
        left = best + scores[:, starts, ends]  # head j, dependent i
        left[:, 0] = minus_inf  # the root is nobody's dependent
        incomplete_left[:, starts, ends] = left
        # Complete spans: an incomplete span and a complete one in the same direction.
        left_parts = complete_left[:, starts[:, None], mids] + incomplete_left[:, mids, ends[:, None]]
        best, where = left_parts.max(dim=-1)
        complete_left[:, starts, ends] = best
        split_left[:, starts, ends] = starts + where
        right_mids = mids + 1  # r = i+1 .. j
        right_parts = (
            incomplete_right[:, starts[:, None], right_mids] + complete_right[:, right_mids, ends[:, None]]
        )
        best, where = right_parts.max(dim=-1)
        if single_root:  # the root's span may only be completed over the whole sentence
            best[:, 0] = torch.where(lengths == width, best[:, 0], best.new_tensor(minus_inf))
        complete_right[:, starts, ends] = best
        split_right[:, starts, ends] = starts + 1 + where
    heads = torch.zeros((batch, size), dtype=torch.long)
    splits = (split_incomplete.cpu().numpy(), split_left.cpu().numpy(), split_right.cpu().numpy())
    for b in range(batch):
        n = int(lengths[b])
        if n > 0:
            heads[b, : n + 1] = torch.from_numpy(_backtrack(splits, b, n))
    return heads


def _backtrack(splits: tuple[np.ndarray, np.ndarray, np.ndarray], b: int, n: int) -> np.ndarray:
    incomplete, left, right = (s[b] for s in splits)
    heads = np.zeros(n + 1, dtype=np.int64)
    stack = [("right", 0, n)]
    while stack:
        kind, i, j = stack.pop()
        if i == j:
            continue
        if kind == "right":
            r = right[i, j]
            stack += [("incomplete_right", i, r), ("right", r, j)]
        elif kind == "left":
            r = left[i, j]
            stack += [("left", i, r), ("incomplete_left", r, j)]
        else:
            if kind == "incomplete_right":
                heads[j] = i
            else:
                heads[i] = j
            r = incomplete[i, j]
            stack += [("right", i, r), ("left", r + 1, j)]
    return heads


# ----------------------------------------------------------------------------- batches


def decode_heads(
    scores: torch.Tensor, lengths: torch.Tensor, decoder: str = "mst", single_root: bool = True
) -> torch.Tensor:
    """Trees for a batch of arc scores ``[B, N, N]``: heads ``[B, N]`` on the scores' device."""
    if decoder == "eisner":
        return eisner(scores, lengths, single_root).to(scores.device)
    if decoder != "mst":
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    values = scores.detach().double().cpu().numpy()
    heads = torch.zeros(scores.shape[:2], dtype=torch.long)
    for b, n in enumerate(lengths.tolist()):
        if n > 0:
            heads[b, : n + 1] = torch.from_numpy(mst(values[b, : n + 1, : n + 1], single_root))
    return heads.to(scores.device)
