"""summary.png: what a sweep found, drawn against what it varied.

- A grid sweep (`-m optim.lr=0.1,0.01`): the objective against the swept values. One numeric
  key gives a numeric axis (logarithmic when the values are positive and span a factor of 10
  or more, as learning rates do); several keys, or names (`model=resnet18,resnet50`), give one
  labelled position per job. The best job is starred.
- A search (Optuna chose the trials): the objective per trial number with the best-so-far
  line, Optuna's "optimization history".

Jobs without a value (failed, killed, still running) are red crosses on the x axis.
Only matplotlib is imported, and only when a plot is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class XAxis:
    """Where each job goes on the x axis: numeric positions, or category positions with labels."""

    label: str
    positions: list[float]
    ticks: list[str] | None = None  # one label per job for a categorical axis
    log: bool = False


def x_axis(rows: Sequence[Any], keys: Sequence[str], history: bool) -> XAxis:
    """The x axis of the summary plot for these jobs (see the module docstring)."""
    if history or not keys:
        return XAxis(
            "trial (job) number", [float(r.number if r.number is not None else i) for i, r in enumerate(rows)]
        )
    values = [dict(_split(o) for o in row.overrides) for row in rows]
    if len(keys) == 1:
        numbers = [_number(v.get(keys[0])) for v in values]
        if all(n is not None for n in numbers):
            positive = all(n > 0 for n in numbers)
            return XAxis(keys[0], numbers, log=positive and max(numbers) / min(numbers) >= 10)
        return XAxis(keys[0], [float(i) for i in range(len(rows))], [str(v.get(keys[0], "")) for v in values])
    labels = ["\n".join(f"{k}={v.get(k, '')}" for k in keys) for v in values]
    return XAxis(", ".join(keys), [float(i) for i in range(len(rows))], labels)


def plot_objective(
    path: Path,
    rows: Sequence[Any],
    keys: Sequence[str],
    direction: str | None,
    best: Any = None,
    history: bool = False,
) -> Path | None:
    """Draw summary.png; returns its path, or None when no job has an objective to plot against."""
    names = list(dict.fromkeys(r.objective_name for r in rows if r.objective_name))
    if not names:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    axis = x_axis(rows, keys, history)
    scored = [
        (x, r) for x, r in zip(axis.positions, rows) if r.objective is not None and math.isfinite(r.objective)
    ]
    missing = [
        x for x, r in zip(axis.positions, rows) if r.objective is None or not math.isfinite(r.objective)
    ]
    fig, ax = plt.subplots(figsize=(6.4 if not axis.ticks else max(6.4, 0.9 * len(rows)), 4.0))
    completed = [(x, r.objective) for x, r in scored if r.status != "pruned"]
    pruned = [(x, r.objective) for x, r in scored if r.status == "pruned"]
    if completed:
        ax.plot(*zip(*completed), "o", color="tab:blue", label="completed")
    if pruned:
        ax.plot(*zip(*pruned), "o", color="tab:gray", alpha=0.6, label="pruned (value when stopped)")
    if history and completed and direction in ("maximize", "minimize"):
        pick = max if direction == "maximize" else min
        best_so_far, current = [], None
        for _, y in completed:
            current = y if current is None else pick(current, y)
            best_so_far.append(current)
        ax.step([x for x, _ in completed], best_so_far, where="post", color="tab:orange", label="best so far")
    elif best is not None and best.objective is not None:
        x = next(x for x, r in zip(axis.positions, rows) if r is best)
        ax.plot([x], [best.objective], "*", color="tab:orange", markersize=16, label="best")
    if missing:  # on the bottom edge (x in data units, y in axes units): they have no value
        ax.plot(
            missing,
            [0.04] * len(missing),
            "x",
            color="tab:red",
            markersize=9,
            label="failed / no value",
            transform=ax.get_xaxis_transform(),
            clip_on=False,
        )
    if axis.log:
        ax.set_xscale("log")
    if axis.ticks is not None:
        ax.set_xticks(
            axis.positions,
            axis.ticks,
            rotation=30 if len(keys) > 1 or len(rows) > 6 else 0,
            ha="right" if len(keys) > 1 or len(rows) > 6 else "center",
            fontsize="small",
        )
    elif history:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(axis.label)
    ax.set_ylabel(", ".join(names[:1]))
    ax.set_title(f"{names[0]} per {'trial' if history else 'job'}" + (f" ({direction})" if direction else ""))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _split(override: str) -> tuple[str, str]:
    key, _, value = str(override).partition("=")
    return key.lstrip("+~"), value


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None
