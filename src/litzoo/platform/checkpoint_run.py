"""A checkpoint inside a run directory knows its run: the task, model and data it was trained with.

`python train.py train=false ckpt_path=<run_dir>/checkpoints/last.ckpt` should evaluate the
checkpoint with the network it holds, not with the default digits classifier. Before Hydra
composes anything, the CLI puts the run's own group choices (`task=`, `model=`, `data=`, and
`experiment=` when it had one) and its overrides of those groups in front of the command
line (:func:`checkpoint_argv`), so the user's own arguments still win. Validation then refuses
a composed config whose task or model is not the checkpoint's (:func:`checkpoint_mismatch`),
naming the overrides that fit. Nothing here imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from litzoo.platform.run_dir import RunDir

# The config groups that decide which network a checkpoint holds (and the data it was fit on).
GROUPS = ("experiment", "task", "model", "data")


def run_of_checkpoint(ckpt: str | os.PathLike | None) -> RunDir | None:
    """The run directory `ckpt` sits in (`<run_dir>/checkpoints/<file>`), or None."""
    if not ckpt or not Path(str(ckpt)).expanduser().is_file():
        return None
    return RunDir.containing(Path(str(ckpt)))


def run_choices(run: RunDir) -> dict[str, str]:
    """`group -> option` of the run for `GROUPS`: Hydra's recorded choices, else the configs' names."""
    hydra_file = run.path / ".hydra" / "hydra.yaml"
    choices: dict[str, str] = {}
    if hydra_file.is_file():
        recorded = OmegaConf.select(OmegaConf.load(hydra_file), "hydra.runtime.choices") or {}
        choices = {g: str(recorded[g]) for g in GROUPS if recorded.get(g) not in (None, "null")}
    if not choices:
        config = run.config()
        choices = {g: str(config[g].name) for g in GROUPS[1:] if OmegaConf.select(config, f"{g}.name")}
    return choices


def run_arguments(run: RunDir) -> list[str]:
    """The overrides that recompose the run's task, model and data: its group choices, then the
    run's own command-line overrides of keys inside those groups (e.g. `data.root=...`)."""
    arguments = [f"{group}={option}" for group, option in run_choices(run).items()]
    for override in run.overrides():
        key = _key(override)
        if key.split(".")[0] in GROUPS and "." in key:
            arguments.append(override)
    return arguments


def checkpoint_argv(argv: list[str]) -> list[str]:
    """`argv` with the run's task/model/data arguments in front of the user's overrides, when
    `ckpt_path=` names a checkpoint inside a run directory (unchanged otherwise).

    A group the user picks on the command line (`model=...`) drops the run's choice of it and
    the run's overrides inside it, and a `task=` or `experiment=` of the user's drops them all
    (a task picks its own model and data); every other argument of the user comes later, so it wins.
    """
    ckpt = next((a.split("=", 1)[1] for a in argv[1:] if _key(a) == "ckpt_path"), None)
    if any(_key(a) == "resume" for a in argv[1:]):  # a resumed run brings its own command line
        return argv
    run = run_of_checkpoint(ckpt)
    if run is None:
        return argv
    user_groups = {_key(a) for a in argv[1:] if _key(a) in GROUPS}
    if user_groups & {"experiment", "task"}:  # the user's task picks its own model and data
        return argv
    picked = [a for a in run_arguments(run) if _key(a).split(".")[0] not in user_groups]
    if not picked:
        return argv
    shown = " ".join(a for a in picked if "." not in _key(a))
    print(
        f"ckpt_path is a checkpoint of the run in {run.path}: using its {shown} "
        "(arguments on the command line override them)."
    )
    first = next(i for i, a in enumerate(argv) if i > 0 and _key(a))
    config_dirs = [] if _has_config_dir(argv) else [f"--config-dir={d}" for d in _user_config_dirs(run)]
    return [*argv[:first], *config_dirs, *picked, *argv[first:]]


def checkpoint_mismatch(cfg: DictConfig) -> str | None:
    """Why `cfg` cannot load its `ckpt_path` (a checkpoint of a run with another task or model), or None."""
    run = run_of_checkpoint(cfg.get("ckpt_path"))
    if run is None:
        return None
    trained = run.config()
    differs = [
        f"{group}={OmegaConf.select(cfg, f'{group}.name')} (the run's: {trained[group].name})"
        for group in ("task", "model")
        if _identity(cfg, group) != _identity(trained, group)
    ]
    if not differs:
        return None
    fitting = " ".join(a for a in run_arguments(run) if "." not in _key(a))
    return (
        f"ckpt_path={cfg.ckpt_path} is a checkpoint of the run in {run.path}, whose network does not fit this "
        f"config: {', '.join(differs)}. Evaluate it with the run's own choices, `{fitting}` (what train.py "
        "uses when the command line does not pick task/model), or pick a checkpoint of this task and model."
    )


def _identity(cfg: DictConfig, group: str) -> tuple[str | None, ...]:
    """What decides the shape of the weights a group builds (its name, target and architecture)."""
    return tuple(
        OmegaConf.select(cfg, f"{group}.{key}", default=None) for key in ("name", "_target_", "arch")
    )


def _key(argument: str) -> str:
    """The key of a `key=value` override (without Hydra's `+`/`++`/`~` prefixes), '' for flags."""
    if argument.startswith("-") or "=" not in argument:
        return ""
    return argument.split("=", 1)[0].lstrip("+~")


def _has_config_dir(argv: list[str]) -> bool:
    return any(a in ("--config-dir", "-cd") or a.startswith("--config-dir=") for a in argv)


def _user_config_dirs(run: RunDir) -> list[str]:
    return [str(d) for d in run.record().get("user_config_dirs") or []]
