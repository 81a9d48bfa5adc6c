"""`python -m litzoo.predict <run_dir> <inputs>` for every image family: the same answers as the trained task.

One tiny run per family (module-scoped), then prediction from image files through the command
line, compared with the task's own forward pass on what the run's *datamodule* makes of the same
files (its eval transform, its decoder): top-1 and probabilities for classification, boxes,
scores, labels, RLE masks and keypoints for detection, instance segmentation and top-down pose.
`--output` files are checked with pycocotools' `loadRes` against the data's own annotations.
Text classification is tested in tests/text/test_text_predict.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FAST_RUN, ROOT, compose, run_in_process
from omegaconf import OmegaConf
from PIL import Image
from pycocotools.coco import COCO

import litzoo
from litzoo.datamodules.detection.shapes import generate_shapes_coco
from litzoo.metrics.coco_eval import encode_masks
from litzoo.predict import main, read_inputs
from litzoo.vision.keypoints import heatmaps_to_image_keypoints

CLASSES = ("blue", "green", "red")  # ImageFolder's class order: the sorted folder names
CHANNELS = {"red": 0, "green": 1, "blue": 2}
FAST = [*FAST_RUN, "callbacks.step_checkpoint=null"]
SHAPES = {"num_train": 8, "num_val": 4, "image_size": [64, 80], "generator_seed": 5}
# A detector trained for two steps rarely scores a box above torchvision's 0.05: keep every box.
KEEP_ALL_BOXES = ["++model.box_score_thresh=0.0", "++model.box_detections_per_img=5"]


def trained(overrides: list[str], run_dir: Path) -> tuple[Path, list[str]]:
    """A finished run directory (and its overrides): trained in this process, with the composed config
    Hydra's job would save."""
    code, record = run_in_process(overrides, run_dir)
    assert code == 0 and record["status"] == "completed", record.get("error")
    OmegaConf.save(compose(overrides, run_dir=run_dir), run_dir / ".hydra" / "config.yaml")
    return run_dir, overrides


def run_datamodule(overrides: list[str]):
    """The datamodule the run trained with (built from its composed config), its val split set up."""
    from litzoo.platform.registry import build

    cfg = compose(overrides)
    data = build(cfg.data, seed=cfg.seed)
    data.setup("validate")
    return data


def predict_rows(run_dir: Path, inputs: list[str], *options: str) -> list[dict]:
    """Predictions through the command line's in-process entry, read back from its --json lines."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([str(run_dir), *inputs, "--json", *options]) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def quiet_coco(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


# --------------------------------------------------------------------------- classification


def write_imagefolder(root: Path) -> Path:
    """Three colour classes in the ImageFolder layout; non-square files of two sizes, so the eval
    transform's resize and center crop both matter."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 2)):
        for name in CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                height, width = (20, 26) if i % 2 else (24, 19)
                pixels = rng.integers(0, 90, (height, width, 3))
                pixels[..., CHANNELS[name]] += 150
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{name}_{i}.png")
    return root


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], Path]:
    root = write_imagefolder(tmp_path_factory.mktemp("imagefolder") / "data")
    run_dir = tmp_path_factory.mktemp("classifier") / "run"
    overrides = [
        "data=imagefolder",
        f"data.root={root}",
        "data.image_size=16",
        "data.num_workers=0",
        "data.batch_size=6",
        "data.crop_pct=0.8",
        *FAST,
    ]
    return (*trained(overrides, run_dir), root)


