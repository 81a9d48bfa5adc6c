"""Kim's textCNN: the four variants, padding invariance, max-norm, and learning the generated corpus."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from litzoo.datamodules.text_classification.corpus import ensure_sentiment_corpus
from litzoo.datamodules.text_classification.glue import read_glue_split
from litzoo.errors import ConfigError
from litzoo.models.text_classification import TEXTCNN_VARIANTS, TextCNN, build_textcnn
from litzoo.text.tokenizers import VocabEncoder, WordTokenizer
from litzoo.text.vocab import Vocab

VOCAB_SIZE = 30


def pretrained(dim: int = 8) -> torch.Tensor:
    weights = torch.randn(VOCAB_SIZE, dim, generator=torch.Generator().manual_seed(0))
    weights[0] = 0.0
    return weights


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([[5, 6, 7, 8, 9, 0, 0], [3, 0, 0, 0, 0, 0, 0], [4, 5, 6, 7, 8, 9, 10]])
    return ids, torch.tensor([5, 1, 7])


@pytest.mark.parametrize("variant", TEXTCNN_VARIANTS)
def test_variants_train_the_right_parameters(variant: str) -> None:
    torch.manual_seed(0)
    weights = None if variant == "rand" else pretrained()
    model = TextCNN(VOCAB_SIZE, 3, variant, embed_dim=8, pretrained=weights, num_filters=4)
    ids, lengths = batch()
    before = model.embedding.weight.detach().clone()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    logits = model(ids, lengths)
    assert logits.shape == (3, 3)
    F.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    optimizer.step()
    changed = not torch.equal(before, model.embedding.weight)
    assert changed == (variant != "static")
    assert torch.equal(model.embedding.weight[0], torch.zeros(8))  # padding row stays zero
    if weights is not None and variant != "rand":
        assert torch.equal(before, weights)
    if variant == "multichannel":
        assert model.static_embedding is not None
        assert torch.equal(model.static_embedding.weight, weights)  # the frozen channel never moves
        assert model.convs[0].in_channels == 16
    else:
        assert model.static_embedding is None and model.convs[0].in_channels == 8


def test_kim_defaults() -> None:
    model = TextCNN(VOCAB_SIZE, 2)
    assert [conv.kernel_size[0] for conv in model.convs] == [3, 4, 5]
    assert all(conv.out_channels == 100 for conv in model.convs)
    assert model.dropout.p == 0.5 and model.embedding.embedding_dim == 300
    assert model.classifier.in_features == 300
    assert model.embedding.weight[1:].abs().max() <= 0.25


def test_output_does_not_depend_on_padding() -> None:
    torch.manual_seed(0)
    model = TextCNN(VOCAB_SIZE, 2, embed_dim=8, num_filters=6).eval()
    ids, lengths = batch()
    padded = model(ids, lengths)
    for row in range(3):
        alone = model(ids[row : row + 1, : lengths[row]], lengths[row : row + 1])
        assert torch.allclose(alone, padded[row : row + 1], atol=1e-6)
    wider = torch.cat([ids, torch.zeros(3, 9, dtype=torch.long)], dim=1)
    assert torch.allclose(model(wider), padded, atol=1e-6)  # lengths inferred from padding id


def test_max_norm_constraint() -> None:
    model = TextCNN(VOCAB_SIZE, 2, embed_dim=8, num_filters=4, max_norm=3.0)
    with torch.no_grad():
        model.classifier.weight.mul_(100.0)
        model.classifier.weight[1] = 0.01
    small = model.classifier.weight[1].clone()
    model.apply_max_norm_()
    norms = model.classifier.weight.norm(dim=1)
    assert torch.allclose(norms[0], torch.tensor(3.0), atol=1e-5)
    assert torch.equal(model.classifier.weight[1], small)  # rows under the bound are untouched


def test_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs pretrained word vectors"):
        TextCNN(VOCAB_SIZE, 2, "static")
    with pytest.raises(ConfigError, match="shape"):
        TextCNN(VOCAB_SIZE + 1, 2, "non-static", pretrained=pretrained())
    with pytest.raises(ConfigError, match="embed_dim=300 but the word vectors have 8"):
        TextCNN(VOCAB_SIZE, 2, "non_static", embed_dim=300, pretrained=pretrained())
    with pytest.raises(ConfigError, match="Unknown textCNN variant"):
        TextCNN(VOCAB_SIZE, 2, "dynamic")
    with pytest.raises(ConfigError, match="model.embeddings"):
        build_textcnn(Vocab(["a"]), 2, "multichannel")


def test_build_from_word_vector_file(tmp_path: Path) -> None:
    path = tmp_path / "glove.txt"
    path.write_text("good 1 0 0 0\nbad -1 0 0 0\n")
    vocab = Vocab(["good", "bad", "film"])
    model, vectors = build_textcnn(vocab, 2, "multichannel", embeddings=path, num_filters=3)
    assert vectors is not None and (vectors.found, vectors.missing) == (2, 1)
    assert torch.equal(model.embedding.weight[vocab.token_to_id("bad")], torch.tensor([-1.0, 0, 0, 0]))
    assert model(torch.tensor([[3, 4, 5]])).shape == (1, 2)
    rand, none = build_textcnn(vocab, 2, "rand", embed_dim=16)
    assert none is None and rand.embedding.embedding_dim == 16


def to_tensors(ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(seq) for seq in ids])
    padded = torch.zeros(len(ids), int(lengths.max()), dtype=torch.long)
    for row, seq in enumerate(ids):
        padded[row, : len(seq)] = torch.tensor(seq)
    return padded, lengths


def test_textcnn_learns_the_generated_corpus(tmp_path: Path) -> None:
    """Plain-torch training on CPU: a small textCNN clears 0.85 dev accuracy within seconds."""
    torch.manual_seed(0)
    root = ensure_sentiment_corpus(tmp_path / "sentiment", seed=0)
    train, dev = read_glue_split(root, "sst2", "train"), read_glue_split(root, "sst2", "dev")
    tokenize = WordTokenizer()
    vocab = Vocab.build(tokenize(example.text_a) for example in train)
    encoder = VocabEncoder(vocab, tokenize, max_length=64)
    x_train, len_train = to_tensors(encoder.encode_examples(train.examples))
    x_dev, len_dev = to_tensors(encoder.encode_examples(dev.examples))
    y_train = torch.tensor([e.label for e in train])
    y_dev = torch.tensor([e.label for e in dev])
    model = TextCNN(len(vocab), 2, embed_dim=48, num_filters=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for _epoch in range(6):
        model.train()
        for index in torch.randperm(len(y_train)).split(50):
            loss = F.cross_entropy(model(x_train[index], len_train[index]), y_train[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            model.apply_max_norm_()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_dev, len_dev).argmax(dim=1) == y_dev).float().mean().item()
    assert accuracy >= 0.85, f"dev accuracy {accuracy:.3f} after {time.perf_counter() - start:.1f}s"
