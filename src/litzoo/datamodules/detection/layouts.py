"""Layout checks of the detection datasets (torch-free; run before anything heavy).

A data config names one with `layout: litzoo.datamodules.detection.layouts.<function>`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litzoo.data.layouts import layout_error
from litzoo.errors import DataError

COCO_LAYOUT = """\
  <root>/annotations/instances_<split>.json          (boxes, masks: task=detection, instance_segmentation)
  <root>/annotations/person_keypoints_<split>.json   (keypoints: task=pose)
  <root>/<split>/xxx.jpg                              (the images, e.g. <root>/val2017/000000039769.jpg)
(split names from data.train_split / data.val_split / data.test_split: train2017, val2017 by default)"""


COCO_CUSTOM_LAYOUT = """\
  data.train_ann=<file>.json   data.train_images=<folder of the images it names>
  data.val_ann=<file>.json     data.val_images=<folder>
  data.test_ann, data.test_images (optional; val is used for testing when absent)
(each JSON in COCO format: "images", "annotations" and "categories" lists)"""


VOC_LAYOUT = """\
  <root>/VOC<year>/Annotations/<id>.xml
  <root>/VOC<year>/ImageSets/Main/<split>.txt
  <root>/VOC<year>/JPEGImages/<id>.jpg
(root is the VOCdevkit folder; the sets come from data.train_sets / val_set / test_set as [year, split])"""


def check_coco(data: Mapping[str, Any]) -> None:
    """Check COCO's own layout for the configured splits and the annotation files of `data.targets`."""
    root = Path(str(data["root"])).expanduser()
    name = data.get("name", "coco")
    if not root.is_dir():
        raise layout_error(name, root, "the directory does not exist", COCO_LAYOUT)
    stem = "person_keypoints" if data.get("targets") == "keypoints" else "instances"
    for key in ("train_split", "val_split", "test_split"):
        split = data.get(key)
        if not split:
            continue
        annotation = root / "annotations" / f"{stem}_{split}.json"
        if not annotation.is_file():
            raise layout_error(
                name,
                root,
                f"there is no annotation file annotations/{annotation.name} (data.{key}={split})",
                COCO_LAYOUT,
            )
        if not (root / str(split)).is_dir():
            raise layout_error(
                name, root, f"there is no image folder '{split}/' (data.{key}={split})", COCO_LAYOUT
            )


def check_coco_custom(data: Mapping[str, Any]) -> None:
    """Check that each split's annotation JSON and image folder exist."""
    name = data.get("name", "coco_custom")
    if (data.get("test_ann") is None) != (data.get("test_images") is None):
        raise DataError(f"data={name}: data.test_ann and data.test_images go together; give both or neither.")
    for split in ("train", "val", "test"):
        annotation, images = data.get(f"{split}_ann"), data.get(f"{split}_images")
        if annotation is None:
            continue
        if not Path(str(annotation)).expanduser().is_file():
            raise DataError(
                f"data={name}: data.{split}_ann={annotation} is not an existing file. "
                f"Expected:\n{COCO_CUSTOM_LAYOUT}"
            )
        if not Path(str(images)).expanduser().is_dir():
            raise DataError(
                f"data={name}: data.{split}_images={images} is not an existing folder. "
                f"Expected:\n{COCO_CUSTOM_LAYOUT}"
            )


def check_voc(data: Mapping[str, Any]) -> None:
    """Check the VOCdevkit folders and split files of every configured [year, split]."""
    root = Path(str(data["root"])).expanduser()
    name = data.get("name", "voc")
    if not root.is_dir():
        raise layout_error(name, root, "the directory does not exist", VOC_LAYOUT)
    sets = [*(data.get("train_sets") or []), data.get("val_set"), data.get("test_set")]
    for entry in sets:
        if not entry:
            continue
        year, split = (str(v) for v in entry)
        base = root if root.name == f"VOC{year}" else root / f"VOC{year}"
        for needed in (
            base / "Annotations",
            base / "JPEGImages",
            base / "ImageSets" / "Main" / f"{split}.txt",
        ):
            if not needed.exists():
                raise layout_error(
                    name, root, f"{needed.relative_to(root)} is missing (set [{year}, {split}])", VOC_LAYOUT
                )
