"""Training curves from `metrics.csv` as a PNG in the run directory.

One panel per metric family (loss, each accuracy-like metric, the learning rate), all against
the training step, with the epoch boundaries marked. Per-step series (`train/loss_step`, the
learning rate) are drawn as lines and per-epoch ones (`val/*`, `train/*_epoch`) as points at the
step they were logged, so a run of one or two epochs still shows its curves (the platform logs
short runs densely enough: `litzoo.platform.loggers.DenseLoggingForShortRuns`). Losses are drawn
on a log scale, where the slow tail of training stays visible next to the steep start.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

MAX_COLUMNS = 3
MAX_EPOCH_LINES = 30  # more epoch boundaries than this would only grey the panel


def read_metrics(csv_path: Path) -> dict[str, list[tuple[int, float]]]:
    """Series per metric name: (step, value) pairs from Lightning's CSV log."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            step = int(float(row.get("step") or 0))
            for name, value in row.items():
                if name in ("step", "epoch") or value in (None, ""):
                    continue
                number = float(value)
                if math.isfinite(number):
                    series[name].append((step, number))
    return dict(series)


def epoch_starts(csv_path: Path) -> list[int]:
    """The first step logged in each epoch after the first (where the epoch boundaries are drawn)."""
    first: dict[int, int] = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("epoch") in (None, "") or row.get("step") in (None, ""):
                continue
            if not any(
                v not in (None, "")
                for k, v in row.items()
                if k not in ("epoch", "step") and not k.startswith("test/")
            ):
                continue  # the test rows come after training, in an epoch of their own
            epoch, step = int(float(row["epoch"])), int(float(row["step"]))
            first[epoch] = min(step, first.get(epoch, step))
    return [first[e] for e in sorted(first)][1:]


def panels_for(series: dict[str, list[tuple[int, float]]]) -> dict[str, list[str]]:
    """Metric names grouped into panels: "loss", "learning rate", or the metric's own name."""
    panels: dict[str, list[str]] = defaultdict(list)
    seen: dict[tuple, str] = {}
    for name in sorted(series):
        if name.startswith("test/"):
            continue  # one point at the end; it is in run.json and the results table
        values = tuple(series[name])
        if name.startswith("lr") and values in seen:
            continue  # parameter groups with the same schedule (e.g. with and without weight decay)
        seen[values] = name
        metric = name.split("/", 1)[-1]
        family = "loss" if "loss" in metric else "learning rate" if name.startswith("lr") else metric
        panels[family].append(name)
    return dict(panels)


def _panel_order(family: str) -> tuple[int, str]:
    return (0 if family == "loss" else 2 if family == "learning rate" else 1, family)


def build_figure(series: dict[str, list[tuple[int, float]]], boundaries: list[int] | None = None) -> Any:
    """The matplotlib figure of the curves (None when there is nothing to draw)."""
    panels = panels_for(series)
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    columns = min(MAX_COLUMNS, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.8 * columns, 3.6 * rows), squeeze=False)
    families = sorted(panels, key=_panel_order)
    all_steps = [step for names in panels.values() for name in names for step, _ in series[name]]
    pad = max(0.5, 0.02 * (max(all_steps) - min(all_steps)))  # every panel spans the whole run
    for ax, family in zip(axes.flat, families):
        for name in panels[family]:
            steps, values = zip(*series[name])
            per_step = len(set(steps)) > 2 * max(1, len(boundaries or []) + 1)  # more points than epochs
            if per_step:
                ax.plot(
                    steps,
                    values,
                    label=name,
                    linewidth=1.2,
                    marker="o" if len(steps) < 30 else None,
                    markersize=2.5,
                )
            else:
                ax.plot(steps, values, label=name, marker="o", markersize=4, linestyle="--", linewidth=0.8)
        if family == "loss" and all(v > 0 for name in panels[family] for _, v in series[name]):
            _log_scale(ax, [v for name in panels[family] for _, v in series[name]])
        if boundaries and len(boundaries) <= MAX_EPOCH_LINES:
            for step in boundaries:
                ax.axvline(step, color="0.6", linestyle=":", linewidth=0.8)
        ax.set_title(family)
        ax.set_xlabel(
            "step" + (" (dotted: epoch starts)" if boundaries and len(boundaries) <= MAX_EPOCH_LINES else "")
        )
        ax.set_xlim(min(all_steps) - pad, max(all_steps) + pad)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(families) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def _log_scale(ax: Any, values: list[float]) -> None:
    """A log y-axis labelled with plain numbers (2.5, not 2.5x10^0), on the minor ticks too when
    the values span less than a decade (there would be no major tick to read otherwise)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain if max(values) / min(values) < 10 else NullFormatter())


def plot_curves(csv_path: Path, png_path: Path) -> Path | None:
    """Draw the curves of `csv_path` into `png_path`; None when there is nothing to draw."""
    if not csv_path.is_file():
        return None
    series = read_metrics(csv_path)
    fig = build_figure(series, epoch_starts(csv_path)) if series else None
    if fig is None:
        return None
    import matplotlib.pyplot as plt

    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path
