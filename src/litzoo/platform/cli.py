"""The `train.py` entry point: Hydra composes the config, `litzoo.platform.runner` runs it.

This module is on the path of `--help` and `--cfg`, so it imports only Hydra and
OmegaConf; torch, lightning and timm are imported by the runner, after the
config has been validated.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from litzoo.platform.configs import CONFIG_DIR, register_resolvers
from litzoo.platform.ranks import JOB_ENV, ddp_child_argv


def main(config_dir: str | Path = CONFIG_DIR) -> None:
    """Run `train.py`: compose `conf/train.yaml` with the command line, then train."""
    import hydra

    register_resolvers()
    _explain_composition_errors()
    _hide_base_configs_in_help()
    lightning_child = bool(os.environ.get(JOB_ENV)) and os.environ.get("LOCAL_RANK", "0") != "0"
    sys.argv = ddp_child_argv(sys.argv, os.environ)
    if not lightning_child:  # a child already runs its parent's job as resolved, a resume included
        sys.argv = _resume_argv(sys.argv, Path(config_dir))
        sys.argv = _checkpoint_argv(sys.argv)
    hydra.main(version_base="1.3", config_path=str(config_dir), config_name="train")(_task_function)()


def _resume_argv(argv: list[str], config_dir: Path) -> list[str]:
    from litzoo.errors import LitzooError
    from litzoo.platform.resume import resume_argv

    def compose(overrides: list[str], config_dirs: list[str]) -> DictConfig:
        from hydra import compose as hydra_compose
        from hydra import initialize_config_dir
        from hydra.core.global_hydra import GlobalHydra

        search = [f"hydra.searchpath=[{','.join('file://' + str(Path(d).resolve()) for d in config_dirs)}]"]
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(config_dir.resolve()), version_base="1.3"):
            cfg = hydra_compose("train", overrides=[*overrides, *(search if config_dirs else [])])
        GlobalHydra.instance().clear()
        return cfg

    try:
        return resume_argv(argv, compose)
    except LitzooError as error:
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)


def _checkpoint_argv(argv: list[str]) -> list[str]:
    """A `ckpt_path=` inside a run directory brings that run's task/model/data (see checkpoint_run)."""
    from litzoo.errors import LitzooError
    from litzoo.platform.checkpoint_run import checkpoint_argv

    try:
        return checkpoint_argv(argv)
    except LitzooError as error:
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)


def _task_function(cfg: DictConfig) -> Any:
    from litzoo.platform.runner import run_from_hydra

    return run_from_hydra(cfg)


def _hide_base_configs_in_help() -> None:
    """`--help` lists config groups; the family bases that dataset configs extend
    (`data/<family>/_base.yaml`) are not options to pick, so they are left out."""
    from hydra._internal.hydra import Hydra

    original = Hydra.format_config_groups
    if getattr(original, "_litzoo_wrapped", False):
        return

    def format_config_groups(self: Any, predicate: Any, compact: bool = True) -> str:
        def shown(group: str) -> bool:
            options = self.config_loader.get_group_options(group)
            return predicate(group) and any(not o.startswith("_") for o in options)

        # Hydra builds a fresh config repository (a deep copy of every search path) for each of
        # the ~230 option lookups of a help page: 1.4 of its 1.6 s. One repository serves them all.
        loader = self.config_loader
        build_repo = loader._parse_overrides_and_create_caching_repo
        repos: dict[Any, Any] = {}

        def cached_repo(config_name: Any, overrides: list[str]) -> Any:
            key = (config_name, tuple(overrides))
            if key not in repos:
                repos[key] = build_repo(config_name, overrides)
            return repos[key]

        loader._parse_overrides_and_create_caching_repo = cached_repo
        try:
            return original(self, shown, compact)
        finally:
            del loader._parse_overrides_and_create_caching_repo  # back to the class's method

    format_config_groups._litzoo_wrapped = True  # type: ignore[attr-defined]
    Hydra.format_config_groups = format_config_groups


