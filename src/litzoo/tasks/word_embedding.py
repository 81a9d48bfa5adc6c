"""Word embeddings: skip-gram and CBOW with negative sampling, word2vec or fastText (character n-grams).

Training follows word2vec (Mikolov et al. 2013) and fastText (Bojanowski et al. 2017), batched on
the device. Each training batch is a run of corpus sentences as word ids (words under
``min_count`` already left out); from it the step draws, with a generator seeded by (run seed,
rank, epoch, batch), so a resumed run draws exactly what the uninterrupted one did:

1. **subsampling**: an occurrence of word ``w`` is kept with probability
   ``(sqrt(f(w) / t) + 1) t / f(w)`` (word2vec.c's form of the paper's rule; ``task.subsample`` = t);
2. **dynamic window**: each kept word's window reaches ``b`` words to each side, ``b`` uniform
   in ``1..task.window``, never past its sentence;
3. **pairs**: skip-gram predicts every context word from the centre word's vector; CBOW predicts
   the centre word from the mean of its context's vectors (fastText: of all their input rows);
4. **negative sampling**: ``task.negatives`` noise words per pair from the unigram distribution
   raised to ``task.ns_exponent`` (0.75); a noise word equal to the true word is not used (word2vec);
5. the loss ``-log s(u_o . v) - sum_k log s(-u_k . v)`` summed over pairs (``train/loss`` logs its
   mean per pair), with sparse gradients for the rows the batch touched.

The optimizer is any config that takes sparse gradients: Adagrad by default (the per-coordinate
step that lets a batch of thousands of pairs share one update; GloVe and GluonNLP's word2vec
scripts used it), or word2vec's plain SGD with small batches.

Evaluation (val every epoch, test at the end) scores the input vectors on the data's similarity
and analogy sets (:mod:`litzoo.metrics.word_embedding`): ``<stage>/<set>_spearman``,
``<set>_oov``, ``<set>_scored`` per similarity set and ``<stage>/analogy_acc`` (3CosAdd),
``analogy_3cosmul_acc``, ``analogy_semantic_acc``, ``analogy_syntactic_acc``,
``analogy_covered_acc``, ``analogy_oov`` for the Google analogies. The items are sharded across
ranks and their results gathered before each set is scored once. The checkpoint kept as best
is the latest (``val/trained_words``, the corpus tokens trained on): word2vec's result is its
final vectors, and choosing an epoch by its score on the evaluation sets would tune on the test.

A run directory is a model: ``vocab.txt`` (the words and their counts) beside the checkpoints;
``vectors.bin`` (word2vec binary, what ``task.save_vectors`` names) written when training ends;
``python -m litzoo.predict <run_dir> king`` prints the 10 nearest words (``king - man + woman``
an analogy); ``python -m litzoo.tasks.word_embedding export <run_dir> out.txt`` writes the
vectors of any of its checkpoints in word2vec text or binary format.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from litzoo.errors import CheckpointError, ConfigError, DataError
from litzoo.metrics.word_embedding import (
    VectorSpace,
    WordEmbeddingMetrics,
    WordIndex,
    answer_analogies,
    score_pairs,
)
from litzoo.models.word_embedding import (
    alias_table,
    draw_negatives,
    keep_probabilities,
    negative_sampling_loss,
    noise_distribution,
    window_pairs,
)
from litzoo.models.word_embedding_checks import check_sparse_optimizer
from litzoo.platform.registry import build
from litzoo.tasks.base import EvaluatingTask, Scores, split_model_config

log = logging.getLogger("litzoo")

CHECKPOINT_KEY = "word_embedding"
VECTOR_SUFFIXES = {".bin": True, ".txt": False, ".vec": False, ".gz": False}


class WordEmbeddingTask(EvaluatingTask):
    """Train word vectors on a corpus' sentences and score them on similarity and analogy sets.

    Args:
        model: the model config entry (:class:`litzoo.models.word_embedding.WordEmbeddingModel`).
        data_info: what the datamodule says about the data; its ``vocab`` (a ``WordCounts``) gives the
            words, their counts (subsampling, noise distribution) and is not saved with the
            hyper-parameters (the run directory keeps it as vocab.txt).
        optim, sched: see :class:`~litzoo.tasks.base.TaskModule`; the optimizer must take sparse gradients.
        window: the largest window (words each side); each word draws its own from 1..window.
        negatives: noise words per pair.
        subsample: the subsampling threshold t (word2vec/gensim: 1e-3; 0 turns subsampling off).
        ns_exponent: exponent of the unigram noise distribution.
        analogy_top_k: search analogy answers among the most frequent k words only (null: all words).
        save_vectors: files to write into the run directory when training ends (``.bin``: word2vec
            binary; ``.txt``/``.vec``/``.txt.gz``: word2vec text); [] writes none.
    """

    def __init__(
        self,
        model: dict,
        data_info: dict,
        optim: dict,
        sched: dict | None = None,
        window: int = 5,
        negatives: int = 5,
        subsample: float = 1e-3,
        ns_exponent: float = 0.75,
        analogy_top_k: int | None = None,
        save_vectors: list[str] | None = None,
        no_decay_norm_bias: bool = False,
        ema_decay: float | None = None,
        max_grad_norm: float | None = None,
    ) -> None:
        super().__init__(optim, sched, no_decay_norm_bias, ema_decay, False, max_grad_norm)
        vocab = data_info.get("vocab")
        if vocab is None:
            raise CheckpointError(
                "The word-embedding task needs its vocabulary (data_info['vocab']); load a run "
                "with litzoo.load(<run_dir>), which reads it from the run's vocab.txt."
            )
        data_info = {k: v for k, v in data_info.items() if k != "vocab"}
        if len(vocab) != int(data_info["vocab_size"]):
            raise CheckpointError(
                f"The vocabulary has {len(vocab)} words but the model was built for "
                f"{data_info['vocab_size']}: vocab.txt and the checkpoint come from different runs."
            )
        check_sparse_optimizer(self.optim_cfg)
        _check_sampling(window, negatives, subsample, ns_exponent, analogy_top_k)
        for name in save_vectors or []:
            vector_file_is_binary(name)
        self.window, self.negatives = int(window), int(negatives)
        self.subsample, self.ns_exponent = float(subsample), float(ns_exponent)
        self.analogy_top_k = analogy_top_k
        self.save_vectors = list(save_vectors or [])
        self.data_info = data_info
        self.sets = list(data_info.get("eval_sets") or [])
        self.seed = int(data_info.get("seed", 0))
        self.lowercase = bool(data_info.get("lowercase", False))
        self.save_hyperparameters()  # without the vocabulary

        self.words = list(vocab.words)
        self.word_index = WordIndex(self.words)
        arguments, _ = split_model_config(model)
        self.net = build({**arguments, "_partial_": True})(words=self.words)
        self.objective = self.net.objective
        self.register_buffer(
            "keep",
            torch.from_numpy(keep_probabilities(vocab.counts, self.subsample)).float(),
            persistent=False,
        )
        keep, alias = alias_table(noise_distribution(vocab.counts, self.ns_exponent))
        self.register_buffer("noise_keep", torch.from_numpy(keep).float(), persistent=False)
        self.register_buffer("noise_alias", torch.from_numpy(alias), persistent=False)
        # Corpus tokens this rank has trained on (every rank's count checkpointed): the monitored
        # "progress" metric. Not a buffer: DDP broadcasts buffers from rank 0 before every forward,
        # which overwrote the other ranks' counts (the summed count was wrong under DDP).
        self.trained_words = 0
        self.primary_metric = _primary_metric(self.sets)
        self._space: VectorSpace | None = None
        self._epoch_clock: tuple[float, int] | None = None

    # -- training ----------------------------------------------------------------------------------

    def step_generator(self, batch_idx: int) -> torch.Generator:
        """The generator of one batch's draws: a function of (seed, rank, epoch, batch) only."""
        entropy = [self.seed, int(self.global_rank), int(self.current_epoch), int(batch_idx)]
        seed = int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])
        return torch.Generator(device=self.device).manual_seed(seed)

    def pair_loss(
        self, tokens: torch.Tensor, sentence: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, int]:
        """The summed negative-sampling loss of one batch of sentences and its number of (centre, context)
        predictions (skip-gram: pairs; CBOW: centre words)."""
        if self.subsample > 0 and tokens.numel():
            kept = torch.rand(tokens.shape, generator=generator, device=tokens.device) < self.keep[tokens]
            tokens, sentence = tokens[kept], sentence[kept]
        reach = torch.randint(1, self.window + 1, tokens.shape, generator=generator, device=tokens.device)
        centres, contexts = window_pairs(sentence, reach, self.window)
        if centres.numel() == 0:
            return self._zero_loss(), 0
        if self.objective == "skipgram":
            inputs_of, targets = tokens[centres], tokens[contexts]
            unique, inverse = torch.unique(inputs_of, return_inverse=True)
            hidden = self.net.input_vectors(unique).index_select(0, inverse)
        else:
            # CBOW: one prediction per centre word, from the mean of all its context words' input rows.
            positions, which = torch.unique(centres, return_inverse=True)
            targets = tokens[positions]
            unique, inverse = torch.unique(tokens[contexts], return_inverse=True)
            sums, lengths = self.net.bag_sums(unique)
            hidden = torch.zeros(positions.numel(), self.net.dim, device=tokens.device, dtype=sums.dtype)
            hidden = hidden.index_add(0, which, sums.index_select(0, inverse))
            counts = torch.zeros(positions.numel(), device=tokens.device, dtype=sums.dtype)
            counts = counts.index_add(0, which, lengths[inverse].to(sums.dtype))
            hidden = hidden / counts.unsqueeze(1)
        count = targets.numel()
        noise = draw_negatives(self.noise_keep, self.noise_alias, count * self.negatives, generator).view(
            count, self.negatives
        )
        outputs = torch.cat([targets.unsqueeze(1), noise], dim=1)
        used = torch.ones(outputs.shape, dtype=hidden.dtype, device=hidden.device)
        used[:, 1:] = (noise != targets.unsqueeze(1)).to(hidden.dtype)
        loss = negative_sampling_loss(hidden, self.net.output.weight, outputs, used)
        return loss, count

    def _zero_loss(self) -> torch.Tensor:
        # A batch without pairs still takes part in the step (DDP needs every rank's gradients), with zeros.
        first = torch.zeros(1, 1, dtype=torch.int64, device=self.device)
        return 0.0 * (self.net.input(first).sum() + self.net.output(first[0]).sum())

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, count = self.pair_loss(batch["tokens"], batch["sentence"], self.step_generator(batch_idx))
        self.trained_words += int(batch["raw_tokens"])
        if self._epoch_clock is not None:
            self._epoch_clock = (self._epoch_clock[0], self._epoch_clock[1] + int(batch["raw_tokens"]))
        self.log(
            "train/loss",
            loss.detach() / max(count, 1),
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            batch_size=max(count, 1),
        )
        return loss

    def on_train_epoch_start(self) -> None:
        self._epoch_clock = (time.perf_counter(), 0)

    def on_train_epoch_end(self) -> None:
        if self._epoch_clock is not None and self.trainer.is_global_zero:
            start, words = self._epoch_clock
            elapsed = time.perf_counter() - start
            log.info(
                "Epoch %d: %d corpus tokens in %.1f s on this process, %.0f words/s",
                self.current_epoch,
                words,
                elapsed,
                words / elapsed if elapsed > 0 else float("nan"),
            )

    def param_groups(self) -> list[dict[str, Any]]:
        """Input (word and n-gram) vectors and output vectors, without weight decay (sparse gradients)."""
        return [
            {"params": [self.net.input.weight], "weight_decay": 0.0, "name": "input"},
            {"params": [self.net.output.weight], "weight_decay": 0.0, "name": "output"},
        ]

    # -- evaluation --------------------------------------------------------------------------------

    def vector_space(self) -> VectorSpace:
        """The current vectors of the evaluation network, normalised, with word lookup."""
        net = self.eval_net
        unseen = net.unseen_vector if net.ngram_buckets else None
        return VectorSpace(self.word_index, net.word_vectors(), lowercase=self.lowercase, unseen=unseen)

    def searched_words(self) -> int:
        return (
            len(self.words) if self.analogy_top_k is None else min(int(self.analogy_top_k), len(self.words))
        )

    def make_metrics(self, split: str) -> WordEmbeddingMetrics:
        return WordEmbeddingMetrics(self.sets, searched_words=self.searched_words())

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self._space = self.vector_space()

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self._space = self.vector_space()

    def _evaluate(self, batch: dict[str, Any], stage: str) -> None:
        metrics = self.metrics_for(stage)
        space = self._space if self._space is not None else self.vector_space()
        set_of = batch["set"].tolist()
        for set_index in sorted(set(set_of)):
            rows = [i for i, s in enumerate(set_of) if s == set_index]
            words = [batch["words"][i] for i in rows]
            items = batch["item"][rows].tolist()
            gold = batch["gold"][rows].tolist()
            if self.sets[set_index]["kind"] == "similarity":
                cosines, oov = score_pairs(space, words)
                metrics.update_similarity(set_index, items, cosines, oov, gold)
            else:
                covered, add, mul = answer_analogies(space, words, self.analogy_top_k)
                metrics.update_analogy(set_index, items, covered, add, mul, [int(g) for g in gold])

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        words = torch.tensor(float(self.trained_words), dtype=torch.float64, device=self.device)
        self.log("val/trained_words", words, sync_dist=True, reduce_fx="sum")
        self._space = None

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self._space = None

    def _finish(self, stage: str) -> None:
        scores: Scores = self.metrics_for(stage).compute()  # collective: every rank calls it
        values = {f"{stage}/{k}": float(v) for k, v in scores.metrics.items()}
        primary = f"{stage}/{self.primary_metric}"
        if primary in values:
            self.log(primary, values.pop(primary), prog_bar=True, sync_dist=True, reduce_fx="max")
        self.log_dict(values, sync_dist=True, reduce_fx="max")
        if self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        when = f"epoch {self.current_epoch}" if stage == "val" else "test"
        for table in scores.tables.values():
            log.info("Word similarity and analogy (%s, %s):\n%s", stage, when, table)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Every rank runs this (Lightning dumps the checkpoint on all of them): gather their counts.
        mine = torch.tensor([self.trained_words], dtype=torch.int64, device=self.device)
        world = self.trainer.world_size if self._trainer is not None else 1
        counts = self.all_gather(mine).reshape(-1) if world > 1 else mine
        checkpoint[CHECKPOINT_KEY] = {"trained_words": [int(c) for c in counts.tolist()]}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        counts = (checkpoint.get(CHECKPOINT_KEY) or {}).get("trained_words")
        legacy = checkpoint.get("state_dict", {}).pop("trained_words", None)  # once a buffer (rank 0's)
        if counts is None:
            counts = [] if legacy is None else [int(legacy)]
        rank = self.trainer.global_rank if self._trainer is not None else 0
        self.trained_words = int(counts[rank]) if rank < len(counts) else 0

    def on_fit_end(self) -> None:
        if not self.save_vectors or not self.trainer.is_global_zero:
            return
        for name in self.save_vectors:
            path = self.export_vectors(Path(self.trainer.default_root_dir) / name)
            log.info("Saved the %d word vectors to %s", len(self.words), path)

    # -- vectors out -------------------------------------------------------------------------------

    def export_vectors(self, path: str | Path, binary: bool | None = None) -> Path:
        """Write every vocabulary word's vector (most frequent first) in word2vec text or binary format
        (by the file's suffix unless `binary` is given); gensim's ``load_word2vec_format`` reads it."""
        from litzoo.text.vector_files import write_word_vectors

        binary = vector_file_is_binary(str(path)) if binary is None else binary
        vectors = self.eval_net.word_vectors().float().cpu().numpy()
        return write_word_vectors(path, self.words, vectors, binary=binary)

    # -- prediction: nearest neighbours and analogies ------------------------------------------------

    @staticmethod
    def restore_arguments(hparams: dict[str, Any], run_dir: Any) -> dict[str, Any]:
        """The run's vocabulary (``vocab.txt``), which the checkpoint's hyper-parameters leave out."""
        from litzoo.datamodules.word_embedding.vocabulary import VOCAB_FILE, WordCounts

        data_info = dict(hparams.get("data_info") or {})
        if "vocab_size" not in data_info or "model" not in hparams:
            raise CheckpointError(
                f"The checkpoint of {run_dir.path} is not a word-embedding checkpoint (its "
                "hyper-parameters lack the model and the vocabulary size). Give the run directory "
                "of a task=word_embedding run."
            )
        data_info["vocab"] = WordCounts.load(
            Path(run_dir.path) / VOCAB_FILE, bool(data_info.get("lowercase"))
        )
        return {**hparams, "data_info": data_info}

    def predict_inputs(
        self, inputs: list[str], batch_size: int = 16, top_k: int | None = None
    ) -> list[dict[str, Any]]:
        """The `top_k` (default 10) nearest words of each input by cosine similarity. An input is a word
        (``king``), or words to add and subtract (``king - man + woman``, ``king -man +woman``): the
        neighbours of the normalised sum of their unit vectors, the input words left out (3CosAdd)."""
        space = self.vector_space()
        count = int(top_k or 10)
        return [self._neighbours(space, text, count) for text in inputs]

    def _neighbours(self, space: VectorSpace, text: str, count: int) -> dict[str, Any]:
        positive, negative = parse_query(text)
        query = torch.zeros(self.net.dim, device=space.unit.device)
        excluded, missing = [], []
        for sign, words in ((1.0, positive), (-1.0, negative)):
            for word in words:
                vector = space.vector(word)
                if vector is None:
                    missing.append(word)
                    continue
                query += sign * vector
                found = space.index(word)
                if found is not None:
                    excluded.append(found)
        if missing:
            how = (
                "and the model has no character n-grams (model.ngram_buckets=0) to build one"
                if not self.net.ngram_buckets
                else "and none of its character n-grams has a vector"
            )
            raise DataError(
                f"{', '.join(repr(w) for w in missing)}: not among the {len(self.words)} words of the "
                f"vocabulary {how}. Give words the corpus has at least min_count times."
            )
        scores = space.unit @ (query / query.norm().clamp_min(1e-12))
        if excluded:
            scores[torch.tensor(excluded, device=scores.device)] = float("-inf")
        best = scores.topk(min(count, int(torch.isfinite(scores).sum()))).indices.tolist()
        return {
            "input": text,
            "positive": positive,
            "negative": negative,
            "in_vocabulary": {w: space.index(w) is not None for w in [*positive, *negative]},
            "neighbours": [{"word": self.words[i], "cosine": float(scores[i])} for i in best],
        }

    def format_prediction(self, prediction: dict[str, Any]) -> str:
        """``<input>\t<word> <cosine>\t<word> <cosine> ...`` (nearest first)."""
        return "\t".join(
            [prediction["input"], *(f"{n['word']} {n['cosine']:.4f}" for n in prediction["neighbours"])]
        )


