"""`resume=<run_dir>` and `resume=auto`: continue an unfinished run in its own directory.

The command line is rewritten before Hydra composes anything, so the resumed
run gets exactly its original config (the overrides and config directories its
`run.json` recorded) and its original run directory:

    python train.py resume=outputs/classification/resnet18/2026-11-25_17-00-25
    python train.py resume=auto trainer.max_epochs=12    # latest unfinished run with this config

Overrides given next to `resume=<run_dir>` are applied on top (e.g. a larger
`trainer.max_epochs`); with one of `trainer.max_epochs`/`trainer.max_steps`, a *completed*
run is extended too: it continues from its `last.ckpt`, and `run.json` lists the resume. `resume=auto` compares a fingerprint of the composed
config with the `config_hash` of every unfinished run under `paths.log_dir`
and skips runs whose process is still alive. Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from litzoo.errors import ConfigError

UNFINISHED = ("running", "interrupted", "failed")
# Set when resume=auto found nothing to continue (its value: where it looked); the runner logs it.
NOTHING_TO_RESUME_ENV = "LITZOO_NOTHING_TO_RESUME"
# Keys that say how to run, not what is trained: they do not change a run's identity.
_NOT_IDENTITY = ("resume", "trust_config", "trust", "hydra", "extras")


def config_fingerprint(cfg: DictConfig) -> str:
    """A hash of the unresolved composed config (run-directory paths stay `${...}`, so they match)."""
    container = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(container, dict)
    identity = {k: v for k, v in container.items() if k not in _NOT_IDENTITY}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_record(run_dir: Path) -> dict[str, Any]:
    from litzoo.platform.run_dir import RunDir

    return RunDir(run_dir).record()


def process_alive(record: dict[str, Any]) -> bool:
    """Whether the process that wrote `record` still runs (on this host)."""
    pid, host = record.get("pid"), record.get("hostname")
    if not pid or host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, PermissionError, ValueError):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    return not cmdline.exists() or b"python" in cmdline.read_bytes()


def _split(argv: Sequence[str]) -> tuple[str | None, list[str], list[str]]:
    """(resume value, config-dir flags, other arguments) of a train.py command line."""
    resume, config_dirs, rest = None, [], []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("resume="):
            resume = arg.split("=", 1)[1]
        elif arg in ("--config-dir", "-cd") and i + 1 < len(args):
            config_dirs.append(args[i + 1])
            i += 1
        elif arg.startswith("--config-dir="):
            config_dirs.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
        i += 1
    return resume, config_dirs, rest


def resume_argv(argv: list[str], compose: Callable[[list[str], list[str]], DictConfig]) -> list[str]:
    """Rewrite `train.py ... resume=...` into the command line of the run to continue.

    `compose(overrides, config_dirs)` returns the config those arguments compose (used by
    `resume=auto` to find runs with the same config).
    """
    resume, config_dirs, rest = _split(argv[1:])
    if resume in (None, "", "null", "None"):
        return argv
    if any(a in ("-m", "--multirun") for a in rest):
        raise ConfigError("resume= continues one run; it cannot be combined with -m (a sweep).")
    if resume == "auto":
        cfg = compose(rest, config_dirs)
        run_dir = find_unfinished_run(cfg)
        if run_dir is None:  # the runner says so once logging is set up, so train.log has it too
            os.environ[NOTHING_TO_RESUME_ENV] = str(Path(str(cfg.paths.log_dir)).expanduser())
            return [argv[0], *[f"--config-dir={d}" for d in config_dirs], *rest]
    else:
        run_dir = Path(resume).expanduser().resolve()
    record = read_record(run_dir)
    if not record:
        raise ConfigError(
            f"resume={resume}: {run_dir} holds no run.json, so there is no run to continue. "
            "Pass the run directory of an earlier run (it holds run.json and checkpoints/)."
        )
    extra = [a for a in rest if not a.startswith("hydra.run.dir=")]
    extends = any(a.lstrip("+").startswith(("trainer.max_epochs=", "trainer.max_steps=")) for a in extra)
    if record.get("status") == "completed" and not extends:
        raise ConfigError(
            f"resume={resume}: the run in {run_dir} already completed; there is nothing to "
            f"continue. To train it further from its last.ckpt, give a longer schedule: "
            f"`python train.py resume={resume} trainer.max_epochs=<more>`; to start a new run from "
            "its weights, ckpt_path=<checkpoint>."
        )
    if process_alive(record):
        raise ConfigError(f"resume={resume}: the run in {run_dir} is still running (pid {record['pid']}).")
    original_dirs = record.get("user_config_dirs") or config_dirs
    return [
        argv[0],
        *[f"--config-dir={d}" for d in original_dirs],
        *record.get("overrides", []),
        *extra,
        f"hydra.run.dir={run_dir}",
        f"resume={run_dir}",
    ]


def find_unfinished_run(cfg: DictConfig) -> Path | None:
    """The most recently started unfinished run under `paths.log_dir` with the same config fingerprint."""
    fingerprint = config_fingerprint(cfg)
    root = Path(str(cfg.paths.log_dir)).expanduser()
    candidates = []
    for record_file in root.rglob("run.json") if root.is_dir() else []:
        record = read_record(record_file.parent)
        if (
            record.get("config_hash") == fingerprint
            and record.get("status") in UNFINISHED
            and any((record_file.parent / "checkpoints").glob("*.ckpt"))
            and not process_alive(record)
        ):
            candidates.append((record.get("started_at") or "", record_file.parent))
    return max(candidates)[1].resolve() if candidates else None
