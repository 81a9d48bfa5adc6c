"""Settings that depend on the hardware a run lands on: precision, the real batch size and the
batch-size-scaled learning rate."""

from __future__ import annotations

import logging
import math
from typing import Any

log = logging.getLogger("litzoo")

# Keys of the `optim` config that describe the scaling rule rather than the optimizer.
SCALING_KEYS = ("lr_scaling", "base_batch_size")


def resolve_precision(precision: Any, accelerator: str) -> Any:
    """`auto` -> bf16-mixed on GPUs that support it, fp16-mixed on other GPUs, fp32 on CPU."""
    if precision != "auto":
        return precision
    import torch

    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def scale_learning_rate(optim: dict[str, Any], global_batch_size: int) -> dict[str, Any]:
    """The optimizer config with `lr` scaled by the linear rule, as GluonCV trained with.

    With `lr_scaling: linear`, `lr` is the rate for `base_batch_size` samples per step and
    becomes `lr * global_batch_size / base_batch_size` (Goyal et al. 2017). The scaling
    keys are removed, so the result instantiates the optimizer directly.
    """
    optim = dict(optim)
    rule = optim.pop("lr_scaling", None)
    base = optim.pop("base_batch_size", 256)
    if rule in (None, "none", False):
        return optim
    if rule != "linear":
        from litzoo.errors import ConfigError

        raise ConfigError(f"optim.lr_scaling={rule!r} is not known; use linear or none.")
    scaled = optim["lr"] * global_batch_size / base
    log.info("Linear lr scaling: %g x %d / %d = %g", optim["lr"], global_batch_size, base, scaled)
    optim["lr"] = scaled
    return optim


def real_batch_size(batch_size: int, train_samples: int | None, world_size: int) -> int:
    """The samples a training batch per device really holds: `batch_size`, or each device's share of
    the training split when that is smaller (a batch cannot hold more samples than there are).
    `train_samples=None` (unknown) keeps `batch_size`."""
    if train_samples is None:
        return batch_size
    return max(1, min(batch_size, math.ceil(train_samples / max(1, world_size))))
