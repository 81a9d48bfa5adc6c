"""int8 with onnxruntime: quantize the fp32 ONNX export, then measure both side by side.

- ``dynamic`` (transformers, LSTMs: ``ExportSpec.int8 == "dynamic"``): ``quantize_dynamic``, int8
  weights, activations quantized on the fly per batch; no data needed.
- ``static`` (CNNs): ``quantize_static`` in QDQ format, per-channel int8 weights, uint8 activations
  with ranges calibrated (MinMax) on the run's own val split through a ``CalibrationDataReader``.

Both start from ``quant_pre_process`` (shape inference, graph optimisation: batch-norm folding).
Measured, on CPU with ``--threads`` threads (1 by default: the number the latency goal is about
and the one a loaded machine can hold steady): median latency at batch 1 and 8 for PyTorch eager,
ONNX Runtime fp32 and ONNX Runtime int8, on real test inputs; and top-1 accuracy of all three on
the run's test split (``--accuracy-samples`` to cap it).
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from litzoo.errors import ConfigError
from litzoo.export import formats
from litzoo.export.data import split_batches

INT8_FILE = "model.int8.onnx"


class CallsReader:
    """onnxruntime's ``CalibrationDataReader`` protocol over a list of export calls."""

    def __init__(self, calls: Sequence[Sequence[torch.Tensor]], input_names: Sequence[str]) -> None:
        self.feeds = [{n: t.numpy() for n, t in zip(input_names, call)} for call in calls]
        self.position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= len(self.feeds):
            return None
        self.position += 1
        return self.feeds[self.position - 1]

    def rewind(self) -> None:
        self.position = 0


