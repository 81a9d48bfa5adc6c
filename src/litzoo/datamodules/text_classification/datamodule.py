"""Text classification datamodules: GLUE tasks, TREC, IMDB, users' CSV/TSV/JSONL tables, embedded corpora.

One base class, :class:`TextClassificationDataModule`, does what every text dataset shares;
subclasses only say how to read their files into `TextSplit`s (the phase-1 readers of
:mod:`litzoo.datamodules.text_classification`):

* **Reading** -- `data.bad_samples=error` stops at the first bad row (missing columns, empty
  lines, labels outside the label set) naming file and line; `skip` drops such rows, logs
  their number and lists them in :meth:`TextClassificationDataModule.skipped_samples`.
* **Splits** -- `val` is the dataset's validation file(s), or with `data.val_fraction` a
  seeded (stratified) hold-out of the training file; `test` is the dataset's evaluation
  file(s), falling back to `val`. GLUE test files carry no labels, so GLUE tests on dev, and
  MNLI validates and tests on both dev_matched and dev_mismatched (the first split's metrics
  are `val/...`, the others' `val/<split>/...`).
* **Tokenizing** (:class:`TextEncoding`, chosen by the model's `tokenizer` entry, which the
  task config wires into `data.tokenizer`) -- `kind: vocab` (textCNN): the word tokenizer and
  a `Vocab` built from the training split only (min frequency, max size, `<pad>`/`<unk>`/`<sep>`);
  `kind: hf` (BERT family): the checkpoint's own fast tokenizer. Texts longer than
  `data.max_length` are truncated and counted per split in the log, never refused.
* **Batching** through the data API: `data.sampler` (by default GluonNLP's
  `FixedBucketSampler`, fed the token lengths from :meth:`lengths`) and `batchify.Dict` of
  `Pad`/`Stack` with the tokenizer's padding id.
* **The run directory** -- at setup, global rank 0 writes the vocabulary (`vocab.json`) or the
  tokenizer files plus the encoder's `config.json` (`tokenizer/`) into
  `trainer.default_root_dir`, so evaluation and `python -m litzoo.predict <run_dir>` read text
  exactly as training did.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from litzoo.data.base import BaseDataModule
from litzoo.data.batchify import Dict, Pad, Stack
from litzoo.datamodules.text_classification import (
    HFTextEncoder,
    TextExample,
    TextSplit,
    TruncationStats,
    Vocab,
    VocabEncoder,
    WordTokenizer,
    ensure_paraphrase_corpus,
    ensure_sentiment_corpus,
    get_glue_task,
    read_glue_split,
    read_imdb_split,
    read_tabular_split,
    read_trec_split,
)
from litzoo.datamodules.text_classification.imdb import IMDB_LABELS
from litzoo.errors import ConfigError, DataError

log = logging.getLogger("litzoo")

ENCODING_KINDS = ("vocab", "hf")
VOCAB_FILE = "vocab.json"
TOKENIZER_DIR = "tokenizer"


# ----------------------------------------------------------------------------- text -> model inputs


class TextEncoding:
    """How a model reads text: examples -> unpadded samples (`encode`), samples -> batches (`collate`).

    `kind="vocab"`: `{"input_ids", "length"}` from the word tokenizer and `vocab`;
    `kind="hf"`: `{"input_ids", "attention_mask"[, "token_type_ids"]}` from a fast tokenizer.
    The same object serves training (built from the data) and prediction (loaded from a run
    directory), so both read text identically.
    """

    def __init__(
        self,
        kind: str,
        max_length: int | None,
        *,
        vocab: Vocab | None = None,
        lowercase: bool = True,
        tokenizer: Any = None,
        pretrained: str | None = None,
    ) -> None:
        if kind not in ENCODING_KINDS:
            raise ConfigError(f"Unknown tokenizer kind {kind!r}; use one of {', '.join(ENCODING_KINDS)}.")
        self.kind, self.max_length = kind, max_length
        self.vocab, self.lowercase = vocab, lowercase
        self.tokenizer, self.pretrained = tokenizer, pretrained
        if kind == "vocab":
            if vocab is None:
                raise ConfigError("A vocabulary encoding needs its Vocab.")
            self.encoder: VocabEncoder | HFTextEncoder = VocabEncoder(
                vocab, WordTokenizer(lowercase), max_length
            )
        else:
            if tokenizer is None or max_length is None:
                raise ConfigError("A Hugging Face encoding needs its tokenizer and a max_length.")
            self.encoder = HFTextEncoder(tokenizer, max_length)

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any] | None, train: Sequence[TextExample], max_length: int | None
    ) -> TextEncoding:
        """The encoding a model's `tokenizer` entry asks for; a vocabulary is built from `train`."""
        if not settings:
            raise ConfigError(
                "data.tokenizer is not set, so the datamodule does not know how the model reads text. "
                "task=text_classification fills it from the model's `tokenizer` entry: use a model made for "
                "text (model=textcnn, minilm_l6, bert_base, bert_large or hf_encoder)."
            )
        kind = settings.get("kind")
        if kind == "vocab":
            lowercase = bool(settings.get("lowercase", True))
            words = WordTokenizer(lowercase)
            min_freq, max_size = int(settings.get("min_freq", 1)), settings.get("max_size")
            vocab = Vocab.build(
                (words(e.text_a) + (words(e.text_b) if e.text_b is not None else []) for e in train),
                min_freq=min_freq,
                max_size=None if max_size is None else int(max_size),
            )
            log.info(
                "Vocabulary: %d entries built from %d training texts (min_freq=%d, max_size=%s)",
                len(vocab),
                len(train),
                min_freq,
                max_size,
            )
            return cls("vocab", max_length, vocab=vocab, lowercase=lowercase)
        if kind == "hf":
            pretrained = settings.get("pretrained")
            if not pretrained:
                raise ConfigError(
                    "data.tokenizer.kind=hf needs `pretrained`: the checkpoint whose tokenizer to use."
                )
            from litzoo.text.pretrained import load_tokenizer

            tokenizer = load_tokenizer(pretrained)
            if max_length is None:  # the model's own limit; "unlimited" tokenizers get BERT's 512
                limit = getattr(tokenizer, "model_max_length", 512)
                max_length = int(limit) if isinstance(limit, int) and limit < 1_000_000 else 512
            return cls("hf", max_length, tokenizer=tokenizer, pretrained=str(pretrained))
        raise ConfigError(
            f"data.tokenizer.kind={kind!r} is unknown; the model's tokenizer entry must say `kind: vocab` (a word "
            "vocabulary built from the training split) or `kind: hf` (a Hugging Face checkpoint's tokenizer)."
        )

    @classmethod
    def load(cls, run_dir: str | Path, settings: Mapping[str, Any]) -> TextEncoding:
        """The encoding a run saved (`settings` is the `encoding` entry of the task's data info)."""
        run_dir = Path(run_dir)
        kind = settings.get("kind")
        if kind == "vocab":
            vocab = Vocab.load(run_dir / VOCAB_FILE)
            if len(vocab) != int(settings["vocab_size"]):
                raise DataError(
                    f"{run_dir / VOCAB_FILE} has {len(vocab)} entries but the checkpoint's model was trained with "
                    f"{settings['vocab_size']}: the vocabulary file belongs to another run. Use the run directory "
                    "the checkpoint came from."
                )
            return cls(
                "vocab",
                settings.get("max_length"),
                vocab=vocab,
                lowercase=bool(settings.get("lowercase", True)),
            )
        if kind == "hf":
            from litzoo.text.pretrained import load_tokenizer

            folder = run_dir / TOKENIZER_DIR
            if not folder.is_dir():
                raise DataError(
                    f"{folder} not found: training saves the tokenizer there so prediction reads text the same way. "
                    "Point to the run directory of the checkpoint."
                )
            tokenizer = load_tokenizer(folder)
            if len(tokenizer) != int(settings["vocab_size"]):
                raise DataError(
                    f"The tokenizer in {folder} has {len(tokenizer)} tokens but the model was trained with one of "
                    f"{settings['vocab_size']}: tokenizer and checkpoint come from different runs."
                )
            return cls("hf", int(settings["max_length"]), tokenizer=tokenizer, pretrained=str(folder))
        raise DataError(
            f"Unknown text encoding {kind!r} in the checkpoint; it was not written by this litzoo."
        )

    # -- what the task and the run directory need ----------------------------------------------

    @property
    def pad_id(self) -> int:
        return self.vocab.pad_id if self.vocab is not None else int(self.tokenizer.pad_token_id)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab) if self.vocab is not None else len(self.tokenizer)

    def settings(self) -> dict[str, Any]:
        """Plain-data description (saved with the model): enough to load this encoding from a run directory."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "max_length": self.max_length,
            "vocab_size": self.vocab_size,
            "pad_id": self.pad_id,
        }
        if self.kind == "vocab":
            out.update(lowercase=self.lowercase, file=VOCAB_FILE)
        else:
            out.update(pretrained=self.pretrained, file=TOKENIZER_DIR)
        return out

    def save(self, run_dir: str | Path) -> Path:
        """Write `vocab.json`, or the tokenizer with the encoder's `config.json` (no weights), into `run_dir`."""
        run_dir = Path(run_dir)
        if self.kind == "vocab":
            assert self.vocab is not None
            return self.vocab.save(run_dir / VOCAB_FILE)
        from litzoo.text.pretrained import load_pretrained_config

        folder = run_dir / TOKENIZER_DIR
        self.tokenizer.save_pretrained(folder)
        # The architecture, so a fine-tuned model can be rebuilt from its checkpoint without the original folder.
        load_pretrained_config(self.pretrained).save_pretrained(folder)
        return folder

    # -- encoding and batching -----------------------------------------------------------------

    def encode(self, examples: Sequence[TextExample]) -> tuple[list[dict[str, Any]], TruncationStats]:
        """Unpadded model inputs of `examples` and how many of them were truncated."""
        self.encoder.stats = TruncationStats()
        if isinstance(self.encoder, VocabEncoder):
            rows = [np.asarray(ids, dtype=np.int64) for ids in self.encoder.encode_examples(examples)]
            samples = [{"input_ids": ids, "length": len(ids)} for ids in rows]
        else:
            samples = [
                {key: np.asarray(values, dtype=np.int64) for key, values in row.items()}
                for row in self.encoder.encode_examples(examples)
            ]
        return samples, self.encoder.stats

    def collate(self, label_dtype: str | None = None, with_split: bool = False) -> Dict:
        """`batchify.Dict` padding the token fields with the right ids; `label`/`split` stacked when present."""
        fields: dict[str, Any] = {"input_ids": Pad(pad_val=self.pad_id, dtype="int64")}
        if self.kind == "vocab":
            fields["length"] = Stack(dtype="int64")
        else:
            fields["attention_mask"] = Pad(pad_val=0, dtype="int64")
            if "token_type_ids" in self.tokenizer.model_input_names:
                fields["token_type_ids"] = Pad(pad_val=int(self.tokenizer.pad_token_type_id), dtype="int64")
        if label_dtype is not None:
            fields["label"] = Stack(dtype=label_dtype)
        if with_split:
            fields["split"] = Stack(dtype="int64")
        return Dict(fields)


