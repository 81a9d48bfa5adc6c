"""`litzoo.get_model`: a network from a model config name (through the registry) or from a run directory."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

# data_info keys that hold the number of output classes, per family convention (vision, text).
CLASS_KEYS = ("num_classes", "num_labels")


def is_run_dir(path: Any) -> bool:
    """A litzoo run directory: it has run.json (what else it needs, `TaskModule.from_run_dir` checks)."""
    if not isinstance(path, str | Path):
        return False
    return (Path(path).expanduser() / "run.json").is_file()


def get_model(
    name: str | Path,
    pretrained: str | Path | None = None,
    num_classes: int | None = None,
    task: str | None = None,
    **options: Any,
) -> Any:
    """The `torch.nn.Module` of a model entry (`conf/model/<name>.yaml`) or of a trained run.

    - `name` (or `pretrained`) a run directory: the run's trained network, in eval mode (its weights
      and preprocessing come from the run; `num_classes`/`options` must then be left out).
    - `name` a model entry: built as `python train.py task=<task> model=<name>` builds it (`task`:
      the entry's first), for `num_classes` outputs (default: the family's embedded dataset's);
      `pretrained` a local weights file or checkpoint folder, passed as the entry's `pretrained`
      (or `weights_path`); `options` set other entry keys (`get_model("faster_rcnn", variant="resnet50_fpn")`).
    """
    from litzoo.errors import ConfigError

    run = name if is_run_dir(name) else pretrained if is_run_dir(pretrained) else None
    if run is not None:
        if num_classes is not None or options or (run == pretrained and str(name) != _run_model_name(run)):
            raise ConfigError(
                f"get_model({name!r}, pretrained={str(pretrained)!r}) loads the trained network of the run "
                f"{run}: leave out num_classes and options, and pass the run's own model name "
                f"({_run_model_name(run)!r}) or the run directory alone."
            )
        from litzoo.tasks.base import TaskModule

        return TaskModule.from_run_dir(run).net.eval()
    return _from_registry(str(name), pretrained, num_classes, task, options)


def _run_model_name(run: str | Path) -> str:
    from omegaconf import OmegaConf

    return str(OmegaConf.load(Path(run).expanduser() / ".hydra" / "config.yaml").model.name)


def _from_registry(
    name: str, pretrained: Any, num_classes: int | None, task: str | None, options: dict
) -> Any:
    from omegaconf import DictConfig

    from litzoo.errors import ConfigError
    from litzoo.platform.configs import CONFIG_DIR
    from litzoo.platform.registry import group_entries
    from litzoo.platform.validate import validate
    from litzoo.zoo.measure import build_task, compose, scratch_dir

    entries = group_entries("model", [CONFIG_DIR])
    if name not in entries:
        close = difflib.get_close_matches(name, list(entries), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"get_model: no model entry named {name!r} (and it is not a run directory).{hint} "
            f"Models: {', '.join(sorted(entries))}."
        )
    entry = entries[name]
    tasks = [str(t) for t in entry.get("tasks") or []] if isinstance(entry, DictConfig) else []
    if task is not None and task not in tasks:
        raise ConfigError(f"get_model: {name} serves {', '.join(tasks)}, not task={task}.")
    overrides = [f"task={task or tasks[0]}", f"model={name}"]
    if pretrained is not None:
        key = next((k for k in ("pretrained", "weights_path") if k in entry), None)
        if key is None:
            raise ConfigError(
                f"get_model: the entry {name} takes no pretrained weights (it has no pretrained key)."
            )
        overrides.append(f"model.{key}={pretrained}")
    overrides += [f"++model.{k}={_value(v)}" for k, v in options.items()]
    cfg = compose(overrides)
    validate(cfg, [CONFIG_DIR])  # missing weights, bad options: the platform's one-paragraph errors

    def classes(default: dict[str, Any]) -> dict[str, Any]:  # only the class-count keys the family has
        if num_classes is None:
            return {}
        found = {k: int(num_classes) for k in CLASS_KEYS if k in default}
        if not found:
            raise ConfigError(
                f"get_model: {name} ({cfg.task.name}) has no number of classes to set; leave out num_classes."
            )
        return found

    with scratch_dir():  # nothing the datamodule writes beside a run lands in the caller's directory
        module, _ = build_task(cfg, classes)
    return module.net.eval()


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_value(v) for v in value) + "]"
    return str(value)
