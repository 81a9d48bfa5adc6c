"""Shared fixtures of the question-answering tests: a small generated SQuAD 2.0 set, a tiny BERT."""

from __future__ import annotations

from pathlib import Path

import pytest

from litzoo.datamodules.question_answering import ensure_toy_squad

TOY = {"num_train": 24, "num_dev": 8, "generator_seed": 3}
FAST = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=4",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "data.batch_size=8",
]


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_toy_squad(
        tmp_path_factory.mktemp("squad") / "toy",
        "2.0",
        TOY["num_train"],
        TOY["num_dev"],
        TOY["generator_seed"],
    )


@pytest.fixture(scope="session")
def tiny_qa_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with MiniLM's real uncased WordPiece tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    from litzoo.text.pretrained import load_tokenizer, minilm_l6_path

    folder = tmp_path_factory.mktemp("bert") / "tiny"
    tokenizer = load_tokenizer(minilm_l6_path())
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def qa_overrides(root: Path, bert: Path) -> list[str]:
    return [
        "task=question_answering",
        *FAST,
        f"data.root={root}",
        f"model.pretrained={bert}",
        "model=hf_encoder",
        *(f"data.{k}={v}" for k, v in TOY.items()),
        "optim.lr=1e-3",
    ]
