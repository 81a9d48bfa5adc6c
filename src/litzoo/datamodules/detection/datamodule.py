"""Datamodules of the detection family: COCO, any COCO-format dataset, PASCAL VOC, and the embedded shapes.

One datamodule serves the three tasks; ``targets`` (``data.targets``, which each task config
sets) picks the annotations and what a sample's target holds:

- ``boxes`` (task=detection): boxes and labels (COCO ``instances_<split>.json``);
- ``masks`` (task=instance_segmentation): the same plus masks;
- ``keypoints`` (task=pose): keypoints (COCO ``person_keypoints_<split>.json``), either as whole images with
  boxes and keypoints (``pose_input="full_image"``, Keypoint R-CNN) or as one affine crop per
  person box with heatmap targets (``pose_input="top_down"``, SimpleBaseline). A model config
  says which it needs (``model.input.pipeline``) and the data config reads it from there.

Full-image samples are ``(tv_tensors.Image, target)`` pairs batched as lists (images differ in
size; torchvision's R-CNN models batch them themselves); top-down samples are fixed-size crops
batched by torch's default collate. Evaluation transforms keep the original image size, so
predictions are in the annotation's pixel frame, as COCOeval needs.

:meth:`DetectionDataModule.info` describes the data to the task (classes, category ids,
keypoint schema, OKS sigmas, which metric applies) as plain data, and
:meth:`CocoFormatDataModule.coco_ground_truth` hands the task the ``pycocotools.COCO`` of a
split to score against. Where a dataset has no test split, the test split *is* the val split.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pycocotools.coco import COCO
from torch.utils.data import ConcatDataset, Dataset

from litzoo.data.base import BaseDataModule
from litzoo.datamodules.detection.coco import (
    CocoDetection,
    CocoTopDownPose,
    check_coco_layout,
    check_targets,
    coco_annotation_path,
)
from litzoo.datamodules.detection.shapes import SHAPE_KPT_OKS_SIGMAS, generate_shapes_coco
from litzoo.datamodules.detection.voc import VOC_CLASSES, VOCDetection
from litzoo.errors import ConfigError, DataError
from litzoo.vision.detection_transforms import (
    collate_detection,
    detection_eval_transforms,
    detection_train_transforms,
)

log = logging.getLogger("litzoo")

POSE_INPUTS = ("full_image", "top_down")
COCO_PERSON_KEYPOINTS = 17  # the only keypoint schema with OKS sigmas built into COCOeval


class DetectionDataModule(BaseDataModule):
    """What the detection-family datamodules share: targets, transforms, list collate, info().

    Args:
        targets: ``boxes``, ``masks`` (boxes and masks) or ``keypoints`` (boxes and keypoints): what
            to load for each image; the task checks that they are what it needs.
        batch_size: images per batch per device (person crops for top-down pose).
        min_size, max_size: training resize (shorter side; a list picks one per image, multi-scale).
            ``None`` keeps the size: torchvision's R-CNN models resize internally anyway.
        hflip_prob: horizontal flip probability in training (keypoints swap left/right).
        photometric: random photometric distortion in training.
        pose_input: ``full_image`` (Keypoint R-CNN) or ``top_down`` (SimpleBaseline crops).
        pose_input_size: ``[height, width]`` of a top-down crop.
        heatmap_stride: input pixels per heatmap pixel (top-down targets).
        heatmap_sigma: Gaussian sigma of the heatmap targets, in heatmap pixels.
        pose_scale_factor, pose_rotation_factor: top-down training augmentation (SimpleBaseline's).
        kpt_oks_sigmas: one OKS sigma per keypoint for COCOeval (``None``: COCO's 17 built-in ones).
        min_keypoints_per_image: full-image pose training skips images with fewer visible keypoints.
        loader_args: see :class:`~litzoo.data.base.BaseDataModule`.
    """

    metric = "coco"

    def __init__(
        self,
        targets: str = "boxes",
        batch_size: int = 4,
        num_workers: int = 0,
        min_size: int | Sequence[int] | None = None,
        max_size: int | None = None,
        hflip_prob: float = 0.5,
        photometric: bool = True,
        pose_input: str = "full_image",
        pose_input_size: Sequence[int] | None = None,
        heatmap_stride: int = 4,
        heatmap_sigma: float = 2.0,
        pose_scale_factor: float = 0.35,
        pose_rotation_factor: float = 45.0,
        kpt_oks_sigmas: Sequence[float] | None = None,
        min_keypoints_per_image: int = 0,
        **loader_args: Any,
    ) -> None:
        super().__init__(batch_size, num_workers, **loader_args)
        check_targets(targets)
        if pose_input not in POSE_INPUTS:
            raise ConfigError(
                f"data.pose_input={pose_input!r} is not known; use one of {', '.join(POSE_INPUTS)}."
            )
        self.targets = targets
        self.min_size, self.max_size = min_size, max_size
        self.hflip_prob, self.photometric = hflip_prob, photometric
        self.top_down = targets == "keypoints" and pose_input == "top_down"
        self.pose_input = pose_input if targets == "keypoints" else None
        self.pose_input_size = tuple(int(v) for v in (pose_input_size or (128, 96)))
        self.heatmap_stride, self.heatmap_sigma = int(heatmap_stride), float(heatmap_sigma)
        self.pose_scale_factor, self.pose_rotation_factor = pose_scale_factor, pose_rotation_factor
        self.kpt_oks_sigmas = [float(s) for s in kpt_oks_sigmas] if kpt_oks_sigmas is not None else None
        self.min_keypoints_per_image = min_keypoints_per_image
        if self.collate_fn is None and not self.top_down:  # data.collate, when set, wins
            self.collate_fn = collate_detection

    # -- transforms ---------------------------------------------------------------------------

    def train_transforms(self, flip_pairs: Sequence[tuple[int, int]] = ()) -> Any:
        return detection_train_transforms(
            self.min_size, self.max_size, self.hflip_prob, flip_pairs, self.photometric
        )

    @staticmethod
    def eval_transforms() -> Any:
        return detection_eval_transforms()


class CocoFormatDataModule(DetectionDataModule):
    """Datasets in COCO format; subclasses say where each split's annotation JSON and images are.

    The val split is loaded first (its categories and keypoint schema describe the data for
    :meth:`info`, before training starts); train is loaded for fitting only; test falls back
    to val when the dataset has no annotated test split.
    """

    def split_sources(self) -> dict[str, tuple[Path, Path] | None]:
        """``split -> (annotation JSON, image folder)`` for train, val and test (``None``: no such split)."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Make the files exist (the embedded dataset generates them); a no-op for datasets on disk."""

    def prepare_data(self) -> None:
        self.prepare()

    # -- building the splits ------------------------------------------------------------------

    def _sources(self) -> dict[str, tuple[Path, Path] | None]:
        if not hasattr(self, "_cached_sources"):
            self.prepare()
            self._cached_sources = self.split_sources()
        return self._cached_sources

    def _build(self, split: str) -> Dataset:
        ann_file, image_dir = self._sources()[split]
        train = split == "train"
        if self.top_down:
            return CocoTopDownPose(
                ann_file,
                image_dir,
                input_size=self.pose_input_size,
                heatmap_stride=self.heatmap_stride,
                sigma=self.heatmap_sigma,
                train=train,
                scale_factor=self.pose_scale_factor,
                rotation_factor=self.pose_rotation_factor,
                flip_prob=self.hflip_prob,
            )
        if not train:
            return CocoDetection(ann_file, image_dir, targets=self.targets, transforms=self.eval_transforms())
        dataset = CocoDetection(
            ann_file,
            image_dir,
            targets=self.targets,
            remove_images_without_annotations=True,
            min_keypoints_per_image=self.min_keypoints_per_image,
        )
        dataset.transforms = self.train_transforms(dataset.flip_pairs)
        if len(dataset) == 0:
            raise DataError(
                f"The training annotations {ann_file} leave no image with a usable annotation (every image "
                "is empty, crowd-only or has only degenerate boxes). Check the file."
            )
        return dataset

    def _ensure(self, split: str) -> Dataset:
        if getattr(self, f"{split}_set") is None:
            if split == "test" and self._sources().get("test") is None:
                self.test_set = self._ensure("val")
                log.info("This dataset has no annotated test split: test metrics are computed on val")
            else:
                dataset = self._build(split)
                if split != "val":
                    _check_same_categories(
                        self._coco_of(self._ensure("val")),
                        self._coco_of(dataset),
                        self._sources()[split][0],
                        self._sources()["val"][0],
                    )
                setattr(self, f"{split}_set", dataset)
        return getattr(self, f"{split}_set")

    def setup(self, stage: str | None = None) -> None:
        splits = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in splits.get(stage or "", ("train", "val", "test")):
            self._ensure(split)

    @staticmethod
    def _coco_of(dataset: Dataset) -> COCO:
        return dataset.coco

    def coco_ground_truth(self, split: str) -> COCO:
        """The ``pycocotools.COCO`` ground truth of ``split`` (val for test without a test split)."""
        return self._coco_of(self._ensure(split))

    # -- what the task needs to know --------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        val = self._ensure("val")
        base: CocoDetection = val.base if isinstance(val, CocoTopDownPose) else val
        categories = sorted(base.coco.loadCats(base.coco.getCatIds()), key=lambda c: c["id"])
        info: dict[str, Any] = {
            "targets": self.targets,
            "metric": self.metric,
            "num_classes": base.num_classes,
            "class_names": list(base.class_names),
            "category_ids": [int(c["id"]) for c in categories],
        }
        if self.targets == "keypoints":
            info.update(self._pose_info(base, categories))
        if isinstance(val, CocoTopDownPose):  # how a person box becomes a crop, for prediction on new images
            info["preprocess"] = {
                "padding": float(val.padding),
                "mean": val.mean.flatten().tolist(),
                "std": val.std.flatten().tolist(),
            }
        return info

    def _pose_info(self, base: CocoDetection, categories: list[dict]) -> dict[str, Any]:
        num_keypoints = base.num_keypoints
        sigmas = (
            self.default_kpt_oks_sigmas(num_keypoints) if self.kpt_oks_sigmas is None else self.kpt_oks_sigmas
        )
        if sigmas is None and num_keypoints != COCO_PERSON_KEYPOINTS:
            raise ConfigError(
                f"Keypoint AP needs one OKS sigma per keypoint, and this dataset has {num_keypoints} keypoints "
                f"(COCOeval knows sigmas only for COCO's {COCO_PERSON_KEYPOINTS} person keypoints). Pass "
                f"data.kpt_oks_sigmas=[...] with {num_keypoints} values (0.07 each is a middle-of-the-road choice)."
            )
        if sigmas is not None and len(sigmas) != num_keypoints:
            raise ConfigError(
                f"data.kpt_oks_sigmas has {len(sigmas)} values but the dataset has {num_keypoints} keypoints; "
                "give one sigma per keypoint."
            )
        with_keypoints = [c for c in categories if c.get("keypoints")]
        return {
            "pose_input": self.pose_input,
            "num_keypoints": num_keypoints,
            "keypoint_names": list(base.keypoint_names),
            "skeleton": [list(e) for e in base.skeleton],
            "flip_pairs": [list(p) for p in base.flip_pairs],
            "kpt_oks_sigmas": sigmas,
            "keypoint_category_id": int(with_keypoints[0]["id"]),
            "input_size": list(self.pose_input_size) if self.top_down else None,
            "heatmap_stride": self.heatmap_stride if self.top_down else None,
        }

    def default_kpt_oks_sigmas(self, num_keypoints: int) -> list[float] | None:
        """OKS sigmas when data.kpt_oks_sigmas is null (COCOeval's built-in ones: None)."""
        return None


def _check_same_categories(reference: COCO, other: COCO, other_file: Path, reference_file: Path) -> None:
    """Contiguous labels are derived per file, so every split must list the same categories."""

    def describe(coco: COCO) -> list[tuple[int, str]]:
        return sorted((int(c["id"]), str(c["name"])) for c in coco.loadCats(coco.getCatIds()))

    if describe(reference) != describe(other):
        raise DataError(
            f"The categories of {other_file} ({describe(other)}) differ from those of {reference_file} "
            f"({describe(reference)}). Every split must list the same categories (same ids and names); "
            "export all splits with one category list."
        )


class CocoDataModule(CocoFormatDataModule):
    """COCO in its own layout under ``root`` (see :data:`litzoo.datamodules.detection.coco.COCO_LAYOUT`).

    ``test_split=None`` evaluates the test stage on the val split (COCO's test2017 has no public
    annotations; its predictions go to the evaluation server).
    """

    def __init__(
        self,
        root: str,
        train_split: str = "train2017",
        val_split: str = "val2017",
        test_split: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        self.splits = {"train": train_split, "val": val_split, "test": test_split}

    def split_sources(self) -> dict[str, tuple[Path, Path] | None]:
        return {
            split: check_coco_layout(self.root, name, self.targets) if name else None
            for split, name in self.splits.items()
        }


class CocoCustomDataModule(CocoFormatDataModule):
    """Any dataset in COCO format, given as annotation JSON + image folder per split (test optional)."""

    def __init__(
        self,
        train_ann: str,
        train_images: str,
        val_ann: str,
        val_images: str,
        test_ann: str | None = None,
        test_images: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.files = {
            "train": (train_ann, train_images),
            "val": (val_ann, val_images),
            "test": (test_ann, test_images),
        }
        if (test_ann is None) != (test_images is None):
            raise ConfigError(
                "data.test_ann and data.test_images go together: give both for a test split, or neither to "
                "test on the val split."
            )

    def split_sources(self) -> dict[str, tuple[Path, Path] | None]:
        sources: dict[str, tuple[Path, Path] | None] = {}
        for split, (ann, images) in self.files.items():
            if ann is None:
                sources[split] = None
                continue
            ann_path, image_dir = Path(ann).expanduser(), Path(images).expanduser()
            for key, path, kind in (
                (f"{split}_ann", ann_path, "file"),
                (f"{split}_images", image_dir, "dir"),
            ):
                exists = path.is_file() if kind == "file" else path.is_dir()
                if not exists:
                    raise DataError(
                        f"data.{key}={path} is not an existing {'file' if kind == 'file' else 'folder'}. "
                        "data=coco_custom takes a COCO-format annotation JSON and the folder of its images "
                        "for each split (data.train_ann/train_images, data.val_ann/val_images)."
                    )
            sources[split] = (ann_path, image_dir)
        return sources


class ShapesDataModule(CocoFormatDataModule):
    """The embedded default: procedurally drawn shapes, generated on first use into ``root`` in COCO layout.

    Generation is deterministic (``generator_seed``) and reused while its parameters match
    (``litzoo.datamodules.detection.shapes``). The data has train2017 and val2017 splits; test is val.
    Keypoint AP uses :data:`~litzoo.datamodules.detection.shapes.SHAPE_KPT_OKS_SIGMAS`.
    """

    def __init__(
        self,
        root: str,
        num_train: int = 300,
        num_val: int = 60,
        image_size: int | Sequence[int] = 128,
        generator_seed: int = 0,
        max_shapes: int = 3,
        crowd_fraction: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        self.generator = {
            "num_train": num_train,
            "num_val": num_val,
            "image_size": image_size if isinstance(image_size, int) else tuple(image_size),
            "seed": generator_seed,
            "max_shapes": max_shapes,
            "crowd_fraction": crowd_fraction,
        }

    def prepare(self) -> None:
        generate_shapes_coco(self.root, **self.generator)

    def split_sources(self) -> dict[str, tuple[Path, Path] | None]:
        def files(split: str) -> tuple[Path, Path]:
            return coco_annotation_path(self.root, split, self.targets), self.root / split

        return {"train": files("train2017"), "val": files("val2017"), "test": None}

    def default_kpt_oks_sigmas(self, num_keypoints: int) -> list[float] | None:
        return list(SHAPE_KPT_OKS_SIGMAS)


class VOCDataModule(DetectionDataModule):
    """PASCAL VOC from a ``VOCdevkit`` folder; the metric is the devkit's mAP at IoU 0.5.

    ``train_sets`` are concatenated (the usual ``[[2007, trainval], [2012, trainval]]``);
    ``val_set`` is one ``[year, split]`` (``[2007, test]``); ``test_set`` defaults to it.
    Difficult objects stay out of the training targets and are flagged for evaluation.
    """

    metric = "voc"

    def __init__(
        self,
        root: str,
        train_sets: Sequence[Sequence[Any]] = (("2007", "trainval"), ("2012", "trainval")),
        val_set: Sequence[Any] = ("2007", "test"),
        test_set: Sequence[Any] | None = None,
        use_07_metric: bool = True,
        class_names: Sequence[str] = VOC_CLASSES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if self.targets != "boxes":
            raise ConfigError(
                f"data=voc has boxes only (data.targets=boxes, task=detection), not data.targets={self.targets}. "
                "Use data=coco or data=coco_custom for masks and keypoints."
            )
        self.root = Path(root).expanduser()
        self.train_sets = [(str(y), str(s)) for y, s in train_sets]
        self.val_spec = (str(val_set[0]), str(val_set[1]))
        self.test_spec = (str(test_set[0]), str(test_set[1])) if test_set else None
        self.use_07_metric = use_07_metric
        self.class_names = list(class_names)

    def _voc(self, spec: tuple[str, str], train: bool) -> VOCDetection:
        year, split = spec
        return VOCDetection(
            self.root,
            year,
            split,
            keep_difficult=not train,
            class_names=self.class_names,
            transforms=self.train_transforms() if train else self.eval_transforms(),
        )

    def setup(self, stage: str | None = None) -> None:
        if self.val_set is None:
            self.val_set = self._voc(self.val_spec, train=False)
        if stage in (None, "fit") and self.train_set is None:
            parts = [self._voc(spec, train=True) for spec in self.train_sets]
            self.train_set = parts[0] if len(parts) == 1 else ConcatDataset(parts)
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = self._voc(self.test_spec, train=False) if self.test_spec else self.val_set

    def info(self) -> dict[str, Any]:
        return {
            "targets": self.targets,
            "metric": self.metric,
            "num_classes": len(self.class_names) + 1,
            "class_names": ["__background__", *self.class_names],
            "category_ids": list(range(1, len(self.class_names) + 1)),
            "use_07_metric": self.use_07_metric,
        }

    def voc_image_names(self, split: str) -> list[str]:
        """The VOC ids (``000005``, ...) of ``split``, indexed by a target's ``image_id``."""
        self.setup("test" if split == "test" else "validate")
        return list(self.dataset(split).ids)
