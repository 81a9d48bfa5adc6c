"""YOLOv3 (litzoo.models.detection_yolo): targets, decoding and losses on hand-made cases, weights, the platform.

The hand-made cases use nine square anchors (4 ... 96 px) on a 128-px input, so every best anchor,
cell and encoded value can be worked out on paper; the values asserted are those workings.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import CONFIG_DIR, compose, run_in_process

from litzoo.errors import ConfigError
from litzoo.models.detection_yolo import (
    PAPER_ANCHORS,
    YOLOv3,
    assign_targets,
    build_yolov3,
    decode_level,
)
from litzoo.platform.validate import validate

from .test_detection_tasks import FAST, shapes_overrides

SIZE = 128
SQUARE_ANCHORS = [[s, s] for s in (4, 8, 12, 16, 24, 32, 48, 64, 96)]
GRIDS = (16, 8, 4)  # 128 px at strides 8, 16, 32
NUM_CLASSES = 3  # background + 2


def small_model(**options) -> YOLOv3:
    torch.manual_seed(0)
    arguments = {
        "num_classes": NUM_CLASSES,
        "width_multiplier": 0.125,
        "backbone_name": "darknet17",
        "input_size": SIZE,
        "anchors": SQUARE_ANCHORS,
        **options,
    }
    return build_yolov3(**arguments)


def xywh(cx: float, cy: float, w: float, h: float) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


# Three boxes, one per level (centre, size) -> (level, anchor, gy, gx, tx, ty, tw, th), worked out by hand:
# 10x6 at (14, 24): IoU with 8x8 is 48/76 = 0.63 (12x12: 0.42) -> anchor 1, level 0, stride 8, cell (3, 1).
# 20x20 at (40, 88): IoU with 24x24 is 400/576 = 0.69 (16x16: 0.64) -> anchor 4 = level 1 #1, stride 16.
# 50x40 at (100, 60): IoU with 48x48 is 1920/2384 = 0.81 (64x64: 0.49) -> anchor 6 = level 2 #0, stride 32.
CASES = [
    ((14, 24, 10, 6), (0, 1, 3, 1, 0.75, 0.0, math.log(10 / 8), math.log(6 / 8))),
    ((40, 88, 20, 20), (1, 1, 5, 2, 0.5, 0.5, math.log(20 / 24), math.log(20 / 24))),
    ((100, 60, 50, 40), (2, 0, 1, 3, 0.125, 0.875, math.log(50 / 48), math.log(40 / 48))),
]


def hand_made_boxes() -> tuple[torch.Tensor, torch.Tensor]:
    boxes = torch.tensor([xywh(*box) for box, _ in CASES])
    return boxes, torch.tensor([0, 1, 0])


def test_each_box_goes_to_its_best_shaped_anchor_at_its_centre_cell():
    boxes, labels = hand_made_boxes()
    found = assign_targets(boxes, labels, torch.tensor(SQUARE_ANCHORS, dtype=torch.float32), (SIZE, SIZE))
    for i, (_, (level, anchor, gy, gx, tx, ty, tw, th)) in enumerate(CASES):
        assert (found.level[i], found.anchor[i], found.gy[i], found.gx[i]) == (level, anchor, gy, gx)
        encoded = torch.stack((found.tx[i], found.ty[i], found.tw[i], found.th[i]))
        torch.testing.assert_close(encoded, torch.tensor([tx, ty, tw, th]), rtol=0, atol=1e-6)
    torch.testing.assert_close(
        found.weight, torch.tensor([2 - 60 / 128**2, 2 - 400 / 128**2, 2 - 2000 / 128**2])
    )
    assert found.label.tolist() == [0, 1, 0]


def test_a_box_without_area_is_left_out_and_one_on_the_border_stays_on_the_grid():
    boxes = torch.tensor([[5.0, 5.0, 5.0, 9.0], xywh(128, 128, 8, 8)])
    found = assign_targets(
        boxes, torch.tensor([0, 1]), torch.tensor(SQUARE_ANCHORS, dtype=torch.float32), (SIZE, SIZE)
    )
    assert found.label.tolist() == [1]  # the zero-width box is gone
    assert (found.level.item(), found.gy.item(), found.gx.item()) == (
        0,
        15,
        15,
    )  # last cell of the 16 x 16 grid
    assert (found.tx.item(), found.ty.item()) == (1.0, 1.0)


def test_the_paper_anchors_scale_with_the_input_size():
    model = small_model(anchors=None, input_size=832)
    torch.testing.assert_close(model.anchors, torch.tensor(PAPER_ANCHORS, dtype=torch.float32) * 2)


def blank_outputs(fill: float = -20.0, batch: int = 1) -> list[torch.Tensor]:
    """Head outputs of 128-px images in which nothing scores: ``[B, H, W, 3, 5 + C]`` per level."""
    return [torch.full((batch, g, g, 3, 5 + NUM_CLASSES - 1), fill) for g in GRIDS]


def test_decoding_a_crafted_output_gives_the_box_in_input_image_pixels():
    model = small_model().eval()
    outputs = blank_outputs()
    # Level 1 (stride 16), cell gy=2, gx=5, anchor 2 (32 x 32): centre offsets 0.5, width x2, height x1.
    outputs[1][0, 2, 5, 2, :5] = torch.tensor([0.0, 0.0, math.log(2.0), 0.0, 10.0])
    outputs[1][0, 2, 5, 2, 5 + 1] = 10.0  # second class: label 2
    boxes = decode_level(outputs[1], model.level_anchors(1), 16)
    torch.testing.assert_close(boxes[0, 2, 5, 2], torch.tensor(xywh(88.0, 40.0, 64.0, 32.0)))

    model.head_outputs = lambda x: outputs  # the network's output, as crafted
    image = torch.rand(3, 96, 256)  # resized to 128 x 128 inside the model: x x 2, y x 3/4 back
    (found,) = model([image])
    torch.testing.assert_close(found["boxes"], torch.tensor([xywh(176.0, 30.0, 128.0, 24.0)]))
    assert found["labels"].tolist() == [2]
    torch.testing.assert_close(found["scores"], torch.sigmoid(torch.tensor([10.0])) ** 2)


def test_nms_is_per_class_and_top_k_keeps_the_best():
    model = small_model(detections_per_img=2).eval()
    outputs = blank_outputs()
    cell = outputs[0][0, 4, 4]
    cell[0, :5] = torch.tensor([0.0, 0.0, math.log(4.0), math.log(4.0), 8.0])  # 16 x 16 box, anchor 0 (4 px)
    cell[1, :5] = torch.tensor([0.0, 0.0, math.log(2.0), math.log(2.0), 6.0])  # the same box (anchor 1, 8 px)
    cell[0, 5:] = torch.tensor([10.0, 9.0])  # both classes
    cell[1, 5:] = 10.0
    # A third, lower-scoring box elsewhere: NMS keeps it, the top-2 cut does not.
    outputs[0][0, 10, 10, 0, :5] = torch.tensor([0.0, 0.0, 0.0, 0.0, 2.0])
    outputs[0][0, 10, 10, 0, 5] = 10.0
    model.head_outputs = lambda x: outputs
    (found,) = model([torch.rand(3, SIZE, SIZE)])
    # Per class, the anchor-1 copy (IoU 1, lower objectness) is suppressed; then the two best of three.
    assert found["labels"].tolist() == [1, 2]
    expected = torch.sigmoid(torch.tensor([8.0])) * torch.sigmoid(torch.tensor([10.0, 9.0]))
    torch.testing.assert_close(found["scores"], expected)
    torch.testing.assert_close(found["boxes"], torch.tensor([xywh(36.0, 36.0, 16.0, 16.0)] * 2))


def test_nothing_above_the_threshold_gives_empty_detections():
    model = small_model().eval()
    model.head_outputs = lambda x: blank_outputs(batch=2)
    found = model([torch.rand(3, 70, 90), torch.rand(3, SIZE, SIZE)])
    for detections in found:
        assert detections["boxes"].shape == (0, 4)
        assert detections["labels"].shape == detections["scores"].shape == (0,)
        assert detections["labels"].dtype == torch.int64


def perfect_outputs() -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Outputs that match the hand-made targets exactly (objectness and classes at +-30 logits)."""
    boxes, labels = hand_made_boxes()
    outputs = blank_outputs(-30.0)
    for (_, (level, anchor, gy, gx, tx, ty, tw, th)), label in zip(CASES, labels.tolist()):
        logit = lambda p: math.log(p / (1 - p)) if 0 < p < 1 else (30.0 if p else -30.0)  # noqa: E731
        outputs[level][0, gy, gx, anchor, :5] = torch.tensor([logit(tx), logit(ty), tw, th, 30.0])
        outputs[level][0, gy, gx, anchor, 5 + label] = 30.0
    return outputs, [{"boxes": boxes, "labels": labels + 1}]


