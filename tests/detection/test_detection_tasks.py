"""Detection, instance segmentation and pose through the platform: configs, runs, metrics, saved detections.

The runs use the session's tiny shapes dataset (24 train / 12 val images, 96 x 128) and a few
batches, so they check wiring and bookkeeping rather than learning: the metric keys the run
record holds, that the COCO detections written into the run directory re-score with raw
pycocotools to exactly the logged AP, and that evaluating the best checkpoint again with
`train=false` reproduces the test metrics and detections exactly.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONFIG_DIR, compose, read_json, run_cli, run_in_process
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from litzoo.datamodules.detection.shapes import SHAPE_KPT_OKS_SIGMAS
from litzoo.errors import ConfigError, DataError
from litzoo.metrics.coco_eval import BOX_STAT_NAMES, KEYPOINT_STAT_NAMES
from litzoo.platform.validate import validate

FAST = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=2",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "data.batch_size=2",
]
# An R-CNN trained for two steps rarely scores a box above torchvision's 0.05 threshold; keeping all
# its detections gives the saved files and the COCOeval statistics something to disagree about.
KEEP_ALL_BOXES = ["++model.box_score_thresh=0.0", "++model.box_detections_per_img=20"]


# The targets each task's config asks the data for (data.targets).
TARGETS = {"detection": "boxes", "instance_segmentation": "masks", "pose": "keypoints"}


def shapes_overrides(root: Path) -> list[str]:
    """Point data=shapes at the session's dataset (the same generator parameters, so it is reused)."""
    return [
        f"data.root={root}",
        "data.num_train=24",
        "data.num_val=12",
        "data.image_size=[96,128]",
        "data.generator_seed=3",
        "data.crowd_fraction=0.3",
    ]


def quiet_coco(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def rescore(
    gt_file: Path,
    detections_file: Path,
    iou_type: str,
    image_ids: list[int],
    sigmas: tuple[float, ...] | None = None,
) -> dict[str, float]:
    """Score a saved detections file with raw pycocotools, as a user re-scoring a run would."""
    gt = quiet_coco(gt_file)
    results = json.loads(detections_file.read_text())
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, iou_type)
        evaluator.params.imgIds = image_ids
        if sigmas is not None:
            evaluator.params.kpt_oks_sigmas = np.asarray(sigmas)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    names = KEYPOINT_STAT_NAMES if iou_type == "keypoints" else BOX_STAT_NAMES
    return dict(zip(names, (float(v) for v in evaluator.stats)))


def assert_ap_range(metrics: dict[str, float]) -> None:
    for key, value in metrics.items():
        if key.endswith("loss"):
            assert math.isfinite(value) and value >= 0, key
        else:  # COCOeval's -1 means "no ground truth in this area range"
            assert value == -1.0 or 0.0 <= value <= 1.0, (key, value)


# --------------------------------------------------------------------------- configs


@pytest.mark.parametrize(
    ("task", "model", "data", "monitor"),
    [
        ("detection", "faster_rcnn", "shapes", "val/map"),
        ("instance_segmentation", "mask_rcnn", "shapes", "val/segm_map"),
        ("pose", "simple_baseline", "shapes", "val/map"),
    ],
)
def test_each_task_defaults_to_an_embedded_run(task, model, data, monitor):
    cfg = compose([f"task={task}"])
    assert (cfg.model.name, cfg.data.name, cfg.task.monitor, cfg.task.monitor_mode) == (
        model,
        data,
        monitor,
        "max",
    )
    # The data loads the targets the task needs; conf/task/detection.yaml leaves the default.
    assert cfg.data.targets == TARGETS[task]
    assert "task" not in cfg.data  # the data knows targets, not task names
    validate(cfg, [CONFIG_DIR])


def test_the_model_decides_the_pose_pipeline_and_batch():
    top_down = compose(["task=pose"])
    assert (top_down.data.pose_input, list(top_down.data.pose_input_size), top_down.data.batch_size) == (
        "top_down",
        [64, 64],
        8,
    )
    full = compose(["task=pose", "model=keypoint_rcnn"])
    assert (full.data.pose_input, full.data.pose_input_size, full.data.batch_size) == ("full_image", None, 4)


DETECTORS = {
    "faster_rcnn",
    "faster_rcnn_mobilenet",
    "faster_rcnn_timm",
    "faster_rcnn_v2",
    "ssd300_vgg16",
    "ssdlite320_mobilenet_v3",
    "yolov3_darknet53",
}


