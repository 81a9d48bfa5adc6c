"""Semantic segmentation: per-pixel cross-entropy, mIoU / mAcc / aAcc over the whole split, masks for new images.

The network (:mod:`litzoo.models.segmentation`) returns class logits at the input's resolution
(``"out"``) and, with an auxiliary head, a second set (``"aux"``). This module adds:

- the training loss: cross-entropy over the labelled pixels (255 = ignore) of the main head plus
  ``aux_weight`` times that of the auxiliary head (0.4, MMSegmentation's weight); optional
  ``class_weights``. A crop whose pixels are all ignored contributes zero, not NaN;
- evaluation at the annotation's full resolution: each (possibly resized) image is inferred with
  the split's inference mode (:mod:`litzoo.vision.segmentation_inference`: whole image, sliding
  window, multi-scale + flip; ``val_inference`` and ``test_inference``), its class probabilities
  upsampled to the mask, and the argmax accumulated into one confusion matrix per split, summed
  across DDP ranks and scored once (:mod:`litzoo.metrics.segmentation`). Every rank logs the same
  ``val/miou``, ``val/macc``, ``val/aacc`` (``test/...`` at the end; binary data also ``fg_iou``,
  ``fg_dice``); global rank 0 writes the per-class IoU / Acc table to train.log, and the test
  scores with every class's values to ``scores_test.json`` in the run directory;
- prediction from a run directory (:meth:`SemanticSegmentationTask.predict_inputs`): a palette
  PNG of the predicted classes and an overlay on the image for each input image.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from litzoo.errors import ConfigError, DataError
from litzoo.metrics.segmentation import ConfusionMatrix, SegmentationScores, scores_from_confusion
from litzoo.platform.registry import build
from litzoo.tasks.base import EvaluatingTask, Scores, split_model_config
from litzoo.vision.segmentation_inference import InferenceMode, segment

log = logging.getLogger("litzoo")

TASK = "semantic_segmentation"


class SegmentationMetrics:
    """One split's confusion matrix (a torchmetrics state, summed across ranks) and its scores."""

    def __init__(self, class_names: Sequence[str], ignore_index: int, device: torch.device) -> None:
        self.class_names = list(class_names)
        self.matrix = ConfusionMatrix(len(self.class_names), ignore_index).to(device)
        self.last: SegmentationScores | None = None

    def reset(self) -> None:
        self.matrix.reset()

    def update(self, predictions: torch.Tensor, masks: torch.Tensor) -> None:
        self.matrix.update(predictions, masks)

    def compute(self) -> Scores:
        self.last = scores_from_confusion(self.matrix.compute(), self.class_names)  # collective under DDP
        return Scores(metrics=self.last.flat(), tables={"IoU and Acc": self.last.table()})


