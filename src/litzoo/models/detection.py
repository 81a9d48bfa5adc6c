"""Faster / Mask / Keypoint R-CNN builders on torchvision, with torchvision or timm backbones.

torchvision ships the detectors; this module only chooses the backbone and the weights:

- ``variant`` (torchvision backbones): ``resnet18_fpn``, ``resnet34_fpn``, ``resnet50_fpn``,
  ``resnet101_fpn`` (the original heads, as ``fasterrcnn_resnet50_fpn``),
  ``resnet50_fpn_v2`` (torchvision's improved recipe, Faster/Mask R-CNN only) and
  ``mobilenet_v3_large_fpn`` (Faster R-CNN only).
- ``backbone_source="timm"`` with ``backbone_name``: any timm model that supports
  ``features_only`` (resnet18, convnext_tiny, efficientnet_b0, ...) under an FPN.

Nothing is downloaded. ``pretrained_backbone`` and ``weights_path`` are local files (a
state dict, or a checkpoint dict holding one under ``state_dict``/``model``). As in
torchvision, a pretrained backbone gets frozen batch norm and only its last
``trainable_layers`` stages train; a backbone trained from scratch uses ordinary batch
norm and trains entirely.

The CPU-friendly defaults (``resnet18_fpn``, images resized to 128) make a forward and
backward pass take well under a second; override ``min_size``/``max_size`` for real data.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torchvision.models import resnet as torchvision_resnets
from torchvision.models.detection import (
    FasterRCNN,
    KeypointRCNN,
    MaskRCNN,
    fasterrcnn_resnet50_fpn_v2,
    maskrcnn_resnet50_fpn_v2,
)
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN, mobilenet_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.keypoint_rcnn import KeypointRCNNHeads, KeypointRCNNPredictor
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.misc import FrozenBatchNorm2d

from litzoo.errors import CheckpointError, ConfigError, DependencyError

log = logging.getLogger(__name__)

RESNET_VARIANTS = ("resnet18_fpn", "resnet34_fpn", "resnet50_fpn", "resnet101_fpn")
VARIANTS = {
    "faster_rcnn": (*RESNET_VARIANTS, "resnet50_fpn_v2", "mobilenet_v3_large_fpn"),
    "mask_rcnn": (*RESNET_VARIANTS, "resnet50_fpn_v2"),
    "keypoint_rcnn": RESNET_VARIANTS,
}
BACKBONE_SOURCES = ("torchvision", "timm")
_RESNET_STAGES = ("layer4", "layer3", "layer2", "layer1", "conv1")
# torchvision's proposal and sampling counts are sized for ~800 px images; on ~128 px images
# they only add cost (the box head runs on every sampled RoI), so small_images=True scales them
# down. Explicit keyword arguments still win.
SMALL_IMAGE_RCNN_KWARGS: dict[str, int] = {
    "rpn_pre_nms_top_n_train": 600,
    "rpn_post_nms_top_n_train": 300,
    "rpn_pre_nms_top_n_test": 300,
    "rpn_post_nms_top_n_test": 150,
    "box_batch_size_per_image": 128,
}
# Keypoint R-CNN's head (8 convs of 512 channels on every positive RoI) dominates its cost on
# CPU; small_images uses 4 convs of 256 and keeps 20 detections, the most COCO's keypoint AP counts.
SMALL_KEYPOINT_HEAD_LAYERS = (256, 256, 256, 256)


# --------------------------------------------------------------------------- weights


def load_state_dict_file(path: str | os.PathLike, what: str) -> dict[str, torch.Tensor]:
    """Read a local state dict (plain, or under ``state_dict``/``model``) with user-facing errors."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DependencyError(
            f"{what} not found at {path}. Weights are never downloaded: give the path of a local state-dict "
            "file (e.g. saved with torch.save(model.state_dict(), path)), or leave it unset to train from scratch."
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        raise CheckpointError(f"{what} at {path} cannot be read as a PyTorch state dict ({exc}).") from exc
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{what} at {path} holds a {type(obj).__name__}, not a state dict.")
    return obj


