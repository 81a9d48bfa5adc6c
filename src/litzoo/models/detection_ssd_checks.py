"""Torch-free checks of the SSD model configs (`check: litzoo.models.detection_ssd_checks.check_ssd`).

The platform calls the check on the model config during validation, before torch is imported, so an
image size the network cannot take or a weights file that is not on this machine stops the run
within a second instead of at the first forward pass (a size error deep inside VGG's extra layers)
or after the Trainer is built. :mod:`litzoo.models.detection_ssd` runs the same checks when it
builds a network directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litzoo.errors import ConfigError, DependencyError

# Which SSD a config builds, told apart by its builder (`_target_`), and what each one accepts:
# the smallest square side its feature maps survive (VGG's conv10_2/conv11_2 are unpadded 3x3
# convolutions: 268 px is the least that leaves them a 1x1 map) and the backbone stages that
# `trainable_layers` counts (torchvision: 5 VGG stages, 6 MobileNetV3 stages).
SSD_LIMITS: dict[str, dict[str, int]] = {
    "build_ssd300_vgg16": {"min_image_size": 268, "max_trainable_layers": 5},
    "build_ssdlite320_mobilenet_v3": {"min_image_size": 32, "max_trainable_layers": 6},
}
BACKBONE_FILES = {
    "build_ssd300_vgg16": "torchvision's vgg16 (IMAGENET1K_FEATURES, vgg16_features-amdegroot-88682ab5.pth)",
    "build_ssdlite320_mobilenet_v3": "torchvision's mobilenet_v3_large (IMAGENET1K_V1, mobilenet_v3_large-8738ca79.pth)",
}


def check_ssd(model: Mapping[str, Any]) -> None:
    """The config's image size, trainable stages and weight files (see :func:`check_ssd_arguments`)."""
    check_ssd_arguments(
        str(model.get("_target_", "")).rpartition(".")[2],
        int(model.get("image_size", 300)),
        int(model.get("trainable_layers", 0)),
        model.get("pretrained_backbone"),
        model.get("weights_path"),
    )


def check_ssd_arguments(
    builder: str,
    image_size: int,
    trainable_layers: int,
    pretrained_backbone: str | None,
    weights_path: str | None,
) -> None:
    """Raise a `ConfigError` (impossible value) or `DependencyError` (missing local file) naming the fix."""
    limits = SSD_LIMITS.get(builder)
    if limits is None:
        raise ConfigError(
            f"check_ssd serves the SSD builders ({', '.join(SSD_LIMITS)}), not '{builder}'; "
            "remove `check:` from this model config or point `_target_` at litzoo.models.detection_ssd."
        )
    if image_size < limits["min_image_size"]:
        raise ConfigError(
            f"model.image_size={image_size} is too small for {builder.removeprefix('build_')}: its smallest "
            f"feature map needs images of at least {limits['min_image_size']} px (the network resizes every "
            f"image to image_size x image_size itself). Set model.image_size={limits['min_image_size']} or more."
        )
    if not 0 <= trainable_layers <= limits["max_trainable_layers"]:
        raise ConfigError(
            f"model.trainable_layers={trainable_layers}: give a number of backbone stages between 0 and "
            f"{limits['max_trainable_layers']} (counted from the last; {limits['max_trainable_layers']} "
            "trains all). It applies to a pretrained backbone only: trained from scratch, every stage trains."
        )
    if pretrained_backbone not in (None, "") and not Path(str(pretrained_backbone)).expanduser().is_file():
        raise DependencyError(
            f"model.pretrained_backbone={pretrained_backbone} does not exist. Weights are never downloaded: "
            f"point it at a local ImageNet state-dict file of the backbone, e.g. {BACKBONE_FILES[builder]} "
            "copied from a machine that has it (torch.save(model.state_dict(), path) writes one), or set "
            "model.pretrained_backbone=null to train the backbone from scratch."
        )
    if weights_path not in (None, "") and not Path(str(weights_path)).expanduser().is_file():
        raise DependencyError(
            f"model.weights_path={weights_path} does not exist. Point it at a local state-dict file of a whole "
            "SSD detector (e.g. torchvision's COCO weights; layers whose shapes differ, such as another number "
            "of classes, start fresh), or set model.weights_path=null."
        )
