"""Language models: AWD-LSTM, the standard (Zaremba) LSTM, and GPT-2-style decoders from transformers.

Every model reads time-major ids `[T, B]` (the BPTT layout of GluonNLP and salesforce/awd-lstm-lm)
and returns an :class:`LMOutput` whose `logits` are `[T, B, V]`. Recurrent models take and return
their state (a list of tensors whose dim 1 is the batch; `None` starts from zeros) and say
`stateful = True`; the task carries the state from one BPTT window to the next, detached.

- :class:`AWDLSTM` (Merity et al. 2018, "Regularizing and Optimizing LSTM Language Models"):
  embedding dropout (whole words), variational ("locked") dropout on the embeddings, between
  layers and on the output, DropConnect on the hidden-to-hidden weights (`weight_drop`), tied
  input/output embeddings (the last layer is `embed_size` wide). The weight drop is written
  against the public API: the LSTM keeps its own `weight_hh_l0` as the trained ("raw") weight
  and each forward pass calls it through `torch.func.functional_call` with a dropped copy, so
  nothing is deleted or re-registered on the module (what broke salesforce's `WeightDrop` with
  PyTorch 1.0 and 1.4) and cuDNN/DDP see an ordinary `nn.LSTM`. It also returns the last
  layer's raw and dropped outputs for AR/TAR and the neural cache.
- :class:`StandardLSTM` (Zaremba et al. 2014 presets `small`/`medium`/`large`; the PyTorch
  word_language_model example): embedding -> dropout -> one multi-layer `nn.LSTM` -> dropout ->
  decoder, optionally tied.
- :class:`CausalLM`: a Hugging Face causal LM, a `GPT2Config` built from scratch or any local
  checkpoint directory (`AutoModelForCausalLM`, no remote code); `stateful = False`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from litzoo.errors import ConfigError

State = list[torch.Tensor] | None

# cuDNN wants an RNN's weights in one chunk; a dropped copy of one weight is not, which it handles
# (slower copy) with this warning on every call.
warnings.filterwarnings("ignore", message=r"RNN module weights are not part of single contiguous chunk")


@dataclass
class LMOutput:
    """What a language model returns: logits `[T, B, V]`, its next state, the last layer's raw and dropped outputs."""

    logits: torch.Tensor
    state: State = None
    hidden: torch.Tensor | None = None
    dropped: torch.Tensor | None = None


class LockedDropout(nn.Module):
    """Variational dropout: one mask per sequence and feature, shared over time (inputs `[T, B, D]`)."""

    def forward(self, x: torch.Tensor, p: float) -> torch.Tensor:
        if not self.training or p <= 0.0:
            return x
        mask = x.new_empty(1, x.shape[1], x.shape[2]).bernoulli_(1.0 - p) / (1.0 - p)
        return x * mask


