"""The deep biaffine dependency parser (Dozat & Manning, ICLR 2017), with a BiLSTM or a transformer encoder.

Both networks map a batch of sentences (the artificial root at position 0) to

- arc scores ``[B, N, N]``: ``s_arc[b, d, h]`` = score of word ``h`` heading word ``d``
  (a biaffine product of a dependent and a head MLP view of each word);
- relation scores ``[B, N, N, R]``: ``s_rel[b, d, h, r]`` = score of relation ``r`` on the
  arc ``h -> d`` (a bilinear form with biases over two other MLP views);

which the task turns into a loss (cross-entropy over heads, and over relations at the gold
head) and into trees (`litzoo.text.dependency_trees`).

:func:`create_biaffine_parser` is Dozat & Manning's network: word embeddings (trainable, plus
optional frozen pretrained vectors added to them), a character-level LSTM and/or UPOS/XPOS
embeddings, embedding dropout, a multi-layer BiLSTM, LeakyReLU MLPs with dropout. The default
sizes are the paper's (embeddings 100, 3 x 400 BiLSTM, arc MLP 500, relation MLP 100, dropout 0.33).

:func:`create_transformer_parser` replaces embeddings and BiLSTM by a local Hugging Face encoder
read with first-subword pooling (each word is its first subword's last hidden state; the root
is the first special token, `[CLS]`), optionally with tag embeddings concatenated.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from litzoo.errors import ConfigError
from litzoo.models.dependency_parsing_checks import FEATURES


class SharedDropout(nn.Module):
    """Dropout with one mask per sequence, shared over time steps (Gal & Ghahramani; Dozat & Manning)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, N, D]
        if not self.training or self.p == 0:
            return x
        mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - self.p) / (1 - self.p)
        return x * mask


class MLP(nn.Module):
    def __init__(self, n_in: int, n_out: int, dropout: float) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.activation = nn.LeakyReLU(0.1)
        self.dropout = SharedDropout(dropout)
        nn.init.orthogonal_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.activation(self.linear(x)))


class Biaffine(nn.Module):
    """``s[b, o, d, h] = [x_d; 1]^T W_o [y_h; 1]`` (bias terms on the chosen sides)."""

    def __init__(self, n_in: int, n_out: int = 1, bias_x: bool = True, bias_y: bool = True) -> None:
        super().__init__()
        self.n_out, self.bias_x, self.bias_y = n_out, bias_x, bias_y
        self.weight = nn.Parameter(torch.zeros(n_out, n_in + bias_x, n_in + bias_y))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.bias_x:
            x = torch.cat((x, torch.ones_like(x[..., :1])), dim=-1)
        if self.bias_y:
            y = torch.cat((y, torch.ones_like(y[..., :1])), dim=-1)
        return torch.einsum("bxi,oij,byj->boxy", x, self.weight, y)


