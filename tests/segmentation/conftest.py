"""Shared fixtures of the segmentation tests: a small generated scenes dataset (VOC layout)."""

from __future__ import annotations

from pathlib import Path

import pytest

from litzoo.datamodules.segmentation.scenes import generate_scenes_voc

from .seg_fixtures import SCENES


@pytest.fixture(scope="session")
def scenes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_scenes_voc(tmp_path_factory.mktemp("scenes") / "scenes", **SCENES)
