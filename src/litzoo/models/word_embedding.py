"""word2vec and fastText embeddings: input vectors for words (and hashed character n-grams), output vectors.

:class:`WordEmbeddingModel` holds the two matrices of skip-gram / CBOW with negative sampling
(Mikolov et al. 2013):

- ``input``: one row per vocabulary word and, for the fastText variant (Bojanowski et al. 2017),
  ``ngram_buckets`` more rows shared by the words' character n-grams (``min_n`` to ``max_n``
  characters of ``<word>``, hashed as fastText does; :mod:`litzoo.text.subwords`). A word's
  vector is the mean of its row and its n-grams' rows (fastText's ``getWordVector``), so a word
  never seen in training gets the mean of its n-grams' rows. ``ngram_buckets=0`` is plain
  word2vec, the switch GluonNLP had.
- ``output``: one row per vocabulary word, the "context" vectors negative sampling scores against.

Both are ``nn.EmbeddingBag``/``nn.Embedding`` with sparse gradients: a step touches only the
rows of the words in its batch, which is what makes training on large vocabularies cheap (and
what DDP all-reduces sparsely). Initialisation follows word2vec: input rows uniform in
``[-0.5/dim, 0.5/dim]``, output rows zero. The exported vectors are the input vectors.

The sampling formulas the task trains with are here too, so they can be tested against the
papers: :func:`keep_probabilities` (frequent-word subsampling), :func:`noise_distribution`
(the unigram distribution raised to 3/4) and :func:`alias_table`, which samples it exactly in O(1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from litzoo.models.word_embedding_checks import check_architecture
from litzoo.text.subwords import ngram_buckets, vocabulary_ngram_buckets


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """Probability of keeping each occurrence of a word, word2vec's subsampling of frequent words.

    With ``f`` the word's share of the corpus' (vocabulary) tokens and ``t = sample``, word2vec.c
    (and gensim) keep an occurrence with probability ``(sqrt(f / t) + 1) * t / f``, capped at 1:
    the paper's ``1 - sqrt(t / f)`` discard rule, smoothed so that words near ``t`` are kept
    slightly more. ``sample <= 0`` keeps everything.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(counts)
    threshold = sample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / threshold) + 1.0) * threshold / counts)


def noise_distribution(counts: np.ndarray, exponent: float = 0.75) -> np.ndarray:
    """Negative sampling's noise distribution, ``P(w) = c(w)^0.75 / sum_v c(v)^0.75`` (float64, sums to 1):
    the distribution word2vec's 1e8-entry unigram table approximates and gensim's ``cum_table`` encodes."""
    weights = np.asarray(counts, dtype=np.float64) ** exponent
    return weights / weights.sum()


