"""Semantic segmentation through the platform: configs, a run, exact re-evaluation, prediction, bad input.

The runs use the session's tiny scenes (16 train / 6 val images, 48 x 64, VOC layout) and a few
batches, so they check wiring and bookkeeping rather than learning: the metric keys, that the
logged numbers are those of the saved per-class scores, that evaluating the best checkpoint with
`train=false` reproduces them exactly, and that prediction from the run directory writes the masks
the task computes.
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONFIG_DIR, FAST_RUN, compose, read_json, run_cli, run_in_process
from omegaconf import OmegaConf
from PIL import Image

from litzoo.errors import ConfigError
from litzoo.platform.validate import validate

from .seg_fixtures import scenes_overrides, write_image, write_label_mask

SEGMENTATION_MODELS = {
    "fcn_resnet50",
    "fcn_resnet101",
    "deeplabv3_resnet50",
    "deeplabv3_resnet101",
    "pspnet_resnet50",
    "deeplabv3_mobilenet_v3_large",
    "lraspp_mobilenet_v3_large",
    "fpn_timm",
    "deeplabv3plus_timm",
}
RUN = [
    "task=semantic_segmentation",
    *FAST_RUN,
    "trainer.limit_val_batches=null",
    "trainer.limit_test_batches=null",
]
# Three steps teach LR-ASPP (stride 16 on 32-pixel crops) only "background" everywhere; a timm FPN
# (stride 4) with the background down-weighted makes varied predictions that early, so the scores
# to reproduce and the masks to write are not trivial.
VARIED = ["model=fpn_timm", "model.decoder_channels=32", "task.class_weights=[0.3,1,1,1,1,1]"]


def test_the_task_alone_trains_on_the_embedded_scenes():
    cfg = compose(["task=semantic_segmentation"])
    assert (cfg.model.name, cfg.data.name, cfg.task.monitor, cfg.task.monitor_mode) == (
        "lraspp_mobilenet_v3_large",
        "scenes",
        "val/miou",
        "max",
    )
    assert "task" not in cfg.data and cfg.sched._target_.endswith("poly_with_warmup")
    validate(cfg, [CONFIG_DIR])


def test_models_and_data_of_other_tasks_are_refused_listing_those_that_fit():
    with pytest.raises(ConfigError) as error:
        validate(compose(["task=semantic_segmentation", "model=resnet18"]), [CONFIG_DIR])
    listed = re.search(r"Model options for task=semantic_segmentation: ([^.]*)\.", str(error.value)).group(1)
    assert set(listed.split(", ")) == SEGMENTATION_MODELS
    with pytest.raises(ConfigError, match="model=deeplabv3_resnet50 does not fit task=classification"):
        validate(compose(["model=deeplabv3_resnet50"]), [CONFIG_DIR])
    with pytest.raises(ConfigError, match="data=digits does not fit task=semantic_segmentation"):
        validate(compose(["task=semantic_segmentation", "data=digits"]), [CONFIG_DIR])
    with pytest.raises(ConfigError, match="data=scenes does not fit task=detection"):
        validate(compose(["task=detection", "data=scenes"]), [CONFIG_DIR])


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def seg_run(scenes_root, tmp_path_factory) -> tuple[Path, dict, list[str]]:
    """A timm FPN trained for 3 steps on the tiny scenes: run directory, record and log messages. The composed
    config is saved as Hydra's job would, so the directory is a complete run directory (`litzoo.load`)."""
    handler, logger = ListHandler(), logging.getLogger("litzoo")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    run_dir = tmp_path_factory.mktemp("seg") / "run"
    overrides = [*RUN, *VARIED, *scenes_overrides(scenes_root)]
    try:
        code, record = run_in_process(overrides, run_dir)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    assert code == 0 and record["status"] == "completed", record.get("error")
    OmegaConf.save(compose(overrides, run_dir=run_dir), run_dir / ".hydra" / "config.yaml")
    return run_dir, record, handler.messages


def test_the_task_refuses_a_datamodule_whose_targets_are_not_label_masks(scenes_root):
    from litzoo.platform.registry import build
    from litzoo.tasks.segmentation import SemanticSegmentationTask

    cfg = compose(["task=semantic_segmentation", *scenes_overrides(scenes_root)])
    info = build(cfg.data).info()
    assert info["targets"] == SemanticSegmentationTask.targets == "label_masks"
    with pytest.raises(ConfigError, match="needs images with label masks .* the datamodule loads boxes"):
        SemanticSegmentationTask(
            dict(cfg.model), {**info, "targets": "boxes"}, optim={"_target_": "torch.optim.SGD", "lr": 0.1}
        )
    # Sliding windows default to the training crop (data.crop_size [32, 32] here), step 2/3 of it.
    task = SemanticSegmentationTask(
        dict(cfg.model),
        info,
        optim={"_target_": "torch.optim.SGD", "lr": 0.1},
        val_inference={"mode": "whole"},
        test_inference={"mode": "slide", "flip": True},
    )
    assert info["crop_size"] == list(cfg.data.crop_size) == [32, 32]
    assert (task.val_mode.mode, task.val_mode.crop_size) == ("whole", None)
    assert (task.test_mode.crop_size, task.test_mode.stride, task.test_mode.flip) == (
        (32, 32),
        (21, 21),
        True,
    )


