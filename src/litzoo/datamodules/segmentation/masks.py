"""Reading label masks: one class index per pixel, mapped to train ids, checked against the class set.

Datasets store labels differently, and a lookup table (:class:`LabelMap`, 256 entries) maps each
stored pixel value to the index the model trains on, 0 .. K-1, or to 255, the ignore value that
neither the loss nor the metrics count:

- PASCAL VOC (and the embedded scenes): palette PNGs, value = class (0 = background), 255 = the
  void borders around objects -> identity;
- ADE20K: 0 = "other" (not one of the 150 classes), 1..150 = classes -> ``reduce_zero_label``:
  0 becomes 255 and every other value drops by one, so the model predicts 150 classes 0..149;
- Cityscapes: ``*_labelIds.png`` holds the 34 fine label ids; 19 of them are evaluated, mapped to
  train ids 0..18, the rest to 255;
- a folder of label PNGs: value = class index as listed in classes.txt; with a single listed
  (foreground) class, 0 is background and any non-zero value is foreground (0/1 and 0/255 masks).

A value that maps nowhere is an error naming the file and the values, never a silent class.
Only PIL and numpy are used, so the checks can run before torch is imported.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from litzoo.errors import DataError

IGNORE_INDEX = 255
INVALID = -1
# Modes that hold one number per pixel (palette indices, grey levels, 16/32-bit integers, bits).
LABEL_MODES = ("P", "L", "I;16", "I;16B", "I;16L", "I", "1")
CONVERT_HINT = (
    "`python -m litzoo.datamodules.segmentation.convert_masks <mask folder> <output folder> --palette voc` "
    "turns colour-coded masks into label PNGs (each colour matched to its class in the palette: voc, "
    "cityscapes, or a file of 'r g b' lines in class order); a grey mask saved as RGB converts with "
    "`PIL.Image.open(path).convert('L').save(path)`"
)


@dataclass(frozen=True)
class LabelMap:
    """Stored pixel value -> train id (0..K-1), 255 (ignored) or -1 (not allowed: an error)."""

    table: np.ndarray  # int16, 256 entries
    description: str  # what the allowed values are, for error messages

    def apply(self, values: np.ndarray, path: str | os.PathLike) -> np.ndarray:
        """The train ids of the stored values read from `path` (uint8), or a `DataError` naming the bad ones."""
        if values.dtype != np.uint8:
            if values.size and (int(values.min()) < 0 or int(values.max()) > 255):
                wide = np.unique(values[(values < 0) | (values > 255)])
                raise DataError(
                    f"Mask {path} holds pixel value(s) {_listed(wide)}, outside 0-255; label masks here hold "
                    f"{self.description}. Fix the mask or the dataset's class list."
                )
            values = values.astype(np.uint8)
        mapped = self.table[values]
        bad = mapped == INVALID
        if bad.any():
            raise DataError(
                f"Mask {path} holds pixel value(s) {_listed(np.unique(values[bad]))} that are not in this "
                f"dataset's class set ({self.description}). Fix the mask, or declare the classes it uses "
                "(seg_folder: one name per line in classes.txt; value = line number from 0)."
            )
        return mapped.astype(np.uint8)


def _listed(values: Iterable[int], limit: int = 12) -> str:
    values = [int(v) for v in values]
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


def identity_map(num_classes: int, ignore_value: int | None = IGNORE_INDEX) -> LabelMap:
    """Values 0..K-1 are the classes; `ignore_value` (if any) is ignored; anything else is an error."""
    _check_num_classes(num_classes)
    table = np.full(256, INVALID, dtype=np.int16)
    table[:num_classes] = np.arange(num_classes)
    description = f"classes 0-{num_classes - 1}"
    if ignore_value is not None:
        if ignore_value < num_classes:
            raise DataError(
                f"The ignore value {ignore_value} is also a class index (0-{num_classes - 1}); "
                "pick an ignore value above the classes (255 is the convention)."
            )
        table[int(ignore_value)] = IGNORE_INDEX
        description += f", {ignore_value} = ignore"
    return LabelMap(table, description)


def reduce_zero_label_map(num_classes: int) -> LabelMap:
    """ADE20K's convention: stored 0 ("other") is ignored, stored k (1..K) is class k - 1."""
    _check_num_classes(num_classes)
    table = np.full(256, INVALID, dtype=np.int16)
    table[0] = IGNORE_INDEX
    table[1 : num_classes + 1] = np.arange(num_classes)
    return LabelMap(table, f"0 = other (ignored), classes 1-{num_classes} (trained as 0-{num_classes - 1})")


