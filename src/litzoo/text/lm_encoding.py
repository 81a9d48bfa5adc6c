"""Text -> token ids for language models: a word vocabulary, a local subword tokenizer, or a BPE trained here.

Three kinds, chosen by the model config's `tokenizer` entry (the task config wires it into
`data.tokenizer`):

- `word`: the standard word-level setup of WikiText/PTB language modelling (Merity et al.,
  GluonNLP, salesforce/awd-lstm-lm): each line is split on whitespace and ends with `<eos>`;
  the vocabulary is every token of the training split (`min_freq`/`max_size` can bound it) plus
  `<unk>` for what it lacks, saved as `<run_dir>/vocab.json`. The ids follow
  :class:`~litzoo.text.vocab.Vocab` (`<pad>` = 0, `<unk>` = 1, `<eos>` = 2, then by frequency),
  so the vocabulary has one entry (`<pad>`) more than the usual 33,278 of WikiText-2; no
  target is ever `<pad>`.
- `hf`: a Hugging Face fast tokenizer from a local checkpoint directory (GPT-2's byte-level
  BPE, ...); each line is encoded with its newline, which the byte-level BPE keeps as a token.
- `bpe`: a byte-level BPE trained on the training split with the `tokenizers` library (no
  download), with `<|endoftext|>` as its only special token; afterwards it is used as `hf`.

Subword tokenizers are saved into `<run_dir>/tokenizer/`, so evaluation and generation read
text exactly as training did. Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from litzoo.errors import CheckpointError, ConfigError, DataError
from litzoo.text.vocab import PAD_TOKEN, UNK_TOKEN, Vocab

EOS_TOKEN = "<eos>"
BPE_EOS_TOKEN = "<|endoftext|>"
VOCAB_FILE = "vocab.json"
TOKENIZER_DIR = "tokenizer"
KINDS = ("word", "hf", "bpe")
_ENCODE_CHUNK = 4096  # lines per tokenizer call for subword tokenizers


class LMEncoding:
    """How a language model reads text: lines -> one flat id stream (`encode_lines`) and back (`decode`).

    Built from the training lines (`from_settings`) or loaded from a run directory (`load`).
    """

    def __init__(
        self,
        kind: str,
        *,
        vocab: Vocab | None = None,
        tokenizer: Any = None,
        lowercase: bool = False,
        source: str | None = None,
    ) -> None:
        if kind not in ("word", "hf"):
            raise ConfigError(f"Unknown language-model encoding {kind!r}; use one of {', '.join(KINDS)}.")
        if kind == "word" and vocab is None:
            raise ConfigError("A word encoding needs its vocabulary.")
        if kind == "hf" and tokenizer is None:
            raise ConfigError("A subword encoding needs its tokenizer.")
        self.kind, self.vocab, self.tokenizer = kind, vocab, tokenizer
        self.lowercase, self.source = lowercase, source

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None, train_lines: Iterable[str]) -> LMEncoding:
        """The encoding the model's tokenizer entry asks for; vocabularies and BPEs come from `train_lines`."""
        if not settings:
            raise ConfigError(
                "data.tokenizer is not set, so the datamodule does not know how the model reads text. "
                "task=language_model fills it from the model's `tokenizer` entry: use a language model "
                "(model=lstm_lm, awd_lstm, gpt2_small or hf_causal_lm)."
            )
        kind = settings.get("kind")
        if kind == "word":
            lowercase = bool(settings.get("lowercase", False))
            min_freq, max_size = int(settings.get("min_freq", 1)), settings.get("max_size")
            counts: Counter[str] = Counter()
            for line in train_lines:
                counts.update((line.lower() if lowercase else line).split())
            specials = {PAD_TOKEN, UNK_TOKEN, EOS_TOKEN}
            kept = sorted(
                ((t, c) for t, c in counts.items() if c >= min_freq and t not in specials),
                key=lambda item: (-item[1], item[0]),
            )
            if max_size is not None:
                kept = kept[: int(max_size)]
            vocab = Vocab([t for t, _ in kept], extra_specials=(EOS_TOKEN,), counts=dict(kept))
            return cls("word", vocab=vocab, lowercase=lowercase)
        if kind == "hf":
            pretrained = settings.get("pretrained")
            if not pretrained:
                raise ConfigError(
                    "data.tokenizer.kind=hf needs `pretrained`: the checkpoint whose tokenizer to use."
                )
            from litzoo.text.pretrained import load_tokenizer

            return cls("hf", tokenizer=load_tokenizer(pretrained), source=str(pretrained))
        if kind == "bpe":
            return cls(
                "hf",
                tokenizer=train_bpe(
                    train_lines, int(settings.get("vocab_size", 8000)), int(settings.get("min_frequency", 2))
                ),
                source="bpe",
            )
        raise ConfigError(
            f"data.tokenizer.kind={kind!r} is unknown; a language model's tokenizer entry says `kind: word` (a "
            "vocabulary of the training split's words), `kind: bpe` (a byte-level BPE trained on it) or `kind: hf` "
            "(a local checkpoint's tokenizer)."
        )

    @classmethod
    def load(cls, run_dir: str | Path, settings: Mapping[str, Any], check: bool = True) -> LMEncoding:
        """The encoding a run saved; `settings` is the `encoding` entry of the checkpoint's data info
        (with `check`, an encoding that gives other ids than those settings describe is refused)."""
        run_dir = Path(run_dir)
        if settings.get("kind") == "word":
            vocab = Vocab.load(run_dir / VOCAB_FILE)
            encoding = cls("word", vocab=vocab, lowercase=bool(settings.get("lowercase", False)))
        elif settings.get("kind") == "hf":
            folder = run_dir / TOKENIZER_DIR
            if not folder.is_dir():
                raise CheckpointError(
                    f"{folder} not found: training saves the tokenizer there so that evaluation and generation read "
                    "text the same way. Point to the run directory of the checkpoint."
                )
            from litzoo.text.pretrained import load_tokenizer

            encoding = cls("hf", tokenizer=load_tokenizer(folder), source=str(folder))
        else:
            raise CheckpointError(
                f"Unknown text encoding {settings.get('kind')!r} in the checkpoint; it was not "
                "written by this version of litzoo."
            )
        if check:
            encoding.check_matches(settings, run_dir)
        return encoding

    # -- what the model and the run directory need -----------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self.vocab) if self.vocab is not None else len(self.tokenizer)

    @property
    def eos_id(self) -> int | None:
        if self.vocab is not None:
            return self.vocab.token_to_id(EOS_TOKEN)
        return self.tokenizer.eos_token_id

    @property
    def pad_id(self) -> int:
        """A padding id for batches of uneven windows (never scored)."""
        if self.vocab is not None:
            return self.vocab.pad_id
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else (self.tokenizer.eos_token_id or 0))

    def fingerprint(self) -> str:
        """A short hash of the id assignment: two encodings with the same one give the same ids."""
        if self.vocab is not None:
            text = "\n".join(self.vocab.itos)
        else:
            vocab = self.tokenizer.get_vocab()
            text = "\n".join(sorted(f"{token}\t{index}" for token, index in vocab.items()))
        return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]

    def settings(self) -> dict[str, Any]:
        """Plain-data description, saved with the model: enough to load this encoding from a run directory."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "vocab_size": self.vocab_size,
            "eos_id": self.eos_id,
            "pad_id": self.pad_id,
            "fingerprint": self.fingerprint(),
        }
        if self.kind == "word":
            out.update(lowercase=self.lowercase, file=VOCAB_FILE)
        else:
            out.update(source=self.source, file=TOKENIZER_DIR)
        return out

    def check_matches(self, settings: Mapping[str, Any], where: str | Path) -> None:
        """Refuse an encoding that would give other ids than the ones `settings` describes."""
        expected = settings.get("fingerprint")
        if (
            settings.get("kind") != self.kind
            or int(settings.get("vocab_size", -1)) != self.vocab_size
            or (expected and expected != self.fingerprint())
        ):
            raise CheckpointError(
                f"The {'vocabulary' if self.kind == 'word' else 'tokenizer'} in {where} ({self.kind}, "
                f"{self.vocab_size} entries, fingerprint {self.fingerprint()}) is not the one the checkpoint's model "
                f"was trained with ({settings.get('kind')}, {settings.get('vocab_size')} entries, fingerprint "
                f"{expected}). Use the run directory the checkpoint came from, or train a new run on this data."
            )

    def save(self, run_dir: str | Path) -> Path:
        """Write `vocab.json` or the tokenizer files (`tokenizer/`) into `run_dir`."""
        run_dir = Path(run_dir)
        if self.vocab is not None:
            return self.vocab.save(run_dir / VOCAB_FILE)
        folder = run_dir / TOKENIZER_DIR
        self.tokenizer.save_pretrained(str(folder))
        config = Path(self.source or "") / "config.json"
        if self.source and config.is_file() and folder.resolve() != config.parent.resolve():
            # The architecture of a local checkpoint, so that its fine-tuned weights can be rebuilt from
            # the run directory alone (no weights are copied).
            shutil.copyfile(config, folder / "config.json")
        return folder

    # -- encoding ------------------------------------------------------------------------------

    def encode_lines(self, lines: Iterable[str], skip_empty: bool = False) -> np.ndarray:
        """One id stream for `lines` (int32): words + `<eos>` per line, or each line's subword ids."""
        chunks: list[np.ndarray] = []
        if self.vocab is not None:
            stoi, unk, eos = self.vocab.stoi, self.vocab.unk_id, self.eos_id
            ids: list[int] = []
            for line in lines:
                words = (line.lower() if self.lowercase else line).split()
                if not words and skip_empty:
                    continue
                ids.extend([stoi.get(w, unk) for w in words])
                ids.append(eos)
                if len(ids) > 1_000_000:
                    chunks.append(np.asarray(ids, dtype=np.int32))
                    ids = []
            chunks.append(np.asarray(ids, dtype=np.int32))
        else:
            batch: list[str] = []
            for line in lines:
                if skip_empty and not line.strip():
                    continue
                batch.append(line if line.endswith("\n") else line + "\n")
                if len(batch) == _ENCODE_CHUNK:
                    chunks.append(self._encode_subwords(batch))
                    batch = []
            chunks.append(self._encode_subwords(batch))
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)

    def _encode_subwords(self, lines: list[str]) -> np.ndarray:
        if not lines:
            return np.zeros(0, dtype=np.int32)
        encoded = self.tokenizer(lines, add_special_tokens=False)["input_ids"]
        return np.fromiter((i for row in encoded for i in row), dtype=np.int32)

    def encode_text(self, text: str) -> list[int]:
        """Ids of a prompt: its words (no `<eos>` appended) or its subwords."""
        if self.vocab is not None:
            return self.vocab.encode((text.lower() if self.lowercase else text).split())
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`: words joined by spaces with `<eos>` as a line break, or the tokenizer's decoding."""
        if self.vocab is not None:
            words = [self.vocab.id_to_token(int(i)) for i in ids]
            return " ".join(words).replace(f" {EOS_TOKEN} ", "\n").replace(EOS_TOKEN, "\n")
        return self.tokenizer.decode([int(i) for i in ids])

    def oov_rate(self, ids: np.ndarray) -> float:
        """Share of `<unk>` in an encoded split (word encodings; 0 for subwords)."""
        if self.vocab is None or ids.size == 0:
            return 0.0
        return float(np.count_nonzero(ids == self.vocab.unk_id)) / ids.size


def train_bpe(lines: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Any:
    """A byte-level BPE (GPT-2's scheme) trained on `lines`, as a transformers fast tokenizer."""
    if vocab_size < 257:
        raise ConfigError(
            f"data.tokenizer.vocab_size={vocab_size} is too small for a byte-level BPE (256 bytes + "
            "<|endoftext|> at least); use e.g. 8000."
        )
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        (line + "\n" for line in lines),
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[BPE_EOS_TOKEN],
        show_progress=False,
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        eos_token=BPE_EOS_TOKEN,
        bos_token=BPE_EOS_TOKEN,
        unk_token=BPE_EOS_TOKEN,
    )
    if len(tokenizer) < 2:
        raise DataError("The BPE learned no merges: the training split holds (almost) no text.")
    return tokenizer
