"""SSD300-VGG16 and SSDlite320-MobileNetV3: torchvision's networks, local weights, config checks, a run.

The builders assemble torchvision's modules themselves (torchvision's own builders only take weights
they download), so the first test holds them to torchvision's: the same tensors, in the same order,
with the same initial values at the same seed, and the same detections.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import CONFIG_DIR, compose, run_in_process
from omegaconf import OmegaConf
from torchvision.models import mobilenet_v3_large
from torchvision.models.detection import ssd300_vgg16, ssdlite320_mobilenet_v3_large
from torchvision.models.vgg import cfgs, make_layers

from litzoo.errors import ConfigError, DependencyError
from litzoo.models.detection_ssd import build_ssd300_vgg16, build_ssdlite320_mobilenet_v3
from litzoo.platform.validate import validate

from .test_detection_tasks import shapes_overrides

BUILDERS = {
    "ssd300_vgg16": (build_ssd300_vgg16, ssd300_vgg16, 300),
    "ssdlite320_mobilenet_v3": (build_ssdlite320_mobilenet_v3, ssdlite320_mobilenet_v3_large, 320),
}
# Anchors per location of each feature map (torchvision: 4 or 6 for SSD300, 6 for SSDlite).
ANCHORS = {"ssd300_vgg16": [4, 6, 6, 6, 4, 4], "ssdlite320_mobilenet_v3": [6] * 6}


def classifier_out_channels(model: torch.nn.Module) -> list[int]:
    """Output channels of the classification head's last convolution on each feature map."""
    convs = [m for m in model.head.classification_head.module_list]
    return [(c if isinstance(c, torch.nn.Conv2d) else c[-1]).out_channels for c in convs]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_builder_is_torchvisions_network_at_the_same_seed(name):
    ours, theirs, size = BUILDERS[name]
    torch.manual_seed(0)
    model = ours(num_classes=5, image_size=size)
    torch.manual_seed(0)
    reference = theirs(weights=None, weights_backbone=None, num_classes=5)
    mine, expected = model.state_dict(), reference.state_dict()
    assert list(mine) == list(expected)
    assert all(torch.equal(mine[k], expected[k]) for k in mine)
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in reference.parameters())
    assert count == {"ssd300_vgg16": 24_146_894, "ssdlite320_mobilenet_v3": 2_248_100}[name]
    assert classifier_out_channels(model) == [5 * a for a in ANCHORS[name]]  # background + 4 classes
    model.eval(), reference.eval()
    images = [torch.rand(3, 96, 128)]
    with torch.no_grad():
        got, want = model(images)[0], reference(images)[0]
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)


def test_ssd300_at_another_size_keeps_the_weights_and_follows_the_feature_maps():
    model = build_ssd300_vgg16(num_classes=5, image_size=268)
    assert model.transform.fixed_size == (268, 268)
    assert model.anchor_generator.steps is None  # torchvision's pixel steps are for 300 px only
    assert sum(p.numel() for p in model.parameters()) == 24_146_894  # as at 300 px (the test above)
    model.eval()
    with torch.no_grad():
        features = model.backbone(torch.zeros(1, 3, 268, 268))
    assert [f.shape[-1] for f in features.values()] == [34, 17, 9, 5, 3, 1]  # 38, 19, 10, 5, 3, 1 at 300


