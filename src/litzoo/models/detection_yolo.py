"""YOLOv3 (Redmon & Farhadi 2018): a Darknet-53 backbone, an FPN-like neck and three anchor heads.

No maintained library ships YOLOv3 as a plain torch module, so the detector is built here from
parts that exist: timm's ``darknet53`` (features at strides 8, 16 and 32), torchvision's
``GeneralizedRCNNTransform`` (normalisation, resizing to a fixed square, boxes mapped back to the
input image) and ``torchvision.ops`` (``box_iou``, ``batched_nms``). It has the torchvision
detectors' call contract, so the detection task, the zoo and the exporter treat it like them:
``model(images, targets)`` in training returns a dict of losses, ``model(images)`` in evaluation
a list of ``{"boxes", "labels", "scores"}`` in each input image's pixels. Labels are 1-based
(``num_classes`` counts the background, as torchvision's), the head predicts the others.

The training targets and losses follow GluonCV's ``YOLOV3PrefetchTargetGenerator``,
``YOLOV3DynamicTargetGeneratorSimple`` and ``YOLOV3Loss`` (themselves darknet's ``yolo_layer``):

- each ground-truth box goes to the one anchor of the nine whose shape (both centred) overlaps it
  best, at the cell of its centre on that anchor's level (:func:`assign_targets`);
- predictions whose decoded box overlaps any ground truth by more than ``ignore_thresh`` (0.7, as
  darknet's yolov3.cfg and GluonCV) and that are not assigned a box are left out of the objectness
  loss; every other unassigned prediction is a negative;
- objectness, the centre offsets (``sigmoid(tx)`` vs. the fraction of the cell) and the classes
  (one sigmoid per class) are binary cross-entropies; width and height are an L1 loss on the log
  scale (``tw`` vs. ``log(w / anchor_w)``); the box terms are weighted by ``2 - w * h / image area``
  (small boxes count more). Each loss is summed over an image's predictions and averaged over the
  batch (GluonCV's normalisation).

Evaluation decodes every prediction, scores each class as objectness x class probability, keeps
scores above ``score_thresh``, the ``pre_nms_top_n`` best, then per-class NMS and the
``detections_per_img`` best (GluonCV's validation: 0.01, 400, NMS 0.45, 100).

Weights are never downloaded: ``pretrained_backbone`` is a local timm Darknet state dict and
``weights_path`` a whole detector's state dict (layers whose shapes differ start fresh).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection._utils import _topk_min
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import batched_nms, box_iou, clip_boxes_to_image

from litzoo.errors import ConfigError
from litzoo.models.detection import load_matching, load_state_dict_file
from litzoo.models.detection_yolo_checks import check_yolov3_arguments

# The paper's nine COCO anchors (width, height) for 416-px inputs, small to large: three per level.
PAPER_ANCHORS: tuple[tuple[int, int], ...] = (
    (10, 13),
    (16, 30),
    (33, 23),
    (30, 61),
    (62, 45),
    (59, 119),
    (116, 90),
    (156, 198),
    (373, 326),
)
ANCHOR_REFERENCE_SIZE = 416
STRIDES = (8, 16, 32)
ANCHORS_PER_LEVEL = 3
# The neck's widths at strides 32, 16, 8 (the paper's 512, 256, 128), before width_multiplier.
NECK_CHANNELS = (512, 256, 128)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# exp(tw) is clamped at this when decoding (torchvision's box-coder clip), so an untrained head
# cannot produce infinite boxes.
MAX_LOG_SCALE = math.log(1000.0 / 16)
# Objectness logits start at the prior log(p / (1 - p)) with p = 0.01 (as RetinaNet's classifier):
# from scratch, the summed loss over ~1000 negatives per image otherwise swamps the first steps.
OBJECTNESS_PRIOR = 0.01


# --------------------------------------------------------------------------- targets


@dataclasses.dataclass(frozen=True)
class Assignment:
    """Where each ground-truth box trains the head, and what the head should output there.

    All fields have one entry per kept box: ``level`` (0: stride 8, 1: 16, 2: 32), ``anchor``
    (0-2 within the level), the cell ``gy, gx``, the encoded box ``tx, ty`` (centre offset in the
    cell, in [0, 1)), ``tw, th`` (log of size / anchor size), the 0-based ``label`` and the box
    loss ``weight`` ``2 - w * h / (H * W)``.
    """

    level: torch.Tensor
    anchor: torch.Tensor
    gy: torch.Tensor
    gx: torch.Tensor
    tx: torch.Tensor
    ty: torch.Tensor
    tw: torch.Tensor
    th: torch.Tensor
    label: torch.Tensor
    weight: torch.Tensor


def shape_iou(wh: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """IoU of boxes ``[N, 2]`` and anchors ``[A, 2]`` (width, height) placed at the same centre: ``[N, A]``."""
    inter = torch.min(wh[:, None, 0], anchors[None, :, 0]) * torch.min(wh[:, None, 1], anchors[None, :, 1])
    union = wh[:, None].prod(-1) + anchors[None].prod(-1) - inter
    return inter / union


def assign_targets(
    boxes: torch.Tensor,
    labels: torch.Tensor,
    anchors: torch.Tensor,
    input_hw: tuple[int, int],
    strides: Sequence[int] = STRIDES,
) -> Assignment:
    """Assign each box (xyxy, network-input pixels) to its best-shaped anchor of all nine, at its centre cell.

    Boxes without area cannot be encoded (log of 0) and are left out. Two boxes landing on the same
    level, anchor and cell both appear; one of them is kept when the targets are written (GluonCV also keeps one).
    """
    wh = boxes[:, 2:] - boxes[:, :2]
    keep = (wh > 0).all(dim=1)
    boxes, labels, wh = boxes[keep], labels[keep], wh[keep]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    best = shape_iou(wh, anchors).argmax(dim=1)
    level = best // ANCHORS_PER_LEVEL
    stride = torch.as_tensor(strides, dtype=boxes.dtype, device=boxes.device)[level]
    height, width = input_hw
    grid_h = torch.div(height, stride, rounding_mode="floor")
    grid_w = torch.div(width, stride, rounding_mode="floor")
    cell = centre / stride[:, None]
    gx = torch.minimum(cell[:, 0].floor(), grid_w - 1).clamp(min=0)
    gy = torch.minimum(cell[:, 1].floor(), grid_h - 1).clamp(min=0)
    scale = torch.log(wh / anchors[best])
    return Assignment(
        level=level,
        anchor=best % ANCHORS_PER_LEVEL,
        gy=gy.long(),
        gx=gx.long(),
        tx=cell[:, 0] - gx,
        ty=cell[:, 1] - gy,
        tw=scale[:, 0],
        th=scale[:, 1],
        label=labels.long(),
        weight=2.0 - wh.prod(dim=1) / (height * width),
    )


def decode_level(prediction: torch.Tensor, anchors: torch.Tensor, stride: int) -> torch.Tensor:
    """Boxes (xyxy, network-input pixels) ``[B, H, W, A, 4]`` from one level's ``[B, H, W, A, 5 + C]`` output."""
    height, width = prediction.shape[1], prediction.shape[2]
    gy, gx = torch.meshgrid(
        torch.arange(height, device=prediction.device, dtype=prediction.dtype),
        torch.arange(width, device=prediction.device, dtype=prediction.dtype),
        indexing="ij",
    )
    grid = torch.stack((gx, gy), dim=-1)[None, :, :, None]  # [1, H, W, 1, 2]
    centre = (prediction[..., 0:2].sigmoid() + grid) * stride
    size = prediction[..., 2:4].clamp(max=MAX_LOG_SCALE).exp() * anchors
    return torch.cat((centre - size / 2, centre + size / 2), dim=-1)


