"""python -m litzoo.benchmark: real rows for a real model, early refusals, the CSV's contract."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
from conftest import ROOT

from litzoo.benchmark.results import COLUMNS, append_rows, read_rows
from litzoo.errors import ConfigError


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_benchmark_writes_one_sane_row_per_backend(benchmark_csv):
    import timm

    rows = read(benchmark_csv)
    assert [r["backend"] for r in rows] == ["eager", "onnx"]
    # The model benchmarked is the one train.py builds: timm's resnet18 for 1-channel digits, 10 classes.
    params = sum(p.numel() for p in timm.create_model("resnet18", in_chans=1, num_classes=10).parameters())
    for row in rows:
        assert (row["model"], row["task"], row["data"], row["device"]) == (
            "resnet18",
            "classification",
            "digits",
            "cpu",
        )
        assert int(row["batch_size"]) == 4 and row["input_size"] == "1x16x16"
        assert int(row["params"]) == params
        assert float(row["samples_per_sec"]) > 0
        assert 0 < float(row["latency_ms_median"]) <= float(row["latency_ms_p90"])
        # In-process (isolate=false), memory freed before is reused: the rise is a lower bound, >= 0.
        assert float(row["peak_mem_mb"]) >= 0
        assert row["memory_measure"] == "rss_peak_delta in-process (lower bound)"
        assert (int(row["warmup"]), int(row["repeats"])) == (1, 3)
        assert row["torch_version"] and row["date"]
    assert rows[1]["runtime"].startswith("onnxruntime")


def test_appending_keeps_one_header_and_refuses_a_foreign_csv(tmp_path):
    path = tmp_path / "b.csv"
    row = {"model": "m", "task": "t", "backend": "eager", "samples_per_sec": 12.5, "peak_mem_mb": None}
    append_rows(path, [row])
    append_rows(path, [row])
    assert path.read_text().count("model,task") == 1
    rows = read_rows(path)
    assert len(rows) == 2 and rows[0]["samples_per_sec"] == 12.5 and rows[0]["peak_mem_mb"] is None
    foreign = tmp_path / "timm.csv"
    foreign.write_text("model,infer_samples_per_sec\nresnet18,100\n")
    with pytest.raises(ConfigError, match="timm.csv"):
        append_rows(foreign, [row])
    assert list(COLUMNS[:3]) == ["model", "task", "data"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model=faster_rcnn"], "does not fit task=classification"),
        (["backends=eager,tensorrt"], "tensorrt is not a backend"),
        (["batch_size=0"], "batch_size=0"),
        (["--batch-size", "4"], "unknown option --batch-size"),
    ],
)
def test_config_errors_stop_before_torch(args, message):
    code = (
        "import sys; from litzoo.benchmark.cli import main; rc = main(sys.argv[1:]); "
        "print('torch' in sys.modules, file=sys.stderr); sys.exit(rc)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().endswith("False")


def test_help_imports_no_torch():
    code = (
        "import sys; from litzoo.benchmark.cli import main; main(['--help']); print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert "batch_size=N" in result.stdout and result.stdout.strip().endswith("False")


@pytest.mark.slow
def test_each_backend_in_a_fresh_process(tmp_path):
    """The command line as users run it: eager, torch.compile and ONNX Runtime, each isolated."""
    path = tmp_path / "b.csv"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "litzoo.benchmark",
            "data.image_size=16",
            "batch_size=4",
            "warmup=2",
            "repeats=5",
            f"csv={path}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr
    rows = read(path)
    assert [r["backend"] for r in rows] == ["eager", "compile", "onnx"], result.stderr
    assert all(float(r["samples_per_sec"]) > 0 for r in rows)
    # A fresh process per backend: the peak rise holds at least the fp32 weights (4 bytes each).
    weights_mb = int(rows[0]["params"]) * 4 / 2**20
    assert all(float(r["peak_mem_mb"]) >= 0.9 * weights_mb for r in rows), [r["peak_mem_mb"] for r in rows]
    assert all(r["memory_measure"] == "rss_peak_delta" for r in rows)
    assert len({r["params"] for r in rows}) == 1
    assert "inductor" in rows[1]["runtime"]
