"""What the user sees in the terminal, and what only `train.log` keeps.

- At the start, a compact summary of the run (`extras.print_config=compact`: the chosen
  config options and the command-line overrides), the whole resolved config as a tree
  (`full`), or nothing (`false`). The whole config always goes to `train.log` (and
  `.hydra/config.yaml`).
- During the run, log lines go through `ConsoleHandler`, which writes between progress-bar
  redraws (tqdm's `write`), so a message never lands glued onto a bar. `ConsoleFilter`
  leaves out of the terminal what only clutters it: Lightning's tips and notices about its
  own defaults, deprecation warnings raised inside third-party packages, and everything
  below WARNING from ranks other than 0 (rank 0 already says it). `train.log` keeps all of it.
- At the end, the results table and where the run is.

Nothing here imports torch (the summary is printed before torch is imported).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

GROUP_ORDER = ("task", "model", "data", "optim", "sched", "trainer", "logger", "callbacks", "paths")
PRINT_CONFIG_MODES = ("compact", "full", "false")

# Messages other libraries log at INFO that say nothing about this run (kept in train.log).
CONSOLE_NOISE = tuple(
    re.compile(pattern)
    for pattern in (
        r"Tip: For seamless cloud logging",  # Lightning advertises its cloud logger on every run
        r"^Trainer already configured with model summary callbacks",
        r"^(TPU|HPU|IPU) available: False",
        r"^Loading `train_dataloader` to estimate number of stepping batches",
        r"^`Trainer\.fit` stopped: `max_epochs=\d+` reached",  # the normal end of training
    )
)
DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
_LITZOO_SOURCE = str(Path(__file__).resolve().parents[1])


# --- the config at the start -------------------------------------------------------------------


def print_config_mode(cfg: DictConfig) -> str:
    """`extras.print_config` as one of PRINT_CONFIG_MODES (YAML's false/off/null mean "false")."""
    from litzoo.errors import ConfigError

    extras = cfg.get("extras") or {}
    value = extras.get("print_config", "compact")
    mode = "false" if value in (False, None) else str(value).lower()
    mode = {"off": "false", "no": "false", "none": "false", "true": "compact"}.get(mode, mode)
    if mode not in PRINT_CONFIG_MODES:
        raise ConfigError(
            f"extras.print_config={value!r} is not a choice: use compact (the chosen options and the "
            "overrides), full (the whole resolved config as a tree) or false (print nothing)."
        )
    return mode


def print_config(
    cfg: DictConfig, choices: Mapping[str, Any], overrides: Sequence[str], run_dir: Path
) -> None:
    """The run's config on the console as `extras.print_config` asks; always in full to train.log."""
    log_to_file("Composed config:\n" + OmegaConf.to_yaml(cfg, resolve=True).rstrip())
    mode = print_config_mode(cfg)
    if mode == "full":
        print_config_tree(cfg)
    elif mode == "compact":
        from rich import get_console

        console = get_console()
        for line in compact_config_lines(cfg, choices, overrides, run_dir):
            console.print(line, soft_wrap=True, highlight=False)


def compact_config_lines(
    cfg: DictConfig, choices: Mapping[str, Any], overrides: Sequence[str], run_dir: Path
) -> list[str]:
    """A few lines that say what runs: task/model/data, the other options picked, the overrides."""
    from rich.markup import escape

    picked = {str(k): v for k, v in choices.items() if v is not None and not str(k).startswith("hydra")}
    headline = " / ".join(
        str(cfg[g].get("name", picked.get(g, "?"))) for g in ("task", "model", "data") if g in cfg
    )
    # Everything but the headline's bold is the user's text: escaped, so `model.features=[upos]`
    # is printed as typed instead of read as rich markup (and dropped).
    lines = [f"[bold]{escape(headline)}[/bold]  seed={cfg.get('seed')}"]
    others = [
        f"{k}={v}" for k, v in sorted(picked.items(), key=_group_rank) if k not in ("task", "model", "data")
    ]
    if others:
        lines.append("  options:   " + escape(" ".join(others)))
    shown = [o for o in overrides if not o.lstrip("+~").startswith(("hydra.", "resume="))]
    if shown:
        lines.append("  overrides: " + escape(" ".join(shown)))
    lines.append(
        f"  run dir:   {escape(str(run_dir))}  (full config: .hydra/config.yaml, train.log; "
        "extras.print_config=full prints it here)"
    )
    return lines


def _group_rank(item: tuple[str, Any]) -> tuple[int, str]:
    name = item[0]
    return (GROUP_ORDER.index(name) if name in GROUP_ORDER else len(GROUP_ORDER), name)


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


# --- the results at the end --------------------------------------------------------------------


def print_results(title: str, metrics: Mapping[str, float], details: Mapping[str, Any]) -> None:
    """Print the final metrics and where to find the run."""
    from rich import get_console
    from rich.markup import escape
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
            console.print(f"[bold]{name}:[/bold] {escape(str(value))}", soft_wrap=True)


def human_bytes(size: int) -> str:
    """1234567 -> '1.2 MB' (decimal units, as `du -h --si` and file managers show them)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover


# --- log lines during the run ------------------------------------------------------------------


class ConsoleHandler(logging.StreamHandler):
    """A StreamHandler that writes between progress-bar redraws.

    Lightning's progress bars are tqdm bars on stdout that redraw in place (`\\r`, cursor-up
    for the nested validation bar). A plain handler writes into the middle of a bar; tqdm's
    `write` clears the bars, writes the line, and draws them again.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            bars = _tqdm_with_open_bars()
            if bars is not None:
                bars.write(message, file=self.stream)
            else:
                self.stream.write(message + self.terminator)
            self.flush()
        except RecursionError:  # pragma: no cover - as logging.StreamHandler
            raise
        except Exception:
            self.handleError(record)