@pytest.mark.parametrize(
    ("task", "model", "fitting"),
    [
        ("classification", "faster_rcnn", None),  # the image classifiers, no detector among them
        ("detection", "resnet18", DETECTORS),
        ("detection", "mask_rcnn", DETECTORS),
        ("instance_segmentation", "faster_rcnn", {"mask_rcnn"}),
        ("pose", "mask_rcnn", {"keypoint_rcnn", "simple_baseline"}),
    ],
)
def test_models_that_do_not_serve_the_task_are_refused(task, model, fitting):
    with pytest.raises(ConfigError) as error:
        validate(compose([f"task={task}", f"model={model}"]), [CONFIG_DIR])
    message = str(error.value)
    assert f"model={model} does not fit task={task}" in message
    listed = set(message.split(f"Model options for task={task}: ")[1].split(". ")[0].rstrip(".").split(", "))
    if fitting is None:
        assert "resnet18" in listed and not listed & (
            DETECTORS | {"mask_rcnn", "keypoint_rcnn", "simple_baseline"}
        )
    else:
        assert listed == fitting


@pytest.mark.parametrize(
    ("task", "data"),
    [
        ("detection", "digits"),
        ("classification", "shapes"),
        ("pose", "voc"),
        ("instance_segmentation", "voc"),
    ],
)
def test_data_that_does_not_serve_the_task_is_refused(task, data):
    overrides = [f"task={task}", f"data={data}"] + (["data.root=/nonexistent"] if data == "voc" else [])
    with pytest.raises(ConfigError, match=f"data={data} does not fit task={task}"):
        validate(compose(overrides), [CONFIG_DIR])


def test_coco_layout_is_checked_before_anything_runs(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "train2017").mkdir()
    (tmp_path / "annotations" / "instances_train2017.json").write_text("{}")
    with pytest.raises(DataError) as error:
        validate(compose(["task=detection", "data=coco", f"data.root={tmp_path}"]), [CONFIG_DIR])
    assert "annotations/instances_val2017.json (data.val_split=val2017)" in str(error.value)
    assert "<root>/annotations/person_keypoints_<split>.json" in str(error.value)
    with pytest.raises(DataError, match=r"annotations/person_keypoints_train2017\.json"):
        validate(compose(["task=pose", "data=coco", f"data.root={tmp_path}"]), [CONFIG_DIR])
    with pytest.raises(ConfigError, match=r"data\.root"):
        validate(compose(["task=detection", "data=coco"]), [CONFIG_DIR])


def test_coco_custom_names_the_missing_path(tmp_path):
    with pytest.raises(ConfigError, match="data.train_ann, data.train_images, data.val_ann, data.val_images"):
        validate(compose(["task=detection", "data=coco_custom"]), [CONFIG_DIR])
    (tmp_path / "train.json").write_text("{}")
    paths = [
        f"data.train_ann={tmp_path / 'train.json'}",
        f"data.train_images={tmp_path}",
        f"data.val_ann={tmp_path / 'val.json'}",
        f"data.val_images={tmp_path}",
    ]
    with pytest.raises(DataError, match=r"data\.val_ann=.*val\.json is not an existing file"):
        validate(compose(["task=detection", "data=coco_custom", *paths]), [CONFIG_DIR])


# --------------------------------------------------------------------------- runs


MODEL_RUNS = {
    # model: (task, extra overrides, {iou_type: (detections file, metric prefix)})
    "faster_rcnn_mobilenet": ("detection", KEEP_ALL_BOXES, {"bbox": ("detections_test.json", "")}),
    "faster_rcnn_timm": ("detection", KEEP_ALL_BOXES, {"bbox": ("detections_test.json", "")}),
    "faster_rcnn_v2": (
        "detection",
        ["model.min_size=128", "model.max_size=128", "model.small_images=true", *KEEP_ALL_BOXES],
        {"bbox": ("detections_test.json", "")},
    ),
    "mask_rcnn": (
        "instance_segmentation",
        KEEP_ALL_BOXES,
        {"bbox": ("detections_test.json", ""), "segm": ("detections_test_segm.json", "segm_")},
    ),
    "keypoint_rcnn": (
        "pose",
        KEEP_ALL_BOXES,
        {"keypoints": ("detections_test.json", ""), "bbox": ("detections_test_bbox.json", "bbox_")},
    ),
    "simple_baseline": ("pose", ["data.batch_size=8"], {"keypoints": ("detections_test.json", "")}),
}
SLOW_MODELS = {"faster_rcnn_v2", "faster_rcnn_mobilenet", "faster_rcnn_timm"}


