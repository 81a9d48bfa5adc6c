"""Machine-translation data: parallel text readers (line-aligned files, TSV), the embedded synthetic pair.

Importing this package does not import torch: the readers, the generated language pair and the layout
checks (`layouts.py`) run before anything heavy. The datamodules are in `.datamodule`.
"""

from litzoo.datamodules.translation.readers import read_parallel, read_tsv
from litzoo.datamodules.translation.synthetic import ensure_synthetic_pairs

__all__ = ["ensure_synthetic_pairs", "read_parallel", "read_tsv"]
