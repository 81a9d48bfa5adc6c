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

from litzoo.errors import ConfigError, DataError
from litzoo.platform.registry import build
from litzoo.tasks.base import EvaluatingTask, ExportSpec, Scores, split_model_config

log = logging.getLogger("litzoo")

# Target keys torchvision's detectors read; the rest (area, iscrowd, image_id, ...) is for evaluation.
MODEL_TARGET_KEYS = ("boxes", "labels", "masks", "keypoints")


def model_target(target: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The part of a target a torchvision detector trains on, as plain tensors (not tv_tensors)."""
    return {k: torch.as_tensor(target[k]).as_subclass(torch.Tensor) for k in MODEL_TARGET_KEYS if k in target}


class CocoMetrics:
    """COCOeval on one split's ground truth; ``primary`` IoU type unprefixed, the others prefixed."""

    def __init__(
        self,
        coco_gt: Any,
        iou_types: Sequence[str],
        category_ids: Sequence[int],
        backend: str,
        kpt_oks_sigmas: Sequence[float] | None = None,
        mask_threshold: float = 0.5,
    ) -> None:
        from litzoo.metrics.coco_eval import CocoEvaluator

        label_to_cat_id = {label: int(c) for label, c in enumerate(category_ids, start=1)}
        self.primary = iou_types[0]
        self.evaluator = CocoEvaluator(
            coco_gt, iou_types, label_to_cat_id, backend, kpt_oks_sigmas, mask_threshold
        )

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
        for key, (_, _, _, detections) in sorted(
            self.metric.scored_images.items(), key=lambda kv: repr(kv[0])
        ):
            name = self.image_names[key] if isinstance(key, int) and key < len(self.image_names) else str(key)
            for label, score, (x1, y1, x2, y2) in detections:
                results.append(
                    {
                        "image_id": name,
                        "category_id": label,
                        "score": score,
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                    }
                )
        path = Path(directory) / f"{stem}.json"
        path.write_text(json.dumps(results))
        return [path]


def read_rgb_image(path: str | Path) -> torch.Tensor:
    """An image file as a uint8 RGB tensor ``(3, H, W)``, decoded as the COCO-format datamodules do."""
    from torchvision.io import ImageReadMode, decode_image

    if not Path(path).is_file():
        raise DataError(f"Image file {path} does not exist. Give the path of an image file (JPEG, PNG, ...).")
    try:
        return decode_image(str(path), mode=ImageReadMode.RGB)
    except (RuntimeError, ValueError) as error:
        raise DataError(
            f"Cannot decode image {path} ({str(error).splitlines()[0]}). Give an image file (JPEG, PNG, ...)."
        ) from None


def prediction_image_id(path: str | Path) -> int | str:
    """The COCO ``image_id`` of a predicted file: the number its name is, as in COCO's own naming
    (``000000397133.jpg`` -> 397133, so results score against the official annotations), else its file name."""
    name = Path(path).name
    stem = Path(path).stem
    return int(stem) if stem.isdigit() else name


class DetectionPredictions:
    """How detection-family tasks print and save predictions: one row per image file,
    ``{"input", "image_id", "width", "height", "detections": [COCO result + "label"]}``."""

    def format_prediction(self, prediction: dict[str, Any]) -> str:
        """``<file>\t<n> detection(s)\t<label> <score> [x, y, w, h]\t...``, best first."""
        found = prediction["detections"]
        parts = [prediction["input"], f"{len(found)} detection{'' if len(found) == 1 else 's'}"]
        parts += [
            f"{d['label']} {d['score']:.4f} [{', '.join(f'{v:.1f}' for v in d['bbox'])}]" for d in found
        ]
        return "\t".join(parts)

    def predictions_file(self, predictions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The official COCO results list (``image_id, category_id, bbox [x, y, w, h], score`` and
        ``segmentation`` (RLE) or ``keypoints``), all detections of all files in one list, as detectron2
        writes it. pycocotools' ``loadRes`` reads it; for mask AP drop ``bbox`` first (detectron2 does too),
        else COCOeval takes the box area as the instance's area."""
        return [
            {k: v for k, v in d.items() if k != "label"} for row in predictions for d in row["detections"]
        ]


class DetectionTask(DetectionPredictions, EvaluatingTask):
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
    # What the data must load for this task (`data.targets`): boxes; masks; keypoints.
    targets = "boxes"
    iou_types: tuple[str, ...] = ("bbox",)

    def __init__(
        self,
        model: dict,
        data_info: dict,
        optim: dict,
        sched: dict | None = None,
        no_decay_norm_bias: bool = True,
        ema_decay: float | None = None,
        eval_backend: str = "pycocotools",
        mask_threshold: float = 0.5,
        save_detections: bool = True,
        max_grad_norm: float | None = None,
    ) -> None:
        super().__init__(optim, sched, no_decay_norm_bias, ema_decay, save_detections, max_grad_norm)
        self.save_hyperparameters()
        check_data_targets(self.task_name, self.targets, data_info)
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
        self.log_dict(
            {f"train/{k}": v for k, v in losses.items()}, on_step=True, on_epoch=True, batch_size=size
        )
        return loss

    def _evaluate(self, batch: tuple[list, list[dict]], stage: str) -> None:
        images, targets = batch
        self.metrics_for(stage).update(self.eval_net(list(images)), targets)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> list[dict[str, torch.Tensor]]:
        images = (
            batch[0] if isinstance(batch, (tuple, list)) and isinstance(batch[0], (tuple, list)) else batch
        )
        return self.eval_net(list(images))

    # -- prediction from image files (python -m litzoo.predict <run_dir> <images>) -------------------

    def predict_inputs(
        self, inputs: list[str], batch_size: int = 4, top_k: int | None = None
    ) -> list[dict[str, Any]]:
        """Detections of each image file in its own pixel frame: the evaluation preprocessing (the image as
        it is, scaled to [0, 1]; the model resizes internally), the model's score threshold, the `top_k`
        best (default: all it returns), with boxes, RLE masks and keypoints as COCO results."""
        from torchvision import tv_tensors

        from litzoo.vision.detection_transforms import detection_eval_transforms

        transform = detection_eval_transforms()
        rows: list[dict[str, Any]] = []
        for start in range(0, len(inputs), batch_size):
            chunk = inputs[start : start + batch_size]
            images = [read_rgb_image(path) for path in chunk]
            with torch.no_grad():
                outputs = self([transform(tv_tensors.Image(image)).to(self.device) for image in images])
            for path, image, output in zip(chunk, images, outputs):
                rows.append(self.detections_row(str(path), tuple(image.shape[-2:]), output, top_k))
        return rows

    def detections_row(
        self,
        path: str,
        size_hw: tuple[int, int],
        output: Mapping[str, torch.Tensor],
        top_k: int | None = None,
    ) -> dict[str, Any]:
        """One image's model output as a prediction row (COCO category ids, class names, results format)."""
        from litzoo.metrics.coco_eval import predictions_to_coco_results

        output = {k: v.detach().cpu() for k, v in output.items()}
        order = torch.argsort(output["scores"], descending=True, stable=True)[:top_k]
        output = {k: v[order] for k, v in output.items()}
        kinds = [t for t in ("bbox", "segm", "keypoints") if t == "bbox" or t in self.iou_types]
        label_to_cat_id = {label: int(c) for label, c in enumerate(self.data_info["category_ids"], start=1)}
        results = predictions_to_coco_results(output, 0, kinds, label_to_cat_id, self.mask_threshold)
        names = self.data_info["class_names"]
        image_id = prediction_image_id(path)
        detections = []
        for i, (label, box) in enumerate(zip(output["labels"].tolist(), results["bbox"])):
            detection = {
                "image_id": image_id,
                "category_id": box["category_id"],
                "label": str(names[label]),
                "score": box["score"],
                "bbox": box["bbox"],
            }
            if "segm" in results:
                detection["segmentation"] = results["segm"][i]["segmentation"]
            if "keypoints" in results:
                detection["keypoints"] = results["keypoints"][i]["keypoints"]
            detections.append(detection)
        return {
            "input": path,
            "image_id": image_id,
            "height": int(size_hw[0]),
            "width": int(size_hw[1]),
            "detections": detections,
        }

    # -- export (python -m litzoo.export <run_dir>) ------------------------------------------------

    def export_spec(self) -> ExportSpec:
        """One RGB image ``[3, H, W]`` in [0, 1], any size -> ``boxes [N, 4]`` (xyxy, the image's pixels),
        ``labels [N]``, ``scores [N]`` (``masks [N, 1, H, W]`` for Mask R-CNN), N >= 0.

        The graph is torchvision's own eval path: resize, normalisation, RPN, ROI heads, NMS and the
        score threshold are all inside it. It takes one image per call: torchvision's R-CNN loops over
        the images of a batch in Python, so a traced batch would be fixed to the traced count
        (torchvision's known batch > 1 breakage); a batch is run image by image, which is what eager
        does too, image for image. The parity check runs every image of real val batches and a blank
        image of another size (no detections expected from a trained model; the graph must return
        empty outputs, not fail).
        """
        transform = self.eval_net.transform
        outputs = ["boxes", "labels", "scores"] + (["masks"] if "segm" in self.iou_types else [])
        module = SingleImageDetector(self.eval_net, tuple(outputs)).eval()
        detections = {0: "detections"}
        return ExportSpec(
            module=module,
            calls=lambda batch: [(image.as_subclass(torch.Tensor),) for image in batch[0]],
            edge_cases=lambda: [(torch.zeros(3, 117, 87),)],  # not the split's size: H, W are dynamic
            input_names=("image",),
            output_names=tuple(outputs),
            dynamic_axes={"image": {1: "height", 2: "width"}, **{name: detections for name in outputs}},
            preprocessing={
                "input": {
                    "name": "image",
                    "layout": "CHW float32 RGB, pixels scaled to [0, 1], any size; one image per call",
                    "in_graph": "resize (min_size/max_size, or to fixed_size: SSD, YOLOv3), normalisation, "
                    "NMS, score threshold",
                    "min_size": list(transform.min_size),
                    "max_size": int(transform.max_size),
                    "fixed_size": list(transform.fixed_size) if transform.fixed_size else None,
                    "mean": [float(v) for v in transform.image_mean],
                    "std": [float(v) for v in transform.image_std],
                },
                "output": {
                    "boxes": "[N, 4] x1, y1, x2, y2 in the input image's pixels",
                    "labels": "[N] int64, 1-based; labels[i] names class_names[labels[i]]",
                    "scores": "[N] float32, best first",
                    **(
                        {"masks": "[N, 1, H, W] probabilities; > mask_threshold is the instance"}
                        if "masks" in outputs
                        else {}
                    ),
                },
                "class_names": [str(n) for n in self.data_info["class_names"]],
                "category_ids": [int(c) for c in self.data_info["category_ids"]],
                "mask_threshold": self.mask_threshold,
            },
            formats=("onnx", "torchscript"),
            atol=1e-3,
            rtol=1e-3,
            # Boxes are pixels: onnxruntime's resize and exp() differ from torch's in the last bits, which
            # box decoding scales up (0.05 px on 64 px shapes measured); a tenth of a pixel is not a change.
            output_tolerances={"boxes": (0.1, 1e-3)},
        )

    # -- evaluation ----------------------------------------------------------------------------------

    def make_metrics(self, split: str) -> Any:
        info = self.data_info
        if info.get("metric") == "voc":
            return VocMetrics(
                info["class_names"][1:],
                bool(info.get("use_07_metric", True)),
                self.datamodule.voc_image_names(split),
            )
        return CocoMetrics(
            self.datamodule.coco_ground_truth(split),
            self.iou_types,
            info["category_ids"],
            self.eval_backend,
            info.get("kpt_oks_sigmas"),
            self.mask_threshold,
        )


class SingleImageDetector(torch.nn.Module):
    """A torchvision detector as tensors in, tensors out: ``image [3, H, W]`` -> the named fields of its
    one detection dict, in order (what an exported graph can return)."""

    def __init__(self, net: torch.nn.Module, outputs: tuple[str, ...]) -> None:
        super().__init__()
        self.net, self.outputs = net, outputs

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        detections = self.net([image])[0]
        return tuple(detections[name] for name in self.outputs)


class InstanceSegmentationTask(DetectionTask):
    """Mask R-CNN: boxes and masks; logs box AP as ``map`` and mask AP as ``segm_map`` (the monitor)."""

    task_name = "instance_segmentation"
    targets = "masks"
    iou_types = ("bbox", "segm")
    primary_metric = "segm_map"


def check_data_targets(task: str, needed: str, data_info: Mapping[str, Any]) -> None:
    """The datamodule must load the targets `task` needs (`data.targets`; every choice includes boxes)."""
    loaded = data_info.get("targets")
    if needed != loaded and not (needed == "boxes" and loaded in ("masks", "keypoints")):
        raise ConfigError(
            f"task={task} needs the data's {needed} targets, but the datamodule loads data.targets={loaded}. "
            f"Set data.targets={needed} (conf/task/{task}.yaml sets it; an override on the command line or "
            "in an experiment file changed it)."
        )
