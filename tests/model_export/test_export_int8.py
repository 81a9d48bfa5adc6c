"""`--int8`: an int8 ONNX model beside the fp32 one, fp32 vs int8 latency and test accuracy side by side.

The accuracies the exporter reports are checked against our own count over the run's test split
(the task's forward pass, argmax vs label) and, for a run tested on its whole split, against the
run's own logged test accuracy; int8 must stay within bounds of fp32 on that split.
"""

from __future__ import annotations

import collections

import onnx
import pytest
import torch

import litzoo
from litzoo.export.data import build_datamodule, split_batches
from litzoo.platform.run_dir import RunDir

from .conftest import FAST, export, read_json, trained


def own_accuracy(run_dir, forward, labels_of) -> tuple[float, int]:
    task = litzoo.load(run_dir)
    correct = total = 0
    for batch in split_batches(build_datamodule(RunDir(run_dir)), "test"):
        with torch.no_grad():
            predicted = forward(task, batch).argmax(-1)
        labels = labels_of(batch)
        correct += int((predicted == labels).sum())
        total += len(labels)
    return correct / total, total


def ops(path) -> collections.Counter:
    return collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def test_dynamic_int8_text_classifier(textcnn_run, tmp_path) -> None:
    out = tmp_path / "int8"
    code, stdout, err = export(str(textcnn_run), "--int8", "--latency-seconds", "0.05", "-o", str(out))
    assert code == 0, err
    int8 = read_json(out / "export.json")["int8"]
    assert int8["method"] == "dynamic" and (out / "model.int8.onnx").is_file()
    assert ops(out / "model.int8.onnx")["DynamicQuantizeLinear"] > 0
    accuracy, samples = own_accuracy(
        textcnn_run, lambda task, batch: task(batch), lambda batch: batch["label"]
    )
    assert int8["accuracy"]["samples"] == samples
    assert int8["accuracy"]["pytorch_eager"] == pytest.approx(accuracy, abs=1e-6)
    assert int8["accuracy"]["onnx_fp32"] == pytest.approx(accuracy, abs=1e-6)
    assert abs(int8["accuracy"]["onnx_int8"] - accuracy) <= 0.05
    for batch in ("batch_1", "batch_8"):
        assert set(int8["latency_ms"][batch]) == {"pytorch_eager", "onnx_fp32", "onnx_int8"}
        assert all(value > 0 for value in int8["latency_ms"][batch].values())
    assert "ORT int8" in stdout and "accuracy" in stdout
    assert read_json(textcnn_run / "run.json")["exports"]["onnx"]["int8"]["method"] == "dynamic"


def test_static_int8_cnn_is_calibrated_on_the_val_split(classifier_run, tmp_path) -> None:
    out = tmp_path / "int8"
    code, _, err = export(
        str(classifier_run),
        "--int8",
        "--calibration-samples",
        "32",
        "--latency-seconds",
        "0.05",
        "-o",
        str(out),
    )
    assert code == 0, err
    int8 = read_json(out / "export.json")["int8"]
    assert int8["method"] == "static" and int8["format"] == "QDQ"
    assert int8["calibration"] == {"split": "val", "samples": 32}
    assert ops(out / "model.int8.onnx")["QuantizeLinear"] >= 10  # activations quantized, not only weights
    accuracy, samples = own_accuracy(
        classifier_run, lambda task, batch: task(batch[0]), lambda batch: batch[1]
    )
    assert int8["accuracy"]["samples"] == samples == 270  # the digits' whole test split
    assert int8["accuracy"]["pytorch_eager"] == pytest.approx(accuracy, abs=1e-6)
    assert int8["size_mb"]["onnx_int8"] < 0.3 * int8["size_mb"]["onnx_fp32"]


@pytest.mark.slow
def test_static_int8_of_a_trained_cnn_keeps_its_accuracy(tmp_path) -> None:
    """ResNet-18 trained on the digits (32 px) to a real accuracy: int8 within 1 point of fp32, and the
    exporter's eager accuracy is the run's own logged test/acc_top1."""
    run_dir = trained(
        [
            *FAST,
            "trainer.max_epochs=3",
            "trainer.limit_train_batches=null",
            "trainer.limit_val_batches=null",
            "trainer.limit_test_batches=null",
            "data.num_workers=0",
        ],
        tmp_path / "run",
    )
    logged = read_json(run_dir / "run.json")["metrics"]["test/acc_top1"]
    assert logged > 0.8
    code, stdout, err = export(str(run_dir), "--int8")
    assert code == 0, err
    int8 = read_json(run_dir / "exports" / "onnx" / "export.json")["int8"]
    print(stdout)
    assert int8["accuracy"]["pytorch_eager"] == pytest.approx(logged, abs=1e-6)
    assert int8["accuracy"]["onnx_fp32"] == pytest.approx(logged, abs=1e-6)
    assert int8["accuracy"]["int8_minus_fp32_points"] >= -1.0
