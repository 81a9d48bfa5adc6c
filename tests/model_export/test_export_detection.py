"""Detection export: torchvision's known ONNX breakages (batch > 1, an image with no detections) pass.

The graph takes one image of any size per call and returns N >= 0 detections. Checked here, with
our own onnxruntime session: the images of a batch of two, run one by one through the graph, give
what the task's batched eager forward gives; a blank image of another size goes through; and a
model that keeps no detection at all (its score threshold at 1.0, the same weights) exports, passes
parity and returns empty ``[0, 4]`` boxes instead of failing.
"""

from __future__ import annotations

import shutil

import numpy as np
import onnxruntime as ort
import pytest
import torch

import litzoo
from litzoo.export.data import build_datamodule, split_batches
from litzoo.platform.checkpointing import load_checkpoint_file
from litzoo.platform.run_dir import RunDir

from .conftest import export, read_json

# Two detector exports of about 20 s each on a quiet machine (70 s measured on the loaded one).
pytestmark = pytest.mark.slow


def run_graph(graph: ort.InferenceSession, image: torch.Tensor) -> list[np.ndarray]:
    return graph.run(None, {"image": image.numpy()})


def test_detection_onnx_batch_of_two_and_a_blank_image(detector_run) -> None:
    code, _, err = export(str(detector_run), "--format", "onnx")
    assert code == 0, err
    folder = detector_run / "exports" / "onnx"
    record = read_json(folder / "export.json")
    assert record["parity"]["passed"] and record["parity"]["calls"] == 3 + 1  # 3 val images + the blank one
    assert record["outputs"] == {name: {"0": "detections"} for name in ("boxes", "labels", "scores")}
    pre = read_json(folder / "preprocessing.json")
    assert (
        pre["class_names"][0] == "__background__" or len(pre["class_names"]) == len(pre["category_ids"]) + 1
    )

    task = litzoo.load(detector_run)
    images, _ = next(iter(split_batches(build_datamodule(RunDir(detector_run)), "val")))
    images = [image.as_subclass(torch.Tensor) for image in images]
    assert len(images) == 2
    with torch.no_grad():
        batched = task(images)  # eager on the batch of two
    graph = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    for image, expected in zip(images, batched, strict=True):
        boxes, labels, scores = run_graph(graph, image)
        assert len(boxes) == len(expected["boxes"]) > 0
        np.testing.assert_allclose(boxes, expected["boxes"].numpy(), atol=0.1, rtol=1e-3)
        np.testing.assert_array_equal(labels, expected["labels"].numpy())
        np.testing.assert_allclose(scores, expected["scores"].numpy(), atol=1e-3, rtol=1e-3)
    boxes, labels, scores = run_graph(
        graph, torch.zeros(3, 50, 70)
    )  # neither the split's nor the blank's size
    with torch.no_grad():
        expected = task([torch.zeros(3, 50, 70)])[0]
    assert boxes.shape == tuple(expected["boxes"].shape)


def test_detection_with_no_detections_exports_and_returns_empty_outputs(detector_run, tmp_path) -> None:
    """The same weights with score threshold 1.0 (softmax scores never exceed it): every image has none."""
    run_dir = tmp_path / "run"
    shutil.copytree(detector_run, run_dir, ignore=shutil.ignore_patterns("exports"))
    record = read_json(run_dir / "run.json")
    checkpoint = run_dir / "checkpoints" / RunDir(detector_run).checkpoint().name
    state = load_checkpoint_file(checkpoint)
    state["hyper_parameters"]["model"]["box_score_thresh"] = 1.0
    torch.save(state, checkpoint)
    record["best_checkpoint"] = str(checkpoint)
    (run_dir / "run.json").write_text(__import__("json").dumps(record))

    code, _, err = export(str(run_dir), "--format", "onnx")
    assert code == 0, err
    result = read_json(run_dir / "exports" / "onnx" / "export.json")
    assert result["parity"]["passed"] and result["parity"]["outputs"]["boxes"]["elements"] == 0
    graph = ort.InferenceSession(
        str(run_dir / "exports" / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    images, _ = next(iter(split_batches(build_datamodule(RunDir(run_dir)), "val")))
    for image in images:
        boxes, labels, scores = run_graph(graph, image.as_subclass(torch.Tensor))
        assert boxes.shape == (0, 4) and labels.shape == (0,) and scores.shape == (0,)