# --------------------------------------------------------------------------- network


def conv_bn_leaky(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """Darknet's unit: convolution (no bias), batch norm, leaky ReLU (slope 0.1)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.1, inplace=True),
    )


class DetectionBlock(nn.Module):
    """Five convolutions alternating 1x1 (``channels``) and 3x3 (``2 * channels``), then a 3x3 "tip".

    The fifth convolution's output (the route) feeds the next, finer level; the tip feeds the
    output convolution (GluonCV's ``YOLODetectionBlockV3``).
    """

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        layers, width = [], in_channels
        for i in range(5):
            out = channels if i % 2 == 0 else 2 * channels
            layers.append(conv_bn_leaky(width, out, 1 if i % 2 == 0 else 3))
            width = out
        self.body = nn.Sequential(*layers)
        self.tip = conv_bn_leaky(channels, 2 * channels, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        route = self.body(x)
        return route, self.tip(route)


class YOLOv3Head(nn.Module):
    """The neck and the three outputs: stride 32 first, each route upsampled (after a 1x1 halving
    its width) and concatenated with the next finer backbone map; outputs are returned fine to coarse."""

    def __init__(self, in_channels: Sequence[int], neck_channels: Sequence[int], outputs: int) -> None:
        super().__init__()
        c3, c4, c5 = in_channels
        n5, n4, n3 = neck_channels
        self.blocks = nn.ModuleList(
            [DetectionBlock(c5, n5), DetectionBlock(c4 + n5 // 2, n4), DetectionBlock(c3 + n4 // 2, n3)]
        )
        self.transitions = nn.ModuleList([conv_bn_leaky(n5, n5 // 2, 1), conv_bn_leaky(n4, n4 // 2, 1)])
        self.outputs = nn.ModuleList([nn.Conv2d(2 * n, ANCHORS_PER_LEVEL * outputs, 1) for n in (n5, n4, n3)])

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        x, results = features[2], []
        for i, block in enumerate(self.blocks):
            route, tip = block(x)
            results.append(self.outputs[i](tip))
            if i < 2:
                up = F.interpolate(self.transitions[i](route), scale_factor=2.0, mode="nearest")
                x = torch.cat((up, features[1 - i]), dim=1)
        return results[::-1]


class SquareTransform(GeneralizedRCNNTransform):
    """Normalise and resize every image to ``size x size`` (aspect ratio not kept, as GluonCV's YOLO
    transforms); in training each batch draws its side from ``train_sizes`` (multi-scale training)."""

    def __init__(
        self, size: int, train_sizes: Sequence[int], mean: Sequence[float], std: Sequence[float]
    ) -> None:
        super().__init__(size, size, list(mean), list(std), size_divisible=32, fixed_size=(size, size))
        self.size, self.train_sizes = size, tuple(train_sizes)

    def forward(self, images, targets=None):  # noqa: ANN001, ANN201 - GeneralizedRCNNTransform's signature
        side = self.size
        if self.training and len(self.train_sizes) > 1:
            side = self.train_sizes[int(torch.randint(len(self.train_sizes), (1,)))]
        self.fixed_size = (side, side)
        return super().forward(images, targets)


class YOLOv3(nn.Module):
    """YOLOv3 with torchvision's detector contract (see the module docstring)."""

    def __init__(
        self,
        backbone: nn.Module,
        head: YOLOv3Head,
        transform: SquareTransform,
        anchors: torch.Tensor,
        num_classes: int,
        ignore_thresh: float,
        score_thresh: float,
        nms_thresh: float,
        pre_nms_top_n: int,
        detections_per_img: int,
    ) -> None:
        super().__init__()
        self.backbone, self.head, self.transform = backbone, head, transform
        self.register_buffer("anchors", anchors.float(), persistent=False)
        self.num_classes = num_classes
        self.ignore_thresh, self.score_thresh, self.nms_thresh = ignore_thresh, score_thresh, nms_thresh
        self.pre_nms_top_n, self.detections_per_img = pre_nms_top_n, detections_per_img

    def forward(
        self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None = None
    ) -> dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]:
        if self.training and targets is None:
            raise ValueError("YOLOv3 needs targets in training mode.")
        original_sizes = [(int(image.shape[-2]), int(image.shape[-1])) for image in images]
        image_list, targets = self.transform(images, targets)
        predictions = self.head_outputs(image_list.tensors)
        if self.training:
            return self.compute_loss(predictions, targets, tuple(image_list.tensors.shape[-2:]))
        detections = self.detect(predictions, image_list.image_sizes)
        return self.transform.postprocess(detections, image_list.image_sizes, original_sizes)

    def head_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each level's raw output as ``[B, H, W, A, 5 + C]``: tx, ty, tw, th, objectness, classes."""
        results = []
        for out in self.head(self.backbone(x)):
            batch, _, height, width = out.shape
            out = out.view(batch, ANCHORS_PER_LEVEL, 5 + self.num_classes, height, width)
            results.append(out.permute(0, 3, 4, 1, 2))
        return results

    def level_anchors(self, level: int) -> torch.Tensor:
        return self.anchors[level * ANCHORS_PER_LEVEL : (level + 1) * ANCHORS_PER_LEVEL]

    # -- training ----------------------------------------------------------------------------------

    def compute_loss(
        self,
        predictions: list[torch.Tensor],
        targets: list[dict[str, torch.Tensor]],
        input_hw: tuple[int, int],
    ) -> dict[str, torch.Tensor]:
        """GluonCV's four YOLOv3 losses, each summed over an image's predictions, averaged over images."""
        totals = dict.fromkeys(("loss_objectness", "loss_center", "loss_scale", "loss_class"), 0.0)
        boxes = [
            decode_level(p.detach(), self.level_anchors(i), STRIDES[i]) for i, p in enumerate(predictions)
        ]
        for b, target in enumerate(targets):
            gt = target["boxes"].to(predictions[0].dtype)
            found = assign_targets(gt, target["labels"] - 1, self.anchors, input_hw)
            for level, prediction in enumerate(predictions):
                pred = prediction[b]
                losses = self._level_loss(pred, boxes[level][b], gt, found, level)
                for key, value in losses.items():
                    totals[key] = totals[key] + value
        return {key: value / len(targets) for key, value in totals.items()}

    def _level_loss(
        self, pred: torch.Tensor, boxes: torch.Tensor, gt: torch.Tensor, found: Assignment, level: int
    ) -> dict[str, torch.Tensor]:
        """One image's losses on one level; ``pred`` ``[H, W, A, 5 + C]``, ``boxes`` its decoded boxes."""
        objectness_target = torch.zeros(pred.shape[:3], dtype=pred.dtype, device=pred.device)
        objectness_weight = torch.ones_like(objectness_target)
        if gt.numel():
            best = box_iou(boxes.reshape(-1, 4), gt).max(dim=1).values.view_as(objectness_weight)
            objectness_weight[best > self.ignore_thresh] = 0.0
        on = found.level == level
        cell = (found.gy[on], found.gx[on], found.anchor[on])
        objectness_target[cell] = 1.0
        objectness_weight[cell] = 1.0
        box_target = torch.stack((found.tx, found.ty, found.tw, found.th), dim=1)[on]
        classes = F.one_hot(found.label[on], self.num_classes).to(pred.dtype)
        dense_box = pred.new_zeros((*pred.shape[:3], 4))
        dense_weight = pred.new_zeros(pred.shape[:3])
        dense_class = pred.new_zeros((*pred.shape[:3], self.num_classes))
        dense_box[cell], dense_weight[cell], dense_class[cell] = box_target, found.weight[on], classes
        positive = objectness_target.bool()
        centre = F.binary_cross_entropy_with_logits(pred[..., 0:2], dense_box[..., 0:2], reduction="none")
        scale = (pred[..., 2:4] - dense_box[..., 2:4]).abs()
        return {
            "loss_objectness": F.binary_cross_entropy_with_logits(
                pred[..., 4], objectness_target, weight=objectness_weight, reduction="sum"
            ),
            "loss_center": (centre.sum(-1) * dense_weight).sum(),
            "loss_scale": (scale.sum(-1) * dense_weight).sum(),
            "loss_class": F.binary_cross_entropy_with_logits(
                pred[positive][:, 5:], dense_class[positive], reduction="sum"
            ),
        }

    # -- evaluation --------------------------------------------------------------------------------

    def detect(
        self, predictions: list[torch.Tensor], image_sizes: list[tuple[int, int]]
    ) -> list[dict[str, torch.Tensor]]:
        """Per image: score threshold, the ``pre_nms_top_n`` best, per-class NMS, the ``detections_per_img`` best."""
        boxes = torch.cat(
            [
                decode_level(p, self.level_anchors(i), STRIDES[i]).flatten(1, 3)
                for i, p in enumerate(predictions)
            ],
            dim=1,
        )
        logits = torch.cat([p.flatten(1, 3) for p in predictions], dim=1)
        scores = logits[..., 4:5].sigmoid() * logits[..., 5:].sigmoid()  # [B, N, C]
        results = []
        for image_boxes, image_scores, size in zip(boxes, scores, image_sizes):
            results.append(self._detect_image(clip_boxes_to_image(image_boxes, size), image_scores))
        return results

    def _detect_image(self, boxes: torch.Tensor, scores: torch.Tensor) -> dict[str, torch.Tensor]:
        flat = scores.flatten()
        candidates = torch.where(flat > self.score_thresh)[0]
        flat = flat[candidates]
        flat, order = flat.topk(_topk_min(flat, self.pre_nms_top_n, 0))
        candidates = candidates[order]
        box_index = torch.div(candidates, self.num_classes, rounding_mode="floor")
        labels = candidates % self.num_classes
        kept_boxes = boxes[box_index]
        keep = batched_nms(kept_boxes, flat, labels, self.nms_thresh)[: self.detections_per_img]
        return {"boxes": kept_boxes[keep], "scores": flat[keep], "labels": labels[keep] + 1}


# --------------------------------------------------------------------------- builder


def _scaled(channels: int, width_multiplier: float) -> int:
    """A width times the multiplier, rounded to a multiple of 8 (timm's make_divisible), at least 8."""
    return max(8, int(channels * width_multiplier + 4) // 8 * 8)


def darknet_backbone(
    name: str, width_multiplier: float, pretrained_backbone: str | os.PathLike | None
) -> nn.Module:
    """timm's Darknet as a stride 8/16/32 feature extractor, its widths scaled by ``width_multiplier``
    (a pretrained backbone, checked by :func:`check_yolov3_arguments`, is full width)."""
    import timm  # deferred: `import timm` costs seconds, and only building the model needs it
    from timm.models import build_model_with_cfg
    from timm.models.cspnet import CspNet, model_cfgs

    features = {"features_only": True, "out_indices": (3, 4, 5)}
    if pretrained_backbone is not None:
        path = os.fspath(pretrained_backbone)
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": path}, **features)
    if width_multiplier == 1.0:
        return timm.create_model(name, **features)
    cfg = model_cfgs[name]
    scaled = dataclasses.replace(
        cfg,
        stem=dataclasses.replace(cfg.stem, out_chs=_scaled(cfg.stem.out_chs, width_multiplier)),
        stages=dataclasses.replace(
            cfg.stages, out_chs=tuple(_scaled(c, width_multiplier) for c in cfg.stages.out_chs)
        ),
    )
    return build_model_with_cfg(
        CspNet,
        name,
        False,
        model_cfg=scaled,
        feature_cfg={"flatten_sequential": True, "out_indices": (3, 4, 5)},
        features_only=True,
    )


def _anchors(anchors: Sequence[Sequence[float]] | None, input_size: int) -> torch.Tensor:
    if anchors is None:
        return torch.tensor(PAPER_ANCHORS, dtype=torch.float32) * (input_size / ANCHOR_REFERENCE_SIZE)
    return torch.tensor([list(map(float, a)) for a in anchors], dtype=torch.float32)


def build_yolov3(
    num_classes: int,
    backbone_name: str = "darknet53",
    width_multiplier: float = 1.0,
    input_size: int = 416,
    train_sizes: Sequence[int] | None = None,
    anchors: Sequence[Sequence[float]] | None = None,
    ignore_thresh: float = 0.7,
    score_thresh: float = 0.01,
    nms_thresh: float = 0.45,
    pre_nms_top_n: int = 400,
    detections_per_img: int = 100,
    pretrained_backbone: str | os.PathLike | None = None,
    weights_path: str | os.PathLike | None = None,
) -> YOLOv3:
    """YOLOv3 for ``num_classes`` classes counting the background (``CocoDetection.num_classes``).

    ``width_multiplier`` scales the backbone's and the neck's widths (1.0: the paper's network);
    ``input_size`` is the square side images are resized to for evaluation, ``train_sizes`` the sides
    training draws from per batch (null: ``input_size`` only). ``anchors``: nine ``[w, h]`` in input
    pixels, or null for the paper's COCO anchors scaled by ``input_size / 416``.
    """
    check_yolov3_arguments(
        backbone_name,
        width_multiplier,
        input_size,
        train_sizes,
        anchors,
        None if pretrained_backbone is None else os.fspath(pretrained_backbone),
    )
    if num_classes < 2:
        raise ConfigError(f"num_classes counts the background and must be at least 2, got {num_classes}.")
    train_sizes = tuple(int(s) for s in (train_sizes or (input_size,)))
    table = _anchors(anchors, input_size)
    backbone = darknet_backbone(backbone_name, width_multiplier, pretrained_backbone)
    neck = [_scaled(c, width_multiplier) for c in NECK_CHANNELS]
    head = YOLOv3Head(backbone.feature_info.channels(), neck, 5 + num_classes - 1)
    for out in head.outputs:
        bias = out.bias.view(ANCHORS_PER_LEVEL, -1)
        nn.init.constant_(bias[:, 4], math.log(OBJECTNESS_PRIOR / (1 - OBJECTNESS_PRIOR)))
    model = YOLOv3(
        backbone,
        head,
        SquareTransform(input_size, train_sizes, IMAGENET_MEAN, IMAGENET_STD),
        table,
        num_classes - 1,
        ignore_thresh,
        score_thresh,
        nms_thresh,
        pre_nms_top_n,
        detections_per_img,
    )
    if weights_path is not None:
        load_matching(model, load_state_dict_file(weights_path, "YOLOv3 weights"), "YOLOv3 weights")
    return model