def load_matching(module: nn.Module, state_dict: dict[str, torch.Tensor], what: str) -> list[str]:
    """Load the entries whose names and shapes match; return (and log) the names that were skipped.

    Fine-tuning a COCO detector on a dataset with another number of classes is the usual
    reason: the box/mask/keypoint predictors differ in shape and start fresh.
    """
    own = module.state_dict()
    usable = {k: v for k, v in state_dict.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(own) - set(usable))
    if not usable:
        raise CheckpointError(
            f"None of the {len(state_dict)} tensors in the {what} match the model; wrong file?"
        )
    module.load_state_dict(usable, strict=False)
    if skipped:
        log.warning(
            "%s: %d tensor(s) kept their fresh initialisation: %s",
            what,
            len(skipped),
            ", ".join(skipped[:8]) + (", ..." if len(skipped) > 8 else ""),
        )
    return skipped


def _strip_prefix(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state_dict.items()}


def _freeze_resnet_body(body: nn.Module, trainable_layers: int) -> None:
    """Freeze all but the last ``trainable_layers`` ResNet stages, as torchvision's ``_resnet_fpn_extractor``."""
    train = list(_RESNET_STAGES[:trainable_layers])
    if trainable_layers == 5:
        train.append("bn1")
    for name, parameter in body.named_parameters():
        if not any(name.startswith(stage) for stage in train):
            parameter.requires_grad_(False)


# --------------------------------------------------------------------------- timm backbone


class TimmFPNBackbone(nn.Module):
    """A timm ``features_only`` model under torchvision's FPN, usable wherever torchvision's ``BackboneWithFPN`` is.

    The last four feature levels (strides 4-32 for most models) feed the FPN; a max-pooled
    extra level gives the fifth map R-CNN's default anchors expect.
    """

    def __init__(
        self,
        name: str,
        pretrained_path: str | os.PathLike | None = None,
        trainable_layers: int = 3,
        out_channels: int = 256,
    ) -> None:
        super().__init__()
        import timm  # deferred so that torchvision-only models do not pay for importing timm

        kwargs: dict[str, Any] = {"features_only": True}
        if pretrained_path is not None:
            path = os.fspath(pretrained_path)
            if not os.path.isfile(path):
                raise DependencyError(
                    f"Pretrained backbone weights for timm model '{name}' not found at {path}. Give a local "
                    "state-dict file, or leave pretrained_backbone unset to train from scratch."
                )
            kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": path})
        try:
            self.body = timm.create_model(name, **kwargs)
        except RuntimeError as exc:
            raise ConfigError(f"timm cannot build '{name}' as a feature extractor ({exc}).") from exc
        self.num_levels = min(4, len(self.body.feature_info))
        if pretrained_path is not None:
            self._freeze(trainable_layers)
            self.body = timm.layers.freeze_batch_norm_2d(self.body)
        in_channels = self.body.feature_info.channels()[-self.num_levels :]
        self.fpn = FeaturePyramidNetwork(in_channels, out_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def _freeze(self, trainable_layers: int) -> None:
        """Freeze the stages before the last ``trainable_layers`` (the stem counts as one, as in torchvision)."""
        # feature_info names the module ending each stage; FeatureListNet's children carry those
        # names with dots replaced by underscores, in forward order.
        ends = [m.replace(".", "_") for m in self.body.feature_info.module_name()]
        frozen_stages = len(ends) - trainable_layers
        if frozen_stages <= 0:
            return
        children = [n for n, _ in self.body.named_children()]
        last_frozen = children.index(ends[frozen_stages - 1])
        for child in children[: last_frozen + 1]:
            for p in getattr(self.body, child).parameters():
                p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        features = self.body(x)[-self.num_levels :]
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(features)))


# --------------------------------------------------------------------------- builders


def _check(kind: str, variant: str, backbone_source: str) -> None:
    if backbone_source not in BACKBONE_SOURCES:
        raise ConfigError(
            f"Unknown backbone_source '{backbone_source}'; choose one of {', '.join(BACKBONE_SOURCES)}."
        )
    if backbone_source == "torchvision" and variant not in VARIANTS[kind]:
        raise ConfigError(
            f"Unknown {kind} variant '{variant}'; choose one of {', '.join(VARIANTS[kind])}, "
            "or backbone_source=timm with a timm backbone_name."
        )


