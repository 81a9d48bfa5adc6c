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


LAYOUT_CHECKS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "imagefolder": check_imagefolder,
    "cifar10": check_cifar10,
}


def check_layout(layout: str, data: Mapping[str, Any]) -> None:
    """Run the check named by a data config's `layout` key."""
    if layout not in LAYOUT_CHECKS:
        raise DataError(
            f"data.layout={layout!r} is not a known layout; known: {', '.join(sorted(LAYOUT_CHECKS))}."
        )
    LAYOUT_CHECKS[layout](data)
