"""Where each segmentation dataset keeps its images and masks, and which pairs make a split.

Pure path logic (no torch, no pixel decoding): the layout checks run it before anything heavy
is imported, and the datamodules build their datasets from the same lists. Every function
returns a :class:`SplitFiles` (images and masks, pairwise) or raises a `DataError` that shows
the expected layout.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from litzoo.errors import DataError
from litzoo.vision.voc import VOC_CLASSES as VOC_OBJECT_CLASSES

log = logging.getLogger("litzoo")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm")

VOC_CLASSES = ("background", *VOC_OBJECT_CLASSES)
CITYSCAPES_CLASSES = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
# Cityscapes label id -> train id for the 19 evaluated classes (cityscapesscripts' labels.py);
# every other id (unlabeled, ego vehicle, parking, guard rail, caravan, license plate, ...) is ignored.
CITYSCAPES_TRAIN_IDS = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}
ADE20K_CLASSES = (
    "wall",
    "building",
    "sky",
    "floor",
    "tree",
    "ceiling",
    "road",
    "bed",
    "windowpane",
    "grass",
    "cabinet",
    "sidewalk",
    "person",
    "earth",
    "door",
    "table",
    "mountain",
    "plant",
    "curtain",
    "chair",
    "car",
    "water",
    "painting",
    "sofa",
    "shelf",
    "house",
    "sea",
    "mirror",
    "rug",
    "field",
    "armchair",
    "seat",
    "fence",
    "desk",
    "rock",
    "wardrobe",
    "lamp",
    "bathtub",
    "railing",
    "cushion",
    "base",
    "box",
    "column",
    "signboard",
    "chest of drawers",
    "counter",
    "sand",
    "sink",
    "skyscraper",
    "fireplace",
    "refrigerator",
    "grandstand",
    "path",
    "stairs",
    "runway",
    "case",
    "pool table",
    "pillow",
    "screen door",
    "stairway",
    "river",
    "bridge",
    "bookcase",
    "blind",
    "coffee table",
    "toilet",
    "flower",
    "book",
    "hill",
    "bench",
    "countertop",
    "stove",
    "palm",
    "kitchen island",
    "computer",
    "swivel chair",
    "boat",
    "bar",
    "arcade machine",
    "hovel",
    "bus",
    "towel",
    "light",
    "truck",
    "tower",
    "chandelier",
    "awning",
    "streetlight",
    "booth",
    "television receiver",
    "airplane",
    "dirt track",
    "apparel",
    "pole",
    "land",
    "bannister",
    "escalator",
    "ottoman",
    "bottle",
    "buffet",
    "poster",
    "stage",
    "van",
    "ship",
    "fountain",
    "conveyer belt",
    "canopy",
    "washer",
    "plaything",
    "swimming pool",
    "stool",
    "barrel",
    "basket",
    "waterfall",
    "tent",
    "bag",
    "minibike",
    "cradle",
    "oven",
    "ball",
    "food",
    "step",
    "tank",
    "trade name",
    "microwave",
    "pot",
    "animal",
    "bicycle",
    "lake",
    "dishwasher",
    "screen",
    "blanket",
    "sculpture",
    "hood",
    "sconce",
    "vase",
    "traffic light",
    "tray",
    "ashcan",
    "fan",
    "pier",
    "crt screen",
    "plate",
    "monitor",
    "bulletin board",
    "shower",
    "radiator",
    "glass",
    "clock",
    "flag",
)

VOC_LAYOUT = """\
  <root>/JPEGImages/<id>.jpg
  <root>/SegmentationClass/<id>.png               palette PNGs: pixel = class 0-20, 255 = void border (ignored)
  <root>/ImageSets/Segmentation/train.txt, val.txt  one image id per line
  optional, the SBD-augmented training set (10582 images):
  <root>/SegmentationClassAug/<id>.png  +  <root>/ImageSets/Segmentation/train_aug.txt (or aug.txt)
(root is VOCdevkit/VOC2012, or the VOCdevkit folder holding it)"""
ADE20K_LAYOUT = """\
  <root>/images/training/ADE_train_00000001.jpg
  <root>/annotations/training/ADE_train_00000001.png   pixel = class 1-150, 0 = other (ignored)
  <root>/images/validation/ADE_val_00000001.jpg
  <root>/annotations/validation/ADE_val_00000001.png
(root is the ADEChallengeData2016 folder, or the folder holding it)"""
CITYSCAPES_LAYOUT = """\
  <root>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
  <root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png   (or _labelTrainIds.png)
