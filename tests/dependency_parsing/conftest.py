"""Shared fixtures of the dependency-parsing tests: a small generated treebank, a tiny BERT over its words."""

from __future__ import annotations

from pathlib import Path

import pytest

from litzoo.datamodules.dependency_parsing.treebank import ensure_toy_treebank

TREEBANK = {"num_train": 240, "num_dev": 60, "num_test": 60, "generator_seed": 5}
# A parser small enough to train a few steps in seconds.
TINY_PARSER = [
    "model.embed_dim=16",
    "model.char_dim=8",
    "model.char_out=16",
    "model.lstm_hidden=24",
    "model.lstm_layers=1",
    "model.arc_mlp=24",
    "model.rel_mlp=16",
]
FAST = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=4",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "data.batch_size=16",
]


def treebank_overrides(root: Path) -> list[str]:
    return [f"data.root={root}", *(f"data.{k}={v}" for k, v in TREEBANK.items())]


@pytest.fixture(scope="session")
def treebank_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_toy_treebank(
        tmp_path_factory.mktemp("treebank") / "toy",
        TREEBANK["num_train"],
        TREEBANK["num_dev"],
        TREEBANK["num_test"],
        TREEBANK["generator_seed"],
    )


@pytest.fixture(scope="session")
def tiny_bert_parser_checkpoint(tmp_path_factory: pytest.TempPathFactory, treebank_root: Path) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) whose WordPiece vocabulary holds the treebank's words."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from litzoo.text.conllu import read_treebank

    words = sorted(
        {
            w.form.lower()
            for s in read_treebank(next(treebank_root.glob("*-ud-train.conllu")))
            for w in s.words
        }
    )
    folder = tmp_path_factory.mktemp("bert") / "tiny"
    folder.mkdir()
    (folder / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n"
    )
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