def embedding_dropout(embedding: nn.Embedding, ids: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Embed `ids` with whole rows of the embedding dropped (a word is dropped everywhere in the batch)."""
    weight = embedding.weight
    if training and p > 0.0:
        mask = weight.new_empty(weight.shape[0], 1).bernoulli_(1.0 - p) / (1.0 - p)
        weight = weight * mask
    return F.embedding(ids, weight, embedding.padding_idx)


def weight_dropped_lstm(
    lstm: nn.LSTM, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None, p: float, training: bool
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Run a one-layer `lstm` with DropConnect on its hidden-to-hidden weight (AWD's WeightDrop)."""
    if not training or p <= 0.0:
        return lstm(x, state)
    dropped = F.dropout(lstm.weight_hh_l0, p=p, training=True)
    return torch.func.functional_call(lstm, {"weight_hh_l0": dropped}, (x, state))


class AWDLSTM(nn.Module):
    """AWD-LSTM; see the module docstring. Defaults are Merity et al.'s WikiText-2 model (3 x 1150, 400)."""

    stateful = True

    def __init__(
        self,
        vocab_size: int,
        embed_size: int = 400,
        hidden_size: int = 1150,
        num_layers: int = 3,
        dropout: float = 0.4,
        dropout_h: float = 0.2,
        dropout_i: float = 0.65,
        dropout_e: float = 0.1,
        weight_drop: float = 0.5,
        tie_weights: bool = True,
        init_range: float = 0.1,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ConfigError(f"model.num_layers={num_layers} must be at least 1.")
        for name, p in (
            ("dropout", dropout),
            ("dropout_h", dropout_h),
            ("dropout_i", dropout_i),
            ("dropout_e", dropout_e),
            ("weight_drop", weight_drop),
        ):
            if not 0.0 <= p < 1.0:
                raise ConfigError(f"model.{name}={p} must be in [0, 1).")
        self.vocab_size, self.embed_size, self.hidden_size = vocab_size, embed_size, hidden_size
        self.dropout, self.dropout_h, self.dropout_i, self.dropout_e = (
            dropout,
            dropout_h,
            dropout_i,
            dropout_e,
        )
        self.weight_drop, self.tie_weights = weight_drop, tie_weights
        self.encoder = nn.Embedding(vocab_size, embed_size)
        sizes = [embed_size] + [hidden_size] * (num_layers - 1) + [embed_size if tie_weights else hidden_size]
        self.rnns = nn.ModuleList(nn.LSTM(sizes[i], sizes[i + 1]) for i in range(num_layers))
        self.decoder = nn.Linear(sizes[-1], vocab_size)
        self.lockdrop = LockedDropout()
        nn.init.uniform_(self.encoder.weight, -init_range, init_range)
        nn.init.zeros_(self.decoder.bias)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        else:
            nn.init.uniform_(self.decoder.weight, -init_range, init_range)

    def forward(self, inputs: torch.Tensor, state: State = None) -> LMOutput:
        x = embedding_dropout(self.encoder, inputs, self.dropout_e, self.training)
        x = self.lockdrop(x, self.dropout_i)
        next_state: list[torch.Tensor] = []
        raw = x
        for layer, rnn in enumerate(self.rnns):
            layer_state = None if state is None else (state[2 * layer], state[2 * layer + 1])
            raw, (h, c) = weight_dropped_lstm(rnn, x, layer_state, self.weight_drop, self.training)
            next_state += [h, c]
            x = self.lockdrop(raw, self.dropout_h if layer < len(self.rnns) - 1 else self.dropout)
        return LMOutput(self.decoder(x), next_state, hidden=raw, dropped=x)


class StandardLSTM(nn.Module):
    """Embedding -> dropout -> `num_layers`-layer LSTM (dropout between layers) -> dropout -> decoder."""

    stateful = True

    def __init__(
        self,
        vocab_size: int,
        embed_size: int = 200,
        hidden_size: int = 200,
        num_layers: int = 2,
        dropout: float = 0.0,
        tie_weights: bool = False,
        init_range: float | None = 0.1,
    ) -> None:
        super().__init__()
        if tie_weights and embed_size != hidden_size:
            raise ConfigError(
                f"model.tie_weights=true needs embed_size == hidden_size (got {embed_size} and "
                f"{hidden_size}): the decoder reuses the embedding matrix."
            )
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.dropout={dropout} must be in [0, 1).")
        self.vocab_size, self.embed_size, self.hidden_size = vocab_size, embed_size, hidden_size
        self.encoder = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.LSTM(embed_size, hidden_size, num_layers, dropout=dropout if num_layers > 1 else 0.0)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        self.drop = nn.Dropout(dropout)
        if init_range:  # Zaremba et al.: every parameter uniform in [-r, r]
            for parameter in self.parameters():
                nn.init.uniform_(parameter, -init_range, init_range)
        if tie_weights:
            self.decoder.weight = self.encoder.weight

    def forward(self, inputs: torch.Tensor, state: State = None) -> LMOutput:
        x = self.drop(self.encoder(inputs))
        raw, (h, c) = self.rnn(x, None if state is None else (state[0], state[1]))
        dropped = self.drop(raw)
        return LMOutput(self.decoder(dropped), [h, c], hidden=raw, dropped=dropped)


# Zaremba, Sutskever & Vinyals (2014), "Recurrent Neural Network Regularization", Penn Treebank.
ZAREMBA_PRESETS: dict[str, dict[str, Any]] = {
    "small": {"embed_size": 200, "hidden_size": 200, "num_layers": 2, "dropout": 0.0, "init_range": 0.1},
    "medium": {"embed_size": 650, "hidden_size": 650, "num_layers": 2, "dropout": 0.5, "init_range": 0.05},
    "large": {"embed_size": 1500, "hidden_size": 1500, "num_layers": 2, "dropout": 0.65, "init_range": 0.04},
}


def create_lstm_lm(
    vocab_size: int,
    preset: str | None = "small",
    embed_size: int | None = None,
    hidden_size: int | None = None,
    num_layers: int | None = None,
    dropout: float | None = None,
    init_range: float | None = None,
    tie_weights: bool = False,
    **unused: Any,
) -> StandardLSTM:
    """A standard LSTM LM: a Zaremba preset (`small`/`medium`/`large`), any value set explicitly wins."""
    if preset is not None and preset not in ZAREMBA_PRESETS:
        raise ConfigError(
            f"model.preset={preset!r} is unknown; use one of {', '.join(ZAREMBA_PRESETS)} or null."
        )
    values = dict(ZAREMBA_PRESETS[preset]) if preset else dict(ZAREMBA_PRESETS["small"])
    given = {
        "embed_size": embed_size,
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "dropout": dropout,
        "init_range": init_range,
    }
    values.update({k: v for k, v in given.items() if v is not None})
    return StandardLSTM(vocab_size, tie_weights=tie_weights, **values)


def create_awd_lstm(vocab_size: int, **arguments: Any) -> AWDLSTM:
    arguments.pop("load_pretrained", None)
    return AWDLSTM(vocab_size, **arguments)


class CausalLM(nn.Module):
    """A Hugging Face causal LM behind the time-major interface (no state: each window stands alone)."""

    stateful = False

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        config = model.config
        self.context_size = int(
            getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", 0) or 1024
        )
        self.vocab_size = int(config.vocab_size)

    def forward(self, inputs: torch.Tensor, state: State = None) -> LMOutput:
        logits = self.model(input_ids=inputs.t(), use_cache=False).logits  # [B, T, V]
        return LMOutput(logits.transpose(0, 1))


def create_causal_lm(
    vocab_size: int,
    pretrained: str | None = None,
    n_positions: int = 256,
    n_embd: int = 256,
    n_layer: int = 4,
    n_head: int = 4,
    dropout: float = 0.1,
    eos_id: int | None = None,
    load_pretrained: bool = True,
    **unused: Any,
) -> CausalLM:
    """GPT-2 from a fresh `GPT2Config` (`pretrained=null`), or any local causal-LM checkpoint directory."""
    if pretrained:
        from transformers import AutoConfig, AutoModelForCausalLM

        from litzoo.text.pretrained import load_failure, resolve_pretrained

        source = resolve_pretrained(pretrained)
        try:
            if load_pretrained:
                model = AutoModelForCausalLM.from_pretrained(source, trust_remote_code=False)
            else:
                model = AutoModelForCausalLM.from_config(
                    AutoConfig.from_pretrained(source, trust_remote_code=False)
                )
        except (OSError, ValueError) as error:
            raise load_failure(source, "causal language model", error) from None
        if vocab_size > model.get_input_embeddings().num_embeddings:
            raise ConfigError(
                f"The tokenizer has {vocab_size} entries but the checkpoint {pretrained} embeds only "
                f"{model.get_input_embeddings().num_embeddings}: use the checkpoint's own tokenizer."
            )
        return CausalLM(model)
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
    )
    return CausalLM(GPT2LMHeadModel(config))
