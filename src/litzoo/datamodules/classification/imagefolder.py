"""Images in the ImageFolder layout (also ImageNet's): root/{train,val[,test]}/<class>/<image>.

Class indices come from the train folders (sorted names) and are reused for
val/test, so a split missing a class keeps the same label mapping. Files of any
size and mode are read and converted to RGB or greyscale as `in_chans` asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image
from torchvision.datasets import ImageFolder

from litzoo.data.base import BaseDataModule
from litzoo.errors import DataError
from litzoo.vision.transforms import channel_stats, eval_preprocessing, eval_transform, train_transform


def load_image(path: str, mode: str) -> Image.Image:
    """Open an image file and convert it to `mode`; a file that cannot be decoded is a DataError."""
    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except Exception as error:
        raise DataError(f"Cannot decode image {path}: {error}. Remove or replace the file.") from error


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

    def __init__(self, root: str, batch_size: int = 64, num_workers: int = 4, image_size: int = 224,
                 in_chans: int = 3, crop_pct: float = 0.875, scale: Sequence[float] = (0.08, 1.0),
                 hflip: float = 0.5, mean: Sequence[float] = (0.485, 0.456, 0.406),
                 std: Sequence[float] = (0.229, 0.224, 0.225), **loader_args: Any) -> None:
        super().__init__(batch_size, num_workers, **loader_args)
        self.root = Path(root).expanduser()
        self.image_size, self.in_chans = image_size, in_chans
        self.crop_pct, self.scale, self.hflip = crop_pct, scale, hflip
        self.mean, self.std = channel_stats(mean, in_chans), channel_stats(std, in_chans)
        self.classes = sorted(p.name for p in (self.root / "train").iterdir() if p.is_dir())

    def info(self) -> dict[str, Any]:
        return {"num_classes": len(self.classes), "in_chans": self.in_chans, "image_size": self.image_size,
                "class_names": self.classes,
                "preprocess": eval_preprocessing(self.image_size, self.in_chans, self.mean, self.std, self.crop_pct)}

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