def _fpn_backbone(
    variant: str,
    backbone_source: str,
    backbone_name: str | None,
    pretrained_backbone: str | os.PathLike | None,
    trainable_layers: int,
    frozen_bn: bool,
    fpn_channels: int = 256,
) -> nn.Module:
    """Backbone + FPN for the original-recipe heads (torchvision ResNet or timm).

    The torchvision path is ``resnet_fpn_backbone``'s (layers 1-4 under an FPN with a max-pooled
    extra level, frozen stages before the last ``trainable_layers``), with the FPN's width
    (``fpn_channels``, torchvision: 256) left open.
    """
    if backbone_source == "timm":
        return TimmFPNBackbone(
            backbone_name or "resnet18", pretrained_backbone, trainable_layers, fpn_channels
        )
    resnet = variant.removesuffix("_fpn")
    # From scratch, frozen statistics would be meaningless: real BN, and every stage trains.
    body = getattr(torchvision_resnets, resnet)(
        weights=None, norm_layer=FrozenBatchNorm2d if frozen_bn else nn.BatchNorm2d
    )
    _freeze_resnet_body(body, trainable_layers if frozen_bn else 5)
    stage2_channels = body.inplanes // 8  # 64 for ResNet-18/34, 256 for ResNet-50/101
    backbone = BackboneWithFPN(
        body,
        return_layers={f"layer{i}": str(i - 1) for i in (1, 2, 3, 4)},
        in_channels_list=[stage2_channels * 2 ** (i - 1) for i in (1, 2, 3, 4)],
        out_channels=fpn_channels,
        extra_blocks=LastLevelMaxPool(),
    )
    if pretrained_backbone is not None:
        state = load_state_dict_file(pretrained_backbone, f"Pretrained {resnet} backbone")
        load_matching(
            backbone.body,
            {k: v for k, v in state.items() if not k.startswith("fc.")},
            f"pretrained {resnet} backbone",
        )
    return backbone


def _resize_box_head(model: nn.Module, box_head_dim: int, num_classes: int) -> None:
    """Replace the two-FC box head (torchvision: 1024 wide) and its predictor by ``box_head_dim`` wide ones.

    The head's first layer (FPN channels x 7 x 7 -> 1024) dominates an R-CNN's cost on small
    images, where every sampled RoI goes through it; a narrower head trains several times faster.
    """
    in_features = model.roi_heads.box_head.fc6.in_features
    model.roi_heads.box_head = TwoMLPHead(in_features, box_head_dim)
    model.roi_heads.box_predictor = FastRCNNPredictor(box_head_dim, num_classes)


def _anchor_generator(
    anchor_sizes: Sequence[Sequence[int]] | None, num_levels: int
) -> AnchorGenerator | None:
    if anchor_sizes is None:
        return None
    if len(anchor_sizes) != num_levels:
        raise ConfigError(
            f"anchor_sizes needs one tuple per feature level ({num_levels}), got {len(anchor_sizes)}."
        )
    sizes = tuple(tuple(int(s) for s in level) for level in anchor_sizes)
    return AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))


