"""Layout checks of the word-embedding data (torch-free; run before anything heavy is imported).

A data config names one with `layout: litzoo.datamodules.word_embedding.layouts.<function>`. Both
read the evaluation files too (they are small), so an evaluation file in an unknown format is
refused before training starts, with the accepted formats listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litzoo.errors import ConfigError, DataError


def check_evaluation_files(data: Mapping[str, Any]) -> None:
    """The evaluation files exist and each is a similarity or analogy file in a known format."""
    from litzoo.text.evaluation_sets import read_evaluation_sets

    eval_dir, eval_files = data.get("eval_dir"), data.get("eval_files")
    if eval_dir and not Path(str(eval_dir)).expanduser().is_dir():
        raise DataError(
            f"data.eval_dir={eval_dir} is not a folder. Give the folder of the evaluation files, or leave "
            "it null for the embedded WordSim353, SimLex-999 and Google analogy sets."
        )
    from litzoo.text.evaluation_sets import evaluation_files

    read_evaluation_sets(evaluation_files(eval_dir, list(eval_files) if eval_files else None))


def check_text_corpus(data: Mapping[str, Any]) -> None:
    """`data.path` is a corpus file or a folder with corpus files, and the evaluation files are readable."""
    from litzoo.datamodules.word_embedding.corpus import corpus_files

    if not data.get("path"):
        raise ConfigError(
            "data=text_corpus needs data.path: a tokenised text file (one sentence or document per line, words "
            "separated by spaces; plain or .gz) or a folder of such files, e.g. data.path=/data/text8."
        )
    corpus_files(str(data["path"]))
    _check_counts(data)
    check_evaluation_files(data)


def check_embedded_corpus(data: Mapping[str, Any]) -> None:
    """gensim's test data is there (the embedded corpus is made from it) and the evaluation files are readable."""
    from litzoo.datamodules.word_embedding.embedded import gensim_test_data

    gensim_test_data()
    _check_counts(data)
    check_evaluation_files(data)


def _check_counts(data: Mapping[str, Any]) -> None:
    for key in ("min_count", "block_tokens", "max_sentence_length", "batch_size"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"data.{key}={value!r}: give a positive integer.")
    if data.get("max_vocab_size") is not None and int(data["max_vocab_size"]) < 1:
        raise ConfigError(
            f"data.max_vocab_size={data['max_vocab_size']}: give a positive number of words, or null."
        )
