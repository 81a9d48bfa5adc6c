"""Layout checks of the segmentation datasets (torch-free; run before anything heavy).

A data config names one with `layout: litzoo.datamodules.segmentation.layouts.<function>`. Each
builds the configured splits' file lists exactly as the datamodule will (formats.py), so a
missing split list, folder or mask is reported within a second, with the expected layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litzoo.datamodules.segmentation import formats
from litzoo.errors import ConfigError


def _root(data: Mapping[str, Any], layout: str) -> Path:
    root = Path(str(data["root"])).expanduser()
    if not root.is_dir():
        raise formats._error(str(data.get("name", "?")), root, "the directory does not exist", layout)
    return root


def _splits(*names: Any) -> list[str]:
    """The configured split names in order (train, val, test), each once, unset ones left out."""
    return list(dict.fromkeys(str(n) for n in names if n is not None))


def check_voc_seg(data: Mapping[str, Any]) -> None:
    root = _root(data, formats.VOC_LAYOUT)
    name, year = str(data.get("name", "voc_seg")), data.get("year", 2012)
    train = formats.voc_resolve_train_split(root, year, str(data.get("train_split", "auto")))
    for split in _splits(train, data.get("val_split", "val"), data.get("test_split")):
        formats.voc_split(root, year, split, name)


def check_ade20k(data: Mapping[str, Any]) -> None:
    root = _root(data, formats.ADE20K_LAYOUT)
    for key in ("train_split", "val_split"):
        formats.ade20k_split(root, str(data.get(key)), str(data.get("name", "ade20k")))


def check_cityscapes(data: Mapping[str, Any]) -> None:
    root = _root(data, formats.CITYSCAPES_LAYOUT)
    label_type = str(data.get("label_type", "labelIds"))
    if label_type not in formats.CITYSCAPES_LABEL_TYPES:
        raise ConfigError(
            f"data.label_type={label_type} is not a Cityscapes label file; use one of "
            f"{', '.join(formats.CITYSCAPES_LABEL_TYPES)}."
        )
    for split in {data.get("train_split", "train"), data.get("val_split", "val"), data.get("test_split")} - {
        None
    }:
        formats.cityscapes_split(root, str(split), label_type, str(data.get("name", "cityscapes")))


def check_seg_folder(data: Mapping[str, Any]) -> None:
    root = _root(data, formats.FOLDER_LAYOUT)
    name = str(data.get("name", "seg_folder"))
    formats.folder_classes(root, name)
    for split in ("train", "val"):
        formats.folder_split(root, split, name)
    if formats.folder_has_split(root, "test"):
        formats.folder_split(root, "test", name)
