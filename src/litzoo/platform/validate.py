"""Config validation that runs before anything heavy is imported.

Every check raises `ConfigError` (or `DataError` for a dataset on disk) with a
message that names the problem and the fix. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from litzoo.errors import ConfigError
from litzoo.platform.registry import entries_serving
from litzoo.platform.trust import Trust, check_targets


def validate(cfg: DictConfig, config_dirs: Sequence[Path], trust: Trust | None = None) -> None:
    """Check the composed config; raise a `LitzooError` naming the first problem found."""
    check_targets(OmegaConf.to_container(cfg, resolve=False), trust)
    _check_no_missing_values(cfg)
    task = cfg.task.name
    _check_serves(cfg, "model", task, config_dirs)
    _check_serves(cfg, "data", task, config_dirs)
    _check_values(cfg)
    _check_sampler(cfg)
    _check_checkpoint(cfg)
    layout = cfg.data.get("layout")
    if layout:
        from litzoo.data.layouts import check_layout

        check_layout(layout, cfg.data)


def _check_no_missing_values(cfg: DictConfig) -> None:
    missing = sorted(OmegaConf.missing_keys(cfg))
    if not missing:
        return
    hints = []
    for key in missing:
        if key == "data.root":
            hints.append(
                f"data={cfg.data.name} reads a dataset from your disk: pass data.root=<dir> "
                f"(the expected layout is described at the top of conf/data/{cfg.data.name}.yaml)"
            )
        else:
            hints.append(f"pass {key}=<value>")
    raise ConfigError(f"Missing required value(s): {', '.join(missing)}. " + "; ".join(hints) + ".")


def _check_serves(cfg: DictConfig, group: str, task: str, config_dirs: Sequence[Path]) -> None:
    entry = cfg[group]
    tasks = list(entry.get("tasks") or [])
    if task in tasks:
        return
    fitting = entries_serving(task, group, config_dirs)
    served = f"it serves {', '.join(tasks)}" if tasks else "its config declares no `tasks`"
    raise ConfigError(
        f"{group}={entry.get('name', '?')} does not fit task={task} ({served}). "
        f"{group.capitalize()} options for task={task}: {', '.join(fitting) or '(none found)'}. "
        f"Pick one of them, e.g. `python train.py task={task} {group}={fitting[0] if fitting else '...'}`."
    )


def _check_values(cfg: DictConfig) -> None:
    problems = []

    def positive(key: str, value: object, allow: tuple = ()) -> None:
        if value in allow:
            return
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            problems.append(f"{key}={value!r} must be a positive number")

    positive("data.batch_size", cfg.data.get("batch_size"))
    if "lr" in cfg.optim:
        positive("optim.lr", cfg.optim.lr)
    trainer = cfg.trainer
    positive("trainer.max_epochs", trainer.get("max_epochs", -1), allow=(-1, None))
    positive("trainer.max_steps", trainer.get("max_steps", -1), allow=(-1, None))
    positive("trainer.devices", trainer.get("devices", 1), allow=("auto", -1))
    positive("trainer.accumulate_grad_batches", trainer.get("accumulate_grad_batches", 1))
    workers = cfg.data.get("num_workers", 0)
    if not isinstance(workers, int) or workers < 0:
        problems.append(f"data.num_workers={workers!r} must be 0 or a positive integer")
    if cfg.get("seed") is not None and not isinstance(cfg.seed, int):
        problems.append(f"seed={cfg.seed!r} must be an integer (or null for a random one)")
    if problems:
        raise ConfigError("Invalid value(s): " + "; ".join(problems) + ". Fix them on the command line.")


def _check_sampler(cfg: DictConfig) -> None:
    sampler = cfg.data.get("sampler")
    if isinstance(sampler, DictConfig) and "_target_" in sampler and not sampler.get("_partial_", False):
        raise ConfigError(
            "data.sampler must be a sampler factory: add `_partial_: true` next to its _target_ (the "
            "datamodule adds the lengths, batch_size, shuffle and seed for each split)."
        )


def _check_checkpoint(cfg: DictConfig) -> None:
    ckpt = cfg.get("ckpt_path")
    if not cfg.get("train", True) and not ckpt:
        raise ConfigError(
            "train=false evaluates a checkpoint, but no checkpoint was given. "
            "Pass ckpt_path=<run_dir>/checkpoints/<file>.ckpt (or drop train=false to train)."
        )
    if ckpt and not Path(str(ckpt)).expanduser().is_file():
        raise ConfigError(
            f"ckpt_path={ckpt} does not exist or is not a file. "
            "Checkpoints of a run are in <run_dir>/checkpoints/ (e.g. last.ckpt)."
        )
    if not cfg.get("train", True) and not cfg.get("test", True):
        raise ConfigError("train=false and test=false leave nothing to do; set one of them to true.")
