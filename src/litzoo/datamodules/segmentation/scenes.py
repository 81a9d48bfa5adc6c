"""Embedded segmentation dataset: generated photo-like scenes written in PASCAL VOC's layout.

No segmentation dataset can be downloaded here, so this module draws one and writes it exactly
as VOC2012 is distributed, and ``data=scenes`` reads it with the VOC reader::

    <root>/VOC2012/JPEGImages/scene_000001.jpg            RGB JPEG
    <root>/VOC2012/SegmentationClass/scene_000001.png     palette PNG (VOC colours): pixel = class,
                                                          255 = the void border around every object
    <root>/VOC2012/ImageSets/Segmentation/train.txt, val.txt, trainval.txt

What is drawn: a textured background (a smooth colour field, stripes or blotches, sensor noise)
and two to ``max_objects`` overlapping objects of five classes -- ball (disc), box (rotated
rectangle), roof (triangle), ring (annulus) and pole (thick bar). Each class has a typical colour
with a wide random spread, shading and noise, so colour alone does not decide the class and
shape and context matter, as in photos. Later objects occlude earlier ones. As in VOC, a band
of pixels along every object boundary is labelled 255 (ignored by loss and metrics).

Generation is deterministic given the parameters and idempotent: a marker file holding the
generator version and parameters is written last, and a matching marker means the dataset on
disk is complete and is reused. Files are written into a temporary folder and moved into place,
so an interrupted generation leaves nothing half-written behind.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from litzoo.data.generated import ensure_generated
from litzoo.errors import DataError
from litzoo.vision.palette import IGNORE_INDEX, save_image, save_palette_png, voc_palette

log = logging.getLogger("litzoo")

GENERATOR_VERSION = 1
MARKER_NAME = ".litzoo_scenes.json"
SCENE_CLASSES = ("background", "ball", "box", "roof", "ring", "pole")
# Typical colour of each object class (RGB); each object draws its own around it.
CLASS_COLOURS = {1: (200, 60, 50), 2: (60, 90, 190), 3: (70, 160, 60), 4: (220, 190, 50), 5: (150, 70, 170)}
YEAR_DIR = "VOC2012"


@dataclass(frozen=True)
class ScenesParams:
    num_train: int = 300
    num_val: int = 60
    image_height: int = 120
    image_width: int = 160
    seed: int = 0
    max_objects: int = 5
    border: int = 1  # half-width of the 255 band around object boundaries, in pixels


def generate_scenes_voc(
    root: str | os.PathLike,
    num_train: int = 300,
    num_val: int = 60,
    image_size: int | Sequence[int] = (120, 160),
    seed: int = 0,
    max_objects: int = 5,
    border: int = 1,
) -> Path:
    """Write the scenes under ``root`` in VOC layout (or reuse a complete set) and return ``root``.

    ``image_size`` is an int (square) or ``(height, width)``. Safe to call from several processes at
    once: each writes into its own temporary folder and the first to finish moves it into place.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else (int(v) for v in image_size)
    if min(height, width) < 32 or max_objects < 2 or num_train < 1 or num_val < 1:
        raise DataError(
            f"The scenes generator needs images of at least 32 px (got {height}x{width}), "
            f"max_objects >= 2 (got {max_objects}) and at least one train and one val image."
        )
    params = ScenesParams(num_train, num_val, height, width, seed, max_objects, border)
    root = Path(root).expanduser()
    marker = {"version": GENERATOR_VERSION, "params": asdict(params), "classes": list(SCENE_CLASSES)}
    if not ensure_generated(
        root, "scenes", MARKER_NAME, marker, (YEAR_DIR,), lambda out: _write_dataset(out, params)
    ):
        return root
    log.info("Generated the scenes dataset (%d train / %d val images) in %s", num_train, num_val, root)
    return root


