"""Dependency-parsing datamodules: UD treebanks in CoNLL-U, PTB-SD in CoNLL-X, the embedded toy treebank.

:class:`TreebankDataModule` reads the three splits with :func:`litzoo.text.conllu.read_treebank`
(every line checked; a bad line stops the run naming file and line), builds the vocabularies from
the training split (:class:`~litzoo.text.parser_inputs.ParserVocab`) and encodes each sentence
into arrays with the artificial root first. Samples carry their sentence's index (`index`) so that
the task can score and write back whole splits, also when DDP ranks each see a share.

Files: `root` finds `*-ud-train.conllu`, `*-ud-dev.conllu` and `*-ud-test.conllu` as UD releases
name them (`en_ewt-ud-train.conllu`, ...), or give `train_file`/`val_file`/`test_file` (they win
over `root`). Without a test file the test split is the dev file.

Batches: length bucketing by words per sentence (`data.sampler`, GluonNLP's FixedBucketSampler by
default) and `batchify.Dict` of `Pad`s. With a transformer encoder (`data.encoder.kind: hf`) each
sample also holds its subwords and each word's first subword.

The run directory: global rank 0 writes `parser_vocab.json` (and `tokenizer/` for transformer
encoders) at setup; evaluation of a checkpoint (`encoding_from`) and prediction read them back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from litzoo.data.base import BaseDataModule
from litzoo.data.batchify import Dict, Pad, Stack
from litzoo.datamodules.dependency_parsing.layouts import find_treebank_files
from litzoo.datamodules.dependency_parsing.treebank import ensure_toy_treebank
from litzoo.errors import ConfigError, DataError
from litzoo.text.conllu import Sentence, read_treebank
from litzoo.text.parser_inputs import VOCAB_FILE, ParserVocab, SubwordEncoder

log = logging.getLogger("litzoo")

TOKENIZER_DIR = "tokenizer"
UNKNOWN_RELATIONS = ("error", "allow")


def parser_collate(word_pad: int, subword_pad: int | None = None, with_tree: bool = False) -> Dict:
    """Pads every per-word field (heads/rels with -1, which the loss ignores); stacks the sentence index."""
    fields: dict[str, Any] = {
        "words": Pad(pad_val=word_pad, dtype="int64"),
        "chars": Pad(pad_val=0, dtype="int64"),
        "upos": Pad(pad_val=0, dtype="int64"),
        "xpos": Pad(pad_val=0, dtype="int64"),
        "index": Stack(dtype="int64"),
    }
    if subword_pad is not None:
        fields["subwords"] = Pad(pad_val=subword_pad, dtype="int64")
        fields["word_starts"] = Pad(pad_val=0, dtype="int64")
    if with_tree:
        fields["heads"] = Pad(pad_val=-1, dtype="int64")
        fields["rels"] = Pad(pad_val=-1, dtype="int64")
    return Dict(fields)


class ParserEncoding:
    """Sentences -> samples for one model: the vocabularies, plus subwords for a transformer encoder."""

    def __init__(
        self, vocab: ParserVocab, subwords: SubwordEncoder | None = None, pretrained: str | None = None
    ) -> None:
        self.vocab, self.subwords, self.pretrained = vocab, subwords, pretrained

    @property
    def kind(self) -> str:
        return "vocab" if self.subwords is None else "hf"

    def encode(
        self,
        sentences: Sequence[Sentence],
        with_tree: bool,
        unknown_relations: str = "error",
        start_index: int = 0,
    ) -> list[dict[str, Any]]:
        samples = []
        for index, sentence in enumerate(sentences, start=start_index):
            sample: dict[str, Any] = self.vocab.encode(sentence, with_tree, unknown_relations)
            if self.subwords is not None:
                sample.update(self.subwords.encode(sentence))
            sample["index"] = index
            samples.append(sample)
        return samples

    def collate(self, with_tree: bool) -> Dict:
        pad = None if self.subwords is None else self.subwords.pad_id
        return parser_collate(self.vocab.words.pad_id, pad, with_tree)

    def settings(self) -> dict[str, Any]:
        out = {"kind": self.kind, **self.vocab.settings(), "file": VOCAB_FILE}
        if self.subwords is not None:
            out.update(
                pretrained=self.pretrained,
                max_length=self.subwords.max_length,
                subword_pad=self.subwords.pad_id,
                subword_vocab_size=len(self.subwords.tokenizer),
            )
        return out

    def save(self, run_dir: str | Path) -> list[Path]:
        run_dir = Path(run_dir)
        saved = [self.vocab.save(run_dir / VOCAB_FILE)]
        if self.subwords is not None:
            from litzoo.text.pretrained import load_pretrained_config

            folder = run_dir / TOKENIZER_DIR
            self.subwords.tokenizer.save_pretrained(folder)
            load_pretrained_config(self.pretrained).save_pretrained(
                folder
            )  # the architecture, without weights
            saved.append(folder)
        return saved

    @classmethod
    def create(cls, vocab: ParserVocab, encoder: Mapping[str, Any] | None) -> ParserEncoding:
        """The encoding a model's `input.encoder` entry asks for (`{kind: vocab}` or `{kind: hf, pretrained}`)."""
        kind = (encoder or {}).get("kind", "vocab")
        if kind == "vocab":
            return cls(vocab)
        if kind != "hf":
            raise ConfigError(
                f"data.encoder.kind={kind!r} is unknown; use `vocab` (BiLSTM parsers) or `hf` (a "
                "transformers encoder)."
            )
        pretrained = (encoder or {}).get("pretrained")
        if not pretrained:
            raise ConfigError(
                "data.encoder.kind=hf needs `pretrained`: the checkpoint whose tokenizer to use "
                "(set model.pretrained=<dir>)."
            )
        from litzoo.text.pretrained import load_tokenizer

        tokenizer = load_tokenizer(pretrained)
        limit = getattr(tokenizer, "model_max_length", 512)
        max_length = int(limit) if isinstance(limit, int) and limit < 1_000_000 else 512
        return cls(vocab, SubwordEncoder(tokenizer, max_length), str(pretrained))

    @classmethod
    def load(cls, run_dir: str | Path, settings: Mapping[str, Any]) -> ParserEncoding:
        """The encoding a run saved (`settings` is the `encoding` entry of the task's data info)."""
        run_dir = Path(run_dir)
        vocab = ParserVocab.load(run_dir / VOCAB_FILE)
        if len(vocab.words) != int(settings["num_words"]) or len(vocab.relations) != int(
            settings["num_rels"]
        ):
            raise DataError(
                f"{run_dir / VOCAB_FILE} does not match the checkpoint's model ({len(vocab.words)} words, "
                f"{len(vocab.relations)} relations vs {settings['num_words']} and {settings['num_rels']}): "
                "it belongs to another run. Use the run directory the checkpoint came from."
            )
        if settings.get("kind", "vocab") == "vocab":
            return cls(vocab)
        from litzoo.text.pretrained import load_tokenizer

        folder = run_dir / TOKENIZER_DIR
        if not folder.is_dir():
            raise DataError(
                f"{folder} not found: training saves the tokenizer there. Point to the checkpoint's run."
            )
        return cls(vocab, SubwordEncoder(load_tokenizer(folder), int(settings["max_length"])), str(folder))


