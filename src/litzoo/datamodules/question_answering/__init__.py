"""Question-answering data: the SQuAD 1.1/2.0 reader, the embedded generated set, layout checks.

* `read_squad(path, version, bad_samples)`: an official SQuAD JSON file, every field checked;
* `ensure_toy_squad(root, version=...)`: writes the embedded stand-in in the same format;
* `find_squad_files(root, version, files)`: which file is which split.

The datamodules are in :mod:`litzoo.datamodules.question_answering.datamodule` (they import torch;
this package does not).
"""

from litzoo.datamodules.question_answering.layouts import find_squad_files
from litzoo.datamodules.question_answering.squad import (
    SquadAnswer,
    SquadExample,
    SquadFile,
    gold_answers,
    read_squad,
    write_squad,
)
from litzoo.datamodules.question_answering.toy_squad import ensure_toy_squad, generate_articles

__all__ = [
    "SquadAnswer",
    "SquadExample",
    "SquadFile",
    "ensure_toy_squad",
    "find_squad_files",
    "generate_articles",
    "gold_answers",
    "read_squad",
    "write_squad",
]
