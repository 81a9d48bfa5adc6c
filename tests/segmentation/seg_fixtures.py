"""Helpers of the segmentation tests: small datasets written in each real on-disk format."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from litzoo.vision.palette import voc_palette

# Tiny scenes (non-square, so height/width mix-ups show) shared by the platform runs.
SCENES = {"num_train": 16, "num_val": 6, "image_size": (48, 64), "seed": 1}


def scenes_overrides(root: Path) -> list[str]:
    """data=scenes pointed at the session's dataset (same generator parameters, so it is reused)."""
    return [
        f"data.root={root}",
        f"data.num_train={SCENES['num_train']}",
        f"data.num_val={SCENES['num_val']}",
        "data.image_size=[48,64]",
        f"data.generator_seed={SCENES['seed']}",
        "data.crop_size=[32,32]",
        "data.batch_size=4",
    ]


def write_image(path: Path, height: int, width: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def write_palette_mask(path: Path, labels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(voc_palette().reshape(-1).tolist())
    image.save(path)
    return path


def write_label_mask(path: Path, labels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(labels.astype(np.uint8), mode="L").save(path)
    return path


def write_voc(
    root: Path, splits: dict[str, Sequence[str]], labels: dict[str, np.ndarray], aug: Sequence[str] = ()
) -> Path:
    """A VOC2012 folder: JPEGImages, SegmentationClass palette PNGs, ImageSets/Segmentation lists
    (and, for `aug` ids, SegmentationClassAug grey PNGs + train_aug.txt)."""
    base = root / "VOC2012"
    for i, (name, mask) in enumerate(labels.items()):
        write_image(base / "JPEGImages" / f"{name}.jpg", *mask.shape, seed=i)
        write_palette_mask(base / "SegmentationClass" / f"{name}.png", mask)
        if name in aug:
            write_label_mask(base / "SegmentationClassAug" / f"{name}.png", mask)
    lists = base / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True, exist_ok=True)
    for split, ids in splits.items():
        (lists / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    return root
