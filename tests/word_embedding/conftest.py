"""Shared fixtures of the word-embedding tests: the embedded corpora and gensim's bundled files."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("gensim")


@pytest.fixture(scope="session")
def gensim_data() -> Path:
    from litzoo.text.evaluation_sets import gensim_test_data

    return gensim_test_data()


@pytest.fixture(scope="session")
def lee_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded Lee corpus (one tokenised story per line) written once per session."""
    from litzoo.datamodules.word_embedding.embedded import ensure_lee_corpus

    return ensure_lee_corpus(tmp_path_factory.mktemp("corpora"))
