"""Torch-free checks of a word-embedding run's config (`model.check`), run during validation.

Besides the model's own arguments, the optimizer must accept sparse gradients (the embedding
matrices get one row per word of the batch, not a dense gradient): torch's Adagrad, SparseAdam
and SGD without momentum or weight decay do; AdamW, momentum SGD and weight decay do not, and
would otherwise fail only at the first step with a torch error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from litzoo.errors import ConfigError

OBJECTIVES = ("skipgram", "cbow")
SPARSE_OPTIMIZERS = ("torch.optim.Adagrad", "torch.optim.SGD", "torch.optim.SparseAdam")


def check_word_embedding(model: DictConfig | Mapping[str, Any]) -> None:
    """The model arguments, and (when the model entry sits in a composed config) the optimizer."""
    check_architecture(
        int(model.get("dim", 100)),
        str(model.get("objective", "skipgram")),
        int(model.get("ngram_buckets", 0)),
        int(model.get("min_n", 3)),
        int(model.get("max_n", 6)),
    )
    root = model._get_root() if isinstance(model, DictConfig) else None
    optim = root.get("optim") if isinstance(root, DictConfig) else None
    if optim is not None:
        check_sparse_optimizer(OmegaConf.to_container(optim, resolve=True))


def check_sparse_optimizer(optim: Mapping[str, Any]) -> None:
    """Refuse an optimizer config that cannot take the embeddings' sparse gradients, naming one that can."""
    target = str(optim.get("_target_", ""))
    fix = (
        "use optim=adagrad (the default of task=word_embedding), or word2vec's plain SGD with "
        "optim=sgd_plain optim.lr=0.025 and small batches (data.block_tokens=1000)"
    )
    if target not in SPARSE_OPTIMIZERS:
        raise ConfigError(
            f"optim._target_={target}: word embeddings train with sparse gradients, which this "
            f"optimizer does not accept; {fix}."
        )
    if target == "torch.optim.SGD" and (
        optim.get("momentum") or optim.get("weight_decay") or optim.get("nesterov")
    ):
        raise ConfigError(
            f"optim=sgd with momentum={optim.get('momentum')}, nesterov={optim.get('nesterov')}, "
            f"weight_decay={optim.get('weight_decay')}: torch's SGD takes sparse gradients only "
            f"without momentum and weight decay; {fix}."
        )
    if target == "torch.optim.Adagrad" and optim.get("weight_decay"):
        raise ConfigError(
            f"optim.weight_decay={optim.get('weight_decay')}: Adagrad takes sparse gradients only "
            "without weight decay; set optim.weight_decay=0."
        )


def check_architecture(dim: int, objective: str, ngram_buckets: int, min_n: int, max_n: int) -> None:
    """The model's arguments make sense (at validation, and again when the model is built)."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"model.objective={objective!r}: use skipgram or cbow.")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ConfigError(f"model.dim={dim!r}: give a positive vector size (word2vec: 100 to 300).")
    if isinstance(ngram_buckets, bool) or not isinstance(ngram_buckets, int) or ngram_buckets < 0:
        raise ConfigError(
            f"model.ngram_buckets={ngram_buckets!r}: give 0 (word2vec) or a positive number of "
            "n-gram rows (fastText: 2000000)."
        )
    if ngram_buckets and (min_n < 1 or max_n < min_n):
        raise ConfigError(
            f"model.min_n={min_n}, model.max_n={max_n}: n-gram lengths need 1 <= min_n <= max_n "
            "(fastText: 3 and 6), or model.ngram_buckets=0 for no n-grams."
        )
