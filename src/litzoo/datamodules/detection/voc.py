"""PASCAL VOC detection dataset, read from the devkit's own layout::

    <root>/VOC<year>/Annotations/<id>.xml
    <root>/VOC<year>/ImageSets/Main/<split>.txt
    <root>/VOC<year>/JPEGImages/<id>.jpg

``root`` is the ``VOCdevkit`` folder (or the ``VOC<year>`` folder itself). Targets use
torchvision's convention (``boxes`` XYXY float, ``labels`` 1..20, 0 being background) plus
``difficult``. The devkit's boxes are 1-based inclusive pixel indices; they become
continuous ``[xmin - 1, ymin - 1, xmax, ymax]`` so that width = xmax - xmin + 1 as in the
devkit and plain IoU on them equals the devkit's ``+1`` IoU (see ``litzoo.metrics.voc_eval``).
Difficult objects are left out of training targets by default and kept, flagged, for evaluation.
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from litzoo.datamodules.detection.coco import read_image
from litzoo.errors import DataError
from litzoo.vision.voc import VOC_CLASSES

log = logging.getLogger(__name__)

VOC_LAYOUT = """\
  <root>/VOC<year>/Annotations/<id>.xml
  <root>/VOC<year>/ImageSets/Main/<split>.txt
  <root>/VOC<year>/JPEGImages/<id>.jpg"""


def check_voc_layout(root: str | os.PathLike, year: str, split: str) -> Path:
    """Return the ``VOC<year>`` folder, or raise :class:`DataError` showing the expected layout."""
    root = Path(root)
    base = root if root.name == f"VOC{year}" else root / f"VOC{year}"
    needed = [base / "Annotations", base / "ImageSets" / "Main" / f"{split}.txt", base / "JPEGImages"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise DataError(
            f"VOC dataset at {root} is incomplete for VOC{year} '{split}': missing {', '.join(missing)}. "
            f"The expected layout (root is the VOCdevkit folder) is\n{VOC_LAYOUT}\n"
            "Fix data.root, data.year or the split name."
        )
    return base


def parse_voc_xml(path: Path, class_names: Sequence[str]) -> dict[str, Any]:
    """Read one annotation file into ``{"filename", "width", "height", "objects": [{name, box, difficult}]}``."""
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError as exc:
        raise DataError(f"VOC annotation {path} is listed in the split file but does not exist.") from exc
    except ET.ParseError as exc:
        raise DataError(f"VOC annotation {path} is not valid XML ({exc}). Restore the file.") from exc
    try:
        size = root.find("size")
        width, height = int(size.findtext("width")), int(size.findtext("height"))
        objects = []
        for obj in root.iter("object"):
            name = obj.findtext("name", "").strip()
            if name not in class_names:
                raise DataError(
                    f"VOC annotation {path} has an object of class '{name}', which is not one of the "
                    f"{len(class_names)} classes ({', '.join(class_names)}). Fix the name or the class list."
                )
            bnd = obj.find("bndbox")
            xmin, ymin, xmax, ymax = (float(bnd.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            objects.append(
                {
                    "name": name,
                    "box": [xmin - 1.0, ymin - 1.0, xmax, ymax],
                    "difficult": int(obj.findtext("difficult", "0") or 0) == 1,
                }
            )
    except (AttributeError, TypeError, ValueError) as exc:
        raise DataError(
            f"VOC annotation {path} lacks a required field or holds a non-number ({exc}); "
            "each file needs size/width, size/height and per object name and bndbox."
        ) from exc
    # The devkit finds images as JPEGImages/<id>.jpg (VOCopts.imgpath), not through <filename>.
    return {"filename": f"{path.stem}.jpg", "width": width, "height": height, "objects": objects}


class VOCDetection(Dataset):
    """PASCAL VOC returning ``(tv_tensors.Image, target)`` with ``boxes``, ``labels``, ``difficult``, ``image_id``.

    Args:
        root: the ``VOCdevkit`` folder (or ``VOC<year>``).
        year: ``"2007"``, ``"2012"``, ...
        split: a file name in ``ImageSets/Main`` without ``.txt`` (``train``, ``val``, ``trainval``, ``test``).
        keep_difficult: keep difficult objects (flagged) in the targets; use True for evaluation.
        transforms: callable ``(image, target) -> (image, target)``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        year: str = "2007",
        split: str = "trainval",
        keep_difficult: bool = False,
        transforms: Callable[[Any, dict], tuple[Any, dict]] | None = None,
        class_names: Sequence[str] = VOC_CLASSES,
    ) -> None:
        self.base = check_voc_layout(root, str(year), split)
        self.class_names = ["__background__", *class_names]
        self.keep_difficult = keep_difficult
        self.transforms = transforms
        ids_file = self.base / "ImageSets" / "Main" / f"{split}.txt"
        self.ids = [line.split()[0] for line in ids_file.read_text().splitlines() if line.strip()]
        self._records = [parse_voc_xml(self.base / "Annotations" / f"{i}.xml", class_names) for i in self.ids]
        self._drop_degenerate()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _drop_degenerate(self) -> None:
        dropped = []
        for image_id, record in zip(self.ids, self._records):
            keep = [o for o in record["objects"] if o["box"][2] > o["box"][0] and o["box"][3] > o["box"][1]]
            if len(keep) != len(record["objects"]):
                dropped.append(image_id)
                record["objects"] = keep
        if dropped:
            log.warning(
                "Dropped degenerate boxes (zero or negative size) in %d VOC annotation file(s): %s",
                len(dropped),
                ", ".join(dropped[:10]),
            )
        self.num_files_with_degenerate_boxes = len(dropped)

    def __len__(self) -> int:
        return len(self.ids)

    def load_target(self, index: int) -> dict[str, Any]:
        record = self._records[index]
        objects = [o for o in record["objects"] if self.keep_difficult or not o["difficult"]]
        boxes = torch.tensor([o["box"] for o in objects], dtype=torch.float32).reshape(-1, 4)
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        return {
            "boxes": tv_tensors.BoundingBoxes(
                boxes, format="XYXY", canvas_size=(record["height"], record["width"])
            ),
            "labels": torch.tensor([self.class_names.index(o["name"]) for o in objects], dtype=torch.int64),
            "difficult": torch.tensor([o["difficult"] for o in objects], dtype=torch.bool),
            "iscrowd": torch.zeros(len(objects), dtype=torch.int64),
            "area": areas,
            "image_id": index,
        }

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        record = self._records[index]
        image = read_image(self.base / "JPEGImages" / record["filename"], (record["height"], record["width"]))
        target = self.load_target(index)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target
