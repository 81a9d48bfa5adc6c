"""Translation datamodules: parallel text -> subword ids, batched under a token budget.

- The subword vocabulary (SentencePiece unigram/BPE, joint or separate; or a local HF tokenizer,
  :mod:`litzoo.text.subword_vocab`) is trained from the training text on first use and written into
  the run directory (``vocab/spm.{joint,src,tgt}.model``). A resumed run reads it back from there and
  ``train=false ckpt_path=...`` from the checkpoint's run directory (``vocab_from``), so a checkpoint
  always meets the ids it was trained with.
- Batches come from :class:`~litzoo.data.samplers.TokenBudgetSampler` over (source, target) lengths
  (fairseq's ``--max-tokens``): length-sorted, so batches are buckets of similar lengths; it shards
  itself across DDP ranks and resumes mid-epoch.
- Each batch is ``{"src", "tgt_in", "tgt_out", "index", "references"}``: padded source ids (+ ``</s>``),
  the target shifted right behind ``<s>`` and the target followed by ``</s>``; the raw reference
  strings travel with the batch, so the metric scores detokenized output against them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from litzoo.data.base import BaseDataModule
from litzoo.datamodules.translation.layouts import split_files
from litzoo.datamodules.translation.readers import ParallelText, read_parallel, read_tsv
from litzoo.datamodules.translation.synthetic import SOURCE_LANG, TARGET_LANG, ensure_synthetic_pairs
from litzoo.errors import CheckpointError, ConfigError
from litzoo.text.subword_vocab import BOS, EOS, PAD, HFVocab, SubwordVocab

log = logging.getLogger("litzoo")
VOCAB_DIR = "vocab"


class PairDataset(Dataset):
    """Encoded pairs of one split with their raw references."""

    def __init__(self, source: list[list[int]], target: list[list[int]], references: list[str]) -> None:
        self.source, self.target, self.references = source, target, references

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[list[int], list[int], str, int]:
        return self.source[index], self.target[index], self.references[index], index


def collate_pairs(samples: Sequence[tuple[list[int], list[int], str, int]]) -> dict[str, Any]:
    """Pad a batch: ``src`` = x </s>, ``tgt_in`` = <s> y, ``tgt_out`` = y </s> (pad 0)."""
    n = len(samples)
    src_len = max(len(s[0]) for s in samples) + 1
    tgt_len = max(len(s[1]) for s in samples) + 1
    src = torch.full((n, src_len), PAD, dtype=torch.long)
    tgt_in = torch.full((n, tgt_len), PAD, dtype=torch.long)
    tgt_out = torch.full((n, tgt_len), PAD, dtype=torch.long)
    for row, (x, y, _, _) in enumerate(samples):
        src[row, : len(x) + 1] = torch.tensor([*x, EOS])
        tgt_in[row, : len(y) + 1] = torch.tensor([BOS, *y])
        tgt_out[row, : len(y) + 1] = torch.tensor([*y, EOS])
    return {
        "src": src,
        "tgt_in": tgt_in,
        "tgt_out": tgt_out,
        "index": torch.tensor([s[3] for s in samples]),
        "references": [s[2] for s in samples],
    }


def _run_dir_of(path: str | Path) -> Path:
    path = Path(str(path)).expanduser()
    return path.parent.parent if path.suffix == ".ckpt" else path


class TranslationDataModule(BaseDataModule):
    """Parallel text of any reader, a subword vocabulary and token-budget batches.

    Subclasses implement :meth:`read_split` (``split -> ParallelText``, or None for a split they lack).

    Args:
        vocab: ``{type: sentencepiece|hf, model_type: unigram|bpe, vocab_size, joint, character_coverage,
            path (hf)}``.
        vocab_dir: where the trained vocabulary is written (the run directory's ``vocab/``).
        vocab_from: a checkpoint or run directory whose saved vocabulary to use (the task config sets
            it to ``ckpt_path``).
        max_positions: training pairs with a side longer than this (in subwords) are left out, as
            fairseq does; evaluation sources are cut to it.
        max_val_samples: score BLEU during training on the first N validation pairs (null: all).
        empty_lines: pairs with an empty side are ``skip``ped and counted, or an ``error``.
        batch_size: most sentences per batch (the token budget is the sampler's ``max_tokens``).
    """

    def __init__(
        self,
        vocab: dict[str, Any],
        vocab_dir: str | None = None,
        vocab_from: str | None = None,
        max_positions: int = 256,
        max_val_samples: int | None = None,
        empty_lines: str = "skip",
        name: str = "translation",
        **loader: Any,
    ) -> None:
        loader.pop("tasks", None)
        super().__init__(**loader)
        self.vocab_cfg = dict(vocab)
        self.vocab_dir = Path(str(vocab_dir)).expanduser() if vocab_dir else None
        self.vocab_from = _run_dir_of(vocab_from) if vocab_from else None
        self.max_positions = int(max_positions)
        self.max_val_samples = max_val_samples
        self.empty_lines = empty_lines
        self.name = name
        self.collate_fn = collate_pairs
        self._texts: dict[str, ParallelText | None] = {}
        self._vocabs: tuple[Any, Any] | None = None
        self._lengths: dict[str, np.ndarray] = {}

    # --- what subclasses provide --------------------------------------------------------------------
    def read_split(self, split: str) -> ParallelText | None:
        raise NotImplementedError

    def texts(self, split: str) -> ParallelText | None:
        if split not in self._texts:
            text = self.read_split(split)
            if text is not None and text.skipped_empty:
                log.warning(
                    "%s split: left out %d pair(s) with an empty side (lines %s%s)",
                    split,
                    text.skipped_empty,
                    text.skipped_lines[:5],
                    " ..." if text.skipped_empty > 5 else "",
                )
            if text is not None and split == "val" and self.max_val_samples:
                n = int(self.max_val_samples)
                text = ParallelText(text.source[:n], text.target[:n], text.skipped_empty, text.skipped_lines)
            self._texts[split] = text
        return self._texts[split]

    # --- vocabulary ---------------------------------------------------------------------------------
    def _vocab_files(self, folder: Path) -> dict[str, Path]:
        if self.vocab_cfg.get("joint", True):
            return {"joint": folder / VOCAB_DIR / "spm.joint.model"}
        return {"src": folder / VOCAB_DIR / "spm.src.model", "tgt": folder / VOCAB_DIR / "spm.tgt.model"}

    def _load_saved(self, folder: Path) -> tuple[Any, Any] | None:
        files = self._vocab_files(folder)
        if not all(p.is_file() for p in files.values()):
            return None
        if "joint" in files:
            joint = SubwordVocab.load(files["joint"])
            return joint, joint
        return SubwordVocab.load(files["src"]), SubwordVocab.load(files["tgt"])

    def vocabs(self) -> tuple[Any, Any]:
        """(source vocabulary, target vocabulary): the same object when joint."""
        if self._vocabs is not None:
            return self._vocabs
        kind = self.vocab_cfg.get("type", "sentencepiece")
        if kind == "hf":
            hf = HFVocab(self.vocab_cfg["path"])
            self._vocabs = (hf, hf)
            return self._vocabs
        if kind != "sentencepiece":
            raise ConfigError(f"data.vocab.type={kind!r}: choose sentencepiece or hf.")
        if self.vocab_from is not None:
            saved = self._load_saved(self.vocab_from)
            if saved is None:
                raise CheckpointError(
                    f"The run directory {self.vocab_from} of the checkpoint has no saved vocabulary "
                    f"({', '.join(str(p) for p in self._vocab_files(self.vocab_from).values())}), so its ids cannot "
                    "be matched. Evaluate the checkpoint inside its run directory, or set data.vocab_from to the run "
                    "directory that holds its vocab/ folder."
                )
            self._vocabs = saved
            return saved
        if self.vocab_dir is not None and (saved := self._load_saved(self.vocab_dir)) is not None:
            self._vocabs = saved  # a resumed run keeps its own vocabulary
            return saved
        train = self.texts("train")
        if train is None:
            raise ConfigError(f"data={self.name} has no training split to train the subword vocabulary on.")
        settings = {k: self.vocab_cfg[k] for k in ("model_type", "character_coverage") if k in self.vocab_cfg}
        size = int(self.vocab_cfg.get("vocab_size", 8000))
        if self.vocab_cfg.get("joint", True):
            joint = SubwordVocab.train(train.source + train.target, size, **settings)
            self._vocabs = (joint, joint)
        else:
            self._vocabs = (
                SubwordVocab.train(train.source, size, **settings),
                SubwordVocab.train(train.target, size, **settings),
            )
        log.info(
            "Trained %s SentencePiece vocabulary (%s): %s",
            "a joint" if self.vocab_cfg.get("joint", True) else "separate",
            self.vocab_cfg.get("model_type", "unigram"),
            " / ".join(str(len(v)) for v in dict.fromkeys(self._vocabs)),
        )
        if self.vocab_dir is not None:
            for role, path in self._vocab_files(self.vocab_dir).items():
                vocab = self._vocabs[1] if role == "tgt" else self._vocabs[0]
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_bytes(vocab.proto)
                tmp.replace(path)
        return self._vocabs

    def info(self) -> dict[str, Any]:
        src, tgt = self.vocabs()
        return {
            "src_vocab_size": len(src),
            "tgt_vocab_size": len(tgt),
            "joint_vocab": src is tgt,
            "vocab": {
                "src": src.to_state()
                if src.kind == "hf"
                else {"kind": src.kind, "fingerprint": src.fingerprint},
                "tgt": tgt.to_state()
                if tgt.kind == "hf"
                else {"kind": tgt.kind, "fingerprint": tgt.fingerprint},
            },
            "vocab_objects": (src, tgt),  # not a hyper-parameter: the task strips it
            "max_positions": self.max_positions,
        }

    # --- splits --------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        src_vocab, tgt_vocab = self.vocabs()
        for split in ("train", "val", "test"):
            if getattr(self, f"{split}_set") is not None:
                continue
            text = self.texts(split)
            if text is None:
                continue
            source, target = src_vocab.encode_batch(text.source), tgt_vocab.encode_batch(text.target)
            limit = self.max_positions - 1  # room for </s> (or <s>)
            if split == "train":
                keep = [
                    i
                    for i in range(len(source))
                    if 0 < len(source[i]) <= limit and 0 < len(target[i]) <= limit
                ]
                if len(keep) < len(source):
                    log.warning(
                        "train split: left out %d pair(s) longer than max_positions=%d subwords",
                        len(source) - len(keep),
                        self.max_positions,
                    )
                source, target = [source[i] for i in keep], [target[i] for i in keep]
                references = [text.target[i] for i in keep]
            else:
                source, target, references = (
                    [s[:limit] for s in source],
                    [t[:limit] for t in target],
                    text.target,
                )
            setattr(self, f"{split}_set", PairDataset(source, target, references))
            self._lengths[split] = np.array(
                [[len(s) + 1, len(t) + 1] for s, t in zip(source, target)], dtype=np.int64
            )

    def lengths(self, split: str) -> np.ndarray:
        return self._lengths[split]

    def source_texts(self, split: str) -> list[str]:
        text = self.texts(split)
        return [] if text is None else text.source


class ParallelTextDataModule(TranslationDataModule):
    """``<root>/<prefix>.<lang>`` file pairs: IWSLT2015 (train/tst2012/tst2013), WMT newstest, any corpus."""

    def __init__(
        self,
        root: str,
        src_lang: str,
        tgt_lang: str,
        train_prefix: str | None = "train",
        valid_prefix: str | None = "valid",
        test_prefix: str | None = "test",
        **kwargs: Any,
    ) -> None:
        kwargs.pop("layout", None)
        super().__init__(**kwargs)
        self.files = split_files(
            {
                "root": root,
                "src_lang": src_lang,
                "tgt_lang": tgt_lang,
                "train_prefix": train_prefix,
                "valid_prefix": valid_prefix,
                "test_prefix": test_prefix,
            }
        )
        self.src_lang, self.tgt_lang = src_lang, tgt_lang

    def read_split(self, split: str) -> ParallelText | None:
        if split not in self.files:
            return None
        return read_parallel(*self.files[split], empty_lines=self.empty_lines)


class SyntheticPairsDataModule(ParallelTextDataModule):
    """The embedded default: the generated language pair (:mod:`.synthetic`) written as parallel text."""

    def __init__(
        self,
        root: str,
        sizes: dict[str, int] | None = None,
        generate: bool = True,
        generator_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        ensure_synthetic_pairs(root, sizes, generator_seed)
        kwargs.setdefault("src_lang", SOURCE_LANG)
        kwargs.setdefault("tgt_lang", TARGET_LANG)
        super().__init__(root=root, **kwargs)


class TsvDataModule(TranslationDataModule):
    """Pairs in tab-separated files (``source<TAB>target``), one file per split."""

    def __init__(
        self,
        train_file: str,
        valid_file: str | None = None,
        test_file: str | None = None,
        source_column: int = 0,
        target_column: int = 1,
        header: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("layout", None)
        super().__init__(**kwargs)
        self.split_files = {"train": train_file, "val": valid_file, "test": test_file}
        self.columns = (source_column, target_column, header)

    def read_split(self, split: str) -> ParallelText | None:
        path = self.split_files.get(split)
        if not path:
            return None
        return read_tsv(path, *self.columns, empty_lines=self.empty_lines)
