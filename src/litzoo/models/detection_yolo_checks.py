"""Torch-free checks of the YOLOv3 model config (`check: litzoo.models.detection_yolo_checks.check_yolov3`).

The platform calls the check on the model config during validation, before torch is imported, so a
size that is not a multiple of 32, a malformed anchor table or a backbone file that is not on this
machine stops the run within a second. :func:`litzoo.models.detection_yolo.build_yolov3` runs the
same checks when it builds a network directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from litzoo.errors import ConfigError

# timm's Darknets, whose features 3, 4, 5 are the stride-8, 16, 32 maps YOLOv3 reads.
BACKBONES = ("darknet53", "darknet21", "darknet17")
NUM_ANCHORS = 9  # three per level, strides 8, 16, 32


def check_yolov3(model: Mapping[str, Any]) -> None:
    """The config's backbone, widths, sizes, anchors and backbone file (see :func:`check_yolov3_arguments`)."""
    check_yolov3_arguments(
        str(model.get("backbone_name", "darknet53")),
        float(model.get("width_multiplier", 1.0)),
        int(model.get("input_size", 416)),
        model.get("train_sizes"),
        model.get("anchors"),
        model.get("pretrained_backbone"),
    )


def check_yolov3_arguments(
    backbone_name: str,
    width_multiplier: float,
    input_size: int,
    train_sizes: Sequence[int] | None,
    anchors: Sequence[Sequence[float]] | None,
    pretrained_backbone: str | None,
) -> None:
    """Raise a `ConfigError` naming the value and the fix."""
    if backbone_name not in BACKBONES:
        raise ConfigError(f"Unknown backbone_name '{backbone_name}'; choose one of {', '.join(BACKBONES)}.")
    if width_multiplier <= 0:
        raise ConfigError(f"width_multiplier must be positive, got {width_multiplier}.")
    sizes = [int(s) for s in (train_sizes or [])]
    for size in (input_size, *sizes):
        if size <= 0 or size % 32:
            raise ConfigError(
                f"YOLOv3 input sizes must be positive multiples of 32 (its coarsest stride); got {size} in "
                f"input_size={input_size}, train_sizes={sizes or [input_size]}."
            )
    if anchors is not None:
        pairs = [list(a) for a in anchors]
        if len(pairs) != NUM_ANCHORS or any(len(p) != 2 or min(map(float, p)) <= 0 for p in pairs):
            raise ConfigError(
                f"anchors must be nine positive [width, height] pairs in input pixels, small to large (three per "
                f"level, strides 8, 16, 32); got {anchors}. Leave anchors=null for the paper's, scaled to input_size."
            )
    if pretrained_backbone in (None, ""):
        return
    path = str(pretrained_backbone)
    if width_multiplier != 1.0:
        raise ConfigError(
            f"pretrained_backbone={path} holds a full-width {backbone_name}, but width_multiplier={width_multiplier}. "
            "Set model.width_multiplier=1.0 to start from the pretrained backbone, or leave "
            "model.pretrained_backbone=null to train the narrower network from scratch."
        )
    if not Path(path).expanduser().is_file():
        raise ConfigError(
            f"pretrained_backbone={path}: no such file. Weights are never downloaded here. Save a timm "
            f"{backbone_name} state dict on a machine with internet (torch.save(timm.create_model("
            f"'{backbone_name}', pretrained=True).state_dict(), 'darknet53.pth')), copy it here and give its "
            "path; or set model.pretrained_backbone=null to train the backbone from scratch."
        )
