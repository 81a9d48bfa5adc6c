"""Transformer encoder-decoder for translation (Vaswani et al. 2017), with cached incremental decoding.

What no library ships in the shape litzoo needs: one module whose decoder runs either over a whole
target (training, teacher forcing, causal mask) or one token at a time with cached self-attention
keys/values and the encoder's cross-attention keys/values computed once (beam search,
:mod:`litzoo.text.beam_search`). Post-norm (the paper, ``base``/``big``) or pre-norm
(``pre_norm=true``, stabler for deep or small-batch training); sinusoidal positions; embeddings scaled by
sqrt(d_model); decoder input/output embeddings tied, and the source embedding too with a joint vocabulary.
Attention is ``torch.nn.functional.scaled_dot_product_attention``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from litzoo.text.subword_vocab import PAD


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """(length, dim) sin/cos positions (tensor2tensor/fairseq layout: sines then cosines)."""
    half = dim // 2
    rates = torch.exp(torch.arange(half, dtype=torch.float) * -(math.log(10000.0) / max(half - 1, 1)))
    angles = torch.arange(length, dtype=torch.float)[:, None] * rates[None]
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    return F.pad(table, (0, dim - table.size(1)))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"model.d_model={dim} must be divisible by model.heads={heads}")
        self.heads, self.dropout = heads, dropout
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def project_kv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._split(self.k(x)), self._split(self.v(x))

    def forward(
        self,
        x: torch.Tensor,
        kv: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor | None = None,
        causal: bool = False,
    ) -> torch.Tensor:
        q = self._split(self.q(x))
        out = F.scaled_dot_product_attention(
            q,
            kv[0],
            kv[1],
            attn_mask=mask,
            is_causal=causal and mask is None,
            dropout_p=self.dropout if self.training else 0.0,
        )
        b, h, t, d = out.shape
        return self.out(out.transpose(1, 2).reshape(b, t, h * d))


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim))


class EncoderLayer(nn.Module):
    def __init__(
        self, dim: int, heads: int, ffn: int, dropout: float, attention_dropout: float, pre_norm: bool
    ):
        super().__init__()
        self.attn, self.ffn = Attention(dim, heads, attention_dropout), FeedForward(dim, ffn, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop, self.pre_norm = nn.Dropout(dropout), pre_norm

    def _block(self, x: torch.Tensor, norm: nn.Module, fn: Any) -> torch.Tensor:
        if self.pre_norm:
            return x + self.drop(fn(norm(x)))
        return norm(x + self.drop(fn(x)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self._block(x, self.norm1, lambda h: self.attn(h, self.attn.project_kv(h), mask))
        return self._block(x, self.norm2, self.ffn)


class DecoderLayer(EncoderLayer):
    def __init__(
        self, dim: int, heads: int, ffn: int, dropout: float, attention_dropout: float, pre_norm: bool
    ):
        super().__init__(dim, heads, ffn, dropout, attention_dropout, pre_norm)
        self.cross, self.norm3 = Attention(dim, heads, attention_dropout), nn.LayerNorm(dim)

    def forward(
        self,
        x: torch.Tensor,
        memory_kv: tuple[torch.Tensor, torch.Tensor],
        memory_mask: torch.Tensor,
        cache: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        def self_attention(h: torch.Tensor) -> torch.Tensor:
            k, v = self.attn.project_kv(h)
            if cache is None:
                return self.attn(h, (k, v), causal=True)
            if "k" in cache:  # one new position attends to all earlier ones: no mask needed
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
            return self.attn(h, (k, v))

        x = self._block(x, self.norm1, self_attention)
        x = self._block(x, self.norm3, lambda h: self.cross(h, memory_kv, memory_mask))
        return self._block(x, self.norm2, self.ffn)


class TransformerSeq2Seq(nn.Module):
    """Encoder-decoder Transformer. ``forward(src, tgt_in) -> logits (B, T, V_tgt)``.

    Args:
        src_vocab_size, tgt_vocab_size: vocabulary sizes (ids 0-3 are <pad> <unk> <s> </s>).
        d_model, heads, ffn_dim, encoder_layers, decoder_layers: the architecture (base: 512/8/2048/6/6).
        dropout, attention_dropout: residual/FFN dropout and attention-weight dropout.
        pre_norm: layer norm before each block (and a final norm) instead of after.
        share_embeddings: one embedding for source, target and output (needs a joint vocabulary).
        max_positions: longest sequence the positional table covers.
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        d_model: int = 512,
        heads: int = 8,
        ffn_dim: int = 2048,
        encoder_layers: int = 6,
        decoder_layers: int = 6,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        pre_norm: bool = False,
        share_embeddings: bool = True,
        max_positions: int = 1024,
    ) -> None:
        super().__init__()
        if share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ValueError("model.share_embeddings=true needs a joint vocabulary (data.vocab.joint=true)")
        self.d_model, self.pre_norm = d_model, pre_norm
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model, padding_idx=PAD)
        self.src_embed = (
            self.tgt_embed if share_embeddings else nn.Embedding(src_vocab_size, d_model, padding_idx=PAD)
        )
        for emb in {id(self.src_embed): self.src_embed, id(self.tgt_embed): self.tgt_embed}.values():
            nn.init.normal_(emb.weight, 0.0, d_model**-0.5)
            nn.init.zeros_(emb.weight[PAD])
        self.register_buffer("positions", sinusoidal_positions(max_positions + 1, d_model), persistent=False)
        args = (d_model, heads, ffn_dim, dropout, attention_dropout, pre_norm)
        self.encoder = nn.ModuleList(EncoderLayer(*args) for _ in range(encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(*args) for _ in range(decoder_layers))
        self.encoder_norm = nn.LayerNorm(d_model) if pre_norm else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d_model) if pre_norm else nn.Identity()
        self.drop = nn.Dropout(dropout)
        for name, p in self.named_parameters():
            if p.dim() > 1 and "embed" not in name:
                nn.init.xavier_uniform_(p)

    def _embed(self, table: nn.Embedding, ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        x = table(ids) * math.sqrt(self.d_model) + self.positions[start : start + ids.size(1)]
        return self.drop(x)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output and the additive attention mask of its padding, (B, 1, 1, S)."""
        mask = torch.zeros(src.shape, dtype=torch.float, device=src.device).masked_fill(
            src == PAD, float("-inf")
        )
        mask = mask[:, None, None, :]
        x = self._embed(self.src_embed, src)
        for layer in self.encoder:
            x = layer(x, mask)
        return self.encoder_norm(x), mask

    def memory_kv(self, memory: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [layer.cross.project_kv(memory) for layer in self.decoder]

    def decode(
        self,
        tgt_in: torch.Tensor,
        memory_kv: list,
        memory_mask: torch.Tensor,
        caches: list[dict] | None = None,
        start: int = 0,
    ) -> torch.Tensor:
        x = self._embed(self.tgt_embed, tgt_in, start)
        for i, layer in enumerate(self.decoder):
            x = layer(x, memory_kv[i], memory_mask, None if caches is None else caches[i])
        return F.linear(self.decoder_norm(x), self.tgt_embed.weight)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory, mask = self.encode(src)
        return self.decode(tgt_in, self.memory_kv(memory), mask)

    # --- incremental decoding for litzoo.text.beam_search ----------------------------------------------
    def start_state(self, src: torch.Tensor, beam: int = 1) -> dict[str, Any]:
        """The decoding state for `src` with each sentence repeated `beam` times."""
        memory, mask = self.encode(src)
        if beam > 1:
            memory, mask = memory.repeat_interleave(beam, 0), mask.repeat_interleave(beam, 0)
        return {"memory_kv": self.memory_kv(memory), "mask": mask, "caches": [{} for _ in self.decoder]}

    def step(self, tokens: torch.Tensor, state: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        t = tokens.size(1) - 1
        logits = self.decode(tokens[:, -1:], state["memory_kv"], state["mask"], state["caches"], start=t)
        return F.log_softmax(logits[:, -1].float(), dim=-1), state

    @staticmethod
    def reorder(state: dict[str, Any], rows: torch.Tensor) -> dict[str, Any]:
        # Rows only move within a sentence's own beams, whose encoder states are identical: only the
        # self-attention caches need selecting.
        for cache in state["caches"]:
            for key in cache:
                cache[key] = cache[key].index_select(0, rows)
        return state


def build_transformer(src_vocab_size: int, tgt_vocab_size: int, **arguments: Any) -> TransformerSeq2Seq:
    """The model config's builder (``_target_``): the data's vocabulary sizes + the preset (its ``recipe``
    block holds training hyper-parameters the task config reads, not architecture)."""
    arguments.pop("recipe", None)
    return TransformerSeq2Seq(src_vocab_size, tgt_vocab_size, **arguments)