@pytest.fixture(scope="module")
def saved_ssdlite(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    """An SSDlite for 4 classes (3 + background), its state dict saved to a file."""
    torch.manual_seed(1)
    model = build_ssdlite320_mobilenet_v3(num_classes=4, image_size=128).eval()
    path = tmp_path_factory.mktemp("ssd") / "ssdlite.pth"
    torch.save(model.state_dict(), path)
    return path, model


def test_weights_path_round_trip_gives_identical_detections(saved_ssdlite):
    path, model = saved_ssdlite
    torch.manual_seed(2)  # another initialisation, replaced by the file's
    loaded = build_ssdlite320_mobilenet_v3(num_classes=4, image_size=128, weights_path=str(path)).eval()
    images = [torch.rand(3, 96, 128), torch.rand(3, 128, 80)]
    with torch.no_grad():
        expected, got = model(images), loaded(images)
    for e, g in zip(expected, got, strict=True):
        assert e.keys() == g.keys() and all(torch.equal(e[k], g[k]) for k in e)
    assert len(expected[0]["boxes"]) > 0  # untrained, score threshold 0.001: there are boxes to compare


def test_another_number_of_classes_loads_everything_but_the_class_scores(saved_ssdlite, caplog):
    path, model = saved_ssdlite
    loaded = build_ssdlite320_mobilenet_v3(num_classes=7, image_size=128, weights_path=str(path))
    fresh = {f"head.classification_head.module_list.{i}.1.{p}" for i in range(6) for p in ("weight", "bias")}
    assert f"12 tensor(s) kept their fresh initialisation: {', '.join(sorted(fresh)[:8])}, ..." in caplog.text
    saved, now = model.state_dict(), loaded.state_dict()
    assert all(torch.equal(saved[k], now[k]) for k in saved if k not in fresh)
    assert all(now[k].shape[0] == saved[k].shape[0] // 4 * 7 for k in fresh)


def test_a_pretrained_vgg16_fills_the_backbone_and_freezes_the_first_stage(tmp_path):
    torch.manual_seed(3)
    features = make_layers(cfgs["D"])  # VGG16's `features` (its classifier is not used by SSD)
    path = tmp_path / "vgg16_features.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    model = build_ssd300_vgg16(num_classes=3, pretrained_backbone=str(path))
    # VGG's features up to conv4_3 are SSD's `features`; conv5 (after maxpool4, index 23) starts extra.0.
    assert torch.equal(model.backbone.features[0].weight, features[0].weight)
    assert torch.equal(model.backbone.features[21].weight, features[21].weight)
    assert torch.equal(model.backbone.extra[0][1].weight, features[24].weight)
    assert torch.equal(model.backbone.extra[0][5].bias, features[28].bias)  # conv5_3
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen == ["backbone.features.0.weight", "backbone.features.0.bias"] + [
        "backbone.features.2.weight",
        "backbone.features.2.bias",
    ]  # trainable_layers=4 of 5: conv1_1 and conv1_2 frozen, as in Caffe's SSD


def test_a_pretrained_mobilenet_v3_keeps_the_full_tail(tmp_path):
    torch.manual_seed(4)
    backbone = mobilenet_v3_large(weights=None)
    path = tmp_path / "mobilenet_v3_large.pth"
    torch.save(backbone.state_dict(), path)
    model = build_ssdlite320_mobilenet_v3(num_classes=3, image_size=128, pretrained_backbone=str(path))
    assert torch.equal(model.backbone.features[0][0][0].weight, backbone.features[0][0].weight)
    assert torch.equal(model.backbone.features[1][-1][0].weight, backbone.features[-1][0].weight)
    assert model.backbone.features[1][-1][0].out_channels == 960  # the reduced tail would have 480
    assert all(p.requires_grad for p in model.parameters())  # torchvision: all 6 stages train


@pytest.mark.parametrize("name", list(BUILDERS))
def test_a_missing_weights_file_is_named_before_anything_is_built(name, tmp_path):
    missing = tmp_path / "nowhere" / "backbone.pth"
    overrides = ["task=detection", f"model={name}", f"model.pretrained_backbone={missing}"]
    with pytest.raises(DependencyError) as error:
        validate(compose(overrides), [CONFIG_DIR])
    message = str(error.value)
    assert message.startswith(
        f"model.pretrained_backbone={missing} does not exist. Weights are never downloaded"
    )
    assert "model.pretrained_backbone=null" in message and "\n" not in message
    ours = BUILDERS[name][0]
    with pytest.raises(DependencyError, match=f"model.weights_path={tmp_path / 'w.pth'} does not exist"):
        ours(num_classes=3, image_size=300, weights_path=tmp_path / "w.pth")


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (
            ["model=ssd300_vgg16", "model.image_size=256"],
            r"model.image_size=256 is too small for ssd300_vgg16",
        ),
        (["model=ssdlite320_mobilenet_v3", "model.image_size=16"], r"at least 32 px"),
        (["model=ssd300_vgg16", "model.trainable_layers=6"], r"between 0 and 5"),
    ],
)
def test_impossible_values_are_refused_during_validation(overrides, match):
    with pytest.raises(ConfigError, match=match):
        validate(compose(["task=detection", *overrides]), [CONFIG_DIR])


# --------------------------------------------------------------------------- through the platform

SHORT_RUN = [
    "task=detection",
    "model=ssdlite320_mobilenet_v3",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "callbacks.step_checkpoint=null",
    "data.batch_size=4",
    "++model.detections_per_img=20",
]


def epoch_losses(run_dir: Path) -> list[float]:
    """`train/loss_epoch` of each epoch, from the run's metrics.csv."""
    import csv

    rows = csv.DictReader((run_dir / "metrics.csv").open())
    return [float(r["train/loss_epoch"]) for r in rows if r.get("train/loss_epoch")]


@pytest.fixture(scope="module")
def ssdlite_run(shapes_root, tmp_path_factory) -> tuple[Path, dict]:
    """SSDlite (128 px) trained for two epochs on the session's 24 shapes (6 batches of 4 each)."""
    run_dir = tmp_path_factory.mktemp("ssdlite") / "run"
    overrides = [*SHORT_RUN, *shapes_overrides(shapes_root), "trainer.max_epochs=2"]
    code, record = run_in_process(overrides, run_dir)
    assert code == 0 and record["status"] == "completed", record.get("error")
    OmegaConf.save(compose(overrides, run_dir=run_dir), run_dir / ".hydra" / "config.yaml")
    return run_dir, record


