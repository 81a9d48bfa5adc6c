"""Dependency parsing data: CoNLL-U / CoNLL-X treebanks and the embedded, generated UD-format treebank.

Torch-free: `litzoo.text.conllu` reads and writes the files, `treebank.ensure_toy_treebank` writes
the embedded default, `layouts` checks a user's treebank folder before anything heavy starts.
"""

from litzoo.datamodules.dependency_parsing.treebank import ensure_toy_treebank, generate_treebank
from litzoo.text.conllu import Sentence, Word, format_sentence, parse_treebank, read_treebank, write_treebank

__all__ = [
    "Sentence",
    "Word",
    "ensure_toy_treebank",
    "format_sentence",
    "generate_treebank",
    "parse_treebank",
    "read_treebank",
    "write_treebank",
]
