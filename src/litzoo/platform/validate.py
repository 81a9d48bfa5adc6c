"""Config validation that runs before anything heavy is imported.

Every check raises `ConfigError` (or `DataError` for a dataset on disk, `CheckpointError` for a
checkpoint, `DependencyError` for missing pretrained weights) with a message that names the
problem and the fix. Whatever the config and the file system decide is refused here, before
torch is imported and before the config tree is printed. Families add checks without an edit
here: a data config names its layout check (`layout: <module>.<function>`), a model config its
model check (`check: <module>.<function>`, e.g. that `model.pretrained` is on this machine).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from litzoo.errors import CheckpointError, ConfigError
from litzoo.platform.extras import check_requirements
from litzoo.platform.registry import entries_serving
from litzoo.platform.trust import Trust, check_targets


def validate(cfg: DictConfig, config_dirs: Sequence[Path], trust: Trust | None = None) -> None:
    """Check the composed config; raise a `LitzooError` naming the first problem found."""
    check_targets(OmegaConf.to_container(cfg, resolve=False), trust)
    check_requirements(cfg)  # first: an entry whose extra is not installed names the pip command
    _check_no_missing_values(cfg)
    _check_checkpoint(cfg)  # before the pairings: a checkpoint of another run names what fits it
    task = cfg.task.name
    _check_serves(cfg, "model", task, config_dirs)
    _check_serves(cfg, "data", task, config_dirs)
    _check_values(cfg)
    _check_precision(cfg)
    _check_sampler(cfg)
    model_check = cfg.model.get("check")
    if model_check:
        run_named_check(model_check, cfg.model, "model.check")
    layout = cfg.data.get("layout")
    if layout:
        from litzoo.data.layouts import check_layout

        check_layout(layout, cfg.data)


def run_named_check(path: str, node: DictConfig, key: str) -> None:
    """Call the torch-free check function a config names by import path (e.g. `model.check`) on its
    node; the function raises a `LitzooError` naming the fix. Its path passes the same allowlist
    as any `_target_`."""
    import importlib

    module_name, _, function_name = str(path).rpartition(".")
    check_targets({"_target_": str(path)})
    try:
        check = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(
            f"{key}={path!r} does not name a check function; give its import path, e.g. "
            "litzoo.models.classification_checks.check_pretrained."
        ) from None
    check(node)


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
    name = entry.get("name", "?")
    served = f"it serves {', '.join(tasks)}" if tasks else "its config declares no `tasks`"
    options = f"{group.capitalize()} options for task={task}: {', '.join(fitting) or '(none found)'}"
    if tasks:  # most often the task was left at its default: lead with the task this entry serves
        fix = f"To use it, pick its task: `python train.py task={tasks[0]} {group}={name}`. {options}."
    else:
        fix = f"{options}. Pick one of them, e.g. `python train.py task={task} {group}={(fitting or ['...'])[0]}`."
    raise ConfigError(f"{group}={name} does not fit task={task} ({served}). {fix}")


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
    if workers != "auto" and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 0):
        problems.append(f"data.num_workers={workers!r} must be 0, a positive integer or auto")
    if cfg.get("seed") is not None and not isinstance(cfg.seed, int):
        problems.append(f"seed={cfg.seed!r} must be an integer (or null for a random one)")
    if problems:
        raise ConfigError("Invalid value(s): " + "; ".join(problems) + ". Fix them on the command line.")


# What Lightning's Trainer accepts as `precision` (lightning.fabric.connector._PRECISION_INPUT; a test
# keeps this list equal to it), plus litzoo's `auto` (bf16/fp16 mixed on GPUs, fp32 on CPU).
PRECISIONS = (
    "auto",
    "32-true",
    "16-mixed",
    "bf16-mixed",
    "16-true",
    "bf16-true",
    "64-true",
    "transformer-engine",
    "transformer-engine-float16",
    "64",
    "32",
    "16",
    "bf16",
    64,
    32,
    16,
)


def _check_precision(cfg: DictConfig) -> None:
    precision = cfg.trainer.get("precision", "auto")
    if precision is None or precision in PRECISIONS and not isinstance(precision, bool):
        return
    import difflib

    named = [str(p) for p in PRECISIONS if isinstance(p, str)]
    close = difflib.get_close_matches(str(precision), named, n=2, cutoff=0.5)
    hint = f"Did you mean {' or '.join(f'trainer.precision={c}' for c in close)}? " if close else ""
    raise ConfigError(
        f"trainer.precision={precision!r} is not a precision Lightning knows. {hint}Options: "
        f"{', '.join(named)} (auto: bf16-mixed on GPUs that support it, 16-mixed on other GPUs, 32-true on CPU)."
    )


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
    if not cfg.get("train", True) and not cfg.get("test", True):
        raise ConfigError("train=false and test=false leave nothing to do; set one of them to true.")
    if not ckpt:
        return
    path = Path(str(ckpt)).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"ckpt_path={ckpt} does not exist or is not a file. "
            "Checkpoints of a run are in <run_dir>/checkpoints/ (e.g. last.ckpt)."
        )
    problem = _not_a_checkpoint(path)
    if problem:
        raise CheckpointError(
            f"ckpt_path={ckpt} is not a checkpoint: {problem}. A checkpoint is a file that training writes "
            "into <run_dir>/checkpoints/ (last.ckpt, epoch=<n>-step=<m>.ckpt): a torch.save archive "
            "(a zip file). Pass one of those."
        )
    from litzoo.platform.checkpoint_run import checkpoint_mismatch

    mismatch = checkpoint_mismatch(cfg)
    if mismatch:
        raise CheckpointError(mismatch)


def _not_a_checkpoint(path: Path) -> str | None:
    """Why the file cannot be a torch checkpoint (judged from its first bytes), or None.

    torch.save writes a zip archive (`PK\\x03\\x04`); files saved with the legacy format start
    with a pickle protocol marker (`\\x80`)."""
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):
        return None
    if not head:
        return "the file is empty"
    text = head.decode("utf-8", errors="replace")
    if text.count("\ufffd") > 2:
        return f"it starts with the bytes {head[:8]!r}, not those of a torch.save archive"
    first = text.strip().splitlines()[0][:40] if text.strip() else ""
    return f"it is a text file (it starts with {first!r})"