def test_a_run_logs_miou_macc_aacc_and_saves_the_per_class_scores(seg_run):
    run_dir, record, messages = seg_run
    metrics = record["metrics"]
    assert set(metrics) == {"test/miou", "test/macc", "test/aacc"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    saved = json.loads((run_dir / "scores_test.json").read_text())
    per_class = saved["per_class"]
    assert list(per_class) == ["background", "ball", "box", "roof", "ring", "pole"]
    ious = [v["iou"] for v in per_class.values() if not math.isnan(v["iou"])]
    assert metrics["test/miou"] == pytest.approx(sum(ious) / len(ious), abs=1e-7)  # the mean of the table
    assert metrics["test/aacc"] == pytest.approx(saved["aacc"], abs=1e-7)
    tables = [m for m in messages if m.startswith("IoU and Acc per class")]
    assert [t.split(":")[0] for t in tables] == [
        "IoU and Acc per class (x100), val epoch 0",
        "IoU and Acc per class (x100), test",
    ]
    assert tables[-1].splitlines()[1].split() == ["class", "IoU", "Acc", "pixels%"]


def test_the_best_checkpoint_evaluates_to_the_same_scores_exactly(seg_run, scenes_root, tmp_path):
    run_dir, record, _ = seg_run
    evaluate = [
        *RUN,
        *VARIED,
        *scenes_overrides(scenes_root),
        "train=false",
        f"ckpt_path={record['best_checkpoint']}",
    ]
    code, evaluated = run_in_process(evaluate, tmp_path / "eval")
    assert code == 0, evaluated.get("error")
    assert evaluated["metrics"] == record["metrics"]  # every digit
    assert (tmp_path / "eval" / "scores_test.json").read_text() == (run_dir / "scores_test.json").read_text()
    # Sliding windows with flips are another protocol: other numbers, same keys.
    slide = "task.test_inference={mode: slide, crop_size: [32, 32], stride: [16, 24], flip: true}"
    code, slid = run_in_process([*evaluate, slide], tmp_path / "slide")
    assert code == 0, slid.get("error")
    assert set(slid["metrics"]) == set(record["metrics"]) and slid["metrics"] != record["metrics"]


def test_prediction_from_the_run_directory_writes_palette_masks_and_overlays(seg_run, scenes_root, tmp_path):
    import litzoo
    from litzoo.datamodules.segmentation.datamodule import ScenesDataModule

    run_dir, _, _ = seg_run
    task = litzoo.load(str(run_dir))
    images = sorted((scenes_root / "VOC2012" / "JPEGImages").glob("*.jpg"))[-2:]  # two val images
    predictions = task.predict_inputs([str(p) for p in images], batch_size=2, output_dir=tmp_path / "out")
    assert [p["input"] for p in predictions] == [str(p) for p in images]
    datamodule = ScenesDataModule(
        str(scenes_root), num_train=16, num_val=6, image_size=(48, 64), generator_seed=1
    )
    datamodule.setup("validate")
    for prediction, index in zip(predictions, (4, 5)):
        with Image.open(prediction["mask"]) as mask:
            assert mask.mode == "P" and mask.size == (64, 48)  # full resolution, PIL's (width, height)
            labels = np.asarray(mask)
        with Image.open(prediction["overlay"]) as overlay:
            assert overlay.size == (64, 48)
        # The same labels the task scores on the val split.
        image, _ = datamodule.dataset("val")[index]
        with torch.no_grad():
            expected = task(image[None]).argmax(dim=1)[0].numpy()
        assert labels.tolist() == expected.tolist()
        assert sum(prediction["classes"].values()) == pytest.approx(1.0, abs=1e-3)
        line = task.format_prediction(prediction)
        assert line.startswith(f"{prediction['input']}\t{prediction['mask']}\t") and "%" in line
    assert any(len(p["classes"]) > 1 for p in predictions)  # not one class everywhere
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{p.stem}_{kind}" for p in images for kind in ("mask.png", "overlay.jpg")
    )


