"""Object detection and instance segmentation with torchvision's R-CNN models, scored by COCOeval.

The network is a torchvision detector built from the model config (Faster R-CNN, Mask R-CNN,
Keypoint R-CNN; :mod:`litzoo.models.detection`): in training it returns its losses, in
evaluation its detections in the input image's pixel frame. This module adds what the
platform needs around it:

- the training loss is the sum of the detector's losses, each also logged (``train/loss_*``);
- validation and test predictions are accumulated per rank and, at the end of the epoch,
  gathered across ranks and scored once with the official COCOeval (box AP, mask AP,
  keypoint OKS AP; :class:`~litzoo.metrics.coco_eval.CocoEvaluator`), or with the VOC devkit's
  rule on PASCAL VOC. Every rank logs the same numbers: ``val/map``, ``val/map_50``,
  ``val/map_75``, ``val/map_small`` ... for the primary IoU type and ``val/segm_map`` ... for
  the others (and ``test/...`` at the end);
- global rank 0 writes the per-class AP table to the log and the scored detections (COCO
  results format) to the run directory: ``detections_val_epoch<NNN>.json`` after every
  validation and ``detections_test.json`` after testing (``_segm``/``_bbox`` suffixes for
  the secondary IoU types), ready for an evaluation server or for re-scoring.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from litzoo.errors import ConfigError
from litzoo.platform.registry import build
from litzoo.tasks.base import EvaluatingTask, Scores, split_model_config

log = logging.getLogger("litzoo")

# Target keys torchvision's detectors read; the rest (area, iscrowd, image_id, ...) is for evaluation.
MODEL_TARGET_KEYS = ("boxes", "labels", "masks", "keypoints")


def model_target(target: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The part of a target a torchvision detector trains on, as plain tensors (not tv_tensors)."""
    return {k: torch.as_tensor(target[k]).as_subclass(torch.Tensor) for k in MODEL_TARGET_KEYS if k in target}


class CocoMetrics:
    """COCOeval on one split's ground truth; ``primary`` IoU type unprefixed, the others prefixed."""

    def __init__(self, coco_gt: Any, iou_types: Sequence[str], category_ids: Sequence[int], backend: str,
                 kpt_oks_sigmas: Sequence[float] | None = None, mask_threshold: float = 0.5) -> None:
        from litzoo.metrics.coco_eval import CocoEvaluator

        label_to_cat_id = {label: int(c) for label, c in enumerate(category_ids, start=1)}
        self.primary = iou_types[0]
        self.evaluator = CocoEvaluator(coco_gt, iou_types, label_to_cat_id, backend, kpt_oks_sigmas, mask_threshold)

    def reset(self) -> None:
        self.evaluator.reset()

    def update(self, outputs: Sequence[Mapping[str, Any]], targets: Sequence[Mapping[str, Any]]) -> None:
        self.evaluator.update(outputs, [t["image_id"] for t in targets])

    def compute(self) -> Scores:
        result = self.evaluator.compute()
        tables = {t: result.per_class_table(t) for t in result.per_class}
        return Scores(
            metrics=result.flat(self.primary),
            tables=tables,
            save=lambda directory, stem: result.save_detections(directory, stem, primary=self.primary),
        )


class VocMetrics:
    """PASCAL VOC mAP at IoU 0.5 (``map``), as the devkit computes it; detections saved with VOC ids."""

    def __init__(self, class_names: Sequence[str], use_07_metric: bool, image_names: Sequence[str]) -> None:
        from litzoo.metrics.voc_eval import VOCMeanAP

        self.class_names = list(class_names)
        self.metric = VOCMeanAP(self.class_names, use_07_metric=use_07_metric)
        self.image_names = list(image_names)

    def reset(self) -> None:
        self.metric.reset()

    def update(self, outputs: Sequence[Mapping[str, Any]], targets: Sequence[Mapping[str, Any]]) -> None:
        self.metric.update(outputs, targets)

    def compute(self) -> Scores:
        result = self.metric.compute()
        width = max(len("class"), *(len(n) for n in self.class_names))
        rows = [f"{'class':<{width}}  {'AP50':>6}"]
        for name in self.class_names:
            ap = result[f"ap/{name}"]
            rows.append(f"{name:<{width}}  {'   nan' if math.isnan(ap) else f'{100 * ap:6.2f}'}")
        return Scores(metrics={"map": result["map"]}, tables={"bbox": "\n".join(rows)}, save=self._save)

    def _save(self, directory: str | Path, stem: str) -> list[Path]:
        """The scored detections (all ranks') as COCO-style results: image_id is the VOC image id
        (e.g. ``000005``), category_id the class index (1..20), bbox ``[x, y, w, h]``."""
        import json

        results = []
        for key, (_, _, _, detections) in sorted(self.metric.scored_images.items(), key=lambda kv: repr(kv[0])):
            name = self.image_names[key] if isinstance(key, int) and key < len(self.image_names) else str(key)
            for label, score, (x1, y1, x2, y2) in detections:
                results.append({"image_id": name, "category_id": label, "score": score,
                                "bbox": [x1, y1, x2 - x1, y2 - y1]})
        path = Path(directory) / f"{stem}.json"
        path.write_text(json.dumps(results))
        return [path]


