"""Embedded detection dataset: procedurally drawn shapes written to disk in the COCO format.

The detection family has no dataset that can be downloaded here, so this module draws
one and writes it exactly as COCO is distributed::

    <root>/annotations/instances_train2017.json        boxes, polygon / RLE masks, crowd regions
    <root>/annotations/instances_val2017.json
    <root>/annotations/person_keypoints_train2017.json one keypoint category, "shape"
    <root>/annotations/person_keypoints_val2017.json
    <root>/train2017/000000000001.jpg ...
    <root>/val2017/...

Everything downstream (loader, transforms, COCOeval) then runs the real COCO code path.

What is drawn: each image has a smooth noisy background, one to ``max_shapes`` shapes
(circle, square, triangle) of random size and colour that may overlap, and in some
images a "crowd" of tiny circles annotated as one ``iscrowd=1`` region in uncompressed
RLE, as COCO does for crowds. Unoccluded shapes carry their outline as a polygon;
occluded ones carry their visible part as compressed RLE, so both mask encodings are
exercised. Every shape has four keypoints (``top``, ``left``, ``right``, ``bottom``;
left/right are image-left/right, so horizontal flips must swap them), visibility 2 when
seen and 1 when covered by a later shape.

Generation is deterministic given the parameters and idempotent: a marker file holding
the generator version and parameters is written last, and a matching marker means the
dataset on disk is complete and is reused.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from litzoo.data.generated import ensure_generated

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
MARKER_NAME = "litzoo_shapes.json"

# Category ids are deliberately non-contiguous, as COCO's are (1..90 with gaps), so the
# id <-> contiguous-label mapping is exercised on the default dataset and not only on COCO.
SHAPE_CATEGORIES: tuple[dict, ...] = (
    {"id": 1, "name": "circle", "supercategory": "shape"},
    {"id": 2, "name": "square", "supercategory": "shape"},
    {"id": 4, "name": "triangle", "supercategory": "shape"},
)
SHAPE_KEYPOINT_NAMES: tuple[str, ...] = ("top", "left", "right", "bottom")
# COCO's skeleton is 1-based.
SHAPE_SKELETON: tuple[tuple[int, int], ...] = ((1, 2), (1, 3), (2, 4), (3, 4))
# Per-keypoint OKS sigmas for COCOeval; 0.07 is about the mean of COCO's 17 person sigmas.
SHAPE_KPT_OKS_SIGMAS: tuple[float, ...] = (0.07, 0.07, 0.07, 0.07)
KEYPOINT_CATEGORY = {
    "id": 1,
    "name": "shape",
    "supercategory": "shape",
    "keypoints": list(SHAPE_KEYPOINT_NAMES),
    "skeleton": [list(edge) for edge in SHAPE_SKELETON],
}
SPLITS = ("train2017", "val2017")


@dataclass(frozen=True)
class ShapesParams:
    """Everything that determines the generated files (stored in the marker)."""

    num_train: int = 300
    num_val: int = 60
    image_height: int = 128
    image_width: int = 128
    seed: int = 0
    max_shapes: int = 3
    min_size: int = 20
    max_size: int = 56
    crowd_fraction: float = 0.1


def generate_shapes_coco(
    root: str | os.PathLike,
    num_train: int = 300,
    num_val: int = 60,
    image_size: int | Sequence[int] = 128,
    seed: int = 0,
    max_shapes: int = 3,
    crowd_fraction: float = 0.1,
) -> Path:
    """Write the shapes dataset under ``root`` in COCO layout (or reuse a complete one) and return ``root``.

    ``image_size`` is an int (square) or ``(height, width)``. Safe to call from several
    processes at once: each writes into its own temporary folder and the first to finish
    moves it into place.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    params = ShapesParams(
        num_train=num_train,
        num_val=num_val,
        image_height=int(height),
        image_width=int(width),
        seed=seed,
        max_shapes=max_shapes,
        min_size=max(8, min(height, width) // 6),
        max_size=max(12, min(height, width) * 7 // 16),
        crowd_fraction=crowd_fraction,
    )
    root = Path(root)
    marker = {
        "generator": "litzoo.datamodules.detection.shapes",
        "version": GENERATOR_VERSION,
        "params": asdict(params),
    }
    if not ensure_generated(
        root, "shapes", MARKER_NAME, marker, ("annotations", *SPLITS), lambda out: _write_dataset(out, params)
    ):
        return root
    log.info("Generated the shapes dataset (%d train / %d val images) in %s", num_train, num_val, root)
    return root


def _write_dataset(out: Path, params: ShapesParams) -> None:
    (out / "annotations").mkdir()
    first_image_id = 1
    for split_index, (split, count) in enumerate(zip(SPLITS, (params.num_train, params.num_val))):
        (out / split).mkdir()
        rng = np.random.default_rng([params.seed, split_index])
        instances, keypoints = _draw_split(out / split, count, first_image_id, params, rng)
        _dump(out / "annotations" / f"instances_{split}.json", instances)
        _dump(out / "annotations" / f"person_keypoints_{split}.json", keypoints)
        first_image_id += count


def _dump(path: Path, obj: dict) -> None:
    with open(path, "w") as f:
        json.dump(obj, f)


def _draw_split(
    image_dir: Path, count: int, first_image_id: int, params: ShapesParams, rng: np.random.Generator
) -> tuple[dict, dict]:
    h, w = params.image_height, params.image_width
    info = {"description": "litzoo procedurally drawn shapes", "version": str(GENERATOR_VERSION)}
    images, instance_anns, keypoint_anns = [], [], []
    ann_id = first_image_id * 100  # unique across splits as long as an image has < 100 annotations
    for image_id in range(first_image_id, first_image_id + count):
        pixels, objects = _draw_image(h, w, params, rng)
        file_name = f"{image_id:012d}.jpg"
        Image.fromarray(pixels).save(image_dir / file_name, quality=95)
        images.append({"id": image_id, "file_name": file_name, "height": h, "width": w})
        for obj in objects:
            ann = {
                "id": ann_id,
                "image_id": image_id,
                "category_id": obj["category_id"],
                "segmentation": obj["segmentation"],
                "area": obj["area"],
                "bbox": obj["bbox"],
                "iscrowd": obj["iscrowd"],
            }
            instance_anns.append(ann)
            kps = obj.get("keypoints", [0.0] * 3 * len(SHAPE_KEYPOINT_NAMES))
            keypoint_anns.append(
                {
                    **ann,
                    "category_id": KEYPOINT_CATEGORY["id"],
                    "keypoints": kps,
                    "num_keypoints": int(sum(v > 0 for v in kps[2::3])),
                }
            )
            ann_id += 1
    instances = {
        "info": info,
        "images": images,
        "annotations": instance_anns,
        "categories": [dict(c) for c in SHAPE_CATEGORIES],
    }
    keypoints = {
        "info": info,
        "images": images,
        "annotations": keypoint_anns,
        "categories": [dict(KEYPOINT_CATEGORY)],
    }
    return instances, keypoints


def _draw_image(h: int, w: int, params: ShapesParams, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    background = _background(h, w, rng)
    canvas = background.copy()
    objects: list[dict] = []

    crowd_mask = None
    if rng.random() < params.crowd_fraction:
        crowd_mask, crowd_category = _crowd_mask(h, w, rng)
        canvas[crowd_mask.astype(bool)] = _contrasting_colour(background, rng)

    # Place shapes one by one; a placement is rejected if it would hide more than 40% of an
    # earlier shape, so every annotated instance stays recognisable.
    shapes: list[dict] = []
    for _ in range(int(rng.integers(1, params.max_shapes + 1))):
        for _attempt in range(20):
            shape = _random_shape(h, w, params, rng)
            if all(
                _visible_fraction(s, [*_later_masks(shapes, s), shape["full_mask"]]) >= 0.6 for s in shapes
            ):
                shapes.append(shape)
                break

    for shape in shapes:
        canvas[shape["full_mask"].astype(bool)] = _contrasting_colour(background, rng)
    noise = rng.normal(0.0, 6.0, size=canvas.shape)
    pixels = np.clip(canvas + noise, 0, 255).astype(np.uint8)

    if crowd_mask is not None:
        visible = crowd_mask.copy()
        for s in shapes:
            visible[s["full_mask"].astype(bool)] = 0
        if visible.sum() > 0:
            # COCO stores crowd regions as uncompressed RLE (a list of run lengths).
            objects.append(_annotation_from_mask(visible, crowd_category, iscrowd=1, uncompressed=True))

    for index, shape in enumerate(shapes):
        occluders = [s["full_mask"] for s in shapes[index + 1 :]]
        covered = np.zeros((h, w), dtype=bool)
        for m in occluders:
            covered |= m.astype(bool)
        visible = shape["full_mask"].copy()
        visible[covered] = 0
        if not covered[shape["full_mask"].astype(bool)].any():
            obj = {
                "category_id": shape["category_id"],
                "segmentation": [shape["polygon"]],
                "area": float(shape["full_mask"].sum()),
                "bbox": _polygon_bbox(shape["polygon"]),
                "iscrowd": 0,
            }
        else:
            obj = _annotation_from_mask(visible, shape["category_id"], iscrowd=0, uncompressed=False)
        keypoints = []
        for x, y in shape["keypoints"]:
            col = min(max(int(round(x)), 0), w - 1)
            row = min(max(int(round(y)), 0), h - 1)
            keypoints += [round(float(x), 2), round(float(y), 2), 1 if covered[row, col] else 2]
        obj["keypoints"] = keypoints
        objects.append(obj)
    return pixels, objects


def _later_masks(shapes: list[dict], shape: dict) -> list[np.ndarray]:
    """Masks of the shapes placed after ``shape`` (those drawn on top of it)."""
    index = next(i for i, s in enumerate(shapes) if s is shape)
    return [s["full_mask"] for s in shapes[index + 1 :]]


def _visible_fraction(shape: dict, occluders: list[np.ndarray]) -> float:
    full = shape["full_mask"].astype(bool)
    covered = np.zeros_like(full)
    for m in occluders:
        covered |= m.astype(bool)
    return float((full & ~covered).sum()) / max(float(full.sum()), 1.0)


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    # Low-frequency colour field: a 4x4 grid of random colours upsampled bilinearly.
    coarse = rng.uniform(40, 215, size=(4, 4, 3)).astype(np.uint8)
    smooth = Image.fromarray(coarse).resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(smooth, dtype=np.float64)


def _contrasting_colour(background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    mean = background.reshape(-1, 3).mean(axis=0)
    colour = rng.uniform(0, 255, size=3)
    for _ in range(50):
        if np.abs(colour - mean).sum() > 150:
            break
        colour = rng.uniform(0, 255, size=3)
    return colour


def _random_shape(h: int, w: int, params: ShapesParams, rng: np.random.Generator) -> dict:
    category = SHAPE_CATEGORIES[int(rng.integers(len(SHAPE_CATEGORIES)))]
    size = float(rng.uniform(params.min_size, min(params.max_size, h - 2, w - 2)))
    half = size / 2
    cx = float(rng.uniform(half + 1, w - half - 1))
    cy = float(rng.uniform(half + 1, h - half - 1))
    name = category["name"]
    if name == "circle":
        angles = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        vertices = np.stack([cx + half * np.cos(angles), cy + half * np.sin(angles)], axis=1)
        keypoints = [(cx, cy - half), (cx - half, cy), (cx + half, cy), (cx, cy + half)]
    elif name == "square":
        vertices = np.array(
            [[cx - half, cy - half], [cx + half, cy - half], [cx + half, cy + half], [cx - half, cy + half]]
        )
        keypoints = [(cx, cy - half), (cx - half, cy), (cx + half, cy), (cx, cy + half)]
    else:  # triangle, apex up
        vertices = np.array([[cx, cy - half], [cx + half, cy + half], [cx - half, cy + half]])
        keypoints = [(cx, cy - half), (cx - half, cy + half), (cx + half, cy + half), (cx, cy + half)]
    polygon = [round(float(v), 2) for v in vertices.reshape(-1)]
    # Rasterise with pycocotools, the same code that decodes the annotation, so that the
    # drawn pixels and the mask agree exactly.
    full_mask = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([polygon], h, w)))
    return {"category_id": category["id"], "polygon": polygon, "full_mask": full_mask, "keypoints": keypoints}


def _crowd_mask(h: int, w: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    category = SHAPE_CATEGORIES[0]  # crowds of tiny circles
    region = min(h, w) // 3
    x0 = int(rng.integers(0, w - region))
    y0 = int(rng.integers(0, h - region))
    ys, xs = np.mgrid[0:h, 0:w]
    mask = np.zeros((h, w), dtype=np.uint8)
    for _ in range(int(rng.integers(5, 9))):
        r = float(rng.uniform(2, 4))
        cx = x0 + float(rng.uniform(r, region - r))
        cy = y0 + float(rng.uniform(r, region - r))
        mask[(xs - cx) ** 2 + (ys - cy) ** 2 <= r * r] = 1
    return mask, category["id"]


def _polygon_bbox(polygon: list[float]) -> list[float]:
    xs, ys = polygon[0::2], polygon[1::2]
    return [round(min(xs), 2), round(min(ys), 2), round(max(xs) - min(xs), 2), round(max(ys) - min(ys), 2)]


def _annotation_from_mask(mask: np.ndarray, category_id: int, iscrowd: int, uncompressed: bool) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    if uncompressed:
        segmentation = {"counts": _run_lengths(mask), "size": [int(mask.shape[0]), int(mask.shape[1])]}
    else:
        segmentation = {"counts": rle["counts"].decode("ascii"), "size": [int(s) for s in rle["size"]]}
    return {
        "category_id": category_id,
        "segmentation": segmentation,
        "area": float(mask_utils.area(rle)),
        "bbox": [float(v) for v in mask_utils.toBbox(rle)],
        "iscrowd": iscrowd,
    }


def _run_lengths(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE: alternating run lengths of 0s and 1s in column-major order, starting with 0s."""
    flat = np.asarray(mask, dtype=np.uint8).reshape(-1, order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0] == 1:
        runs = [0, *runs]
    return [int(r) for r in runs]
