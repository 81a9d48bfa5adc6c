"""Joint image + mask transforms for semantic segmentation (torchvision.transforms.v2, tv_tensors.Mask).

Training follows MMSegmentation's pipeline, on an image (``tv_tensors.Image``, uint8) and its
label mask (``tv_tensors.Mask``) together, so that every geometric step moves both alike:

1. :class:`RandomRescale`: resize by a random ratio of a base scale, keeping the aspect ratio
   (bilinear for the image, nearest for the mask, which v2 picks by type);
2. :class:`RandomCropWithIgnore`: a ``crop_size`` crop, padded where the image is smaller (image
   with 0, mask with the ignore value 255, so padding is never scored), re-drawn up to ten times
   while one class would cover more than ``cat_max_ratio`` of it;
3. horizontal flip; 4. photometric distortion (image only, MMSegmentation's
   ``PhotoMetricDistortion``: brightness, contrast, saturation and hue jitter; no channel swaps,
   which would turn a red object blue); 5. float conversion and normalisation (image only).

Evaluation resizes only the image (:func:`eval_image_transform`): the mask keeps its full
resolution, and the task upsamples its predictions to the mask, so scores are computed at the
resolution of the annotation, as the benchmarks do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

IGNORE_INDEX = 255


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    first, second = (int(v) for v in value)
    return first, second


def rescaled_size(
    height: int, width: int, scale: Sequence[int] | None, ratio: float = 1.0
) -> tuple[int, int]:
    """MMSegmentation's keep-ratio rescale: the largest size with the image's aspect ratio whose long
    side is at most ``max(scale) * ratio`` and short side at most ``min(scale) * ratio``
    (``scale=None``: the image's own size times ``ratio``)."""
    if scale is None:
        factor = ratio
    else:
        long_edge, short_edge = max(scale) * ratio, min(scale) * ratio
        factor = min(long_edge / max(height, width), short_edge / min(height, width))
    return max(1, int(height * factor + 0.5)), max(1, int(width * factor + 0.5))


class RandomRescale(v2.Transform):
    """Resize image and mask together to :func:`rescaled_size` at a ratio drawn from ``ratio_range``."""

    def __init__(self, scale: Sequence[int] | None = None, ratio_range: Sequence[float] = (0.5, 2.0)) -> None:
        super().__init__()
        self.scale = tuple(int(v) for v in scale) if scale is not None else None
        self.ratio_range = (float(ratio_range[0]), float(ratio_range[1]))

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        low, high = self.ratio_range
        ratio = low + (high - low) * float(torch.rand(()))
        return {"size": list(rescaled_size(height, width, self.scale, ratio))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self._call_kernel(F.resize, inpt, params["size"], antialias=True)


class RandomCropWithIgnore(v2.Transform):
    """A random ``size`` crop of image and mask, padding what lies outside the image (mask: ignore).

    As MMSegmentation's ``RandomCrop(cat_max_ratio=0.75)``: a crop in which a single class covers
    more than ``cat_max_ratio`` of the labelled pixels is drawn again, up to ten times, so that crops
    of nothing but sky or road do not dominate training. ``cat_max_ratio=1`` disables the check.
    """

    def __init__(
        self, size: int | Sequence[int], cat_max_ratio: float = 1.0, ignore_index: int = IGNORE_INDEX
    ) -> None:
        super().__init__()
        self.size = _pair(size)
        self.cat_max_ratio = float(cat_max_ratio)
        self.ignore_index = int(ignore_index)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        crop_h, crop_w = self.size
        pad_bottom, pad_right = max(crop_h - height, 0), max(crop_w - width, 0)
        masks = [i for i in flat_inputs if isinstance(i, tv_tensors.Mask)]
        for _ in range(10):
            top = int(torch.randint(0, max(height - crop_h, 0) + 1, ()))
            left = int(torch.randint(0, max(width - crop_w, 0) + 1, ()))
            if self.cat_max_ratio >= 1.0 or not masks or self._balanced(masks[0], top, left):
                break
        return {"top": top, "left": left, "pad": [0, 0, pad_right, pad_bottom]}

    def _balanced(self, mask: torch.Tensor, top: int, left: int) -> bool:
        crop = mask[..., top : top + self.size[0], left : left + self.size[1]]
        _, counts = torch.unique(crop[crop != self.ignore_index], return_counts=True)
        return len(counts) > 1 and int(counts.max()) / int(counts.sum()) < self.cat_max_ratio

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        fill = self.ignore_index if isinstance(inpt, tv_tensors.Mask) else 0
        if any(params["pad"]):
            inpt = self._call_kernel(F.pad, inpt, params["pad"], fill=fill)
        return self._call_kernel(F.crop, inpt, params["top"], params["left"], *self.size)


def _to_float_normalized(mean: Sequence[float], std: Sequence[float]) -> list[v2.Transform]:
    return [
        v2.ToDtype(
            {tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64, "others": None}, scale=True
        ),
        v2.Normalize(list(mean), list(std)),
    ]


def train_transforms(
    crop_size: int | Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    scale: Sequence[int] | None = None,
    ratio_range: Sequence[float] = (0.5, 2.0),
    cat_max_ratio: float = 0.75,
    hflip_prob: float = 0.5,
    photometric: bool = True,
    ignore_index: int = IGNORE_INDEX,
) -> v2.Compose:
    """The training pipeline (see the module docstring) on ``(tv_tensors.Image, tv_tensors.Mask)``."""
    steps: list[v2.Transform] = [
        RandomRescale(scale, ratio_range),
        RandomCropWithIgnore(crop_size, cat_max_ratio, ignore_index),
    ]
    if hflip_prob > 0:
        steps.append(v2.RandomHorizontalFlip(hflip_prob))
    if photometric:
        jitter = v2.ColorJitter(brightness=0.125, contrast=0.5, saturation=0.5, hue=0.05)
        steps.append(v2.RandomApply([jitter], p=0.5))
    return v2.Compose([*steps, *_to_float_normalized(mean, std)])


def eval_image_transform(
    mean: Sequence[float], std: Sequence[float], scale: Sequence[int] | None = None
) -> v2.Compose:
    """The evaluation pipeline of the *image* alone: keep-ratio resize to ``scale`` (None keeps the
    size), float conversion and normalisation. Masks are not resized (they are scored at full size)."""
    steps: list[v2.Transform] = []
    if scale is not None:
        steps.append(KeepRatioResize(scale))
    return v2.Compose([*steps, *_to_float_normalized(mean, std)])


class KeepRatioResize(v2.Transform):
    """Deterministic :func:`rescaled_size` resize (ratio 1), MMSegmentation's ``Resize(keep_ratio=True)``."""

    def __init__(self, scale: Sequence[int]) -> None:
        super().__init__()
        self.scale = tuple(int(v) for v in scale)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        return {"size": list(rescaled_size(height, width, self.scale))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self._call_kernel(F.resize, inpt, params["size"], antialias=True)


def collate_segmentation(samples: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[Any, Any]:
    """``(images, masks)``: stacked when every sample has one size (training crops, same-size images),
    else two lists (full-size evaluation images of different sizes)."""
    images, masks = zip(*samples)
    if len({tuple(i.shape) for i in images}) == 1 and len({tuple(m.shape) for m in masks}) == 1:
        return torch.stack(images), torch.stack(masks)
    return list(images), list(masks)
