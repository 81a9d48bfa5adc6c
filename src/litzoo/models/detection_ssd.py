"""SSD detectors built by torchvision: SSD300-VGG16 (Liu et al. 2016) and SSDlite320-MobileNetV3-Large.

torchvision ships the networks (``ssd300_vgg16``, ``ssdlite320_mobilenet_v3_large``); its builders
only take weights they download, so these builders assemble the same modules in the same order
(at the same seed, the same initial values) and load what the user gives from local files:

- ``pretrained_backbone``: an ImageNet state dict of the backbone (torchvision's ``vgg16`` or
  ``mobilenet_v3_large``; only its ``features.*`` entries are used). As in torchvision, the VGG's
  first stages are then frozen (``trainable_layers`` of 5 train) and MobileNetV3 keeps its full
  tail; trained from scratch, every stage trains and MobileNetV3 uses the reduced tail
  (MobileNetV3 paper, Table 6) with torchvision's normal initialisation.
- ``weights_path``: a whole detector's state dict (e.g. torchvision's COCO weights); tensors whose
  shapes differ (the classification head, for another number of classes) start fresh.

SSD resizes every image to a fixed ``image_size`` x ``image_size`` square itself (and maps the
detections back to the input's pixels). SSD300 needs at least 268 px; SSDlite runs at 128 px,
which is how its model config trains the embedded shapes on CPU (about 0.5 s per batch of 4).
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any

from torch import nn
from torchvision.models import mobilenet_v3_large, vgg16
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.ssd import SSD, _vgg_extractor
from torchvision.models.detection.ssdlite import SSDLiteHead, _mobilenet_extractor, _normal_init

from litzoo.models.detection import _strip_prefix, load_matching, load_state_dict_file
from litzoo.models.detection_ssd_checks import check_ssd_arguments

# torchvision's SSD300 default boxes: aspect ratios and scales per feature map (38, 19, 10, 5, 3, 1
# cells at 300 px), and the pixel step between box centres that goes with 300 px.
VGG_ASPECT_RATIOS = [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
VGG_SCALES = [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]
VGG_STEPS_AT_300 = [8, 16, 32, 64, 100, 300]
# The VGG weights torchvision's SSD300 uses (IMAGENET1K_FEATURES) take 0-255 pixels minus the
# ImageNet mean (Caffe's preprocessing): 0-1 inputs, mean in 0-1 units, std 1/255.
VGG_PREPROCESSING = {"image_mean": [0.48235, 0.45882, 0.40784], "image_std": [1.0 / 255.0] * 3}
# torchvision's SSDlite320 post-processing and input scaling (0-1 -> -1..1).
SSDLITE_DEFAULTS: dict[str, Any] = {
    "score_thresh": 0.001,
    "nms_thresh": 0.55,
    "detections_per_img": 300,
    "topk_candidates": 300,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
}


def _load_backbone(features: nn.Module, path: str | os.PathLike, what: str) -> None:
    """An ImageNet classifier's state dict into its ``features`` (the classifier's own layers are unused)."""
    state = _strip_prefix(load_state_dict_file(path, f"Pretrained {what} backbone"), "features.")
    load_matching(features, state, f"pretrained {what} backbone")


def _load_detector(model: nn.Module, path: str | os.PathLike | None, what: str) -> None:
    if path is not None:
        load_matching(model, load_state_dict_file(path, f"{what} weights"), f"{what} weights")


def build_ssd300_vgg16(
    num_classes: int,
    image_size: int = 300,
    pretrained_backbone: str | os.PathLike | None = None,
    weights_path: str | os.PathLike | None = None,
    trainable_layers: int = 4,
    **kwargs: Any,
) -> SSD:
    """SSD300 on VGG16 (atrous fc6/fc7, L2-normalised conv4_3), torchvision's ``ssd300_vgg16``.

    ``num_classes`` counts the background. ``image_size`` is the square side images are resized to;
    at 300 the default boxes are torchvision's exactly, at another size their centres follow the
    feature maps' cells (``steps=None``). Extra keyword arguments go to torchvision's ``SSD``
    (``score_thresh``, ``nms_thresh``, ``detections_per_img``, ``topk_candidates``, ``iou_thresh``,
    ``positive_fraction``, ``image_mean``/``image_std``, ...).
    """
    check_ssd_arguments(
        "build_ssd300_vgg16", image_size, trainable_layers, _path(pretrained_backbone), _path(weights_path)
    )
    body = vgg16(weights=None)
    if pretrained_backbone is not None:
        _load_backbone(body.features, pretrained_backbone, "vgg16")
    backbone = _vgg_extractor(body, False, trainable_layers if pretrained_backbone is not None else 5)
    anchors = DefaultBoxGenerator(
        VGG_ASPECT_RATIOS, scales=VGG_SCALES, steps=VGG_STEPS_AT_300 if image_size == 300 else None
    )
    model = SSD(backbone, anchors, (image_size, image_size), num_classes, **{**VGG_PREPROCESSING, **kwargs})
    _load_detector(model, weights_path, "ssd300_vgg16")
    return model


def build_ssdlite320_mobilenet_v3(
    num_classes: int,
    image_size: int = 320,
    pretrained_backbone: str | os.PathLike | None = None,
    weights_path: str | os.PathLike | None = None,
    trainable_layers: int = 6,
    reduced_tail: bool | None = None,
    **kwargs: Any,
) -> SSD:
    """SSDlite on MobileNetV3-Large (depthwise-separable heads and extra layers), torchvision's
    ``ssdlite320_mobilenet_v3_large``.

    ``reduced_tail`` halves the last stage's channels; ``None`` follows torchvision (reduced when
    trained from scratch, full with a pretrained backbone, whose weights need the full tail).
    Batch norm is torchvision's (eps 0.001, momentum 0.03), trained also on a pretrained backbone.
    Other arguments as :func:`build_ssd300_vgg16`; the defaults are torchvision's
    (:data:`SSDLITE_DEFAULTS`: score threshold 0.001, 300 detections per image).
    """
    check_ssd_arguments(
        "build_ssdlite320_mobilenet_v3",
        image_size,
        trainable_layers,
        _path(pretrained_backbone),
        _path(weights_path),
    )
    pretrained = pretrained_backbone is not None
    norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
    body = mobilenet_v3_large(
        weights=None,
        norm_layer=norm_layer,
        reduced_tail=not pretrained if reduced_tail is None else reduced_tail,
    )
    if pretrained:
        _load_backbone(body.features, pretrained_backbone, "mobilenet_v3_large")
    else:
        _normal_init(body)  # torchvision's initialisation for a backbone trained from scratch
    backbone = _mobilenet_extractor(body, trainable_layers if pretrained else 6, norm_layer)
    size = (image_size, image_size)
    anchors = DefaultBoxGenerator([[2, 3] for _ in range(6)], min_ratio=0.2, max_ratio=0.95)
    out_channels = det_utils.retrieve_out_channels(backbone, size)
    head = SSDLiteHead(out_channels, anchors.num_anchors_per_location(), num_classes, norm_layer)
    model = SSD(backbone, anchors, size, num_classes, head=head, **{**SSDLITE_DEFAULTS, **kwargs})
    _load_detector(model, weights_path, "ssdlite320_mobilenet_v3")
    return model


def _path(path: str | os.PathLike | None) -> str | None:
    return None if path is None else os.fspath(path)
