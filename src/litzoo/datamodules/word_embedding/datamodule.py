"""Word-embedding datamodules: a tokenised corpus to train on, similarity and analogy sets to score.

* **train**: the corpus' blocks (:mod:`~litzoo.datamodules.word_embedding.corpus`), each read on
  demand as sentences of word ids (words under ``min_count`` already left out). A batch is
  ``batch_size`` blocks; subsampling, the dynamic window and negative sampling happen in the
  task, on the device, from a generator seeded per step (so a resumed run draws the same).
* **val / test**: the evaluation items, one per word pair or analogy question of every set
  (:mod:`litzoo.text.evaluation_sets`). They are sharded across ranks like any evaluation
  split; the task gathers the per-item results and scores each set once.
* **vocabulary**: counted in the same pass that indexes the blocks, kept by ``min_count`` and
  ``max_vocab_size``, and written as ``<run_dir>/vocab.txt`` (rank 0) for evaluation and
  prediction. ``vocab_from`` (the task config sets it to ``ckpt_path``) reuses the vocabulary
  of a checkpoint's run; evaluating a checkpoint then does not read the corpus at all.

:class:`TextCorpusDataModule` reads any corpus (``data=text_corpus data.path=<file or dir>``);
:class:`EmbeddedCorpusDataModule` first writes one of the embedded corpora (``data=enwiki_sample``,
``data=lee``) from gensim's test data.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from litzoo.data.base import BaseDataModule
from litzoo.datamodules.word_embedding.corpus import BlockReader, CorpusIndex, corpus_files, index_corpus
from litzoo.datamodules.word_embedding.embedded import ensure_enwiki_sample, ensure_lee_corpus
from litzoo.datamodules.word_embedding.vocabulary import VOCAB_FILE, WordCounts
from litzoo.errors import ConfigError
from litzoo.text.evaluation_sets import (
    EvaluationSet,
    SimilaritySet,
    describe_sets,
    evaluation_files,
    read_evaluation_sets,
)

log = logging.getLogger("litzoo")


class CorpusBlocks(Dataset):
    """The training split: block ``i`` -> ``{"ids", "lengths", "tokens"}`` (ids of its in-vocabulary
    tokens, the sentences' lengths in those, and the block's token count before the vocabulary filter)."""

    def __init__(self, index: CorpusIndex, lookup: dict[bytes, int]) -> None:
        self.index = index
        self.reader = BlockReader(index, lookup)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, block: int) -> dict[str, Any]:
        ids, lengths = self.reader.sentences(int(block))
        return {"ids": ids, "lengths": lengths, "tokens": int(self.index.block_tokens[block])}


class EvaluationItems(Dataset):
    """Every word pair and analogy question of the evaluation sets, in set order."""

    def __init__(self, sets: list[EvaluationSet]) -> None:
        self.items: list[tuple[int, int, tuple[str, ...], float]] = []
        for set_index, s in enumerate(sets):
            if isinstance(s, SimilaritySet):
                self.items += [
                    (set_index, i, pair, score) for i, (pair, score) in enumerate(zip(s.pairs, s.scores))
                ]
            else:
                self.items += [
                    (set_index, i, q, float(sec)) for i, (q, sec) in enumerate(zip(s.questions, s.section_of))
                ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        set_index, item, words, gold = self.items[index]
        return {"set": set_index, "item": item, "words": words, "gold": gold}


class WordEmbeddingBatchify:
    """Training blocks -> ``{"tokens", "sentence", "raw_tokens"}`` (the batch's ids in corpus order, the
    sentence each belongs to, and the corpus tokens read); evaluation items -> ``{"set", "item", "words",
    "gold"}``. One function for both because the data API gives a datamodule one collate."""

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        if "ids" in samples[0]:
            ids = [torch.from_numpy(s["ids"]) for s in samples]
            lengths = torch.from_numpy(np.concatenate([s["lengths"] for s in samples]))
            return {
                "tokens": torch.cat(ids) if ids else torch.zeros(0, dtype=torch.int64),
                "sentence": torch.repeat_interleave(torch.arange(lengths.numel()), lengths),
                "raw_tokens": torch.tensor(sum(s["tokens"] for s in samples), dtype=torch.int64),
            }
        return {
            "set": torch.tensor([s["set"] for s in samples], dtype=torch.int64),
            "item": torch.tensor([s["item"] for s in samples], dtype=torch.int64),
            "words": [s["words"] for s in samples],
            "gold": torch.tensor([s["gold"] for s in samples], dtype=torch.float64),
        }


class TextCorpusDataModule(BaseDataModule):
    """A tokenised corpus (one sentence or document per line, plain or gzip) and evaluation sets.

    Args:
        path: the corpus: a file, or a folder whose files are all read (sorted).
        min_count: keep words occurring at least this often (word2vec/gensim: 5).
        max_vocab_size: keep at most the most frequent this many words (null: all).
        lowercase: lower-case the corpus (and the evaluation words, and predicted words).
        block_tokens: tokens per training block (blocks are whole sentences): the unit batches are made of.
        max_sentence_length: longer lines are cut into sentences of this many tokens (none is dropped).
        eval_dir, eval_files: the evaluation sets (see :func:`evaluation_files`).
        vocab_from: a checkpoint (or run directory) whose run's ``vocab.txt`` to use instead of counting.
        count_limit: distinct tokens held while counting before the rarest are pruned.
        shuffle: reshuffle the blocks every epoch; null: yes for plain files, no for gzip files
            (reading a gzip file out of order decompresses it again for every jump back).
        batch_size: blocks per batch per device; eval_batch_size: evaluation items per batch.
    """

    def __init__(
        self,
        path: str | None = None,
        min_count: int = 5,
        max_vocab_size: int | None = None,
        lowercase: bool = False,
        block_tokens: int = 10_000,
        max_sentence_length: int = 10_000,
        eval_dir: str | None = None,
        eval_files: list[str] | None = None,
        vocab_from: str | None = None,
        count_limit: int = 30_000_000,
        name: str = "text_corpus",
        batch_size: int = 1,
        eval_batch_size: int | None = 2048,
        shuffle: bool | None = None,
        collate: Any = None,
        **loading: Any,
    ) -> None:
        self.name = name
        self.path = path
        self.min_count, self.max_vocab_size, self.lowercase = int(min_count), max_vocab_size, bool(lowercase)
        self.block_tokens, self.max_sentence_length = int(block_tokens), int(max_sentence_length)
        self.eval_dir, self.eval_files = eval_dir, list(eval_files) if eval_files else None
        self.vocab_from = Path(str(vocab_from)).expanduser() if vocab_from else None
        self.count_limit = int(count_limit)
        self._shuffle_setting = shuffle
        super().__init__(
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            collate=collate,
            shuffle=True if shuffle is None else bool(shuffle),
            **loading,
        )
        if collate is None:
            self.collate_fn = WordEmbeddingBatchify()
        self._files: list[Path] | None = None
        self._index: CorpusIndex | None = None
        self._vocab: WordCounts | None = None
        self._sets: list[EvaluationSet] | None = None
        self._saved_to: Path | None = None

    # -- the corpus ------------------------------------------------------------------------------

    def corpus_path(self) -> Path:
        """Where the corpus is (subclasses write an embedded one first)."""
        if not self.path:
            raise ConfigError(f"data={self.name} needs data.path: a tokenised text file or a folder of them.")
        return Path(str(self.path)).expanduser()

    def files(self) -> list[Path]:
        if self._files is None:
            self._files = corpus_files(self.corpus_path())
            if self._shuffle_setting is None:
                self.shuffle = not any(f.suffix == ".gz" for f in self._files)
            elif self._shuffle_setting and any(f.suffix == ".gz" for f in self._files):
                log.warning(
                    "data.shuffle=true on a gzip corpus: every block read behind the previous one "
                    "decompresses the file from its start again; data.shuffle=false reads it in order"
                )
        return self._files

    def corpus_index(self) -> CorpusIndex:
        if self._index is None:
            files = self.files()
            log.info(
                "Reading the corpus %s (%d file(s)) to count words and index blocks of %d tokens",
                self.corpus_path(),
                len(files),
                self.block_tokens,
            )
            self._index = index_corpus(files, self.block_tokens, self.max_sentence_length, self.count_limit)
            index = self._index
            log.info(
                "Corpus: %d tokens, %d distinct, %d sentences (lines cut at %d tokens), %d blocks",
                index.num_tokens,
                len(index.counts),
                index.num_sentences,
                self.max_sentence_length,
                len(index),
            )
        return self._index

    def vocabulary(self) -> WordCounts:
        if self._vocab is None:
            saved = self._saved_vocabulary()
            if saved is not None:
                self._vocab = saved
            else:
                index = self.corpus_index()
                self._vocab = WordCounts.from_counts(
                    index.counts,
                    self.min_count,
                    self.max_vocab_size,
                    self.lowercase,
                    source=str(self.corpus_path()),
                )
                vocab = self._vocab
                log.info(
                    "Vocabulary: %d words occurring at least %d times (max_vocab_size=%s), covering %d of %d "
                    "tokens (%.1f%%)",
                    len(vocab),
                    self.min_count,
                    self.max_vocab_size,
                    vocab.total,
                    index.num_tokens,
                    100 * vocab.total / max(index.num_tokens, 1),
                )
        return self._vocab

    def _saved_vocabulary(self) -> WordCounts | None:
        if self.vocab_from is None:
            return None
        run_dir = self.vocab_from.parent.parent if self.vocab_from.suffix == ".ckpt" else self.vocab_from
        if not (run_dir / VOCAB_FILE).is_file():
            log.warning("%s has no %s; counting the corpus as in training", run_dir, VOCAB_FILE)
            return None
        vocab = WordCounts.load(run_dir / VOCAB_FILE, self.lowercase)
        log.info(
            "Using the vocabulary of the checkpoint's run, %s (%d words)", run_dir / VOCAB_FILE, len(vocab)
        )
        return vocab

    def evaluation_sets(self) -> list[EvaluationSet]:
        if self._sets is None:
            self._sets = read_evaluation_sets(evaluation_files(self.eval_dir, self.eval_files))
            for s in self._sets:
                log.info(
                    "Evaluation set %s: %d %s from %s",
                    s.name,
                    len(s),
                    "pairs" if s.kind == "similarity" else "questions",
                    s.path,
                )
        return self._sets

    # -- the data API ----------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Plain data, except `vocab` (a `WordCounts`: the task builds its model and sampling tables from
        it and does not save it with its hyper-parameters; the run directory keeps it as vocab.txt)."""
        vocab = self.vocabulary()
        return {
            "dataset": self.name,
            "vocab": vocab,
            "vocab_size": len(vocab),
            "lowercase": self.lowercase,
            "seed": self.seed,
            "eval_sets": describe_sets(self.evaluation_sets()),
        }

    def setup(self, stage: str | None = None) -> None:
        vocab = self.vocabulary()
        if self.train_set is None and stage in (None, "fit"):
            index = self.corpus_index()
            self.train_set = CorpusBlocks(index, vocab.surface_lookup(index.counts))
        if self.val_set is None:
            self.val_set = self.test_set = EvaluationItems(self.evaluation_sets())
        self._save_to_run_dir()

    def _save_to_run_dir(self) -> None:
        trainer = getattr(self, "trainer", None)
        if trainer is None or not trainer.is_global_zero:
            return
        run_dir = Path(trainer.default_root_dir)
        if self._saved_to != run_dir:
            path = self.vocabulary().save(run_dir / VOCAB_FILE)
            self._saved_to = run_dir
            log.info("Saved the vocabulary to %s (used by evaluation and prediction)", path)


class EmbeddedCorpusDataModule(TextCorpusDataModule):
    """One of the embedded corpora, written under `root` from gensim's test data on first use.

    Args:
        corpus: ``enwiki_sample`` (Wikipedia through wikifil, one line, ~513k tokens) or ``lee``
            (news stories, one per line, ~60k tokens).
        root: where the corpus file is written (and reused).
    """

    CORPORA = {"enwiki_sample": ensure_enwiki_sample, "lee": ensure_lee_corpus}

    def __init__(self, corpus: str = "enwiki_sample", root: str | None = None, **kwargs: Any) -> None:
        if corpus not in self.CORPORA:
            raise ConfigError(
                f"data.corpus={corpus!r} is not an embedded corpus; use one of {', '.join(self.CORPORA)}."
            )
        if not root:
            raise ConfigError(f"data.corpus={corpus} needs data.root, the folder to write it into.")
        self.corpus, self.root = corpus, root
        super().__init__(**kwargs)

    def corpus_path(self) -> Path:
        return self.CORPORA[self.corpus](self.root)
