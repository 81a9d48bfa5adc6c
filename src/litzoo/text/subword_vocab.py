"""Subword vocabularies for sequence-to-sequence models: SentencePiece (unigram or BPE), or a local HF tokenizer.

A :class:`SubwordVocab` turns raw text into ids and ids back into *detokenized* text, which is
what sacreBLEU must score (never the subword pieces). The special ids are fixed so every
vocabulary looks the same to the model: ``<pad>`` 0, ``<unk>`` 1, ``<s>`` 2, ``</s>`` 3.

A SentencePiece vocabulary is trained from the training text on first use and serialised as its
model proto (bytes): the datamodule writes it into the run directory (``spm.src.model`` ...) and
the task keeps it, base64-encoded, in its hyper-parameters, so a checkpoint alone can translate
raw text and a checkpoint whose vocabulary differs from the data's is recognised by
:attr:`SubwordVocab.fingerprint`. No torch import.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from litzoo.errors import ConfigError, DependencyError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
MODEL_TYPES = ("unigram", "bpe")


def _spm() -> Any:
    try:
        import sentencepiece
    except ImportError:
        raise DependencyError(
            "Subword vocabularies need the `sentencepiece` package, which is not installed. Install it: "
            "pip install 'litzoo[text]'   (or: pip install sentencepiece)."
        ) from None
    return sentencepiece


class SubwordVocab:
    """A SentencePiece model: ``encode(text) -> ids`` and ``decode(ids) -> text`` (detokenized)."""

    kind = "sentencepiece"

    def __init__(self, proto: bytes) -> None:
        self.proto = bytes(proto)
        self._sp = _spm().SentencePieceProcessor(model_proto=self.proto)
        if (self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id()) != (
            PAD,
            UNK,
            BOS,
            EOS,
        ):
            raise ConfigError(
                "This SentencePiece model does not use litzoo's special ids (<pad> 0, <unk> 1, <s> 2, </s> 3). "
                "Train it with pad_id=0 unk_id=1 bos_id=2 eos_id=3, or let litzoo train it from the data."
            )

    # --- training and (de)serialisation ----------------------------------------------------------
    @classmethod
    def train(
        cls,
        lines: Iterable[str],
        vocab_size: int,
        model_type: str = "unigram",
        character_coverage: float = 1.0,
        normalization: str = "nmt_nfkc",
        max_sentences: int = 1_000_000,
    ) -> SubwordVocab:
        """Train SentencePiece on `lines` (deterministic: one thread, no input shuffling).

        `vocab_size` is a soft limit (``hard_vocab_limit=False``) so a small corpus does not fail
        with "vocab size too large"; it gets the vocabulary the text supports.
        """
        if model_type not in MODEL_TYPES:
            raise ConfigError(
                f"data.vocab.model_type={model_type!r}: choose one of {', '.join(MODEL_TYPES)}."
            )
        writer = io.BytesIO()
        _spm().SentencePieceTrainer.train(
            sentence_iterator=iter(list(lines)[:max_sentences]),
            model_writer=writer,
            vocab_size=int(vocab_size),
            model_type=model_type,
            character_coverage=float(character_coverage),
            normalization_rule_name=normalization,
            pad_id=PAD,
            unk_id=UNK,
            bos_id=BOS,
            eos_id=EOS,
            hard_vocab_limit=False,
            num_threads=1,
            shuffle_input_sentence=False,
            minloglevel=2,
        )
        return cls(writer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> SubwordVocab:
        return cls(Path(path).read_bytes())

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(self.proto)
        tmp.replace(path)
        return path

    def to_state(self) -> dict[str, str]:
        """Plain data for hyper-parameters (checkpoints load weights-only)."""
        return {"kind": self.kind, "proto": base64.b64encode(self.proto).decode("ascii")}

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.proto).hexdigest()[:16]

    # --- use ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._sp.get_piece_size())

    def encode(self, text: str) -> list[int]:
        return list(self._sp.encode(text, out_type=int))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(ids) for ids in self._sp.encode(list(texts), out_type=int)]

    def pieces(self, text: str) -> list[str]:
        return list(self._sp.encode(text, out_type=str))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._sp.decode([int(i) for i in ids if int(i) > EOS]))


class HFVocab:
    """A local Hugging Face tokenizer directory used as a translation vocabulary (no network).

    Its own special tokens are mapped onto litzoo's four ids by offsetting: litzoo id = HF id + 4,
    so the model's special rows stay fixed whatever the tokenizer calls them.
    """

    kind = "hf"
    OFFSET = 4

    def __init__(self, path: str | Path) -> None:
        try:
            from transformers import AutoTokenizer
        except ImportError:
            raise DependencyError("tokenizer=hf needs `transformers`: pip install transformers.") from None
        self.path = str(Path(path).expanduser())
        if not Path(self.path).is_dir():
            raise ConfigError(
                f"data.vocab.path={self.path}: not a directory. Give a local Hugging Face tokenizer folder "
                "(with tokenizer.json or its vocab files)."
            )
        self._tok = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        self._special = set(self._tok.all_special_ids)

    def to_state(self) -> dict[str, str]:
        return {"kind": self.kind, "path": self.path}

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(repr(sorted(self._tok.get_vocab().items())).encode()).hexdigest()[:16]

    def __len__(self) -> int:
        return len(self._tok) + self.OFFSET

    def encode(self, text: str) -> list[int]:
        ids = self._tok(text, add_special_tokens=False)["input_ids"]
        return [i + self.OFFSET for i in ids]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: Sequence[int]) -> str:
        raw = [int(i) - self.OFFSET for i in ids if int(i) >= self.OFFSET]
        return str(
            self._tok.decode([i for i in raw if i not in self._special], clean_up_tokenization_spaces=False)
        )


def vocab_from_state(state: dict[str, Any]) -> SubwordVocab | HFVocab:
    """The vocabulary a task's hyper-parameters describe (:meth:`SubwordVocab.to_state`)."""
    if state.get("kind") == "hf":
        return HFVocab(state["path"])
    return SubwordVocab(base64.b64decode(state["proto"]))