def quantize(method: str, fp32: Path, target: Path, reader: CallsReader | None) -> dict[str, Any]:
    """Write the int8 model; returns how it was made."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32, target = fp32.resolve(), target.resolve()
    prepared = target.with_name("model.prep.onnx")
    # Symbolic shape inference leaves its temporary files (sym_shape_infer_temp.onnx, <uuid>.data) in the
    # working directory when it gives up: run it in a scratch folder beside the export, removed after.
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch, contextlib.chdir(scratch):
        try:
            quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=False)
        except Exception:  # symbolic shape inference gives up on some graphs; ONNX's own still runs
            quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    try:
        if method == "dynamic":
            quantize_dynamic(str(prepared), str(target), weight_type=QuantType.QInt8)
            return {"method": "dynamic", "weights": "int8 per tensor", "activations": "uint8, dynamic ranges"}
        assert reader is not None
        quantize_static(
            str(prepared),
            str(target),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        return {
            "method": "static",
            "format": "QDQ",
            "weights": "int8 per channel",
            "activations": "uint8, MinMax-calibrated",
            "calibration": {
                "split": "val",
                "samples": sum(len(next(iter(f.values()))) for f in reader.feeds),
            },
        }
    finally:
        prepared.unlink(missing_ok=True)


def latency_ms(
    run: Callable[[], Any], budget_s: float = 1.5, min_runs: int = 5, max_runs: int = 200
) -> tuple[float, float]:
    """Median wall time and median process CPU time (all threads) of `run`, in milliseconds, after two
    warm-up calls. On a machine shared with other jobs the wall clock also measures the neighbours;
    CPU time measures the work."""
    run(), run()
    wall: list[float] = []
    cpu: list[float] = []
    started = time.perf_counter()
    while len(wall) < max_runs and (len(wall) < min_runs or time.perf_counter() - started < budget_s):
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return 1000 * statistics.median(wall), 1000 * statistics.median(cpu)


def batch_of(calls: Sequence[Sequence[torch.Tensor]], size: int) -> tuple[torch.Tensor, ...]:
    """`size` samples from the first calls (repeated if the split is smaller), as one call."""
    first = calls[0]
    if first[0].shape[0] >= size:
        return tuple(t[:size] for t in first)
    repeats = -(-size // int(first[0].shape[0]))
    return tuple(torch.cat([t] * repeats)[:size] for t in first)


def accuracy(predict: Callable[[Sequence[torch.Tensor]], np.ndarray], calls: list, labels: list) -> float:
    correct = total = 0
    for call, label in zip(calls, labels):
        logits = predict(call)
        correct += int((np.asarray(logits).argmax(-1) == label.numpy()).sum())
        total += len(label)
    return correct / max(total, 1)


def quantize_and_measure(
    spec: Any,
    fp32: Path,
    datamodule: Any,
    val_calls: list,
    options: Any,
    out: Path,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    if spec.int8 is None:
        raise ConfigError("This task's model has no int8 path (ExportSpec.int8 is None); leave --int8 out.")
    torch.set_num_threads(options.threads)
    target = out / INT8_FILE
    reader = None
    if spec.int8 == "static":
        from litzoo.export.run import real_calls

        calibration, _ = real_calls(spec, split_batches(datamodule, "val"), options.calibration_samples)
        reader = CallsReader(calibration, spec.input_names)
    log(f"Quantizing to int8 ({spec.int8}) ...")
    how = quantize(spec.int8, fp32, target, reader)
    eager = formats.eager_runner(spec.module)
    fp32_run = formats.onnx_runner(fp32, spec.input_names, options.threads)
    int8_run = formats.onnx_runner(target, spec.input_names, options.threads)
    runners = {"pytorch_eager": eager, "onnx_fp32": fp32_run, "onnx_int8": int8_run}

    from litzoo.export.run import real_calls

    limit = options.accuracy_samples or 10**9
    test_calls, test_labels = real_calls(spec, split_batches(datamodule, "test"), limit)
    if options.accuracy_samples:  # the last batch may overshoot the cap: trim it
        seen = 0
        for i, (call, label) in enumerate(zip(test_calls, test_labels)):
            keep = max(0, min(len(label), limit - seen))
            test_calls[i], test_labels[i], seen = tuple(t[:keep] for t in call), label[:keep], seen + keep
    latency: dict[str, dict[str, float]] = {}
    cpu: dict[str, dict[str, float]] = {}
    for size in (1, 8):
        inputs = batch_of(test_calls or val_calls, size)
        latency[f"batch_{size}"], cpu[f"batch_{size}"] = {}, {}
        for name, run in runners.items():
            wall_ms, cpu_ms = latency_ms(lambda run=run, x=inputs: run(x), options.latency_seconds)
            latency[f"batch_{size}"][name], cpu[f"batch_{size}"][name] = round(wall_ms, 3), round(cpu_ms, 3)
    result: dict[str, Any] = {
        "file": target.name,
        **how,
        "threads": options.threads,
        "latency_ms": latency,
        "cpu_ms": cpu,
        "int8_vs_fp32_latency": {
            b: round(v["onnx_int8"] / v["onnx_fp32"], 3) for b, v in latency.items() if v["onnx_fp32"] > 0
        },
        "int8_vs_fp32_cpu": {
            b: round(v["onnx_int8"] / v["onnx_fp32"], 3) for b, v in cpu.items() if v["onnx_fp32"] > 0
        },
        "size_mb": {
            "onnx_fp32": round(fp32.stat().st_size / 2**20, 2),
            "onnx_int8": round(target.stat().st_size / 2**20, 2),
        },
    }
    if spec.labels is not None and test_labels:
        scores = {
            name: accuracy(lambda c, r=run: r(c)[0], test_calls, test_labels) for name, run in runners.items()
        }
        result["accuracy"] = {
            "split": "test",
            "samples": int(sum(len(label) for label in test_labels)),
            **{k: round(v, 6) for k, v in scores.items()},
            "int8_minus_fp32_points": round(100 * (scores["onnx_int8"] - scores["onnx_fp32"]), 3),
        }
    result["summary"] = summary(result)
    log(result["summary"])
    return result


def summary(result: dict[str, Any]) -> str:
    """The side-by-side table the command prints."""
    lines = [
        f"int8 ({result['method']}), CPU, {result['threads']} thread(s): median latency in ms (wall / CPU)",
        f"{'':>14} {'PyTorch eager':>16} {'ORT fp32':>16} {'ORT int8':>16} {'int8/fp32':>12}",
    ]
    for batch, row in result["latency_ms"].items():
        cpu = result["cpu_ms"][batch]
        cells = [f"{row[k]:.2f} / {cpu[k]:.2f}" for k in ("pytorch_eager", "onnx_fp32", "onnx_int8")]
        lines.append(
            f"{batch.replace('_', ' '):>14} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16} "
            f"{result['int8_vs_fp32_latency'][batch]:.2f}x / {result['int8_vs_fp32_cpu'][batch]:.2f}x"
        )
    if "accuracy" in result:
        a = result["accuracy"]
        lines.append(
            f"{'accuracy':>14} {100 * a['pytorch_eager']:>15.2f}% {100 * a['onnx_fp32']:>15.2f}% "
            f"{100 * a['onnx_int8']:>15.2f}% {a['int8_minus_fp32_points']:>+9.2f}pt  ({a['samples']} test samples)"
        )
    size = result["size_mb"]
    lines.append(f"{'size MB':>14} {'':>16} {size['onnx_fp32']:>16.2f} {size['onnx_int8']:>16.2f}")
    return "\n".join(lines)
