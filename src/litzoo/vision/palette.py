"""Label-map colours: PASCAL VOC's palette, Cityscapes' colours, palette PNGs and overlays.

A semantic-segmentation label map is stored, as PASCAL VOC distributes it, as a *palette PNG*:
one byte per pixel holding the class index, plus a colour table that makes the file viewable.
Reading it back with PIL gives the indices, not the colours. This module writes such files
(atomically: a reader never sees half a PNG) and blends a label map over its image for a
human to look at. numpy and PIL only, no torch.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

IGNORE_INDEX = 255

# The colours of Cityscapes' 19 train ids (cityscapesscripts' labels.py), in train-id order.
CITYSCAPES_COLOURS = (
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (102, 102, 156),
    (190, 153, 153),
    (153, 153, 153),
    (250, 170, 30),
    (220, 220, 0),
    (107, 142, 35),
    (152, 251, 152),
    (70, 130, 180),
    (220, 20, 60),
    (255, 0, 0),
    (0, 0, 142),
    (0, 0, 70),
    (0, 60, 100),
    (0, 80, 100),
    (0, 0, 230),
    (119, 11, 32),
)


def voc_palette(num_colours: int = 256) -> np.ndarray:
    """PASCAL VOC's colour map (``num_colours x 3`` uint8): the devkit's bit-interleaving rule,
    so class 1 is dark red (128, 0, 0) and index 255 (void) is (224, 224, 192)."""
    palette = np.zeros((num_colours, 3), dtype=np.uint8)
    for index in range(num_colours):
        value, red, green, blue = index, 0, 0, 0
        for bit in range(8):
            red |= ((value >> 0) & 1) << (7 - bit)
            green |= ((value >> 1) & 1) << (7 - bit)
            blue |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette[index] = (red, green, blue)
    return palette


def full_palette(colours: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """A 256-entry palette: `colours` for the first classes, VOC's colour map for the rest."""
    palette = voc_palette(256)
    if colours:
        palette[: len(colours)] = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
    return palette


def colourize(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """``H x W x 3`` uint8 colours of an ``H x W`` label map."""
    return palette[np.asarray(labels, dtype=np.uint8)]


def save_palette_png(path: str | os.PathLike, labels: np.ndarray, palette: np.ndarray) -> Path:
    """Write `labels` (``H x W`` class indices, 255 = ignore) as a palette PNG, atomically."""
    image = Image.fromarray(np.asarray(labels, dtype=np.uint8), mode="P")
    image.putpalette(np.asarray(palette, dtype=np.uint8).reshape(-1).tolist())
    return _save_atomic(image, Path(path), "PNG")


def overlay(image: np.ndarray, labels: np.ndarray, palette: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The label colours blended over an ``H x W x 3`` uint8 image (ignored pixels left as they are)."""
    colours = colourize(labels, palette).astype(np.float32)
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colours
    keep = np.asarray(labels) == IGNORE_INDEX
    blended[keep] = image[keep]
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def save_image(path: str | os.PathLike, pixels: np.ndarray, quality: int = 90) -> Path:
    """Write an ``H x W x 3`` uint8 image (JPEG or PNG by suffix), atomically."""
    path = Path(path)
    kind = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    return _save_atomic(Image.fromarray(np.asarray(pixels, dtype=np.uint8)), path, kind, quality=quality)


def _save_atomic(image: Image.Image, path: Path, kind: str, **options: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            image.save(file, format=kind, **(options if kind == "JPEG" else {}))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
