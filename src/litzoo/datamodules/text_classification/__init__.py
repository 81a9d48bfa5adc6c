"""Text-classification data: readers for real on-disk formats, generated corpora, vocabularies, tokenizers.

Every reader returns a `TextSplit` of `TextExample`s:

* `read_glue_split(root, "sst2" | "mrpc" | "mnli" | ..., split)`: GLUE TSVs as distributed;
* `read_trec_split(root, split)`: TREC `LABEL:sub question` files;
* `read_imdb_split(root, split)`: the `aclImdb/{train,test}/{pos,neg}/*.txt` tree;
* `read_tabular_split(path, text_column=..., label_column=...)`: users' CSV/TSV/JSONL.

`ensure_sentiment_corpus` / `ensure_paraphrase_corpus` write the embedded,
generated stand-ins in SST-2 / MRPC format. Importing this package does not
import torch or transformers.
"""

from litzoo.datamodules.text_classification.corpus import ensure_paraphrase_corpus, ensure_sentiment_corpus
from litzoo.datamodules.text_classification.glue import GLUE_TASKS, GlueTask, get_glue_task, read_glue_split
from litzoo.datamodules.text_classification.imdb import IMDB_LABELS, read_imdb_split
from litzoo.datamodules.text_classification.tabular import infer_label_names, read_tabular_split
from litzoo.datamodules.text_classification.trec import TREC_COARSE_LABELS, TREC_FINE_LABELS, read_trec_split
from litzoo.text.examples import TextExample, TextSplit
from litzoo.text.tokenizers import HFTextEncoder, TruncationStats, VocabEncoder, WordTokenizer
from litzoo.text.vocab import PAD_TOKEN, SEP_TOKEN, UNK_TOKEN, Vocab

__all__ = [
    "GLUE_TASKS",
    "IMDB_LABELS",
    "PAD_TOKEN",
    "SEP_TOKEN",
    "TREC_COARSE_LABELS",
    "TREC_FINE_LABELS",
    "UNK_TOKEN",
    "GlueTask",
    "HFTextEncoder",
    "TextExample",
    "TextSplit",
    "TruncationStats",
    "Vocab",
    "VocabEncoder",
    "WordTokenizer",
    "ensure_paraphrase_corpus",
    "ensure_sentiment_corpus",
    "get_glue_task",
    "infer_label_names",
    "read_glue_split",
    "read_imdb_split",
    "read_tabular_split",
    "read_trec_split",
]
