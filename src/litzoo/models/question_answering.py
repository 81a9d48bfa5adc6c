"""Extractive question answering: a pretrained BERT-family encoder with a span head.

`SpanExtractor` is what transformers' ``BertForQuestionAnswering`` is -- the encoder's last hidden
states through one ``Linear(hidden, 2)`` giving a start and an end logit per token -- for any
encoder `AutoModel` loads (BERT, RoBERTa, ELECTRA, MiniLM, ...), with the head initialised as
transformers initialises it (normal, std ``initializer_range``; zero bias) and the unused pooler
removed (DDP must see no parameter without a gradient).

`create_span_model` is the factory task=question_answering puts on the shared encoder entries
(``conf/model/{minilm_l6,bert_base,bert_large,hf_encoder}.yaml``): their `pretrained` is a local
checkpoint folder, ``minilm_l6`` (the bundled all-MiniLM-L6-v2) or a hub name already in the local
Hugging Face cache; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from litzoo.errors import ConfigError
from litzoo.text.pretrained import check_tokenizer_matches, load_pretrained_config, load_tokenizer


class SpanExtractor(nn.Module):
    """An encoder and a linear start/end head: ``forward(...) -> (start_logits, end_logits)``, ``[B, L]`` each."""

    def __init__(self, encoder: PreTrainedModel, dropout: float | None = None) -> None:
        super().__init__()
        # from_pretrained returns the encoder in eval mode; fine-tuning needs its dropout (Lightning keeps modes).
        self.encoder = encoder.train()
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None  # unused: no parameters without gradients under DDP, no AdamW state for it
        config = encoder.config
        # BertForQuestionAnswering has no dropout before its head (the encoder's own dropout applies).
        self.dropout = nn.Dropout(float(dropout or 0.0))
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        nn.init.normal_(self.qa_outputs.weight, std=getattr(config, "initializer_range", 0.02))
        nn.init.zeros_(self.qa_outputs.bias)

    @property
    def config(self) -> Any:
        return self.encoder.config

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        inputs: dict[str, torch.Tensor] = {"input_ids": input_ids}
        if attention_mask is not None:
            inputs["attention_mask"] = attention_mask
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**inputs).last_hidden_state
        start, end = self.qa_outputs(self.dropout(hidden)).split(1, dim=-1)
        return start.squeeze(-1).contiguous(), end.squeeze(-1).contiguous()


def create_span_model(
    pretrained: str | Path,
    tokenizer: str | Path | None = None,
    dropout: float | None = None,
    pooling: str = "auto",
    max_length: int | None = None,
    load_pretrained: bool = True,
) -> SpanExtractor:
    """A `SpanExtractor` on the encoder in `pretrained` (see the module docstring).

    Args:
        pretrained: a checkpoint folder, ``minilm_l6``, or a hub name in the local cache.
        tokenizer: the folder the data was tokenized with; checked against the encoder (vocabulary
            size, padding token, `max_length` positions). Default: `pretrained`'s own.
        dropout: dropout before the span head (default none, as ``BertForQuestionAnswering``).
        pooling: the sentence-classification setting of the shared encoder entries; a span head scores
            every token, so only ``auto`` (unset) is accepted.
        max_length: the window length the data uses (``data.max_seq_length``).
        load_pretrained: false builds the architecture from the checkpoint's ``config.json`` alone
            (random weights), for a model whose weights come from a litzoo checkpoint; `pretrained`
            is then e.g. ``<run_dir>/tokenizer``, which holds the config beside the tokenizer.
    """
    if pooling not in (None, "auto"):
        raise ConfigError(
            f"model.pooling={pooling}: a span head scores every token, so pooling does not apply to "
            "task=question_answering. Leave model.pooling at auto."
        )
    from transformers import AutoModel

    if load_pretrained:
        from litzoo.models.text_encoder import load_encoder

        encoder, _, _ = load_encoder(pretrained)
    else:
        encoder = AutoModel.from_config(load_pretrained_config(pretrained))
    check_tokenizer_matches(load_tokenizer(tokenizer or pretrained), encoder.config, max_length)
    return SpanExtractor(encoder, dropout)
