"""``python -m litzoo.benchmark``: time a model's inference with each backend, append to a CSV.

::

    python -m litzoo.benchmark                                   # resnet18 on digits, CPU, all backends
    python -m litzoo.benchmark model=mobilenetv3_large_100 data.image_size=64 batch_size=16
    python -m litzoo.benchmark task=text_classification model=textcnn backends=eager,onnx
    python -m litzoo.benchmark model=resnet50 data.image_size=224 trainer=gpu batch_size=64
    python -m litzoo.benchmark model=resnet18 csv=results/cpu.csv warmup=10 repeats=50

Everything but the benchmark's own keys (``batch_size``, ``backends``, ``warmup``, ``repeats``,
``csv``, ``isolate``, ``compile_mode``) is a Hydra override of the training config, composed
and validated as ``train.py`` does. A backend that cannot run (not installed, export fails) is
skipped with a one-line reason; the exit code is non-zero only when none could run.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from litzoo.benchmark.config import BACKENDS, SETTING_KEYS, Settings, compose, device_of, split_arguments
from litzoo.errors import LitzooError

HELP = f"""usage: python -m litzoo.benchmark [key=value ...] [config overrides ...]

Measure inference throughput (samples/s), latency (median, p90 per batch) and peak memory of the
model train.py would build, at a fixed batch and input size, with PyTorch eager, torch.compile
and ONNX Runtime; append one row per backend to a CSV (timm-style benchmark file).

Benchmark keys:
  batch_size=N          samples per call (default 8)
  backends=a,b          any of {",".join(BACKENDS)} (default: all)
  warmup=N repeats=N    untimed and timed calls per backend (default 5 and 20)
  csv=PATH              the CSV rows are appended to (default outputs/benchmark/inference.csv)
  isolate=true|false    each backend in a fresh process (default true: its own peak memory)
  compile_mode=MODE     torch.compile mode (default, reduce-overhead, max-autotune, ...)
Config overrides (as for train.py): model=..., task=..., data=..., data.image_size=...,
  trainer=gpu (CUDA; precision follows trainer.precision), seed=...

Peak memory: GPU, torch.cuda.max_memory_allocated; CPU, the rise of the process's peak resident
set over the measurement (Linux VmHWM, reset first), weights included. See docs/report.md.
"""


def main(argv: Sequence[str] | None = None) -> int:
    tokens = list(sys.argv[1:] if argv is None else argv)
    if any(t in ("-h", "--help") for t in tokens):
        print(HELP)
        return 0
    try:
        flags = [t for t in tokens if t.startswith("-")]
        if flags:
            raise _usage(
                f"unknown option {flags[0]}: give key=value pairs ({', '.join(SETTING_KEYS)}) and overrides"
            )
        settings = split_arguments(tokens)
        cfg = compose(settings.overrides)
        device = device_of(cfg)
        identity = {
            "model": str(cfg.model.get("name")),
            "task": str(cfg.task.get("name")),
            "data": str(cfg.data.get("name")),
            "batch_size": settings.batch_size,
            "warmup": settings.warmup,
            "repeats": settings.repeats,
            "torch_version": _version("torch"),
            "overrides": " ".join(settings.overrides),
        }
        print(
            f"Benchmarking {identity['model']} ({identity['task']}, data={identity['data']}) on {device}: "
            f"batch {settings.batch_size}, {settings.warmup} warm-up + {settings.repeats} timed calls per backend",
            file=sys.stderr,
        )
        rows, skipped = measure_all(settings, identity)
        from litzoo.benchmark.results import append_rows

        if rows:
            path = append_rows(settings.csv, rows)
        for row in rows:
            print(format_row(row))
        for backend, reason in skipped:
            print(f"{backend}: skipped ({reason})", file=sys.stderr)
        if not rows:
            raise _usage(f"no backend could run ({len(skipped)} skipped, reasons above); nothing was written")
        print(f"Appended {len(rows)} row(s) to {path}", file=sys.stderr)
    except LitzooError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


def measure_all(
    settings: Settings, identity: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """One row per backend that ran, and (backend, reason) for each that did not."""
    rows, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="litzoo-benchmark-") as tmp:
        folder = Path(tmp)
        for backend in settings.backends:
            stages = ("export", "onnx") if backend == "onnx" else (backend,)
            result: dict[str, Any] = {"ok": False, "reason": "not run"}
            for stage in stages:
                result = run_stage(stage, settings, folder)
                if not result["ok"]:
                    break
            if result["ok"]:
                values = dict(result["values"])
                values.pop("graph", None)
                if not settings.isolate and str(values.get("memory_measure")).startswith("rss"):
                    # Memory freed earlier in this process is reused: the rise is only a lower bound.
                    values["memory_measure"] += " in-process (lower bound)"
                date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
                rows.append({**identity, **values, "backend": backend, "date": date})
            else:
                skipped.append((backend, result["reason"]))
    return rows, skipped


def run_stage(stage: str, settings: Settings, folder: Path) -> dict[str, Any]:
    """A stage in a fresh process (``isolate=true``) or in this one."""
    if not settings.isolate:
        from litzoo.benchmark.worker import outcome

        return outcome(stage, settings, folder)
    job, result = folder / f"{stage}.job.json", folder / f"{stage}.result.json"
    job.write_text(
        json.dumps(
            {"stage": stage, "settings": settings.to_json(), "folder": str(folder), "result": str(result)}
        )
    )
    process = subprocess.run(
        [sys.executable, "-m", "litzoo.benchmark.worker", str(job)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    if result.is_file():
        return json.loads(result.read_text())
    lines = [line for line in (process.stderr or process.stdout).strip().splitlines() if line.strip()]
    return {
        "ok": False,
        "reason": f"the {stage} process died (exit {process.returncode}): {lines[-1] if lines else ''}",
    }


def format_row(row: dict[str, Any]) -> str:
    memory = row.get("peak_mem_mb")
    return (
        f"{row['model']:<24} {row['backend']:<8} {row['device']:<5} batch {row['batch_size']:<4} "
        f"input {row['input_size']:<10} {row['samples_per_sec']:>10.1f} samples/s  "
        f"latency median {row['latency_ms_median']:.2f} ms  p90 {row['latency_ms_p90']:.2f} ms  "
        f"peak mem {'-' if memory is None else f'{memory:.1f} MB'}  setup {row['setup_s']:.1f} s"
    )


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return ""


def _usage(message: str) -> LitzooError:
    from litzoo.errors import ConfigError

    return ConfigError(message)
