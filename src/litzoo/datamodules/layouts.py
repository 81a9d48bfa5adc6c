"""On-disk layout checks for datasets read from a user's directory.

These run during config validation, before torch is imported, so a wrong
`data.root` fails in a second with the layout it should have. A data config
names its check with `layout: <name>`; `check_layout` dispatches on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from litzoo.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

IMAGEFOLDER_LAYOUT = """\
  <root>/train/<class_a>/xxx.jpg
  <root>/train/<class_b>/yyy.png
  <root>/val/<class_a>/zzz.jpg        (same class folder names as train)
  <root>/test/<class_a>/...           (optional; val is used for testing when absent)"""

CIFAR10_LAYOUT = """\
  <root>/cifar-10-batches-py/data_batch_1 ... data_batch_5
  <root>/cifar-10-batches-py/test_batch
  <root>/cifar-10-batches-py/batches.meta
(the official python version, cifar-10-python.tar.gz, extracted in <root>)"""


def _fail(name: str, root: Path, problem: str, layout: str) -> DataError:
    return DataError(f"data={name}: {problem} (data.root={root}). Expected layout:\n{layout}")


def check_imagefolder(data: Mapping[str, Any]) -> None:
    """Check `root/train/<class>/<images>` and `root/val/<class>/...`."""
    root = Path(str(data["root"])).expanduser()
    name = data.get("name", "imagefolder")
    if not root.is_dir():
        raise _fail(name, root, "the directory does not exist", IMAGEFOLDER_LAYOUT)
    for split in ("train", "val"):
        split_dir = root / split
        if not split_dir.is_dir():
            raise _fail(name, root, f"there is no '{split}' folder", IMAGEFOLDER_LAYOUT)
        classes = [p for p in split_dir.iterdir() if p.is_dir()]
        if not classes:
            raise _fail(name, root, f"'{split}/' holds no class folders", IMAGEFOLDER_LAYOUT)
        if not any(_has_image(c) for c in classes):
            raise _fail(
                name, root, f"the class folders in '{split}/' hold no image files "
                f"({', '.join(IMAGE_EXTENSIONS)})", IMAGEFOLDER_LAYOUT,
            )
    train_classes = {p.name for p in (root / "train").iterdir() if p.is_dir()}
    for split in ("val", "test"):
        if not (root / split).is_dir():
            continue
        unknown = {p.name for p in (root / split).iterdir() if p.is_dir()} - train_classes
        if unknown:
            raise _fail(
                name, root, f"'{split}/' has class folders that 'train/' lacks: {', '.join(sorted(unknown))}",
                IMAGEFOLDER_LAYOUT,
            )


def _has_image(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir())


def cifar10_dir(root: Path) -> Path:
    """The folder holding the CIFAR-10 batches: `root/cifar-10-batches-py`, or root itself."""
    nested = root / "cifar-10-batches-py"
    return nested if nested.is_dir() else root


def check_cifar10(data: Mapping[str, Any]) -> None:
    """Check the files of CIFAR-10's python version."""
    root = Path(str(data["root"])).expanduser()
    name = data.get("name", "cifar10")
    if not root.is_dir():
        raise _fail(name, root, "the directory does not exist", CIFAR10_LAYOUT)
    folder = cifar10_dir(root)
    expected = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    missing = [f for f in expected if not (folder / f).is_file()]
    if missing:
        raise _fail(name, root, f"missing file(s) {', '.join(missing)} in {folder}", CIFAR10_LAYOUT)


