"""The biaffine parser network: shapes, masking, features, pretrained vectors, and learning one batch exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from litzoo.datamodules.dependency_parsing.datamodule import ParserEncoding
from litzoo.models.dependency_parsing import create_biaffine_parser
from litzoo.text.conllu import read_treebank
from litzoo.text.dependency_trees import decode_heads
from litzoo.text.parser_inputs import ParserVocab

SAMPLE = Path("real") / "UD" / "en_ewt-ud-sample.conllu"


@pytest.fixture(autouse=True)
def one_thread():
    """Small networks run fastest on one thread (and do not fight other processes for the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def batch_and_vocab(fixtures_dir):
    sentences = read_treebank(fixtures_dir / SAMPLE)
    vocab = ParserVocab.build(sentences, min_freq=1)
    encoding = ParserEncoding(vocab)
    batch = encoding.collate(with_tree=True)(encoding.encode(sentences, with_tree=True))
    return batch, vocab, sentences


def network(parser_vocab: ParserVocab, **kwargs) -> torch.nn.Module:
    sizes = parser_vocab.settings()
    torch.manual_seed(0)
    return create_biaffine_parser(
        sizes["num_words"],
        sizes["num_rels"],
        sizes["num_chars"],
        sizes["num_upos"],
        sizes["num_xpos"],
        embed_dim=16,
        char_dim=8,
        char_out=16,
        tag_dim=8,
        lstm_hidden=32,
        lstm_layers=2,
        arc_mlp=32,
        rel_mlp=16,
        **kwargs,
    )


@pytest.mark.parametrize("features", [[], ["chars"], ["chars", "upos", "xpos"]])
def test_scores_have_the_biaffine_shapes_and_padding_never_heads(batch_and_vocab, features):
    batch, vocab, _ = batch_and_vocab
    net = network(vocab, features=features).eval()
    s_arc, s_rel = net(batch)
    size = batch["words"].shape[1]
    assert s_arc.shape == (4, size, size) and s_rel.shape == (4, size, size, len(vocab.relations))
    padding = batch["words"].eq(0)
    best_heads = s_arc.argmax(-1)
    assert not padding.gather(1, best_heads).any()  # no word picks a padding position as its head


def test_the_network_learns_one_batch_exactly(batch_and_vocab):
    batch, vocab, sentences = batch_and_vocab
    net = network(vocab, features=["chars", "upos"], embed_dropout=0.0, lstm_dropout=0.0, mlp_dropout=0.0)
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-3)
    mask = batch["words"].ne(0)
    mask[:, 0] = False
    for _ in range(100):
        s_arc, s_rel = net(batch)
        heads, rels = batch["heads"][mask], batch["rels"][mask]
        rel_scores = s_rel[mask][torch.arange(len(heads)), heads]
        loss = torch.nn.functional.cross_entropy(s_arc[mask], heads) + torch.nn.functional.cross_entropy(
            rel_scores, rels
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    net.eval()
    s_arc, s_rel = net(batch)
    lengths = batch["words"].ne(0).sum(-1) - 1
    decoded = decode_heads(s_arc, lengths, "mst")
    for b, sentence in enumerate(sentences):
        assert decoded[b, 1 : len(sentence) + 1].tolist() == sentence.heads


def test_pretrained_vectors_are_frozen_and_added_to_trainable_embeddings(batch_and_vocab, tmp_path):
    batch, vocab, _ = batch_and_vocab
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("google 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\nwhat " + " ".join(["0.5"] * 16) + "\n")
    net = network(vocab, embeddings=str(vectors), vocab=vocab.words)
    row = vocab.words.token_to_id("google")
    assert net.pretrained.weight[row].tolist() == [float(i) for i in range(1, 17)]
    assert not net.pretrained.weight.requires_grad and net.word_embed.weight.abs().sum() == 0
    rebuilt = network(
        vocab, embeddings=str(vectors), load_pretrained=False
    )  # from a checkpoint: no file read
    rebuilt.load_state_dict(net.state_dict())
    assert torch.equal(rebuilt.pretrained.weight, net.pretrained.weight)
    net.eval(), rebuilt.eval()
    assert torch.equal(net(batch)[0], rebuilt(batch)[0])
