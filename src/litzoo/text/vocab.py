"""A word vocabulary built from the training split, saved next to the run for evaluation and prediction.

Index layout: `<pad>` = 0, `<unk>` = 1, then any extra special tokens (by default
`<sep>`, used to join the two texts of a pair), then the regular tokens by
decreasing frequency with ties broken alphabetically, so the same corpus
always gives the same ids. `min_freq` and `max_size` (regular tokens only,
specials not counted) bound the vocabulary; everything else maps to `<unk>`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from litzoo.errors import CheckpointError, ConfigError

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
SEP_TOKEN = "<sep>"
_FORMAT = "litzoo.vocab"
_FORMAT_VERSION = 1


class Vocab:
    """Token <-> id mapping with padding and unknown tokens at fixed ids 0 and 1."""

    def __init__(
        self,
        tokens: Sequence[str],
        extra_specials: Sequence[str] = (SEP_TOKEN,),
        counts: dict[str, int] | None = None,
    ) -> None:
        """`tokens` are the regular tokens in id order; specials are placed in front of them."""
        specials = [PAD_TOKEN, UNK_TOKEN, *extra_specials]
        if len(set(specials)) != len(specials):
            raise ConfigError(f"Special tokens {specials} must be distinct.")
        clashes = sorted(set(tokens) & set(specials))
        if clashes:
            raise ConfigError(f"Regular tokens {clashes} collide with special tokens; rename the specials.")
        self.specials: tuple[str, ...] = tuple(specials)
        self.itos: list[str] = [*specials, *tokens]
        if len(set(self.itos)) != len(self.itos):
            raise ConfigError("Vocabulary tokens must be unique.")
        self.stoi: dict[str, int] = {token: i for i, token in enumerate(self.itos)}
        self.counts: dict[str, int] = dict(counts or {})

    @classmethod
    def build(
        cls,
        token_lists: Iterable[Sequence[str]],
        min_freq: int = 1,
        max_size: int | None = None,
        extra_specials: Sequence[str] = (SEP_TOKEN,),
    ) -> Vocab:
        """Count tokens over `token_lists` (e.g. the tokenized training texts) and keep the frequent ones."""
        if min_freq < 1:
            raise ConfigError(f"vocab min_freq must be >= 1, got {min_freq}.")
        if max_size is not None and max_size < 0:
            raise ConfigError(f"vocab max_size must be >= 0 or null, got {max_size}.")
        counter: Counter[str] = Counter()
        for tokens in token_lists:
            counter.update(tokens)
        specials = {PAD_TOKEN, UNK_TOKEN, *extra_specials}
        kept = sorted(
            (
                (token, count)
                for token, count in counter.items()
                if count >= min_freq and token not in specials
            ),
            key=lambda item: (-item[1], item[0]),
        )
        if max_size is not None:
            kept = kept[:max_size]
        return cls([token for token, _ in kept], extra_specials, counts=dict(kept))

    # ------------------------------------------------------------------ lookups

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    @property
    def sep_id(self) -> int | None:
        return self.stoi.get(SEP_TOKEN)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos and self.specials == other.specials

    def __hash__(self) -> int:
        return hash(tuple(self.itos))

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, specials={list(self.specials)})"

    def token_to_id(self, token: str) -> int:
        return self.stoi.get(token, self.unk_id)

    def id_to_token(self, index: int) -> str:
        return self.itos[index]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Ids of `tokens`; unknown tokens become `unk_id`."""
        stoi, unk = self.stoi, self.unk_id
        return [stoi.get(token, unk) for token in tokens]

    def decode(self, ids: Iterable[int], skip_padding: bool = True) -> list[str]:
        """Tokens of `ids`, dropping padding by default."""
        return [self.itos[i] for i in ids if not (skip_padding and i == self.pad_id)]

    def oov_rate(self, token_lists: Iterable[Sequence[str]]) -> float:
        """Share of tokens not in the vocabulary (useful to log for dev/test splits)."""
        total = unknown = 0
        for tokens in token_lists:
            total += len(tokens)
            unknown += sum(token not in self.stoi for token in tokens)
        return unknown / total if total else 0.0

    # ------------------------------------------------------------------ persistence

    def to_dict(self) -> dict:
        regular = self.itos[len(self.specials) :]
        return {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "specials": list(self.specials),
            "tokens": regular,
            "counts": [self.counts.get(token, 0) for token in regular],
        }

    def save(self, path: str | Path) -> Path:
        """Write the vocabulary as JSON (UTF-8, one file); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by `save` (typically `<run dir>/vocab.json`)."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(
                f"Vocabulary file {path} not found. Training a textCNN writes vocab.json into the run "
                "directory; point to that run directory (or its vocab.json) so evaluation uses the same ids."
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(
                f"Vocabulary file {path} is not valid JSON ({error}); it is corrupt."
            ) from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise CheckpointError(f"{path} is not a litzoo vocabulary file (missing format={_FORMAT!r}).")
        if data.get("version", 0) > _FORMAT_VERSION:
            raise CheckpointError(
                f"{path} was written by a newer litzoo (vocab format {data['version']}); upgrade litzoo."
            )
        specials = data["specials"]
        if specials[:2] != [PAD_TOKEN, UNK_TOKEN]:
            raise CheckpointError(f"{path}: the first special tokens must be {PAD_TOKEN} and {UNK_TOKEN}.")
        tokens = data["tokens"]
        counts = dict(zip(tokens, data.get("counts", [])))
        return cls(tokens, extra_specials=specials[2:], counts=counts)