# --- friendlier composition errors -------------------------------------------------------------
# Hydra reports a misspelled key or option without suggesting the intended one, after a list of
# every option and its search path. Its reporter (`run_and_report`) is wrapped so those messages
# become one paragraph that leads with "Did you mean ...?"; everything else behaves exactly as in
# Hydra, and HYDRA_FULL_ERROR=1 keeps Hydra's own report (with the suggestion added).


def _explain_composition_errors() -> None:
    import hydra._internal.utils as hydra_utils

    original = hydra_utils.run_and_report
    if getattr(original, "_litzoo_wrapped", False):
        return

    def run_and_report(func: Any) -> Any:
        def call() -> Any:
            try:
                return func()
            except Exception as error:  # re-raised as one paragraph, same type
                paragraph = friendly_message(error)
                if paragraph is None:
                    raise
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise type(error)(f"{error}\n{suggestion_for(error)}") from error.__cause__
                raise type(error)(paragraph) from None  # no cause: Hydra prints the paragraph alone

        return original(call)

    run_and_report._litzoo_wrapped = True  # type: ignore[attr-defined]
    hydra_utils.run_and_report = run_and_report


def friendly_message(error: BaseException) -> str | None:
    """Hydra's unknown-option / unknown-key error as one paragraph that leads with the suggestion."""
    hint = suggestion_for(error)
    if hint is None:
        return None
    message = str(error)
    missing = re.search(r"Could not find '([^']+)/([^'/]+)'", message)
    if missing:
        group, name = missing.groups()
        options = re.findall(r"^\t(\S+)$", message, flags=re.MULTILINE)
        return (
            f"{hint} {group}={name} is not a {group} option (Could not find '{group}/{name}'). "
            f"Options of {group}: {', '.join(options)}."
        )
    wanted = re.search(r"Could not override '([^']+)'", message)
    if wanted:
        key = wanted.group(1)
        parent, _, leaf = key.rpartition(".")
        if parent:
            append = re.search(r"use (\+\S+)", message)
            extra = f" (to add it as a new key, use {append.group(1)})" if append else ""
            return f"{hint} Could not override '{key}': {parent} has no key '{leaf}'{extra}."
        return f"{hint} Could not override '{key}': there is no config group or key of that name."
    return f"{hint} {message.splitlines()[0]}"


def suggestion_for(error: BaseException) -> str | None:
    """A 'Did you mean ...?' line for Hydra's unknown-key and unknown-option errors, if any."""
    from hydra.errors import ConfigCompositionException, MissingConfigException

    message = str(error)
    if isinstance(error, MissingConfigException) or "Available options in" in message:
        wanted = re.search(r"Could not find '([^']+)/([^'/]+)'", message)
        options = re.findall(r"^\t(\S+)$", message, flags=re.MULTILINE)
        if wanted and options:
            return _did_you_mean(wanted.group(2), options, prefix=f"{wanted.group(1)}=")
        return None
    if not isinstance(error, ConfigCompositionException):
        return None
    cause = error.__cause__
    parent = getattr(cause, "parent_node", None)
    key = getattr(cause, "key", None)
    if isinstance(parent, DictConfig) and isinstance(key, str):
        full_key = getattr(cause, "full_key", key) or key
        prefix = full_key[: -len(key)] if full_key.endswith(key) else ""
        return _did_you_mean(key, [str(k) for k in parent], prefix=prefix)
    wanted = re.search(r"Could not override '([^']+)'", message)
    if wanted:  # e.g. a misspelled group name: "No match in the defaults list."
        return _did_you_mean(wanted.group(1), _config_groups(), prefix="")
    return None


def _did_you_mean(word: str, candidates: list[str], prefix: str) -> str | None:
    close = difflib.get_close_matches(word, candidates, n=3, cutoff=0.6)
    if not close:
        return None
    return "Did you mean " + " or ".join(f"'{prefix}{c}'" for c in close) + "?"


def _config_groups() -> list[str]:
    return sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
