"""Training curves from `metrics.csv` as a PNG in the run directory."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path


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


def plot_curves(csv_path: Path, png_path: Path) -> Path | None:
    """One panel per metric family (loss, accuracy-like metrics, learning rate) against the step."""
    if not csv_path.is_file():
        return None
    series = read_metrics(csv_path)
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[str, list[str]] = defaultdict(list)
    for name in sorted(series):
        if name.startswith("test/"):
            continue  # one point at the end; it is in run.json and the results table
        metric = name.split("/", 1)[-1]
        family = "loss" if "loss" in metric else "learning rate" if name.startswith("lr") else metric
        panels[family].append(name)
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for ax, (family, names) in zip(axes[0], sorted(panels.items())):
        for name in names:
            steps, values = zip(*series[name])
            marker = "o" if len(steps) < 50 else None
            ax.plot(steps, values, label=name, marker=marker, markersize=3)
        ax.set_title(family)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path
