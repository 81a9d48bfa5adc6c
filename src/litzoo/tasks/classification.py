"""Image classification: cross-entropy over a timm backbone, top-1/top-5 accuracy.

The GluonCV "bag of tricks" are switches of this task: label smoothing,
mixup/cutmix (timm's `Mixup`), no weight decay on norms and biases and weight
EMA (both from `TaskModule`); the cosine schedule with warmup is `sched=cosine`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from litzoo.models.classification import split_lr_scale
from litzoo.platform.registry import build
from litzoo.tasks.base import ExportSpec, NormalizedInput, TaskModule


class ClassificationTask(TaskModule):
    """Classify images into `data_info["num_classes"]` classes.

    Args:
        model: the model config entry (`_target_` + arguments); built here with the data's
            `num_classes`, `in_chans` and `image_size`.
        data_info: what the datamodule says about the data (`num_classes`, `in_chans`,
            `image_size`, `class_names`).
        optim, sched, no_decay_norm_bias, ema_decay: see `TaskModule`.
        label_smoothing: smoothing of the one-hot training targets.
        mixup_alpha, cutmix_alpha, mix_prob: timm `Mixup` settings; 0 alphas disable mixing.
    """

    def __init__(
        self,
        model: dict,
        data_info: dict,
        optim: dict,
        sched: dict | None = None,
        label_smoothing: float = 0.0,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        mix_prob: float = 1.0,
        no_decay_norm_bias: bool = True,
        ema_decay: float | None = None,
    ) -> None:
        # The model config may ask for a fraction of the configured learning rate (`lr_scale`):
        # depthwise/squeeze-excite nets such as MobileNetV3 and EfficientNet do not train at the
        # ResNet rate (SGD 0.1 at batch 64). New names keep the saved hyper-parameters as given,
        # so a checkpoint rebuilds with the same scaling rather than a twice-scaled rate.
        net_cfg, run_optim = split_lr_scale(model, optim)
        super().__init__(run_optim, sched, no_decay_norm_bias, ema_decay)
        self.save_hyperparameters()
        self.num_classes = int(data_info["num_classes"])
        self.net = build(
            net_cfg,
            num_classes=self.num_classes,
            in_chans=int(data_info["in_chans"]),
            image_size=int(data_info["image_size"]),
        )
        self.init_ema()

        self.mixup = None
        if mixup_alpha > 0 or cutmix_alpha > 0:
            from timm.data import Mixup

            self.mixup = Mixup(
                mixup_alpha=mixup_alpha,
                cutmix_alpha=cutmix_alpha,
                prob=mix_prob,
                label_smoothing=label_smoothing,
                num_classes=self.num_classes,
            )
        self.train_criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.eval_criterion = nn.CrossEntropyLoss()

        top5 = min(5, self.num_classes)
        metrics = MetricCollection(
            {
                "acc_top1": MulticlassAccuracy(self.num_classes, top_k=1, average="micro"),
                "acc_top5": MulticlassAccuracy(self.num_classes, top_k=top5, average="micro"),
            }
        )
        self.train_acc = MulticlassAccuracy(self.num_classes, top_k=1, average="micro")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.eval_net(images)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch
        if self.mixup is not None:
            if len(images) % 2:  # timm's Mixup pairs samples: drop one from an odd batch
                images, labels = images[:-1], labels[:-1]
            images, soft_targets = self.mixup(images, labels)
            logits = self.net(images)
            loss = torch.sum(-soft_targets * torch.log_softmax(logits, dim=-1), dim=-1).mean()
        else:
            logits = self.net(images)
            loss = self.train_criterion(logits, labels)
            self.train_acc(logits, labels)
            self.log("train/acc_top1", self.train_acc, on_step=False, on_epoch=True)
        self.log(
            "train/loss",
            loss,
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(images),
            sync_dist=True,
        )
        return loss

    def _evaluate(
        self, batch: tuple[torch.Tensor, torch.Tensor], stage: str, metrics: MetricCollection
    ) -> None:
        images, labels = batch
        logits = self.eval_net(images)
        loss = self.eval_criterion(logits, labels)
        metrics(logits, labels)
        self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=True, batch_size=len(images), sync_dist=True)
        self.log_dict(metrics, on_epoch=True, prog_bar=stage == "val")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self.eval_net(images).softmax(dim=-1)

    # --- prediction from image files (python -m litzoo.predict <run_dir> <images>) ----------------
    @staticmethod
    def restore_arguments(hparams: dict[str, Any], run_dir: Any) -> dict[str, Any]:
        """The weights come from the checkpoint: do not look for the pretrained file training started from."""
        model = hparams.get("model")
        if not isinstance(model, dict):
            return hparams  # not a classification checkpoint: building the task names the problem
        model = dict(model)
        if "pretrained" in model:
            model["pretrained"] = None
        return {**hparams, "model": model}

    def eval_transform(self) -> Any:
        """The eval split's transform, rebuilt from the preprocessing its datamodule recorded in data_info."""
        from litzoo.errors import CheckpointError
        from litzoo.vision.transforms import eval_transform

        spec = self.hparams["data_info"].get("preprocess")
        if not spec:
            raise CheckpointError(
                "This checkpoint's data_info does not record its evaluation preprocessing (image size, "
                "mean/std, grey or RGB): it was trained before litzoo saved it. Retrain the run, or predict "
                "with the datamodule's own eval transform in Python."
            )
        return eval_transform(spec["image_size"], spec["mean"], spec["std"], spec["crop_pct"])

    def predict_inputs(
        self, inputs: list[str], batch_size: int = 16, top_k: int | None = None
    ) -> list[dict[str, Any]]:
        """The `top_k` (default 5) most probable classes of each image file, preprocessed like the eval split:
        ``{"input", "label", "score", "top_k": [{"label", "index", "score"}, ...]}``."""
        transform = self.eval_transform()
        mode = self.hparams["data_info"]["preprocess"]["mode"]
        names = [str(n) for n in self.hparams["data_info"]["class_names"]]
        k = min(top_k or 5, self.num_classes)
        rows: list[dict[str, Any]] = []
        for start in range(0, len(inputs), batch_size):
            chunk = inputs[start : start + batch_size]
            images = torch.stack([transform(open_image(path, mode)) for path in chunk]).to(self.device)
            with torch.no_grad():
                probabilities = self(images).float().softmax(dim=-1).cpu()
            scores, indices = probabilities.topk(k, dim=-1)
            for path, row_scores, row_indices in zip(chunk, scores.tolist(), indices.tolist()):
                top = [{"label": names[i], "index": i, "score": s} for s, i in zip(row_scores, row_indices)]
                rows.append(
                    {"input": str(path), "label": top[0]["label"], "score": top[0]["score"], "top_k": top}
                )
        return rows

    def format_prediction(self, prediction: dict[str, Any]) -> str:
        """``<file>\t<label> <probability>\t<label> <probability>...``, most probable first."""
        return "\t".join(
            [prediction["input"], *(f"{t['label']} {t['score']:.4f}" for t in prediction["top_k"])]
        )

    # --- export (python -m litzoo.export <run_dir>) -------------------------------------------------
    def export_spec(self) -> ExportSpec:
        """Pixels in [0, 1] after the eval resize and center crop ``[B, C, S, S]`` -> logits ``[B, classes]``,
        normalisation inside the graph; CNNs quantize with calibration (static int8), others dynamically."""
        from litzoo.errors import CheckpointError

        spec = self.hparams["data_info"].get("preprocess")
        if not spec:
            raise CheckpointError(
                "This checkpoint's data_info does not record its evaluation preprocessing (mean/std, input "
                "size), so the exported model could not normalise its input. Retrain the run with this litzoo."
            )
        module = NormalizedInput(self.eval_net, spec["mean"], spec["std"]).eval()
        convolutions = sum(isinstance(m, nn.Conv2d) for m in module.modules())
        return ExportSpec(
            module=module,
            calls=lambda batch: [(module.denormalize(batch[0]),)],
            labels=lambda batch: batch[1],
            input_names=("images",),
            output_names=("logits",),
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            preprocessing={
                "input": {
                    "name": "images",
                    "layout": "NCHW float32, pixels scaled to [0, 1] (normalisation is inside the model)",
                    "mode": spec["mode"],
                    "resize_shorter_side": int(spec["image_size"] / spec["crop_pct"]),
                    "center_crop": int(spec["image_size"]),
                    "crop_pct": spec["crop_pct"],
                },
                "normalize": {"mean": spec["mean"], "std": spec["std"], "in_graph": True},
                "output": {"name": "logits", "softmax": "not applied"},
                "labels": [str(n) for n in self.hparams["data_info"]["class_names"]],
            },
            # A patch-embedding stem is one convolution: a ViT is a transformer, quantized dynamically.
            int8="static" if convolutions > 1 else "dynamic",
        )


def open_image(path: str, mode: str) -> Any:
    """An image file as a PIL image in `mode` ("L" or "RGB"), decoded as the ImageFolder datamodule does."""
    from PIL import Image

    from litzoo.errors import DataError

    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except (
        OSError,
        ValueError,
    ) as error:  # missing, unreadable or not an image (PIL's UnidentifiedImageError)
        raise DataError(
            f"Cannot read image {path}: {error}. Give the path of an image file (PNG, JPEG, ...)."
        ) from None