def binary_map() -> LabelMap:
    """One foreground class: 0 is background, any other value (1, 255, ...) is foreground."""
    table = np.ones(256, dtype=np.int16)
    table[0] = 0
    return LabelMap(table, "0 = background, any non-zero value = foreground")


def lookup_map(mapping: Mapping[int, int], description: str, default: int = INVALID) -> LabelMap:
    """An explicit stored value -> train id table (e.g. Cityscapes' label ids); others get `default`."""
    table = np.full(256, default, dtype=np.int16)
    for stored, train_id in mapping.items():
        table[int(stored)] = int(train_id)
    return LabelMap(table, description)


def _check_num_classes(num_classes: int) -> None:
    if not 1 <= num_classes <= 255:
        raise DataError(
            f"{num_classes} classes do not fit a label PNG with 255 as the ignore value "
            "(1-255 classes are supported)."
        )


# --------------------------------------------------------------------------- reading


def open_image(path: str | os.PathLike, what: str) -> Image.Image:
    """PIL's lazy handle on a file (only the header is read), with a `DataError` if it is no image."""
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise DataError(f"The {what} {path} does not exist.") from None
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"The {what} {path} cannot be read as an image ({error}).") from None


def check_mask_mode(mask: Image.Image, path: str | os.PathLike) -> None:
    """A label mask holds one value per pixel; a colour (RGB) mask is refused with how to convert it."""
    if mask.mode in LABEL_MODES:
        return
    raise DataError(
        f"Mask {path} is a {mask.mode} image, but a label mask must hold one class index per pixel: a palette "
        f"PNG (mode P, as PASCAL VOC ships them) or a greyscale label PNG (mode L). {CONVERT_HINT}."
    )


def check_same_size(
    image_size: tuple[int, int],
    mask_size: tuple[int, int],
    image_path: str | os.PathLike,
    mask_path: str | os.PathLike,
) -> None:
    """Image and mask must cover the same pixels (sizes given as PIL's ``(width, height)``)."""
    if tuple(image_size) != tuple(mask_size):
        raise DataError(
            f"Image {image_path} is {image_size[0]}x{image_size[1]} (width x height) but its mask {mask_path} is "
            f"{mask_size[0]}x{mask_size[1]}; a mask must have its image's size. Re-export the mask at the image's "
            "size (resizing a label mask must use nearest-neighbour sampling)."
        )


def read_mask(
    path: str | os.PathLike,
    label_map: LabelMap,
    image_size: tuple[int, int] | None = None,
    image_path: str | os.PathLike | None = None,
) -> np.ndarray:
    """The ``H x W`` uint8 train ids of a mask file (255 = ignore), checked (mode, size, values)."""
    with open_image(path, "mask") as mask:
        check_mask_mode(mask, path)
        if image_size is not None:
            check_same_size(image_size, mask.size, image_path or "?", path)
        try:
            values = np.asarray(mask)  # palette PNGs give their indices, not colours
        except OSError as error:
            raise DataError(f"The mask {path} is truncated or corrupt ({error}).") from None
    if values.dtype == bool:
        values = values.astype(np.uint8)
    return label_map.apply(values, path)


def check_headers(images: Sequence[Path], masks: Sequence[Path]) -> None:
    """Check every pair's mask mode and sizes from the file headers alone (no pixel is decoded):
    what would otherwise stop a run hours in is found before training starts."""
    for image_path, mask_path in zip(images, masks):
        with open_image(image_path, "image") as image, open_image(mask_path, "mask") as mask:
            check_mask_mode(mask, mask_path)
            check_same_size(image.size, mask.size, image_path, mask_path)
