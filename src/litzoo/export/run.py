"""One export, start to finish: task -> spec -> real inputs -> file -> parity -> record (-> int8)."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from litzoo.errors import ConfigError, DataError
from litzoo.export import formats, parity
from litzoo.export.data import build_datamodule, split_batches
from litzoo.platform.run_dir import RunDir, write_json_atomic

EXPORTS_DIR = "exports"


@dataclass(frozen=True)
class ExportOptions:
    fmt: str = "onnx"
    output: Path | None = None
    checkpoint: str | None = None
    samples: int = 32
    atol: float | None = None
    rtol: float | None = None
    onnx_exporter: str = "torchscript"
    int8: bool = False
    calibration_samples: int = 128
    accuracy_samples: int | None = None
    threads: int = 1
    latency_seconds: float = 1.5


def exporting_tasks() -> list[str]:
    """The task names (conf/task/*.yaml) whose class overrides ``export_spec``: for the message that
    answers a task without one. Read from the configs and the classes, not from a table."""
    import importlib

    from omegaconf import OmegaConf

    from litzoo.platform.configs import CONFIG_DIR
    from litzoo.tasks.base import TaskModule

    names = []
    for path in sorted((CONFIG_DIR / "task").glob("*.yaml")):
        task = OmegaConf.load(path).get("task") or {}
        target = str(task.get("_target_", ""))
        module_name, _, name = target.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError, ValueError):
            continue  # a family whose extra is not installed
        if getattr(cls, "export_spec", None) is not TaskModule.export_spec:
            names.append(str(task.get("name", path.stem)))
    return names


def batch_size_of(call: tuple[torch.Tensor, ...]) -> int:
    return int(call[0].shape[0]) if call and call[0].ndim else 1


def first_sample(call: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return tuple(t[:1] for t in call)


def real_calls(spec: Any, batches: Iterator[Any], samples: int) -> tuple[list, list]:
    """Calls (and their batches' labels) for about `samples` samples of a split."""
    calls, labels, seen = [], [], 0
    for batch in batches:
        new = spec.calls(batch)
        calls += new
        if spec.labels is not None:
            labels.append(spec.labels(batch))
        seen += sum(batch_size_of(c) for c in new) if not _per_sample(spec) else len(new)
        if seen >= samples:
            break
    return calls, labels


def _per_sample(spec: Any) -> bool:
    """A graph without a dynamic batch axis on its first input takes one sample per call (detection)."""
    first = spec.dynamic_axes.get(spec.input_names[0], {})
    return 0 not in first or first[0] != "batch"


def export_run(run_dir: Path, options: ExportOptions, log: Callable[[str], None] = print) -> Path:
    """Export `run_dir`'s model as `options` say; returns the export.json written."""
    import litzoo

    run = RunDir(run_dir)
    task = litzoo.load(run.path, options.checkpoint)
    spec = task.export_spec()
    name = str(run.config().task.get("name", type(task).__name__))
    if spec is None:
        raise ConfigError(
            f"Task {name} ({type(task).__name__}) has no exporter yet. Tasks that do: "
            f"{', '.join(exporting_tasks())}. (A task exports by implementing TaskModule.export_spec.)"
        )
    if options.int8 and spec.int8 is None:
        raise ConfigError(
            f"Task {name} has no int8 path yet (dynamic int8 serves transformers and LSTMs, calibrated static "
            "int8 CNNs); export it without --int8."
        )
    if options.fmt not in spec.formats:
        raise ConfigError(
            f"Task {name} does not export to --format {options.fmt}; it exports to: {', '.join(spec.formats)}."
        )
    tolerances = {
        name: (
            spec.output_tolerances.get(name, (spec.atol, spec.rtol))[0]
            if options.atol is None
            else options.atol,
            spec.output_tolerances.get(name, (spec.atol, spec.rtol))[1]
            if options.rtol is None
            else options.rtol,
        )
        for name in spec.output_names
    }
    out = options.output or run.artifact(EXPORTS_DIR) / options.fmt
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "parity_failure", ignore_errors=True)

    datamodule = build_datamodule(run)
    calls, _ = real_calls(spec, split_batches(datamodule, "val"), options.samples)
    if not calls:
        raise DataError(f"The val split of {run.path} is empty: there is nothing to check the export on.")
    if not _per_sample(spec):  # batches of one and of more: the batch axis is really dynamic
        if batch_size_of(calls[0]) > 1:
            calls.append(first_sample(calls[0]))
        elif len(calls) > 1 and [t.shape for t in calls[0]] == [t.shape for t in calls[1]]:
            calls.append(tuple(torch.cat(pair) for pair in zip(calls[0], calls[1])))
    if spec.edge_cases is not None:
        calls += [tuple(c) for c in spec.edge_cases()]

    log(f"Exporting {name} from {run.path} to {out} ({options.fmt}) ...")
    started = time.perf_counter()
    try:
        # The largest batch as the example: a tracer or torch.export that fixes a size fixes a typical one.
        example = max(calls[: len(calls) - (spec.edge_cases is not None)] or calls, key=batch_size_of)
        path, how = formats.write(options.fmt, spec, example, out, options.onnx_exporter)
    except Exception as error:  # the exporters raise anything; the message is what the user needs
        import re

        first = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines()
        other = {"torchscript": "dynamo", "dynamo": "torchscript"}[options.onnx_exporter]
        raise ConfigError(
            f"torch could not export task {name} to {options.fmt}: {type(error).__name__}: "
            f"{first[0] if first else ''} Try another --format"
            + (f" or --onnx-exporter {other}" if options.fmt == "onnx" else "")
            + f" (task {name} exports to: {', '.join(spec.formats)})."
        ) from error
    export_seconds = time.perf_counter() - started
    runner = formats.load_runner(options.fmt, path, spec.input_names)
    report = parity.check(
        calls,
        formats.eager_runner(spec.module),
        runner,
        spec.output_names,
        tolerances,
        out / "parity_failure",
        batched=not _per_sample(spec),
    )
    for file_name, source in spec.files.items():
        copy(Path(source), out / file_name)
    write_json_atomic(out / "preprocessing.json", dict(spec.preprocessing))
    record: dict[str, Any] = {
        "task": name,
        "format": options.fmt,
        "file": path.name,
        "how": how,
        "checkpoint": str(run.checkpoint(options.checkpoint)),
        "inputs": {n: spec.dynamic_axes.get(n, {}) for n in spec.input_names},
        "outputs": {n: spec.dynamic_axes.get(n, {}) for n in spec.output_names},
        "preprocessing": "preprocessing.json",
        "files": sorted(spec.files),
        "parity": {"split": "val", **report.as_dict()},
        "export_seconds": round(export_seconds, 2),
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    verdict = "passed" if report.passed else "FAILED"
    log(
        f"Parity vs PyTorch eager on {report.calls} call(s) of the val split (batch sizes "
        f"{sorted(set(report.batch_sizes))}): {verdict} ({tolerance_text(tolerances)}); {report.summary()}"
    )
    if report.passed and options.int8:
        from litzoo.export.int8 import quantize_and_measure

        record["int8"] = quantize_and_measure(spec, path, datamodule, calls, options, out, log)
    result = out / "export.json"
    write_json_atomic(result, record)
    note_in_run_record(run, options.fmt, result, record)
    if not report.passed:
        raise parity.ParityError(
            f"The {options.fmt} export of {run.path} does not match PyTorch on the val split: "
            f"{len(report.failures)} of {report.calls} call(s) above |d| <= atol + rtol*|eager| "
            f"({tolerance_text(tolerances)}; "
            f"{report.summary()}). The inputs, both outputs and the differences are in "
            f"{out / 'parity_failure'}; the export is not fit to deploy (try another --format or "
            "--onnx-exporter, or report it with those files)."
        )
    return result


def tolerance_text(tolerances: dict[str, tuple[float, float]]) -> str:
    """``atol 0.0001, rtol 0.001`` when every output has the same, else per output."""
    if len(set(tolerances.values())) == 1:
        atol, rtol = next(iter(tolerances.values()))
        return f"atol {atol:g}, rtol {rtol:g}"
    return ", ".join(f"{name} atol {a:g} rtol {r:g}" for name, (a, r) in tolerances.items())


def copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)


def note_in_run_record(run: RunDir, fmt: str, result: Path, record: dict[str, Any]) -> None:
    """One entry per format under ``exports`` in run.json: where, whether parity passed, int8 summary."""
    data = run.record()
    if not data:
        return  # no run.json to annotate (a copied run directory): export.json holds everything
    entry = {
        "export_json": str(result),
        "parity_passed": record["parity"]["passed"],
        "max_abs_diff": record["parity"]["max_abs_diff"],
        "created": record["created"],
    }
    if "int8" in record:
        entry["int8"] = {k: record["int8"][k] for k in ("file", "method", "summary") if k in record["int8"]}
    data.setdefault("exports", {})[fmt] = entry
    run.write_record(data)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("torch", "torchvision", "onnx", "onnxruntime", "onnxscript", "transformers"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found
