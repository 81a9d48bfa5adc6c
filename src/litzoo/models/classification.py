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
    lr_scale: float = 1.0,
    **kwargs: Any,
) -> nn.Module:
    """Build timm model `arch` for the data at hand; see the module docstring for `pretrained`.

    `lr_scale` is the model config's factor on the optimizer's rate, read by the classification task;
    it is accepted here so that the config entry builds as it stands (a benchmark, an export).
    Other keyword arguments go to timm (`drop_rate`, `bn_momentum`, ...).
    """
    del lr_scale  # the optimizer's business, not the network's
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


def split_lr_scale(model: Any, optim: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model entry without `lr_scale`, and the optimizer config with `lr` multiplied by it.

    `lr_scale` (default 1) is the model config's own factor on whatever `optim.lr` the run uses,
    so `optim.lr` sweeps and `lr_scaling` keep working; it is not an argument of the model factory.
    """
    from omegaconf import DictConfig, OmegaConf

    def plain(cfg: Any) -> dict[str, Any]:
        return dict(OmegaConf.to_container(cfg, resolve=True)) if isinstance(cfg, DictConfig) else dict(cfg)

    net_cfg, run_optim = plain(model), plain(optim)
    scale = net_cfg.pop("lr_scale", None)
    if scale is not None and float(scale) != 1.0:
        if float(scale) <= 0 or "lr" not in run_optim:
            raise ConfigError(
                f"model.lr_scale={scale!r} must be a positive factor on optim.lr (this optimizer config "
                f"{'has no lr' if 'lr' not in run_optim else 'has lr ' + str(run_optim['lr'])}). "
                "Set model.lr_scale=1 to use optim.lr as given."
            )
        run_optim["lr"] = float(run_optim["lr"]) * float(scale)
    return net_cfg, run_optim