@pytest.mark.parametrize(
    "model", [pytest.param(m, marks=pytest.mark.slow) if m in SLOW_MODELS else m for m in MODEL_RUNS]
)
def test_smoke_run_logs_coco_metrics_and_saves_rescorable_detections(model, shapes_root, tmp_path):
    task, extra, files = MODEL_RUNS[model]
    run_dir = tmp_path / "run"
    code, record = run_in_process(
        [f"task={task}", f"model={model}", *shapes_overrides(shapes_root), *FAST, *extra], run_dir
    )
    assert code == 0 and record["status"] == "completed", record.get("error")
    metrics = record["metrics"]

    expected = set()
    for iou_type, (_, prefix) in files.items():
        names = KEYPOINT_STAT_NAMES if iou_type == "keypoints" else BOX_STAT_NAMES
        expected |= {f"test/{prefix}{n}" for n in names}
    if model == "simple_baseline":
        expected.add("test/loss")
    assert set(metrics) == expected
    assert_ap_range(metrics)
    assert (run_dir / "detections_val_epoch000.json").is_file()

    # The saved detections re-score with raw pycocotools to exactly the logged test AP.
    stem = "person_keypoints" if task == "pose" else "instances"
    gt_file = shapes_root / "annotations" / f"{stem}_val2017.json"
    for iou_type, (name, prefix) in files.items():
        saved = json.loads((run_dir / name).read_text())
        # The scored images are those with results: 2 test batches of 2 images, all of whose boxes are
        # kept, or of 8 ground-truth boxes for top-down pose.
        image_ids = sorted({r["image_id"] for r in saved})
        assert len(saved) == 16 if model == "simple_baseline" else len(image_ids) == 4
        sigmas = SHAPE_KPT_OKS_SIGMAS if iou_type == "keypoints" else None
        reference = rescore(gt_file, run_dir / name, iou_type, image_ids, sigmas)
        assert {k: metrics[f"test/{prefix}{k}"] for k in reference} == pytest.approx(reference, abs=1e-7)


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def detector_run(shapes_root, tmp_path_factory) -> tuple[Path, dict, list[str]]:
    """Faster R-CNN (the default detection run) on the tiny shapes: the run directory, record and log."""
    handler, logger = ListHandler(), logging.getLogger("litzoo")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    run_dir = tmp_path_factory.mktemp("detector") / "run"
    try:
        code, record = run_in_process(
            ["task=detection", *shapes_overrides(shapes_root), *FAST, *KEEP_ALL_BOXES], run_dir
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    assert code == 0 and record["status"] == "completed", record.get("error")
    return run_dir, record, handler.messages


def test_detection_run_logs_box_ap_and_saves_rescorable_detections(detector_run, shapes_root):
    run_dir, record, _ = detector_run
    metrics = record["metrics"]
    assert set(metrics) == {f"test/{n}" for n in BOX_STAT_NAMES}
    assert_ap_range(metrics)
    gt_file = shapes_root / "annotations" / "instances_val2017.json"
    saved = json.loads((run_dir / "detections_test.json").read_text())
    assert saved and {d["category_id"] for d in saved} <= {1, 2, 4}  # COCO ids, not contiguous labels
    image_ids = sorted({d["image_id"] for d in saved})
    assert len(image_ids) == 4 and len(saved) == 4 * 20  # 2 test batches of 2 images, 20 boxes each
    reference = rescore(gt_file, run_dir / "detections_test.json", "bbox", image_ids)
    assert {k: metrics[f"test/{k}"] for k in reference} == pytest.approx(reference, abs=1e-7)
    assert (run_dir / "detections_val_epoch000.json").is_file()
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert any(r.get("val/map") not in (None, "") for r in rows)  # validation AP logged per epoch
    assert any(r.get("train/loss_objectness_step") not in (None, "") for r in rows)


def test_per_class_table_goes_to_the_log(detector_run):
    _, _, messages = detector_run
    tables = [m for m in messages if "AP per class" in m]
    assert [t.split(":")[0] for t in tables] == [
        "bbox AP per class (x100), val epoch 0",
        "bbox AP per class (x100), test",
    ]
    header, *rows = tables[-1].split(":\n", 1)[1].splitlines()
    assert header.split() == ["class", "id", "AP", "AP50", "AP75", "#gt"]
    assert [r.split()[:2] for r in rows] == [["circle", "1"], ["square", "2"], ["triangle", "4"]]


def test_same_files_through_coco_and_coco_custom_evaluate_identically(detector_run, shapes_root, tmp_path):
    """train=false on the best checkpoint reproduces the test metrics and detections exactly, whether the
    shapes files are read as data=shapes, data=coco (their layout is COCO's) or data=coco_custom."""
    run_dir, record, _ = detector_run
    ann = shapes_root / "annotations"
    sources = {
        "shapes": shapes_overrides(shapes_root),
        "coco": ["data=coco", f"data.root={shapes_root}"],
        "coco_custom": [
            "data=coco_custom",
            f"data.train_ann={ann / 'instances_train2017.json'}",
            f"data.train_images={shapes_root / 'train2017'}",
            f"data.val_ann={ann / 'instances_val2017.json'}",
            f"data.val_images={shapes_root / 'val2017'}",
        ],
    }
    expected = json.loads((run_dir / "detections_test.json").read_text())
    for name, data in sources.items():
        out = tmp_path / name
        code, evaluated = run_in_process(
            [
                "task=detection",
                *data,
                *FAST,
                *KEEP_ALL_BOXES,
                "train=false",
                f"ckpt_path={record['best_checkpoint']}",
            ],
            out,
        )
        assert code == 0, (name, evaluated.get("error"))
        assert evaluated["metrics"] == record["metrics"], name
        assert json.loads((out / "detections_test.json").read_text()) == expected, name


POSE_BASE = [
    "task=pose",
    *FAST,
    "trainer.limit_train_batches=8",
    "data.batch_size=8",
    "sched.warmup_epochs=0",
]


@pytest.fixture(scope="module")
def pose_run(shapes_root, tmp_path_factory) -> tuple[Path, dict]:
    """SimpleBaseline (the default pose run) trained for 3 steps: enough for a keypoint AP above 0."""
    run_dir = tmp_path_factory.mktemp("pose") / "run"
    code, record = run_in_process([*POSE_BASE, *shapes_overrides(shapes_root)], run_dir)
    assert code == 0 and record["status"] == "completed", record.get("error")
    return run_dir, record


def test_pose_checkpoint_evaluation_reproduces_a_nonzero_keypoint_ap(pose_run, shapes_root, tmp_path):
    run_dir, trained = pose_run
    best = trained["best_checkpoint"]
    assert best and Path(best).is_file()
    code, evaluated = run_in_process(
        [*POSE_BASE, *shapes_overrides(shapes_root), "train=false", f"ckpt_path={best}"], tmp_path / "eval"
    )
    assert code == 0, evaluated.get("error")
    assert evaluated["metrics"] == trained["metrics"]  # exactly, every statistic
    assert trained["metrics"]["test/map"] > 0  # a non-trivial number is being reproduced
    first = json.loads((run_dir / "detections_test.json").read_text())
    assert json.loads((tmp_path / "eval" / "detections_test.json").read_text()) == first


@pytest.mark.slow
def test_ddp_evaluation_scores_the_predictions_of_all_ranks_together(pose_run, shapes_root, tmp_path):
    """Two CPU ranks evaluate the same checkpoint: each predicts half the boxes, and the scores are those
    of all boxes (the single-process numbers), not of one rank's shard."""
    _, trained = pose_run
    evaluate = [
        *POSE_BASE,
        *shapes_overrides(shapes_root),
        "train=false",
        f"ckpt_path={trained['best_checkpoint']}",
        "trainer.limit_test_batches=null",
    ]  # a limit would count per rank
    code, single = run_in_process(evaluate, tmp_path / "single")
    assert code == 0, single.get("error")
    run_dir = tmp_path / "ddp"
    proc = run_cli(
        [*evaluate, "trainer=ddp_cpu", f"hydra.run.dir={run_dir}"], env={"OMP_NUM_THREADS": "1"}, timeout=400
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = read_json(run_dir / "run.json")
    assert record["metrics"] == pytest.approx(single["metrics"], abs=1e-6)
    assert record["metrics"]["test/map"] > 0
    saved = json.loads((run_dir / "detections_test.json").read_text())
    gt = quiet_coco(shapes_root / "annotations" / "person_keypoints_val2017.json")
    assert len(saved) == sum(1 for a in gt.anns.values() if not a["iscrowd"])  # every box, from both ranks


class Oracle(torch.nn.Module):
    """Stands in for a detector: returns the ground truth of each image it is shown, with score 1."""

    def __init__(self, dataset) -> None:
        super().__init__()
        self.truth = {self.digest(image): target for image, target in dataset}
        self.unused = torch.nn.Parameter(torch.zeros(1))  # something for the optimizer to hold

    @staticmethod
    def digest(image: torch.Tensor) -> str:
        return hashlib.sha1(image.as_subclass(torch.Tensor).numpy().tobytes()).hexdigest()

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        outputs = []
        for image in images:
            target = self.truth[self.digest(image)]
            output = {
                "boxes": target["boxes"].as_subclass(torch.Tensor),
                "labels": target["labels"],
                "scores": torch.ones(len(target["labels"])),
            }
            if "masks" in target:  # Mask R-CNN's soft masks: N x 1 x H x W
                output["masks"] = target["masks"].as_subclass(torch.Tensor)[:, None].float()
            if "keypoints" in target:
                output["keypoints"] = target["keypoints"]
            outputs.append(output)
        return outputs


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("detection", {"test/map": 1.0, "test/map_50": 1.0, "test/map_75": 1.0}),
        ("instance_segmentation", {"test/map": 1.0, "test/segm_map": 1.0, "test/segm_map_75": 1.0}),
        ("pose", {"test/map": 1.0, "test/map_50": 1.0, "test/bbox_map": 1.0}),
    ],
)
def test_the_ground_truth_as_predictions_scores_exactly_one(task, expected, shapes_root, tmp_path):
    """Labels map back to COCO category ids, masks and keypoints reach COCOeval in its formats, and every
    image is scored against its own annotations: a perfect predictor gets AP 1 through the task."""
    import lightning.pytorch as pl

    from litzoo.datamodules.detection.datamodule import ShapesDataModule
    from litzoo.tasks.detection import DetectionTask, InstanceSegmentationTask
    from litzoo.tasks.pose import KeypointRCNNTask

    datamodule = ShapesDataModule(
        root=str(shapes_root),
        targets=TARGETS[task],
        num_train=24,
        num_val=12,
        image_size=[96, 128],
        generator_seed=3,
        crowd_fraction=0.3,
        batch_size=3,
    )
    cls = {
        "detection": DetectionTask,
        "instance_segmentation": InstanceSegmentationTask,
        "pose": KeypointRCNNTask,
    }[task]
    module = cls(
        model={"name": "oracle", "_target_": "torch.nn.Identity"},
        data_info=datamodule.info(),
        optim={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1},
    )
    datamodule.setup("test")
    module.net = Oracle(datamodule.dataset("test"))
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        use_distributed_sampler=False,
    )
    metrics = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    assert {k: metrics[k] for k in expected} == expected
    saved = json.loads((tmp_path / "detections_test.json").read_text())
    stem = "person_keypoints" if task == "pose" else "instances"
    gt = quiet_coco(shapes_root / "annotations" / f"{stem}_val2017.json")
    assert len(saved) == sum(1 for a in gt.anns.values() if not a["iscrowd"])
    assert {d["category_id"] for d in saved} == {c["id"] for c in gt.dataset["categories"]}


