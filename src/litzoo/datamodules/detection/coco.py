"""COCO-format datasets: detection / instance segmentation / keypoints, and top-down pose crops.

The on-disk layout is COCO's own::

    <root>/annotations/instances_<split>.json         boxes and masks
    <root>/annotations/person_keypoints_<split>.json  keypoints (targets "keypoints": task=pose)
    <root>/<split>/<file_name>                         images, e.g. <root>/val2017/000000039769.jpg

Any dataset in COCO format works the same way by giving the JSON and the image folder
directly (:class:`CocoDetection`). Annotations are read with ``pycocotools.COCO`` and masks
decoded with ``pycocotools.mask`` (polygons, compressed and uncompressed RLE).

Targets follow torchvision's detection convention, with labels made contiguous (1..C,
0 is background) and mapped back through :attr:`CocoDetection.label_to_cat_id` when
writing detections. As in torchvision's references, crowd regions are kept out of the
training targets and boxes are clamped to the image, and boxes with no area are dropped
(with one counted warning per dataset). The ``COCO`` object itself stays untouched,
crowds included, for COCOeval.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools.coco import COCO
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.io import ImageReadMode, decode_image

from litzoo.errors import ConfigError, DataError
from litzoo.vision.detection_transforms import flip_pairs_from_names, flip_permutation
from litzoo.vision.keypoints import (
    affine_points,
    box_to_center_scale,
    crop_image,
    encode_heatmaps,
    get_affine_transform,
)

log = logging.getLogger(__name__)

# What a dataset loads besides images and labels: boxes; boxes and masks; boxes and keypoints.
TARGETS = ("boxes", "masks", "keypoints")
COCO_LAYOUT = """\
  <root>/
    annotations/instances_<split>.json          (boxes, masks: task=detection, instance_segmentation)
    annotations/person_keypoints_<split>.json   (keypoints: task=pose)
    <split>/                                    (the images, e.g. <root>/val2017/000000039769.jpg)"""

Transforms = Callable[[Any, dict], tuple[Any, dict]]


# --------------------------------------------------------------------------- layout


def check_targets(targets: str) -> None:
    """`data.targets` must be one of `TARGETS`."""
    if targets not in TARGETS:
        raise ConfigError(
            f"data.targets={targets!r} is not known; use one of {', '.join(TARGETS)} "
            "(the task config sets it: boxes for detection, masks for instance_segmentation, "
            "keypoints for pose)."
        )


def coco_annotation_path(root: str | os.PathLike, split: str, targets: str = "boxes") -> Path:
    """Where COCO keeps the annotations of ``split`` with ``targets``."""
    stem = "person_keypoints" if targets == "keypoints" else "instances"
    return Path(root) / "annotations" / f"{stem}_{split}.json"


def has_coco_split(root: str | os.PathLike, split: str, targets: str = "boxes") -> bool:
    """True when ``split`` has annotations under ``root`` (COCO's test2017 ships images only)."""
    return coco_annotation_path(root, split, targets).is_file()


def check_coco_layout(root: str | os.PathLike, split: str, targets: str = "boxes") -> tuple[Path, Path]:
    """Return ``(annotation_file, image_dir)`` for ``split``, or raise :class:`DataError` showing the layout."""
    check_targets(targets)
    root = Path(root)
    ann_file = coco_annotation_path(root, split, targets)
    image_dir = root / split
    missing = [str(p) for p in (ann_file, image_dir) if not p.exists()]
    if missing:
        raise DataError(
            f"COCO dataset at {root} is incomplete for split '{split}': missing {' and '.join(missing)}. "
            f"The expected layout is\n{COCO_LAYOUT}\nFix data.root (or the split names), or use "
            "data=coco_custom with explicit paths to an annotation JSON and an image folder."
        )
    return ann_file, image_dir


def load_coco(ann_file: str | os.PathLike) -> COCO:
    """Read a COCO annotation file into ``pycocotools.COCO`` with clear errors and without its prints."""
    path = Path(ann_file)
    if not path.is_file():
        raise DataError(
            f"COCO annotation file {path} does not exist. Check the dataset path or the split name."
        )
    try:
        with open(path) as f:
            dataset = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(
            f"COCO annotation file {path} is not valid JSON ({exc}). Re-download or re-export it."
        ) from exc
    if not isinstance(dataset, dict) or not {"images", "annotations", "categories"} <= dataset.keys():
        raise DataError(
            f"COCO annotation file {path} lacks the 'images', 'annotations' and 'categories' lists of the "
            "COCO format. Export the dataset in COCO instances format (or person_keypoints for pose)."
        )
    _check_references(dataset, path)
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        coco.createIndex()
    return coco


def _check_references(dataset: dict, path: Path) -> None:
    category_ids = {c["id"] for c in dataset["categories"]}
    image_ids = {img["id"] for img in dataset["images"]}
    for ann in dataset["annotations"]:
        if ann.get("category_id") not in category_ids:
            raise DataError(
                f"Annotation id {ann.get('id')} in {path} has category_id {ann.get('category_id')}, which is not "
                f"in 'categories' (ids {sorted(category_ids)}). Add the category or fix the annotation."
            )
        if ann.get("image_id") not in image_ids:
            raise DataError(
                f"Annotation id {ann.get('id')} in {path} refers to image_id {ann.get('image_id')}, which is not "
                "in 'images'. Add the image record or remove the annotation."
            )


def read_image(path: Path, expected_hw: tuple[int, int] | None = None) -> tv_tensors.Image:
    """Decode an image file to a uint8 RGB ``tv_tensors.Image``; undecodable files raise :class:`DataError`."""
    if not path.is_file():
        raise DataError(
            f"Image file {path} listed in the annotations does not exist. Check the image folder."
        )
    try:
        image = decode_image(str(path), mode=ImageReadMode.RGB)
    except (RuntimeError, ValueError) as exc:
        raise DataError(
            f"Image file {path} cannot be decoded ({exc}). Replace the file or remove it "
            "from the annotations."
        ) from exc
    if expected_hw is not None and tuple(image.shape[-2:]) != tuple(expected_hw):
        raise DataError(
            f"Image file {path} is {image.shape[-1]}x{image.shape[-2]} (WxH) but its annotation says "
            f"{expected_hw[1]}x{expected_hw[0]}; masks and boxes would not line up. Fix the image record."
        )
    return tv_tensors.Image(image)


# --------------------------------------------------------------------------- detection dataset


class CocoDetection(Dataset):
    """A COCO-format dataset returning ``(tv_tensors.Image, target)`` in torchvision's detection convention.

    ``target`` holds ``boxes`` (``BoundingBoxes`` XYXY float32), ``labels`` (int64, 1..C),
    ``area``, ``iscrowd``, ``image_id``, plus ``masks`` (``Mask`` uint8, N x H x W) for
    ``targets="masks"`` and ``keypoints`` (N x K x 3 float: x, y, visibility) for
    ``targets="keypoints"``.

    Args:
        ann_file: COCO annotation JSON.
        image_dir: folder holding the images named in the JSON.
        targets: ``"boxes"``, ``"masks"`` (boxes and masks) or ``"keypoints"`` (boxes and keypoints).
        transforms: callable ``(image, target) -> (image, target)``.
        include_crowd: keep ``iscrowd=1`` regions in the targets (off for training, as in torchvision).
        remove_images_without_annotations: drop images with no usable instance (training).
        min_keypoints_per_image: with ``targets="keypoints"`` and removal on, also drop images with
            fewer visible keypoints (torchvision's references use 10 for COCO persons).
    """

    def __init__(
        self,
        ann_file: str | os.PathLike,
        image_dir: str | os.PathLike,
        targets: str = "boxes",
        transforms: Transforms | None = None,
        include_crowd: bool = False,
        remove_images_without_annotations: bool = False,
        min_keypoints_per_image: int = 0,
    ) -> None:
        check_targets(targets)
        self.ann_file = Path(ann_file)
        self.image_dir = Path(image_dir)
        if not self.image_dir.is_dir():
            raise DataError(
                f"Image folder {self.image_dir} does not exist. COCO keeps the images of a split in "
                f"<root>/<split>/; the expected layout is\n{COCO_LAYOUT}"
            )
        self.targets = targets
        self.transforms = transforms
        self.include_crowd = include_crowd
        self.coco = load_coco(self.ann_file)

        categories = sorted(self.coco.loadCats(self.coco.getCatIds()), key=lambda c: c["id"])
        self.cat_id_to_label: dict[int, int] = {c["id"]: i + 1 for i, c in enumerate(categories)}
        self.label_to_cat_id: dict[int, int] = {v: k for k, v in self.cat_id_to_label.items()}
        self.class_names: list[str] = ["__background__"] + [c["name"] for c in categories]
        self.keypoint_names: list[str] = []
        self.skeleton: list[list[int]] = []
        if targets == "keypoints":
            self._read_keypoint_schema(categories)
        self.flip_pairs = flip_pairs_from_names(self.keypoint_names)

        self._anns_by_image = self._usable_annotations()
        image_ids = sorted(self.coco.getImgIds())
        if remove_images_without_annotations:
            image_ids = [i for i in image_ids if self._is_trainable(i, min_keypoints_per_image)]
        self.ids: list[int] = image_ids

    @property
    def num_classes(self) -> int:
        """Classes including background, the ``num_classes`` torchvision's detection models expect."""
        return len(self.class_names)

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    def _read_keypoint_schema(self, categories: list[dict]) -> None:
        with_kps = [c for c in categories if c.get("keypoints")]
        if not with_kps:
            raise DataError(
                f"{self.ann_file} has no category with a 'keypoints' list, so it cannot be used for pose. "
                "Use the person_keypoints_<split>.json file (or add 'keypoints' and 'skeleton' to the category)."
            )
        if any(c["keypoints"] != with_kps[0]["keypoints"] for c in with_kps):
            raise DataError(
                f"Categories in {self.ann_file} define different keypoint lists; litzoo needs one schema."
            )
        self.keypoint_names = list(with_kps[0]["keypoints"])
        self.skeleton = [list(edge) for edge in with_kps[0].get("skeleton", [])]

    def _usable_annotations(self) -> dict[int, list[dict]]:
        """Per image, the annotations that can become training targets, with boxes clamped to the image."""
        dropped: list[Any] = []
        usable: dict[int, list[dict]] = {}
        for image_id, img in self.coco.imgs.items():
            keep = []
            for ann in self.coco.imgToAnns.get(image_id, []):
                if ann.get("iscrowd", 0) and not self.include_crowd:
                    continue
                box = _clamped_xyxy(ann.get("bbox"), img["width"], img["height"])
                if box is None:
                    dropped.append(ann.get("id"))
                    continue
                keep.append({**ann, "_xyxy": box})
            usable[image_id] = keep
        if dropped:
            shown = ", ".join(str(i) for i in dropped[:10]) + (", ..." if len(dropped) > 10 else "")
            log.warning(
                "Dropped %d annotation(s) with a degenerate box (zero or negative width/height after "
                "clamping to the image) from %s: ids %s",
                len(dropped),
                self.ann_file,
                shown,
            )
        self.num_degenerate_boxes = len(dropped)
        return usable

    def _is_trainable(self, image_id: int, min_keypoints: int) -> bool:
        anns = self._anns_by_image[image_id]
        if not anns:
            return False
        if self.targets == "keypoints" and min_keypoints > 0:
            visible = sum(sum(v > 0 for v in a.get("keypoints", [])[2::3]) for a in anns)
            return visible >= min_keypoints
        return True

    def __len__(self) -> int:
        return len(self.ids)

    def load_image(self, image_id: int) -> tv_tensors.Image:
        img = self.coco.imgs[image_id]
        return read_image(self.image_dir / img["file_name"], (img["height"], img["width"]))

    def load_target(self, image_id: int) -> dict[str, Any]:
        """The untransformed target of one image."""
        img = self.coco.imgs[image_id]
        h, w = img["height"], img["width"]
        anns = self._anns_by_image[image_id]
        boxes = torch.tensor([a["_xyxy"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        target: dict[str, Any] = {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(h, w)),
            "labels": torch.tensor([self.cat_id_to_label[a["category_id"]] for a in anns], dtype=torch.int64),
            "area": torch.tensor([float(a.get("area", 0.0)) for a in anns], dtype=torch.float32),
            "iscrowd": torch.tensor([int(a.get("iscrowd", 0)) for a in anns], dtype=torch.int64),
            "image_id": int(image_id),
        }
        if self.targets == "masks":
            masks = np.zeros((len(anns), h, w), dtype=np.uint8)
            for i, ann in enumerate(anns):
                masks[i] = self._decode_mask(ann)
            target["masks"] = tv_tensors.Mask(torch.from_numpy(masks))
        if self.targets == "keypoints":
            k = self.num_keypoints
            kps = np.zeros((len(anns), k, 3), dtype=np.float32)
            for i, ann in enumerate(anns):
                values = ann.get("keypoints") or [0.0] * 3 * k
                if len(values) != 3 * k:
                    raise DataError(
                        f"Annotation id {ann.get('id')} in {self.ann_file} has {len(values) // 3} keypoints; "
                        f"the category defines {k}. Fix the annotation's 'keypoints' list."
                    )
                kps[i] = np.asarray(values, dtype=np.float32).reshape(k, 3)
            target["keypoints"] = torch.from_numpy(kps)
        return target

    def _decode_mask(self, ann: dict) -> np.ndarray:
        if "segmentation" not in ann:
            raise DataError(
                f"Annotation id {ann.get('id')} in {self.ann_file} has no 'segmentation', which instance "
                "segmentation needs. Use task=detection (data.targets=boxes) or add the masks."
            )
        try:
            return self.coco.annToMask(ann)
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise DataError(
                f"The segmentation of annotation id {ann.get('id')} in {self.ann_file} cannot be decoded "
                f"({exc}); it must be a list of polygons or an RLE dict with 'counts' and 'size'."
            ) from exc

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        image_id = self.ids[index]
        image = self.load_image(image_id)
        target = self.load_target(image_id)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def _clamped_xyxy(bbox: Sequence[float] | None, width: float, height: float) -> list[float] | None:
    """xywh -> xyxy clamped to the image; None when the result has no area (as torchvision's references)."""
    if bbox is None or len(bbox) != 4:
        return None
    x, y, w, h = (float(v) for v in bbox)
    x1, y1 = min(max(x, 0.0), width), min(max(y, 0.0), height)
    x2, y2 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
    if x2 <= x1 or y2 <= y1:
        return None
    return [x1, y1, x2, y2]


# --------------------------------------------------------------------------- top-down pose


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class CocoTopDownPose(Dataset):
    """One sample per person box, cropped by an affine warp to a fixed input: SimpleBaseline's data pipeline.

    Boxes come from the ground truth (training, or evaluation with GT boxes) or from a
    detector's COCO results (``detections``: a list of result dicts or the path of a results
    JSON). Each sample is ``(image, target)`` where ``image`` is the normalised crop
    (3 x H x W float) and ``target`` holds ``heatmaps`` (K x H/s x W/s), ``target_weight`` (K),
    ``keypoints`` (K x 3, crop pixels), ``center``, ``scale`` and ``rotation`` (the crop in
    image pixels, for mapping predictions back), ``image_id``, ``sample_index`` (the box's
    index in this dataset), ``score`` and ``area``.

    Training augmentation follows the paper: random scale (1 +- ``scale_factor``), rotation
    (+- ``rotation_factor`` degrees, applied with probability 0.6) and horizontal flip with
    left/right keypoint swap.
    """

    def __init__(
        self,
        ann_file: str | os.PathLike,
        image_dir: str | os.PathLike,
        input_size: tuple[int, int] = (128, 96),
        heatmap_stride: int = 4,
        sigma: float = 2.0,
        train: bool = False,
        detections: str | os.PathLike | list[dict] | None = None,
        det_score_threshold: float = 0.0,
        padding: float = 1.25,
        scale_factor: float = 0.35,
        rotation_factor: float = 45.0,
        flip_prob: float = 0.5,
        unbiased_encoding: bool = False,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.base = CocoDetection(ann_file, image_dir, targets="keypoints")
        self.coco = self.base.coco
        self.input_h, self.input_w = int(input_size[0]), int(input_size[1])
        if self.input_h % heatmap_stride or self.input_w % heatmap_stride:
            raise DataError(
                f"Pose input size {input_size} must be divisible by the heatmap stride {heatmap_stride}."
            )
        self.stride = heatmap_stride
        self.heatmap_wh = (self.input_w // heatmap_stride, self.input_h // heatmap_stride)
        self.sigma = sigma
        self.train = train
        self.padding = padding
        self.scale_factor = scale_factor
        self.rotation_factor = rotation_factor
        self.flip_prob = flip_prob
        self.unbiased_encoding = unbiased_encoding
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)
        self.flip_pairs = self.base.flip_pairs
        self.num_keypoints = self.base.num_keypoints
        self.samples = (
            self._gt_samples()
            if detections is None
            else self._detection_samples(detections, det_score_threshold)
        )

    def _gt_samples(self) -> list[dict]:
        samples = []
        for image_id in self.base.ids:
            for ann in self.base._anns_by_image[image_id]:
                kps = np.asarray(ann.get("keypoints") or [0.0] * 3 * self.num_keypoints, dtype=np.float32)
                if self.train and not (kps[2::3] > 0).any():
                    continue  # nothing to learn from a box without labelled keypoints
                x1, y1, x2, y2 = ann["_xyxy"]
                samples.append(
                    {
                        "image_id": image_id,
                        "box": [x1, y1, x2 - x1, y2 - y1],
                        "score": 1.0,
                        "keypoints": kps.reshape(-1, 3),
                        "area": float(ann.get("area", 0.0)),
                    }
                )
        return samples

    def _detection_samples(self, detections: str | os.PathLike | list[dict], threshold: float) -> list[dict]:
        if not isinstance(detections, list):
            path = Path(detections)
            if not path.is_file():
                raise DataError(f"Person detections file {path} does not exist. Give a COCO results JSON.")
            detections = json.loads(path.read_text())
        cat_ids = set(self.coco.getCatIds())
        zeros = np.zeros((self.num_keypoints, 3), dtype=np.float32)
        samples = []
        for det in detections:
            if det.get("category_id") in cat_ids and det.get("score", 1.0) >= threshold:
                if det["image_id"] not in self.coco.imgs:
                    raise DataError(
                        f"A detection refers to image_id {det['image_id']}, absent from {self.base.ann_file}."
                    )
                x, y, w, h = det["bbox"]
                if w > 0 and h > 0:
                    samples.append(
                        {
                            "image_id": det["image_id"],
                            "box": [x, y, w, h],
                            "score": float(det["score"]),
                            "keypoints": zeros,
                            "area": float(w * h),
                        }
                    )
        return samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        sample = self.samples[index]
        img = self.coco.imgs[sample["image_id"]]
        image = read_image(self.base.image_dir / img["file_name"], (img["height"], img["width"]))
        image = image.as_subclass(torch.Tensor).to(torch.float32) / 255.0

        center, scale = box_to_center_scale(sample["box"], self.input_w / self.input_h, self.padding)
        rotation = 0.0
        keypoints = sample["keypoints"].copy()
        flip = False
        if self.train:
            scale = scale * float(
                np.clip(
                    random.gauss(0, 1) * self.scale_factor + 1, 1 - self.scale_factor, 1 + self.scale_factor
                )
            )
            if random.random() < 0.6:
                rotation = float(
                    np.clip(
                        random.gauss(0, 1) * self.rotation_factor,
                        -2 * self.rotation_factor,
                        2 * self.rotation_factor,
                    )
                )
            flip = random.random() < self.flip_prob

        matrix = get_affine_transform(center, scale, rotation, (self.input_w, self.input_h))
        crop = crop_image(image, matrix, (self.input_w, self.input_h))
        keypoints[:, :2] = affine_points(keypoints[:, :2], matrix)
        if flip:
            crop = crop.flip(-1)
            keypoints[:, 0] = self.input_w - 1 - keypoints[:, 0]  # same pixel-index convention as torchvision
            keypoints = keypoints[flip_permutation(self.num_keypoints, self.flip_pairs)]
        outside = (
            (keypoints[:, 0] < 0)
            | (keypoints[:, 0] > self.input_w - 1)
            | (keypoints[:, 1] < 0)
            | (keypoints[:, 1] > self.input_h - 1)
        )
        keypoints[outside, 2] = 0

        tensor = (crop - self.mean) / self.std
        heatmaps, weight = encode_heatmaps(
            torch.from_numpy(keypoints),
            self.heatmap_wh,
            self.stride,
            self.sigma,
            unbiased=self.unbiased_encoding,
        )
        target = {
            "heatmaps": heatmaps,
            "target_weight": weight,
            "keypoints": torch.from_numpy(keypoints),
            "center": torch.from_numpy(center).float(),
            "scale": torch.from_numpy(scale).float(),
            "rotation": torch.tensor(rotation, dtype=torch.float32),
            "image_id": torch.tensor(sample["image_id"], dtype=torch.int64),
            # Which box of the dataset this is: an image's boxes are evaluated together, each once.
            "sample_index": torch.tensor(index, dtype=torch.int64),
            "score": torch.tensor(sample["score"], dtype=torch.float32),
            "area": torch.tensor(sample["area"], dtype=torch.float32),
        }
        return tensor, target
