"""A run directory: the one place that knows where a run keeps its record, configs and checkpoints.

Every run writes `<run_dir>/run.json` (the record), `<run_dir>/.hydra/` (the composed config
and the overrides), `<run_dir>/checkpoints/` and its artifacts (metrics.csv, detections,
vocabularies, ...). Training, resuming, prediction, config export, the zoo and reports all read
a run through `RunDir`, so the layout is written down once. Nothing here imports torch.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from litzoo.errors import CheckpointError

RECORD_NAME = "run.json"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see either the old file or the complete new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a run record is meant to be read by others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunDir:
    """The files of one run directory (which need not exist yet)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @classmethod
    def containing(cls, checkpoint: str | os.PathLike) -> RunDir | None:
        """The run directory a checkpoint file sits in (`<run_dir>/checkpoints/x.ckpt`), if it is one."""
        folder = Path(checkpoint).expanduser().resolve().parent
        if folder.name == CHECKPOINT_DIR and (folder.parent / ".hydra" / "config.yaml").is_file():
            return cls(folder.parent)
        return None

    # --- record ---------------------------------------------------------------------------------
    @property
    def record_path(self) -> Path:
        return self.path / RECORD_NAME

    def record(self) -> dict[str, Any]:
        """The contents of run.json ({} when there is none, or it cannot be read)."""
        try:
            return json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            return {}

    def write_record(self, data: dict[str, Any]) -> None:
        write_json_atomic(self.record_path, data)

    # --- configs --------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / ".hydra" / "config.yaml"

    def config(self) -> DictConfig:
        """The composed config the run ran with (`.hydra/config.yaml`, secrets redacted)."""
        if not self.config_path.is_file():
            raise CheckpointError(
                f"{self.path} is not a litzoo run directory: it has no .hydra/config.yaml. Give the folder a "
                "training run wrote (outputs/<task>/<model>/<time>)."
            )
        config = OmegaConf.load(self.config_path)
        assert isinstance(config, DictConfig)
        return config

    @property
    def hydra_config_path(self) -> Path:
        return self.path / ".hydra" / "hydra.yaml"

    def hydra_config(self) -> DictConfig:
        """Hydra's own record of the run (`.hydra/hydra.yaml`: group choices, runtime, job)."""
        if not self.hydra_config_path.is_file():
            raise CheckpointError(
                f"{self.path} has no .hydra/hydra.yaml, so the run's config group choices are unknown. Give "
                "the folder a training run wrote (rank 0's directory for a multi-process run)."
            )
        config = OmegaConf.load(self.hydra_config_path)
        assert isinstance(config, DictConfig)
        return config

    def overrides(self) -> list[str]:
        """The command-line overrides of the run (`.hydra/overrides.yaml`)."""
        path = self.path / ".hydra" / "overrides.yaml"
        return [str(o) for o in OmegaConf.load(path)] if path.is_file() else []

    # --- checkpoints ----------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    def checkpoint(self, name: str | os.PathLike | None = None) -> Path:
        """A checkpoint of this run: `name` (a path, or a file in checkpoints/) if given, else the
        best one run.json names, else last.ckpt, else the newest intact one."""
        if name is not None:
            path = Path(name).expanduser()
            path = path if path.is_absolute() or path.is_file() else self.checkpoint_dir / path
            if not path.is_file():
                raise CheckpointError(
                    f"Checkpoint {path} does not exist. The run's checkpoints are in {self.checkpoint_dir}."
                )
            return path
        if not self.path.is_dir():
            raise CheckpointError(
                f"Run directory {self.path} does not exist. Give the folder a training run wrote "
                "(outputs/<task>/<model>/<time>)."
            )
        best = self.record().get("best_checkpoint")
        if best:  # this directory's own copy first (the run directory may have been moved)
            for candidate in (self.checkpoint_dir / Path(best).name, Path(best)):
                if candidate.is_file():
                    return candidate
        if (self.checkpoint_dir / LAST_CHECKPOINT).is_file():
            return self.checkpoint_dir / LAST_CHECKPOINT
        from litzoo.platform.checkpointing import newest_intact_checkpoint

        newest = newest_intact_checkpoint(self.checkpoint_dir)
        if newest is None:
            raise CheckpointError(
                f"No checkpoint in {self.checkpoint_dir}: the run did not save one. Use a run that trained."
            )
        return newest

    # --- artifacts ------------------------------------------------------------------------------
    def artifact(self, name: str) -> Path:
        """Where the run keeps an artifact (vocab.json, tokenizer/, detections_test.json, ...)."""
        return self.path / name

    def size_bytes(self) -> int:
        """Bytes on disk under the run directory, each hard-linked file counted once."""
        seen: set[tuple[int, int]] = set()
        total = 0
        for path in self.path.rglob("*"):
            try:
                stat = path.stat(follow_symlinks=False)
            except OSError:
                continue
            if path.is_file() and (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
        return total
