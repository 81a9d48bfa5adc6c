"""The command line: ``python -m litzoo.export <run_dir> --format onnx [--int8] [-o DIR]``.

Order of work: refuse what the arguments alone decide (no such run directory, ``--int8`` with a
format onnxruntime cannot quantize, the ``export`` extra missing) before torch is imported; load
the run's task (``litzoo.load``); ask it for its :class:`~litzoo.tasks.base.ExportSpec` (a task
without one is named, with the tasks that have one); take real inputs from the run's val split;
write; check parity; write ``preprocessing.json``, the files it names and ``export.json``; note the
export in ``run.json``. Exit codes: 0 passed, 2 config, 3 data, 4 checkpoint, 5 missing package,
6 parity failure (the inputs and differences saved in ``<out>/parity_failure/``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from litzoo.errors import ConfigError, DependencyError, LitzooError
from litzoo.export import FORMATS


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        prog="python -m litzoo.export",
        description="Export a training run's model (ONNX, TorchScript, torch.export program) with its "
        "preprocessing, checked against PyTorch on the run's own val split; --int8 adds an int8 ONNX model "
        "with fp32 vs int8 latency and test accuracy.",
    )
    result.add_argument("run_dir", help="the run directory (holds run.json, .hydra/ and checkpoints/)")
    result.add_argument("--format", choices=FORMATS, default="onnx", help="what to write (default: onnx)")
    result.add_argument(
        "--int8", action="store_true", help="also write and measure an int8 model (onnx only)"
    )
    result.add_argument("-o", "--output", help="the export folder (default: <run_dir>/exports/<format>)")
    result.add_argument(
        "--checkpoint", help="a checkpoint other than the run's best (path or name in checkpoints/)"
    )
    result.add_argument(
        "--samples", type=int, default=32, help="val samples the parity check runs on (default: 32)"
    )
    result.add_argument("--atol", type=float, default=None, help="absolute tolerance (default: the task's)")
    result.add_argument("--rtol", type=float, default=None, help="relative tolerance (default: the task's)")
    result.add_argument(
        "--onnx-exporter",
        choices=("torchscript", "dynamo"),
        default="torchscript",
        help="torch.onnx.export's exporter (default: torchscript, dynamo=False)",
    )
    result.add_argument(
        "--calibration-samples",
        type=int,
        default=128,
        help="val samples static int8 calibrates on (default: 128)",
    )
    result.add_argument(
        "--accuracy-samples",
        type=int,
        default=None,
        help="test samples --int8 scores (default: the whole split)",
    )
    result.add_argument(
        "--threads", type=int, default=1, help="CPU threads for the latency measurement (default: 1)"
    )
    result.add_argument(
        "--latency-seconds",
        type=float,
        default=1.5,
        help="time spent measuring each latency figure, after warm-up (default: 1.5; at least 5 runs)",
    )
    return result


def check_arguments(args: argparse.Namespace) -> None:
    """What the arguments alone decide, within a second and before torch is imported."""
    from litzoo.predict import check_run_dir

    for name in ("samples", "calibration_samples", "threads"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} {getattr(args, name)}: give a positive number.")
    if args.accuracy_samples is not None and args.accuracy_samples < 1:
        raise ConfigError(
            f"--accuracy-samples {args.accuracy_samples}: give a positive number (or leave it out)."
        )
    if not args.latency_seconds > 0:
        raise ConfigError(f"--latency-seconds {args.latency_seconds}: give a positive number of seconds.")
    for name in ("atol", "rtol"):
        value = getattr(args, name)
        if value is not None and not value >= 0:
            raise ConfigError(f"--{name} {value}: give a tolerance >= 0.")
    if args.int8 and args.format != "onnx":
        raise ConfigError(
            f"--int8 quantizes with onnxruntime, so it needs --format onnx (got --format {args.format})."
        )
    check_run_dir(args.run_dir)
    needed = ["onnx", "onnxruntime"] if args.format == "onnx" or args.int8 else []
    if args.format == "onnx" and args.onnx_exporter == "dynamo":
        needed.append("onnxscript")
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise DependencyError(
            f"--format onnx needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
            "installed. Install litzoo's 'export' extra: pip install 'litzoo[export]'"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        check_arguments(args)
        from litzoo.export.run import ExportOptions, export_run  # torch and the task's libraries

        result = export_run(
            Path(args.run_dir),
            ExportOptions(
                fmt=args.format,
                output=Path(args.output).expanduser() if args.output else None,
                checkpoint=args.checkpoint,
                samples=args.samples,
                atol=args.atol,
                rtol=args.rtol,
                onnx_exporter=args.onnx_exporter,
                int8=args.int8,
                calibration_samples=args.calibration_samples,
                accuracy_samples=args.accuracy_samples,
                threads=args.threads,
                latency_seconds=args.latency_seconds,
            ),
            log=lambda line: print(line, flush=True),
        )
        print(f"Wrote {result}")
    except LitzooError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    return 0
