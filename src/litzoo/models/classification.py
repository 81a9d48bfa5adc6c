"""Image classifiers from timm, with offline pretrained weights.

`create_classifier` is `timm.create_model` with the data's `num_classes`,
`in_chans` and (for fixed-size architectures such as ViT) `img_size`. Pretrained
weights come from a local file, or from timm's weights already in the local
Hugging Face / torch hub cache; nothing is downloaded unless `allow_download`.
timm adapts the first convolution to `in_chans` and drops a classifier whose
size differs from `num_classes`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from litzoo.errors import ConfigError
from litzoo.models.classification_checks import local_weights, not_cached_error


def create_classifier(
    arch: str,
    num_classes: int,
    in_chans: int = 3,
    image_size: int | None = None,
    pretrained: str | bool | None = None,
    allow_download: bool = False,
    fixed_input_size: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """Build timm model `arch` for the data at hand; see the module docstring for `pretrained`."""
    import timm

    if not timm.is_model(arch):
        close = timm.list_models(f"*{arch.split('_')[0]}*")[:10]
        raise ConfigError(
            f"model.arch={arch!r} is not a timm architecture. Similar names: {', '.join(close) or 'none'}. "
            "See `python -c \"import timm; print(timm.list_models('resnet*'))\"`."
        )
    if fixed_input_size and image_size:
        kwargs["img_size"] = image_size
    if pretrained in (None, False, ""):
        use_pretrained, overlay = False, None
    elif pretrained is True:
        use_pretrained = True
        overlay = None if allow_download else {"file": str(_cached_timm_weights(arch))}
    else:
        use_pretrained, overlay = True, {"file": str(local_weights(str(pretrained)))}
    return timm.create_model(
        arch,
        pretrained=use_pretrained,
        num_classes=num_classes,
        in_chans=in_chans,
        pretrained_cfg_overlay=overlay,
        **kwargs,
    )


def _cached_timm_weights(arch: str) -> Path:
    """timm's pretrained file for `arch` if it is already in the local cache; never touches the network."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch)
    candidates: list[Path] = []
    if cfg is not None and cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo = cfg.hf_hub_id.split("@")[0]
        for filename in ("model.safetensors", "open_clip_model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(repo, filename)
            if isinstance(found, str):
                candidates.append(Path(found))
    if cfg is not None and cfg.url:
        import torch.hub

        candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise not_cached_error(arch)