def write_voc_from_coco(coco_root: Path, out: Path) -> Path:
    """The shapes in PASCAL VOC's devkit layout: train2017 -> VOC2007 trainval, val2017 -> VOC2007 test."""
    base = out / "VOCdevkit" / "VOC2007"
    for sub in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for split, voc_split in (("train2017", "trainval"), ("val2017", "test")):
        coco = quiet_coco(coco_root / "annotations" / f"instances_{split}.json")
        names = []
        for image_id in sorted(coco.getImgIds()):
            img, name = coco.imgs[image_id], f"{image_id:06d}"
            objects = ""
            for ann in coco.imgToAnns[image_id]:
                x, y, w, h = ann["bbox"]  # devkit boxes: 1-based inclusive pixel indices
                box = (round(x) + 1, round(y) + 1, round(x + w), round(y + h))
                objects += (
                    f"<object><name>{coco.cats[ann['category_id']]['name']}</name>"
                    f"<difficult>{ann['iscrowd']}</difficult><bndbox><xmin>{box[0]}</xmin>"
                    f"<ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox></object>"
                )
            (base / "Annotations" / f"{name}.xml").write_text(
                f"<annotation><size><width>{img['width']}</width><height>{img['height']}</height>"
                f"<depth>3</depth></size>{objects}</annotation>"
            )
            (base / "JPEGImages" / f"{name}.jpg").write_bytes(
                (coco_root / split / img["file_name"]).read_bytes()
            )
            names.append(name)
        (base / "ImageSets" / "Main" / f"{voc_split}.txt").write_text("\n".join(names) + "\n")
    return out / "VOCdevkit"