def bce_entropy(p: float) -> float:
    return 0.0 if p in (0.0, 1.0) else -(p * math.log(p) + (1 - p) * math.log(1 - p))


def test_outputs_equal_to_the_targets_leave_only_the_centre_targets_entropy():
    model = small_model()
    outputs, targets = perfect_outputs()
    losses = model.compute_loss(outputs, targets, (SIZE, SIZE))
    assert losses["loss_scale"].item() == pytest.approx(0.0, abs=1e-5)
    assert losses["loss_objectness"].item() == pytest.approx(0.0, abs=1e-6)
    assert losses["loss_class"].item() == pytest.approx(0.0, abs=1e-6)
    # BCE against a soft target bottoms out at the target's entropy: weight x (H(tx) + H(ty)) per box.
    weights = (2 - 60 / 128**2, 2 - 400 / 128**2, 2 - 2000 / 128**2)
    floor = sum(w * (bce_entropy(c[4]) + bce_entropy(c[5])) for w, (_, c) in zip(weights, CASES))
    assert losses["loss_center"].item() == pytest.approx(floor, rel=1e-4)


def test_a_confident_unassigned_prediction_on_a_ground_truth_is_ignored_above_ignore_thresh():
    outputs, targets = perfect_outputs()
    # Level 0, cell (3, 1), anchor 2 (12 px) predicts the first box exactly, objectness +30, unassigned.
    outputs[0][0, 3, 1, 2, :5] = torch.tensor(
        [math.log(3.0), -30.0, math.log(10 / 12), math.log(6 / 12), 30.0]
    )
    ignored = small_model().compute_loss(outputs, targets, (SIZE, SIZE))["loss_objectness"].item()
    counted = (
        small_model(ignore_thresh=1.0).compute_loss(outputs, targets, (SIZE, SIZE))["loss_objectness"].item()
    )
    assert ignored == pytest.approx(0.0, abs=1e-6)
    assert counted == pytest.approx(30.0, rel=1e-4)  # BCE of logit +30 against 0


