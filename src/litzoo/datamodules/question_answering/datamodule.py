"""Question-answering datamodules: SQuAD 1.1/2.0 files from a folder, and the embedded generated set.

:class:`SquadDataModule` reads the three splits with :func:`~.squad.read_squad` (the version is
the file's own; a file of the other version than ``data.version`` is refused), cuts every question
into windows with the model's fast tokenizer (:mod:`litzoo.text.qa_windows`: ``max_seq_length``,
``doc_stride``, ``max_query_length``) and serves them through the data API:

- **training** windows carry ``start_positions``/``end_positions`` (``[CLS]`` for windows without the
  answer and for unanswerable questions); **evaluation** windows carry, instead, each token's
  character offsets in the context and their question's index (``example_index``), so the task
  decodes answers as text of the original context and scores whole questions;
- batches are length-bucketed by window length (``data.sampler``: GluonNLP's FixedBucketSampler by
  default) and padded per batch (``batchify.Dict`` of ``Pad``), so short windows are not padded to
  384 tokens;
- files: ``root`` holds ``train-v<version>.json`` and ``dev-v<version>.json`` (the test split is dev
  unless ``test-v<version>.json`` exists), or ``train_file``/``val_file``/``test_file`` name them;
- the run directory: global rank 0 writes the tokenizer and the encoder's ``config.json`` into
  ``<run_dir>/tokenizer`` at setup; evaluation of a checkpoint (``encoding_from``) and prediction
  read text through that copy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from litzoo.data.base import BaseDataModule
from litzoo.data.batchify import Dict, Pad, Stack
from litzoo.datamodules.question_answering.layouts import check_window_settings, find_squad_files
from litzoo.datamodules.question_answering.squad import SquadExample, SquadFile, check_bad_samples, read_squad
from litzoo.datamodules.question_answering.toy_squad import ensure_toy_squad
from litzoo.errors import ConfigError, DataError
from litzoo.text.qa_windows import Windows, WindowSettings, build_windows

log = logging.getLogger("litzoo")

TOKENIZER_DIR = "tokenizer"


class QAEncoding:
    """How a model reads (question, context) pairs: its fast tokenizer and the window settings.

    The same object serves training (built from the model's checkpoint) and prediction (loaded from
    a run directory), so both cut text into windows identically.
    """

    def __init__(self, tokenizer: Any, pretrained: str, settings: WindowSettings) -> None:
        settings.check(tokenizer)
        self.tokenizer, self.pretrained, self.window = tokenizer, str(pretrained), settings

    @classmethod
    def from_pretrained(cls, pretrained: str | Path, settings: WindowSettings) -> QAEncoding:
        from litzoo.text.pretrained import load_tokenizer

        return cls(load_tokenizer(pretrained), str(pretrained), settings)

    @classmethod
    def load(cls, run_dir: str | Path, settings: Mapping[str, Any]) -> QAEncoding:
        """The encoding a run saved (`settings`: the ``encoding`` entry of the task's data info)."""
        folder = Path(run_dir) / TOKENIZER_DIR
        if not folder.is_dir():
            raise DataError(
                f"{folder} not found: training saves the tokenizer there so that evaluation and "
                "prediction read text the same way. Point to the run directory of the checkpoint."
            )
        encoding = cls.from_pretrained(folder, window_settings(settings))
        if len(encoding.tokenizer) != int(settings["vocab_size"]):
            raise DataError(
                f"The tokenizer in {folder} has {len(encoding.tokenizer)} tokens but the model was trained "
                f"with {settings['vocab_size']}: tokenizer and checkpoint come from different runs."
            )
        return encoding

    @property
    def with_token_types(self) -> bool:
        return "token_type_ids" in self.tokenizer.model_input_names

    def settings(self) -> dict[str, Any]:
        """Plain data (saved with the model): enough to load this encoding from a run directory."""
        return {
            "pretrained": self.pretrained,
            "vocab_size": len(self.tokenizer),
            "pad_id": int(self.tokenizer.pad_token_id),
            "max_seq_length": self.window.max_seq_length,
            "doc_stride": self.window.doc_stride,
            "max_query_length": self.window.max_query_length,
            "file": TOKENIZER_DIR,
        }

    def save(self, run_dir: str | Path) -> Path:
        """The tokenizer and the encoder's ``config.json`` (no weights) into ``<run_dir>/tokenizer``."""
        from litzoo.text.pretrained import load_pretrained_config

        folder = Path(run_dir) / TOKENIZER_DIR
        self.tokenizer.save_pretrained(folder)
        load_pretrained_config(self.pretrained).save_pretrained(folder)
        return folder

    def windows(self, examples: list[SquadExample], labelled: bool) -> Windows:
        """The windows of `examples`; labelled by each question's first answer (none: unanswerable)."""
        answers = None
        if labelled:
            answers = [
                (e.answers[0].answer_start, e.answers[0].answer_end) if e.answers else None for e in examples
            ]
        return build_windows(
            self.tokenizer,
            [e.question for e in examples],
            [e.context for e in examples],
            self.window,
            answers,
        )

    def collate(self) -> WindowBatchify:
        """Pads token fields with the tokenizer's ids (offsets with -1), stacks labels and indices."""
        fields: dict[str, Any] = {
            "input_ids": Pad(pad_val=int(self.tokenizer.pad_token_id), dtype="int64"),
            "attention_mask": Pad(pad_val=0, dtype="int64"),
            "example_index": Stack(dtype="int64"),
            "window_index": Stack(dtype="int64"),
        }
        if self.with_token_types:
            fields["token_type_ids"] = Pad(pad_val=int(self.tokenizer.pad_token_type_id), dtype="int64")
        fields["start_positions"] = Stack(dtype="int64")
        fields["end_positions"] = Stack(dtype="int64")
        fields["offsets"] = Pad(pad_val=-1, dtype="int64")
        return WindowBatchify(fields)


class WindowBatchify:
    """``batchify.Dict`` over the fields a split's windows have: training windows carry labels,
    evaluation windows character offsets, and one batchify serves both."""

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.fields = dict(fields)

    def __call__(self, data: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        present = {key: fn for key, fn in self.fields.items() if key in data[0]}
        return Dict(present)(data)

    def __repr__(self) -> str:
        return f"WindowBatchify({self.fields!r})"


def window_settings(values: Mapping[str, Any]) -> WindowSettings:
    return WindowSettings(
        int(values["max_seq_length"]), int(values["doc_stride"]), int(values["max_query_length"])
    )


class WindowDataset(Dataset):
    """The windows of one split as samples (numpy arrays and ints, unpadded)."""

    def __init__(self, windows: Windows, with_offsets: bool) -> None:
        self.windows, self.with_offsets = windows, with_offsets

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.windows.sample(index, self.with_offsets)


@dataclass
class Split:
    """One split as read and windowed."""

    file: SquadFile
    windows: Windows | None = None


class SquadDataModule(BaseDataModule):
    """SQuAD-format files (``conf/data/squad.yaml``; see the module docstring).

    Args:
        root: the folder with ``train-v<version>.json`` and ``dev-v<version>.json``.
        version: ``1.1`` or ``2.0`` (null: the one `root` holds); every file must declare it.
        train_file, val_file, test_file: explicit paths (they win over `root`).
        max_seq_length, doc_stride, max_query_length: the windows (tokens): window length, overlap of
            consecutive windows of one context, and the longest question kept.
        tokenizer: the checkpoint whose fast tokenizer reads the text (the task sets it to `model.pretrained`).
        encoding_from: a checkpoint (or run directory) whose run's saved tokenizer to use instead.
        bad_samples: ``error`` (the first bad question stops the run, naming its id) or ``skip`` (left
            out, counted and listed in run.json).
        batch_size, num_workers, loader_args: see :class:`~litzoo.data.base.BaseDataModule`.
    """

    name = "squad"

    def __init__(
        self,
        root: str | Path | None = None,
        version: str | None = None,
        train_file: str | None = None,
        val_file: str | None = None,
        test_file: str | None = None,
        max_seq_length: int = 384,
        doc_stride: int = 128,
        max_query_length: int = 64,
        tokenizer: str | None = None,
        encoding_from: str | Path | None = None,
        bad_samples: str = "error",
        batch_size: int = 12,
        num_workers: int | str = 0,
        **loader_args: Any,
    ) -> None:
        super().__init__(batch_size, num_workers, bad_samples=check_bad_samples(bad_samples), **loader_args)
        check_window_settings(max_seq_length, doc_stride, max_query_length)
        self.root = None if root in (None, "") else Path(str(root)).expanduser()
        self.version = None if version in (None, "") else str(version)
        self.files = {"train": train_file, "val": val_file, "test": test_file}
        self.window = WindowSettings(int(max_seq_length), int(doc_stride), int(max_query_length))
        self.tokenizer_source = tokenizer
        self.encoding_from = Path(str(encoding_from)).expanduser() if encoding_from else None
        self._splits: dict[str, Split] | None = None
        self._encoding: QAEncoding | None = None
        self._version: str | None = None
        self._saved_to: Path | None = None

    # -- reading --------------------------------------------------------------------------------------
    def prepare_files(self) -> None:
        """Hook for datamodules that write their files first (the embedded set)."""

    def splits(self) -> dict[str, Split]:
        """The three splits as read (the test split is the val split's object when they share a file)."""
        if self._splits is None:
            self.prepare_files()
            paths, self._version = find_squad_files(self.root, self.version, self.files, self.name)
            read: dict[Path, SquadFile] = {}
            for path in dict.fromkeys(paths.values()):
                read[path] = read_squad(path, self._version, self.bad_samples)
            splits = {split: Split(read[path]) for split, path in paths.items() if split != "test"}
            splits["test"] = splits["val"] if paths["test"] == paths["val"] else Split(read[paths["test"]])
            self._splits = splits
            for split, part in splits.items():
                file = part.file
                skipped = f", {len(file.skipped)} skipped (data.bad_samples=skip)" if file.skipped else ""
                log.info(
                    "data=%s %s: %s, SQuAD %s, %d questions (%d unanswerable)%s",
                    self.name,
                    split,
                    file.path,
                    file.version,
                    len(file),
                    file.num_unanswerable,
                    skipped,
                )
        return self._splits

    def examples(self, split: str) -> list[SquadExample]:
        """The questions of `split` ("train", "val" or "test"), in file order (what evaluation scores)."""
        return self.splits()[split].file.examples

    @property
    def squad_version(self) -> str:
        self.splits()
        assert self._version is not None
        return self._version

    def encoding(self) -> QAEncoding:
        if self._encoding is None:
            saved = self._saved_tokenizer()
            source = saved or self.tokenizer_source
            if not source:
                raise ConfigError(
                    "data.tokenizer is not set, so the datamodule does not know how the model reads text. "
                    "task=question_answering sets it to model.pretrained: use a BERT-family model "
                    "(model=minilm_l6, bert_base, bert_large or hf_encoder model.pretrained=<dir>)."
                )
            if saved:
                log.info("Using the tokenizer of the checkpoint's run, %s", saved)
            self._encoding = QAEncoding.from_pretrained(source, self.window)
        return self._encoding

    def _saved_tokenizer(self) -> str | None:
        if self.encoding_from is None:
            return None
        run_dir = (
            self.encoding_from.parent.parent if self.encoding_from.suffix == ".ckpt" else self.encoding_from
        )
        folder = run_dir / TOKENIZER_DIR
        if folder.is_dir():
            return str(folder)
        log.warning(
            "%s has no saved %s/; reading text with data.tokenizer as in training", run_dir, TOKENIZER_DIR
        )
        return None

    # -- what the task and Lightning call -------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """What the task builds its model and metrics from (plain data)."""
        return {"dataset": self.name, "version": self.squad_version, "encoding": self.encoding().settings()}

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            encoding, splits = self.encoding(), self.splits()
            for split, part in splits.items():
                if part.windows is None:
                    part.windows = encoding.windows(part.file.examples, labelled=split == "train")
                    self._log_windows(split, part)
            self.train_set = WindowDataset(splits["train"].windows, with_offsets=False)  # type: ignore[arg-type]
            self.val_set = WindowDataset(splits["val"].windows, with_offsets=True)  # type: ignore[arg-type]
            self.test_set = (
                self.val_set
                if splits["test"] is splits["val"]
                else WindowDataset(splits["test"].windows, with_offsets=True)
            )  # type: ignore[arg-type]
            if self.collate_fn is None:
                self.collate_fn = encoding.collate()
        self._save_to_run_dir()

    def lengths(self, split: str) -> np.ndarray:
        """Tokens per window of `split`, for the length-bucketing samplers."""
        self.setup()
        windows = self.splits()[split].windows
        assert windows is not None
        return windows.lengths

    def skipped_samples(self) -> list[dict[str, Any]]:
        """Questions left out under ``data.bad_samples=skip``: ``{split, file, id, reason}`` each."""
        if self._splits is None:
            return []
        seen: set[int] = set()
        rows = []
        for split, part in self._splits.items():
            if id(part.file) not in seen:
                seen.add(id(part.file))
                rows += [skipped.as_dict(split) for skipped in part.file.skipped]
        return rows

    def _log_windows(self, split: str, part: Split) -> None:
        windows = part.windows
        assert windows is not None
        lengths = windows.lengths
        questions = len(part.file)
        notes = []
        if windows.truncated_questions:
            notes.append(
                f"{windows.truncated_questions} questions cut to {self.window.max_query_length} tokens"
            )
        if windows.lost_answers:
            notes.append(f"{windows.lost_answers} answers fit in no window (trained as no-answer)")
        log.info(
            "data=%s %s: %d windows for %d questions (max_seq_length %d, doc_stride %d); tokens per window "
            "mean %.1f, max %d%s",
            self.name,
            split,
            len(windows),
            questions,
            self.window.max_seq_length,
            self.window.doc_stride,
            float(lengths.mean()),
            int(lengths.max()),
            f"; {'; '.join(notes)}" if notes else "",
        )

    def _save_to_run_dir(self) -> None:
        """Global rank 0 writes the tokenizer into the run directory (once per run)."""
        trainer = getattr(self, "trainer", None)
        if trainer is None or not trainer.is_global_zero:
            return
        run_dir = Path(trainer.default_root_dir)
        if self._saved_to == run_dir:
            return
        folder = self.encoding().save(run_dir)
        self._saved_to = run_dir
        log.info("Saved the tokenizer to %s (used by evaluation and prediction)", folder)


class ToySquadDataModule(SquadDataModule):
    """The embedded set (``conf/data/toy_squad.yaml``): generated biographies written on first use as
    ``train-v<version>.json``/``dev-v<version>.json`` under `root`, then read like the real SQuAD files."""

    name = "toy_squad"

    def __init__(
        self,
        root: str | Path,
        version: str = "2.0",
        num_train: int = 240,
        num_dev: int = 60,
        generator_seed: int = 0,
        filler_rate: float = 0.35,
        **kwargs: Any,
    ) -> None:
        for key in ("train_file", "val_file", "test_file"):
            kwargs.pop(key, None)
        super().__init__(root=root, version=version, **kwargs)
        self.generator = {
            "version": str(version),
            "num_train": int(num_train),
            "num_dev": int(num_dev),
            "seed": int(generator_seed),
            "filler_rate": float(filler_rate),
        }

    def prepare_files(self) -> None:
        assert self.root is not None
        ensure_toy_squad(self.root, **self.generator)
