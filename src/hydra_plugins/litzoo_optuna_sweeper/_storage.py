"""Where a study lives: in memory, in a database (SQLAlchemy URL) or in Optuna's journal file.

The journal file is what lets several machines (SLURM jobs, workstations) share one study
through a shared file system, without a database server: every process appends to the same
file under a file lock. `hydra.sweeper.storage` accepts

- null: in memory (this process only; the study ends with the search),
- `sqlite:///optuna.db`, `postgresql://...`, any SQLAlchemy URL,
- `journal:///shared/optuna.log` (or just a path ending in .log/.jsonl): a journal file,
- an Optuna storage object (`_target_: optuna.storages.JournalStorage` ...), built by Hydra.

Relative paths are made absolute here, so trial jobs started elsewhere find the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

JOURNAL_SCHEME = "journal://"
JOURNAL_SUFFIXES = (".log", ".jsonl", ".journal")


def normalize(spec: Any) -> Any:
    """The storage spec with relative file paths made absolute (None for in-memory)."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return None
    if not isinstance(spec, str):
        return spec
    path = journal_path(spec)
    if path is not None:
        return JOURNAL_SCHEME + str(path)
    if spec.startswith("sqlite:///") and not spec.startswith("sqlite:////") and spec != "sqlite:///:memory:":
        return "sqlite:///" + str(Path(spec[len("sqlite:///") :]).expanduser().resolve())
    return spec


def journal_path(spec: str) -> Path | None:
    """The journal file a spec names, or None when it is not a journal spec."""
    if spec.startswith(JOURNAL_SCHEME):
        return Path(spec[len(JOURNAL_SCHEME) :]).expanduser().resolve()
    if "://" not in spec and spec.endswith(JOURNAL_SUFFIXES):
        return Path(spec).expanduser().resolve()
    return None


def open_storage(spec: Any) -> Any:
    """What `optuna.create_study(storage=...)` is given for a spec."""
    spec = normalize(spec)
    if not isinstance(spec, str):
        return spec
    path = journal_path(spec)
    if path is not None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if spec.startswith("sqlite:"):
        from optuna.storages import RDBStorage

        # Trials report to the same file from several processes; wait for the lock instead of failing.
        return RDBStorage(spec, engine_kwargs={"connect_args": {"timeout": 60}})
    return spec


def dashboard_command(spec: Any) -> str | None:
    """The `optuna-dashboard` command that shows a study kept in this storage (None for in-memory)."""
    spec = normalize(spec)
    if not isinstance(spec, str):
        return None
    path = journal_path(spec)
    return f"optuna-dashboard {path if path is not None else spec}"


def describe(spec: Any) -> str:
    """The storage for logs and result files, with URL credentials removed."""
    from litzoo.platform.secrets import redact_text

    spec = normalize(spec)
    if spec is None:
        return "in memory"
    return redact_text(spec if isinstance(spec, str) else type(spec).__name__, secrets=[])