class SemanticSegmentationTask(EvaluatingTask):
    """Train a segmentation network on ``(images, masks)`` batches and score it with mIoU.

    Args:
        model: the model config entry; built with the data's ``num_classes``.
        data_info: :meth:`litzoo.datamodules.segmentation.datamodule.SegmentationDataModule.info`.
        optim, sched, no_decay_norm_bias, ema_decay, max_grad_norm: see :class:`~litzoo.tasks.base.TaskModule`.
        aux_weight: weight of the auxiliary head's loss (0 ignores the head).
        class_weights: one cross-entropy weight per class, or ``None``.
        val_inference: the validation inference mode: ``{mode: whole|slide, crop_size, stride, scales,
            flip, window_batch}`` (:class:`~litzoo.vision.segmentation_inference.InferenceMode`);
            in slide mode the window defaults to the training crop (:func:`slide_defaults`).
        test_inference: the test (and prediction) inference mode; ``None`` uses ``val_inference``.
        save_scores: write the test scores (per class) to ``scores_test.json`` in the run directory.
    """

    primary_metric = "miou"
    # What the datamodule must say it loads (info()["targets"]): H x W maps of class indices.
    targets = "label_masks"
    table_title = "{name} per class (x100)"

    def __init__(
        self,
        model: dict,
        data_info: dict,
        optim: dict,
        sched: dict | None = None,
        no_decay_norm_bias: bool = True,
        ema_decay: float | None = None,
        aux_weight: float = 0.4,
        class_weights: Sequence[float] | None = None,
        val_inference: Mapping[str, Any] | None = None,
        test_inference: Mapping[str, Any] | None = None,
        save_scores: bool = True,
        max_grad_norm: float | None = None,
    ) -> None:
        super().__init__(optim, sched, no_decay_norm_bias, ema_decay, save_scores, max_grad_norm)
        self.save_hyperparameters()
        if data_info.get("targets") != self.targets:
            raise ConfigError(
                f"task={TASK} needs images with label masks (data targets {self.targets}), but the "
                f"datamodule loads {data_info.get('targets', 'other targets')}. Use a segmentation "
                "dataset (data=scenes, voc_seg, ade20k, cityscapes, seg_folder)."
            )
        self.data_info = data_info
        self.class_names = [str(n) for n in data_info["class_names"]]
        self.num_classes = len(self.class_names)
        self.ignore_index = int(data_info.get("ignore_index", 255))
        self.aux_weight = float(aux_weight)
        crop = data_info.get("crop_size")
        self.val_mode = InferenceMode.from_config(slide_defaults(val_inference, crop))
        self.test_mode = InferenceMode.from_config(
            slide_defaults(test_inference if test_inference is not None else val_inference, crop)
        )
        weights = None
        if class_weights is not None:
            if len(class_weights) != self.num_classes:
                raise ConfigError(
                    f"task.class_weights has {len(class_weights)} values for {self.num_classes} classes "
                    f"({', '.join(self.class_names)}); give one weight per class."
                )
            weights = torch.tensor([float(w) for w in class_weights])
        self.register_buffer("class_weights", weights, persistent=False)
        arguments, _ = split_model_config(model)
        self.net = build(arguments, num_classes=self.num_classes)
        self.init_ema()

    # -- steps -------------------------------------------------------------------------------------

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits (``N x K x H x W``) of a normalised batch, with the evaluation weights."""
        return self.eval_net(images)["out"]

    def pixel_loss(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Cross-entropy averaged over labelled pixels (weighted as torch's 'mean'); 0 if none is labelled."""
        losses = F.cross_entropy(
            logits, masks, weight=self.class_weights, ignore_index=self.ignore_index, reduction="none"
        )
        labelled = masks != self.ignore_index
        if self.class_weights is None:
            total = labelled.sum()
        else:
            total = (self.class_weights[masks.masked_fill(~labelled, 0)] * labelled).sum()
        return losses.sum() / total.clamp(min=1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, masks = batch
        if not isinstance(images, torch.Tensor):
            raise DataError(
                "Training images differ in size, so they cannot be batched: training needs fixed-size "
                "crops (data.crop_size)."
            )
        outputs = self.net(images)
        loss = main = self.pixel_loss(outputs["out"], masks)
        size = images.shape[0]
        if "aux" in outputs and self.aux_weight:
            aux = self.pixel_loss(outputs["aux"], masks)
            loss = main + self.aux_weight * aux
            self.log("train/loss_aux", aux, on_step=True, on_epoch=True, batch_size=size)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        return loss

    def _probabilities(self, images: torch.Tensor, mode: InferenceMode, size: Sequence[int]) -> torch.Tensor:
        return segment(self, images, mode, size)

    def _predict(
        self, images: torch.Tensor | list[torch.Tensor], sizes: Sequence[Sequence[int]], mode: InferenceMode
    ) -> list[torch.Tensor]:
        """Predicted labels at each image's output size: one forward pass per batch when they share sizes."""
        if isinstance(images, torch.Tensor) and len({tuple(s) for s in sizes}) == 1:
            return list(self._probabilities(images, mode, sizes[0]).argmax(dim=1))
        return [
            self._probabilities(image[None], mode, size).argmax(dim=1)[0]
            for image, size in zip(images, sizes)
        ]

    def _evaluate(self, batch: tuple[Any, Any], stage: str) -> None:
        images, masks = batch
        mode = self.val_mode if stage == "val" else self.test_mode
        sizes = [tuple(m.shape[-2:]) for m in masks]
        metrics = self.metrics_for(stage)
        for predicted, mask in zip(self._predict(images, sizes, mode), masks):
            metrics.update(predicted, mask)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> list[torch.Tensor]:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self._predict(images, [tuple(i.shape[-2:]) for i in images], self.test_mode)

    # -- evaluation ----------------------------------------------------------------------------------

    def make_metrics(self, split: str) -> SegmentationMetrics:
        return SegmentationMetrics(self.class_names, self.ignore_index, self.device)

    def _finish(self, stage: str) -> None:
        super()._finish(stage)
        if self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        scores = self.metrics_for(stage).last
        if stage == "test" and self.save_detections:
            path = Path(self.trainer.default_root_dir) / "scores_test.json"
            path.write_text(json.dumps(scores.as_dict(), indent=2, allow_nan=True))
            log.info("Saved the test scores per class to %s", path)

    # -- prediction (python -m litzoo.predict <run_dir> <images>) -----------------------------------

    def predict_inputs(
        self,
        inputs: list[str],
        batch_size: int = 16,
        top_k: int | None = None,
        output_dir: str | Path | None = None,
    ) -> list[dict[str, Any]]:
        """Segment image files: for each, ``<stem>_mask.png`` (palette PNG of class indices, the dataset's
        colours) and ``<stem>_overlay.jpg`` in `output_dir` (default: ``<run_dir>/predictions``), at the
        image's full resolution, with the test inference mode. Returns one dict per image: its paths,
        size and the share of the image each predicted class covers, largest first (the `top_k`
        largest only, if given)."""
        from torchvision import tv_tensors

        from litzoo.vision.palette import full_palette, overlay, save_image, save_palette_png
        from litzoo.vision.segmentation_transforms import eval_image_transform

        paths = [Path(p).expanduser() for p in inputs]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:  # before anything is written
            raise DataError(f"Input image(s) not found: {', '.join(missing[:5])}. Give paths of image files.")
        for path in paths:  # every input is an image (its header), before the first mask is written
            _read_image(path, header_only=True)
        run_dir = getattr(self, "run_dir", None)
        folder = (
            Path(output_dir)
            if output_dir
            else (run_dir.artifact("predictions") if run_dir else Path("predictions"))
        )
        info = self.data_info
        transform = eval_image_transform(info["mean"], info["std"], info.get("eval_scale"))
        palette = full_palette(info.get("colours"))
        stems = _unique_stems(paths)
        results = []
        self.eval()
        for start in range(0, len(paths), max(1, batch_size)):
            chunk = list(range(start, min(start + batch_size, len(paths))))
            pixels = [_read_image(paths[i]) for i in chunk]
            images = [
                transform(tv_tensors.Image(torch.from_numpy(p).permute(2, 0, 1))).as_subclass(torch.Tensor)
                for p in pixels
            ]
            sizes = [p.shape[:2] for p in pixels]
            batch: torch.Tensor | list[torch.Tensor] = images
            if len({tuple(i.shape) for i in images}) == 1:
                batch = torch.stack(images)
            with torch.no_grad():
                labels = self._predict(
                    batch.to(self.device)
                    if isinstance(batch, torch.Tensor)
                    else [i.to(self.device) for i in batch],
                    sizes,
                    self.test_mode,
                )
            for index, image, predicted in zip(chunk, pixels, labels):
                values = predicted.to(torch.uint8).cpu().numpy()
                mask_path = save_palette_png(folder / f"{stems[index]}_mask.png", values, palette)
                overlay_path = save_image(
                    folder / f"{stems[index]}_overlay.jpg", overlay(image, values, palette)
                )
                results.append(
                    {
                        "input": str(paths[index]),
                        "mask": str(mask_path),
                        "overlay": str(overlay_path),
                        "size": [int(image.shape[0]), int(image.shape[1])],
                        "classes": self._shares(values, top_k),
                    }
                )
        return results

    def _shares(self, labels: np.ndarray, top_k: int | None = None) -> dict[str, float]:
        counts = np.bincount(labels.reshape(-1), minlength=self.num_classes)[: self.num_classes]
        order = [i for i in np.argsort(-counts, kind="stable") if counts[i]][:top_k]
        return {self.class_names[i]: round(float(counts[i]) / labels.size, 4) for i in order}

    def format_prediction(self, prediction: dict[str, Any]) -> str:
        shares = ", ".join(
            f"{name} {100 * share:.1f}%" for name, share in list(prediction["classes"].items())[:5]
        )
        return f"{prediction['input']}\t{prediction['mask']}\t{prediction['overlay']}\t{shares}"

    # -- export (python -m litzoo.export <run_dir>) ------------------------------------------------

    def export_spec(self) -> Any:
        """Pixels in [0, 1] ``[B, 3, H, W]`` (any size; the eval resize ``eval_scale`` happens before) ->
        class logits ``[B, K, H, W]``, normalisation inside the graph; whole-image inference (sliding
        windows, multi-scale and flips stay outside it, in the caller). See docs/export.md."""
        from litzoo.tasks.base import ExportSpec, NormalizedInput

        module = NormalizedInput(
            self.eval_net, list(self.data_info["mean"]), list(self.data_info["std"]), "out"
        ).eval()

        def calls(batch: Any) -> list[tuple[torch.Tensor, ...]]:
            images = batch[0]
            if not isinstance(images, torch.Tensor) and len({tuple(i.shape) for i in images}) == 1:
                images = torch.stack(list(images))  # one call of the whole batch where sizes agree
            if isinstance(images, torch.Tensor):
                return [(module.denormalize(images),)]
            return [(module.denormalize(image[None]),) for image in images]

        return ExportSpec(
            module=module,
            calls=calls,
            input_names=("images",),
            output_names=("logits",),
            dynamic_axes={
                "images": {0: "batch", 2: "height", 3: "width"},
                "logits": {0: "batch", 2: "height", 3: "width"},
            },
            preprocessing={
                "input": {
                    "name": "images",
                    "layout": "NCHW float32 RGB, pixels scaled to [0, 1], any size",
                    "resize_before": self.data_info.get("eval_scale"),
                },
                "normalize": {
                    "mean": list(self.data_info["mean"]),
                    "std": list(self.data_info["std"]),
                    "in_graph": True,
                },
                "output": {"name": "logits", "argmax over axis 1": "class index per pixel"},
                "class_names": self.class_names,
                "ignore_index": self.ignore_index,
            },
        )


def slide_defaults(
    config: Mapping[str, Any] | None, train_crop: Sequence[int] | None
) -> dict[str, Any] | None:
    """An inference config whose sliding window, when not given, is the training crop (the size the
    model learnt at) and whose step is two thirds of the window, rounded: MMSegmentation's 769/513
    (Cityscapes) and 512/341 (ADE20K). Other modes, and a datamodule that reports no crop, pass as they are."""
    if config is None or config.get("mode") != "slide" or train_crop is None:
        return None if config is None else dict(config)
    completed = dict(config)
    window = completed.get("crop_size")
    window = train_crop if window is None else window
    window = [int(window), int(window)] if isinstance(window, int) else [int(v) for v in window]
    completed["crop_size"] = window
    if completed.get("stride") is None:
        completed["stride"] = [max(1, round(2 * v / 3)) for v in window]
    return completed


def _read_image(path: Path, header_only: bool = False) -> np.ndarray | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return None if header_only else np.array(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{path} cannot be read as an image ({error}).") from None


def _unique_stems(paths: Sequence[Path]) -> list[str]:
    """Output names per input: the file stem, numbered when two inputs share one (a/x.jpg, b/x.jpg)."""
    seen: dict[str, int] = {}
    stems = []
    for path in paths:
        count = seen.get(path.stem, 0)
        seen[path.stem] = count + 1
        stems.append(path.stem if count == 0 else f"{path.stem}_{count}")
    return stems
