"""The zoo table: every model entry and every recipe, with params, GFLOPs and published numbers.

Torch-free: metadata comes from the config files (`litzoo.platform.registry.group_entries`,
`litzoo.zoo.recipes`), params and GFLOPs from the checked-in `stats.json` that
`python -m litzoo.zoo measure` writes (and a test checks against freshly built models).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from litzoo.platform.registry import group_entries
from litzoo.zoo.measure import read_stats
from litzoo.zoo.recipes import Recipe, recipes

COLUMNS = ("kind", "name", "task", "model", "params_m", "gflops", "metric", "reference", "source", "recipes")


@dataclass(frozen=True)
class Row:
    """One line of the zoo table (a model entry or a recipe)."""

    kind: str  # "model" or "recipe"
    name: str  # the model entry (model=NAME) or the recipe (experiment=NAME)
    task: str
    model: str
    params_m: float | None  # millions of parameters
    gflops: float | None  # per evaluation sample, at the recipe's (or the family default's) input
    metric: str | None
    reference: float | None
    source: str | None
    recipes: (
        str  # model rows: the recipes that start from this entry; recipe rows: how to run its tiny variant
    )
    note: str | None = None  # why params/GFLOPs are missing


def model_tasks(config_dirs: Sequence[Path]) -> dict[str, list[str]]:
    """Every model entry and the tasks it serves."""
    found = {}
    for name, entry in group_entries("model", config_dirs).items():
        tasks = entry.get("tasks") if isinstance(entry, DictConfig) else None
        found[name] = [str(t) for t in tasks or []]
    return found


def rows(
    config_dirs: Sequence[Path], task: str | None = None, stats: dict[str, Any] | None = None
) -> list[Row]:
    """The zoo table (models first, then recipes), optionally only those serving `task`."""
    stats = read_stats() if stats is None else stats
    all_recipes = recipes(config_dirs)
    table = [_model_row(n, t, all_recipes, stats) for n, t in model_tasks(config_dirs).items()]
    table += [_recipe_row(r, stats) for r in all_recipes]
    return [r for r in table if task is None or task in r.task.split(",")]


def _numbers(stats: dict[str, Any], key: str) -> tuple[float | None, float | None, str | None]:
    entry = stats.get(key) or {}
    params = entry.get("params")
    note = (
        entry.get("note")
        or entry.get("error")
        or (None if entry else "not measured yet (python -m litzoo.zoo measure)")
    )
    return (round(params / 1e6, 2) if params is not None else None), entry.get("gflops"), note


def _model_row(name: str, tasks: list[str], all_recipes: list[Recipe], stats: dict[str, Any]) -> Row:
    params, gflops, note = _numbers(stats, f"model:{name}")
    using = [r.name for r in all_recipes if r.model == name]
    return Row("model", name, ",".join(tasks), name, params, gflops, None, None, None, " ".join(using), note)


def _recipe_row(recipe: Recipe, stats: dict[str, Any]) -> Row:
    params, gflops, note = _numbers(stats, f"recipe:{recipe.name}")
    ref = recipe.reference or {}
    model = f"{recipe.model} (arch={recipe.arch})" if recipe.arch else recipe.model
    return Row(
        "recipe",
        recipe.name,
        recipe.task,
        model,
        params,
        gflops,
        ref.get("metric"),
        ref.get("value"),
        ref.get("source"),
        f"python -m litzoo.zoo tiny {recipe.name}",
        note,
    )


def render(table: Sequence[Row], fmt: str = "table") -> str:
    """The table as aligned text, CSV or JSON."""
    if fmt == "json":
        return json.dumps([asdict(r) for r in table], indent=1)
    records = [{c: _cell(getattr(r, c)) for c in (*COLUMNS, "note")} for r in table]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[*COLUMNS, "note"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return out.getvalue()
    shown = ("kind", "name", "task", "params_m", "gflops", "metric", "reference", "source")
    widths = {c: min(60, max(len(c), *(len(rec[c]) for rec in records))) for c in shown} if records else {}
    lines = ["  ".join(c.ljust(widths.get(c, len(c))) for c in shown)]
    for rec in records:
        lines.append("  ".join(_clip(rec[c], widths[c]).ljust(widths[c]) for c in shown).rstrip())
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