def test_classification_predicts_what_the_task_computes_on_the_eval_split(classifier_run) -> None:
    """Image files -> top-k labels equal the model's softmax on the datamodule's eval tensors of those files."""
    run_dir, overrides, _ = classifier_run
    data = run_datamodule(overrides)
    files = [path for path, _ in data.val_set.samples]
    task = litzoo.load(str(run_dir))
    with torch.no_grad():
        expected = task(torch.stack([data.val_set[i][0] for i in range(len(files))])).softmax(dim=-1)

    rows = predict_rows(run_dir, files, "--top-k", "2", "--batch-size", str(len(files)))
    assert [row["input"] for row in rows] == files
    assert [row["label"] for row in rows] == [CLASSES[i] for i in expected.argmax(dim=-1).tolist()]
    for row, probabilities in zip(rows, expected, strict=True):
        top = probabilities.topk(2)
        assert [t["index"] for t in row["top_k"]] == top.indices.tolist()
        assert [t["label"] for t in row["top_k"]] == [CLASSES[i] for i in top.indices.tolist()]
        assert [t["score"] for t in row["top_k"]] == pytest.approx(top.values.tolist(), abs=1e-6)
        assert row["score"] == row["top_k"][0]["score"]
    assert task.hparams["data_info"]["class_names"] == list(CLASSES)
    assert task.hparams["data_info"]["preprocess"] == {
        "mode": "RGB",
        "image_size": 16,
        "crop_pct": 0.8,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }


