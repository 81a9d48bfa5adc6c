"""Shared fixtures for the detection-family tests: a small generated shapes dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from litzoo.datamodules.detection.shapes import generate_shapes_coco


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny shapes dataset in COCO layout, non-square so width/height mix-ups show."""
    root = tmp_path_factory.mktemp("shapes") / "shapes"
    return generate_shapes_coco(
        root, num_train=24, num_val=12, image_size=(96, 128), seed=3, crowd_fraction=0.3
    )
