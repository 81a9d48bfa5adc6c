"""Language-modelling data: readers of WikiText, Penn Treebank and plain text, the embedded Shakespeare corpus.

Importing this package does not import torch: the readers, the embedded corpus and the layout
checks (`layouts.py`) run before anything heavy. The datamodules are in `.datamodule` and the
BPTT batching in `.bptt`.
"""

from litzoo.datamodules.language_model.embedded import ensure_shakespeare_corpus
from litzoo.datamodules.language_model.readers import (
    PTB_FILES,
    WIKITEXT_FILES,
    WIKITEXT_RAW_FILES,
    check_corpus_file,
    find_corpus_folder,
    iter_lines,
    read_lines,
)

__all__ = [
    "PTB_FILES",
    "WIKITEXT_FILES",
    "WIKITEXT_RAW_FILES",
    "check_corpus_file",
    "ensure_shakespeare_corpus",
    "find_corpus_folder",
    "iter_lines",
    "read_lines",
]
