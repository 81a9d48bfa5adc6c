"""The `train.py` entry point: Hydra composes the config, `litzoo.platform.runner` runs it.

This module is on the path of `--help` and `--cfg`, so it imports only Hydra and
OmegaConf; torch, lightning and timm are imported by the runner, after the
config has been validated.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

# The checkout holding train.py and conf/ (src/litzoo/platform/cli.py -> parents[3]).
PROJECT_ROOT = Path(__file__).resolve().parents[3]
CONFIG_DIR = PROJECT_ROOT / "conf"


def register_resolvers() -> None:
    """Register litzoo's OmegaConf resolvers. None of them can execute code."""
    if not OmegaConf.has_resolver("litzoo_root"):
        OmegaConf.register_new_resolver("litzoo_root", lambda: str(PROJECT_ROOT))


def main(config_dir: str | Path = CONFIG_DIR) -> None:
    """Run `train.py`: compose `conf/train.yaml` with the command line, then train."""
    import hydra

    register_resolvers()
    _explain_composition_errors()
    lightning_child = bool(os.environ.get(JOB_ENV)) and os.environ.get("LOCAL_RANK", "0") != "0"
    sys.argv = ddp_child_argv(sys.argv, os.environ)
    if not lightning_child:  # a child already runs its parent's job as resolved, a resume included
        sys.argv = _resume_argv(sys.argv, Path(config_dir))
    hydra.main(version_base="1.3", config_path=str(config_dir), config_name="train")(_task_function)()


# Environment variable through which a run tells the processes Lightning starts for the other
# ranks which job they belong to (set by the runner of global rank 0, inherited by the children).
JOB_ENV = "LITZOO_JOB"


def ddp_child_argv(argv: list[str], environ: Mapping[str, str]) -> list[str]:
    """The command line a DDP child process should run: exactly its parent's job.

    Lightning starts ranks 1..N-1 by re-running the parent's command line. In a sweep
    (`-m a=1,2`) that line would start a whole new sweep in another directory (Lightning
    #11300). A child instead composes the parent job's own overrides and writes into the
    parent's run directory; Lightning's per-rank job name and `hydra.output_subdir=null`
    are kept, so the child logs to `<run_dir>/train_ddp_process_<rank>.log`.

    Ranks started by another launcher run the user's command line as it is: torchrun's
    workers, SLURM tasks started with srun, the processes of other nodes (NODE_RANK > 0)
    and their Lightning children. Those other than global rank 0 get a rank-suffixed job
    name (`train_rank<R>.log`, or `train_node<N>_process_<L>.log` where only the node and
    local rank are known) and no `.hydra/` copy, so they share rank 0's run directory
    without writing into its log or over its (redacted) configs.
    """
    job = environ.get(JOB_ENV)
    if job and environ.get("LOCAL_RANK", "0") != "0":
        spec = json.loads(job)
        kept = [a for a in argv[1:] if a.startswith(("hydra.job.name=", "hydra.output_subdir="))]
        config_dirs = [f"--config-dir={d}" for d in spec.get("config_dirs", [])]
        # hydra.mode=RUN: a config that sets `hydra.mode: MULTIRUN` (an hparams_search file)
        # would otherwise make the child start a sweep of its own.
        return [argv[0], *config_dirs, *spec["overrides"], f"hydra.run.dir={spec['run_dir']}", "hydra.mode=RUN",
                *kept]
    name = _launched_rank_job_name(environ)
    if name is None:
        return argv
    rest = [a for a in argv[1:] if not a.startswith(("hydra.job.name=", "hydra.output_subdir="))]
    return [argv[0], *rest, f"hydra.job.name={name}", "hydra.output_subdir=null"]


def child_job_name(local_rank: int, environ: Mapping[str, str]) -> str:
    """The job name (log file stem) of local rank `local_rank` started by Lightning on this node."""
    node = _env_int(environ, "NODE_RANK") or _env_int(environ, "GROUP_RANK") or 0
    return f"train_ddp_process_{local_rank}" if node == 0 else f"train_node{node}_process_{local_rank}"


def _launched_rank_job_name(environ: Mapping[str, str]) -> str | None:
    """The job name of a process started by an external launcher that is not global rank 0, else None."""
    for variable in ("RANK", "SLURM_PROCID"):  # torchrun, srun: the global rank is known
        rank = _env_int(environ, variable)
        if rank is not None:
            return f"train_rank{rank}" if rank > 0 else None
    node = _env_int(environ, "NODE_RANK") or 0
    local_rank = _env_int(environ, "LOCAL_RANK") or 0
    return child_job_name(local_rank, environ) if node > 0 or local_rank > 0 else None


def _env_int(environ: Mapping[str, str], name: str) -> int | None:
    try:
        return int(environ[name])
    except (KeyError, ValueError):
        return None


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


def _task_function(cfg: DictConfig) -> Any:
    from litzoo.platform.runner import run_from_hydra

    return run_from_hydra(cfg)


# --- friendlier composition errors -------------------------------------------------------------
# Hydra reports a misspelled key or option without suggesting the intended one. Its reporter
# (`run_and_report`) is wrapped so those messages gain a "Did you mean ...?" line; everything
# else (and HYDRA_FULL_ERROR=1) behaves exactly as in Hydra.


def _explain_composition_errors() -> None:
    import hydra._internal.utils as hydra_utils

    original = hydra_utils.run_and_report
    if getattr(original, "_litzoo_wrapped", False):
        return

    def run_and_report(func: Any) -> Any:
        def call() -> Any:
            try:
                return func()
            except Exception as error:  # re-raised with a hint, same type
                hint = suggestion_for(error)
                if hint is None:
                    raise
                raise type(error)(f"{error}\n{hint}") from error.__cause__

        return original(call)

    run_and_report._litzoo_wrapped = True  # type: ignore[attr-defined]
    hydra_utils.run_and_report = run_and_report


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