def parse_query(text: str) -> tuple[list[str], list[str]]:
    """``king - man + woman`` / ``king -man +woman`` / ``king`` -> (words to add, words to subtract)."""
    tokens = re.findall(r"[+-]|[^\s+-][^\s]*", text.strip())
    positive, negative, sign = [], [], 1
    for token in tokens:
        if token in "+-":
            sign = -1 if token == "-" else 1
            continue
        word = token
        if word.startswith("-") and len(word) > 1:
            sign, word = -1, word[1:]
        (positive if sign > 0 else negative).append(word)
        sign = 1
    if not positive and not negative:
        raise DataError(
            f"Input {text!r} holds no word; give a word (king) or an analogy (king - man + woman)."
        )
    return positive, negative


def vector_file_is_binary(name: str) -> bool:
    """word2vec binary for ``.bin``, text for ``.txt``, ``.vec`` and ``.gz``; other suffixes are refused."""
    suffix = Path(name).suffix.lower()
    if suffix not in VECTOR_SUFFIXES:
        raise ConfigError(
            f"task.save_vectors: {name!r} has no known suffix; use .bin (word2vec binary), .txt or "
            ".vec (word2vec text) or .txt.gz."
        )
    return VECTOR_SUFFIXES[suffix]


def _primary_metric(sets: list[dict[str, Any]]) -> str:
    for described in sets:
        if described["kind"] == "similarity":
            return f"{described['name']}_spearman"
    return f"{sets[0]['name']}_acc" if sets else "none"