def test_an_image_without_boxes_trains_objectness_only():
    model = small_model()
    losses = model.compute_loss(
        blank_outputs(0.0),
        [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}],
        (SIZE, SIZE),
    )
    predictions = 3 * sum(g * g for g in GRIDS)
    assert losses["loss_objectness"].item() == pytest.approx(predictions * math.log(2), rel=1e-5)
    assert [losses[k].item() for k in ("loss_center", "loss_scale", "loss_class")] == [0.0, 0.0, 0.0]


def test_training_mode_returns_the_four_losses_and_they_train_every_layer():
    model = small_model(train_sizes=[96, 160]).train()
    images = [torch.rand(3, 96, 128), torch.rand(3, 120, 90)]
    targets = [
        {"boxes": torch.tensor([[10.0, 10.0, 60.0, 50.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    losses = model(images, targets)
    assert sorted(losses) == ["loss_center", "loss_class", "loss_objectness", "loss_scale"]
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.transform.fixed_size in ((96, 96), (160, 160))


def test_weights_path_round_trip_and_another_class_count_keeps_all_but_the_outputs(tmp_path):
    source = small_model().eval()
    path = tmp_path / "yolo.pth"
    torch.save({"state_dict": source.state_dict()}, path)
    images = [torch.rand(3, 100, 120)]
    same = small_model(weights_path=str(path), score_thresh=0.0).eval()
    source.score_thresh = 0.0
    with torch.no_grad():
        expected, got = source(images)[0], same(images)[0]
    assert len(expected["boxes"]) > 0
    for key in ("boxes", "scores", "labels"):
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)

    other = small_model(weights_path=str(path), num_classes=6)
    state = source.state_dict()
    for name, value in other.state_dict().items():
        if name.startswith("head.outputs."):
            assert value.shape != state[name].shape  # (5 + 5) x 3 outputs, fresh
        else:
            assert torch.equal(value, state[name]), name


def test_pretrained_backbone_is_a_local_timm_file(tmp_path):
    import timm

    torch.manual_seed(1)
    darknet = timm.create_model("darknet17")
    path = tmp_path / "darknet17.pth"
    torch.save(darknet.state_dict(), path)
    model = small_model(pretrained_backbone=str(path), width_multiplier=1.0)
    reference = darknet.state_dict()
    loaded = model.backbone.state_dict()
    assert len(loaded) == len(reference) - 2  # all but the classifier (head.fc)
    for name, value in loaded.items():
        module, rest = name.split(".", 1)  # timm's feature wrapper names stem.conv1 "stem_conv1"
        assert torch.equal(value, reference[module.replace("_", ".", 1) + "." + rest]), name

    with pytest.raises(ConfigError, match="never downloaded"):
        small_model(pretrained_backbone=str(tmp_path / "missing.pth"), width_multiplier=1.0)
    with pytest.raises(ConfigError, match="width_multiplier=1.0"):
        small_model(pretrained_backbone=str(path))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"input_size": 100}, "multiples of 32"),
        ({"train_sizes": [320, 330]}, "330"),
        ({"anchors": [[10, 10]] * 6}, "nine positive"),
        ({"backbone_name": "resnet50"}, "darknet53, darknet21, darknet17"),
        ({"num_classes": 1}, "at least 2"),
    ],
)
def test_bad_options_are_refused_naming_the_value(options, message):
    with pytest.raises(ConfigError, match=message):
        small_model(**options)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.input_size=100"], "multiples of 32"),
        (["model.pretrained_backbone=/nowhere/darknet53.pth"], "width_multiplier=1.0"),
        (
            ["model.width_multiplier=1.0", "model.pretrained_backbone=/nowhere/darknet53.pth"],
            "never downloaded",
        ),
    ],
)
def test_the_model_config_is_checked_during_validation(overrides, message):
    """The same checks through `check:` in the model config: before torch is imported by a run."""
    with pytest.raises(ConfigError, match=message):
        validate(compose(["task=detection", "model=yolov3_darknet53", *overrides]), [CONFIG_DIR])