def test_classification_command_line_prints_and_writes_predictions(classifier_run, tmp_path: Path) -> None:
    """The real `python -m litzoo.predict` in a subprocess: text lines, and --output with the same rows."""
    run_dir, _, root = classifier_run
    files = [str(root / "val" / name / f"{name}_0.png") for name in CLASSES]
    output = tmp_path / "predictions.json"
    result = subprocess.run(
        [sys.executable, "-m", "litzoo.predict", str(run_dir), *files, "--output", str(output)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads(output.read_text())
    expected = predict_rows(run_dir, files)
    assert [row["label"] for row in saved] == [row["label"] for row in expected]
    assert [len(row["top_k"]) for row in saved] == [3, 3, 3]  # default 5, capped at the 3 classes
    for row, probabilities in zip(saved, expected, strict=True):
        assert [t["score"] for t in row["top_k"]] == pytest.approx(
            [t["score"] for t in probabilities["top_k"]], abs=1e-6
        )
    lines = result.stdout.splitlines()
    assert lines == [
        "\t".join([row["input"], *(f"{t['label']} {t['score']:.4f}" for t in row["top_k"])]) for row in saved
    ]
    assert f"Wrote the predictions of 3 input(s) to {output}" in result.stderr


def test_prediction_errors_are_one_paragraph_with_their_exit_code(
    classifier_run, tmp_path: Path, capsys
) -> None:
    run_dir, _, root = classifier_run
    image = str(root / "val" / "red" / "red_0.png")
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("not an image")
    truncated = tmp_path / "truncated.ckpt"  # what a crash while saving leaves
    best = json.loads((run_dir / "run.json").read_text())["best_checkpoint"]
    truncated.write_bytes(Path(best).read_bytes()[:4096])
    plain = tmp_path / "plain.ckpt"
    torch.save({"weights": torch.zeros(2)}, plain)
    listing = tmp_path / "inputs.txt"
    listing.write_text(f"{image}\n\n{image}\n")
    cases = [
        ([str(tmp_path / "nowhere"), image], 4, f"Run directory {tmp_path / 'nowhere'} does not exist"),
        ([str(tmp_path), image], 4, "is not a litzoo run directory: it has no .hydra/config.yaml"),
        ([str(run_dir), image, "--checkpoint", str(truncated)], 4, "is truncated or corrupt"),
        ([str(run_dir), image, "--checkpoint", str(plain)], 4, "is not a litzoo checkpoint"),
        (
            [str(run_dir), image, "--checkpoint", "missing.ckpt"],
            4,
            "does not exist. The run's checkpoints are in",
        ),
        ([str(run_dir), str(not_an_image)], 3, f"Cannot read image {not_an_image}"),
        ([str(run_dir), str(tmp_path / "absent.png")], 3, f"Cannot read image {tmp_path / 'absent.png'}"),
        ([str(run_dir), " "], 3, "Input 1 is empty"),
        ([str(run_dir), "--file", str(listing)], 3, f"{listing}, line 2: empty line"),
        ([str(run_dir), "--file", str(tmp_path / "none.txt")], 3, "Input file"),
        ([str(run_dir), image, "--top-k", "0"], 2, "--top-k 0: give a positive number"),
        ([str(run_dir), image, "--device", "nonsense"], 2, "--device nonsense is not a torch device"),
    ]
    for argv, code, message in cases:
        assert main(argv) == code, argv
        err = capsys.readouterr().err
        assert err.startswith("Error: ") and message in err, (argv, err)
        assert "Traceback" not in err and err.count("\n") == 1, err
    with pytest.raises(SystemExit) as exit_:
        main([str(run_dir), image, "--file", str(listing)])
    assert exit_.value.code == 2 and "not both" in capsys.readouterr().err


def test_input_files_list_one_input_per_line(tmp_path: Path) -> None:
    listing = tmp_path / "inputs.txt"
    listing.write_text("a.png\n  b c.jpg \nfirst\tsecond\n\n", encoding="utf-8")
    assert read_inputs(listing) == ["a.png", "b c.jpg", "first\tsecond"]
    listing.write_text("\n", encoding="utf-8")
    with pytest.raises(litzoo.errors.DataError, match="holds no input to predict"):
        read_inputs(listing)


def test_every_classification_datamodule_records_its_eval_preprocessing() -> None:
    from litzoo.datamodules.classification.digits import DigitsDataModule

    assert DigitsDataModule(image_size=16).info()["preprocess"] == {
        "mode": "L",
        "image_size": 16,
        "crop_pct": 1.0,
        "mean": [0.305],
        "std": [0.376],
    }


def test_restoring_a_run_does_not_need_the_pretrained_files_training_started_from() -> None:
    """The weights come from the checkpoint; only where a file decides the architecture is it kept."""
    from litzoo.tasks.classification import ClassificationTask
    from litzoo.tasks.pose import create_pose_task

    hparams = {"model": {"arch": "resnet18", "pretrained": "/gone/resnet18.pth"}, "data_info": {}}
    assert ClassificationTask.restore_arguments(hparams, None)["model"] == {
        "arch": "resnet18",
        "pretrained": None,
    }
    assert hparams["model"]["pretrained"] == "/gone/resnet18.pth"  # the checkpoint's own dict is left alone
    top_down = {"model": {"pretrained_backbone": "/gone/r18.pth", "input": {"pipeline": "top_down"}}}
    assert create_pose_task.restore_arguments(top_down, None)["model"]["pretrained_backbone"] is None
    rcnn = {"model": {"pretrained_backbone": "/gone/r18.pth", "input": {"pipeline": "full_image"}}}
    assert create_pose_task.restore_arguments(rcnn, None) == rcnn  # frozen batch norm depends on it


# --------------------------------------------------------------------------- detection family


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_shapes_coco(
        tmp_path_factory.mktemp("shapes") / "shapes",
        num_train=SHAPES["num_train"],
        num_val=SHAPES["num_val"],
        image_size=tuple(SHAPES["image_size"]),
        seed=SHAPES["generator_seed"],
    )


def shapes_overrides(root: Path) -> list[str]:
    return [
        f"data.root={root}",
        *(f"data.{k}={v}".replace(" ", "") for k, v in SHAPES.items()),
        "data.batch_size=2",
        *FAST,
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
    ]


def val_files(data) -> tuple[list[str], list[int]]:
    """The val split's image files and COCO image ids, in the dataset's order."""
    base = data.val_set.base if hasattr(data.val_set, "base") else data.val_set
    ids = list(base.ids)
    return [str(base.image_dir / base.coco.imgs[i]["file_name"]) for i in ids], ids


@pytest.fixture(scope="module")
def mask_run(shapes_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    run_dir = tmp_path_factory.mktemp("mask_rcnn") / "run"
    small = ["model.min_size=64", "model.max_size=80"]  # the images' own size: no upsampling inside the model
    return trained(
        ["task=instance_segmentation", *shapes_overrides(shapes_root), *small, *KEEP_ALL_BOXES], run_dir
    )


def check_detections(rows: list[dict], expected: list[dict], task, masks: bool = False) -> None:
    """Prediction rows hold exactly the model's output: xywh boxes, scores, COCO ids, names, RLE masks."""
    category_ids = task.hparams["data_info"]["category_ids"]
    names = task.hparams["data_info"]["class_names"]
    for row, out in zip(rows, expected, strict=True):
        detections = row["detections"]
        assert len(detections) == len(out["boxes"]) > 0
        boxes = out["boxes"].numpy().astype(np.float64)
        assert np.allclose(
            [d["bbox"] for d in detections], np.c_[boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], atol=1e-4
        )
        assert [d["score"] for d in detections] == pytest.approx(out["scores"].tolist(), abs=1e-6)
        assert [d["category_id"] for d in detections] == [category_ids[i - 1] for i in out["labels"].tolist()]
        assert [d["label"] for d in detections] == [names[i] for i in out["labels"].tolist()]
        if masks:
            assert [d["segmentation"] for d in detections] == encode_masks(out["masks"], 0.5)
        assert (row["height"], row["width"]) == tuple(SHAPES["image_size"])


def test_instance_segmentation_predicts_the_models_boxes_and_masks(
    mask_run, shapes_root, tmp_path, capsys
) -> None:
    """Boxes, scores, categories and RLE masks equal Mask R-CNN's output on the datamodule's val images;
    the command line prints one line per image, and its --output file is a COCO results list that
    loadRes reads against the val annotations."""
    mask_run, overrides = mask_run
    data = run_datamodule(overrides)
    files, image_ids = val_files(data)
    task = litzoo.load(str(mask_run))
    with torch.no_grad():
        expected = task([data.val_set[i][0] for i in range(len(files))])
    rows = task.predict_inputs(files, batch_size=len(files))
    check_detections(rows, expected, task, masks=True)
    assert [row["image_id"] for row in rows] == image_ids  # 000000000009.jpg -> 9, COCO's naming
    assert [len(row["detections"]) for row in task.predict_inputs(files[:2], top_k=2)] == [2, 2]

    output = tmp_path / "results.json"
    assert main([str(mask_run), *files, "--batch-size", str(len(files)), "--output", str(output)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [task.format_prediction(row) for row in rows]
    first = rows[0]["detections"][0]
    assert lines[0].startswith(
        f"{files[0]}\t{len(rows[0]['detections'])} detections\t{first['label']} "
        f"{first['score']:.4f} [{', '.join(f'{v:.1f}' for v in first['bbox'])}]\t"
    )
    saved = json.loads(output.read_text())
    assert saved == [{k: v for k, v in d.items() if k != "label"} for row in rows for d in row["detections"]]
    assert {tuple(sorted(a)) for a in saved} == {("bbox", "category_id", "image_id", "score", "segmentation")}
    gt = quiet_coco(shapes_root / "annotations" / "instances_val2017.json")
    with contextlib.redirect_stdout(io.StringIO()):
        results = gt.loadRes(saved)
    assert sorted(results.getImgIds()) == sorted(image_ids)
    assert len(results.getAnnIds()) == len(saved)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("task_name", "model", "kind"),
    [("detection", "faster_rcnn", "bbox"), ("pose", "keypoint_rcnn", "keypoints")],
)
def test_rcnn_detectors_predict_their_outputs(task_name, model, kind, shapes_root, tmp_path) -> None:
    """Faster R-CNN (boxes only) and Keypoint R-CNN (boxes + keypoints) through the same path."""
    run_dir, overrides = trained(
        [
            f"task={task_name}",
            f"model={model}",
            *shapes_overrides(shapes_root),
            "model.min_size=64",
            "model.max_size=80",
            *KEEP_ALL_BOXES,
        ],
        tmp_path / "run",
    )
    data = run_datamodule(overrides)
    files, image_ids = val_files(data)
    task = litzoo.load(str(run_dir))
    with torch.no_grad():
        expected = task([data.val_set[i][0] for i in range(len(files))])
    output = tmp_path / "results.json"
    rows = predict_rows(run_dir, files, "--batch-size", str(len(files)), "--output", str(output))
    check_detections(rows, expected, task)
    keys = {"bbox", "category_id", "image_id", "score"} | ({"keypoints"} if kind == "keypoints" else set())
    saved = json.loads(output.read_text())
    assert {frozenset(d) for d in saved} == {frozenset(keys)}
    if kind == "keypoints":
        for row, out in zip(rows, expected, strict=True):
            got = np.array([d["keypoints"] for d in row["detections"]])
            assert np.allclose(got, out["keypoints"].reshape(len(out["keypoints"]), -1).numpy(), atol=1e-4)
    stem = "person_keypoints" if kind == "keypoints" else "instances"
    with contextlib.redirect_stdout(io.StringIO()):
        results = quiet_coco(shapes_root / "annotations" / f"{stem}_val2017.json").loadRes(saved)
    assert sorted(results.getImgIds()) == sorted(image_ids)


@pytest.fixture(scope="module")
def pose_run(shapes_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    run_dir = tmp_path_factory.mktemp("simple_baseline") / "run"
    return trained(
        ["task=pose", *shapes_overrides(shapes_root), "data.batch_size=4", "model.input.size=[32,32]"],
        run_dir,
    )


def test_top_down_pose_takes_the_whole_image_as_the_person_box(pose_run, shapes_root, tmp_path) -> None:
    """Keypoints equal SimpleBaseline's (flip-tested) decoding of the dataset's own crop of the box
    [0, 0, W, H], mapped back to image pixels; the results file loads as keypoint results."""
    from litzoo.datamodules.detection.coco import CocoTopDownPose

    pose_run, _ = pose_run
    task = litzoo.load(str(pose_run))
    info = task.hparams["data_info"]
    ann_file = shapes_root / "annotations" / "person_keypoints_val2017.json"
    boxes = CocoTopDownPose(ann_file, shapes_root / "val2017")  # the image list, in order
    height, width = SHAPES["image_size"]
    detections = [
        {
            "image_id": i,
            "category_id": info["keypoint_category_id"],
            "bbox": [0, 0, width, height],
            "score": 1.0,
        }
        for i in boxes.base.ids
    ]
    crops = CocoTopDownPose(
        ann_file,
        shapes_root / "val2017",
        input_size=tuple(info["input_size"]),
        heatmap_stride=info["heatmap_stride"],
        detections=detections,
    )
    samples = [crops[i] for i in range(len(crops))]
    targets = {k: torch.stack([t[k] for _, t in samples]) for k in ("center", "scale", "rotation")}
    with torch.no_grad():
        heatmaps = task(torch.stack([image for image, _ in samples]))
    expected = heatmaps_to_image_keypoints(heatmaps, targets["center"], targets["scale"], targets["rotation"])

    files = [str(shapes_root / "val2017" / boxes.coco.imgs[i]["file_name"]) for i in boxes.base.ids]
    output = tmp_path / "keypoints.json"
    rows = predict_rows(pose_run, files, "--batch-size", str(len(files)), "--output", str(output))
    for row, points in zip(rows, expected, strict=True):
        (detection,) = row["detections"]
        assert detection["keypoints"] == pytest.approx(points.reshape(-1).tolist(), abs=1e-4)
        assert detection["bbox"] == [0.0, 0.0, float(width), float(height)]
        assert detection["label"] == "shape" and detection["category_id"] == info["keypoint_category_id"]
        peaks = points[:, 2]
        confident = peaks > 0.2
        assert detection["score"] == pytest.approx(
            float((peaks * confident).sum() / max(int(confident.sum()), 1)), abs=1e-6
        )
    gt = quiet_coco(ann_file)
    with contextlib.redirect_stdout(io.StringIO()):
        results = gt.loadRes(json.loads(output.read_text()))
    assert len(results.getAnnIds()) == len(files)
