"""Dense-prediction inference modes: whole image, sliding window, multi-scale + flip averaging.

A segmentation network maps an ``N x C x H x W`` batch to ``N x K x H x W`` class logits. How it
is applied to an evaluation image changes the published numbers a lot, so the mode is part of the
evaluation protocol (``task.val_inference`` / ``task.test_inference``):

- ``whole``: the (resized) image in one forward pass;
- ``slide``: ``crop_size`` windows every ``stride`` pixels, the logits of overlapping windows
  averaged. This is how Cityscapes numbers are produced for models trained on crops (769 x 769
  crops, stride 513): a model trained on crops and applied to the whole 1024 x 2048 frame sees
  statistics it never trained on and loses several points of mIoU. Windows are placed as in
  MMSegmentation (the last window of a row or column is shifted back to end at the border), and
  an image smaller than a window is one window, the image itself;
- ``scales`` + ``flip``: the image at each scale (a factor of its evaluation size), and mirrored,
  each inferred with the mode above; the class probabilities (softmax), resized to the output
  size, are averaged.

:func:`segment` returns class probabilities at the requested output size (the annotation's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

Forward = Callable[[torch.Tensor], torch.Tensor]
MODES = ("whole", "slide")


@dataclass(frozen=True)
class InferenceMode:
    """How to run a network over one evaluation image (see the module docstring)."""

    mode: str = "whole"
    crop_size: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    window_batch: int = 8  # windows per forward pass in slide mode

    def __post_init__(self) -> None:
        from litzoo.errors import ConfigError

        if self.mode not in MODES:
            raise ConfigError(f"Inference mode {self.mode!r} is not known; use one of {', '.join(MODES)}.")
        if self.mode == "slide" and (self.crop_size is None or self.stride is None):
            raise ConfigError(
                "Sliding-window inference needs a window size and a step: set crop_size=[h, w] and "
                "stride=[h, w] in task.val_inference / task.test_inference (e.g. 769 and 513 for Cityscapes)."
            )
        for name in ("crop_size", "stride"):
            value = getattr(self, name)
            if value is not None and min(value) < 1:
                raise ConfigError(f"Inference {name}={list(value)} must be positive.")
        if not self.scales or min(self.scales) <= 0:
            raise ConfigError(
                f"Inference scales={list(self.scales)} must be positive factors (e.g. [0.75, 1.0, 1.25])."
            )

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> InferenceMode:
        config = dict(config or {})

        def pair(value: Any) -> tuple[int, int] | None:
            if value is None:
                return None
            if isinstance(value, int):
                return value, value
            return int(value[0]), int(value[1])

        return cls(
            mode=str(config.get("mode", "whole")),
            crop_size=pair(config.get("crop_size")),
            stride=pair(config.get("stride")),
            scales=tuple(float(s) for s in (config.get("scales") or (1.0,))),
            flip=bool(config.get("flip", False)),
            window_batch=int(config.get("window_batch", 8)),
        )

    @property
    def single_pass(self) -> bool:
        return self.scales == (1.0,) and not self.flip


def window_boxes(
    height: int, width: int, crop: Sequence[int], stride: Sequence[int]
) -> list[tuple[int, int, int, int]]:
    """``(top, left, bottom, right)`` of every sliding window over an image of this size.

    MMSegmentation's placement: ``ceil((H - crop) / stride) + 1`` rows (one when the image is no
    taller than a window), the last row shifted up to end at the bottom edge; likewise for columns.
    """
    crop_h, crop_w = crop
    stride_h, stride_w = stride
    rows = max(height - crop_h + stride_h - 1, 0) // stride_h + 1
    cols = max(width - crop_w + stride_w - 1, 0) // stride_w + 1
    boxes = []
    for row in range(rows):
        for col in range(cols):
            bottom, right = min(row * stride_h + crop_h, height), min(col * stride_w + crop_w, width)
            top, left = max(bottom - crop_h, 0), max(right - crop_w, 0)
            boxes.append((top, left, bottom, right))
    return boxes


def slide_logits(
    forward: Forward, images: torch.Tensor, crop: Sequence[int], stride: Sequence[int], window_batch: int = 8
) -> torch.Tensor:
    """Logits of ``images`` (``N x C x H x W``) from overlapping windows, averaged where they overlap."""
    height, width = images.shape[-2:]
    boxes = window_boxes(height, width, crop, stride)
    total: torch.Tensor | None = None
    count = images.new_zeros((1, 1, height, width))
    for start in range(0, len(boxes), max(1, window_batch)):
        chunk = boxes[start : start + window_batch]
        # Every window of one image has one size (windows are shifted, not cut, at the borders), so the
        # windows of all images in the batch stack into one forward pass.
        crops = torch.cat([images[..., top:bottom, left:right] for top, left, bottom, right in chunk])
        logits = forward(crops)
        if total is None:
            total = logits.new_zeros((images.shape[0], logits.shape[1], height, width))
        for index, (top, left, bottom, right) in enumerate(chunk):
            part = logits[index * images.shape[0] : (index + 1) * images.shape[0]]
            total[..., top:bottom, left:right] += part
            count[..., top:bottom, left:right] += 1
    assert total is not None
    return total / count


def segment(
    forward: Forward, images: torch.Tensor, mode: InferenceMode, output_size: Sequence[int] | None = None
) -> torch.Tensor:
    """Class probabilities (``N x K x h x w``, softmax) of ``images`` at ``output_size`` (default: theirs)."""
    height, width = images.shape[-2:]
    output_size = tuple(output_size) if output_size is not None else (height, width)

    def logits_of(batch: torch.Tensor) -> torch.Tensor:
        if mode.mode == "slide":
            return slide_logits(forward, batch, mode.crop_size, mode.stride, mode.window_batch)
        return forward(batch)

    def resized(logits: torch.Tensor) -> torch.Tensor:
        if tuple(logits.shape[-2:]) == output_size:
            return logits
        return F.interpolate(logits, size=output_size, mode="bilinear", align_corners=False)

    total: torch.Tensor | None = None
    for scale in mode.scales:
        if scale == 1.0:
            scaled = images
        else:
            size = (max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5)))
            scaled = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        views = [(scaled, False), (scaled.flip(-1), True)] if mode.flip else [(scaled, False)]
        for view, flipped in views:
            logits = logits_of(view)
            if flipped:
                logits = logits.flip(-1)
            probabilities = resized(logits).softmax(dim=1)
            total = probabilities if total is None else total + probabilities
    assert total is not None
    return total / (len(mode.scales) * (2 if mode.flip else 1))
