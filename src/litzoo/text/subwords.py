"""fastText's character n-grams and their hashing into buckets (Bojanowski et al., 2017).

A word is written with boundary symbols, ``<where>``, and every substring of ``min_n`` to
``max_n`` characters is one of its n-grams: ``<wh, whe, her, ere, re>`` for n = 3, and so on.
Each n-gram is hashed with 32-bit FNV-1a into one of ``buckets`` rows that n-grams share.
This module follows fastText's ``Dictionary::computeSubwords`` and ``Dictionary::hash`` to the
byte, so bucket ids (and so trained n-gram vectors) mean the same in fastText, gensim and here:

- n-grams are taken over the UTF-8 bytes, stepping by characters (continuation bytes
  ``10xxxxxx`` never start an n-gram, and a character is never cut);
- the lone boundary symbols ``<`` and ``>`` are not n-grams (only relevant when min_n is 1);
- the whole bracketed word is an n-gram too when it has at most ``max_n`` characters;
- the hash XORs each byte *sign-extended* to 32 bits (fastText casts ``char`` to ``int8_t``
  before ``uint32_t``), which changes the value of every non-ASCII n-gram.

Pure Python, no torch: the datamodules, models and the evaluation command all use it.
"""

from __future__ import annotations

from collections.abc import Iterable

BOW, EOW = "<", ">"
_FNV_OFFSET = 2166136261
_FNV_PRIME = 16777619
_MASK = 0xFFFFFFFF


def fasttext_hash(data: bytes | str) -> int:
    """fastText's 32-bit FNV-1a hash of a byte string (str is UTF-8 encoded first)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    h = _FNV_OFFSET
    for byte in data:
        h ^= byte | 0xFFFFFF00 if byte & 0x80 else byte  # int8_t sign extension, as fastText does
        h = (h * _FNV_PRIME) & _MASK
    return h


def char_ngrams(word: str, min_n: int = 3, max_n: int = 6) -> list[str]:
    """The character n-grams of `word` in fastText's order (by start position, then length)."""
    return [gram.decode("utf-8") for gram, _ in _ngrams_with_hashes(word, min_n, max_n)]


def ngram_buckets(word: str, min_n: int, max_n: int, buckets: int) -> list[int]:
    """The bucket of each n-gram of `word` (``hash % buckets``), in :func:`char_ngrams` order.

    Duplicates are kept, as fastText keeps them (``aaaa`` has ``aaa`` twice): a repeated n-gram
    weighs twice in the word's vector. ``buckets == 0`` or ``max_n < min_n`` gives no n-grams.
    """
    if buckets <= 0:
        return []
    return [h % buckets for _, h in _ngrams_with_hashes(word, min_n, max_n)]


def vocabulary_ngram_buckets(
    words: Iterable[str], min_n: int, max_n: int, buckets: int
) -> tuple[list[int], list[int]]:
    """The n-gram buckets of every word, flattened: ``(offsets, ids)`` with the buckets of word ``i``
    at ``ids[offsets[i]:offsets[i + 1]]`` (``offsets`` has one entry more than there are words)."""
    offsets, ids = [0], []
    for word in words:
        ids.extend(ngram_buckets(word, min_n, max_n, buckets))
        offsets.append(len(ids))
    return offsets, ids


def _ngrams_with_hashes(word: str, min_n: int, max_n: int) -> list[tuple[bytes, int]]:
    if min_n < 1 or max_n < min_n:
        return []
    data = (BOW + word + EOW).encode("utf-8")
    size = len(data)
    found: list[tuple[bytes, int]] = []
    for start in range(size):
        if data[start] & 0xC0 == 0x80:  # a UTF-8 continuation byte: not the start of a character
            continue
        h, end, n = _FNV_OFFSET, start, 0
        while end < size and n < max_n:
            # One more character: its first byte and its continuation bytes, hashed incrementally.
            while True:
                byte = data[end]
                h ^= byte | 0xFFFFFF00 if byte & 0x80 else byte
                h = (h * _FNV_PRIME) & _MASK
                end += 1
                if end >= size or data[end] & 0xC0 != 0x80:
                    break
            n += 1
            if n >= min_n and not (n == 1 and (start == 0 or end == size)):
                found.append((data[start:end], h))
    return found
