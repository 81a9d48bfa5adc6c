"""Semantic segmentation and question answering export (slow: a training run each, then the exports).

As in test_export_parity.py, the graphs are checked with our own onnxruntime session against the
task's forward pass on the run's own data, beyond the exporter's own parity check.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

import litzoo
from litzoo.export.data import build_datamodule, split_batches
from litzoo.platform.run_dir import RunDir

from .conftest import export, read_json

pytestmark = pytest.mark.slow


def test_segmentation_onnx_takes_any_batch_and_image_size(segmentation_run) -> None:
    code, _, err = export(str(segmentation_run), "--format", "onnx")
    assert code == 0, err
    folder = segmentation_run / "exports" / "onnx"
    record = read_json(folder / "export.json")
    assert record["parity"]["passed"] and sorted(set(record["parity"]["batch_sizes"]))[-1] >= 2
    task = litzoo.load(segmentation_run)
    mean = torch.tensor(task.data_info["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(task.data_info["std"]).view(1, -1, 1, 1)
    images, _ = next(iter(split_batches(build_datamodule(RunDir(segmentation_run)), "val")))
    image = images[0][None] if not isinstance(images, torch.Tensor) else images[:1]
    graph = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    for batch in (image, torch.cat([image, image.flip(-1)]), image[..., :40, :56]):  # sizes and batch vary
        with torch.no_grad():
            expected = task(batch).numpy()
        (got,) = graph.run(None, {"images": (batch * std + mean).numpy()})
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-3)
    assert read_json(folder / "preprocessing.json")["class_names"] == task.class_names
    for fmt in ("torchscript", "exported-program"):
        code, _, err = export(str(segmentation_run), "--format", fmt)
        assert code == 0, err


def test_question_answering_onnx_and_dynamic_int8(qa_run, tmp_path) -> None:
    code, _, err = export(str(qa_run), "--format", "onnx", "--int8", "--latency-seconds", "0.05")
    assert code == 0, err
    folder = qa_run / "exports" / "onnx"
    record = read_json(folder / "export.json")
    assert record["parity"]["passed"] and record["int8"]["method"] == "dynamic"
    assert "accuracy" not in record["int8"]  # spans are scored by EM/F1, not by argmax accuracy
    assert (folder / "tokenizer" / "tokenizer.json").is_file() or (
        folder / "tokenizer" / "vocab.txt"
    ).is_file()
    task = litzoo.load(qa_run)
    names = record["inputs"]
    graph = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    batch = next(iter(split_batches(build_datamodule(RunDir(qa_run)), "val")))
    for rows in (slice(0, 1), slice(0, None)):
        with torch.no_grad():
            start, end = task({k: v[rows] for k, v in batch.items() if isinstance(v, torch.Tensor)})
        got_start, got_end = graph.run(None, {n: batch[n][rows].numpy() for n in names})
        np.testing.assert_allclose(got_start, start.numpy(), atol=1e-4, rtol=1e-3)
        np.testing.assert_allclose(got_end, end.numpy(), atol=1e-4, rtol=1e-3)