(split: train, val, test; the test split's labels are not public, so test metrics use val)"""
FOLDER_LAYOUT = """\
  <root>/classes.txt                       one class name per line; line n (from 0) = pixel value n
                                           (a single line = binary: 0 background, non-zero foreground)
  <root>/images/train/<stem>.jpg|png ...   <root>/masks/train/<stem>.png   (label PNG: pixel = class)
  <root>/images/val/...                    <root>/masks/val/...
  <root>/images/test/, masks/test/         optional; without them test metrics use val"""


@dataclass(frozen=True)
class SplitFiles:
    """The images of one split and their masks, pairwise."""

    images: tuple[Path, ...]
    masks: tuple[Path, ...]
    source: str  # e.g. "ImageSets/Segmentation/train.txt", for log messages

    def __len__(self) -> int:
        return len(self.images)


def _error(name: str, root: Path, problem: str, layout: str) -> DataError:
    from litzoo.data.layouts import layout_error

    return layout_error(name, root, problem, layout)


def _missing(files: Sequence[Path], what: str, where: str) -> str:
    shown = ", ".join(str(p) for p in files[:3])
    more = f" and {len(files) - 3} more" if len(files) > 3 else ""
    return f"{len(files)} {what} listed in {where} do not exist: {shown}{more}"


# --------------------------------------------------------------------------- PASCAL VOC


AUG_LISTS = ("train_aug", "trainaug", "aug")


def voc_base(root: Path, year: int | str = 2012) -> Path:
    """The VOC<year> folder: `root` itself or `root/VOC<year>` (when root is the VOCdevkit)."""
    return root if (root / "JPEGImages").is_dir() else root / f"VOC{year}"


def voc_resolve_train_split(root: Path, year: int | str, split: str) -> str:
    """``auto``: the SBD-augmented list when ``SegmentationClassAug/`` and its list are present, else train."""
    if split != "auto":
        return split
    base = voc_base(root, year)
    if (base / "SegmentationClassAug").is_dir():
        for name in AUG_LISTS:
            if (base / "ImageSets" / "Segmentation" / f"{name}.txt").is_file():
                return name
    return "train"


def voc_split(root: Path, year: int | str, split: str, name: str = "voc_seg") -> SplitFiles:
    """The pairs of a VOC segmentation list: ``ImageSets/Segmentation/<split>.txt``.

    Lists of the SBD-augmented set (``train_aug``/``trainaug``/``aug``) take their masks from
    ``SegmentationClassAug/``; their lines are image ids or, as DeepLab's ``train_aug.txt``
    writes them, ``/JPEGImages/<id>.jpg /SegmentationClassAug/<id>.png`` pairs.
    """
    base = voc_base(root, year)
    if not (base / "JPEGImages").is_dir():
        raise _error(name, root, f"there is no JPEGImages/ folder in {base}", VOC_LAYOUT)
    listing = base / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not listing.is_file():
        raise _error(name, root, f"the split list {listing.relative_to(base.parent)} is missing", VOC_LAYOUT)
    mask_dir = base / ("SegmentationClassAug" if split in AUG_LISTS else "SegmentationClass")
    images, masks = [], []
    for line in listing.read_text().split("\n"):
        parts = line.split()
        if not parts:
            continue
        if len(parts) == 2:  # "/JPEGImages/x.jpg /SegmentationClassAug/x.png", relative to VOC<year>
            images.append(base / parts[0].lstrip("/"))
            masks.append(base / parts[1].lstrip("/"))
        else:
            images.append(base / "JPEGImages" / f"{parts[0]}.jpg")
            masks.append(mask_dir / f"{parts[0]}.png")
    return _checked(SplitFiles(tuple(images), tuple(masks), str(listing)), name, root, VOC_LAYOUT)


def _checked(files: SplitFiles, name: str, root: Path, layout: str) -> SplitFiles:
    if not files.images:
        raise _error(name, root, f"{files.source} lists no image", layout)
    for kind, paths in (("images", files.images), ("masks", files.masks)):
        absent = [p for p in paths if not p.is_file()]
        if absent:
            raise _error(name, root, _missing(absent, kind, files.source), layout)
    return files


def warn_overlap(train: SplitFiles, val: SplitFiles) -> None:
    """Images that are in both the training and the validation list inflate the validation scores."""
    shared = {p.stem for p in train.images} & {p.stem for p in val.images}
    if shared:
        log.warning(
            "%d image(s) of the validation list %s are also in the training list %s (e.g. %s): "
            "validation scores will be optimistic",
            len(shared),
            val.source,
            train.source,
            sorted(shared)[0],
        )


# --------------------------------------------------------------------------- ADE20K


ADE20K_SPLITS = {"train": "training", "val": "validation", "training": "training", "validation": "validation"}


def ade20k_base(root: Path) -> Path:
    return root / "ADEChallengeData2016" if (root / "ADEChallengeData2016").is_dir() else root


def ade20k_split(root: Path, split: str, name: str = "ade20k") -> SplitFiles:
    """Every image of ``images/<split>/`` with its ``annotations/<split>/<stem>.png``."""
    base = ade20k_base(root)
    folder = ADE20K_SPLITS.get(split, split)
    image_dir, mask_dir = base / "images" / folder, base / "annotations" / folder
    for directory in (image_dir, mask_dir):
        if not directory.is_dir():
            raise _error(name, root, f"the folder {directory.relative_to(base)}/ is missing", ADE20K_LAYOUT)
    images = _images_in(image_dir)
    files = SplitFiles(tuple(images), tuple(mask_dir / f"{p.stem}.png" for p in images), f"{image_dir}/")
    return _checked(files, name, root, ADE20K_LAYOUT)


def _images_in(directory: Path, recursive: bool = False) -> list[Path]:
    found = directory.rglob("*") if recursive else directory.iterdir()
    return sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


# --------------------------------------------------------------------------- Cityscapes


CITYSCAPES_LABEL_TYPES = ("labelIds", "labelTrainIds")


def cityscapes_split(
    root: Path, split: str, label_type: str = "labelIds", name: str = "cityscapes"
) -> SplitFiles:
    """Every ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` with its ``gtFine`` mask of `label_type`."""
    image_dir, mask_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    for directory in (image_dir, mask_dir):
        if not directory.is_dir():
            raise _error(
                name, root, f"the folder {directory.relative_to(root)}/ is missing", CITYSCAPES_LAYOUT
            )
    images = [p for p in _images_in(image_dir, recursive=True) if p.name.endswith("_leftImg8bit.png")]
    masks = [
        mask_dir / p.parent.name / p.name.replace("_leftImg8bit.png", f"_gtFine_{label_type}.png")
        for p in images
    ]
    return _checked(SplitFiles(tuple(images), tuple(masks), f"{image_dir}/"), name, root, CITYSCAPES_LAYOUT)


# --------------------------------------------------------------------------- image + mask folders


def folder_classes(root: Path, name: str = "seg_folder") -> list[str]:
    """The class names of ``classes.txt`` (one per line, blank lines ignored)."""
    path = root / "classes.txt"
    if not path.is_file():
        raise _error(name, root, "there is no classes.txt", FOLDER_LAYOUT)
    classes = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not classes:
        raise _error(name, root, "classes.txt lists no class", FOLDER_LAYOUT)
    duplicates = sorted({c for c in classes if classes.count(c) > 1})
    if duplicates:
        raise _error(name, root, f"classes.txt lists {', '.join(duplicates)} more than once", FOLDER_LAYOUT)
    return classes


def folder_has_split(root: Path, split: str) -> bool:
    return (root / "images" / split).is_dir()


def folder_split(root: Path, split: str, name: str = "seg_folder") -> SplitFiles:
    """Every image of ``images/<split>/`` with the mask of the same stem in ``masks/<split>/``."""
    image_dir, mask_dir = root / "images" / split, root / "masks" / split
    for directory in (image_dir, mask_dir):
        if not directory.is_dir():
            raise _error(name, root, f"the folder {directory.relative_to(root)}/ is missing", FOLDER_LAYOUT)
    images = _images_in(image_dir)
    stems = [p.stem for p in images]
    repeated = sorted({s for s in stems if stems.count(s) > 1})
    if repeated:
        raise _error(
            name,
            root,
            f"images/{split}/ holds several images named {repeated[0]}.* (one mask per stem)",
            FOLDER_LAYOUT,
        )
    masks = [mask_dir / f"{p.stem}.png" for p in images]
    absent = [m for m in masks if not m.is_file()]
    if absent:
        raise _error(
            name,
            root,
            f"{len(absent)} image(s) of images/{split}/ have no mask in masks/{split}/ "
            f"(e.g. {absent[0].name})",
            FOLDER_LAYOUT,
        )
    return _checked(SplitFiles(tuple(images), tuple(masks), f"{image_dir}/"), name, root, FOLDER_LAYOUT)