# --------------------------------------------------------------------------- through the platform

PLATFORM = [
    "task=detection",
    "model=yolov3_darknet53",
    "callbacks.model_summary=null",
    "trainer.num_sanity_val_steps=0",
]
# The learning test's bounds; measured (CPU, seed 42): last/first epoch loss 0.668 (30.28 -> 20.23), test map_50 0.049.
LOSS_RATIO, MAP_50 = 0.8, 0.02
# The smallest network the tests train: darknet17 at an eighth of its width.
SMALL = ["model.backbone_name=darknet17", "model.width_multiplier=0.125"]


def set_score_thresh(run_dir: Path, value: float) -> None:
    """Rewrite the run's best checkpoint so that its model keeps scores above `value`."""
    from litzoo.platform.checkpointing import load_checkpoint_file
    from litzoo.platform.run_dir import RunDir

    checkpoint = RunDir(run_dir).checkpoint()
    state = load_checkpoint_file(checkpoint)
    state["hyper_parameters"]["model"]["score_thresh"] = value
    torch.save(state, checkpoint)


@pytest.fixture(scope="module")
def yolo_run(shapes_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One epoch (12 steps) on the session's shapes, every detection kept (score_thresh 0), five per image.

    The export then keeps only scores above the blank image's best: on a blank image every cell sees
    the same input, so its boxes tie up to rounding and onnxruntime's TopK breaks those ties unlike
    torch.topk (a trained model scores a blank image below its threshold, as this one then does).
    """
    from conftest import compose
    from omegaconf import OmegaConf

    import litzoo

    run_dir = tmp_path_factory.mktemp("yolo") / "run"
    overrides = [
        *PLATFORM,
        *FAST,
        *shapes_overrides(shapes_root),
        *SMALL,
        "model.score_thresh=0.0",
        "model.detections_per_img=5",
        "optim=adamw",
        "optim.lr=0.01",
        "trainer.limit_train_batches=12",
        "callbacks.step_checkpoint=null",
    ]
    code, record = run_in_process(overrides, run_dir)
    assert code == 0 and record["status"] == "completed", (run_dir / "train.log").read_text()[-3000:]
    OmegaConf.save(compose(overrides, run_dir=run_dir), run_dir / ".hydra" / "config.yaml")
    with torch.no_grad():
        blank = litzoo.load(run_dir)([torch.zeros(3, 117, 87)])[0]["scores"].max().item()
    set_score_thresh(run_dir, blank * 1.01)
    return run_dir


def export(*argv: str) -> tuple[int, str]:
    """`python -m litzoo.export <argv>` in this process: (exit code, stderr)."""
    import contextlib
    import io

    from litzoo.export.cli import main

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, err.getvalue()


@pytest.mark.slow
def test_a_short_run_through_the_platform_scores_and_saves_detections(yolo_run: Path):
    record = json.loads((yolo_run / "run.json").read_text())  # scored before the threshold was raised
    assert {"test/map", "test/map_50", "test/mar_100"} <= set(record["metrics"])
    saved = json.loads((yolo_run / "detections_test.json").read_text())
    assert (
        len(saved) == 2 * 2 * 5
    )  # limit_test_batches=2 of 2 images, detections_per_img each (score_thresh 0)


@pytest.mark.slow
def test_onnx_export_matches_eager_on_a_batch_of_two_and_a_blank_image(yolo_run: Path):
    import numpy as np
    import onnxruntime as ort

    import litzoo
    from litzoo.export.data import build_datamodule, split_batches
    from litzoo.platform.run_dir import RunDir

    code, err = export(str(yolo_run), "--format", "onnx")
    assert code == 0, err
    folder = yolo_run / "exports" / "onnx"
    record = json.loads((folder / "export.json").read_text())
    assert record["parity"]["passed"]
    task = litzoo.load(yolo_run)
    images, _ = next(iter(split_batches(build_datamodule(RunDir(yolo_run)), "val")))
    images = [image.as_subclass(torch.Tensor) for image in images]
    graph = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        batched = task(images)
    for image, expected in zip(images, batched, strict=True):
        boxes, labels, scores = graph.run(None, {"image": image.numpy()})
        assert len(boxes) == len(expected["boxes"]) > 0
        np.testing.assert_allclose(boxes, expected["boxes"].numpy(), atol=0.1, rtol=1e-3)
        np.testing.assert_array_equal(labels, expected["labels"].numpy())
        np.testing.assert_allclose(scores, expected["scores"].numpy(), atol=1e-4, rtol=1e-3)


@pytest.mark.slow
def test_a_model_that_keeps_nothing_exports_and_returns_empty_outputs(yolo_run: Path, tmp_path: Path):
    """The same weights with score_thresh 1.0 (a product of two sigmoids of untrained logits stays below it)."""
    import shutil

    import numpy as np
    import onnxruntime as ort

    from litzoo.platform.run_dir import RunDir

    run_dir = tmp_path / "run"
    shutil.copytree(yolo_run, run_dir, ignore=shutil.ignore_patterns("exports"))
    record = json.loads((run_dir / "run.json").read_text())
    record["best_checkpoint"] = str(run_dir / "checkpoints" / RunDir(yolo_run).checkpoint().name)
    (run_dir / "run.json").write_text(json.dumps(record))
    set_score_thresh(run_dir, 1.0)

    code, err = export(str(run_dir), "--format", "onnx")
    assert code == 0, err
    result = json.loads((run_dir / "exports" / "onnx" / "export.json").read_text())
    assert result["parity"]["passed"] and result["parity"]["outputs"]["boxes"]["elements"] == 0
    graph = ort.InferenceSession(
        str(run_dir / "exports" / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    boxes, labels, scores = graph.run(None, {"image": np.zeros((3, 50, 70), dtype=np.float32)})
    assert boxes.shape == (0, 4) and labels.shape == (0,) and scores.shape == (0,)


@pytest.mark.slow
def test_training_on_the_shapes_lowers_the_loss_and_finds_the_shapes(shapes_root: Path, tmp_path: Path):
    """Five epochs on the session's 24 shapes images (darknet21 at a quarter width, AdamW)."""
    import csv

    run_dir = tmp_path / "run"
    overrides = [
        *PLATFORM,
        *shapes_overrides(shapes_root),
        "model.backbone_name=darknet21",
        "model.width_multiplier=0.25",
        "optim=adamw",
        "optim.lr=0.002",
        "optim.weight_decay=5.0e-4",
        "data.batch_size=4",
        "trainer.max_epochs=5",
        "trainer.enable_progress_bar=false",
        "callbacks.progress_bar=null",
        "callbacks.step_checkpoint=null",
    ]
    code, record = run_in_process(overrides, run_dir)
    assert code == 0 and record["status"] == "completed", (run_dir / "train.log").read_text()[-3000:]
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    losses = [float(r["train/loss_epoch"]) for r in rows if r.get("train/loss_epoch")]
    assert len(losses) == 5 and losses[-1] < LOSS_RATIO * losses[0]
    assert record["metrics"]["test/map_50"] > MAP_50
