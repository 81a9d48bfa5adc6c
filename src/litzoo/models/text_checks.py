"""Checks of the pretrained text encoder configs that need neither torch nor transformers.

A model config names its check with `check: litzoo.models.text_checks.check_hf_pretrained`; the
platform calls it during validation, so `model=bert_base` on a machine whose Hugging Face cache
lacks bert-base-uncased (or a `model.pretrained` folder that does not exist) stops within a
second, before the tokenizer, the encoder and the Trainer are loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litzoo.errors import DependencyError
from litzoo.text.pretrained import resolve_pretrained


def check_hf_pretrained(model: Mapping[str, Any]) -> None:
    """`model.pretrained` must be a local checkpoint folder, the bundled `minilm_l6`, or a hub name whose
    config.json is already in the local Hugging Face cache."""
    source = resolve_pretrained(str(model["pretrained"]))  # raises for a missing folder or package
    if not isinstance(source, str):
        return
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(source, "config.json"), str):
        alias = f" (model.pretrained={model['pretrained']})" if model["pretrained"] != source else ""
        raise DependencyError(
            f"{source!r}{alias} is neither a local checkpoint directory nor in the local Hugging Face cache, "
            f"and litzoo never downloads at run time. On a machine with network run `hf download {source} "
            "--local-dir <dir>` (or huggingface-cli download), copy <dir> here and pass model.pretrained=<dir>."
        )