def _build(
    kind: str,
    num_classes: int,
    variant: str,
    backbone_source: str,
    backbone_name: str | None,
    pretrained_backbone: str | os.PathLike | None,
    weights_path: str | os.PathLike | None,
    trainable_layers: int,
    anchor_sizes: Sequence[Sequence[int]] | None,
    model_kwargs: dict[str, Any],
    fpn_channels: int = 256,
    box_head_dim: int | None = None,
) -> nn.Module:
    _check(kind, variant, backbone_source)
    own_heads = backbone_source == "torchvision" and variant in ("resnet50_fpn_v2", "mobilenet_v3_large_fpn")
    if own_heads and (fpn_channels != 256 or box_head_dim is not None):
        raise ConfigError(
            f"fpn_channels and box_head_dim apply to the ResNet and timm FPN variants; {variant} keeps "
            "torchvision's architecture. Leave them at 256 and null."
        )
    pretrained = pretrained_backbone is not None or weights_path is not None
    if not 0 <= trainable_layers <= 5:
        raise ConfigError(f"trainable_layers must be between 0 and 5, got {trainable_layers}.")

    if backbone_source == "torchvision" and variant == "resnet50_fpn_v2":
        builder = fasterrcnn_resnet50_fpn_v2 if kind == "faster_rcnn" else maskrcnn_resnet50_fpn_v2
        anchors = _anchor_generator(anchor_sizes, 5)
        extra = {"rpn_anchor_generator": anchors} if anchors is not None else {}
        model = builder(weights=None, weights_backbone=None, num_classes=num_classes, **extra, **model_kwargs)
        if pretrained_backbone is not None:
            state = load_state_dict_file(pretrained_backbone, "Pretrained resnet50 backbone")
            load_matching(
                model.backbone.body,
                {k: v for k, v in state.items() if not k.startswith("fc.")},
                "pretrained resnet50 backbone",
            )
        if pretrained:
            _freeze_resnet_body(model.backbone.body, trainable_layers)
    elif backbone_source == "torchvision" and variant == "mobilenet_v3_large_fpn":
        backbone = mobilenet_backbone(
            backbone_name="mobilenet_v3_large",
            weights=None,
            fpn=True,
            norm_layer=FrozenBatchNorm2d if pretrained else nn.BatchNorm2d,
            trainable_layers=min(trainable_layers, 6) if pretrained else 6,
        )
        if pretrained_backbone is not None:
            state = _strip_prefix(
                load_state_dict_file(pretrained_backbone, "Pretrained mobilenet_v3_large backbone"),
                "features.",
            )
            load_matching(backbone.body, state, "pretrained mobilenet_v3_large backbone")
        # torchvision's fasterrcnn_mobilenet_v3_large_fpn settings: 3 levels, 5 sizes each.
        anchors = _anchor_generator(anchor_sizes, 3) or AnchorGenerator(
            ((32, 64, 128, 256, 512),) * 3, ((0.5, 1.0, 2.0),) * 3
        )
        model = FasterRCNN(
            backbone,
            num_classes=num_classes,
            rpn_anchor_generator=anchors,
            **{"rpn_score_thresh": 0.05, **model_kwargs},
        )
    else:
        backbone = _fpn_backbone(
            variant,
            backbone_source,
            backbone_name,
            pretrained_backbone,
            trainable_layers,
            frozen_bn=pretrained,
            fpn_channels=fpn_channels,
        )
        anchors = _anchor_generator(anchor_sizes, 5)
        extra = {"rpn_anchor_generator": anchors} if anchors is not None else {}
        cls = {"faster_rcnn": FasterRCNN, "mask_rcnn": MaskRCNN, "keypoint_rcnn": KeypointRCNN}[kind]
        model = cls(backbone, num_classes=num_classes, **extra, **model_kwargs)
        if box_head_dim is not None:
            _resize_box_head(model, box_head_dim, num_classes)

    if weights_path is not None:
        load_matching(model, load_state_dict_file(weights_path, f"{kind} weights"), f"{kind} weights")
    return model


