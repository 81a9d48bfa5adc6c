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


def train_transform(
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    scale: Sequence[float] = (0.08, 1.0),
    hflip: float = 0.5,
) -> v2.Compose:
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResizedCrop(image_size, scale=tuple(scale), antialias=True),
            v2.RandomHorizontalFlip(hflip),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ]
    )


def eval_transform(
    image_size: int, mean: Sequence[float], std: Sequence[float], crop_pct: float = 0.875
) -> v2.Compose:
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(int(math.floor(image_size / crop_pct)), antialias=True),
            v2.CenterCrop(image_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ]
    )


def eval_preprocessing(
    image_size: int, in_chans: int, mean: Sequence[float], std: Sequence[float], crop_pct: float = 0.875
) -> dict:
    """The evaluation preprocessing as plain data, for a datamodule's info() (saved with the model), so that
    prediction turns a new image file into what the eval split fed the model, without the training data:
    convert to `mode`, then :func:`eval_transform` (resize the shorter side to image_size / crop_pct,
    center-crop image_size, scale to [0, 1], normalise)."""
    return {
        "mode": "L" if int(in_chans) == 1 else "RGB",
        "image_size": int(image_size),
        "crop_pct": float(crop_pct),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
    }
