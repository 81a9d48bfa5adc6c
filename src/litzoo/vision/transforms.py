"""Train/eval transform presets for image classification (torchvision.transforms.v2).

Train: random-resized-crop + horizontal flip; eval: resize to image_size/crop_pct
then center-crop (the timm/torchvision convention). Both end with float
conversion and normalisation with the data config's mean/std.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torchvision.transforms import v2


def channel_stats(values: Sequence[float], in_chans: int) -> list[float]:
    """Mean/std for `in_chans` channels: RGB statistics averaged for greyscale input."""
    values = list(values)
    if len(values) == in_chans:
        return values
    if in_chans == 1:
        return [sum(values) / len(values)]
    if len(values) == 1:
        return values * in_chans
    raise ValueError(f"{len(values)} normalisation values cannot serve {in_chans} channels")


def train_transform(image_size: int, mean: Sequence[float], std: Sequence[float],
                    scale: Sequence[float] = (0.08, 1.0), hflip: float = 0.5) -> v2.Compose:
    return v2.Compose([
        v2.ToImage(),
        v2.RandomResizedCrop(image_size, scale=tuple(scale), antialias=True),
        v2.RandomHorizontalFlip(hflip),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(mean), list(std)),
    ])


def eval_transform(image_size: int, mean: Sequence[float], std: Sequence[float],
                   crop_pct: float = 0.875) -> v2.Compose:
    return v2.Compose([
        v2.ToImage(),
        v2.Resize(int(math.floor(image_size / crop_pct)), antialias=True),
        v2.CenterCrop(image_size),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(mean), list(std)),
    ])
