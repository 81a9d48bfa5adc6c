"""`python -m litzoo.export`: every exportable task writes a graph that computes what PyTorch computes.

Each test exports a tiny run directory through the command line's in-process entry and then
checks the result independently of the exporter's own parity check: an onnxruntime session of
our own, fed the way preprocessing.json says a deployment should feed it (pixels in [0, 1] for
images: the normalisation must be inside the graph), against the task's forward pass on what
the run's datamodule makes of the same samples.
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


def session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_classification_onnx_has_normalisation_inside_and_dynamic_batch(classifier_run) -> None:
    code, out, err = export(str(classifier_run), "--format", "onnx")
    assert code == 0, err
    folder = classifier_run / "exports" / "onnx"
    record = read_json(folder / "export.json")
    assert record["parity"]["passed"] and record["parity"]["split"] == "val"
    assert sorted(set(record["parity"]["batch_sizes"])) == [1, 16]
    assert record["parity"]["max_abs_diff"] < 1e-4
    assert "Parity vs PyTorch eager" in out and "passed" in out

    task = litzoo.load(classifier_run)
    spec = task.hparams["data_info"]["preprocess"]
    pre = read_json(folder / "preprocessing.json")
    assert pre["normalize"] == {"mean": spec["mean"], "std": spec["std"], "in_graph": True}
    assert pre["input"]["center_crop"] == 16 and pre["labels"] == [str(i) for i in range(10)]

    # Independent check: pixels in [0, 1] into our own session == the task on the normalised batch.
    data = build_datamodule(RunDir(classifier_run))
    images, _ = next(iter(split_batches(data, "test")))
    mean = torch.tensor(spec["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(spec["std"]).view(1, -1, 1, 1)
    pixels = (images * std + mean).numpy()
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6
    with torch.no_grad():
        expected = task(images).numpy()
    for rows in (slice(0, 3), slice(0, len(pixels))):  # two batch sizes through one graph
        (got,) = session(folder / "model.onnx").run(None, {"images": pixels[rows]})
        np.testing.assert_allclose(got, expected[rows], atol=1e-4, rtol=1e-3)

    entry = read_json(classifier_run / "run.json")["exports"]["onnx"]
    assert entry["parity_passed"] is True and entry["export_json"] == str(folder / "export.json")
    assert read_json(classifier_run / "run.json")["status"] == "completed"  # the record is otherwise intact


@pytest.mark.slow
def test_classification_torchscript_and_exported_program(classifier_run, tmp_path) -> None:
    task = litzoo.load(classifier_run)
    images, _ = next(iter(split_batches(build_datamodule(RunDir(classifier_run)), "val")))
    preprocess = task.hparams["data_info"]["preprocess"]
    pixels = images * torch.tensor(preprocess["std"]).view(1, -1, 1, 1) + torch.tensor(
        preprocess["mean"]
    ).view(1, -1, 1, 1)
    with torch.no_grad():
        expected = task(images)
    for fmt, name, load in (
        ("torchscript", "model.torchscript.pt", lambda p: torch.jit.load(str(p))),
        ("exported-program", "model.pt2", lambda p: torch.export.load(str(p)).module()),
    ):
        code, _, err = export(str(classifier_run), "--format", fmt, "-o", str(tmp_path / fmt))
        assert code == 0, err
        assert read_json(tmp_path / fmt / "export.json")["parity"]["passed"]
        model = load(tmp_path / fmt / name)
        with torch.no_grad():
            torch.testing.assert_close(model(pixels[:5]), expected[:5], atol=1e-5, rtol=1e-4)
    exports = read_json(classifier_run / "run.json")["exports"]
    assert {"torchscript", "exported-program"} <= set(exports)


def test_text_classification_onnx_takes_any_batch_and_sequence_length(textcnn_run) -> None:
    code, _, err = export(str(textcnn_run), "--format", "onnx")
    assert code == 0, err
    folder = textcnn_run / "exports" / "onnx"
    record = read_json(folder / "export.json")
    assert record["parity"]["passed"] and len(set(record["parity"]["batch_sizes"])) >= 2
    assert record["inputs"] == {"input_ids": {"0": "batch", "1": "sequence"}, "length": {"0": "batch"}}
    assert (folder / "vocab.json").read_bytes() == (textcnn_run / "vocab.json").read_bytes()
    pre = read_json(folder / "preprocessing.json")
    assert pre["tokenizer"]["kind"] == "vocab" and pre["labels"] == ["negative", "positive"]

    task = litzoo.load(textcnn_run)
    graph = session(folder / "model.onnx")
    lengths = set()
    for batch in split_batches(build_datamodule(RunDir(textcnn_run)), "test"):
        with torch.no_grad():
            expected = task(batch).numpy()
        (got,) = graph.run(None, {"input_ids": batch["input_ids"].numpy(), "length": batch["length"].numpy()})
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-3)
        lengths.add(batch["input_ids"].shape[1])
        if len(lengths) >= 3:
            break
    assert len(lengths) >= 3  # three padded lengths through one graph