COCO_LAYOUT = """\
  <root>/annotations/instances_<split>.json          (detection, instance_segmentation)
  <root>/annotations/person_keypoints_<split>.json   (pose)
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
    """Check COCO's own layout for the configured splits and the task's annotation files."""
    root = Path(str(data["root"])).expanduser()
    name = data.get("name", "coco")
    if not root.is_dir():
        raise _fail(name, root, "the directory does not exist", COCO_LAYOUT)
    stem = "person_keypoints" if data.get("task") == "pose" else "instances"
    for key in ("train_split", "val_split", "test_split"):
        split = data.get(key)
        if not split:
            continue
        annotation = root / "annotations" / f"{stem}_{split}.json"
        if not annotation.is_file():
            raise _fail(name, root, f"there is no annotation file annotations/{annotation.name} "
                        f"(data.{key}={split})", COCO_LAYOUT)
        if not (root / str(split)).is_dir():
            raise _fail(name, root, f"there is no image folder '{split}/' (data.{key}={split})", COCO_LAYOUT)


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
            raise DataError(f"data={name}: data.{split}_ann={annotation} is not an existing file. "
                            f"Expected:\n{COCO_CUSTOM_LAYOUT}")
        if not Path(str(images)).expanduser().is_dir():
            raise DataError(f"data={name}: data.{split}_images={images} is not an existing folder. "
                            f"Expected:\n{COCO_CUSTOM_LAYOUT}")


def check_voc(data: Mapping[str, Any]) -> None:
    """Check the VOCdevkit folders and split files of every configured [year, split]."""
    root = Path(str(data["root"])).expanduser()
    name = data.get("name", "voc")
    if not root.is_dir():
        raise _fail(name, root, "the directory does not exist", VOC_LAYOUT)
    sets = [*(data.get("train_sets") or []), data.get("val_set"), data.get("test_set")]
    for entry in sets:
        if not entry:
            continue
        year, split = (str(v) for v in entry)
        base = root if root.name == f"VOC{year}" else root / f"VOC{year}"
        for needed in (base / "Annotations", base / "JPEGImages", base / "ImageSets" / "Main" / f"{split}.txt"):
            if not needed.exists():
                raise _fail(name, root, f"{needed.relative_to(root)} is missing (set [{year}, {split}])",
                            VOC_LAYOUT)


def check_glue(data: Mapping[str, Any]) -> None:
    """Check a GLUE task folder: its train/dev files exist and their headers have the task's columns."""
    from litzoo.datamodules.text.glue import check_glue_folder  # torch-free; one line read per file

    check_glue_folder(str(data["root"]), str(data["glue_task"]))


def check_trec(data: Mapping[str, Any]) -> None:
    """Check a TREC folder holds the training and test `.label` files."""
    from litzoo.datamodules.text.trec import TREC_FILES

    root = Path(str(data["root"])).expanduser()
    files = {**TREC_FILES, **dict(data.get("files") or {})}
    layout = "\n".join(f"  <root>/{name}   ({split}; one `LABEL:sub question` per line)" for split, name in files.items())
    if not root.is_dir():
        raise _fail(data.get("name", "trec"), root, "the directory does not exist", layout)
    missing = [name for name in files.values() if not (root / name).is_file()]
    if missing:
        raise _fail(data.get("name", "trec"), root, f"missing file(s) {', '.join(missing)}", layout)


def check_imdb(data: Mapping[str, Any]) -> None:
    """Check the unpacked `aclImdb` tree (train and test, each with pos/ and neg/)."""
    from litzoo.datamodules.text.imdb import find_imdb_root

    base = find_imdb_root(str(data["root"]))
    layout = "  <root>/train/pos/<id>_<rating>.txt, <root>/train/neg/..., <root>/test/pos/..., <root>/test/neg/..."
    missing = [f"{split}/{label}" for split in ("train", "test") for label in ("pos", "neg")
               if not (base / split / label).is_dir()]
    if missing:
        raise _fail(data.get("name", "imdb"), base, f"missing folder(s) {', '.join(missing)}", layout)


def check_text_tabular(data: Mapping[str, Any]) -> None:
    """Check the tables exist and their headers (JSONL: first record's keys) have the configured columns."""
    from litzoo.datamodules.text.tabular import check_table_columns

    columns = [data.get("text_column", "text")]
    columns += [c for c in (data.get("text_pair_column"), data.get("label_column", "label")) if c]
    for key in ("train_file", "val_file", "test_file"):
        if data.get(key):
            check_table_columns(str(data[key]), columns, data.get("format"), data.get("quoting"))


LAYOUT_CHECKS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "imagefolder": check_imagefolder,
    "cifar10": check_cifar10,
    "coco": check_coco,
    "coco_custom": check_coco_custom,
    "voc": check_voc,
    "glue": check_glue,
    "trec": check_trec,
    "imdb": check_imdb,
    "text_tabular": check_text_tabular,
}


def check_layout(layout: str, data: Mapping[str, Any]) -> None:
    """Run the check named by a data config's `layout` key."""
    if layout not in LAYOUT_CHECKS:
        raise DataError(
            f"data.layout={layout!r} is not a known layout; known: {', '.join(sorted(LAYOUT_CHECKS))}."
        )
    LAYOUT_CHECKS[layout](data)