def test_python_m_litzoo_predict_writes_the_masks_into_the_run_directory(seg_run, scenes_root, capsys):
    from litzoo.predict import main

    run_dir, _, _ = seg_run
    image = sorted((scenes_root / "VOC2012" / "JPEGImages").glob("*.jpg"))[-1]
    assert main([str(run_dir), str(image), "--json", "--top-k", "2"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    prediction = json.loads(line)
    assert prediction["mask"] == str(run_dir / "predictions" / f"{image.stem}_mask.png")
    assert Path(prediction["overlay"]).is_file() and len(prediction["classes"]) <= 2
    assert main([str(run_dir), str(scenes_root / "missing.jpg")]) == 3  # nothing written for a bad input list
    assert "Input image(s) not found" in capsys.readouterr().err


def binary_folder(root: Path, bad_value: int | None = None) -> Path:
    """A one-class folder dataset: bright squares on noise, 0/255 masks (as most tools save them)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("spot\n")
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("val", 4)):
        for i in range(count):
            mask = np.zeros((32, 40), dtype=np.uint8)
            top, left = rng.integers(0, 16), rng.integers(0, 24)
            mask[top : top + 14, left : left + 14] = 255
            pixels = rng.integers(0, 100, size=(32, 40, 3)).astype(np.uint8)
            pixels[mask > 0] = 230
            (root / "images" / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(root / "images" / split / f"{i}.png")
            write_label_mask(root / "masks" / split / f"{i}.png", mask)
    if bad_value is not None:
        (root / "classes.txt").write_text("background\nspot\n")
        mask = np.zeros((32, 40), dtype=np.uint8)
        mask[:4, :4], mask[5, 5] = 1, bad_value
        write_label_mask(root / "masks" / "train" / "0.png", mask)
    return root


FOLDER_RUN = [*RUN, "data=seg_folder", "data.num_workers=0", "data.crop_size=[32,32]", "data.batch_size=4"]


def test_a_binary_folder_trains_two_classes_and_reports_the_foreground(tmp_path):
    root = binary_folder(tmp_path / "spots")
    code, record = run_in_process([*FOLDER_RUN, f"data.root={root}"], tmp_path / "run")
    assert code == 0, record.get("error")
    assert set(record["metrics"]) == {"test/miou", "test/macc", "test/aacc", "test/fg_iou", "test/fg_dice"}
    assert 0.0 <= record["metrics"]["test/fg_iou"] <= 1.0


def test_a_mask_value_outside_the_classes_stops_the_run_naming_file_and_value(tmp_path):
    root = binary_folder(tmp_path / "bad", bad_value=7)
    code, record = run_in_process([*FOLDER_RUN, f"data.root={root}", "data.shuffle=false"], tmp_path / "run")
    assert code == 3 and record["status"] == "failed"
    assert f"Mask {root / 'masks' / 'train' / '0.png'} holds pixel value(s) 7" in record["error"]


def test_a_wrong_layout_fails_on_the_command_line_before_torch_without_a_traceback(tmp_path):
    write_image(tmp_path / "VOC2012" / "JPEGImages" / "a.jpg", 4, 4)
    result = run_cli(
        [
            "task=semantic_segmentation",
            "data=voc_seg",
            f"data.root={tmp_path}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ]
    )
    assert result.returncode == 3
    assert "the split list VOC2012/ImageSets/Segmentation/train.txt is missing" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.slow
def test_ddp_evaluation_scores_all_images_of_both_ranks_together(seg_run, scenes_root, tmp_path):
    """Two CPU ranks evaluate the same checkpoint, each half the images; the confusion matrices are summed,
    so the scores are exactly the single-process ones."""
    _, record, _ = seg_run
    evaluate = [
        *RUN,
        *VARIED,
        *scenes_overrides(scenes_root),
        "train=false",
        f"ckpt_path={record['best_checkpoint']}",
    ]
    code, single = run_in_process(evaluate, tmp_path / "single")
    assert code == 0, single.get("error")
    run_dir = tmp_path / "ddp"
    proc = run_cli(
        [*evaluate, "trainer=ddp_cpu", f"hydra.run.dir={run_dir}"], env={"OMP_NUM_THREADS": "1"}, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_json(run_dir / "run.json")["metrics"] == single["metrics"]
    # Both ranks' images were counted: the labelled pixels of the whole split.
    assert labelled_pixels(run_dir) == labelled_pixels(tmp_path / "single") > 0


def labelled_pixels(run_dir: Path) -> int:
    return sum(
        v["pixels"] for v in json.loads((run_dir / "scores_test.json").read_text())["per_class"].values()
    )