def _tqdm_with_open_bars() -> Any:
    """tqdm's class if a bar is open right now (tqdm is never imported here for that)."""
    module = sys.modules.get("tqdm.std")
    tqdm = getattr(module, "tqdm", None)
    return tqdm if tqdm is not None and len(getattr(tqdm, "_instances", ())) else None


class ConsoleFilter(logging.Filter):
    """Leaves out of the terminal what train.log alone should keep (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _rank() > 0 and (record.levelno < logging.WARNING or record.name == "py.warnings"):
            return False
        if getattr(record, "third_party_deprecation", False):
            return False
        if record.levelno < logging.WARNING and not record.name.startswith("litzoo"):
            message = record.getMessage()
            return not any(pattern.search(message) for pattern in CONSOLE_NOISE)
        return True


def _rank() -> int:
    from litzoo.platform.ranks import global_rank

    return global_rank()


def install_console(root: logging.Logger | None = None) -> bool:
    """Swap the console handler Hydra configured for a `ConsoleHandler` with a `ConsoleFilter`
    (same stream, format and level), and route Python warnings into the log. Returns False,
    changing nothing, where Hydra's logging is not set up (no train.log handler: tests, library use)."""
    # Hydra's handlers are exactly these classes; pytest's (and others') are subclasses, left alone.
    root = root or logging.getLogger()
    if not any(type(h) is logging.FileHandler for h in root.handlers):
        return False
    for index, handler in enumerate(list(root.handlers)):
        if type(handler) not in (logging.StreamHandler, ConsoleHandler):
            continue
        if type(handler) is logging.StreamHandler:
            console = ConsoleHandler(handler.stream)
            console.setLevel(handler.level)
            console.setFormatter(handler.formatter)
            for existing in handler.filters:
                console.addFilter(existing)
            root.handlers[index] = console
            handler = console
        if not any(isinstance(f, ConsoleFilter) for f in handler.filters):
            handler.addFilter(ConsoleFilter())
    route_warnings_to_log()
    return True


def route_warnings_to_log() -> None:
    """Python warnings become records of the `py.warnings` logger, so train.log keeps every one
    (with its category) and the console can leave out deprecations raised inside other packages."""
    if getattr(warnings.showwarning, "_litzoo", False):
        return

    def showwarning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if file is not None:  # someone asked for a particular stream: honour it
            file.write(warnings.formatwarning(message, category, filename, lineno, line))
            return
        quiet = issubclass(category, DEPRECATIONS) and _third_party(filename)
        logging.getLogger("py.warnings").warning(
            "%s:%s: %s: %s",
            filename,
            lineno,
            category.__name__,
            message,
            extra={"third_party_deprecation": quiet},
        )

    showwarning._litzoo = True  # type: ignore[attr-defined]
    warnings.showwarning = showwarning


def _third_party(filename: str) -> bool:
    """Whether a warning was raised from installed packages or the standard library (not litzoo)."""
    path = os.path.abspath(filename)
    if path.startswith(_LITZOO_SOURCE):
        return False
    return "site-packages" in path or "dist-packages" in path or path.startswith(sys.base_prefix)


def log_to_file(message: str, level: int = logging.INFO, name: str = "litzoo") -> None:
    """Write to train.log (the file handlers) but not to the terminal."""
    record = logging.LogRecord(name, level, __file__, 0, "%s", (message,), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
