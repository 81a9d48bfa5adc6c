"""Images in the ImageFolder layout (also ImageNet's): root/{train,val[,test]}/<class>/<image>.

Class indices come from the train folders (sorted names) and are reused for
val/test, so a split missing a class keeps the same label mapping. Files of any
size and mode are read and converted to RGB or greyscale as `in_chans` asks.

The input size, the training crop scale and the eval crop_pct default to ``auto``: chosen from
the data, as timm resolves its data config from the model (:func:`resolve_input`). ImageNet's
recipe (224 px, random-resized crops of 8-100 % of the area, center crop of 87.5 %) is right for
photos of a few hundred pixels and wrong for small ones: 32-px photos upsampled to 224 px and
cropped to 8 % of their area train clearly worse than at their own size.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image
from torchvision.datasets import ImageFolder

from litzoo.data.base import BaseDataModule
from litzoo.data.layouts import IMAGE_EXTENSIONS
from litzoo.errors import DataError
from litzoo.vision.transforms import channel_stats, eval_preprocessing, eval_transform, train_transform


def load_image(path: str, mode: str) -> Image.Image:
    """Open an image file and convert it to `mode`; a file that cannot be decoded is a DataError."""
    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except Exception as error:
        raise DataError(f"Cannot decode image {path}: {error}. Remove or replace the file.") from error


log = logging.getLogger("litzoo")

AUTO = "auto"
# Images whose shorter side is at least this many pixels get ImageNet's crops (scale 0.08-1, crop_pct
# 0.875); smaller ones milder crops and the whole image at evaluation.
LARGE_IMAGE = 128
MAX_AUTO_SIZE = 224  # larger photos are resized down to ImageNet's input size
SAMPLED_IMAGES = 64  # training images whose size (header only) decides the auto values


def sample_image_sizes(folder: Path, limit: int = SAMPLED_IMAGES) -> list[tuple[int, int]]:
    """(width, height) of up to `limit` image files spread evenly over `folder` (sorted, so the same on
    every rank and run); only the headers are read. Files that do not open are left out here (the
    loader reports them when it reads them)."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    picked = files[:: max(1, len(files) // limit)][:limit]
    sizes = []
    for path in picked:
        try:
            with Image.open(path) as image:
                sizes.append(image.size)
        except Exception:
            continue
    return sizes


def resolve_input(
    image_size: int | str, scale: Sequence[float] | str, crop_pct: float | str, train_dir: Path
) -> tuple[int, tuple[float, float], float]:
    """The `auto` values of the input size, crop scale and crop_pct, from the training images (logged).

    The size is the median shorter side of a sample of the training images, rounded to a multiple of
    8 and at most 224 px: small images are not upsampled and large photos are resized to ImageNet's
    input. The crops follow the images (not the size asked for): scale (0.08, 1) and crop_pct 0.875
    for images of `LARGE_IMAGE` px and more; (0.5, 1) and the whole image for smaller ones, which have
    no margin to spare.
    """
    auto = {
        key
        for key, value in (("image_size", image_size), ("scale", scale), ("crop_pct", crop_pct))
        if value == AUTO
    }
    if not auto:
        return int(image_size), (float(scale[0]), float(scale[1])), float(crop_pct)
    sizes = sample_image_sizes(train_dir)
    median = int(statistics.median(min(size) for size in sizes)) if sizes else MAX_AUTO_SIZE
    large = median >= LARGE_IMAGE
    if image_size == AUTO:
        image_size = min(MAX_AUTO_SIZE, max(16, 8 * round(median / 8)))
        log.info(
            "data.image_size=auto: %d px (the median shorter side of %d training images is %d px)",
            image_size,
            len(sizes),
            median,
        )
    if scale == AUTO:
        scale = (0.08, 1.0) if large else (0.5, 1.0)
        log.info(
            "data.scale=auto: [%s, %s] (random-resized crops for %s images)",
            *scale,
            f"large (>= {LARGE_IMAGE} px)" if large else f"small (< {LARGE_IMAGE} px)",
        )
    if crop_pct == AUTO:
        crop_pct = 0.875 if large else 1.0
        log.info(
            "data.crop_pct=auto: %s (%s at evaluation)",
            crop_pct,
            "center crop" if large else "the whole image",
        )
    return int(image_size), (float(scale[0]), float(scale[1])), float(crop_pct)


class ClassFolder(ImageFolder):
    """An ImageFolder whose class list is given (the train split's), not read from the folder."""

    def __init__(self, root: str | Path, classes: list[str], **kwargs: Any) -> None:
        self._fixed_classes = classes
        super().__init__(str(root), allow_empty=True, **kwargs)

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        return self._fixed_classes, {name: i for i, name in enumerate(self._fixed_classes)}


class ImageFolderDataModule(BaseDataModule):
    """Classification data from class folders; see `conf/data/imagefolder.yaml`.

    `loader_args` (eval_batch_size, pin_memory, persistent_workers, shuffle, sampler, collate, seed,
    ...) go to :class:`~litzoo.data.base.BaseDataModule`, which builds the loaders.
    """

    def __init__(
        self,
        root: str,
        batch_size: int = 64,
        num_workers: int | str = AUTO,
        image_size: int | str = AUTO,
        in_chans: int = 3,
        crop_pct: float | str = AUTO,
        scale: Sequence[float] | str = AUTO,
        hflip: float = 0.5,
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
        **loader_args: Any,
    ) -> None:
        super().__init__(batch_size, num_workers, **loader_args)
        self.root = Path(root).expanduser()
        self.image_size, self.scale, self.crop_pct = resolve_input(
            image_size, scale, crop_pct, self.root / "train"
        )
        self.in_chans, self.hflip = in_chans, hflip
        self.mean, self.std = channel_stats(mean, in_chans), channel_stats(std, in_chans)
        self.classes = sorted(p.name for p in (self.root / "train").iterdir() if p.is_dir())

    def info(self) -> dict[str, Any]:
        return {
            "num_classes": len(self.classes),
            "in_chans": self.in_chans,
            "image_size": self.image_size,
            "class_names": self.classes,
            "preprocess": eval_preprocessing(
                self.image_size, self.in_chans, self.mean, self.std, self.crop_pct
            ),
        }

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        loader = partial(load_image, mode="L" if self.in_chans == 1 else "RGB")
        train_tf = train_transform(self.image_size, self.mean, self.std, self.scale, self.hflip)
        eval_tf = eval_transform(self.image_size, self.mean, self.std, self.crop_pct)
        self.train_set = ClassFolder(self.root / "train", self.classes, transform=train_tf, loader=loader)
        self.val_set = ClassFolder(self.root / "val", self.classes, transform=eval_tf, loader=loader)
        test_dir = self.root / "test" if (self.root / "test").is_dir() else self.root / "val"
        self.test_set = ClassFolder(test_dir, self.classes, transform=eval_tf, loader=loader)
