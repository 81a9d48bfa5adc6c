"""Clip transforms: the same geometry for every frame of a clip, as MMAction/GluonCV's video pipelines.

A clip arrives as ``T x H x W x 3`` uint8 (the decoders' output) and leaves as ``3 x T x h x w`` float,
normalised (torchvision's video-model convention, ``C x T x H x W``).

- training (:class:`TrainClipTransform`): resize the short side to a random length in
  ``short_side`` (``[256, 320]``: scale jitter; one number: fixed), TSN's multi-scale crop (crop
  width and height each a factor of ``scales`` times the short side, at most one step apart, at a
  random place) resized to ``crop_size``, a horizontal flip with probability ``hflip_prob``;
- evaluation (:func:`eval_views`): resize the short side to ``short_side``, then ``num_crops``
  crops of ``crop_size``: 1 = the centre, 3 = both ends and the middle of the long side
  (MMAction's ``ThreeCrop``), stacked as views ``V x 3 x T x h x w``.

Random draws use numpy's global generator, which the platform's loader seeds per worker and epoch
and checkpoints (exact resume).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

MULTI_SCALES = (1.0, 0.875, 0.75, 0.66)


def to_float(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``T x H x W x 3`` uint8 -> ``T x 3 x H x W`` float in 0..1."""
    clip = torch.as_tensor(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    return clip.permute(0, 3, 1, 2).float().div_(255.0)


def resize_short_side(clip: torch.Tensor, short: int) -> torch.Tensor:
    """Keep-ratio resize of ``T x 3 x H x W`` so the short side is `short` (bilinear, antialiased)."""
    height, width = clip.shape[-2:]
    if min(height, width) == short:
        return clip
    if height <= width:
        size = (int(short), max(1, round(width * short / height)))
    else:
        size = (max(1, round(height * short / width)), int(short))
    return F.interpolate(clip, size=size, mode="bilinear", align_corners=False, antialias=True)


def normalise(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``T x 3 x H x W`` -> normalised ``3 x T x H x W``."""
    mean_t = torch.tensor(mean, dtype=clip.dtype).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=clip.dtype).view(1, 3, 1, 1)
    return ((clip - mean_t) / std_t).permute(1, 0, 2, 3).contiguous()


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (int(size), int(size)) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))


class TrainClipTransform:
    """Scale jitter, multi-scale crop and flip, the same for all frames of a clip."""

    def __init__(
        self,
        crop_size: int | Sequence[int],
        short_side: int | Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        scales: Sequence[float] = MULTI_SCALES,
        hflip_prob: float = 0.5,
    ) -> None:
        self.crop = _pair(crop_size)
        lo, hi = _pair(short_side)
        self.short = (min(lo, hi), max(lo, hi))
        self.mean, self.std = list(mean), list(std)
        self.scales = [float(s) for s in scales] or [1.0]
        self.hflip_prob = float(hflip_prob)

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        clip = to_float(frames)
        short = (
            self.short[0]
            if self.short[0] == self.short[1]
            else int(np.random.randint(self.short[0], self.short[1] + 1))
        )
        clip = resize_short_side(clip, short)
        height, width = clip.shape[-2:]
        base = min(height, width)
        pairs = [(i, j) for i in range(len(self.scales)) for j in range(len(self.scales)) if abs(i - j) <= 1]
        i, j = pairs[int(np.random.randint(len(pairs)))]
        crop_h = min(height, max(1, int(round(base * self.scales[i]))))
        crop_w = min(width, max(1, int(round(base * self.scales[j]))))
        top = int(np.random.randint(0, height - crop_h + 1))
        left = int(np.random.randint(0, width - crop_w + 1))
        clip = clip[..., top : top + crop_h, left : left + crop_w]
        if (crop_h, crop_w) != self.crop:
            clip = F.interpolate(clip, size=self.crop, mode="bilinear", align_corners=False, antialias=True)
        if self.hflip_prob and np.random.random() < self.hflip_prob:
            clip = clip.flip(-1)
        return normalise(clip, self.mean, self.std)


def crop_origins(height: int, width: int, crop: tuple[int, int], num_crops: int) -> list[tuple[int, int]]:
    """Top-left corners of the evaluation crops: the centre (1) or the two ends and the middle of the
    long side (3)."""
    crop_h, crop_w = min(crop[0], height), min(crop[1], width)
    centre = ((height - crop_h) // 2, (width - crop_w) // 2)
    if num_crops == 1:
        return [centre]
    if width >= height:
        return [(centre[0], 0), centre, (centre[0], width - crop_w)]
    return [(0, centre[1]), centre, (height - crop_h, centre[1])]


def eval_views(
    frames: np.ndarray,
    crop_size: int | Sequence[int],
    short_side: int,
    mean: Sequence[float],
    std: Sequence[float],
    num_crops: int = 1,
) -> torch.Tensor:
    """``num_crops x 3 x T x h x w``: the evaluation crops of one clip."""
    crop = _pair(crop_size)
    clip = resize_short_side(to_float(frames), int(short_side))
    height, width = clip.shape[-2:]
    views = []
    for top, left in crop_origins(height, width, crop, num_crops):
        view = clip[..., top : top + crop[0], left : left + crop[1]]
        if tuple(view.shape[-2:]) != crop:  # an image smaller than the crop: stretch it to the crop
            view = F.interpolate(view, size=crop, mode="bilinear", align_corners=False, antialias=True)
        views.append(normalise(view, mean, std))
    return torch.stack(views)