def test_voc_run_scores_the_devkit_map_and_saves_detections_by_voc_id(shapes_root, tmp_path):
    from litzoo.datamodules.detection.voc import VOCDetection
    from litzoo.metrics.voc_eval import VOCMeanAP

    devkit = write_voc_from_coco(shapes_root, tmp_path / "voc")
    run_dir = tmp_path / "run"
    code, record = run_in_process(
        [
            "task=detection",
            "data=voc",
            f"data.root={devkit}",
            "data.train_sets=[[2007,trainval]]",
            "data.val_set=[2007,test]",
            "+data.class_names=[circle,square,triangle]",
            "data.num_workers=0",
            "data.persistent_workers=false",
            *FAST,
            *KEEP_ALL_BOXES,
        ],
        run_dir,
    )
    assert code == 0, record.get("error")
    assert set(record["metrics"]) == {"test/map"}
    # Re-score the saved detections with the devkit rule on the flagged ground truth.
    saved = json.loads((run_dir / "detections_test.json").read_text())
    test_set = VOCDetection(
        devkit, "2007", "test", keep_difficult=True, class_names=["circle", "square", "triangle"]
    )
    assert {d["image_id"] for d in saved} <= set(test_set.ids)
    metric = VOCMeanAP(["circle", "square", "triangle"], use_07_metric=True)
    for index, name in enumerate(test_set.ids):
        mine = [d for d in saved if d["image_id"] == name]
        boxes = [[x, y, x + w, y + h] for x, y, w, h in (d["bbox"] for d in mine)]
        metric.update(
            [
                {
                    "boxes": np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
                    "labels": np.asarray([d["category_id"] for d in mine], dtype=np.int64),
                    "scores": np.asarray([d["score"] for d in mine]),
                }
            ],
            [test_set.load_target(index)],
        )
    expected = metric.compute()["map"]
    assert record["metrics"]["test/map"] == pytest.approx(expected, abs=1e-7)