class TextSamples(Dataset):
    """Encoded samples (dicts of numpy arrays and numbers), one per example."""

    def __init__(self, samples: list[dict[str, Any]]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.samples[index]


# ----------------------------------------------------------------------------- the datamodule


@dataclass
class PreparedText:
    """The dataset as read and tokenized, before it is turned into tensors."""

    train: TextSplit
    val: list[TextSplit]
    test: list[TextSplit]
    label_names: tuple[str, ...] | None
    class_names: tuple[str, ...] | None
    metrics: tuple[str, ...]
    encoding: TextEncoding
    read: list[TextSplit] = field(default_factory=list)  # every split as read from disk (for skipped rows)

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    @property
    def is_pair(self) -> bool:
        return self.train.is_pair


class TextClassificationDataModule(BaseDataModule):
    """What every text-classification dataset shares; subclasses implement :meth:`read_splits`.

    Args:
        tokenizer: how the model reads text (the model config's `tokenizer` entry, wired in by
            the task config): `{kind: vocab, lowercase, min_freq, max_size}` or `{kind: hf, pretrained}`.
        max_length: tokens per text (pair) after truncation; null for hf means the model's limit.
        val_fraction: hold out this share of the training split (stratified, seeded by
            `split_seed`) for validation; null uses the dataset's validation file(s).
        split_seed: seed of that hold-out (independent of the training seed).
        bad_samples: `error` (stop at the first invalid row) or `skip` (drop, count and list them).
        metrics: the metric names (`accuracy`, `f1`, `mcc`, `pearson`, `spearman`); the first is
            the one monitored. null: the dataset's own (GLUE's per task).
        encoding_from: a checkpoint (or run directory) whose run's saved vocabulary/tokenizer to
            use instead of building one, so a checkpoint is evaluated or trained further on the
            ids it was trained with (the task config sets it to `ckpt_path`).
        batch_size, num_workers, loader_args: see :class:`~litzoo.data.base.BaseDataModule`.
    """

    name = "text"

    def __init__(
        self,
        tokenizer: Mapping[str, Any] | None = None,
        max_length: int | None = 128,
        val_fraction: float | None = None,
        split_seed: int = 0,
        bad_samples: str = "error",
        metrics: Sequence[str] | None = None,
        encoding_from: str | Path | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        **loader_args: Any,
    ) -> None:
        super().__init__(batch_size, num_workers, bad_samples=bad_samples, **loader_args)
        if val_fraction is not None and not 0.0 < float(val_fraction) < 1.0:
            raise ConfigError(
                f"data.val_fraction={val_fraction} must be between 0 and 1 (or null to use the "
                "dataset's validation file)."
            )
        if max_length is not None and (isinstance(max_length, bool) or int(max_length) < 1):
            raise ConfigError(
                f"data.max_length={max_length!r} must be a positive number of tokens (or null)."
            )
        self.tokenizer_settings = dict(tokenizer) if tokenizer else None
        self.max_length = None if max_length is None else int(max_length)
        self.val_fraction = None if val_fraction is None else float(val_fraction)
        self.split_seed = int(split_seed)
        self.metric_names = tuple(metrics) if metrics else None
        self.encoding_from = Path(str(encoding_from)).expanduser() if encoding_from else None
        self._collate_configured = loader_args.get("collate") is not None
        self._prepared: PreparedText | None = None
        self._lengths: dict[str, np.ndarray] = {}
        self._saved_to: Path | None = None

    # -- what subclasses provide ---------------------------------------------------------------

    def read_splits(self, on_invalid: str) -> tuple[TextSplit, list[TextSplit], list[TextSplit]]:
        """`(train, validation splits, test splits)` as on disk; a list is empty where the data has none."""
        raise NotImplementedError

    def default_metrics(self, is_regression: bool) -> tuple[str, ...]:
        return ("pearson", "spearman") if is_regression else ("accuracy",)

    def class_names(self, label_names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        """Readable class names (e.g. GLUE's `negative`/`positive` for labels `0`/`1`)."""
        return label_names

    # -- reading and tokenizing (once, on first use) -------------------------------------------

    def prepare(self) -> PreparedText:
        """Read the splits and build the tokenizer/vocabulary; cached (every rank does the same)."""
        if self._prepared is not None:
            return self._prepared
        from litzoo.metrics.text import build_text_metrics

        train, val, test = self.read_splits(self.bad_samples)
        read = _unique_splits([train, *val, *test])
        if self.val_fraction is not None:
            train, holdout = hold_out(train, self.val_fraction, self.split_seed)
            val = [holdout]
        elif not val:
            raise ConfigError(
                f"data={self.name} has no validation file; set data.val_fraction (e.g. 0.1) to hold out part of "
                "the training split for validation."
            )
        test = test or val
        for split in [*val, *test]:
            _check_compatible(train, split)
        label_names = train.label_names
        metrics = self.metric_names or self.default_metrics(label_names is None)
        num_classes = len(label_names) if label_names is not None else 1
        build_text_metrics(
            metrics, num_classes, is_regression=label_names is None
        )  # refuses a bad choice now
        encoding = self._saved_encoding() or TextEncoding.from_settings(
            self.tokenizer_settings, train.examples, self.max_length
        )
        self._prepared = PreparedText(
            train, val, test, label_names, self.class_names(label_names), tuple(metrics), encoding, read
        )
        skipped = self.skipped_samples()
        if skipped:
            log.warning(
                "data=%s: skipped %d invalid row(s) (data.bad_samples=skip); first: %s:%s: %s",
                self.name,
                len(skipped),
                skipped[0]["file"],
                skipped[0]["line"],
                skipped[0]["reason"],
            )
        return self._prepared

    def _saved_encoding(self) -> TextEncoding | None:
        """The vocabulary/tokenizer saved by the run of `encoding_from`, when there is one to reuse."""
        if self.encoding_from is None or not self.tokenizer_settings:
            return None
        run_dir = (
            self.encoding_from.parent.parent if self.encoding_from.suffix == ".ckpt" else self.encoding_from
        )
        kind = self.tokenizer_settings.get("kind")
        if kind == "vocab" and (run_dir / VOCAB_FILE).is_file():
            vocab = Vocab.load(run_dir / VOCAB_FILE)
            log.info(
                "Using the vocabulary of the checkpoint's run, %s (%d entries)",
                run_dir / VOCAB_FILE,
                len(vocab),
            )
            return TextEncoding(
                "vocab",
                self.max_length,
                vocab=vocab,
                lowercase=bool(self.tokenizer_settings.get("lowercase", True)),
            )
        if kind == "hf" and (run_dir / TOKENIZER_DIR).is_dir():
            folder = run_dir / TOKENIZER_DIR
            log.info("Using the tokenizer of the checkpoint's run, %s", folder)
            return TextEncoding.from_settings({"kind": "hf", "pretrained": str(folder)}, [], self.max_length)
        log.warning(
            "%s has no saved %s; building it from the data as in training",
            run_dir,
            VOCAB_FILE if kind == "vocab" else f"{TOKENIZER_DIR}/",
        )
        return None

    def skipped_samples(self) -> list[dict[str, Any]]:
        """Rows dropped under `data.bad_samples=skip`: `{split, file, line, reason}` each (empty before reading)."""
        if self._prepared is None:
            return []
        return [row.as_dict(split.name) for split in self._prepared.read for row in split.skipped_rows]

    def info(self) -> dict[str, Any]:
        """What the task builds its model and metrics from.

        Plain data, except `vocab`: the `Vocab` object itself for vocabulary encodings (the
        task looks word vectors up in it and does not save it: it is `<run_dir>/vocab.json`).
        """
        prepared = self.prepare()
        info: dict[str, Any] = {
            "dataset": self.name,
            "num_labels": len(prepared.label_names) if prepared.label_names is not None else 1,
            "label_names": list(prepared.label_names) if prepared.label_names is not None else None,
            "class_names": list(prepared.class_names) if prepared.class_names is not None else None,
            "is_regression": prepared.is_regression,
            "is_pair": prepared.is_pair,
            "metrics": list(prepared.metrics),
            "val_names": [split.name for split in prepared.val],
            "test_names": [split.name for split in prepared.test],
            "encoding": prepared.encoding.settings(),
        }
        if prepared.encoding.vocab is not None:
            info["vocab"] = prepared.encoding.vocab
        return info

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            prepared = self.prepare()
            self.train_set = self._encode("train", [prepared.train])
            self.val_set = self._encode("val", prepared.val)
            self.test_set = self._encode("test", prepared.test)
            if not self._collate_configured:
                label_dtype = "float32" if prepared.is_regression else "int64"
                self.collate_fn = prepared.encoding.collate(label_dtype, with_split=True)
        self._save_to_run_dir()

    def lengths(self, split: str) -> np.ndarray:
        """Tokens per sample of `split` (after truncation), for the length-bucketing samplers."""
        if split not in self._lengths:
            self.setup()
        return self._lengths[split]

    def _encode(self, role: str, splits: list[TextSplit]) -> TextSamples:
        """The samples of one role (train/val/test); each carries the index of its split for the metrics."""
        prepared = self.prepare()
        samples: list[dict[str, Any]] = []
        for index, split in enumerate(splits):
            encoded, stats = prepared.encoding.encode(split.examples)
            for sample, example in zip(encoded, split.examples):
                if example.label is None:
                    raise DataError(
                        f"{split.path}: example {example.guid} has no label; {role} data must be labeled."
                    )
                sample["label"] = example.label
                sample["split"] = index
            samples.extend(encoded)
            sizes = np.fromiter((len(s["input_ids"]) for s in encoded), dtype=np.int64, count=len(encoded))
            log.info(
                "data=%s %s (%s, %d examples): %s; tokens per text mean %.1f, max %d",
                self.name,
                role,
                split.name,
                len(encoded),
                stats.describe(prepared.encoding.max_length),
                float(sizes.mean()),
                int(sizes.max()),
            )
            if role != "train" and prepared.encoding.vocab is not None:
                words = WordTokenizer(prepared.encoding.lowercase)
                oov = prepared.encoding.vocab.oov_rate(
                    words(e.text_a) + (words(e.text_b) if e.text_b else []) for e in split.examples
                )
                log.info(
                    "data=%s %s (%s): %.1f%% of the words are not in the vocabulary",
                    self.name,
                    role,
                    split.name,
                    100 * oov,
                )
        self._lengths[role] = np.fromiter(
            (len(s["input_ids"]) for s in samples), dtype=np.int64, count=len(samples)
        )
        return TextSamples(samples)

    def _save_to_run_dir(self) -> None:
        """Global rank 0 writes the vocabulary/tokenizer into the run directory (once per run)."""
        trainer = getattr(self, "trainer", None)
        if trainer is None or not trainer.is_global_zero:
            return
        run_dir = Path(trainer.default_root_dir)
        if self._saved_to == run_dir:
            return
        saved = self.prepare().encoding.save(run_dir)
        self._saved_to = run_dir
        log.info(
            "Saved the %s to %s (used by evaluation and prediction)",
            "vocabulary" if saved.name == VOCAB_FILE else "tokenizer",
            saved,
        )


def _unique_splits(splits: list[TextSplit]) -> list[TextSplit]:
    seen: dict[int, TextSplit] = {}
    for split in splits:
        seen.setdefault(id(split), split)
    return list(seen.values())


def _check_compatible(train: TextSplit, other: TextSplit) -> None:
    if other.label_names != train.label_names:
        raise DataError(
            f"{other.path} has the label set {other.label_names} but the training split {train.path} has "
            f"{train.label_names}; every split must use the training split's labels."
        )
    if other.is_pair != train.is_pair:
        raise DataError(
            f"{other.path} {'has' if other.is_pair else 'lacks'} a second text column but the training split "
            f"{'does not' if other.is_pair else 'does'}; single sentences and pairs cannot be mixed."
        )
    if not other.has_labels:
        raise DataError(f"{other.path} carries no labels, so it cannot be used for validation or testing.")


def hold_out(train: TextSplit, fraction: float, seed: int) -> tuple[TextSplit, TextSplit]:
    """Split `train` into (rest, held-out validation), stratified by class when every class allows it."""
    count = len(train)
    size = int(round(count * fraction))
    if size < 1 or size >= count:
        raise ConfigError(
            f"data.val_fraction={fraction} of {count} training examples leaves no validation or "
            "no training examples; choose another fraction."
        )
    indices = np.arange(count)
    labels = [e.label for e in train.examples]
    stratify = None
    if train.label_names is not None:
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(train.label_names))
        classes = int((counts > 0).sum())
        if counts[counts > 0].min() >= 2 and classes <= size <= count - classes:
            stratify = labels
    from sklearn.model_selection import train_test_split

    rest, held = train_test_split(indices, test_size=size, random_state=seed, stratify=stratify)
    rest, held = np.sort(rest), np.sort(held)

    def part(name: str, positions: np.ndarray) -> TextSplit:
        return TextSplit(
            name=name,
            path=train.path,
            examples=[train.examples[i] for i in positions],
            label_names=train.label_names,
        )

    return part("train", rest), part("val", held)


# ----------------------------------------------------------------------------- the datasets


class GlueDataModule(TextClassificationDataModule):
    """A GLUE task read from its folder as distributed (`conf/data/{sst2,mrpc,cola,qqp,stsb,mnli,qnli,rte}.yaml`).

    Validation and test both use the labeled dev file(s) (GLUE test files carry no labels);
    MNLI's are dev_matched and dev_mismatched. `val_fraction` moves validation to a hold-out
    of train, leaving dev for the test.
    """

    def __init__(self, glue_task: str, root: str | Path, **kwargs: Any) -> None:
        self.spec = get_glue_task(glue_task)
        self.name = self.spec.name
        super().__init__(**kwargs)
        self.root = Path(str(root)).expanduser()

    def read_splits(self, on_invalid: str) -> tuple[TextSplit, list[TextSplit], list[TextSplit]]:
        train = read_glue_split(self.root, self.spec, "train", on_invalid)
        dev = [read_glue_split(self.root, self.spec, split, on_invalid) for split in self.spec.eval_splits]
        return train, dev, dev

    def default_metrics(self, is_regression: bool) -> tuple[str, ...]:
        return self.spec.metrics

    def class_names(self, label_names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return self.spec.class_names or label_names


CORPORA = {"sentiment": ("sst2", ensure_sentiment_corpus), "paraphrase": ("mrpc", ensure_paraphrase_corpus)}


class GeneratedCorpusDataModule(GlueDataModule):
    """The embedded corpora (`conf/data/{sentiment,paraphrase}.yaml`): generated on first use, read as GLUE.

    `sentiment` is written in SST-2 format, `paraphrase` in MRPC format (see
    :mod:`litzoo.datamodules.text_classification.corpus`), into `root` (under `paths.data_dir`), then read
    by the same GLUE reader as the real files.
    """

    def __init__(
        self,
        corpus: str,
        root: str | Path,
        corpus_seed: int = 0,
        num_train: int | None = None,
        num_dev: int | None = None,
        label_noise: float | None = None,
        **kwargs: Any,
    ) -> None:
        if corpus not in CORPORA:
            raise ConfigError(
                f"data.corpus={corpus!r} is unknown; the embedded corpora are {', '.join(CORPORA)}."
            )
        glue_task, self._generate = CORPORA[corpus]
        super().__init__(glue_task, root, **kwargs)
        self.name = corpus
        options = {"num_train": num_train, "num_dev": num_dev, "label_noise": label_noise}
        self.corpus_options = {
            "seed": int(corpus_seed),
            **{k: v for k, v in options.items() if v is not None},
        }

    def read_splits(self, on_invalid: str) -> tuple[TextSplit, list[TextSplit], list[TextSplit]]:
        self._generate(self.root, **self.corpus_options)
        return super().read_splits(on_invalid)


class TrecDataModule(TextClassificationDataModule):
    """TREC question classification (`conf/data/trec.yaml`): `train_5500.label` and `TREC_10.label` in `root`.

    TREC has no validation file: validation is a hold-out of train (`val_fraction`), test is TREC_10.
    """

    name = "trec"

    def __init__(
        self,
        root: str | Path,
        granularity: str = "coarse",
        files: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("val_fraction", 0.1)
        super().__init__(**kwargs)
        self.root, self.granularity = Path(str(root)).expanduser(), granularity
        self.files = dict(files) if files else None

    def read_splits(self, on_invalid: str) -> tuple[TextSplit, list[TextSplit], list[TextSplit]]:
        read = [
            read_trec_split(self.root, split, self.granularity, self.files, on_invalid)
            for split in ("train", "test")
        ]
        return read[0], [], [read[1]]


class ImdbDataModule(TextClassificationDataModule):
    """The Large Movie Review Dataset (`conf/data/imdb.yaml`): the unpacked `aclImdb` folder in `root`.

    Validation is a hold-out of train (`val_fraction`), test is the 25,000 test reviews.
    """

    name = "imdb"

    def __init__(self, root: str | Path, **kwargs: Any) -> None:
        kwargs.setdefault("val_fraction", 0.1)
        super().__init__(**kwargs)
        self.root = Path(str(root)).expanduser()

    def read_splits(self, on_invalid: str) -> tuple[TextSplit, list[TextSplit], list[TextSplit]]:
        return (
            read_imdb_split(self.root, "train", on_invalid),
            [],
            [read_imdb_split(self.root, "test", on_invalid)],
        )

    def class_names(self, label_names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return ("negative", "positive") if label_names == IMDB_LABELS else label_names


class TabularTextDataModule(TextClassificationDataModule):
    """Users' own CSV, TSV or JSON Lines files with configurable columns (`conf/data/text_tabular.yaml`).

    `train_file` is required; `val_file` gives validation (without it, a `val_fraction` hold-out
    of train), `test_file` the test (falling back to validation). Classes are `label_names` when declared, else the
    sorted labels of the training file; `is_regression=true` reads float targets.
    """

    name = "text_tabular"

    def __init__(
        self,
        train_file: str | Path,
        val_file: str | Path | None = None,
        test_file: str | Path | None = None,
        text_column: str = "text",
        text_pair_column: str | None = None,
        label_column: str = "label",
        label_names: Sequence[str] | None = None,
        is_regression: bool = False,
        format: str | None = None,
        quoting: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if val_file:  # a validation file is used as it is; val_fraction only applies without one
            self.val_fraction = None
        self.files = {"train": train_file, "val": val_file, "test": test_file}
        self.columns = {
            "text_column": text_column,
            "text_pair_column": text_pair_column,
            "label_column": label_column,
        }
        self.declared_labels = tuple(label_names) if label_names else None
        self.is_regression, self.format, self.quoting = bool(is_regression), format, quoting

    def read_splits(self, on_invalid: str) -> tuple[TextSplit, list[TextSplit], list[TextSplit]]:
        def read(split: str, label_names: Sequence[str] | None) -> TextSplit:
            return read_tabular_split(
                str(self.files[split]),
                **self.columns,
                label_names=label_names,
                is_regression=self.is_regression,
                fmt=self.format,
                quoting=self.quoting,
                split=split,
                on_invalid=on_invalid,
            )

        train = read("train", self.declared_labels)
        # The other files use the training file's classes, so a class index means the same everywhere.
        val = [read("val", train.label_names)] if self.files["val"] else []
        test = [read("test", train.label_names)] if self.files["test"] else []
        return train, val, test