def alias_table(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias table of a distribution (Vose's construction): ``(keep, alias)`` such that drawing
    a uniform index ``i`` and keeping it with probability ``keep[i]``, else taking ``alias[i]``, draws
    ``j`` with probability ``probabilities[j]`` exactly (two random numbers and two reads per draw,
    against a binary search of the cumulative table)."""
    p = np.asarray(probabilities, dtype=np.float64)
    size = p.size
    scaled = p * size / p.sum()
    keep = np.ones(size, dtype=np.float64)
    alias = np.arange(size, dtype=np.int64)
    small = [i for i in range(size) if scaled[i] < 1.0]
    large = [i for i in range(size) if scaled[i] >= 1.0]
    while small and large:
        less, more = small.pop(), large.pop()
        keep[less], alias[less] = scaled[less], more
        scaled[more] -= 1.0 - scaled[less]
        (small if scaled[more] < 1.0 else large).append(more)
    for i in small + large:  # what rounding left over is kept with certainty
        keep[i] = 1.0
    return keep, alias


def alias_probabilities(keep: np.ndarray, alias: np.ndarray) -> np.ndarray:
    """The distribution an alias table draws from (for checking a table against its formula)."""
    keep = np.asarray(keep, dtype=np.float64)
    implied = keep.copy()
    np.add.at(implied, np.asarray(alias), 1.0 - keep)
    return implied / keep.size


def draw_negatives(
    keep: torch.Tensor, alias: torch.Tensor, count: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """`count` noise words drawn with the alias table ``(keep, alias)`` of :func:`alias_table`."""
    index = torch.randint(0, keep.numel(), (count,), generator=generator, device=keep.device)
    uniform = torch.rand(count, generator=generator, dtype=keep.dtype, device=keep.device)
    return torch.where(uniform < keep[index], index, alias[index])


def window_pairs(
    sentence: torch.Tensor, reach: torch.Tensor, window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(centre position, context position) of every pair within the dynamic windows, vectorised.

    Position ``i`` has the context ``j != i`` when ``|i - j| <= reach[i]`` and both are in the same
    sentence (``sentence`` holds each position's sentence number, non-decreasing). ``reach`` is
    word2vec's reduced window, drawn per centre word in ``1..window``.
    """
    centres, contexts = [], []
    size = sentence.numel()
    for offset in range(1, min(window, size - 1) + 1):
        same = sentence[offset:] == sentence[:-offset]
        right = torch.nonzero(same & (reach[:-offset] >= offset)).squeeze(1)  # centre i, context i + offset
        left = torch.nonzero(same & (reach[offset:] >= offset)).squeeze(1)  # centre i + offset, context i
        centres += [right, left + offset]
        contexts += [right + offset, left]
    if not centres:
        empty = torch.zeros(0, dtype=torch.int64, device=sentence.device)
        return empty, empty
    return torch.cat(centres), torch.cat(contexts)


class _NegativeSampling(torch.autograd.Function):
    """Forward: the summed loss; backward: the gradients it computed in passing (see negative_sampling_loss)."""

    @staticmethod
    def forward(
        ctx, hidden: torch.Tensor, weight: torch.Tensor, outputs: torch.Tensor, used: torch.Tensor, chunk: int
    ) -> torch.Tensor:
        rows, inverse = torch.unique(outputs.reshape(-1), return_inverse=True)
        inverse = inverse.view_as(outputs)
        grad_rows = torch.zeros(rows.numel(), weight.shape[1], dtype=weight.dtype, device=weight.device)
        grad_hidden = torch.empty_like(hidden)
        total = torch.zeros((), dtype=torch.float64, device=weight.device)
        for start in range(0, outputs.shape[0], chunk):
            part = slice(start, start + chunk)
            v = hidden[part]
            rows_of = outputs[part]
            u = weight.index_select(0, rows_of.reshape(-1)).view(
                *rows_of.shape, -1
            )  # [n, 1 + K, dim], in cache
            scores = (u * v.unsqueeze(1)).sum(-1)
            signed = scores.clone()
            signed[
                :, 0
            ].neg_()  # the true word's score enters as -s: loss softplus(-s0) + sum_k softplus(s_k)
            weights = used[part]
            total += (F.softplus(signed) * weights).sum(dtype=torch.float64)
            slope = torch.sigmoid(scores)
            slope[:, 0] -= 1.0  # d/ds0 = sigmoid(s0) - 1, d/ds_k = sigmoid(s_k)
            slope *= weights
            grad_hidden[part] = torch.bmm(slope.unsqueeze(1), u).squeeze(1)
            contributions = (slope.unsqueeze(2) * v.unsqueeze(1)).flatten(0, 1)
            if grad_rows.is_cuda:  # index_put_'s accumulation is deterministic on CUDA, index_add_'s is not
                grad_rows.index_put_((inverse[part].reshape(-1),), contributions, accumulate=True)
            else:
                grad_rows.index_add_(0, inverse[part].reshape(-1), contributions)
        ctx.save_for_backward(grad_hidden, rows, grad_rows)
        ctx.weight_shape = weight.shape
        return total.to(hidden.dtype)

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        grad_hidden, rows, grad_rows = ctx.saved_tensors
        # Unique, sorted rows: a coalesced tensor by construction, so the invariant checks are skipped.
        grad_weight = torch.sparse_coo_tensor(
            rows.unsqueeze(0),
            grad_rows * grad_loss,
            ctx.weight_shape,
            is_coalesced=True,
            check_invariants=False,
        )
        return grad_hidden * grad_loss, grad_weight, None, None, None


def negative_sampling_loss(
    hidden: torch.Tensor,
    output_weight: torch.Tensor,
    outputs: torch.Tensor,
    used: torch.Tensor,
    chunk: int | None = None,
) -> torch.Tensor:
    """Summed negative-sampling loss: ``sum_i softplus(-h_i . u_{o_i0}) + sum_k used_ik softplus(h_i . u_{o_ik})``.

    `hidden` ``[n, dim]`` are the predicting vectors, `outputs` ``[n, 1 + K]`` the output rows: the true
    word first, then K noise words, `used` ``[n, 1 + K]`` 1/0 weights (0 drops a noise word equal to
    the true one). The gradient for `output_weight` is sparse (only the rows used), as an
    ``nn.Embedding(sparse=True)`` gives it, so DDP and the optimizers treat it alike.

    Computed in chunks of `chunk` predictions, each chunk's ``[chunk, 1 + K, dim]`` output rows
    gathered once and used while still in cache for the scores and both gradients, which autograd
    would otherwise write to memory and read back several times: twice the throughput on a CPU.
    The default chunk is 2048 predictions on a CPU (about 5 MB, cache-sized) and 65536 on a GPU,
    where fewer, larger kernels win.
    """
    if chunk is None:
        chunk = 2048 if output_weight.device.type == "cpu" else 65536
    return _NegativeSampling.apply(hidden, output_weight, outputs, used, int(chunk))


class WordEmbeddingModel(nn.Module):
    """Input (word + n-gram) and output vectors of a skip-gram/CBOW model; see the module docstring.

    Args:
        words: the vocabulary in id order (needed for the words' n-grams).
        dim: vector size.
        objective: ``skipgram`` (predict each context word from the centre word) or ``cbow``
            (predict the centre word from the mean of its context).
        ngram_buckets: rows shared by hashed character n-grams (fastText: 2,000,000); 0 = word2vec.
        min_n, max_n: n-gram lengths in characters (fastText: 3 to 6).
    """

    def __init__(
        self,
        words: Sequence[str],
        dim: int = 100,
        objective: str = "skipgram",
        ngram_buckets: int = 0,
        min_n: int = 3,
        max_n: int = 6,
    ) -> None:
        super().__init__()
        check_architecture(dim, objective, ngram_buckets, min_n, max_n)
        self.objective = objective
        self.vocab_size, self.dim = len(words), int(dim)
        self.ngram_buckets = int(ngram_buckets) if max_n >= min_n else 0
        self.min_n, self.max_n = int(min_n), int(max_n)
        rows = self.vocab_size + self.ngram_buckets
        self.input = nn.EmbeddingBag(rows, self.dim, mode="sum", sparse=True)
        self.output = nn.Embedding(self.vocab_size, self.dim, sparse=True)
        with torch.no_grad():
            self.input.weight.uniform_(-0.5 / self.dim, 0.5 / self.dim)
            self.output.weight.zero_()
        if self.ngram_buckets:
            offsets, ids = vocabulary_ngram_buckets(words, self.min_n, self.max_n, self.ngram_buckets)
            lengths = np.diff(np.asarray(offsets, dtype=np.int64)) + 1  # the word's own row comes first
            starts = np.concatenate([[0], np.cumsum(lengths)])
            bag = np.empty(int(starts[-1]), dtype=np.int64)
            bag[starts[:-1]] = np.arange(self.vocab_size)
            ngram_positions = np.ones(bag.size, dtype=bool)
            ngram_positions[starts[:-1]] = False
            bag[ngram_positions] = self.vocab_size + np.asarray(ids, dtype=np.int64)
            self.register_buffer("bag_offsets", torch.from_numpy(starts), persistent=False)
            self.register_buffer("bag_ids", torch.from_numpy(bag), persistent=False)
        else:
            self.register_buffer("bag_offsets", torch.arange(self.vocab_size + 1), persistent=False)
            self.register_buffer("bag_ids", torch.arange(self.vocab_size), persistent=False)

    # -- bags of rows ------------------------------------------------------------------------------

    def bags(self, words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The input rows of each word (its own, then its n-grams'), flattened: ``(rows, offsets, lengths)``."""
        starts = self.bag_offsets[words]
        lengths = self.bag_offsets[words + 1] - starts
        offsets = torch.cumsum(lengths, 0) - lengths
        positions = torch.arange(int(lengths.sum()), device=words.device)
        positions += torch.repeat_interleave(starts - offsets, lengths)
        return self.bag_ids[positions], offsets, lengths

    def bag_sums(self, words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum of each word's input rows ``[n, dim]`` and how many rows that is ``[n]``."""
        if not self.ngram_buckets:
            return self.input(words.unsqueeze(1)), torch.ones_like(words)
        rows, offsets, lengths = self.bags(words)
        return self.input(rows, offsets), lengths

    def input_vectors(self, words: torch.Tensor) -> torch.Tensor:
        """The vectors of vocabulary words ``[n, dim]``: the mean of their input rows."""
        if not self.ngram_buckets:
            return self.input(words.unsqueeze(1))
        rows, offsets, lengths = self.bags(words)
        weights = torch.repeat_interleave(1.0 / lengths.to(self.input.weight.dtype), lengths)
        return self.input(rows, offsets, per_sample_weights=weights)

    def output_vectors(self, words: torch.Tensor) -> torch.Tensor:
        return self.output(words)

    # -- vectors for evaluation and export ---------------------------------------------------------

    @torch.no_grad()
    def word_vectors(self, chunk: int = 65536) -> torch.Tensor:
        """Every vocabulary word's vector ``[vocab_size, dim]`` (what is exported and evaluated)."""
        device = self.input.weight.device
        parts = [
            self.input_vectors(torch.arange(s, min(s + chunk, self.vocab_size), device=device))
            for s in range(0, self.vocab_size, chunk)
        ]
        return torch.cat(parts) if parts else torch.zeros(0, self.dim, device=device)

    @torch.no_grad()
    def unseen_vector(self, word: str) -> torch.Tensor | None:
        """A word outside the vocabulary: the mean of its n-grams' rows (fastText), or None without n-grams."""
        if not self.ngram_buckets:
            return None
        buckets = ngram_buckets(word, self.min_n, self.max_n, self.ngram_buckets)
        if not buckets:
            return None
        rows = torch.tensor(buckets, dtype=torch.int64, device=self.input.weight.device) + self.vocab_size
        return self.input.weight[rows].mean(0)

    def extra_repr(self) -> str:
        return (
            f"objective={self.objective}, vocab_size={self.vocab_size}, dim={self.dim}, "
            f"ngram_buckets={self.ngram_buckets}, n={self.min_n}..{self.max_n}"
        )
