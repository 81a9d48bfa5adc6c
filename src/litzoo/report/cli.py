"""``python -m litzoo.report <run dirs or sweep dirs ...> -o report/ [--benchmark-csv FILE ...]``.

Writes ``<out>/index.md``, ``<out>/index.html`` and, when runs can be joined with benchmark
rows, ``<out>/figure1.{png,svg,json}`` (:mod:`litzoo.report.figure`).

Bad input: a path with no run directory in it or below it (no ``run.json``) is named. When no
path holds a run, nothing is written and the exit code is 3. When some do, the report is made
from those and the empty paths are listed in a warning; ``--strict`` makes any empty path an
error instead (for scripts that must not report on fewer runs than they were given).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from litzoo.errors import DataError, LitzooError


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        prog="python -m litzoo.report",
        description="Aggregate run directories into a Markdown and a static HTML report (sortable table of "
        "metrics, durations, configs, links to curves) and Figure 1: inference throughput vs validation "
        "score, bubble area proportional to memory (PNG and SVG).",
    )
    result.add_argument(
        "paths", nargs="+", help="run directories, sweep directories, or folders holding runs"
    )
    result.add_argument("-o", "--output", default="report", help="the report folder (default: report/)")
    result.add_argument(
        "--benchmark-csv",
        action="append",
        default=[],
        metavar="FILE",
        help="a CSV python -m litzoo.benchmark wrote (repeatable): throughput and memory for Figure 1",
    )
    result.add_argument(
        "--backend", default="eager", help="which benchmark backend Figure 1 shows (eager, compile, onnx)"
    )
    result.add_argument("--device", default=None, help="only benchmark rows of this device (cpu, cuda)")
    result.add_argument("--strict", action="store_true", help="fail when any path holds no run directory")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        written = make_report(
            args.paths, Path(args.output), args.benchmark_csv, args.backend, args.device, args.strict
        )
    except LitzooError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    for path in written:
        print(path)
    return 0


def make_report(
    paths: Sequence[str | Path],
    folder: Path,
    benchmark_csvs: Sequence[str | Path] = (),
    backend: str = "eager",
    device: str | None = None,
    strict: bool = False,
) -> list[Path]:
    """Write the report; returns the files written."""
    from litzoo.benchmark.results import read_rows
    from litzoo.report.figure import draw, join
    from litzoo.report.render import benchmark_table, html_page, markdown_page, run_table
    from litzoo.report.runs import find_runs, read_run

    run_dirs, empty = find_runs(paths)
    if empty and (strict or not run_dirs):
        raise DataError(
            f"No run directory (no run.json) in {', '.join(str(p) for p in empty)}. Give the folders training "
            "runs wrote (outputs/<task>/<model>/<time>), or a sweep directory (outputs/multirun/...)."
        )
    if empty:
        print(
            f"Warning: left out {len(empty)} path(s) with no run directory (no run.json): "
            f"{', '.join(str(p) for p in empty)}",
            file=sys.stderr,
        )
    rows = [row for csv_path in benchmark_csvs for row in read_rows(csv_path)]
    runs = [read_run(path) for path in run_dirs]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(
            f"Cannot create the report folder {folder} ({error}). Give -o a writable path."
        ) from None
    points, left_out = join(runs, rows, backend, device)
    figure = draw(points, folder) if points else None
    table = run_table(runs, folder)
    benchmarks = benchmark_table(rows) if rows else None
    written = [folder / "index.md", folder / "index.html"]
    written[0].write_text(markdown_page(table, benchmarks, figure, left_out))
    written[1].write_text(html_page(table, benchmarks, figure, left_out))
    for run, reason in left_out:
        print(f"Not in Figure 1: {run.label}: {reason}", file=sys.stderr)
    return written + (list(figure.values()) if figure else [])
