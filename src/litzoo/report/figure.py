"""Figure 1: inference throughput against validation score, bubble area proportional to memory.

GluonCV's Figure 1 in our own terms: each point is a measured run. Its height is the run's
monitored validation metric (``task.monitor``, best logged value, from the run directory); its
position along the x axis and its area come from the benchmark CSV row of the same model and
task (``python -m litzoo.benchmark``): samples/s and peak memory. A run is joined with the
row of its model and task for the chosen backend (and device, if given) that shares most of the
run's ``data.*`` overrides (its input size), then one of the run's dataset, then the latest.
Runs with no such row, or no monitored value, are not drawn; the report lists them with the
reason.

The drawn points are written beside the PNG and SVG as ``figure1.json``, and each point is
its own SVG group (``id="point-<n>"``), so what the chart shows can be checked exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from litzoo.report.runs import RunSummary

MAX_AREA = 2500.0  # points^2 of the largest bubble
MIN_AREA = 30.0


@dataclass
class Point:
    run: str
    run_dir: str
    task: str
    model: str
    metric: str
    score: float
    backend: str
    device: str
    batch_size: int | None
    input_size: str
    samples_per_sec: float
    peak_mem_mb: float | None
    area: float = 0.0


def join(
    runs: Sequence[RunSummary], rows: Sequence[dict[str, Any]], backend: str, device: str | None
) -> tuple[list[Point], list[tuple[RunSummary, str]]]:
    """The points to draw, and each run that cannot be drawn with the reason."""
    points, left_out = [], []
    for run in runs:
        if run.monitor_value is None:
            left_out.append((run, f"no logged value of its monitored metric {run.monitor or '(none)'}"))
            continue
        candidates = [
            r
            for r in rows
            if r.get("model") == run.model
            and r.get("task") == run.task
            and r.get("backend") == backend
            and (device is None or r.get("device") == device)
            and r.get("samples_per_sec")
        ]
        if not candidates:
            where = f" on {device}" if device else ""
            left_out.append(
                (
                    run,
                    f"no {backend} benchmark row{where} for model={run.model} task={run.task}: run "
                    f"python -m litzoo.benchmark task={run.task} model={run.model} and pass its CSV",
                )
            )
            continue
        row = max(enumerate(candidates), key=lambda item: (_fit(run, item[1]), item[0]))[1]
        points.append(
            Point(
                run=run.label,
                run_dir=str(run.path),
                task=run.task,
                model=run.model,
                metric=str(run.monitor),
                score=float(run.monitor_value),
                backend=backend,
                device=str(row.get("device")),
                batch_size=row.get("batch_size"),
                input_size=str(row.get("input_size") or ""),
                samples_per_sec=float(row["samples_per_sec"]),
                peak_mem_mb=row.get("peak_mem_mb"),
            )
        )
    _set_areas(points)
    return points, left_out


def _fit(run: RunSummary, row: dict[str, Any]) -> tuple[int, bool]:
    """How well a benchmark row matches a run: the run's data overrides it shares (the input size a
    run trained at, ``data.image_size=...``), then the same dataset."""
    shared = set(str(row.get("overrides") or "").split())
    return sum(o in shared for o in run.overrides if o.startswith("data.")), row.get("data") == run.data


def _set_areas(points: list[Point]) -> None:
    """Area proportional to memory, the largest bubble MAX_AREA (no memory measured: the smallest)."""
    memories = [p.peak_mem_mb for p in points if p.peak_mem_mb]
    largest = max(memories) if memories else None
    for point in points:
        share = point.peak_mem_mb / largest if point.peak_mem_mb and largest else 0.0
        point.area = max(MAX_AREA * share, MIN_AREA)


def draw(points: Sequence[Point], folder: Path, title: str = "Figure 1") -> dict[str, Path]:
    """figure1.png, figure1.svg and figure1.json (the points drawn) in `folder`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    figure, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    tasks = sorted({p.task for p in points})
    colours = {task: plt.cm.tab10(i % 10) for i, task in enumerate(tasks)}
    for index, point in enumerate(points):
        ax.scatter(
            [point.samples_per_sec],
            [point.score],
            s=[point.area],
            color=colours[point.task],
            alpha=0.55,
            edgecolors="black",
            linewidths=0.6,
            gid=f"point-{index}",
        )
        ax.annotate(
            point.run,
            (point.samples_per_sec, point.score),
            fontsize=7,
            xytext=(4, 4),
            textcoords="offset points",
        )
    speeds = [p.samples_per_sec for p in points]
    if speeds and max(speeds) / min(speeds) > 10:
        ax.set_xscale("log")
    metrics = sorted({p.metric for p in points})
    backends = sorted({f"{p.backend} on {p.device}" for p in points})
    ax.set_xlabel(f"inference throughput (samples/s, {', '.join(backends) or 'no benchmark'})")
    ax.set_ylabel(f"validation {' / '.join(metrics) or 'metric'} (best logged)")
    ax.set_title(f"{title}: throughput vs validation score, bubble area ∝ peak inference memory", fontsize=10)
    ax.grid(True, alpha=0.3)
    for task in tasks:  # a legend of colours (bubble sizes would mislead as legend markers)
        ax.scatter([], [], color=colours[task], label=task, s=40)
    if tasks:
        ax.legend(loc="best", fontsize=8)
    _pad_limits(ax, points)
    figure.tight_layout()
    paths = {"png": folder / "figure1.png", "svg": folder / "figure1.svg", "json": folder / "figure1.json"}
    figure.savefig(paths["png"])
    figure.savefig(paths["svg"])
    plt.close(figure)
    paths["json"].write_text(json.dumps({"points": [asdict(p) for p in points]}, indent=2) + "\n")
    return paths


def _pad_limits(ax: Any, points: Sequence[Point]) -> None:
    if not points:
        return
    scores = [p.score for p in points]
    low, high = min(scores), max(scores)
    pad = (high - low) * 0.15 or max(abs(high) * 0.05, 0.01)
    ax.set_ylim(low - pad, high + pad)
    speeds = [p.samples_per_sec for p in points]
    if ax.get_xscale() == "log":
        ax.set_xlim(min(speeds) / 1.5, max(speeds) * 1.5)
    else:
        span = max(speeds) - min(speeds)
        pad_x = span * 0.15 or max(speeds) * 0.2
        ax.set_xlim(max(min(speeds) - pad_x, 0), max(speeds) + pad_x)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