class CharLSTM(nn.Module):
    """A word's characters through a BiLSTM; its final states projected to `n_out` (one vector per word)."""

    def __init__(self, num_chars: int, char_dim: int, n_out: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.lstm = nn.LSTM(char_dim, n_out // 2, batch_first=True, bidirectional=True)
        self.n_out = n_out // 2 * 2

    def forward(self, chars: torch.Tensor) -> torch.Tensor:  # [B, N, W]
        batch, words, width = chars.shape
        flat = chars.reshape(-1, width)
        lengths = flat.ne(0).sum(-1)
        out = flat.new_zeros(flat.shape[0], self.n_out, dtype=self.embed.weight.dtype)
        present = lengths.gt(0)
        if present.any():
            packed = pack_padded_sequence(
                self.embed(flat[present]), lengths[present].cpu(), batch_first=True, enforce_sorted=False
            )
            _, (hidden, _) = self.lstm(packed)
            out[present] = torch.cat(torch.unbind(hidden), dim=-1).to(out.dtype)
        return out.reshape(batch, words, self.n_out)


class BiaffineScorer(nn.Module):
    """The parser's head: four MLP views of the encoded words, a biaffine arc and a bilinear relation scorer."""

    def __init__(
        self, n_in: int, num_rels: int, arc_mlp: int = 500, rel_mlp: int = 100, mlp_dropout: float = 0.33
    ) -> None:
        super().__init__()
        self.arc_dep, self.arc_head = MLP(n_in, arc_mlp, mlp_dropout), MLP(n_in, arc_mlp, mlp_dropout)
        self.rel_dep, self.rel_head = MLP(n_in, rel_mlp, mlp_dropout), MLP(n_in, rel_mlp, mlp_dropout)
        self.arc_attention = Biaffine(arc_mlp, 1, bias_x=True, bias_y=False)
        self.rel_attention = Biaffine(rel_mlp, num_rels, bias_x=True, bias_y=True)

    def forward(self, encoded: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s_arc = self.arc_attention(self.arc_dep(encoded), self.arc_head(encoded)).squeeze(1)
        s_arc = s_arc.masked_fill(~mask.unsqueeze(1), torch.finfo(s_arc.dtype).min / 2)  # padding never heads
        s_rel = self.rel_attention(self.rel_dep(encoded), self.rel_head(encoded)).permute(0, 2, 3, 1)
        return s_arc, s_rel


class BiaffineParser(nn.Module):
    """Embeddings (+ characters, tags) -> BiLSTM -> biaffine scorer. See the module docstring."""

    def __init__(
        self,
        num_words: int,
        num_rels: int,
        num_chars: int = 0,
        num_upos: int = 0,
        num_xpos: int = 0,
        features: tuple[str, ...] = ("chars",),
        pad_id: int = 0,
        embed_dim: int = 100,
        pretrained: torch.Tensor | None = None,
        char_dim: int = 50,
        char_out: int = 100,
        tag_dim: int = 100,
        embed_dropout: float = 0.33,
        lstm_hidden: int = 400,
        lstm_layers: int = 3,
        lstm_dropout: float = 0.33,
        arc_mlp: int = 500,
        rel_mlp: int = 100,
        mlp_dropout: float = 0.33,
    ) -> None:
        super().__init__()
        self.features = tuple(features)
        self.pad_id = pad_id
        self.word_embed = nn.Embedding(num_words, embed_dim, padding_idx=pad_id)
        self.pretrained: nn.Embedding | None = None
        if (
            pretrained is not None
        ):  # frozen vectors added to trainable (zero-initialised) ones, as Dozat & Manning
            nn.init.zeros_(self.word_embed.weight)
            self.pretrained = nn.Embedding.from_pretrained(
                pretrained.float(), freeze=True, padding_idx=pad_id
            )
        width = embed_dim
        self.char_lstm = CharLSTM(num_chars, char_dim, char_out) if "chars" in self.features else None
        width += self.char_lstm.n_out if self.char_lstm is not None else 0
        self.upos_embed = nn.Embedding(num_upos, tag_dim, padding_idx=0) if "upos" in self.features else None
        self.xpos_embed = nn.Embedding(num_xpos, tag_dim, padding_idx=0) if "xpos" in self.features else None
        width += tag_dim * (("upos" in self.features) + ("xpos" in self.features))
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.lstm = nn.LSTM(
            width,
            lstm_hidden,
            num_layers=lstm_layers,
            batch_first=True,
            bidirectional=True,
            dropout=lstm_dropout if lstm_layers > 1 else 0.0,
        )
        self.lstm_dropout = SharedDropout(lstm_dropout)
        self.scorer = BiaffineScorer(2 * lstm_hidden, num_rels, arc_mlp, rel_mlp, mlp_dropout)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        words = batch["words"]
        mask = words.ne(self.pad_id)
        embedded = self.word_embed(words)
        if self.pretrained is not None:
            embedded = embedded + self.pretrained(words)
        parts = [embedded]
        if self.char_lstm is not None:
            parts.append(self.char_lstm(batch["chars"]))
        if self.upos_embed is not None:
            parts.append(self.upos_embed(batch["upos"]))
        if self.xpos_embed is not None:
            parts.append(self.xpos_embed(batch["xpos"]))
        x = self.embed_dropout(torch.cat(parts, dim=-1))
        lengths = mask.sum(-1)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        encoded, _ = self.lstm(packed)
        encoded, _ = pad_packed_sequence(encoded, batch_first=True, total_length=words.shape[1])
        return self.scorer(self.lstm_dropout(encoded), mask)


class TransformerParser(nn.Module):
    """A Hugging Face encoder read at each word's first subword (+ optional tag embeddings) -> biaffine scorer."""

    def __init__(
        self,
        encoder: nn.Module,
        num_rels: int,
        num_upos: int = 0,
        num_xpos: int = 0,
        features: tuple[str, ...] = (),
        tag_dim: int = 100,
        encoder_dropout: float = 0.1,
        arc_mlp: int = 500,
        rel_mlp: int = 100,
        mlp_dropout: float = 0.33,
        subword_pad: int = 0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.features = tuple(features)
        self.subword_pad = subword_pad
        hidden = int(encoder.config.hidden_size)
        self.upos_embed = nn.Embedding(num_upos, tag_dim, padding_idx=0) if "upos" in self.features else None
        self.xpos_embed = nn.Embedding(num_xpos, tag_dim, padding_idx=0) if "xpos" in self.features else None
        width = hidden + tag_dim * (("upos" in self.features) + ("xpos" in self.features))
        self.dropout = nn.Dropout(encoder_dropout)
        self.scorer = BiaffineScorer(width, num_rels, arc_mlp, rel_mlp, mlp_dropout)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        subwords, starts = batch["subwords"], batch["word_starts"]
        attention = subwords.ne(self.subword_pad).long()
        hidden = self.encoder(input_ids=subwords, attention_mask=attention).last_hidden_state
        index = starts.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
        words = hidden.gather(1, index)  # first-subword pooling; position 0 reads [CLS] for the root
        mask = batch["words"].ne(0)  # the word vocabulary's <pad>
        parts = [words]
        if self.upos_embed is not None:
            parts.append(self.upos_embed(batch["upos"]))
        if self.xpos_embed is not None:
            parts.append(self.xpos_embed(batch["xpos"]))
        return self.scorer(self.dropout(torch.cat(parts, dim=-1)), mask)


def _check_features(features: Any) -> tuple[str, ...]:
    chosen = tuple(features or ())
    unknown = [f for f in chosen if f not in FEATURES]
    if unknown:
        raise ConfigError(
            f"model.features={list(chosen)}: {', '.join(unknown)} unknown; choose from "
            f"{', '.join(FEATURES)} (characters, gold/predicted UPOS, XPOS)."
        )
    return chosen


def create_biaffine_parser(
    num_words: int,
    num_rels: int,
    num_chars: int = 0,
    num_upos: int = 0,
    num_xpos: int = 0,
    pad_id: int = 0,
    features: Any = ("chars",),
    embeddings: str | None = None,
    vocab: Any = None,
    load_pretrained: bool = True,
    embed_dim: int = 100,
    seed: int = 0,
    **sizes: Any,
) -> BiaffineParser:
    """Dozat & Manning's BiLSTM parser for a treebank's vocabularies (sizes from the datamodule).

    `embeddings`: a local GloVe/word2vec text file; its vectors (frozen) are added to the trainable
    word embeddings of the words it has (`vocab` is the words' `Vocab`). When the weights come from
    a litzoo checkpoint (`load_pretrained=False`) the file is not read; a same-shaped buffer is made.
    """
    chosen = _check_features(features)
    pretrained = None
    if embeddings:
        if load_pretrained:
            from litzoo.text.word_vectors import build_embedding_matrix

            if vocab is None:
                raise ConfigError(
                    "model.embeddings needs the training vocabulary; build the parser through the task."
                )
            matrix = build_embedding_matrix(vocab, Path(str(embeddings)), dim=embed_dim, seed=seed)
            import logging

            logging.getLogger("litzoo").info("Parser %s", matrix.describe())
            pretrained = matrix.weights
        else:
            pretrained = torch.zeros(num_words, embed_dim)
    return BiaffineParser(
        num_words, num_rels, num_chars, num_upos, num_xpos, chosen, pad_id, embed_dim, pretrained, **sizes
    )


def create_transformer_parser(
    pretrained: str,
    num_rels: int,
    num_upos: int = 0,
    num_xpos: int = 0,
    features: Any = (),
    load_pretrained: bool = True,
    subword_pad: int = 0,
    **sizes: Any,
) -> TransformerParser:
    """The biaffine scorer on a local Hugging Face encoder (`pretrained`: a checkpoint folder, `minilm_l6`, ...).

    With `load_pretrained=False` (weights from a litzoo checkpoint) only the architecture is built,
    from the `config.json` the run directory keeps beside its tokenizer.
    """
    chosen = _check_features(features)
    if load_pretrained:
        from litzoo.models.text_encoder import load_encoder

        encoder, _, _ = load_encoder(pretrained)
    else:
        from transformers import AutoModel

        from litzoo.text.pretrained import load_pretrained_config

        encoder = AutoModel.from_config(load_pretrained_config(pretrained))
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None  # unused: no parameters without gradients under DDP
    return TransformerParser(encoder, num_rels, num_upos, num_xpos, chosen, subword_pad=subword_pad, **sizes)