def _check_sampling(
    window: int, negatives: int, subsample: float, ns_exponent: float, analogy_top_k: int | None
) -> None:
    for name, value in (("window", window), ("negatives", negatives)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"task.{name}={value!r}: give a positive integer (word2vec: 5).")
    if not 0 <= float(subsample) < 1:
        raise ConfigError(
            f"task.subsample={subsample}: give a threshold in [0, 1) (word2vec: 1e-3; 0 turns it off)."
        )
    if float(ns_exponent) < 0:
        raise ConfigError(f"task.ns_exponent={ns_exponent}: give a non-negative exponent (word2vec: 0.75).")
    if analogy_top_k is not None and int(analogy_top_k) < 1:
        raise ConfigError(
            f"task.analogy_top_k={analogy_top_k}: give a positive number of words, or null for all."
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m litzoo.tasks.word_embedding export <run_dir> <file> [--checkpoint C] [--binary|--text]``."""
    import argparse
    import sys

    from litzoo.errors import LitzooError

    parser = argparse.ArgumentParser(
        prog="python -m litzoo.tasks.word_embedding",
        description="Export the word vectors of a task=word_embedding run.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write the vectors in word2vec text or binary format")
    export.add_argument("run_dir")
    export.add_argument("output", help="the file to write (.bin: binary; .txt, .vec, .txt.gz: text)")
    export.add_argument("--checkpoint", help="a checkpoint other than the run's best")
    kind = export.add_mutually_exclusive_group()
    kind.add_argument("--binary", action="store_true", default=None, help="binary whatever the suffix")
    kind.add_argument("--text", action="store_true", default=None, help="text whatever the suffix")
    args = parser.parse_args(argv)
    try:
        from litzoo.predict import check_run_dir

        check_run_dir(args.run_dir)
        from litzoo import load

        task = load(args.run_dir, args.checkpoint)
        if not isinstance(task, WordEmbeddingTask):
            raise CheckpointError(f"{args.run_dir} is a {type(task).__name__} run, not a word-embedding run.")
        binary = True if args.binary else False if args.text else None
        path = task.export_vectors(args.output, binary)
    except LitzooError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"Wrote {len(task.words)} vectors of dimension {task.net.dim} to {path}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
