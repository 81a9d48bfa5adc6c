"""Datamodules of the semantic-segmentation family: VOC (+ SBD aug), ADE20K, Cityscapes, image + mask
folders, and the embedded scenes.

A sample is ``(image, mask)``: a normalised ``3 x H x W`` float image and an ``H x W`` int64 mask
of train ids (0..K-1, 255 = ignore). Training samples are augmented crops of one size
(:mod:`litzoo.vision.segmentation_transforms`), stacked into batches; evaluation samples keep the
mask at full resolution and resize only the image (``eval_scale``), and are batched as lists when
their sizes differ. Incomplete training batches are dropped (``drop_last``): batch norm cannot
normalise a batch of one crop (DeepLab's image-pooling branch sees a single value per channel).

Every pair's mask mode (a colour mask is refused) and sizes are checked from the file headers when
a split is set up (``verify=headers``), before training starts; mask values are checked as each
mask is read. :meth:`SegmentationDataModule.info` tells the task the classes, their colours and
the evaluation preprocessing, which the task keeps in its checkpoints for prediction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors

from litzoo.data.base import BaseDataModule
from litzoo.data.samplers import RandomBatchSampler, ShardedBatchSampler
from litzoo.datamodules.segmentation import formats
from litzoo.datamodules.segmentation.masks import (
    LabelMap,
    binary_map,
    check_headers,
    identity_map,
    lookup_map,
    open_image,
    read_mask,
    reduce_zero_label_map,
)
from litzoo.datamodules.segmentation.scenes import SCENE_CLASSES, generate_scenes_voc
from litzoo.errors import ConfigError, DataError
from litzoo.vision.palette import CITYSCAPES_COLOURS, IGNORE_INDEX, full_palette
from litzoo.vision.segmentation_transforms import collate_segmentation, eval_image_transform, train_transforms

log = logging.getLogger("litzoo")

# What every sample's target is (info()["targets"]): an H x W map of class indices, which is what
# the semantic-segmentation task checks for (detection's datamodules say boxes, masks or keypoints).
TARGETS = "label_masks"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VERIFY = ("headers", "none")


class SegmentationDataset(Dataset):
    """Image + label-mask pairs; `transforms` takes ``(Image, Mask)`` (train) or the image alone (eval)."""

    def __init__(self, files: formats.SplitFiles, label_map: LabelMap, transforms: Any, joint: bool) -> None:
        self.files, self.label_map, self.transforms, self.joint = files, label_map, transforms, joint

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_path, mask_path = self.files.images[index], self.files.masks[index]
        pixels, size = read_rgb(image_path)
        labels = read_mask(mask_path, self.label_map, size, image_path)
        image = tv_tensors.Image(torch.from_numpy(pixels).permute(2, 0, 1))
        mask = tv_tensors.Mask(torch.from_numpy(labels))
        if self.joint:
            image, mask = self.transforms(image, mask)
        else:
            image = self.transforms(image)
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).long()


def read_rgb(path: str | Path) -> tuple[np.ndarray, tuple[int, int]]:
    """``H x W x 3`` uint8 pixels of an image file (grey and palette images converted) and its PIL size."""
    with open_image(path, "image") as image:
        try:
            return np.array(image.convert("RGB")), image.size
        except OSError as error:
            raise DataError(f"The image {path} is truncated or corrupt ({error}).") from None


class FullBatchRandomSampler(RandomBatchSampler):
    """:class:`RandomBatchSampler` without the short last batch (when there is at least one full one)."""

    def __init__(self, num_samples: int, batch_size: int, **kwargs: Any) -> None:
        super().__init__(num_samples, batch_size, **kwargs)
        full = self.num_samples // self.batch_size
        if full:
            self._starts, self._ends = self._starts[:full], self._ends[:full]


class SegmentationDataModule(BaseDataModule):
    """What the segmentation datamodules share: transforms, splits, header checks, info().

    Subclasses say where the splits are (:meth:`split_files`), what the classes are
    (:meth:`class_names`), how stored mask values map to them (:meth:`label_map`) and, optionally,
    their colours (:meth:`colours`) and how to make the files exist (:meth:`prepare`).

    Args:
        batch_size: training crops per batch per device (``eval_batch_size``: images per eval batch).
        crop_size: ``[height, width]`` of the training crops.
        scale: base ``[long, short]`` size of the random rescale (MMSegmentation's ``scale``, e.g.
            ``[2048, 512]``); ``None`` rescales relative to each image's own size.
        ratio_range: the random rescale's ratio range.
        cat_max_ratio: re-draw a crop in which one class covers more than this share (1 = never).
        hflip_prob, photometric: training flip probability and photometric distortion.
        eval_scale: keep-ratio ``[long, short]`` size of evaluation images (None: their own size);
            predictions are upsampled back to the full-resolution mask.
        mean, std: normalisation (RGB, 0-1 scale).
        drop_last: drop the short last training batch.
        verify: ``headers`` checks every pair's mask mode and sizes when a split is set up; ``none`` skips it.
        loader_args: see :class:`~litzoo.data.base.BaseDataModule`.
    """

    def __init__(
        self,
        batch_size: int = 8,
        num_workers: int = 0,
        crop_size: Sequence[int] = (512, 512),
        scale: Sequence[int] | None = None,
        ratio_range: Sequence[float] = (0.5, 2.0),
        cat_max_ratio: float = 0.75,
        hflip_prob: float = 0.5,
        photometric: bool = True,
        eval_scale: Sequence[int] | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        drop_last: bool = True,
        verify: str = "headers",
        **loader_args: Any,
    ) -> None:
        super().__init__(batch_size, num_workers, **loader_args)
        if verify not in VERIFY:
            raise ConfigError(f"data.verify={verify!r} is not known; use one of {', '.join(VERIFY)}.")
        self.crop_size = [
            int(v) for v in (crop_size if not isinstance(crop_size, int) else (crop_size, crop_size))
        ]
        self.scale = [int(v) for v in scale] if scale is not None else None
        self.ratio_range = [float(v) for v in ratio_range]
        self.cat_max_ratio, self.hflip_prob, self.photometric = (
            float(cat_max_ratio),
            float(hflip_prob),
            photometric,
        )
        self.eval_scale = [int(v) for v in eval_scale] if eval_scale is not None else None
        self.mean, self.std = [float(v) for v in mean], [float(v) for v in std]
        self.drop_last, self.verify = bool(drop_last), verify
        if self.collate_fn is None:  # data.collate, when set, wins
            self.collate_fn = collate_segmentation

    # -- what subclasses provide ----------------------------------------------------------------

    def split_files(self, split: str) -> formats.SplitFiles | None:
        """The pairs of ``train``, ``val`` or ``test`` (``None`` for a test split the dataset lacks)."""
        raise NotImplementedError

    def class_names(self) -> list[str]:
        raise NotImplementedError

    def label_map(self) -> LabelMap:
        """Stored mask value -> train id (see :mod:`litzoo.datamodules.segmentation.masks`)."""
        return identity_map(len(self.class_names()), IGNORE_INDEX)

    def colours(self) -> list[list[int]]:
        """One RGB colour per class for predicted masks and overlays (default: PASCAL VOC's colour map)."""
        return full_palette()[: len(self.class_names())].tolist()

    def prepare(self) -> None:
        """Make the files exist (the embedded dataset generates them); a no-op for datasets on disk."""

    def prepare_data(self) -> None:
        self.prepare()

    # -- splits -----------------------------------------------------------------------------------

    def train_transforms(self) -> Any:
        return train_transforms(
            self.crop_size,
            self.mean,
            self.std,
            self.scale,
            self.ratio_range,
            self.cat_max_ratio,
            self.hflip_prob,
            self.photometric,
            IGNORE_INDEX,
        )

    def eval_transforms(self) -> Any:
        return eval_image_transform(self.mean, self.std, self.eval_scale)

    def setup(self, stage: str | None = None) -> None:
        self.prepare()  # idempotent; DDP ranks other than 0 may get here before rank 0's prepare_data
        splits = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in splits.get(stage or "", ("train", "val", "test")):
            self._ensure(split)

    def _ensure(self, split: str) -> Dataset:
        if getattr(self, f"{split}_set") is not None:
            return getattr(self, f"{split}_set")
        files = self.split_files(split)
        if files is None:
            if split != "test":
                raise DataError(f"{type(self).__name__} has no {split} split.")
            log.info("This dataset has no labelled test split: test metrics are computed on val")
            self.test_set = self._ensure("val")
            return self.test_set
        if self.verify == "headers":
            check_headers(files.images, files.masks)
        train = split == "train"
        if train and len(files) < self.batch_size and self.drop_last:
            log.warning(
                "The training split has %d images, fewer than one batch of %d", len(files), self.batch_size
            )
        dataset = SegmentationDataset(
            files, self.label_map(), self.train_transforms() if train else self.eval_transforms(), joint=train
        )
        setattr(self, f"{split}_set", dataset)
        log.info("%s split: %d images from %s", split, len(files), files.source)
        return dataset

    def _build_sampler(self, split: str, dataset: Dataset) -> ShardedBatchSampler:
        if split == "train" and self.sampler_factory is None and self.drop_last:
            return FullBatchRandomSampler(
                len(dataset),
                self.batch_size,
                shuffle=self.shuffle,
                seed=self.seed,
                num_replicas=self.num_replicas,
                rank=self.rank,
            )
        return super()._build_sampler(split, dataset)

    # -- what the task needs to know --------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        names = self.class_names()
        return {
            "targets": TARGETS,
            "num_classes": len(names),
            "class_names": list(names),
            "ignore_index": IGNORE_INDEX,
            "colours": [list(c) for c in self.colours()],
            "mean": self.mean,
            "std": self.std,
            "eval_scale": self.eval_scale,
            # The training crop: the default sliding window of slide-mode inference.
            "crop_size": self.crop_size,
            "label_values": self.label_map().description,
        }


# --------------------------------------------------------------------------- PASCAL VOC


class VOCSegDataModule(SegmentationDataModule):
    """PASCAL VOC 2012 segmentation (``root``: VOCdevkit/VOC2012 or VOCdevkit); see :data:`formats.VOC_LAYOUT`.

    ``train_split="auto"`` trains on the SBD-augmented list (``SegmentationClassAug``) when it is
    present, else on ``train``; ``test_split=None`` tests on the val split (VOC's test labels are
    not public).
    """

    def __init__(
        self,
        root: str,
        year: int = 2012,
        train_split: str = "auto",
        val_split: str = "val",
        test_split: str | None = None,
        classes: Sequence[str] = formats.VOC_CLASSES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root, self.year = Path(root).expanduser(), year
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self._classes = list(classes)

    def class_names(self) -> list[str]:
        return list(self._classes)

    def split_files(self, split: str) -> formats.SplitFiles | None:
        name = self.splits[split]
        if name is None:
            return None
        if split == "train":
            name = formats.voc_resolve_train_split(self.root, self.year, name)
            files = formats.voc_split(self.root, self.year, name)
            formats.warn_overlap(files, formats.voc_split(self.root, self.year, self.splits["val"]))
            return files
        return formats.voc_split(self.root, self.year, name)


class ScenesDataModule(VOCSegDataModule):
    """The embedded default: generated scenes in VOC layout (:mod:`litzoo.datamodules.segmentation.scenes`),
    written on first use into ``root`` and read with the VOC reader. There is no test split: test is val."""

    def __init__(
        self,
        root: str,
        num_train: int = 300,
        num_val: int = 60,
        image_size: int | Sequence[int] = (120, 160),
        generator_seed: int = 0,
        max_objects: int = 5,
        border: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            root,
            year=2012,
            train_split="train",
            val_split="val",
            test_split=None,
            classes=SCENE_CLASSES,
            **kwargs,
        )
        size = image_size if isinstance(image_size, int) else tuple(int(v) for v in image_size)
        self.generator = {
            "num_train": num_train,
            "num_val": num_val,
            "image_size": size,
            "seed": generator_seed,
            "max_objects": max_objects,
            "border": border,
        }

    def prepare(self) -> None:
        generate_scenes_voc(self.root, **self.generator)


# --------------------------------------------------------------------------- ADE20K


class ADE20KDataModule(SegmentationDataModule):
    """ADE20K (SceneParsing, ``ADEChallengeData2016``): 150 classes; see :data:`formats.ADE20K_LAYOUT`.

    ``reduce_zero_label=True`` (the benchmark's convention): stored 0 is "other" and ignored, stored
    1..150 train as 0..149. ``False`` keeps "other" as a 151st class, 0. There is no labelled test
    split: test is val.
    """

    def __init__(
        self,
        root: str,
        train_split: str = "training",
        val_split: str = "validation",
        reduce_zero_label: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        self.splits = {"train": train_split, "val": val_split}
        self.reduce_zero_label = bool(reduce_zero_label)

    def class_names(self) -> list[str]:
        return list(formats.ADE20K_CLASSES) if self.reduce_zero_label else ["other", *formats.ADE20K_CLASSES]

    def label_map(self) -> LabelMap:
        if self.reduce_zero_label:
            return reduce_zero_label_map(len(formats.ADE20K_CLASSES))
        return identity_map(len(formats.ADE20K_CLASSES) + 1, IGNORE_INDEX)

    def split_files(self, split: str) -> formats.SplitFiles | None:
        return formats.ade20k_split(self.root, self.splits[split]) if split in self.splits else None


# --------------------------------------------------------------------------- Cityscapes


class CityscapesDataModule(SegmentationDataModule):
    """Cityscapes fine annotations, evaluated on the 19 train ids; see :data:`formats.CITYSCAPES_LAYOUT`.

    ``label_type="labelIds"`` reads the official ``*_gtFine_labelIds.png`` and maps the 34 label ids
    to the 19 train ids (255 for the rest); ``labelTrainIds`` reads already converted files.
    ``test_split=None`` tests on val (the test labels are not public).
    """

    def __init__(
        self,
        root: str,
        train_split: str = "train",
        val_split: str = "val",
        test_split: str | None = None,
        label_type: str = "labelIds",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if label_type not in formats.CITYSCAPES_LABEL_TYPES:
            raise ConfigError(
                f"data.label_type={label_type!r} is not a Cityscapes label file; use one of "
                f"{', '.join(formats.CITYSCAPES_LABEL_TYPES)}."
            )
        self.root, self.label_type = Path(root).expanduser(), label_type
        self.splits = {"train": train_split, "val": val_split, "test": test_split}

    def class_names(self) -> list[str]:
        return list(formats.CITYSCAPES_CLASSES)

    def label_map(self) -> LabelMap:
        if self.label_type == "labelTrainIds":
            return identity_map(len(formats.CITYSCAPES_CLASSES), IGNORE_INDEX)
        return lookup_map(
            formats.CITYSCAPES_TRAIN_IDS,
            "Cityscapes label ids; the 19 evaluated ones become train ids 0-18, every other id is ignored",
            default=IGNORE_INDEX,
        )

    def colours(self) -> list[list[int]]:
        return [list(c) for c in CITYSCAPES_COLOURS]

    def split_files(self, split: str) -> formats.SplitFiles | None:
        name = self.splits.get(split)
        return formats.cityscapes_split(self.root, name, self.label_type) if name else None


# --------------------------------------------------------------------------- image + mask folders


class SegFolderDataModule(SegmentationDataModule):
    """Any ``root/images/<split>/*`` + ``root/masks/<split>/<stem>.png`` folder pair with ``root/classes.txt``.

    Masks hold the class index (the line number in classes.txt, from 0) and ``ignore_value`` for
    pixels to ignore. A classes.txt with a single name is a binary dataset: the model learns two
    classes, ``background`` and that name, from masks whose zero pixels are background and whose
    non-zero pixels (1, or 255 as many tools save them) are foreground. ``test`` falls back to val.
    """

    def __init__(self, root: str, ignore_value: int | None = IGNORE_INDEX, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        self.ignore_value = ignore_value

    def listed_classes(self) -> list[str]:
        return formats.folder_classes(self.root)

    def class_names(self) -> list[str]:
        listed = self.listed_classes()
        return ["background", listed[0]] if len(listed) == 1 else listed

    def label_map(self) -> LabelMap:
        if len(self.listed_classes()) == 1:
            return binary_map()
        return identity_map(len(self.class_names()), self.ignore_value)

    def split_files(self, split: str) -> formats.SplitFiles | None:
        if split == "test" and not formats.folder_has_split(self.root, "test"):
            return None
        files = formats.folder_split(self.root, split)
        if split == "train":
            self._check_binary_convention(files)
        return files

    def _check_binary_convention(self, files: formats.SplitFiles, sample: int = 16) -> None:
        """Two listed classes with 0/255 masks: 255 is the ignore value, so nothing would be foreground."""
        names = self.class_names()
        if len(self.listed_classes()) != 2 or self.ignore_value != 255:
            return
        for path in files.masks[:sample]:
            with Image.open(path) as mask:
                values = set(np.unique(np.asarray(mask)).tolist())
            if values - {0, 255}:
                return
        raise DataError(
            f"classes.txt in {self.root} lists two classes ({names[0]}, {names[1]}) but the first masks of "
            f"masks/train/ hold only the values 0 and 255, and 255 is the ignore value: {names[1]} would never "
            f"be seen. For 0/255 binary masks list only the foreground class ({names[1]}) in classes.txt "
            "(then any non-zero pixel is foreground), or save the foreground as 1."
        )
