"""Checks of the image classifier configs that need neither torch nor timm (run during validation).

A model config names its check with `check: litzoo.models.classification_checks.check_pretrained`;
the platform calls it on the model config before anything heavy is imported, so a weights file
that is not on this machine stops the run within a second instead of after the Trainer is built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litzoo.errors import DependencyError

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")


def check_pretrained(model: Mapping[str, Any]) -> None:
    """`model.pretrained` must be null/false, an existing file, or `true` with timm's weights for
    `model.arch` already in the local Hugging Face or torch hub cache (or `model.allow_download`)."""
    pretrained = model.get("pretrained")
    if pretrained in (None, False, ""):
        return
    if pretrained is True:
        if not model.get("allow_download") and not cached_timm_candidates(str(model["arch"])):
            raise not_cached_error(str(model["arch"]))
        return
    local_weights(str(pretrained))


def local_weights(path: str) -> Path:
    """The weights file `model.pretrained` names; a missing file is a `DependencyError` saying what to pass."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DependencyError(
            f"model.pretrained={path} does not exist. Point it at a local weights file "
            f"({', '.join(WEIGHT_SUFFIXES)}) holding a state dict of the architecture, or set "
            "model.pretrained=null to train from random initialisation."
        )
    return file


def cached_timm_candidates(arch: str) -> list[Path]:
    """Files in the local caches that may hold timm's weights for `arch` (without importing timm).

    timm keeps its weights on the Hugging Face hub as `timm/<arch>.<tag>` and older ones as
    release URLs named `<arch>...pth` in torch hub's checkpoints folder. An empty list means they
    are certainly not here; a non-empty one is confirmed when the model is built.
    """
    name = arch.split(".")[0]
    found = []
    hub_cache = _hf_hub_cache()
    for repo in [*hub_cache.glob(f"models--timm--{name}"), *hub_cache.glob(f"models--timm--{name}.*")]:
        found += [p for p in (repo / "snapshots").glob("*/*") if p.is_file() or p.is_symlink()]
    checkpoints = _torch_hub_dir() / "checkpoints"
    found += sorted(checkpoints.glob(f"{name}*")) if checkpoints.is_dir() else []
    return found


def not_cached_error(arch: str) -> DependencyError:
    return DependencyError(
        f"Pretrained weights for {arch!r} are not on this machine and litzoo does not download at run time. "
        f"Either pass a local file with model.pretrained=/path/to/{arch}.safetensors, or, on a machine "
        f"with internet, run `python -c \"import timm; timm.create_model('{arch}', pretrained=True)\"` "
        "and copy its ~/.cache/huggingface (or ~/.cache/torch/hub) here, or allow downloading with "
        "model.allow_download=true."
    )


def _hf_hub_cache() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _torch_hub_dir() -> Path:
    """torch.hub.get_dir() without importing torch: $TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache")), "torch"
    )
    return Path(torch_home).expanduser() / "hub"