def _write_dataset(out: Path, params: ScenesParams) -> None:
    base = out / YEAR_DIR
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / folder).mkdir(parents=True)
    palette = voc_palette()
    splits = {
        "train": range(1, params.num_train + 1),
        "val": range(params.num_train + 1, params.num_train + params.num_val + 1),
    }
    for split, numbers in splits.items():
        ids = []
        for number in numbers:
            # One generator per image: image n is the same whatever the split sizes.
            rng = np.random.default_rng([params.seed, number])
            image, labels = draw_scene(
                params.image_height, params.image_width, params.max_objects, params.border, rng
            )
            name = f"scene_{number:06d}"
            save_image(base / "JPEGImages" / f"{name}.jpg", image, quality=92)
            save_palette_png(base / "SegmentationClass" / f"{name}.png", labels, palette)
            ids.append(name)
        (base / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    trainval = [f"scene_{n:06d}" for n in (*splits["train"], *splits["val"])]
    (base / "ImageSets" / "Segmentation" / "trainval.txt").write_text("\n".join(trainval) + "\n")


# --------------------------------------------------------------------------- drawing


def draw_scene(
    height: int, width: int, max_objects: int, border: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One ``H x W x 3`` uint8 image and its ``H x W`` uint8 label map (255 on object boundaries)."""
    image = _background(height, width, rng)
    labels = np.zeros((height, width), dtype=np.uint8)
    for _ in range(int(rng.integers(2, max_objects + 1))):
        label = int(rng.integers(1, len(SCENE_CLASSES)))
        region = _object_mask(label, height, width, rng)
        if region.sum() < 12:
            continue
        image[region] = _object_pixels(label, region, rng)
        labels[region] = label
    image += rng.normal(0, 6, size=image.shape)  # sensor noise over everything
    if border > 0:
        labels[_boundary(labels, border)] = IGNORE_INDEX
    return np.clip(image, 0, 255).astype(np.uint8), labels


def _background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    coarse = rng.uniform(30, 225, size=(3, 4, 3))
    coarse = 0.4 * coarse + 0.6 * coarse.mean(axis=2, keepdims=True)  # mostly muted colours
    field = np.asarray(
        Image.fromarray(coarse.astype(np.uint8)).resize((width, height), Image.Resampling.BILINEAR),
        dtype=np.float64,
    )
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    kind = rng.integers(0, 3)
    if kind == 0:  # stripes (walls, fences, fields)
        angle, period = rng.uniform(0, np.pi), rng.uniform(6, 20)
        wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
        field += (rng.uniform(8, 22) * wave)[..., None]
    elif kind == 1:  # blotches (foliage, gravel)
        blotch = rng.uniform(-1, 1, size=(height // 8 + 1, width // 8 + 1))
        blotch = (
            np.asarray(
                Image.fromarray(((blotch + 1) * 127).astype(np.uint8)).resize(
                    (width, height), Image.Resampling.BICUBIC
                ),
                dtype=np.float64,
            )
            / 127
            - 1
        )
        field += (rng.uniform(10, 28) * blotch)[..., None]
    return field  # kind 2: the plain smooth field


def _object_mask(label: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    side = min(height, width)
    size = rng.uniform(side / 4, side / 1.7)
    cy, cx = rng.uniform(0, height), rng.uniform(0, width)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    angle = rng.uniform(0, 2 * np.pi)

    def rotated(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        c, s = np.cos(angle), np.sin(angle)
        return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]

    r = size / 2
    if label == 1:  # ball
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
    elif label == 2:  # box
        aspect = rng.uniform(0.6, 1.0)
        draw.polygon(
            rotated([(-r, -r * aspect), (r, -r * aspect), (r, r * aspect), (-r, r * aspect)]), fill=1
        )
    elif label == 3:  # roof
        draw.polygon(rotated([(0, -r), (r * 0.95, r * 0.6), (-r * 0.95, r * 0.6)]), fill=1)
    elif label == 4:  # ring
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
        inner = r * rng.uniform(0.45, 0.65)
        draw.ellipse([cx - inner, cy - inner, cx + inner, cy + inner], fill=0)
    else:  # pole
        length, thickness = size * 1.3, max(3.0, size * rng.uniform(0.14, 0.22))
        draw.polygon(
            rotated(
                [
                    (-length / 2, -thickness / 2),
                    (length / 2, -thickness / 2),
                    (length / 2, thickness / 2),
                    (-length / 2, thickness / 2),
                ]
            ),
            fill=1,
        )
    return np.asarray(canvas, dtype=bool)


def _object_pixels(label: int, region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    colour = np.asarray(CLASS_COLOURS[label], dtype=np.float64) + rng.normal(0, 28, size=3)
    ys, xs = np.nonzero(region)
    # Shading: a linear light gradient across the object, as if lit from one side.
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction) + 1e-9
    extent = max(float(np.ptp(ys)), float(np.ptp(xs)), 1.0)
    shade = ((ys - ys.mean()) * direction[0] + (xs - xs.mean()) * direction[1]) / extent
    pixels = colour[None, :] * (1.0 + 0.35 * shade[:, None])
    return pixels + rng.normal(0, 8, size=pixels.shape)


def _boundary(labels: np.ndarray, half_width: int) -> np.ndarray:
    """Pixels within `half_width` of a change of label (VOC's void band around objects)."""
    edge = np.zeros(labels.shape, dtype=bool)
    vertical = labels[1:, :] != labels[:-1, :]
    horizontal = labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    for _ in range(half_width - 1):
        grown = edge.copy()
        grown[1:, :] |= edge[:-1, :]
        grown[:-1, :] |= edge[1:, :]
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        edge = grown
    return edge
