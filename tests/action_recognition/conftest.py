"""Shared fixtures of the action-recognition tests: a tiny moving-shapes dataset (mp4 + frame folders, list files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from litzoo.datamodules.action_recognition.moving_shapes import generate_moving_shapes

# 12 train / 6 val / 6 test videos of 16 frames, 32 x 32: generated in about a second.
SHAPES = {"num_train": 12, "num_val": 6, "num_test": 6, "num_frames": 16, "size": 32, "seed": 3}


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_moving_shapes(tmp_path_factory.mktemp("shapes") / "moving_shapes", **SHAPES)


def shapes_overrides(root: Path) -> list[str]:
    """The command-line overrides that point data=moving_shapes at the tiny dataset."""
    return [
        f"data.root={root}",
        *(f"data.{key if key != 'seed' else 'generator_seed'}={value}" for key, value in SHAPES.items()),
        "data.batch_size=4",
        "data.train_short_side=[24,28]",
        "data.crop_size=[24,24]",
        "data.eval_short_side=24",
    ]