def test_the_ground_truth_as_predictions_scores_exactly_one_on_voc(shapes_root, tmp_path):
    import lightning.pytorch as pl

    from litzoo.datamodules.detection.datamodule import VOCDataModule
    from litzoo.tasks.detection import DetectionTask

    devkit = write_voc_from_coco(shapes_root, tmp_path / "voc")
    datamodule = VOCDataModule(
        root=str(devkit),
        train_sets=[["2007", "trainval"]],
        val_set=["2007", "test"],
        class_names=["circle", "square", "triangle"],
        batch_size=3,
    )
    module = DetectionTask(
        model={"name": "oracle", "_target_": "torch.nn.Identity"},
        data_info=datamodule.info(),
        optim={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1},
    )
    datamodule.setup("test")
    module.net = Oracle(datamodule.dataset("test"))  # difficult objects included: they must be ignored
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        use_distributed_sampler=False,
    )
    assert trainer.test(module, datamodule=datamodule, verbose=False)[0] == {"test/map": 1.0}
    saved = json.loads((tmp_path / "detections_test.json").read_text())
    assert {d["image_id"] for d in saved} == set(datamodule.dataset("test").ids)


# --------------------------------------------------------------------------- bad input through the task


def test_pose_data_and_model_must_agree_on_the_pipeline(shapes_root, tmp_path):
    code, record = run_in_process(
        ["task=pose", *shapes_overrides(shapes_root), *FAST, "data.pose_input=full_image"], tmp_path / "run"
    )
    assert code == 2  # a ConfigError: registry.build unwraps Hydra's InstantiationException
    assert (
        "model=simple_baseline takes top_down pose input, but the data provides full_image" in record["error"]
    )


