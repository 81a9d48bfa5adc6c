"""Keypoint estimation ("pose"): SimpleBaseline top-down on person boxes, or Keypoint R-CNN on whole images.

Both are scored with COCOeval's keypoint OKS AP (``val/map``, ``val/map_50``, ...), using the
data's per-keypoint OKS sigmas (COCO's built-in ones for its 17 person keypoints, the shapes'
:data:`~litzoo.datamodules.detection.shapes.SHAPE_KPT_OKS_SIGMAS` on the embedded data).

- :class:`TopDownPoseTask` (SimpleBaseline, Xiao et al. 2018): the datamodule crops every
  person box to a fixed input and encodes Gaussian heatmap targets; the loss is the paper's
  weighted heatmap MSE. Evaluation runs on the ground-truth boxes, averages the heatmaps of
  the crop and of its mirror image (flip test, with left/right channels swapped back), decodes
  the peaks with the quarter-pixel shift and maps them back to image pixels through the
  inverse crop transform. An instance's score is its box score times its mean confident peak.
- :class:`KeypointRCNNTask`: torchvision's Keypoint R-CNN, trained and evaluated like the other
  R-CNN models (:class:`~litzoo.tasks.detection.DetectionTask`), with keypoint AP as ``map`` and
  box AP as ``bbox_map``.

``task=pose`` builds one of them with :func:`create_pose_task`, according to the pipeline the
model asks for in its config (``model.input.pipeline``; the data config follows it).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torchmetrics import MeanMetric

from litzoo.errors import ConfigError
from litzoo.models.pose import (
    flip_test,
    keypoint_instance_score,
    keypoint_mse_loss,
)
from litzoo.platform.registry import build
from litzoo.tasks.base import EvaluatingTask, Scores, split_model_config
from litzoo.tasks.detection import DetectionPredictions, DetectionTask, check_data_targets
from litzoo.vision.keypoints import heatmaps_to_image_keypoints


def _check_pipeline(model: Mapping[str, Any], data_info: Mapping[str, Any], expected: str) -> None:
    _, spec = split_model_config(model)
    wanted = spec.get("pipeline", "full_image")
    found = data_info.get("pose_input")
    if wanted != expected or found != expected:
        raise ConfigError(
            f"model={model.get('name', '?')} takes {wanted} pose input, but the data provides {found} samples. "
            f"Drop the data.pose_input override (it follows model.input.pipeline), or set "
            f"data.pose_input={wanted}."
        )


class TopDownMetrics:
    """Keypoint OKS AP over per-box predictions, each box kept once (keyed by its dataset index)."""

    def __init__(self, coco_gt: Any, kpt_oks_sigmas: Sequence[float] | None, backend: str) -> None:
        from litzoo.metrics.coco_eval import CocoEvaluator

        self.evaluator = CocoEvaluator(coco_gt, ("keypoints",), None, backend, kpt_oks_sigmas)

    def reset(self) -> None:
        self.evaluator.reset()

    def add(
        self,
        image_ids: torch.Tensor,
        sample_indices: torch.Tensor,
        category_id: int,
        keypoints: torch.Tensor,
        scores: torch.Tensor,
    ) -> None:
        """Keypoints ``(B, K, 3)`` = (x, y, peak) in image pixels and instance scores ``(B,)``."""
        for image_id, index, kps, score in zip(
            image_ids.tolist(), sample_indices.tolist(), keypoints.tolist(), scores.tolist()
        ):
            flat = [float(v) for point in kps for v in point]
            result = {
                "image_id": int(image_id),
                "category_id": category_id,
                "keypoints": flat,
                "score": float(score),
            }
            self.evaluator.add(image_id, {"keypoints": [result]}, key=(int(image_id), int(index)))

    def compute(self) -> Scores:
        result = self.evaluator.compute()
        return Scores(
            metrics=result.flat("keypoints"),
            tables={"keypoints": result.per_class_table("keypoints")},
            save=lambda directory, stem: result.save_detections(directory, stem, primary="keypoints"),
        )


class TopDownPoseTask(DetectionPredictions, EvaluatingTask):
    """SimpleBaseline: heatmap regression on person crops, OKS AP on the ground-truth boxes.

    Args:
        model: the model config entry; built with the data's ``num_keypoints``.
        data_info: :meth:`litzoo.datamodules.detection.datamodule.DetectionDataModule.info` with
            ``pose_input="top_down"`` (crop size, heatmap stride, flip pairs, OKS sigmas).
        optim, sched, no_decay_norm_bias, ema_decay: see :class:`~litzoo.tasks.base.TaskModule`.
        flip_test: average with the mirrored crop's heatmaps at evaluation (SimpleBaseline's flip test).
        eval_backend: ``pycocotools`` or ``faster_coco_eval``.
        save_detections: write the scored keypoints (COCO results format) into the run directory.
        max_grad_norm: clip the gradients' global norm (unless trainer.gradient_clip_val is set).
    """

    def __init__(
        self,
        model: dict,
        data_info: dict,
        optim: dict,
        sched: dict | None = None,
        no_decay_norm_bias: bool = True,
        ema_decay: float | None = None,
        flip_test: bool = True,
        eval_backend: str = "pycocotools",
        save_detections: bool = True,
        max_grad_norm: float | None = None,
    ) -> None:
        super().__init__(optim, sched, no_decay_norm_bias, ema_decay, save_detections, max_grad_norm)
        self.save_hyperparameters()
        check_data_targets("pose", "keypoints", data_info)
        _check_pipeline(model, data_info, "top_down")
        self.data_info = data_info
        self.flip_test, self.eval_backend = flip_test, eval_backend
        self.flip_pairs = [tuple(p) for p in data_info["flip_pairs"]]
        arguments, _ = split_model_config(model)
        self.net = build(arguments, num_keypoints=int(data_info["num_keypoints"]))
        stride = getattr(self.net, "stride", None)
        if stride != data_info["heatmap_stride"]:
            raise ConfigError(
                f"model={model.get('name', '?')} predicts heatmaps at stride {stride}, but the data encodes its "
                f"targets at stride {data_info['heatmap_stride']}. Set data.heatmap_stride={stride}."
            )
        self.init_ema()
        # The evaluation loss as a sample-weighted mean over all ranks (torchmetrics syncs sum and
        # count), so a 2-process evaluation logs the same number as a 1-process one.
        self.eval_loss = torch.nn.ModuleDict({"val": MeanMetric(), "test": MeanMetric()})

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Heatmaps ``(B, K, H/s, W/s)`` of normalised crops (flip-averaged when ``flip_test``)."""
        net = self.eval_net
        return flip_test(net, images, self.flip_pairs) if self.flip_test else net(images)

    def training_step(self, batch: tuple[torch.Tensor, dict], batch_idx: int) -> torch.Tensor:
        images, targets = batch
        loss = keypoint_mse_loss(self.net(images), targets["heatmaps"], targets["target_weight"])
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(images))
        return loss

    def _evaluate(self, batch: tuple[torch.Tensor, dict], stage: str) -> None:
        images, targets = batch
        heatmaps = self(images)
        loss = keypoint_mse_loss(heatmaps, targets["heatmaps"], targets["target_weight"])
        self.eval_loss[stage].update(loss.detach(), weight=len(images))
        self.log(f"{stage}/loss", self.eval_loss[stage], on_epoch=True)
        keypoints = heatmaps_to_image_keypoints(
            heatmaps, targets["center"], targets["scale"], targets["rotation"]
        )
        scores = keypoint_instance_score(keypoints[..., 2], targets["score"].detach().cpu())
        self.metrics_for(stage).add(
            targets["image_id"].cpu(),
            targets["sample_index"].cpu(),
            int(self.data_info["keypoint_category_id"]),
            keypoints,
            scores,
        )

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Keypoints ``(B, K, 3)`` = (x, y, peak) in image pixels."""
        images, targets = batch
        return heatmaps_to_image_keypoints(
            self(images), targets["center"], targets["scale"], targets["rotation"]
        )

    def predict_inputs(
        self, inputs: list[str], batch_size: int = 16, top_k: int | None = None
    ) -> list[dict[str, Any]]:
        """The keypoints of one person per image file, the whole image being the person box.

        A top-down model needs person boxes and prediction gets only image files, so each image is
        taken as one person's box ``[0, 0, W, H]`` (give crops of one person each, or Keypoint R-CNN's
        whole-image run for several); it is cropped as evaluation crops a box (padding, aspect
        ratio, normalisation from the data info), flip-tested if the run was, and the peaks are mapped
        back to image pixels. The instance score is the mean confident peak (box score 1).
        """
        from litzoo.errors import CheckpointError
        from litzoo.tasks.detection import prediction_image_id, read_rgb_image
        from litzoo.vision.keypoints import box_to_center_scale, crop_image, get_affine_transform

        info = self.data_info
        spec = info.get("preprocess")
        if not spec:
            raise CheckpointError(
                "This checkpoint's data_info does not record how a person box becomes a crop (padding, mean/std): "
                "it was trained before litzoo saved it. Retrain the run to predict from image files."
            )
        input_h, input_w = (int(v) for v in info["input_size"])
        mean, std = torch.tensor(spec["mean"]).view(3, 1, 1), torch.tensor(spec["std"]).view(3, 1, 1)
        category_id = int(info["keypoint_category_id"])
        label = str(info["class_names"][list(info["category_ids"]).index(category_id) + 1])
        rows: list[dict[str, Any]] = []
        for start in range(0, len(inputs), batch_size):
            chunk = inputs[start : start + batch_size]
            crops, centers, scales, sizes = [], [], [], []
            for path in chunk:
                image = read_rgb_image(path).to(torch.float32) / 255.0
                height, width = image.shape[-2:]
                center, scale = box_to_center_scale([0, 0, width, height], input_w / input_h, spec["padding"])
                matrix = get_affine_transform(center, scale, 0.0, (input_w, input_h))
                crops.append((crop_image(image, matrix, (input_w, input_h)) - mean) / std)
                centers.append(torch.from_numpy(center).float())
                scales.append(torch.from_numpy(scale).float())
                sizes.append((int(height), int(width)))
            with torch.no_grad():
                heatmaps = self(torch.stack(crops).to(self.device))
            keypoints = heatmaps_to_image_keypoints(heatmaps, torch.stack(centers), torch.stack(scales))
            scores = keypoint_instance_score(keypoints[..., 2], torch.ones(len(chunk)))
            for path, (height, width), points, score in zip(
                chunk, sizes, keypoints.tolist(), scores.tolist()
            ):
                image_id = prediction_image_id(path)
                detection = {
                    "image_id": image_id,
                    "category_id": category_id,
                    "label": label,
                    "score": float(score),
                    "bbox": [0.0, 0.0, float(width), float(height)],
                    "keypoints": [float(v) for point in points for v in point],
                }
                rows.append(
                    {
                        "input": str(path),
                        "image_id": image_id,
                        "height": height,
                        "width": width,
                        "detections": [detection],
                    }
                )
        return rows

    def make_metrics(self, split: str) -> TopDownMetrics:
        return TopDownMetrics(
            self.datamodule.coco_ground_truth(split), self.data_info.get("kpt_oks_sigmas"), self.eval_backend
        )


class KeypointRCNNTask(DetectionTask):
    """Keypoint R-CNN on whole images: keypoint OKS AP as ``map`` (the monitor), box AP as ``bbox_map``."""

    task_name = "pose"
    targets = "keypoints"
    iou_types = ("keypoints", "bbox")

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
        _check_pipeline(model, data_info, "full_image")
        super().__init__(
            model,
            data_info,
            optim,
            sched,
            no_decay_norm_bias,
            ema_decay,
            eval_backend,
            mask_threshold,
            save_detections,
            max_grad_norm,
        )

    def network_arguments(self, data_info: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "num_keypoints": int(data_info["num_keypoints"]),
            "num_classes": int(data_info["num_classes"]),
        }


def create_pose_task(
    model: dict, data_info: dict, optim: dict, sched: dict | None = None, **options: Any
) -> EvaluatingTask:
    """The pose task for this model: top-down (SimpleBaseline) or full-image (Keypoint R-CNN).

    ``options`` are the task config's switches; each task class takes those that apply to it
    (``flip_test`` is SimpleBaseline's, ``mask_threshold`` is R-CNN's) and the rest are ignored.
    """
    _, spec = split_model_config(model)
    cls = TopDownPoseTask if spec.get("pipeline", "full_image") == "top_down" else KeypointRCNNTask
    accepted = inspect.signature(cls.__init__).parameters
    return cls(model, data_info, optim, sched, **{k: v for k, v in options.items() if k in accepted})


def _restore_pose_arguments(hparams: dict[str, Any], run_dir: Any) -> dict[str, Any]:
    """Prediction from a run directory (``TaskModule.from_run_dir``): SimpleBaseline's
    ``pretrained_backbone`` only initialises weights the checkpoint replaces, so the file need not
    exist any more. Keypoint R-CNN's keeps it: it also decides frozen batch norm, the architecture."""
    model = hparams.get("model")
    if isinstance(model, dict) and split_model_config(model)[1].get("pipeline") == "top_down":
        return {**hparams, "model": {**model, "pretrained_backbone": None}}
    return hparams


create_pose_task.restore_arguments = _restore_pose_arguments  # type: ignore[attr-defined]