def _rcnn_kwargs(
    min_size: int | Sequence[int], max_size: int, small_images: bool, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """torchvision's R-CNN keyword arguments: the small-image preset, the image sizes, then the user's."""
    preset = SMALL_IMAGE_RCNN_KWARGS if small_images else {}
    return {**preset, "min_size": min_size, "max_size": max_size, **kwargs}


def build_faster_rcnn(
    num_classes: int,
    variant: str = "resnet18_fpn",
    backbone_source: str = "torchvision",
    backbone_name: str | None = None,
    pretrained_backbone: str | os.PathLike | None = None,
    weights_path: str | os.PathLike | None = None,
    trainable_layers: int = 3,
    min_size: int | Sequence[int] = 128,
    max_size: int = 128,
    anchor_sizes: Sequence[Sequence[int]] | None = None,
    small_images: bool = True,
    fpn_channels: int = 256,
    box_head_dim: int | None = None,
    **kwargs: Any,
) -> FasterRCNN:
    """Faster R-CNN with FPN. ``num_classes`` counts the background (e.g. ``CocoDetection.num_classes``).

    Extra keyword arguments go to torchvision's ``FasterRCNN`` (``box_detections_per_img``,
    ``box_score_thresh``, ...). ``anchor_sizes`` gives one tuple of sizes per FPN level
    (five for ResNet/timm, three for MobileNetV3); the default is torchvision's.
    ``small_images=True`` applies :data:`SMALL_IMAGE_RCNN_KWARGS`; set it False (and raise
    ``min_size``/``max_size``) to get torchvision's settings for COCO-sized images.
    ``fpn_channels`` (torchvision: 256) and ``box_head_dim`` (the two-FC box head's width;
    ``None``: torchvision's 1024) size the ResNet/timm variants down for CPU training.
    """
    return _build(
        "faster_rcnn",
        num_classes,
        variant,
        backbone_source,
        backbone_name,
        pretrained_backbone,
        weights_path,
        trainable_layers,
        anchor_sizes,
        _rcnn_kwargs(min_size, max_size, small_images, kwargs),
        fpn_channels,
        box_head_dim,
    )


def build_mask_rcnn(
    num_classes: int,
    variant: str = "resnet18_fpn",
    backbone_source: str = "torchvision",
    backbone_name: str | None = None,
    pretrained_backbone: str | os.PathLike | None = None,
    weights_path: str | os.PathLike | None = None,
    trainable_layers: int = 3,
    min_size: int | Sequence[int] = 128,
    max_size: int = 128,
    anchor_sizes: Sequence[Sequence[int]] | None = None,
    small_images: bool = True,
    fpn_channels: int = 256,
    box_head_dim: int | None = None,
    **kwargs: Any,
) -> MaskRCNN:
    """Mask R-CNN with FPN (boxes and masks); arguments as :func:`build_faster_rcnn`."""
    return _build(
        "mask_rcnn",
        num_classes,
        variant,
        backbone_source,
        backbone_name,
        pretrained_backbone,
        weights_path,
        trainable_layers,
        anchor_sizes,
        _rcnn_kwargs(min_size, max_size, small_images, kwargs),
        fpn_channels,
        box_head_dim,
    )


def build_keypoint_rcnn(
    num_keypoints: int,
    num_classes: int = 2,
    variant: str = "resnet18_fpn",
    backbone_source: str = "torchvision",
    backbone_name: str | None = None,
    pretrained_backbone: str | os.PathLike | None = None,
    weights_path: str | os.PathLike | None = None,
    trainable_layers: int = 3,
    min_size: int | Sequence[int] = 128,
    max_size: int = 128,
    anchor_sizes: Sequence[Sequence[int]] | None = None,
    small_images: bool = True,
    fpn_channels: int = 256,
    box_head_dim: int | None = None,
    **kwargs: Any,
) -> KeypointRCNN:
    """Keypoint R-CNN with FPN; ``num_classes`` is 2 (background + the keypoint category) for COCO persons.

    ``small_images=True`` also shrinks the keypoint head (:data:`SMALL_KEYPOINT_HEAD_LAYERS`)
    and keeps 20 detections per image; ``False`` gives torchvision's architecture.
    """
    kwargs = {"num_keypoints": num_keypoints, "min_size": min_size, "max_size": max_size, **kwargs}
    if small_images:
        layers = SMALL_KEYPOINT_HEAD_LAYERS
        # KeypointRCNN refuses num_keypoints next to a custom predictor, which carries it instead.
        kwargs.pop("num_keypoints")
        kwargs = {
            "keypoint_head": KeypointRCNNHeads(fpn_channels, layers),
            "keypoint_predictor": KeypointRCNNPredictor(layers[-1], num_keypoints),
            "box_detections_per_img": 20,
            **SMALL_IMAGE_RCNN_KWARGS,
            **kwargs,
        }
    return _build(
        "keypoint_rcnn",
        num_classes,
        variant,
        backbone_source,
        backbone_name,
        pretrained_backbone,
        weights_path,
        trainable_layers,
        anchor_sizes,
        kwargs,
        fpn_channels,
        box_head_dim,
    )