class DetectionTask(EvaluatingTask):
    """Train a torchvision detector on ``(images, targets)`` lists and score it with COCOeval (or VOC).

    Args:
        model: the model config entry; built with the data's ``num_classes`` (background included).
        data_info: :meth:`litzoo.datamodules.detection.datamodule.DetectionDataModule.info`.
        optim, sched, no_decay_norm_bias, ema_decay: see :class:`~litzoo.tasks.base.TaskModule`.
        eval_backend: ``pycocotools`` (the reference) or ``faster_coco_eval`` (same numbers, faster).
        mask_threshold: mask probability above which a pixel belongs to the instance (mask AP).
        save_detections: write the scored detections into the run directory.
        max_grad_norm: clip the gradients' global norm to this (unless trainer.gradient_clip_val
            is set); ``None`` leaves them alone.
    """

    task_name = "detection"
    iou_types: tuple[str, ...] = ("bbox",)

    def __init__(self, model: dict, data_info: dict, optim: dict, sched: dict | None = None,
                 no_decay_norm_bias: bool = True, ema_decay: float | None = None,
                 eval_backend: str = "pycocotools", mask_threshold: float = 0.5,
                 save_detections: bool = True, max_grad_norm: float | None = None) -> None:
        super().__init__(optim, sched, no_decay_norm_bias, ema_decay, save_detections, max_grad_norm)
        self.save_hyperparameters()
        check_data_task(self.task_name, data_info)
        self.data_info = data_info
        self.eval_backend, self.mask_threshold = eval_backend, mask_threshold
        arguments, _ = split_model_config(model)
        self.net = build(arguments, **self.network_arguments(data_info))
        self.init_ema()

    def network_arguments(self, data_info: Mapping[str, Any]) -> dict[str, Any]:
        return {"num_classes": int(data_info["num_classes"])}

    # -- steps -------------------------------------------------------------------------------------

    def forward(self, images: Sequence[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return self.eval_net(list(images))

    def training_step(self, batch: tuple[list, list[dict]], batch_idx: int) -> torch.Tensor:
        images, targets = batch
        losses = self.net(list(images), [model_target(t) for t in targets])
        loss = sum(losses.values())
        size = len(images)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, on_step=True, on_epoch=True, batch_size=size)
        return loss

    def _evaluate(self, batch: tuple[list, list[dict]], stage: str) -> None:
        images, targets = batch
        self.metrics_for(stage).update(self.eval_net(list(images)), targets)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> list[dict[str, torch.Tensor]]:
        images = batch[0] if isinstance(batch, (tuple, list)) and isinstance(batch[0], (tuple, list)) else batch
        return self.eval_net(list(images))

    # -- evaluation ----------------------------------------------------------------------------------

    def make_metrics(self, split: str) -> Any:
        info = self.data_info
        if info.get("metric") == "voc":
            return VocMetrics(info["class_names"][1:], bool(info.get("use_07_metric", True)),
                              self.datamodule.voc_image_names(split))
        return CocoMetrics(self.datamodule.coco_ground_truth(split), self.iou_types, info["category_ids"],
                           self.eval_backend, info.get("kpt_oks_sigmas"), self.mask_threshold)


class InstanceSegmentationTask(DetectionTask):
    """Mask R-CNN: boxes and masks; logs box AP as ``map`` and mask AP as ``segm_map`` (the monitor)."""

    task_name = "instance_segmentation"
    iou_types = ("bbox", "segm")
    primary_metric = "segm_map"


def check_data_task(task: str, data_info: Mapping[str, Any]) -> None:
    """The datamodule loads the targets of one task; it must be this one."""
    data_task = data_info.get("task")
    if data_task != task:
        raise ConfigError(
            f"task={task} needs the data's {task} targets, but the datamodule loads data.task={data_task}. "
            f"Drop the data.task override (it follows the task), or set data.task={task}."
        )
