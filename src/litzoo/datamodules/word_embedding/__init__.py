"""Word-embedding data: streamed tokenised corpora, the training vocabulary, embedded corpora from gensim's
test data (``enwiki_sample`` through wikifil, ``lee``), and the evaluation sets (in :mod:`litzoo.text`).

Importing this package does not import torch; the datamodules are in
:mod:`litzoo.datamodules.word_embedding.datamodule`.
"""

from litzoo.datamodules.word_embedding.corpus import BlockReader, CorpusIndex, corpus_files, index_corpus
from litzoo.datamodules.word_embedding.embedded import ensure_enwiki_sample, ensure_lee_corpus, wikifil
from litzoo.datamodules.word_embedding.vocabulary import VOCAB_FILE, WordCounts

__all__ = [
    "VOCAB_FILE",
    "BlockReader",
    "CorpusIndex",
    "WordCounts",
    "corpus_files",
    "ensure_enwiki_sample",
    "ensure_lee_corpus",
    "index_corpus",
    "wikifil",
]
