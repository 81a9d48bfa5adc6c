"""What the user sees in the terminal: the config tree at start, the results table at the end."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

GROUP_ORDER = ("task", "model", "data", "optim", "sched", "trainer", "logger", "callbacks", "paths")


def print_config_tree(cfg: DictConfig) -> None:
    """Print the resolved config as a tree, one branch per config group."""
    from rich import get_console
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("config", style="bold", guide_style="dim")
    keys = [k for k in GROUP_ORDER if k in cfg] + [k for k in cfg if k not in GROUP_ORDER]
    for key in keys:
        value = cfg[key]
        branch = tree.add(str(key), style="bold cyan")
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        branch.add(Syntax(text.rstrip(), "yaml", theme="ansi_dark", background_color="default"))
    get_console().print(tree)


def print_results(title: str, metrics: Mapping[str, float], details: Mapping[str, Any]) -> None:
    """Print the final metrics and where to find the run."""
    from rich import get_console
    from rich.table import Table

    table = Table(title=title, title_style="bold", show_lines=False)
    table.add_column("metric", style="cyan")
    table.add_column("value", justify="right")
    for name, value in sorted(metrics.items()):
        table.add_row(name, f"{value:.6g}" if isinstance(value, float) else str(value))
    console = get_console()
    console.print(table)
    for name, value in details.items():
        if value is not None:
            console.print(f"[bold]{name}:[/bold] {value}", soft_wrap=True)