class ParserSamples(Dataset):
    def __init__(self, samples: list[dict[str, Any]]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.samples[index]


class TreebankDataModule(BaseDataModule):
    """A treebank's train/dev/test files (see the module docstring).

    Args:
        root: a UD treebank folder (files found by their `*-ud-<split>.conllu` names), or null.
        train_file, val_file, test_file: explicit paths (they win over `root`).
        format: `conllu` or `conllx`.
        min_freq: words seen fewer times in training are `<unk>` (Dozat & Manning: 2).
        lowercase: word embeddings are looked up lower-cased (characters keep the case).
        max_word_length: characters per word the character model reads.
        unknown_relations: a dev/test relation never seen in training: `error` (file and line) or
            `allow` (scored as mislabeled).
        encoder: how the model reads words (the model's `input.encoder`, wired in by the task config).
        encoding_from: a checkpoint whose run's saved vocabularies (and tokenizer) to use.
        batch_size, num_workers, loader_args: see :class:`~litzoo.data.base.BaseDataModule`.
    """

    name = "treebank"

    def __init__(
        self,
        root: str | Path | None = None,
        train_file: str | Path | None = None,
        val_file: str | Path | None = None,
        test_file: str | Path | None = None,
        format: str = "conllu",
        min_freq: int = 2,
        lowercase: bool = True,
        max_word_length: int = 20,
        unknown_relations: str = "error",
        encoder: Mapping[str, Any] | None = None,
        encoding_from: str | Path | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        **loader_args: Any,
    ) -> None:
        super().__init__(batch_size, num_workers, **loader_args)
        if unknown_relations not in UNKNOWN_RELATIONS:
            raise ConfigError(
                f"data.unknown_relations={unknown_relations!r} must be one of {', '.join(UNKNOWN_RELATIONS)}."
            )
        if int(min_freq) < 1 or int(max_word_length) < 1:
            raise ConfigError(
                f"data.min_freq={min_freq} and data.max_word_length={max_word_length} must be >= 1."
            )
        self.root = None if root in (None, "") else Path(str(root)).expanduser()
        self.files = {"train": train_file, "val": val_file, "test": test_file}
        self.format = format
        self.min_freq, self.lowercase, self.max_word_length = (
            int(min_freq),
            bool(lowercase),
            int(max_word_length),
        )
        self.unknown_relations = unknown_relations
        self.encoder_settings = dict(encoder or {})
        self.encoding_from = Path(str(encoding_from)).expanduser() if encoding_from else None
        self._sentences: dict[str, list[Sentence]] | None = None
        self._paths: dict[str, Path] = {}
        self._encoding: ParserEncoding | None = None
        self._lengths: dict[str, np.ndarray] = {}
        self._saved_to: Path | None = None

    # -- reading ------------------------------------------------------------------------------------
    def prepare_files(self) -> None:
        """Hook for datamodules that write their files first (the embedded treebank)."""

    def paths(self) -> dict[str, Path]:
        if not self._paths:
            self.prepare_files()
            self._paths = find_treebank_files(self.root, self.files, self.format, self.name)
        return self._paths

    def sentences(self, split: str) -> list[Sentence]:
        """The gold sentences of `split` ("train", "val" or "test"), as read."""
        if self._sentences is None:
            paths = self.paths()
            read: dict[Path, list[Sentence]] = {}
            for path in paths.values():
                if path not in read:
                    read[path] = read_treebank(path, self.format)
            self._sentences = {s: read[p] for s, p in paths.items()}
            for s, sentences in self._sentences.items():
                words = sum(len(x) for x in sentences)
                log.info(
                    "data=%s %s: %s, %d sentences, %d words", self.name, s, paths[s], len(sentences), words
                )
        return self._sentences[split]

    def path(self, split: str) -> Path:
        return self.paths()[split]

    def encoding(self) -> ParserEncoding:
        if self._encoding is None:
            saved = self._saved_encoding()
            if saved is not None:
                self._encoding = saved
            else:
                vocab = ParserVocab.build(
                    self.sentences("train"), self.min_freq, self.lowercase, self.max_word_length
                )
                log.info(
                    "Vocabularies from %d training sentences: %d words (min_freq=%d), %d characters, %d UPOS, "
                    "%d XPOS, %d relations",
                    len(self.sentences("train")),
                    len(vocab.words),
                    self.min_freq,
                    len(vocab.chars),
                    len(vocab.upos),
                    len(vocab.xpos),
                    len(vocab.relations),
                )
                self._encoding = ParserEncoding.create(vocab, self.encoder_settings)
        return self._encoding

    def _saved_encoding(self) -> ParserEncoding | None:
        if self.encoding_from is None:
            return None
        run_dir = (
            self.encoding_from.parent.parent if self.encoding_from.suffix == ".ckpt" else self.encoding_from
        )
        if not (run_dir / VOCAB_FILE).is_file():
            log.warning(
                "%s has no %s; building the vocabularies from the training data as in training",
                run_dir,
                VOCAB_FILE,
            )
            return None
        vocab = ParserVocab.load(run_dir / VOCAB_FILE)
        log.info("Using the vocabularies of the checkpoint's run, %s", run_dir / VOCAB_FILE)
        if self.encoder_settings.get("kind") == "hf" and (run_dir / TOKENIZER_DIR).is_dir():
            return ParserEncoding.create(vocab, {"kind": "hf", "pretrained": str(run_dir / TOKENIZER_DIR)})
        return ParserEncoding.create(vocab, self.encoder_settings)

    # -- what the task and Lightning call -------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """What the task builds its model and metrics from (plain data, except `vocab`: the
        `ParserVocab`, for looking up pretrained word vectors; the run directory keeps it)."""
        encoding = self.encoding()
        return {
            "dataset": self.name,
            "format": self.format,
            "relations": list(encoding.vocab.relations),
            "encoding": encoding.settings(),
            "vocab": encoding.vocab,
        }

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            encoding = self.encoding()
            self.train_set = self._encode("train", "allow")
            self.val_set = self._encode("val", self.unknown_relations)
            self.test_set = (
                self.val_set
                if self.path("test") == self.path("val")
                else self._encode("test", self.unknown_relations)
            )
            if self.collate_fn is None:
                self.collate_fn = encoding.collate(with_tree=True)
            if encoding.subwords is not None and encoding.subwords.truncated_words:
                log.warning(
                    "%d words lost their subwords to the encoder's %d-token limit; they are represented by "
                    "the last subword kept",
                    encoding.subwords.truncated_words,
                    encoding.subwords.max_length,
                )
        self._save_to_run_dir()

    def lengths(self, split: str) -> np.ndarray:
        """Words per sentence of `split` (with the root), for the length-bucketing samplers."""
        if split not in self._lengths:
            self.setup()
        return self._lengths[split]

    def _encode(self, split: str, unknown_relations: str) -> ParserSamples:
        sentences = self.sentences(split)
        samples = self.encoding().encode(sentences, with_tree=True, unknown_relations=unknown_relations)
        self._lengths[split] = np.fromiter(
            (len(s["words"]) for s in samples), dtype=np.int64, count=len(samples)
        )
        if split == "test" and self.path("test") == self.path("val"):
            self._lengths["test"] = self._lengths["val"]
        if split != "train":
            vocab = self.encoding().vocab
            oov = vocab.words.oov_rate(
                [[w.form.lower() if vocab.lowercase else w.form for w in s.words] for s in sentences]
            )
            log.info(
                "data=%s %s: %.1f%% of the words are not in the training vocabulary",
                self.name,
                split,
                100 * oov,
            )
        return ParserSamples(samples)

    def _save_to_run_dir(self) -> None:
        trainer = getattr(self, "trainer", None)
        if trainer is None or not trainer.is_global_zero:
            return
        run_dir = Path(trainer.default_root_dir)
        if self._saved_to == run_dir:
            return
        for path in self.encoding().save(run_dir):
            log.info("Saved %s (used by evaluation and prediction)", path)
        self._saved_to = run_dir


class ToyTreebankDataModule(TreebankDataModule):
    """The embedded treebank (`conf/data/toy_treebank.yaml`): generated into `root` as
    `en_toy-ud-{train,dev,test}.conllu` on first use, then read like any UD treebank."""

    name = "toy_treebank"

    def __init__(
        self,
        root: str | Path,
        num_train: int = 3000,
        num_dev: int = 400,
        num_test: int = 400,
        generator_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("train_file", None), kwargs.pop("val_file", None), kwargs.pop("test_file", None)
        super().__init__(root=root, **kwargs)
        self.generator = {
            "num_train": int(num_train),
            "num_dev": int(num_dev),
            "num_test": int(num_test),
            "seed": int(generator_seed),
        }

    def prepare_files(self) -> None:
        assert self.root is not None
        ensure_toy_treebank(self.root, **self.generator)
