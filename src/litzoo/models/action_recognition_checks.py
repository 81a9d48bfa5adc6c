"""Checks of the video model configs that need neither torch nor timm (run during validation).

A model config names its check with `check: litzoo.models.action_recognition_checks.check_weights`: the
2D ImageNet weights (`model.pretrained`, for I3D's inflation and TSN) and the whole network's weights
(`model.weights_path`, e.g. Kinetics-400 weights to fine-tune from) must be files on this machine, so a
wrong path stops the run within a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litzoo.errors import DependencyError
from litzoo.models.classification_checks import check_pretrained


def check_weights(model: Mapping[str, Any]) -> None:
    if "arch" in model and model.get("pretrained") is not None:
        check_pretrained(model)
    path = model.get("weights_path")
    if path in (None, ""):
        return
    if not Path(str(path)).expanduser().is_file():
        raise DependencyError(
            f"model.weights_path={path} does not exist. Point it at a local file of the whole network's weights "
            "(e.g. torchvision's r2plus1d_18 Kinetics-400 file, or a litzoo checkpoint), or set "
            "model.weights_path=null to start from model.pretrained / random initialisation."
        )
