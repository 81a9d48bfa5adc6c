"""Language-modelling datamodules: WikiText-2/103, Penn Treebank, any text files, the embedded Shakespeare.

One base class, :class:`LanguageModelDataModule`, does what every corpus shares; subclasses only
say where the split files are (:meth:`LanguageModelDataModule.split_files`):

* **Reading** (:mod:`.readers`): every line of a split is a sample, blank ones included
  (`data.skip_empty_lines=false`, the standard setup); an empty, binary or non-UTF-8 file is refused.
* **Tokenizing** (:class:`~litzoo.text.lm_encoding.LMEncoding`, chosen by the model's `tokenizer`
  entry): words + `<eos>` per line with a vocabulary of the training split, a trained byte-level
  BPE, or a local checkpoint's tokenizer. Global rank 0 saves it into the run directory
  (`vocab.json` / `tokenizer/`); a run directory that already holds a different one (a resumed
  run whose data changed) is refused, and `data.encoding_from` (the task config sets it to
  `ckpt_path`) makes evaluation read text with the checkpoint's own vocabulary.
* **Batching** (:mod:`.bptt`): `data.batching=bptt` cuts each split into streams and yields BPTT
  windows in order (the model carries its hidden state); `windows` yields shuffled blocks for
  training and strided sliding windows (`eval_window`, `eval_stride`) for evaluation.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset

from litzoo.data.base import BaseDataModule
from litzoo.data.loader import ResumableDataLoader, build_dataloader
from litzoo.data.samplers import ShardedBatchSampler, distributed_world
from litzoo.datamodules.language_model.bptt import (
    BPTTBatchSampler,
    SlidingWindows,
    StreamBatchify,
    StreamRows,
    TokenBlocks,
    WindowBatchify,
    check_enough_tokens,
    describe_windows,
    rank_columns,
    stream_matrix,
)
from litzoo.datamodules.language_model.embedded import ensure_shakespeare_corpus
from litzoo.datamodules.language_model.readers import (
    PTB_FILES,
    WIKITEXT_FOLDERS,
    check_corpus_file,
    find_corpus_folder,
    iter_lines,
    wikitext_files,
)
from litzoo.errors import CheckpointError, ConfigError, DataError
from litzoo.text.lm_encoding import TOKENIZER_DIR, VOCAB_FILE, LMEncoding

log = logging.getLogger("litzoo")

BATCHINGS = ("bptt", "windows")
SPLITS = ("train", "val", "test")


class LanguageModelDataModule(BaseDataModule):
    """What every language-modelling corpus shares; subclasses implement :meth:`split_files`.

    Args:
        tokenizer: how the model reads text (the model's `tokenizer` entry, wired in by the task
            config): `{kind: word, min_freq, max_size, lowercase}`, `{kind: bpe, vocab_size}` or
            `{kind: hf, pretrained}`.
        batching: `bptt` (streams, hidden state carried; recurrent models) or `windows` (independent
            blocks/windows; stateless models such as GPT-2). The task config takes it from the model.
        bptt: BPTT window length (`batching=bptt`) or block length (`windows`), in tokens.
        variable_bptt: AWD-LSTM's random window lengths for training (`bptt_p`, `bptt_std`,
            `min_seq_len`, `max_seq_len_delta`: 0.95, 5, 5, 40 in Merity et al.).
        batch_size: streams (bptt) or blocks (windows) per batch per device.
        eval_batch_size, test_batch_size: evaluation streams (GluonNLP: 10 for validation, 1 for
            test) or windows per batch; test defaults to eval.
        eval_bptt: window length of evaluation streams (default: `bptt`).
        eval_window, eval_stride: the sliding window of stateless models (default: `bptt`, and a
            stride equal to the window: non-overlapping windows).
        skip_empty_lines: leave out blank lines (no `<eos>` for them) instead of the standard setup.
        encoding_from: a checkpoint (or run directory) whose saved vocabulary/tokenizer to use.
        num_workers, loader_args: see :class:`~litzoo.data.base.BaseDataModule`.
    """

    name = "language_model"

    def __init__(
        self,
        tokenizer: Mapping[str, Any] | None = None,
        batching: str = "bptt",
        bptt: int = 35,
        variable_bptt: bool = False,
        bptt_p: float = 0.95,
        bptt_std: float = 5.0,
        min_seq_len: int = 5,
        max_seq_len_delta: int = 40,
        eval_bptt: int | None = None,
        eval_batch_size: int | None = 10,
        test_batch_size: int | None = None,
        eval_window: int | None = None,
        eval_stride: int | None = None,
        skip_empty_lines: bool = False,
        encoding_from: str | Path | None = None,
        batch_size: int = 20,
        num_workers: int = 0,
        **loader_args: Any,
    ) -> None:
        if loader_args.get("sampler") is not None:
            raise ConfigError(
                "data.sampler must be null for language modelling: the datamodule cuts the corpus into BPTT streams "
                "(data.batching=bptt) or blocks (windows) itself. Set data.batch_size and data.bptt instead."
            )
        loader_args.pop("bad_samples", None)  # every sample is in memory: there is nothing to skip
        super().__init__(batch_size, num_workers, eval_batch_size=eval_batch_size, **loader_args)
        if batching not in BATCHINGS:
            raise ConfigError(
                f"data.batching={batching!r} is unknown; use bptt (recurrent models) or windows "
                "(stateless models such as GPT-2)."
            )
        for key, value in (
            ("bptt", bptt),
            ("eval_bptt", eval_bptt),
            ("eval_window", eval_window),
            ("eval_stride", eval_stride),
            ("test_batch_size", test_batch_size),
        ):
            if value is not None and (isinstance(value, bool) or int(value) < 1):
                raise ConfigError(
                    f"data.{key}={value!r} must be a positive integer (or null for its default)."
                )
        self.tokenizer_settings = dict(tokenizer) if tokenizer else None
        self.batching, self.bptt, self.variable_bptt = batching, int(bptt), bool(variable_bptt)
        self.variable_args = {
            "p_full": float(bptt_p),
            "std": float(bptt_std),
            "min_len": int(min_seq_len),
            "max_delta": int(max_seq_len_delta),
        }
        self.eval_bptt = int(eval_bptt or bptt)
        self.test_batch_size = int(test_batch_size or self.eval_batch_size)
        self.eval_window = int(eval_window or bptt)
        self.eval_stride = int(eval_stride or self.eval_window)
        if self.eval_stride > self.eval_window:
            raise ConfigError(
                f"data.eval_stride={self.eval_stride} exceeds data.eval_window={self.eval_window}: "
                "windows would leave targets unscored. Use a stride <= the window."
            )
        if self.variable_bptt and batching != "bptt":
            raise ConfigError(
                "data.variable_bptt=true applies to BPTT streams (data.batching=bptt), not to the "
                "fixed blocks of stateless models. Leave it false with this model."
            )
        self.skip_empty_lines = bool(skip_empty_lines)
        self.encoding_from = Path(str(encoding_from)).expanduser() if encoding_from else None
        self._encoding: LMEncoding | None = None
        self._ids: dict[str, np.ndarray] = {}
        self._collates: dict[str, Any] = {}
        self._bptt_samplers: dict[str, BPTTBatchSampler] = {}
        self._saved_to: Path | None = None
        self._layout: tuple[int, int] | None = None

    # -- what subclasses provide ---------------------------------------------------------------

    def split_files(self) -> dict[str, list[Path]]:
        """The files of each split (`train`, `val`, `test`); an empty `test` list falls back to `val`."""
        raise NotImplementedError

    def split_lines(self, split: str, files: dict[str, list[Path]]) -> Iterator[str]:
        """The lines of a split (all its files in order)."""
        return itertools.chain.from_iterable(iter_lines(path) for path in files[split])

    # -- reading and tokenizing (once) ---------------------------------------------------------

    @property
    def encoding(self) -> LMEncoding:
        self.prepare()
        assert self._encoding is not None
        return self._encoding

    def prepare(self) -> dict[str, np.ndarray]:
        """Read and encode the three splits (cached; every rank does the same)."""
        if self._ids:
            return self._ids
        files = self.split_files()
        if not files.get("val"):
            raise ConfigError(
                f"data={self.name} has no validation file; give one (data.val_files) or hold out the end "
                "of the training text with data.val_fraction."
            )
        for split in SPLITS:
            for path in files.get(split) or []:
                check_corpus_file(path)
        self._encoding = self._saved_encoding() or LMEncoding.from_settings(
            self.tokenizer_settings, self.split_lines("train", files)
        )
        for split in SPLITS:
            source = split if files.get(split) else "val"
            if source in self._ids:
                self._ids[split] = self._ids[source]
                continue
            counter = _TextCounter(self.split_lines(source, files))
            ids = self._encoding.encode_lines(counter, skip_empty=self.skip_empty_lines)
            if counter.text_lines == 0:
                raise DataError(
                    f"The {source} split ({', '.join(map(str, files[source]))}) holds no text (only blank "
                    "lines). Give files with text in them."
                )
            self._ids[split] = ids
            oov = self._encoding.oov_rate(ids) if source != "train" else None
            log.info(
                "data=%s %s: %d lines, %d tokens%s",
                self.name,
                source,
                counter.lines,
                len(ids),
                f", {100 * oov:.2f}% <unk>" if oov is not None else "",
            )
        log.info(
            "data=%s: %s encoding, %d entries", self.name, self._encoding.kind, self._encoding.vocab_size
        )
        return self._ids

    def _saved_encoding(self) -> LMEncoding | None:
        """The vocabulary/tokenizer saved by the run of `encoding_from`, when there is one."""
        if self.encoding_from is None or not self.tokenizer_settings:
            return None
        run_dir = (
            self.encoding_from.parent.parent if self.encoding_from.suffix == ".ckpt" else self.encoding_from
        )
        kind = "word" if self.tokenizer_settings.get("kind") == "word" else "hf"
        saved = run_dir / (VOCAB_FILE if kind == "word" else TOKENIZER_DIR)
        if not saved.exists():
            log.warning("%s has no saved %s; building it from the data as in training", run_dir, saved.name)
            return None
        log.info(
            "Using the %s of the checkpoint's run, %s", "vocabulary" if kind == "word" else "tokenizer", saved
        )
        if kind == "word":
            from litzoo.text.vocab import Vocab

            return LMEncoding(
                "word",
                vocab=Vocab.load(saved),
                lowercase=bool(self.tokenizer_settings.get("lowercase", False)),
            )
        from litzoo.text.pretrained import load_tokenizer

        return LMEncoding("hf", tokenizer=load_tokenizer(saved), source=str(saved))

    def info(self) -> dict[str, Any]:
        """What the task builds its model and metrics from (plain data, plus the `encoding` object
        itself under `tokenizer`, which the task keeps for generation and does not save)."""
        ids = self.prepare()
        return {
            "dataset": self.name,
            "vocab_size": self.encoding.vocab_size,
            "encoding": self.encoding.settings(),
            "batching": self.batching,
            "bptt": self.bptt,
            "variable_bptt": self.variable_bptt,
            "tokens": {split: int(len(ids[split])) for split in SPLITS},
            "tokenizer": self.encoding,
        }

    # -- datasets ------------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        self._ensure_layout()
        self._save_to_run_dir()

    def _ensure_layout(self) -> None:
        """Build the split datasets for the current world size and rank (again if they changed).

        The training streams depend on the number of processes, which is only known once DDP has
        started; `setup()` may be called before that (e.g. by the platform, to size the batch), so
        the loaders check the layout again when Lightning asks for them.
        """
        ids = self.prepare()
        world, rank = self._world()
        if self._layout == (world, rank):
            return
        if self.batching == "bptt":
            self._setup_streams(ids, world, rank)
        else:
            self._setup_windows(ids)
        self._layout = (world, rank)

    def train_samples(self) -> int:
        """Training samples for the platform's batch-size check: BPTT windows of the corpus (bptt), blocks (windows)."""
        tokens = len(self.prepare()["train"])
        return (
            max(tokens // (self.bptt + 1), 1)
            if self.batching == "bptt"
            else max((tokens - 1) // self.bptt, 1)
        )

    def _world(self) -> tuple[int, int]:
        found_world, found_rank = distributed_world()
        world = self.num_replicas if self.num_replicas is not None else found_world
        rank = self.rank if self.rank is not None else found_rank
        return int(world), int(rank)

    def _setup_streams(self, ids: dict[str, np.ndarray], world: int, rank: int) -> None:
        streams = world * self.batch_size
        where = f"data={self.name}, the training split"
        fix = "Use a larger corpus, or lower data.batch_size or data.bptt" + (
            f" (or run on fewer than {world} processes)." if world > 1 else "."
        )
        stream_len = check_enough_tokens(len(ids["train"]), streams, self.bptt + 1, where, fix)
        matrix = stream_matrix(ids["train"], streams)
        own = matrix[:, rank * self.batch_size : (rank + 1) * self.batch_size]
        self.train_set = _RankStreams(own, offset=rank * stream_len)
        self._bptt_samplers["train"] = BPTTBatchSampler(
            stream_len,
            self.bptt,
            self.variable_bptt,
            seed=self.seed,
            num_replicas=world,
            rank=rank,
            **self.variable_args,
        )
        self._collates["train"] = StreamBatchify(stream_len)
        sampler = self._bptt_samplers["train"]
        log.info(
            "data=%s train: %d streams of %d tokens (%d per process), %s",
            self.name,
            streams,
            stream_len,
            self.batch_size,
            describe_windows(*sampler.windows(0)),
        )
        for split, size in (("val", self.eval_batch_size), ("test", self.test_batch_size)):
            where = f"data={self.name}, the {split} split"
            eval_len = check_enough_tokens(
                len(ids[split]),
                size,
                2,
                where,
                f"Use a larger {split} file or a smaller data.{split[:4]}_batch_size.",
            )
            columns, real = rank_columns(size, world, rank)
            block = stream_matrix(ids[split], size)[:, columns]
            dataset = StreamRows([block], column_mask=None if real.all() else real)
            setattr(self, f"{split}_set", dataset)
            self._bptt_samplers[split] = BPTTBatchSampler(eval_len, self.eval_bptt, num_replicas=1, rank=0)
            self._collates[split] = StreamBatchify(eval_len, dataset.column_mask)

    def _setup_windows(self, ids: dict[str, np.ndarray]) -> None:
        where = f"data={self.name}, the training split"
        if (len(ids["train"]) - 1) // self.bptt < 1:
            raise DataError(
                f"{where} has {len(ids['train']):,} tokens, fewer than one block of data.bptt + 1 = "
                f"{self.bptt + 1}. Use a larger corpus or a smaller data.bptt."
            )
        self.train_set = TokenBlocks(ids["train"], self.bptt)
        collate = WindowBatchify(self.encoding.pad_id)
        self._collates = {split: collate for split in SPLITS}
        for split in ("val", "test"):
            if len(ids[split]) < 2:
                raise DataError(
                    f"data={self.name}, the {split} split has {len(ids[split])} token(s); evaluation "
                    "needs at least 2 (an input and its target)."
                )
            setattr(self, f"{split}_set", SlidingWindows(ids[split], self.eval_window, self.eval_stride))
        log.info(
            "data=%s train: %d blocks of %d tokens; evaluation windows of %d tokens, stride %d",
            self.name,
            len(self.train_set),
            self.bptt,
            self.eval_window,
            self.eval_stride,
        )

    def _save_to_run_dir(self) -> None:
        """Global rank 0 writes the vocabulary/tokenizer into the run directory, refusing to overwrite another."""
        trainer = getattr(self, "trainer", None)
        if trainer is None or not trainer.is_global_zero:
            return
        run_dir = Path(trainer.default_root_dir)
        if self._saved_to == run_dir:
            return
        saved = run_dir / (VOCAB_FILE if self.encoding.kind == "word" else TOKENIZER_DIR)
        if saved.exists() and (self.encoding_from is None or run_dir != _run_dir_of(self.encoding_from)):
            try:
                existing = LMEncoding.load(run_dir, {"kind": self.encoding.kind}, check=False)
            except CheckpointError:
                existing = None
            if existing is None or existing.fingerprint() != self.encoding.fingerprint():
                raise CheckpointError(
                    f"{saved} holds a different {'vocabulary' if self.encoding.kind == 'word' else 'tokenizer'} than "
                    f"the one built from data={self.name} now ({self.encoding.vocab_size} entries): the run in {run_dir} "
                    "was trained on other data, so its checkpoints do not fit. Resume it with its original data "
                    "(see its .hydra/config.yaml), or start a new run directory."
                )
        self.encoding.save(run_dir)
        self._saved_to = run_dir
        log.info(
            "Saved the %s to %s (used by evaluation and generation)",
            "vocabulary" if self.encoding.kind == "word" else "tokenizer",
            saved,
        )

    # -- loaders -------------------------------------------------------------------------------

    def batch_sampler(self, split: str) -> ShardedBatchSampler:
        if split in self._bptt_samplers:
            return self._bptt_samplers[split]
        return super().batch_sampler(split)

    def _loaded(self, split: str) -> Dataset:
        return self.dataset(split)

    def train_dataloader(self) -> ResumableDataLoader:
        self._ensure_layout()
        return build_dataloader(
            self.dataset("train"),
            self.batch_sampler("train"),
            self._collates["train"],
            num_workers=self.num_workers,
            persistent_workers=self.persistent_workers,
            pin_memory=self.pin_memory,
            prefetch_factor=self.prefetch_factor,
            generator=self._worker_seed_generator("train"),
        )

    def _eval_loader(self, split: str) -> DataLoader:
        self._ensure_layout()
        workers = self.num_workers
        return DataLoader(
            self.dataset(split),
            batch_sampler=self.batch_sampler(split),
            collate_fn=self._collates[split],
            num_workers=workers,
            persistent_workers=self.persistent_workers and workers > 0,
            pin_memory=self.pin_memory,
            prefetch_factor=self.prefetch_factor if workers > 0 else None,
            generator=self._worker_seed_generator(split),
        )

    def _build_sampler(self, split: str, dataset: Dataset) -> ShardedBatchSampler:
        from litzoo.data.samplers import RandomBatchSampler, SequentialBatchSampler

        where = {"num_replicas": self.num_replicas, "rank": self.rank}
        if split == "train":
            return RandomBatchSampler(
                len(dataset), self.batch_size, shuffle=self.shuffle, seed=self.seed, **where
            )
        size = self.eval_batch_size if split == "val" else self.test_batch_size
        return SequentialBatchSampler(len(dataset), size, even_split=True, **where)


class _RankStreams(StreamRows):
    """This rank's training streams, answering to the global sample indices `offset + t`."""

    def __init__(self, block: np.ndarray, offset: int) -> None:
        super().__init__([block])
        self.offset = int(offset)

    def __getitem__(self, index: int) -> Any:
        return int(index), self.rows[int(index) - self.offset]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        import torch

        index = torch.as_tensor(indices) - self.offset
        return [{"first": int(indices[0]), "block": self.rows.index_select(0, index)}]


class _TextCounter:
    """Iterates over lines, counting them and the ones with text."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.lines = self.text_lines = 0

    def __iter__(self) -> Iterator[str]:
        for line in self._lines:
            self.lines += 1
            self.text_lines += bool(line.strip())
            yield line


def _run_dir_of(path: Path) -> Path:
    return path.parent.parent if path.suffix == ".ckpt" else path


# ----------------------------------------------------------------------------- the corpora


class WikiTextDataModule(LanguageModelDataModule):
    """WikiText-2 / WikiText-103 (`wiki.{train,valid,test}.tokens`; `.raw` with `raw=true`) in `root`."""

    def __init__(self, root: str | Path, raw: bool = False, name: str = "wikitext", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root, self.raw, self.name = Path(str(root)).expanduser(), bool(raw), name

    def split_files(self) -> dict[str, list[Path]]:
        names = wikitext_files(self.raw)
        folder = find_corpus_folder(self.root, list(names.values()), WIKITEXT_FOLDERS)
        if folder is None:
            raise DataError(
                f"data={self.name}: no {names['train']} in {self.root} (or its wikitext-2/ or "
                "wikitext-103/ folder). Point data.root to the unpacked WikiText folder."
            )
        return {split: [folder / names[split]] for split in SPLITS}


class PTBDataModule(LanguageModelDataModule):
    """Penn Treebank as Mikolov distributes it (`ptb.{train,valid,test}.txt`) in `root`."""

    name = "ptb"

    def __init__(self, root: str | Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = Path(str(root)).expanduser()

    def split_files(self) -> dict[str, list[Path]]:
        folder = find_corpus_folder(self.root, list(PTB_FILES.values()), ("data",))
        if folder is None:
            raise DataError(
                f"data=ptb: no ptb.train.txt in {self.root} (or its data/ folder). Point data.root to "
                "the folder of Mikolov's ptb.{train,valid,test}.txt."
            )
        return {split: [folder / PTB_FILES[split]] for split in SPLITS}


class ShakespeareDataModule(WikiTextDataModule):
    """The embedded default: Shakespeare's plays in WikiText format, written under `root` on first use
    (training on the plays of `genres`, or all of them)."""

    def __init__(
        self, root: str | Path, raw: bool = False, genres: Sequence[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(root=root, raw=raw, name="shakespeare", **kwargs)
        self.genres = list(genres) if genres else None

    def split_files(self) -> dict[str, list[Path]]:
        ensure_shakespeare_corpus(self.root, self.genres)
        return super().split_files()


class TextFilesDataModule(LanguageModelDataModule):
    """Any UTF-8 text file(s): `train_files`, and `val_files`/`test_files` or a held-out tail of train.

    Args:
        train_files, val_files, test_files: a path or a list of paths each (test falls back to val).
        val_fraction: without val_files, the last share of the training lines is the validation split.
    """

    name = "text_lm"

    def __init__(
        self,
        train_files: str | Sequence[str],
        val_files: str | Sequence[str] | None = None,
        test_files: str | Sequence[str] | None = None,
        val_fraction: float | None = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.files = {"train": _paths(train_files), "val": _paths(val_files), "test": _paths(test_files)}
        if not self.files["train"]:
            raise ConfigError("data.train_files is empty; give the text file(s) to train on.")
        if not self.files["val"] and not (val_fraction and 0.0 < float(val_fraction) < 1.0):
            raise ConfigError(
                f"data.val_fraction={val_fraction} must be between 0 and 1 when no data.val_files "
                "are given (the end of the training text is held out for validation)."
            )
        self.val_fraction = float(val_fraction) if not self.files["val"] else None
        self._holdout: dict[str, list[str]] | None = None

    def split_files(self) -> dict[str, list[Path]]:
        files = dict(self.files)
        if self.val_fraction is not None:
            files["val"] = list(files["train"])  # marker: the held-out tail, see split_lines
        return files

    def split_lines(self, split: str, files: dict[str, list[Path]]) -> Iterator[str]:
        if self.val_fraction is None or split == "test":
            return super().split_lines(split, files)
        if self._holdout is None:
            lines = list(super().split_lines("train", {"train": self.files["train"]}))
            cut = len(lines) - max(1, round(len(lines) * self.val_fraction))
            if cut < 1:
                raise DataError(
                    f"{self.files['train'][0]} has {len(lines)} line(s): too few to hold out "
                    f"{self.val_fraction:.0%} for validation. Give data.val_files or more text."
                )
            self._holdout = {"train": lines[:cut], "val": lines[cut:]}
            log.info(
                "data=text_lm: validating on the last %d of %d training lines", len(lines) - cut, len(lines)
            )
        return iter(self._holdout[split])


def _paths(value: str | Sequence[str] | None) -> list[Path]:
    if not value:
        return []
    items = [value] if isinstance(value, (str, Path)) else list(value)
    return [Path(str(item)).expanduser() for item in items]
