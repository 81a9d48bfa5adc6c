"""Helpers for the text-classification platform tests: GLUE-format folders and a tiny BERT checkpoint.

The folders are written in the real GLUE layouts (CoLA without a header, STS-B with scores,
MNLI with dev_matched/dev_mismatched), filled with sentences of the embedded corpora so a
model can learn from them; the tiny BERT is a randomly initialised `BertModel` saved with
`save_pretrained` next to a fast WordPiece tokenizer, so the checkpoint-directory path of
`model=hf_encoder` runs end to end without any download.
"""

from __future__ import annotations

from pathlib import Path

from conftest import FAST_RUN

from litzoo.datamodules.text_classification import (
    WordTokenizer,
    ensure_paraphrase_corpus,
    ensure_sentiment_corpus,
    read_glue_split,
)

# Overrides that make a text run take seconds.
TEXT_TINY = [*FAST_RUN, "callbacks.step_checkpoint=null", "data.batch_size=16"]
# A small textCNN (the default has 300-d embeddings and 3 x 100 filters).
SMALL_TEXTCNN = ["model.embed_dim=32", "model.num_filters=16"]


def corpora(root: Path) -> tuple[Path, Path]:
    """The embedded sentiment (SST-2 format) and paraphrase (MRPC format) corpora under `root`."""
    return ensure_sentiment_corpus(root / "sentiment"), ensure_paraphrase_corpus(root / "paraphrase")


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_cola(root: Path, sentiment: Path, num_train: int = 300, num_dev: int = 120) -> Path:
    """CoLA layout (no header: source, label, original label, sentence) with sentiment sentences."""
    for split, name, count in (("train", "train.tsv", num_train), ("dev", "dev.tsv", num_dev)):
        rows = read_glue_split(sentiment, "sst2", split).examples[:count]
        _write(root / name, [f"gj04\t{e.label}\t{'' if e.label else '*'}\t{e.text_a}" for e in rows])
    return root


STSB_HEADER = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"


def write_stsb(root: Path, paraphrase: Path, num_train: int = 300, num_dev: int = 120) -> Path:
    """STS-B layout (pair scores 0-5) from paraphrase pairs: paraphrases score high, the others low."""
    for split, count in (("train", num_train), ("dev", num_dev)):
        rows = read_glue_split(paraphrase, "mrpc", split).examples[:count]
        lines = [STSB_HEADER]
        for i, e in enumerate(rows):
            score = (3.6 if e.label else 0.6) + (i % 7) / 5
            lines.append(
                f"{i}\tmain-news\tnews\t2012\t{i:04d}\tnone\tnone\t{e.text_a}\t{e.text_b}\t{score:.3f}"
            )
        _write(root / f"{split}.tsv", lines)
    return root


MNLI_TRAIN_HEADER = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
    "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label"
)
MNLI_DEV_HEADER = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
    "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\t"
    "gold_label"
)


def write_mnli(root: Path, paraphrase: Path, num_train: int = 300, num_dev: int = 60) -> Path:
    """MNLI layout: train.tsv, dev_matched.tsv, dev_mismatched.tsv with three classes."""

    def label(i: int, paraphrased: int) -> str:
        return "entailment" if paraphrased else ("contradiction" if i % 2 else "neutral")

    train = read_glue_split(paraphrase, "mrpc", "train").examples
    dev = read_glue_split(paraphrase, "mrpc", "dev").examples
    lines = [MNLI_TRAIN_HEADER]
    for i, e in enumerate(train[:num_train]):
        gold = label(i, e.label)
        lines.append(
            f"{i}\t{i}\t{i}n\tnews\t( )\t( )\t(ROOT)\t(ROOT)\t{e.text_a}\t{e.text_b}\t{gold}\t{gold}"
        )
    _write(root / "train.tsv", lines)
    for name, part in (
        ("dev_matched.tsv", dev[:num_dev]),
        ("dev_mismatched.tsv", dev[num_dev : 2 * num_dev]),
    ):
        lines = [MNLI_DEV_HEADER]
        for i, e in enumerate(part):
            gold = label(i, e.label)
            lines.append(
                f"{i}\t{i}\t{i}n\tslate\t( )\t( )\t(ROOT)\t(ROOT)\t{e.text_a}\t{e.text_b}\t"
                f"{gold}\t{gold}\t{gold}\t{gold}\t{gold}\t{gold}"
            )
        _write(root / name, lines)
    return root


def write_tiny_bert(folder: Path, corpus_roots: list[tuple[Path, str]], extra_words: int = 0) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) and a fast WordPiece tokenizer over the corpora's words."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    tokenize = WordTokenizer()
    words: set[str] = set()
    for root, task in corpus_roots:
        for example in read_glue_split(root, task, "train"):
            words.update(tokenize(example.text_a))
            words.update(tokenize(example.text_b or ""))
    vocab = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *sorted(words),
        *(f"extra{i}" for i in range(extra_words)),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(str(folder / "vocab.txt"), model_max_length=128)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
