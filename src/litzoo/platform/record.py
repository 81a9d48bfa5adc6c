"""`run.json`: the record of a run — what ran, where, on what code, with which result.

Written when a run starts (status `running`) and rewritten when it ends
(`completed`, `failed` or `interrupted`). Every write is atomic, so a crash never
leaves a half-written record, and everything written passes through
`litzoo.platform.secrets.redact`.
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from litzoo.platform.run_dir import RECORD_NAME, write_json_atomic
from litzoo.platform.secrets import redact, redact_override, redact_text

PACKAGES = (
    "litzoo",
    "torch",
    "torchvision",
    "lightning",
    "timm",
    "torchmetrics",
    "hydra-core",
    "omegaconf",
    "transformers",
    "numpy",
)


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def environment() -> dict[str, Any]:
    """Versions and hardware. Uses torch only if it is already imported."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "packages": versions,
        "platform": platform.platform(),
        "hostname": platform.node(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "gpus": [],
        "device_count": 0,
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        env["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            env["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            env["device_count"] = torch.cuda.device_count()
            env["cuda"] = torch.version.cuda
    return env


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def code_version(root: Path, run_dir: Path) -> dict[str, Any]:
    """The git commit of `root`, whether the tree is dirty; the diff is saved to run_dir/code.diff."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout

    info: dict[str, Any] = {"root": str(root), "commit": None, "dirty": None}
    try:
        info["commit"] = git("rev-parse", "HEAD").strip()
        status = git("status", "--porcelain", "--untracked-files=all").splitlines()
    except (OSError, subprocess.SubprocessError):
        info["note"] = "not a git checkout (or git is missing); see environment.packages.litzoo"
        return info
    info["dirty"] = bool(status)
    if status:
        diff = git("diff", "HEAD", "--binary")
        untracked = [line[3:] for line in status if line.startswith("??")]
        (run_dir / "code.diff").write_text(redact_text(diff))
        info["diff"] = "code.diff"
        info["untracked"] = untracked
    return info


def reproduce_command(
    root: Path, overrides: list[str], seed: int | None, config_dirs: list[str], entry: str = "train.py"
) -> str:
    """One shell line that reruns a run: same code root, same overrides, the seed made explicit."""
    args = [a for a in overrides if not a.lstrip("+~").startswith(("hydra.run.", "hydra.sweep.", "seed="))]
    if seed is not None:
        args.append(f"seed={seed}")
    python = "python" if shutil.which("python") == sys.executable else sys.executable
    parts = [python, entry] + [f"--config-dir={d}" for d in config_dirs] + args
    return f"cd {shlex.quote(str(root))} && " + " ".join(shlex.quote(redact_override(p)) for p in parts)


def merge_overrides(original: list[str], extra: list[str]) -> list[str]:
    """`original` with the overrides of `extra` in place of those for the same key, the rest appended."""

    def key(override: str) -> str:
        return override.lstrip("+~").split("=", 1)[0]

    replaced = {key(o) for o in extra}
    return [o for o in original if key(o) not in replaced] + list(extra)


class RunRecord:
    """The `run.json` of one run directory. Only global rank 0 writes it."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / RECORD_NAME
        self.enabled = enabled
        self.data: dict[str, Any] = {}
        self._t0 = time.monotonic()

    def start(self, **fields: Any) -> None:
        self.data = {"status": "running", "started_at": now_iso(), "ended_at": None, **fields}
        self._write()

    def resume(self, previous: dict[str, Any], entry: dict[str, Any] | None = None, **fields: Any) -> None:
        """Continue the record of an earlier run of this directory (unfinished, or completed and
        now extended); `entry` adds to this resume's item in `resumes` (e.g. the overrides given)."""
        resumes = [
            *previous.get("resumes", []),
            {"at": now_iso(), "previous_status": previous.get("status"), **(entry or {})},
        ]
        self.data = {
            **previous,
            "status": "running",
            "ended_at": None,
            "error": None,
            "resumes": resumes,
            **fields,
        }
        self._write()

    def update(self, **fields: Any) -> None:
        self.data.update(fields)
        self._write()

    def finish(self, status: str, **fields: Any) -> None:
        self.data.update(
            status=status, ended_at=now_iso(), duration_s=round(time.monotonic() - self._t0, 2), **fields
        )
        self._write()

    def _write(self) -> None:
        if self.enabled:
            write_json_atomic(self.path, redact(self.data))