@pytest.mark.parametrize(
    ("task", "targets", "needed"),
    [("instance_segmentation", "boxes", "masks"), ("pose", "masks", "keypoints")],
)
def test_data_targets_must_include_what_the_task_needs(task, targets, needed, shapes_root, tmp_path):
    code, record = run_in_process(
        [f"task={task}", *shapes_overrides(shapes_root), *FAST, f"data.targets={targets}"], tmp_path / "run"
    )
    assert code == 2, record
    assert record["error"].startswith(
        f"task={task} needs the data's {needed} targets, but the datamodule loads data.targets={targets}. "
    )
    assert f"data.targets={needed}" in record["error"].split(". ", 1)[1]


def test_unknown_data_targets_are_refused(shapes_root, tmp_path):
    code, record = run_in_process(
        ["task=detection", *shapes_overrides(shapes_root), *FAST, "data.targets=poses"], tmp_path / "run"
    )
    assert code == 2
    assert "data.targets='poses' is not known; use one of boxes, masks, keypoints" in record["error"]


def _custom(shapes_root: Path, tmp_path: Path, task: str, edit_val=None, **kwargs):
    from litzoo.datamodules.detection.datamodule import CocoCustomDataModule

    stem = "person_keypoints" if task == "pose" else "instances"
    val = json.loads((shapes_root / "annotations" / f"{stem}_val2017.json").read_text())
    if edit_val is not None:
        edit_val(val)
    (tmp_path / "val.json").write_text(json.dumps(val))
    return CocoCustomDataModule(
        train_ann=str(shapes_root / "annotations" / f"{stem}_train2017.json"),
        train_images=str(shapes_root / "train2017"),
        val_ann=str(tmp_path / "val.json"),
        val_images=str(shapes_root / "val2017"),
        targets=TARGETS[task],
        **kwargs,
    )


def test_splits_with_different_categories_are_refused(shapes_root, tmp_path):
    def rename(dataset: dict) -> None:
        dataset["categories"][1]["name"] = "box"

    datamodule = _custom(shapes_root, tmp_path, "detection", rename)
    with pytest.raises(
        DataError, match=r"categories of .*instances_train2017\.json .* differ from those of .*val\.json"
    ):
        datamodule.setup("fit")


def test_keypoints_other_than_cocos_17_need_oks_sigmas(shapes_root, tmp_path):
    with pytest.raises(
        ConfigError, match=r"this dataset has 4 keypoints .* data\.kpt_oks_sigmas=\[\.\.\.\] with 4"
    ):
        _custom(shapes_root, tmp_path, "pose").info()
    with pytest.raises(ConfigError, match="data.kpt_oks_sigmas has 3 values but the dataset has 4 keypoints"):
        _custom(shapes_root, tmp_path, "pose", kpt_oks_sigmas=[0.1, 0.1, 0.1]).info()
    info = _custom(shapes_root, tmp_path, "pose", kpt_oks_sigmas=[0.1, 0.2, 0.2, 0.1]).info()
    assert info["kpt_oks_sigmas"] == [0.1, 0.2, 0.2, 0.1]
    assert (info["keypoint_names"], info["flip_pairs"]) == (["top", "left", "right", "bottom"], [[1, 2]])


def test_degenerate_boxes_are_dropped_with_a_count_not_a_crash(shapes_root, tmp_path, caplog):
    def flatten(dataset: dict) -> None:
        dataset["annotations"][0]["bbox"][2] = 0.0  # zero width
        dataset["annotations"][1]["bbox"] = [500.0, 500.0, 10.0, 10.0]  # entirely outside the image

    datamodule = _custom(shapes_root, tmp_path, "detection", flatten)
    with caplog.at_level("WARNING"):
        datamodule.setup("validate")
    warning = next(r.getMessage() for r in caplog.records if "degenerate" in r.getMessage())
    val = json.loads((tmp_path / "val.json").read_text())
    ids = [str(a["id"]) for a in val["annotations"][:2]]
    assert warning.startswith("Dropped 2 annotation(s) with a degenerate box") and all(
        i in warning for i in ids
    )
    image, target = datamodule.dataset("val")[0]
    assert len(target["boxes"]) == len(
        [a for a in val["annotations"][2:] if a["image_id"] == val["images"][0]["id"] and not a["iscrowd"]]
    )
