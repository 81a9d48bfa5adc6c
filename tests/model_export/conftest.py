"""Tiny run directories for the export tests, trained in this process once per session."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from conftest import FAST_RUN, compose, run_in_process
from omegaconf import OmegaConf

FAST = [*FAST_RUN, "callbacks.step_checkpoint=null"]
SHAPES = {"num_train": 6, "num_val": 3, "image_size": [64, 80], "generator_seed": 5}
# A detector trained for two steps rarely scores a box above torchvision's 0.05: keep the best few.
KEEP_BOXES = ["++model.box_score_thresh=0.0", "++model.box_detections_per_img=5"]


def trained(overrides: list[str], run_dir: Path) -> Path:
    """A finished run directory, with the composed config Hydra's job would have saved."""
    code, record = run_in_process(overrides, run_dir)
    assert code == 0 and record["status"] == "completed", record.get("error")
    OmegaConf.save(compose(overrides, run_dir=run_dir), run_dir / ".hydra" / "config.yaml")
    return run_dir


def export(*argv: str) -> tuple[int, str, str]:
    """`python -m litzoo.export <argv>` in this process: (exit code, stdout, stderr)."""
    from litzoo.export.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


@pytest.fixture(scope="session")
def classifier_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ResNet-18 on the embedded digits at 16 px, three steps."""
    run_dir = tmp_path_factory.mktemp("export_classifier") / "run"
    return trained([*FAST, "data.image_size=16", "data.batch_size=16", "data.num_workers=0"], run_dir)


@pytest.fixture(scope="session")
def textcnn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small textCNN on the embedded sentiment corpus (SST-2 format)."""
    run_dir = tmp_path_factory.mktemp("export_textcnn") / "run"
    overrides = [
        "task=text_classification",
        "model=textcnn",
        "model.embed_dim=32",
        "model.num_filters=16",
        "data.batch_size=16",
        *FAST,
    ]
    return trained(overrides, run_dir)


@pytest.fixture(scope="session")
def detector_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Faster R-CNN (MobileNetV3 FPN) on a few generated shapes (COCO format), two steps."""
    from litzoo.datamodules.detection.shapes import generate_shapes_coco

    root = generate_shapes_coco(
        tmp_path_factory.mktemp("export_shapes") / "shapes",
        num_train=SHAPES["num_train"],
        num_val=SHAPES["num_val"],
        image_size=tuple(SHAPES["image_size"]),
        seed=SHAPES["generator_seed"],
    )
    run_dir = tmp_path_factory.mktemp("export_detector") / "run"
    overrides = [
        "task=detection",
        "model=faster_rcnn_mobilenet",
        "model.min_size=64",
        "model.max_size=80",
        f"data.root={root}",
        *(f"data.{k}={v}".replace(" ", "") for k, v in SHAPES.items()),
        "data.batch_size=2",
        *FAST,
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        *KEEP_BOXES,
    ]
    return trained(overrides, run_dir)


@pytest.fixture(scope="session")
def segmentation_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LR-ASPP MobileNetV3 on a few generated scenes (VOC layout), two steps."""
    from segmentation.seg_fixtures import SCENES, scenes_overrides

    from litzoo.datamodules.segmentation.scenes import generate_scenes_voc

    root = generate_scenes_voc(tmp_path_factory.mktemp("export_scenes") / "scenes", **SCENES)
    run_dir = tmp_path_factory.mktemp("export_segmenter") / "run"
    overrides = [
        "task=semantic_segmentation",
        *scenes_overrides(root),
        *FAST,
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
    ]
    return trained(overrides, run_dir)


@pytest.fixture(scope="session")
def qa_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT (MiniLM's WordPiece vocabulary) on the generated SQuAD 2.0 set, four steps."""
    from question_answering.conftest import TOY, qa_overrides, tiny_qa_bert

    from litzoo.datamodules.question_answering import ensure_toy_squad

    root = ensure_toy_squad(
        tmp_path_factory.mktemp("export_squad") / "toy",
        "2.0",
        TOY["num_train"],
        TOY["num_dev"],
        TOY["generator_seed"],
    )
    bert = tiny_qa_bert.__wrapped__(tmp_path_factory)
    run_dir = tmp_path_factory.mktemp("export_qa") / "run"
    return trained([*qa_overrides(root, bert), "callbacks.step_checkpoint=null"], run_dir)