# About 25 s alone on the 2-core machine (four minutes measured while it was shared three ways).
@pytest.mark.slow
def test_ssdlite_trains_on_the_shapes_through_the_platform(ssdlite_run):
    """SSD's multibox loss (hard-negative-mined cross-entropy + smooth L1 over the matched default
    boxes) falls from the first epoch to the second (12.05 -> 10.67 measured), and the test metrics
    and saved detections are COCOeval's."""
    run_dir, record = ssdlite_run
    first, second = epoch_losses(run_dir)
    assert second < 0.95 * first, (first, second)
    assert {"test/map", "test/map_50", "test/mar_100"} <= set(record["metrics"])
    assert all(0.0 <= v <= 1.0 or v == -1.0 for v in record["metrics"].values())
    saved = json.loads((run_dir / "detections_test.json").read_text())
    assert len(saved) == 4 * 20  # one test batch of 4 images, 20 detections each


def onnx_outputs(graph, image: torch.Tensor) -> list:
    return graph.run(None, {"image": image.as_subclass(torch.Tensor).numpy()})


@pytest.mark.slow
def test_trained_ssdlite_exports_to_onnx_with_parity_for_a_batch_of_two(ssdlite_run):
    """python -m litzoo.export: torchvision's SSD graph (fixed-size resize, head, decoding, per-class
    NMS, top-k) matches eager on the val images and a blank one; a batch of two, run image by image
    through the graph, gives what the batched eager forward gives."""
    import numpy as np
    import onnxruntime as ort

    import litzoo
    from litzoo.export.data import build_datamodule, split_batches
    from litzoo.platform.run_dir import RunDir

    run_dir, _ = ssdlite_run
    code, _, err = export(str(run_dir), "--format", "onnx")
    assert code == 0, err
    folder = run_dir / "exports" / "onnx"
    record = json.loads((folder / "export.json").read_text())
    assert record["parity"]["passed"], record["parity"]
    assert record["parity"]["outputs"]["boxes"]["elements"] > 0
    task = litzoo.load(run_dir)
    images, _ = next(iter(split_batches(build_datamodule(RunDir(run_dir)), "val")))
    images = [image.as_subclass(torch.Tensor) for image in images[:2]]
    with torch.no_grad():
        batched = task(images)
    graph = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    for image, expected in zip(images, batched, strict=True):
        boxes, labels, scores = onnx_outputs(graph, image)
        assert len(boxes) == len(expected["boxes"]) == 20
        np.testing.assert_allclose(boxes, expected["boxes"].numpy(), atol=0.1, rtol=1e-3)
        np.testing.assert_array_equal(labels, expected["labels"].numpy())
        np.testing.assert_allclose(scores, expected["scores"].numpy(), atol=1e-3, rtol=1e-3)


@pytest.mark.slow
def test_an_ssd_with_no_detections_exports_and_returns_empty_outputs(ssdlite_run, tmp_path):
    """The same weights with score threshold 1.0 (softmax scores stay below it): no image has a detection,
    and the graph returns [0, 4] boxes rather than failing."""
    import onnxruntime as ort

    from litzoo.platform.checkpointing import load_checkpoint_file
    from litzoo.platform.run_dir import RunDir

    trained, _ = ssdlite_run
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir, ignore=shutil.ignore_patterns("exports"))
    checkpoint = run_dir / "checkpoints" / RunDir(trained).checkpoint().name
    state = load_checkpoint_file(checkpoint)
    state["hyper_parameters"]["model"]["score_thresh"] = 1.0
    torch.save(state, checkpoint)
    record = json.loads((run_dir / "run.json").read_text())
    record["best_checkpoint"] = str(checkpoint)
    (run_dir / "run.json").write_text(json.dumps(record))
    code, _, err = export(str(run_dir), "--format", "onnx")
    assert code == 0, err
    result = json.loads((run_dir / "exports" / "onnx" / "export.json").read_text())
    assert result["parity"]["passed"] and result["parity"]["outputs"]["boxes"]["elements"] == 0
    graph = ort.InferenceSession(
        str(run_dir / "exports" / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    boxes, labels, scores = onnx_outputs(graph, torch.rand(3, 96, 128))
    assert boxes.shape == (0, 4) and labels.shape == (0,) and scores.shape == (0,)


def export(*argv: str) -> tuple[int, str, str]:
    """`python -m litzoo.export <argv>` in this process: (exit code, stdout, stderr)."""
    import contextlib
    import io

    from litzoo.export.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()
