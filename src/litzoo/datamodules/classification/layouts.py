"""Layout checks of the classification datasets (torch-free; run before anything heavy).

A data config names one with `layout: litzoo.datamodules.classification.layouts.<function>`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litzoo.data.layouts import IMAGE_EXTENSIONS, layout_error

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


def check_imagefolder(data: Mapping[str, Any]) -> None:
    """Check `root/train/<class>/<images>` and `root/val/<class>/...`."""
    root = Path(str(data["root"])).expanduser()
    name = data.get("name", "imagefolder")
    if not root.is_dir():
        raise layout_error(name, root, "the directory does not exist", IMAGEFOLDER_LAYOUT)
    for split in ("train", "val"):
        split_dir = root / split
        if not split_dir.is_dir():
            raise layout_error(name, root, f"there is no '{split}' folder", IMAGEFOLDER_LAYOUT)
        classes = [p for p in split_dir.iterdir() if p.is_dir()]
        if not classes:
            raise layout_error(name, root, f"'{split}/' holds no class folders", IMAGEFOLDER_LAYOUT)
        if not any(_has_image(c) for c in classes):
            raise layout_error(
                name,
                root,
                f"the class folders in '{split}/' hold no image files ({', '.join(IMAGE_EXTENSIONS)})",
                IMAGEFOLDER_LAYOUT,
            )
    train_classes = {p.name for p in (root / "train").iterdir() if p.is_dir()}
    for split in ("val", "test"):
        if not (root / split).is_dir():
            continue
        unknown = {p.name for p in (root / split).iterdir() if p.is_dir()} - train_classes
        if unknown:
            raise layout_error(
                name,
                root,
                f"'{split}/' has class folders that 'train/' lacks: {', '.join(sorted(unknown))}",
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
        raise layout_error(name, root, "the directory does not exist", CIFAR10_LAYOUT)
    folder = cifar10_dir(root)
    expected = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    missing = [f for f in expected if not (folder / f).is_file()]
    if missing:
        raise layout_error(name, root, f"missing file(s) {', '.join(missing)} in {folder}", CIFAR10_LAYOUT)
